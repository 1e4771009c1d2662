// The GitHub REST API as FakeForge answers it: commit statuses, the Checks
// API (GitHub Apps only), App authentication, installation repositories,
// collaborator permissions, repository webhooks, and the signed-in user
// and repository reads of signing in (fake_oauth_api.cpp).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>

#include "fake_forge_state.hpp"
#include "fake_forge_wire.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/test/jwt.hpp"

namespace flurry::fakes::detail {
namespace {

using nlohmann::json;

// GitHub's limit for a check run's summary and text: its schema says
// 65,535 characters, its validation counts bytes ("exceeds a maximum
// bytesize of 65535"), so this fake counts bytes.
constexpr std::size_t kMaxOutputBytes = 65535;

http::Response not_found() { return message_answer(404, "Not Found"); }
http::Response bad_credentials() { return message_answer(401, "Bad credentials"); }
http::Response bad_json() { return message_answer(400, "Problems parsing JSON"); }

http::Response validation_failed(const std::string& resource, const std::string& field, const std::string& message) {
  return json_answer(422, {{"message", "Validation Failed"},
                           {"errors", json::array({{{"resource", resource}, {"field", field}, {"code", "custom"}, {"message", message}}})},
                           {"documentation_url", "https://docs.github.com/rest"}});
}

std::string iso_time(std::time_t t) {
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return out;
}

bool acting_as_app(const ForgeState& s) { return !s.app.id.empty(); }

// A JWT as GitHub takes one from an app: RS256 signed by its key, issued
// by it, not expired, at most ten minutes long, not issued in the future.
bool jwt_ok(const ForgeState& s, const http::Request& req) {
  auto auth = req.header("authorization");
  if (auth.rfind("Bearer ", 0) != 0) return false;
  auto claims = test::verified_jwt_claims(auth.substr(7), s.app.public_pem);
  if (!claims) return false;
  auto j = json::parse(*claims, nullptr, false);
  if (!j.is_object() || text_of(j, "iss") != s.app.id) return false;
  if (!j.contains("exp") || !j["exp"].is_number() || !j.contains("iat") || !j["iat"].is_number()) return false;
  auto now = static_cast<std::int64_t>(std::time(nullptr));
  auto exp = j["exp"].get<std::int64_t>();
  auto iat = j["iat"].get<std::int64_t>();
  return exp > now && exp - now <= 600 && iat <= now + 5;
}

// Repository endpoints: an installation token the app was given while
// acting as an app, else the token set for GitHub (any when none).
bool token_ok(const ForgeState& s, const http::Request& req) {
  auto token = authorization_token(req);
  if (acting_as_app(s)) return !token.empty() && std::count(s.app.issued.begin(), s.app.issued.end(), token) > 0;
  auto want = s.token(kGitHub);
  return want.empty() || token == want;
}

std::string app_account(const ForgeState& s) {
  if (!s.app.account.empty()) return s.app.account;
  auto repos = s.repositories_of(kGitHub);
  return repos.empty() ? std::string() : repos.front()->owner;
}

json installation_json(const ForgeState& s) {
  return {{"id", s.app.installation},
          {"app_id", s.app.id},
          {"account", {{"login", app_account(s)}}},
          {"target_type", "Organization"},
          {"repository_selection", "all"}};
}

json repository_json(const ForgeState& s, const Repository& r) {
  return {{"id", r.id},
          {"name", r.repo},
          {"full_name", r.owner + "/" + r.repo},
          {"owner", {{"login", r.owner}}},
          {"private", s.is_private(kGitHub, r.owner, r.repo)},
          {"visibility", s.is_private(kGitHub, r.owner, r.repo) ? "private" : "public"},
          {"clone_url", r.clone_url},
          {"html_url", s.base_url + "/" + r.owner + "/" + r.repo},
          {"default_branch", r.default_branch},
          {"topics", r.topics}};
}

// --- App endpoints (JWT) ----------------------------------------------

http::Response serve_app(ForgeState& s, const http::Request& req, const std::vector<std::string>& seg) {
  if (!acting_as_app(s) || !jwt_ok(s, req)) return message_answer(401, "A JSON web token could not be decoded");
  if (req.method == "GET" && match(seg, {"app", "installations"})) return json_answer(200, json::array({installation_json(s)}));
  if (req.method == "GET" && match(seg, {"repos", "*", "*", "installation"})) return json_answer(200, installation_json(s));
  if (auto m = match(seg, {"app", "installations", "*", "access_tokens"}); m && req.method == "POST") {
    if ((*m)[0] != std::to_string(s.app.installation)) return not_found();
    s.app.issued.push_back("ghs_fake" + crypto::random_hex(16));
    return json_answer(201, {{"token", s.app.issued.back()},
                             {"expires_at", iso_time(std::time(nullptr) + 3600)},
                             {"repository_selection", "all"}});
  }
  return not_found();
}

http::Response installation_repositories(const ForgeState& s, const http::Request& req) {
  if (!acting_as_app(s)) return message_answer(403, "This endpoint requires an installation access token.");
  auto repos = s.repositories_of(kGitHub);
  auto page = page_of(repos.size(), parse_query(req.query), "per_page", 30, 100);
  json list = json::array();
  for (auto i = page.begin; i < page.end; ++i) list.push_back(repository_json(s, *repos[i]));
  std::map<std::string, std::string> headers;
  if (auto link = link_header(s.base_url + "/installation/repositories", "per_page", page); !link.empty()) headers["link"] = link;
  return json_answer(200, {{"total_count", repos.size()}, {"repository_selection", "all"}, {"repositories", list}}, headers);
}

// --- Commit statuses ----------------------------------------------------

http::Response post_status(ForgeState& s, const http::Request& req, const std::string& owner, const std::string& repo,
                           const std::string& sha) {
  auto p = body_params(req);
  if (p.is_discarded()) return bad_json();
  auto state = text_of(p, "state");
  if (!is_one_of(state, {"error", "failure", "pending", "success"})) {
    return validation_failed("Status", "state", "state is not included in the list");
  }
  auto description = text_of(p, "description");
  if (code_points(description) > 140) {
    return validation_failed("Status", "description", "description is too long (maximum is 140 characters)");
  }
  auto context = text_of(p, "context");
  if (context.empty()) context = "default";
  s.statuses.push_back({kGitHub, owner, repo, sha, state, context, description, text_of(p, "target_url")});
  auto id = s.next_id++;
  return json_answer(201, {{"id", id},
                           {"url", s.base_url + "/repos/" + owner + "/" + repo + "/statuses/" + sha},
                           {"state", state},
                           {"description", description},
                           {"target_url", p.contains("target_url") ? p["target_url"] : json(nullptr)},
                           {"context", context},
                           {"created_at", iso_time(std::time(nullptr))}});
}

// --- Checks API ---------------------------------------------------------

json check_run_json(const ForgeState& s, const CheckRun& c) {
  return {{"id", c.id},
          {"name", c.name},
          {"head_sha", c.head_sha},
          {"status", c.status},
          {"conclusion", c.conclusion.empty() ? json(nullptr) : json(c.conclusion)},
          {"details_url", c.details_url},
          {"external_id", c.external_id},
          {"started_at", c.started_at.empty() ? json(nullptr) : json(c.started_at)},
          {"completed_at", c.completed_at.empty() ? json(nullptr) : json(c.completed_at)},
          {"html_url", s.base_url + "/" + c.owner + "/" + c.repo + "/runs/" + std::to_string(c.id)},
          {"output", {{"title", c.title}, {"summary", c.summary}, {"text", c.text}}}};
}

// "2026-12-03T21:51:16Z", as GitHub writes and takes times.
bool iso_8601(const std::string& s) {
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return end && *end == '\0';
}

// Applies a create's or update's fields to `run`; GitHub's 422 when they
// are not valid (then `run` must be thrown away).
std::optional<http::Response> apply_check_run(CheckRun& run, const json& p, bool create) {
  auto set = [&](const char* key, std::string& field) {
    if (p.contains(key)) field = text_of(p, key);
  };
  set("name", run.name);
  if (create) set("head_sha", run.head_sha);
  set("details_url", run.details_url);
  set("external_id", run.external_id);
  set("status", run.status);
  if (create && run.status.empty()) run.status = "queued";
  if (p.contains("conclusion") && !p["conclusion"].is_null()) {
    run.conclusion = text_of(p, "conclusion");
    run.status = "completed";  // GitHub: a conclusion completes the run
  }
  if (run.name.empty()) return validation_failed("CheckRun", "name", "name wasn't supplied");
  if (run.head_sha.empty()) return validation_failed("CheckRun", "head_sha", "head_sha wasn't supplied");
  if (!is_one_of(run.status, {"queued", "in_progress", "completed"})) {
    return validation_failed("CheckRun", "status", "status is not included in the list");
  }
  if (run.status != "completed") run.conclusion.clear();
  if (run.status == "completed" && run.conclusion.empty()) {
    return validation_failed("CheckRun", "conclusion", "conclusion must be given when status is completed");
  }
  if (!run.conclusion.empty() && !is_one_of(run.conclusion, {"action_required", "cancelled", "failure", "neutral", "success",
                                                             "skipped", "stale", "timed_out"})) {
    return validation_failed("CheckRun", "conclusion", "conclusion is not included in the list");
  }
  if (p.contains("output")) {
    const auto& out = p["output"];
    if (!out.is_object()) return validation_failed("CheckRun", "output", "output is not an object");
    if (text_of(out, "title").empty()) return validation_failed("CheckRun", "output.title", "title wasn't supplied");
    if (text_of(out, "summary").empty()) return validation_failed("CheckRun", "output.summary", "summary wasn't supplied");
    run.title = text_of(out, "title");
    run.summary = text_of(out, "summary");
    run.text = text_of(out, "text");
    for (const auto* field : {&run.summary, &run.text}) {
      if (field->size() > kMaxOutputBytes) {
        return validation_failed("CheckRun", field == &run.summary ? "summary" : "text",
                                 (field == &run.summary ? std::string("summary") : std::string("text")) +
                                     " exceeds a maximum bytesize of 65535");
      }
    }
  }
  for (auto [key, field] : {std::pair{"started_at", &run.started_at}, std::pair{"completed_at", &run.completed_at}}) {
    if (!p.contains(key)) continue;
    *field = text_of(p, key);
    if (!iso_8601(*field)) return validation_failed("CheckRun", key, std::string(key) + " is not an ISO 8601 time");
  }
  return std::nullopt;
}

http::Response serve_check_runs(ForgeState& s, const http::Request& req, const std::string& owner, const std::string& repo,
                                const std::string* id_text) {
  if (!acting_as_app(s)) return message_answer(403, "You must authenticate via a GitHub App.");
  CheckRun* existing = nullptr;
  if (id_text) {
    auto id = to_int(*id_text);
    for (auto& c : s.check_runs) {
      if (id && c.id == *id && c.owner == owner && c.repo == repo) existing = &c;
    }
    if (!existing) return not_found();
    if (req.method == "GET") return json_answer(200, check_run_json(s, *existing));
  }
  auto p = body_params(req);
  if (p.is_discarded()) return bad_json();
  CheckRun run = existing ? *existing : CheckRun{0, owner, repo};
  if (auto refused = apply_check_run(run, p, existing == nullptr)) return *refused;
  if (existing) {
    *existing = run;
  } else {
    run.id = s.next_id++;
    s.check_runs.push_back(run);
  }
  s.check_run_history.push_back(run);
  return json_answer(existing ? 200 : 201, check_run_json(s, run));
}

// --- Collaborators --------------------------------------------------------

http::Response collaborator_permission(const ForgeState& s, const std::string& owner, const std::string& repo,
                                       const std::string& user) {
  auto role = s.permission(kGitHub, owner, repo, user);
  if (role.empty()) role = "none";
  // "permission" is the legacy level; role_name says maintain and triage too.
  auto level = role == "maintain" ? "write" : role == "triage" ? "read" : role;
  return json_answer(200, {{"permission", level}, {"role_name", role}, {"user", {{"login", user}}}});
}

// --- Webhooks ---------------------------------------------------------------

json hook_json(const ForgeState& s, const Hook& h) {
  json config = {{"url", h.url}, {"content_type", h.content_type}, {"insecure_ssl", "0"}};
  if (!h.secret.empty()) config["secret"] = "********";  // GitHub never shows it back
  return {{"type", "Repository"},
          {"id", h.id},
          {"name", "web"},
          {"active", h.active},
          {"events", h.events},
          {"config", config},
          {"url", s.base_url + "/repos/" + h.owner + "/" + h.repo + "/hooks/" + std::to_string(h.id)}};
}

// The hook fields of a create or update; GitHub's 422 when not valid.
std::optional<http::Response> apply_hook(const ForgeState& s, Hook& h, const json& p, bool create) {
  if (p.contains("name") && text_of(p, "name") != "web") return validation_failed("Hook", "name", "name must be 'web'");
  if (create || p.contains("config")) {
    if (!p.contains("config") || !p["config"].is_object()) return validation_failed("Hook", "config", "config wasn't supplied");
    const auto& c = p["config"];
    h.url = text_of(c, "url");
    if (h.url.empty()) return validation_failed("Hook", "url", "url wasn't supplied");
    h.content_type = c.contains("content_type") ? text_of(c, "content_type") : "form";
    if (c.contains("secret")) h.secret = text_of(c, "secret");
  }
  if (p.contains("events")) h.events = strings_of(p, "events");
  else if (create) h.events = {"push"};
  for (const auto& e : strings_of(p, "add_events")) {
    if (std::find(h.events.begin(), h.events.end(), e) == h.events.end()) h.events.push_back(e);
  }
  for (const auto& e : strings_of(p, "remove_events")) h.events.erase(std::remove(h.events.begin(), h.events.end(), e), h.events.end());
  h.active = flag_of(p, "active", h.active);
  for (const auto* other : s.hooks_of(kGitHub, h.owner, h.repo)) {
    if (other->id != h.id && other->url == h.url) return validation_failed("Hook", "url", "Hook already exists on this repository");
  }
  return std::nullopt;
}

http::Response serve_hooks(ForgeState& s, const http::Request& req, const std::string& owner, const std::string& repo,
                           const std::string* id_text) {
  if (!id_text && req.method == "GET") {
    json list = json::array();
    for (const auto* h : s.hooks_of(kGitHub, owner, repo)) list.push_back(hook_json(s, *h));
    return json_answer(200, list);
  }
  Hook* existing = nullptr;
  if (id_text) {
    auto id = to_int(*id_text);
    existing = id ? s.find_hook(kGitHub, owner, repo, *id) : nullptr;
    if (!existing) return not_found();
    if (req.method == "GET") return json_answer(200, hook_json(s, *existing));
  }
  auto p = body_params(req);
  if (p.is_discarded()) return bad_json();
  Hook hook = existing ? *existing : Hook{kGitHub, owner, repo};
  if (auto refused = apply_hook(s, hook, p, existing == nullptr)) return *refused;
  if (existing) {
    *existing = hook;
    return json_answer(200, hook_json(s, hook));
  }
  hook.id = s.next_id++;
  s.hooks.push_back(hook);
  return json_answer(201, hook_json(s, hook));
}

}  // namespace

http::Response serve_github(ForgeState& s, const http::Request& req) {
  auto seg = *segments_after(req.path, "");
  const auto& method = req.method;
  if ((!seg.empty() && seg[0] == "app") || match(seg, {"repos", "*", "*", "installation"})) return serve_app(s, req, seg);
  if (const auto* user = s.user_token(kGitHub, req)) {  // a signed-in user's token
    if (method == "GET" && match(seg, {"user"})) return user_answer(kGitHub, user);
    if (auto m = match(seg, {"repos", "*", "*"}); m && method == "GET") {
      auto repo = s.repository_or_default(kGitHub, (*m)[0], (*m)[1]);
      return repository_answer(s, kGitHub, repo, user, repository_json(s, repo));
    }
  }
  if (!token_ok(s, req)) return bad_credentials();
  if (method == "GET" && match(seg, {"user"})) return user_answer(kGitHub, nullptr);
  if (auto m = match(seg, {"repos", "*", "*"}); m && method == "GET") {
    auto repo = s.repository_or_default(kGitHub, (*m)[0], (*m)[1]);
    return repository_answer(s, kGitHub, repo, nullptr, repository_json(s, repo));
  }
  if (method == "GET" && match(seg, {"installation", "repositories"})) return installation_repositories(s, req);
  if (auto m = match(seg, {"repos", "*", "*", "statuses", "*"}); m && method == "POST") return post_status(s, req, (*m)[0], (*m)[1], (*m)[2]);
  if (auto m = match(seg, {"repos", "*", "*", "check-runs"}); m && method == "POST") {
    return serve_check_runs(s, req, (*m)[0], (*m)[1], nullptr);
  }
  if (auto m = match(seg, {"repos", "*", "*", "check-runs", "*"}); m && (method == "PATCH" || method == "GET")) {
    return serve_check_runs(s, req, (*m)[0], (*m)[1], &(*m)[2]);
  }
  if (auto m = match(seg, {"repos", "*", "*", "collaborators", "*", "permission"}); m && method == "GET") {
    return collaborator_permission(s, (*m)[0], (*m)[1], (*m)[2]);
  }
  if (auto m = match(seg, {"repos", "*", "*", "hooks"}); m && (method == "GET" || method == "POST")) {
    return serve_hooks(s, req, (*m)[0], (*m)[1], nullptr);
  }
  if (auto m = match(seg, {"repos", "*", "*", "hooks", "*"}); m && (method == "GET" || method == "PATCH")) {
    return serve_hooks(s, req, (*m)[0], (*m)[1], &(*m)[2]);
  }
  return not_found();
}

}  // namespace flurry::fakes::detail
