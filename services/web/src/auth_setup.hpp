#pragma once
// Auth built from configuration, and its routes:
//
//   [web]
//   public_url = "https://ci.example.org"  # required once any forge offers sign-in
//   session_ttl = "7d"                     # d, h, m, s or ms
//   cookie_secure = "auto"                 # or true / false; auto: when public_url is https
//   access_cache_ttl = "60s"               # forge answers about repositories and users
//   access_cache_max = 10000
//   [web.oauth.github]                     # likewise gitea, gitlab; absent: no sign-in
//   client_id = "..."
//   client_secret_file = "/run/secrets/github-oauth-secret"
//   scope = "read:user"                    # the forge's default when absent
//
// The forges' URLs and Flurry's own credentials come from [github]
// (oauth_url: GitHub's web host), [gitea] and [gitlab].
#include <map>
#include <memory>
#include <string>

#include "auth.hpp"
#include "flurry/core/config.hpp"

namespace flurry::web {

// The [web] keys above; throws ConfigError.
AuthConfig auth_config(const Config& config, std::string api_token);

// Auth with everything it uses besides the session store, the HTTP client
// and the clock. Throws ConfigError for incomplete sections.
class AuthService {
 public:
  AuthService(const Config& config, std::string api_token, state::Sessions& sessions, http::Client& client, Clock& clock);
  Auth& auth() { return *auth_; }

 private:
  forge::ServiceAccess access_;
  std::map<std::string, std::unique_ptr<forge::OAuth>> oauth_;
  std::unique_ptr<Auth> auth_;
};

// GET /api/session, GET /auth/*, POST /auth/*. Add them before GET /api/*:
// routes match in the order added.
void add_auth_routes(http::Server& server, Auth& auth);

}  // namespace flurry::web
