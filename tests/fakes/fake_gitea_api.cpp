// The Gitea/Forgejo REST API (/api/v1) as FakeForge answers it: commit
// statuses, collaborator permissions, the user's repositories (paged),
// topics, repository webhooks, and the signed-in user and repository reads
// of signing in (fake_oauth_api.cpp).
#include <nlohmann/json.hpp>

#include <algorithm>

#include "fake_forge_state.hpp"
#include "fake_forge_wire.hpp"

namespace flurry::fakes::detail {
namespace {

using nlohmann::json;

http::Response not_found() { return message_answer(404, "The target couldn't be found."); }
http::Response unprocessable(const std::string& message) { return message_answer(422, message); }

json repository_json(const ForgeState& s, const Repository& r) {
  return {{"id", r.id},
          {"name", r.repo},
          {"full_name", r.owner + "/" + r.repo},
          {"owner", {{"login", r.owner}, {"username", r.owner}}},
          {"private", s.is_private(kGitea, r.owner, r.repo)},
          {"internal", false},
          {"clone_url", r.clone_url},
          {"html_url", s.base_url + "/" + r.owner + "/" + r.repo},
          {"default_branch", r.default_branch},
          {"topics", r.topics}};
}

http::Response post_status(ForgeState& s, const http::Request& req, const std::string& owner, const std::string& repo,
                           const std::string& sha) {
  auto p = body_params(req);
  if (p.is_discarded()) return unprocessable("invalid JSON body");
  auto state = text_of(p, "state");
  if (!is_one_of(state, {"pending", "success", "error", "failure", "warning"})) return unprocessable("invalid state '" + state + "'");
  auto context = text_of(p, "context");
  if (context.empty()) context = "default";
  PostedStatus st{kGitea, owner, repo, sha, state, context, text_of(p, "description"), text_of(p, "target_url")};
  s.statuses.push_back(st);
  return json_answer(201, {{"id", s.next_id++},
                           {"status", st.state},
                           {"context", st.context},
                           {"description", st.description},
                           {"target_url", st.target_url},
                           {"url", s.base_url + "/api/v1/repos/" + owner + "/" + repo + "/statuses/" + sha}});
}

http::Response user_repos(const ForgeState& s, const http::Request& req) {
  auto repos = s.repositories_of(kGitea);
  // Gitea's defaults: 30 per page unless asked, never more than 50.
  auto page = page_of(repos.size(), parse_query(req.query), "limit", 30, 50);
  json list = json::array();
  for (auto i = page.begin; i < page.end; ++i) list.push_back(repository_json(s, *repos[i]));
  std::map<std::string, std::string> headers = {{"x-total-count", std::to_string(repos.size())}};
  if (auto link = link_header(s.base_url + "/api/v1/user/repos", "limit", page); !link.empty()) headers["link"] = link;
  return json_answer(200, list, headers);
}

json hook_json(const Hook& h) {
  return {{"id", h.id},
          {"type", "gitea"},
          {"active", h.active},
          {"events", h.events},
          {"config", {{"url", h.url}, {"content_type", h.content_type}}}};  // the secret is never shown back
}

// The hook fields of a create (type, config with url and content_type
// required) or an edit; Gitea's 422 when not valid.
std::optional<http::Response> apply_hook(Hook& h, const json& p, bool create) {
  if (create && !is_one_of(text_of(p, "type"), {"gitea", "forgejo", "gogs"})) return unprocessable("Invalid hook type");
  if (p.contains("config") && !p["config"].is_object()) return unprocessable("config must be an object");
  if (p.contains("config")) {
    const auto& c = p["config"];
    if (c.contains("url")) h.url = text_of(c, "url");
    if (c.contains("content_type")) h.content_type = text_of(c, "content_type");
    if (c.contains("secret")) h.secret = text_of(c, "secret");
  }
  if (h.url.empty()) return unprocessable("Missing config option: url");
  if (h.content_type.empty()) return unprocessable("Missing config option: content_type");
  if (!is_one_of(h.content_type, {"json", "form"})) return unprocessable("Invalid content type");
  if (p.contains("events")) h.events = strings_of(p, "events");
  else if (create) h.events = {"push"};
  h.active = flag_of(p, "active", create ? false : h.active);  // Gitea creates hooks inactive unless told
  return std::nullopt;
}

http::Response serve_hooks(ForgeState& s, const http::Request& req, const std::string& owner, const std::string& repo,
                           const std::string* id_text) {
  if (!id_text && req.method == "GET") {
    json list = json::array();
    for (const auto* h : s.hooks_of(kGitea, owner, repo)) list.push_back(hook_json(*h));
    return json_answer(200, list);
  }
  Hook* existing = nullptr;
  if (id_text) {
    auto id = to_int(*id_text);
    existing = id ? s.find_hook(kGitea, owner, repo, *id) : nullptr;
    if (!existing) return not_found();
    if (req.method == "GET") return json_answer(200, hook_json(*existing));
  }
  auto p = body_params(req);
  if (p.is_discarded()) return unprocessable("invalid JSON body");
  Hook hook = existing ? *existing : Hook{kGitea, owner, repo};
  if (auto refused = apply_hook(hook, p, existing == nullptr)) return *refused;
  if (existing) {
    *existing = hook;
    return json_answer(200, hook_json(hook));
  }
  hook.id = s.next_id++;
  s.hooks.push_back(hook);
  return json_answer(201, hook_json(hook));
}

}  // namespace

http::Response serve_gitea(ForgeState& s, const http::Request& req) {
  auto seg = *segments_after(req.path, "/api/v1");
  const auto& method = req.method;
  if (const auto* user = s.user_token(kGitea, req)) {  // a signed-in user's token
    if (method == "GET" && match(seg, {"user"})) return user_answer(kGitea, user);
    if (auto m = match(seg, {"repos", "*", "*"}); m && method == "GET") {
      auto repo = s.repository_or_default(kGitea, (*m)[0], (*m)[1]);
      return repository_answer(s, kGitea, repo, user, repository_json(s, repo));
    }
  }
  auto want = s.token(kGitea);
  if (!want.empty() && authorization_token(req) != want) return message_answer(401, "invalid username, password or token");
  if (method == "GET" && match(seg, {"user"})) return user_answer(kGitea, nullptr);
  if (auto m = match(seg, {"repos", "*", "*"}); m && method == "GET") {
    auto repo = s.repository_or_default(kGitea, (*m)[0], (*m)[1]);
    return repository_answer(s, kGitea, repo, nullptr, repository_json(s, repo));
  }
  if (auto m = match(seg, {"repos", "*", "*", "statuses", "*"}); m && method == "POST") return post_status(s, req, (*m)[0], (*m)[1], (*m)[2]);
  if (auto m = match(seg, {"repos", "*", "*", "collaborators", "*", "permission"}); m && method == "GET") {
    auto role = s.permission(kGitea, (*m)[0], (*m)[1], (*m)[2]);
    if (role.empty()) role = "none";
    return json_answer(200, {{"permission", role}, {"role_name", role}, {"user", {{"login", (*m)[2]}, {"username", (*m)[2]}}}});
  }
  if (method == "GET" && match(seg, {"user", "repos"})) return user_repos(s, req);
  if (auto m = match(seg, {"repos", "*", "*", "topics"}); m && method == "GET") {
    const auto* repo = s.find_repository(kGitea, (*m)[0], (*m)[1]);
    if (!repo) return not_found();
    return json_answer(200, {{"topics", repo->topics}});
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
