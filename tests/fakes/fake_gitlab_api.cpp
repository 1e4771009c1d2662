// The GitLab REST API (/api/v4) as FakeForge answers it: commit statuses
// with GitLab's state machine, project members and users, the member's
// projects (paged, by topic), project webhooks, and the signed-in user and
// project reads of signing in (fake_oauth_api.cpp). A project is addressed
// by its numeric id or its URL-encoded path ("group%2Fsub%2Fproj"), which
// reaches the handler decoded.
#include <nlohmann/json.hpp>

#include <algorithm>

#include "fake_forge_state.hpp"
#include "fake_forge_wire.hpp"
#include "flurry/core/text.hpp"

namespace flurry::fakes::detail {
namespace {

using nlohmann::json;

// The hook flags GitLab knows; push_events is the only one on by default.
constexpr std::string_view kHookEvents[] = {"push_events",         "tag_push_events",  "merge_requests_events",
                                            "note_events",         "issues_events",    "confidential_issues_events",
                                            "confidential_note_events", "job_events", "pipeline_events",
                                            "wiki_page_events",    "deployment_events", "releases_events"};

http::Response not_found(const std::string& what) { return message_answer(404, "404 " + what + " Not Found"); }
http::Response bad_request(const std::string& error) { return json_answer(400, {{"error", error}}); }

struct Project {
  std::string owner;  // namespace path
  std::string repo;   // last path component
  const Repository* known = nullptr;
  std::string path() const { return owner + "/" + repo; }
};

// A numeric id of a project added, or any "namespace/project" path, given
// decoded or still encoded.
std::optional<Project> resolve_project(const ForgeState& s, const std::string& ref) {
  auto path = percent_decode(ref);
  if (auto id = to_int(path)) {
    for (const auto* r : s.repositories_of(kGitLab)) {
      if (r->id == *id) return Project{r->owner, r->repo, r};
    }
    return std::nullopt;
  }
  auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == path.size()) return std::nullopt;
  Project p{path.substr(0, slash), path.substr(slash + 1)};
  p.known = s.find_repository(kGitLab, p.owner, p.repo);
  return p;
}

// A project endpoint split into the project reference and what follows it
// (the reference may itself have slashes once decoded).
struct ProjectCall {
  std::string project_ref;
  std::vector<std::string> tail;  // e.g. {"statuses", sha}
};

std::optional<ProjectCall> split_project_call(const std::vector<std::string>& seg) {
  if (seg.size() < 3 || seg[0] != "projects") return std::nullopt;
  const auto n = seg.size();
  std::size_t tail_len = 0;
  if (n >= 5 && seg[n - 3] == "members" && seg[n - 2] == "all") tail_len = 3;
  else if (n >= 4 && seg[n - 2] == "statuses") tail_len = 2;
  else if (n >= 4 && seg[n - 2] == "hooks" && to_int(seg[n - 1])) tail_len = 2;
  else if (seg[n - 1] == "hooks") tail_len = 1;
  else return std::nullopt;
  ProjectCall call;
  for (std::size_t i = 1; i < n - tail_len; ++i) call.project_ref += (i > 1 ? "/" : "") + seg[i];
  call.tail.assign(seg.end() - static_cast<std::ptrdiff_t>(tail_len), seg.end());
  return call;
}

// GitLab reuses a sha+name's status while it is pending or running (and
// starts a new one once it finished), so only transitions out of those two
// can be refused: "pending" again (enqueue), "running" again (run), or
// "skipped" while running (skip).
std::optional<std::string> refused_transition(const std::string& current, const std::string& next) {
  if (current != "pending" && current != "running") return std::nullopt;
  std::string event;
  if (next == "pending") event = "enqueue";
  else if (next == "running" && current == "running") event = "run";
  else if (next == "skipped" && current == "running") event = "skip";
  else return std::nullopt;
  return "Cannot transition status via :" + event + " from :" + current + " (Reason(s): Status cannot transition via \"" +
         event + "\")";
}

http::Response post_status(ForgeState& s, const http::Request& req, const Project& project, const std::string& sha) {
  // Grape takes parameters from the query string and the body alike.
  json p = json::object();
  for (const auto& [k, v] : parse_query(req.query)) p[k] = v;
  auto body = body_params(req);
  if (body.is_discarded()) return bad_request("body is not valid JSON");
  for (const auto& [k, v] : body.items()) p[k] = v;
  auto state = text_of(p, "state");
  if (state.empty()) return bad_request("state is missing");
  if (!is_one_of(state, {"pending", "running", "success", "failed", "canceled", "skipped"})) {
    return bad_request("state does not have a valid value");
  }
  auto name = text_of(p, "name");
  if (name.empty()) name = text_of(p, "context");
  if (name.empty()) name = "default";
  std::string current;
  for (const auto& st : s.statuses) {
    if (st.forge == kGitLab && st.owner == project.owner && st.repo == project.repo && st.sha == sha && st.context == name) {
      current = st.state;
    }
  }
  if (auto refusal = refused_transition(current, state)) return message_answer(400, *refusal);
  PostedStatus st{kGitLab, project.owner, project.repo, sha, state, name, text_of(p, "description"), text_of(p, "target_url")};
  s.statuses.push_back(st);
  return json_answer(201, {{"id", s.next_id++},
                           {"sha", sha},
                           {"ref", text_of(p, "ref")},
                           {"status", state},
                           {"name", name},
                           {"description", st.description},
                           {"target_url", st.target_url},
                           {"allow_failure", false}});
}

http::Response member(const ForgeState& s, const Project& project, const std::string& user_id) {
  auto id = to_int(user_id);
  for (const auto& [username, uid] : s.gitlab_users) {
    if (!id || uid != *id) continue;
    auto level = s.permission(kGitLab, project.owner, project.repo, username);
    if (level.empty()) break;
    return json_answer(200, {{"id", uid}, {"username", username}, {"name", username}, {"state", "active"},
                             {"access_level", *to_int(level)}});
  }
  return message_answer(404, "404 Not found");
}

http::Response users(const ForgeState& s, const http::Request& req) {
  auto wanted = text::to_lower(parse_query(req.query)["username"]);
  json list = json::array();
  for (const auto& [username, id] : s.gitlab_users) {
    if (wanted.empty() || text::to_lower(username) == wanted) {
      list.push_back({{"id", id}, {"username", username}, {"name", username}, {"state", "active"}});
    }
  }
  return json_answer(200, list);
}

json project_json(const ForgeState& s, const Repository& r) {
  auto last = r.owner.substr(r.owner.rfind('/') + 1);
  return {{"id", r.id},
          {"name", r.repo},
          {"path", r.repo},
          {"path_with_namespace", r.owner + "/" + r.repo},
          {"namespace", {{"full_path", r.owner}, {"path", last}, {"name", last}, {"kind", "group"}}},
          {"http_url_to_repo", r.clone_url},
          {"web_url", s.base_url + "/" + r.owner + "/" + r.repo},
          {"default_branch", r.default_branch},
          {"topics", r.topics},
          {"tag_list", r.topics},
          {"visibility", s.is_private(kGitLab, r.owner, r.repo) ? "private" : "public"}};
}

// Every project added counts as one the caller is a member of; `topic`
// (comma-separated) keeps those with all of the topics.
http::Response projects(const ForgeState& s, const http::Request& req) {
  auto query = parse_query(req.query);
  std::vector<std::string> topics;
  for (auto& t : text::split(query["topic"], ',')) {
    if (!text::trim(t).empty()) topics.push_back(text::trim(t));
  }
  std::vector<const Repository*> matching;
  for (const auto* r : s.repositories_of(kGitLab)) {
    bool all = std::all_of(topics.begin(), topics.end(),
                           [&](const std::string& t) { return std::count(r->topics.begin(), r->topics.end(), t) > 0; });
    if (all) matching.push_back(r);
  }
  auto page = page_of(matching.size(), query, "per_page", 20, 100);
  json list = json::array();
  for (auto i = page.begin; i < page.end; ++i) list.push_back(project_json(s, *matching[i]));
  std::map<std::string, std::string> headers = {{"x-total", std::to_string(matching.size())},
                                                {"x-total-pages", std::to_string(page.pages)},
                                                {"x-page", std::to_string(page.page)},
                                                {"x-per-page", std::to_string(page.size)},
                                                {"x-next-page", page.page < page.pages ? std::to_string(page.page + 1) : ""},
                                                {"x-prev-page", page.page > 1 ? std::to_string(page.page - 1) : ""}};
  return json_answer(200, list, headers);
}

json hook_json(const Hook& h, const Project& project) {
  json j = {{"id", h.id}, {"url", h.url}, {"project_id", project.known ? project.known->id : 0}, {"enable_ssl_verification", true}};
  for (auto e : kHookEvents) j[std::string(e)] = std::count(h.events.begin(), h.events.end(), e) > 0;
  return j;  // the token is never shown back
}

http::Response serve_hooks(ForgeState& s, const http::Request& req, const Project& project, const std::string* id_text) {
  if (!id_text && req.method == "GET") {
    json list = json::array();
    for (const auto* h : s.hooks_of(kGitLab, project.owner, project.repo)) list.push_back(hook_json(*h, project));
    return json_answer(200, list);
  }
  Hook* existing = nullptr;
  if (id_text) {
    existing = s.find_hook(kGitLab, project.owner, project.repo, *to_int(*id_text));
    if (!existing) return not_found("Hook");
    if (req.method == "GET") return json_answer(200, hook_json(*existing, project));
  }
  auto p = body_params(req);
  if (p.is_discarded()) return bad_request("body is not valid JSON");
  Hook hook = existing ? *existing : Hook{kGitLab, project.owner, project.repo};
  if (p.contains("url")) hook.url = text_of(p, "url");
  if (hook.url.empty()) return bad_request("url is missing");
  if (p.contains("token")) hook.secret = text_of(p, "token");
  std::vector<std::string> events;
  for (auto e : kHookEvents) {
    std::string key(e);
    bool was = std::count(hook.events.begin(), hook.events.end(), key) > 0;
    if (flag_of(p, key, existing ? was : key == "push_events")) events.push_back(key);
  }
  hook.events = events;
  if (existing) {
    *existing = hook;
    return json_answer(200, hook_json(hook, project));
  }
  hook.id = s.next_id++;
  s.hooks.push_back(hook);
  return json_answer(201, hook_json(hook, project));
}

// GET /projects/<id or path>: the project, as `user` may see it (null:
// Flurry's credentials).
http::Response project(const ForgeState& s, const std::vector<std::string>& seg, const UserToken* user) {
  std::string ref;
  for (std::size_t i = 1; i < seg.size(); ++i) ref += (i > 1 ? "/" : "") + seg[i];
  auto p = resolve_project(s, ref);
  if (!p) return not_found("Project");
  auto repo = p->known ? *p->known : s.repository_or_default(kGitLab, p->owner, p->repo);
  return repository_answer(s, kGitLab, repo, user, project_json(s, repo));
}

bool token_ok(const ForgeState& s, const http::Request& req) {
  auto want = s.token(kGitLab);
  if (want.empty()) return true;
  auto given = req.header("private-token");
  if (given.empty() && text::starts_with(req.header("authorization"), "Bearer ")) given = authorization_token(req);
  return given == want;
}

}  // namespace

