// FakeForge's shell: the server, recording, faults, and the setters and
// views tests use. The forges' answers are in fake_{github,gitea,gitlab}_api.cpp.
#include "flurry/fakes/fake_forge.hpp"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "fake_forge_state.hpp"
#include "fake_forge_wire.hpp"
#include "flurry/core/child.hpp"
#include "flurry/core/text.hpp"

namespace flurry::fakes {
namespace {

void require_forge(const std::string& forge) {
  if (forge != kGitHub && forge != kGitea && forge != kGitLab) {
    throw std::invalid_argument("FakeForge: unknown forge '" + forge + "' (github, gitea, gitlab)");
  }
}

// GitLab's access levels by role name.
std::string gitlab_access_level(const std::string& permission) {
  static const std::map<std::string, std::string> kLevels = {{"guest", "10"},     {"reporter", "20"}, {"developer", "30"},
                                                             {"maintainer", "40"}, {"owner", "50"}};
  auto it = kLevels.find(text::to_lower(permission));
  if (it != kLevels.end()) return it->second;
  if (!detail::to_int(permission)) throw std::invalid_argument("FakeForge: '" + permission + "' is not a GitLab access level");
  return permission;
}

// Takes one use of the first queued fault that matches `path`.
detail::Fault* take(std::vector<detail::Fault>& faults, const std::string& path) {
  for (auto& f : faults) {
    if (f.remaining > 0 && text::starts_with(path, f.path_prefix)) {
      --f.remaining;
      return &f;
    }
  }
  return nullptr;
}

}  // namespace

namespace detail {

std::string forge_of_path(const std::string& path) {
  if (segments_after(path, "/api/v1")) return kGitea;
  if (segments_after(path, "/api/v4")) return kGitLab;
  return kGitHub;
}

const Repository* ForgeState::find_repository(const std::string& forge, const std::string& owner,
                                              const std::string& repo) const {
  for (const auto& r : repositories) {
    if (r.forge == forge && r.owner == owner && r.repo == repo) return &r;
  }
  return nullptr;
}

std::vector<const Repository*> ForgeState::repositories_of(const std::string& forge) const {
  std::vector<const Repository*> out;
  for (const auto& r : repositories) {
    if (r.forge == forge) out.push_back(&r);
  }
  return out;
}

std::string ForgeState::permission(const std::string& forge, const std::string& owner, const std::string& repo,
                                   const std::string& user) const {
  auto it = permissions.find({forge, owner, repo, user});
  return it == permissions.end() ? std::string() : it->second;
}

std::string ForgeState::token(const std::string& forge) const {
  auto it = tokens.find(forge);
  return it == tokens.end() ? std::string() : it->second;
}

Hook* ForgeState::find_hook(const std::string& forge, const std::string& owner, const std::string& repo, std::int64_t id) {
  for (auto& h : hooks) {
    if (h.forge == forge && h.owner == owner && h.repo == repo && h.id == id) return &h;
  }
  return nullptr;
}

std::vector<const Hook*> ForgeState::hooks_of(const std::string& forge, const std::string& owner,
                                              const std::string& repo) const {
  std::vector<const Hook*> out;
  for (const auto& h : hooks) {
    if (h.forge == forge && h.owner == owner && h.repo == repo) out.push_back(&h);
  }
  return out;
}

Repository ForgeState::repository_or_default(const std::string& forge, const std::string& owner, const std::string& repo) const {
  if (const auto* known = find_repository(forge, owner, repo)) return *known;
  return {forge, owner, repo, 0, {}, "main", base_url + "/" + owner + "/" + repo + ".git"};
}

bool ForgeState::is_private(const std::string& forge, const std::string& owner, const std::string& repo) const {
  auto it = private_repos.find({forge, owner, repo});
  return it != private_repos.end() && it->second;
}

const UserToken* ForgeState::user_token(const std::string& forge, const http::Request& req) const {
  auto token = authorization_token(req);
  if (forge == kGitLab && !text::starts_with(req.header("authorization"), "Bearer ")) return nullptr;
  auto it = user_tokens.find(token);
  return it != user_tokens.end() && it->second.forge == forge ? &it->second : nullptr;
}

bool ForgeState::user_can_read(const std::string& forge, const std::string& owner, const std::string& repo,
                               const std::string& login) const {
  if (!is_private(forge, owner, repo)) return true;
  auto p = permission(forge, owner, repo, login);
  if (forge == kGitLab) return to_int(p).value_or(0) >= 10;
  return !p.empty() && p != "none";
}

}  // namespace detail

FakeForge::FakeForge() : state_(std::make_unique<detail::ForgeState>()) {
  // A free port may be taken by another process before we bind it.
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    http::ServerOptions o;
    o.port = free_tcp_port();
    auto server = http::make_server(o);
    for (const char* method : {"GET", "POST", "PATCH", "PUT", "DELETE"}) {
      server->route(method, "/*", [this](const http::Request& r) { return serve(r); });
    }
    try {
      server->start();
    } catch (const std::runtime_error&) {
      if (attempt == kAttempts) throw;
      continue;
    }
    server_ = std::move(server);
    break;
  }
  state_->base_url = server_->url();
}

