#pragma once
// Signing in with a forge: OAuth 2.0's authorization-code flow as each
// forge documents it, and what the web's access rules ask with the
// signed-in user's token. Over the http::Client port.
//
//   GitHub (OAuth App, or a GitHub App's client id and secret, which gives
//   a user-to-server token the same way):
//     authorize  <oauth_url>/login/oauth/authorize?client_id&redirect_uri&state&scope
//     token      POST <oauth_url>/login/oauth/access_token (Accept: application/json;
//                a refusal is a 200 whose body has "error")
//     user       GET <api_url>/user
//     can read   GET <api_url>/repos/{owner}/{repo} -> 200
//   Gitea / Forgejo:
//     authorize  <url>/login/oauth/authorize?client_id&redirect_uri&response_type=code&state[&scope]
//     token      POST <url>/login/oauth/access_token (grant_type=authorization_code)
//     user       GET <url>/api/v1/user
//     can read   GET <url>/api/v1/repos/{owner}/{repo} -> 200
//   GitLab:
//     authorize  <url>/oauth/authorize?client_id&redirect_uri&response_type=code&state&scope=read_api
//     token      POST <url>/oauth/token (grant_type=authorization_code)
//     user       GET <url>/api/v4/user
//     can read   GET <url>/api/v4/projects/{url-encoded owner/repo} -> 200
//
// Secrets (the client secret, codes, access tokens) never appear in an
// error message; every access token received is registered with the logger
// for redaction. Forge answers are parsed defensively: a missing or
// mistyped field is a refusal, never an exception.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "flurry/core/config.hpp"
#include "flurry/core/error.hpp"
#include "flurry/http/http.hpp"

namespace flurry::forge {

struct OAuthOptions {
  std::string forge;          // "github", "gitea" (also Forgejo) or "gitlab"
  std::string oauth_url;      // where browsers sign in and codes are exchanged (GitHub: its web host)
  std::string api_url;        // GitHub: its REST API; Gitea, GitLab: their base URL, as in [gitea] api_url
  std::string client_id;
  std::string client_secret;  // secret
  std::string scope;          // sent as given; empty: none
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};  // per forge call
};

// The scope a forge's sign-in asks for unless configured: GitHub
// "read:user" (a GitHub App ignores scopes; an OAuth App needs "repo" to
// read private repositories), Gitea none, GitLab "read_api".
std::string default_oauth_scope(const std::string& forge);

struct ForgeUser {
  std::string id;     // the forge's numeric user id, as text
  std::string login;  // user name
  std::string name;   // display name; the login when the forge has none
};

class OAuth {
 public:
  virtual ~OAuth() = default;
  virtual const std::string& forge() const = 0;
  // Where to send the browser to sign in; the forge sends it back to
  // `redirect_uri` with `code` and `state` (or `error`).
  virtual std::string authorize_url(const std::string& redirect_uri, const std::string& state) const = 0;
  // The user's access token for `code`. kRejected: the forge refused the
  // code or the client (the message names the forge's error code, if
  // any); kTransient: no answer, 5xx or rate limited.
  virtual Result<std::string> exchange_code(const std::string& code, const std::string& redirect_uri) = 0;
  // Who the token belongs to. kRejected: the token is not accepted.
  virtual Result<ForgeUser> user(const std::string& access_token) = 0;
  // Whether the token's user can read owner/repo: true on 200, false when
  // the forge hides it from them (404, 403). kRejected when the token is
  // no longer accepted (401: sign in again); kTransient as above.
  virtual Result<bool> can_read(const std::string& access_token, const std::string& owner, const std::string& repo) = 0;
};

// Throws std::invalid_argument for a forge other than github, gitea, gitlab.
std::unique_ptr<OAuth> make_oauth(http::Client& client, OAuthOptions options);

// The sign-in options of `forge` from config: the client from
// `[<client_section>]` (client_id, client_secret_file, scope), the URLs from
// the forge's own section as Forges reads it: [github] api_url (default
// https://api.github.com) and oauth_url (default https://github.com, or the
// Enterprise host of an api_url ending in /api/v3); [gitea] api_url
// (required) and [gitlab] api_url (default https://gitlab.com), whose
// oauth_url defaults to their api_url. nullopt when `client_section` has
// no client_id. Throws ConfigError when it is incomplete; the secret is
// read with read_secret_file (so redacted).
std::optional<OAuthOptions> oauth_options(const Config& config, const std::string& forge, const std::string& client_section);

}  // namespace flurry::forge
