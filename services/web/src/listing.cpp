#include "listing.hpp"

#include <charconv>

#include "api_codec.hpp"
#include "flurry/core/text.hpp"
#include "flurry/history/history.hpp"
#include "query.hpp"

namespace flurry::web {
namespace {

http::Response json_answer(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}
http::Response error(int status, const std::string& why) { return json_answer(status, encode_error(why)); }
http::Response store_error(const Error& e) { return error(503, "state store unavailable: " + e.message); }

msg::Repo repo_of(const state::CatalogProject& p) {
  return {p.key.forge, p.key.owner, p.key.repo, "", p.html_url, p.default_branch};
}

// The eval `id`, if there is one.
Result<std::optional<state::EvalRecord>> eval_of(ListingPorts ports, const std::string& id) {
  if (id.empty()) return std::optional<state::EvalRecord>();
  return ports.state.get_eval(id);
}

// The project named by the query's forge, owner and repo, if the asker may
// read it; an answer to send instead otherwise.
struct Located {
  std::optional<state::CatalogProject> project;
  std::optional<http::Response> instead;
};
Located locate(const std::map<std::string, std::string>& q, ListingPorts ports, const ReadCheck& may_read) {
  auto get = [&](const char* k) { return q.count(k) ? q.at(k) : std::string(); };
  const state::ProjectKey key{get("forge"), get("owner"), get("repo")};
  if (key.forge.empty() || key.owner.empty() || key.repo.empty()) return {{}, error(400, "forge, owner and repo are required")};
  auto p = ports.catalog.project(key);
  if (!p) return {{}, store_error(p.error())};
  if (!p->has_value()) return {{}, error(404, "no such project")};
  auto readable = may_read(repo_of(**p));
  if (!readable) return {{}, error(503, "cannot tell who may read this project: " + readable.error().message)};
  if (!*readable) return {{}, error(404, "no such project")};
  return {*p, std::nullopt};
}

using PrivateCheck = std::function<bool(const msg::Repo&)>;

http::Response projects(ListingPorts ports, const ReadCheck& may_read, const PrivateCheck& is_private) {
  auto listed = ports.catalog.projects(kMaxProjects);
  if (!listed) return store_error(listed.error());
  std::vector<ProjectView> out;
  for (const auto& p : *listed) {
    auto readable = may_read(repo_of(p));
    if (!readable || !*readable) continue;  // unknown is no: private until shown otherwise
    auto head = ports.catalog.ref(p.key, "refs/heads/" + p.default_branch);
    if (!head) return store_error(head.error());
    auto latest = eval_of(ports, *head && head->has_value() ? (**head).latest_eval : "");
    if (!latest) return store_error(latest.error());
    out.push_back({p, *latest, is_private(repo_of(p))});
  }
  return json_answer(200, encode_projects(out));
}

http::Response project(const std::map<std::string, std::string>& q, ListingPorts ports, const ReadCheck& may_read,
                       const PrivateCheck& is_private) {
  auto at = locate(q, ports, may_read);
  if (at.instead) return *at.instead;
  auto refs = ports.catalog.refs(at.project->key, kMaxRefs);
  if (!refs) return store_error(refs.error());
  std::vector<RefView> views;
  std::optional<state::EvalRecord> default_latest;
  for (const auto& r : *refs) {
    auto latest = eval_of(ports, r.latest_eval);
    if (!latest) return store_error(latest.error());
    if (r.ref == "refs/heads/" + at.project->default_branch) default_latest = *latest;
    views.push_back({r, *latest});
  }
  return json_answer(200, encode_project({*at.project, default_latest, is_private(repo_of(*at.project))}, views));
}

std::size_t limit_of(const std::map<std::string, std::string>& q) {
  std::size_t n = 30;
  if (auto it = q.find("limit"); it != q.end()) {
    std::size_t v = 0;
    auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
    if (ec == std::errc() && p == it->second.data() + it->second.size() && v > 0) n = v;
  }
  return std::min(n, kMaxEvalsPerPage);
}

http::Response evals(const std::map<std::string, std::string>& q, ListingPorts ports, const ReadCheck& may_read) {
  auto at = locate(q, ports, may_read);
  if (at.instead) return *at.instead;
  const auto ref = q.count("ref") ? q.at("ref") : std::string();
  auto page = ports.catalog.evals(at.project->key, ref, q.count("cursor") ? q.at("cursor") : "", limit_of(q));
  if (!page && page.error().code == ErrorCode::kRejected) return error(400, "cursor: " + page.error().message);
  if (!page) return store_error(page.error());
  std::vector<state::EvalRecord> out;
  for (const auto& id : page->eval_ids) {
    auto e = ports.state.get_eval(id);
    if (!e) return store_error(e.error());
    if (e->has_value()) out.push_back(**e);
  }
  return json_answer(200, encode_eval_page(out, page->next_cursor));
}

// GET /api/evals/<eval>/compare and /effects.
std::optional<http::Response> about_eval(const std::string& path, ListingPorts ports, const ReadCheck& may_read) {
  const std::string prefix = "/api/evals/";
  if (!text::starts_with(path, prefix)) return std::nullopt;
  const auto rest = path.substr(prefix.size());
  const auto slash = rest.find('/');
  if (slash == std::string::npos) return std::nullopt;
  const auto id = rest.substr(0, slash), what = rest.substr(slash + 1);
  if ((what != "compare" && what != "effects") || id.empty() || id.size() > 200) return std::nullopt;
  auto e = ports.state.get_eval(id);
  if (!e) return store_error(e.error());
  if (!e->has_value()) return error(404, "no eval " + id);
  auto readable = may_read((**e).repo);
  if (!readable) return error(503, "cannot tell who may read this project: " + readable.error().message);
  if (!*readable) return error(404, "no eval " + id);
  if (what == "effects") {
    auto fx = ports.state.list_effects(id);
    if (!fx) return store_error(fx.error());
    return json_answer(200, encode_effects(*fx));
  }
  auto c = history::compare({ports.state, ports.catalog}, **e);
  if (!c) return store_error(c.error());
  return json_answer(200, encode_comparison(*c));
}

}  // namespace

std::optional<http::Response> handle_listing(const http::Request& req, ListingPorts ports, const ReadCheck& may_read,
                                             const PublicCheck& is_public) {
  if (req.method != "GET") return std::nullopt;
  // A project one may read but not everyone: private (unknown counts as private).
  auto is_private = [&](const msg::Repo& repo) {
    if (!is_public) return false;
    auto pub = is_public(repo);
    return !pub || !*pub;
  };
  const bool project_route = req.path == "/api/project" || req.path == "/api/project/evals";
  if (req.path == "/api/projects") return projects(ports, may_read, is_private);
  if (project_route) {
    auto q = parse_query(req.query);
    if (!q) return error(400, "malformed query");
    return req.path == "/api/project" ? project(*q, ports, may_read, is_private) : evals(*q, ports, may_read);
  }
  return about_eval(req.path, ports, may_read);
}

}  // namespace flurry::web