FakeForge::~FakeForge() { server_->stop(); }

std::string FakeForge::url() const { return server_->url(); }

http::Response FakeForge::serve(const http::Request& req) {
  std::size_t index = 0;
  std::optional<http::Response> failure;
  std::chrono::milliseconds delay{0};
  {
    std::lock_guard lock(mu_);
    index = state_->calls.size();
    state_->calls.push_back({detail::forge_of_request(*state_, req), req.method, req.path, req.query, req.headers, req.body, 0});
    if (auto* f = take(state_->failures, req.path)) failure = f->answer;
    if (auto* d = take(state_->delays, req.path)) delay = d->delay;
  }
  if (delay.count() > 0) std::this_thread::sleep_for(delay);  // without the lock: others are served meanwhile
  std::lock_guard lock(mu_);
  http::Response out;
  if (failure) {
    out = *failure;
  } else {
    auto forge = state_->calls[index].forge;
    out = detail::is_oauth_path(req.path) ? detail::serve_oauth(*state_, forge, req)
          : forge == kGitea ? detail::serve_gitea(*state_, req)
          : forge == kGitLab ? detail::serve_gitlab(*state_, req)
                             : detail::serve_github(*state_, req);
  }
  state_->calls[index].status = out.status;
  return out;
}

void FakeForge::set_token(const std::string& forge, std::string token) {
  require_forge(forge);
  std::lock_guard lock(mu_);
  state_->tokens[forge] = std::move(token);
}

void FakeForge::act_as_app(std::string app_id, std::string public_pem, int installation, std::string account) {
  std::lock_guard lock(mu_);
  state_->app.id = std::move(app_id);
  state_->app.public_pem = std::move(public_pem);
  state_->app.installation = installation;
  state_->app.account = std::move(account);
}

void FakeForge::add_repository(const std::string& forge, const std::string& owner, const std::string& repo,
                               std::vector<std::string> topics, std::string default_branch, std::string clone_url) {
  require_forge(forge);
  std::lock_guard lock(mu_);
  if (clone_url.empty()) clone_url = state_->base_url + "/" + owner + "/" + repo + ".git";
  std::int64_t id = 1 + static_cast<std::int64_t>(state_->repositories_of(forge).size());
  state_->repositories.push_back({forge, owner, repo, id, std::move(topics), std::move(default_branch), std::move(clone_url)});
}

void FakeForge::set_permission(const std::string& forge, const std::string& owner, const std::string& repo,
                               const std::string& user, std::string permission) {
  require_forge(forge);
  if (forge == kGitLab) permission = gitlab_access_level(permission);
  std::lock_guard lock(mu_);
  if (forge == kGitLab && !state_->gitlab_users.count(user)) {
    state_->gitlab_users[user] = 100 + static_cast<std::int64_t>(state_->gitlab_users.size());
  }
  state_->permissions[{forge, owner, repo, user}] = std::move(permission);
}

