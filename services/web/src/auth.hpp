#pragma once
// Who may use the web service, and signing in.
//
// Reading follows the repository's visibility: a public repository's evals,
// jobs and logs are for anyone; a private one's for a user signed in with
// that forge who can read it there. Acting (rebuild, cancel, approve) needs
// the API token, or a user signed in with that forge who may write to the
// repository. Signing in is OAuth's authorization-code flow with GitHub,
// Gitea/Forgejo or GitLab; a session is an HttpOnly, SameSite=Lax cookie
// (Secure when served over https), and every POST made with it carries the
// session's CSRF token in X-Flurry-CSRF.
//
// Routes (handle()):
//   GET  /auth/<forge>/login?next=/path   302 to the forge, with a fresh single-use state
//   GET  /auth/<forge>/callback?code&state  signs in; 302 to `next` with the session cookie
//   POST /auth/logout                      ends the session (X-Flurry-CSRF required); 204
//   GET  /api/session                      {"user", "csrf", "sign_in", "token_auth"}
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "auth_cache.hpp"
#include "flurry/core/clock.hpp"
#include "flurry/core/error.hpp"
#include "flurry/forge/oauth.hpp"
#include "flurry/forge/oauth_access.hpp"
#include "flurry/forge/permissions.hpp"
#include "flurry/http/http.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/state/sessions.hpp"

namespace flurry::web {

// Who asks: a signed-in user, or the holder of the API token.
struct Viewer {
  std::string forge, login, name;  // the user (empty for the API token)
  bool api_token = false;          // came with Authorization: Bearer <web.api_token_file>
  // Secrets, never for a page (but /api/session's csrf), a log line or an
  // error: the session's CSRF token, the cookie's session id, the user's
  // forge token.
  std::string csrf, session_id, access_token;
};

struct AuthConfig {
  // Where browsers reach the service: redirect_uri is
  // <public_url>/auth/<forge>/callback. Required once any forge offers sign-in.
  std::string public_url;
  std::string api_token;  // secret; empty: nobody holds one
  std::chrono::milliseconds session_ttl{std::chrono::hours(24 * 7)};
  std::optional<bool> cookie_secure;  // nullopt ("auto"): when public_url is https
  std::chrono::milliseconds state_ttl{std::chrono::minutes(10)};
  // How long a forge's answer about a repository (public?) or a user (may
  // read? may write?) is reused; a failure to ask is reused error_cache_ttl.
  std::chrono::milliseconds cache_ttl{std::chrono::seconds(60)};
  std::chrono::milliseconds error_cache_ttl{std::chrono::seconds(5)};
  std::size_t cache_max = 10'000;  // entries per cache
};

struct AuthPorts {
  state::Sessions& sessions;
  Clock& clock;
  std::map<std::string, forge::OAuth*> sign_in;                // the forges users sign in with
  std::map<std::string, forge::RepoVisibility*> visibility;    // the forges Flurry has API credentials for
  std::map<std::string, forge::Permissions*> permissions;      // the same, for who may write
};

class Auth {
 public:
  Auth(AuthPorts ports, AuthConfig config);

  // Who asks: the API token's holder (a matching Authorization header), the
  // session cookie's user, or nobody (no cookie, an unknown or expired
  // session, or a session store that does not answer: logged).
  std::optional<Viewer> viewer_of(const http::Request& req);
  // Reading a repository's evals, jobs and logs. Public: anyone. Private: a
  // user signed in with its forge who can read it there (asked with their
  // token) and the API token. A forge Flurry has no API credentials for (a
  // polled "git" repository, the local example): public. An error when the
  // forge cannot be asked now: refused, the message saying why (fail closed).
  Result<bool> may_read(const std::optional<Viewer>& viewer, const msg::Repo& repo);
  // Whether the forge shows the repository to everyone (true when no
  // forge is asked: Flurry reads it without credentials).
  Result<bool> is_public(const msg::Repo& repo);
  // Rebuild, cancel, approve: the API token, or a user signed in with the
  // repository's forge who may write to it (asked with Flurry's credentials).
  // An error when the forge cannot be asked now (fail closed).
  Result<bool> may_act(const std::optional<Viewer>& viewer, const msg::Repo& repo);
  // A POST by `viewer` may go on: the API token needs nothing more; a
  // session needs X-Flurry-CSRF equal to its CSRF token (compared in
  // constant time).
  bool csrf_ok(const http::Request& req, const Viewer& viewer) const;

  // The routes above; 404 for other paths.
  http::Response handle(const http::Request& req);
  // Whether cookies are marked Secure.
  bool secure_cookies() const { return secure_; }
  // The forges offering sign-in, sorted.
  std::vector<std::string> sign_in_forges() const;

 private:
  http::Response login(const std::string& forge, const http::Request& req);
  http::Response callback(const std::string& forge, const http::Request& req);
  http::Response finish_sign_in(forge::OAuth& oauth, const std::string& code, const std::string& next, const std::string& old_session);
  http::Response logout(const http::Request& req);
  http::Response session_answer(const http::Request& req);
  std::string redirect_uri(const std::string& forge) const;
  forge::OAuth* find_sign_in(const std::string& forge) const;
  template <typename V>
  void remember(TtlCache<Result<V>>& cache, const std::string& key, const Result<V>& answer);
  Result<forge::Visibility> visibility_of(forge::RepoVisibility& source, const msg::Repo& repo);
  Result<bool> user_can_read(forge::OAuth& oauth, const Viewer& viewer, const msg::Repo& repo);

  AuthPorts ports_;
  AuthConfig config_;
  bool secure_ = false;
  TtlCache<Result<forge::Visibility>> visibility_cache_;
  TtlCache<Result<bool>> read_cache_, write_cache_;
};

}  // namespace flurry::web
