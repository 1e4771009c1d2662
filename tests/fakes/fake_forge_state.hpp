#pragma once
// What FakeForge knows and has been sent, and the per-forge handlers that
// answer a request from it. FakeForge calls the handlers with its mutex
// held; they read and change nothing but this state.
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

  const Repository* find_repository(const std::string& forge, const std::string& owner, const std::string& repo) const;
  std::vector<const Repository*> repositories_of(const std::string& forge) const;
  // The permission set for the user; empty when none was.
  std::string permission(const std::string& forge, const std::string& owner, const std::string& repo,
                         const std::string& user) const;
  // The token set_token gave `forge`; empty accepts any.
  std::string token(const std::string& forge) const;
  Hook* find_hook(const std::string& forge, const std::string& owner, const std::string& repo, std::int64_t id);
  std::vector<const Hook*> hooks_of(const std::string& forge, const std::string& owner, const std::string& repo) const;
};

// The forge whose API a path belongs to.
std::string forge_of_path(const std::string& path);

http::Response serve_github(ForgeState& state, const http::Request& req);
http::Response serve_gitea(ForgeState& state, const http::Request& req);
http::Response serve_gitlab(ForgeState& state, const http::Request& req);

}  // namespace flurry::fakes::detail