void FakeForge::set_oauth_client(const std::string& forge, std::string client_id, std::string client_secret) {
  require_forge(forge);
  std::lock_guard lock(mu_);
  for (const auto& [other, app] : state_->oauth_apps) {
    if (other != forge && app.client_id == client_id) {
      throw std::invalid_argument("FakeForge: " + other + " already uses client id '" + client_id + "'");
    }
  }
  state_->oauth_apps[forge] = {std::move(client_id), std::move(client_secret)};
}

void FakeForge::sign_in_as(const std::string& forge, const std::string& login, const std::string& name) {
  require_forge(forge);
  std::lock_guard lock(mu_);
  // GitLab's users have the ids /users?username= shows; others get their own.
  auto& ids = state_->gitlab_users;
  if (forge == kGitLab && !ids.count(login)) ids[login] = 100 + static_cast<std::int64_t>(ids.size());
  const auto id = forge == kGitLab ? ids[login] : 5000 + state_->next_id++;
  state_->signed_in[forge] = {login, name, id};
}

void FakeForge::sign_out(const std::string& forge) {
  require_forge(forge);
  std::lock_guard lock(mu_);
  state_->signed_in.erase(forge);
}

void FakeForge::set_private(const std::string& forge, const std::string& owner, const std::string& repo, bool is_private) {
  require_forge(forge);
  std::lock_guard lock(mu_);
  state_->private_repos[{forge, owner, repo}] = is_private;
}

std::vector<std::string> FakeForge::issued_user_tokens(const std::string& forge) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [token, user] : state_->user_tokens) {
    if (user.forge == forge) out.push_back(token);
  }
  return out;
}

void FakeForge::fail_next(int n, int status, std::string body, std::map<std::string, std::string> headers,
                          std::string path_prefix) {
  if (body.empty()) body = R"({"message":"Injected failure )" + std::to_string(status) + R"("})";
  http::Response answer{status, std::move(body), "application/json"};
  answer.headers = std::move(headers);
  std::lock_guard lock(mu_);
  state_->failures.push_back({std::move(path_prefix), n, std::move(answer), {}});
}

void FakeForge::delay_next(int n, std::chrono::milliseconds delay, std::string path_prefix) {
  std::lock_guard lock(mu_);
  state_->delays.push_back({std::move(path_prefix), n, {}, delay});
}

std::vector<RecordedCall> FakeForge::calls() const {
  std::lock_guard lock(mu_);
  return state_->calls;
}

std::vector<PostedStatus> FakeForge::statuses() const {
  std::lock_guard lock(mu_);
  return state_->statuses;
}

std::map<std::string, PostedStatus> FakeForge::final_statuses(const std::string& sha, const std::string& forge) const {
  std::lock_guard lock(mu_);
  std::map<std::string, PostedStatus> out;
  for (const auto& s : state_->statuses) {
    if (s.sha == sha && (forge.empty() || s.forge == forge)) out[s.context] = s;
  }
  return out;
}

std::vector<CheckRun> FakeForge::check_runs() const {
  std::lock_guard lock(mu_);
  return state_->check_runs;
}

std::vector<CheckRun> FakeForge::check_run_history() const {
  std::lock_guard lock(mu_);
  return state_->check_run_history;
}

std::vector<Hook> FakeForge::hooks(const std::string& forge) const {
  std::lock_guard lock(mu_);
  std::vector<Hook> out;
  std::copy_if(state_->hooks.begin(), state_->hooks.end(), std::back_inserter(out),
               [&](const Hook& h) { return h.forge == forge; });
  return out;
}

std::vector<std::string> FakeForge::issued_tokens() const {
  std::lock_guard lock(mu_);
  return state_->app.issued;
}

}  // namespace flurry::fakes
