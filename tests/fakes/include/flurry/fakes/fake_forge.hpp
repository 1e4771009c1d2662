#pragma once
// A fake forge on loopback for end-to-end tests: one server that answers
// the GitHub, Gitea/Forgejo (/api/v1) and GitLab (/api/v4) REST endpoints
// Flurry calls, the way those forges answer them (status codes, error
// bodies, paging, GitLab's commit-status state machine, GitHub's App-only
// Checks API). It records every call, keeps what was posted, and can be
// told to fail or stall the next calls. Thread-safe.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "flurry/http/http.hpp"

namespace flurry::fakes {

namespace detail {
struct ForgeState;  // the forges' data, in fake_forge_state.hpp
}

// Forge names, as every call below takes and reports them.
inline constexpr const char* kGitHub = "github";
inline constexpr const char* kGitea = "gitea";  // also Forgejo
inline constexpr const char* kGitLab = "gitlab";

struct RecordedCall {
  std::string forge;  // kGitHub, kGitea or kGitLab, from the path prefix
  std::string method;
  std::string path;   // decoded, as the handler saw it
  std::string query;  // raw
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  int status = 0;  // the answer's status; 0 while it is still being served
};

struct PostedStatus {
  std::string forge;
  std::string owner;  // GitLab: the namespace path ("group/sub")
  std::string repo;   // GitLab: the project's last path component
  std::string sha;
  std::string state;    // as the forge spells it ("failure", "failed", ...)
  std::string context;  // GitLab: name
  std::string description, target_url;
};

// A GitHub check run as it stands after one create or update.
struct CheckRun {
  std::int64_t id = 0;
  std::string owner, repo, name, head_sha;
  std::string status;      // queued | in_progress | completed
  std::string conclusion;  // empty until completed
  std::string details_url, external_id;
  std::string started_at, completed_at;  // as given (ISO 8601); empty when not
  std::string title, summary, text;  // output
};

struct Hook {
  std::string forge;
  std::string owner, repo;  // GitLab: as in PostedStatus
  std::int64_t id = 0;
  std::string url, content_type, secret;  // GitLab: secret = token; content_type empty
  // GitHub and Gitea: the events as sent. GitLab: the *_events flags that
  // are true ("push_events", "merge_requests_events", ...).
  std::vector<std::string> events;
  bool active = true;
};

class FakeForge {
 public:
  // Listens on a free loopback port at once (moving to another port when a
  // different process takes the chosen one first); throws if it cannot.
  FakeForge();
  ~FakeForge();
  FakeForge(const FakeForge&) = delete;
  FakeForge& operator=(const FakeForge&) = delete;

  // The api_url of all three forges; their paths do not overlap.
  std::string url() const;

  // --- What the forge knows -------------------------------------------
  // The one token `forge` accepts (401 for any other); empty accepts any
  // token or none, the default. GitHub: `Authorization: Bearer|token <t>`
  // (ignored while acting as an app); Gitea: `Authorization: token|Bearer
  // <t>`; GitLab: `PRIVATE-TOKEN: <t>` or `Authorization: Bearer <t>`.
  void set_token(const std::string& forge, std::string token);
  // From now on GitHub acts as it does for the GitHub App `app_id`,
  // installed as `installation` on every repository of `account` (default:
  // the owner of the first GitHub repository added). /app/* and the
  // installation lookup take only a JWT that `public_pem` verifies, with
  // that issuer, not expired and valid for at most ten minutes (401
  // otherwise); every repository endpoint
  // takes only an installation token it issued. The Checks API works only
  // in this mode (403 otherwise, as on GitHub).
  void act_as_app(std::string app_id, std::string public_pem, int installation, std::string account = "");
  // A repository the listing endpoints show (GitHub installation
  // repositories, Gitea /user/repos, GitLab /projects). GitLab: `owner` is
  // the namespace path; projects get numeric ids 1, 2, ... in the order
  // they are added. An empty clone_url becomes url()/owner/repo.git.
  // Statuses, hooks and permissions work for repositories never added too,
  // except GitLab projects addressed by a numeric id.
  void add_repository(const std::string& forge, const std::string& owner, const std::string& repo,
                      std::vector<std::string> topics = {}, std::string default_branch = "main",
                      std::string clone_url = "");
  // A user's permission on a repository. GitHub and Gitea: "admin",
  // "write", "read" or "none" (the default for anyone not set). GitLab: an
  // access level, "30" or its name ("developer"); users not set are not
  // members (404), and set users get ids for /users?username=.
  void set_permission(const std::string& forge, const std::string& owner, const std::string& repo,
                      const std::string& user, std::string permission);