http::Response serve_gitlab(ForgeState& s, const http::Request& req) {
  auto seg = *segments_after(req.path, "/api/v4");
  const auto& method = req.method;
  const auto* user = s.user_token(kGitLab, req);  // a signed-in user's token
  if (!user && !token_ok(s, req)) return message_answer(401, "401 Unauthorized");
  if (method == "GET" && match(seg, {"user"})) return user_answer(kGitLab, user);
  if (method == "GET" && match(seg, {"projects"})) return projects(s, req);
  if (method == "GET" && match(seg, {"users"})) return users(s, req);
  auto call = split_project_call(seg);
  if (!call && method == "GET" && seg.size() >= 2 && seg[0] == "projects") return project(s, seg, user);
  if (!call) return message_answer(404, "404 Not Found");
  auto project = resolve_project(s, call->project_ref);
  if (!project) return not_found("Project");
  const auto& tail = call->tail;
  if (tail[0] == "statuses" && method == "POST") return post_status(s, req, *project, tail[1]);
  if (tail[0] == "members" && method == "GET") return member(s, *project, tail[2]);
  if (tail[0] == "hooks" && tail.size() == 1 && (method == "GET" || method == "POST")) return serve_hooks(s, req, *project, nullptr);
  if (tail[0] == "hooks" && tail.size() == 2 && (method == "GET" || method == "PUT")) return serve_hooks(s, req, *project, &tail[1]);
  return message_answer(405, "405 Method Not Allowed");
}

}  // namespace flurry::fakes::detail
