#pragma once
// What FakeForge knows and has been sent, and the per-forge handlers that
// answer a request from it. FakeForge calls the handlers with its mutex
// held; they read and change nothing but this state.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "flurry/fakes/fake_forge.hpp"
#include "flurry/http/http.hpp"

namespace flurry::fakes::detail {

struct Repository {
  std::string forge, owner, repo;
  std::int64_t id = 0;  // GitLab project id; other forges number theirs too
  std::vector<std::string> topics;
  std::string default_branch, clone_url;
};

struct App {
  std::string id;  // empty: GitHub is not acting as an app
  std::string public_pem, account;
  std::int64_t installation = 0;
  std::vector<std::string> issued;  // installation tokens
};

// Signing in (OAuth): the app registered with a forge, the user its
// browser is signed in as, codes handed out and not yet exchanged, and the
// access tokens they became.
struct OAuthApp {
  std::string client_id, client_secret;
};
struct User {
  std::string login, name;
  std::int64_t id = 0;
};
struct Grant {  // an authorization code
  std::string forge, client_id, redirect_uri, scope;
  User user;
};
struct UserToken {
  std::string forge, scope;
  User user;
};

// A queued fail_next or delay_next.
struct Fault {
  std::string path_prefix;
  int remaining = 0;
  http::Response answer;               // fail_next
  std::chrono::milliseconds delay{0};  // delay_next
};

struct ForgeState {
  std::string base_url;
  std::map<std::string, std::string> tokens;  // forge -> the accepted token
  App app;
  std::vector<Repository> repositories;
  // (forge, owner, repo, user) -> permission (GitLab: access level)
  std::map<std::tuple<std::string, std::string, std::string, std::string>, std::string> permissions;
  std::map<std::string, std::int64_t> gitlab_users;  // username -> id
  std::vector<RecordedCall> calls;
  std::vector<PostedStatus> statuses;
  std::vector<CheckRun> check_runs;
  std::vector<CheckRun> check_run_history;
  std::vector<Hook> hooks;
  std::vector<Fault> failures, delays;
  std::int64_t next_id = 1;
  std::map<std::string, OAuthApp> oauth_apps;                    // forge -> its OAuth client
  std::map<std::string, User> signed_in;                         // forge -> the browser's user
  std::map<std::string, Grant> codes;                            // code -> what it grants, until exchanged
  std::map<std::string, UserToken> user_tokens;                  // access token -> its user
  std::map<std::tuple<std::string, std::string, std::string>, bool> private_repos;  // set_private

  const Repository* find_repository(const std::string& forge, const std::string& owner, const std::string& repo) const;
  std::vector<const Repository*> repositories_of(const std::string& forge) const;
  // The permission set for the user; empty when none was.
  std::string permission(const std::string& forge, const std::string& owner, const std::string& repo,
                         const std::string& user) const;
  // The token set_token gave `forge`; empty accepts any.
  std::string token(const std::string& forge) const;
  Hook* find_hook(const std::string& forge, const std::string& owner, const std::string& repo, std::int64_t id);
  std::vector<const Hook*> hooks_of(const std::string& forge, const std::string& owner, const std::string& repo) const;
  // The repository as added, or one made up for a name never added (every
  // repository exists, as for statuses).
  Repository repository_or_default(const std::string& forge, const std::string& owner, const std::string& repo) const;
  bool is_private(const std::string& forge, const std::string& owner, const std::string& repo) const;
  // The user token of `forge` the request carries (GitHub, Gitea:
  // Authorization Bearer or token; GitLab: Bearer); null when none.
  const UserToken* user_token(const std::string& forge, const http::Request& req) const;
  // Whether `login` may read owner/repo: public, or a permission other than
  // none (GitLab: any access level) was set for them.
  bool user_can_read(const std::string& forge, const std::string& owner, const std::string& repo, const std::string& login) const;
};

// The forge whose API a path belongs to.
std::string forge_of_path(const std::string& path);
// The same for a request: GitHub and Gitea share /login/oauth/*, told
// apart by the client_id the request names (set_oauth_client's).
std::string forge_of_request(const ForgeState& state, const http::Request& req);
bool is_oauth_path(const std::string& path);

// /login/oauth/{authorize,access_token} (GitHub, Gitea) and
// /oauth/{authorize,token} (GitLab).
http::Response serve_oauth(ForgeState& state, const std::string& forge, const http::Request& req);
// GET of one repository (GitHub /repos/o/r, Gitea /api/v1/repos/o/r,
// GitLab /api/v4/projects/<path>) as `user` (null: Flurry's credentials,
// which see every repository): 404 for a private one they cannot read.
// `body` is the repository as the forge shows it.
http::Response repository_answer(const ForgeState& state, const std::string& forge, const Repository& repo,
                                 const UserToken* user, nlohmann::json body);
// GET /user (GitHub), /api/v1/user (Gitea), /api/v4/user (GitLab) for a user token.
http::Response user_answer(const std::string& forge, const UserToken* user);

http::Response serve_github(ForgeState& state, const http::Request& req);
http::Response serve_gitea(ForgeState& state, const http::Request& req);
http::Response serve_gitlab(ForgeState& state, const http::Request& req);

}  // namespace flurry::fakes::detail