  // --- Signing in (OAuth) and private repositories ----------------------
  // The OAuth application `forge` knows: its authorize endpoint
  // (GitHub, Gitea: /login/oauth/authorize; GitLab: /oauth/authorize) takes
  // only this client id, its token endpoint (/login/oauth/access_token;
  // /oauth/token) only this id with this secret. GitHub and Gitea share
  // their paths on this one server: give them different client ids.
  void set_oauth_client(const std::string& forge, std::string client_id, std::string client_secret);
  // The user whose browser is signed in to `forge`: the authorize endpoint
  // grants them a code at once (as if they clicked "Authorize") and answers
  // 302 to redirect_uri with code and state; without one, 302 to it with
  // error=access_denied. A code is exchanged once, by the same client, with
  // the same redirect_uri, for an access token of that user, which
  // /user (GitHub), /api/v1/user (Gitea) and /api/v4/user (GitLab) answer
  // for and repository reads honour. `name` empty: no display name.
  void sign_in_as(const std::string& forge, const std::string& login, const std::string& name = "");
  void sign_out(const std::string& forge);
  // Makes a repository private (or public again). With a user's token a
  // private repository reads as 404 unless set_permission gave the user a
  // permission other than "none" (GitLab: any membership) and, on GitHub
  // not acting as an app (an OAuth App), the token has the "repo" scope;
  // GitLab tokens need the read_api or api scope for any project. Flurry's
  // own credentials read every repository, with "private" (GitHub, Gitea)
  // or "visibility" (GitLab) saying which it is.
  void set_private(const std::string& forge, const std::string& owner, const std::string& repo, bool is_private = true);
  // The access tokens the token endpoint of `forge` handed out.
  std::vector<std::string> issued_user_tokens(const std::string& forge) const;

  // --- Faults ---------------------------------------------------------
  // The next `n` calls whose path starts with `path_prefix` ("" = any)
  // are answered `status` with `body` (a JSON message when empty) and
  // `headers` (e.g. {"retry-after", "1"}, or {"x-ratelimit-remaining",
  // "0"} with {"x-ratelimit-reset", "<epoch s>"}). They are recorded but
  // change nothing. Faults queue up and are used in the order given.
  void fail_next(int n, int status, std::string body = "", std::map<std::string, std::string> headers = {},
                 std::string path_prefix = "");
  // The next `n` matching calls are answered only after `delay`. They then
  // take effect as usual, as a slow forge's would: a client that gave up
  // and retried has posted twice.
  void delay_next(int n, std::chrono::milliseconds delay, std::string path_prefix = "");

  // --- What happened --------------------------------------------------
  // Every call, in arrival order.
  std::vector<RecordedCall> calls() const;
  // Every accepted commit status, in arrival order.
  std::vector<PostedStatus> statuses() const;
  // The last status per context for one sha, of one forge or ("") all.
  std::map<std::string, PostedStatus> final_statuses(const std::string& sha, const std::string& forge = "") const;
  // The check runs as they stand now, by id.
  std::vector<CheckRun> check_runs() const;
  // Every accepted create and update, each as the run stood after it.
  std::vector<CheckRun> check_run_history() const;
  // The hooks of `forge` as they stand now, by id.
  std::vector<Hook> hooks(const std::string& forge) const;
  // The installation tokens handed out while acting as an app.
  std::vector<std::string> issued_tokens() const;

 private:
  http::Response serve(const http::Request& req);

  mutable std::mutex mu_;  // guards state_
  std::unique_ptr<detail::ForgeState> state_;
  std::unique_ptr<http::Server> server_;
};

}  // namespace flurry::fakes
