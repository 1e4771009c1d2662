// Gitea's and Forgejo's repositories as the token's user sees them, their
// topics, and repository webhooks.
#include "api_call.hpp"
#include "flurry/core/log.hpp"
#include "flurry/forge/discovery.hpp"
#include "flurry/forge/status_poster.hpp"

namespace flurry::forge {
namespace {

using nlohmann::json;

constexpr int kLimit = 50;  // Gitea's largest page by default

DiscoveredRepo read_repo(const json& r) {
  DiscoveredRepo d;
  d.forge = "gitea";
  d.name = detail::str_of(r, "name");
  if (r.contains("owner")) {
    d.owner = detail::str_of(r["owner"], "login");
    if (d.owner.empty()) d.owner = detail::str_of(r["owner"], "username");
  }
  d.clone_url = detail::str_of(r, "clone_url");
  d.html_url = detail::str_of(r, "html_url");
  d.default_branch = detail::str_of(r, "default_branch");
  d.topics = detail::strings_of(r, "topics");
  d.id = detail::int_of(r, "id");
  return d;
}

// The number in a header, or -1 when it has none.
long long header_number(const http::Response& r, const std::string& name) {
  auto v = r.header(name);
  if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(v);
}

json hook_body(const HookSpec& spec, const std::vector<std::string>& events, bool create) {
  json body = {{"config", {{"url", spec.url}, {"content_type", "json"}, {"secret", spec.secret}}},
               {"events", events},
               {"active", true}};
  if (create) {
    body["type"] = "gitea";  // Forgejo takes it too
    body["branch_filter"] = "*";
  }
  return body;
}

}  // namespace

GiteaProjects::GiteaProjects(http::Client& client, std::string api_url, std::string token)
    : client_(client), api_url_(std::move(api_url)), token_(std::move(token)) {
  log::register_secret(token_);
}

std::map<std::string, std::string> GiteaProjects::headers() const { return {{"Authorization", "token " + token_}}; }

std::string GiteaProjects::hooks_url(const DiscoveredRepo& repo) const {
  return api(api_url_, "/api/v1/repos/" + path_segment(repo.owner) + "/" + path_segment(repo.name) + "/hooks");
}

Result<Listing> GiteaProjects::list_repos(const RepoFilter& filter) {
  std::vector<DiscoveredRepo> all;
  std::size_t seen = 0;
  for (int page = 1; page <= detail::kMaxPages; ++page) {
    auto a = detail::call_json(client_, "GET",
                               api(api_url_, "/api/v1/user/repos?page=" + std::to_string(page) + "&limit=" + std::to_string(kLimit)),
                               headers(), "", "Gitea");
    if (!a) return fail(a.error());
    if (!a->body.is_array()) return fail(Error::transient("Gitea answered /user/repos without a list"));
    for (const auto& r : a->body) {
      auto d = read_repo(r);
      if (!d.owner.empty() && !d.name.empty()) all.push_back(std::move(d));
    }
    seen += a->body.size();
    // X-Total-Count says when the last page came; without it, a short
    // page (the server may cap pages below our limit, so only an empty one
    // is certain when it does).
    const auto total = header_number(a->response, "x-total-count");
    if (a->body.empty() || (total >= 0 && seen >= static_cast<std::size_t>(total)) ||
        (total < 0 && a->body.size() < static_cast<std::size_t>(kLimit))) {
      break;
    }
  }
  Listing out;
  for (auto& d : all) {
    // One call per repository for its topics: only for those the cheap
    // allow-lists keep, and only when a topic decides.
    if (!allowlisted(filter, d.owner, d.name)) continue;
    if (!filter.topic.empty()) {
      auto t = detail::call_json(
          client_, "GET", api(api_url_, "/api/v1/repos/" + path_segment(d.owner) + "/" + path_segment(d.name) + "/topics"), headers(),
          "", "Gitea");
      if (!t) {
        if (t.error().code == ErrorCode::kTransient) return fail(t.error());
        out.skipped.push_back(d.full_name() + ": " + t.error().message);
        continue;
      }
      d.topics = detail::strings_of(t->body, "topics");
      if (!has_topic(filter, d.topics)) continue;
    }
    out.repos.push_back(std::move(d));
  }
  return out;
}

Result<std::vector<RepoHook>> GiteaProjects::list_hooks(const DiscoveredRepo& repo) {
  auto a = detail::call_json(client_, "GET", hooks_url(repo), headers(), "", "Gitea");
  if (!a) return fail(a.error());
  if (!a->body.is_array()) return fail(Error::transient("Gitea answered the hook list without a list"));
  std::vector<RepoHook> out;
  for (const auto& h : a->body) {
    RepoHook hook;
    hook.id = detail::int_of(h, "id");
    if (h.is_object() && h.contains("config")) hook.url = detail::str_of(h["config"], "url");
    if (h.is_object() && h.contains("active") && h["active"].is_boolean()) hook.active = h["active"].get<bool>();
    hook.events = detail::strings_of(h, "events");
    if (hook.id > 0) out.push_back(std::move(hook));
  }
  return out;
}

Result<std::int64_t> GiteaProjects::create_hook(const DiscoveredRepo& repo, const HookSpec& spec) {
  auto a = detail::call_json(client_, "POST", hooks_url(repo), headers(), detail::body_text(hook_body(spec, hook_events(), true)), "Gitea");
  if (!a) return fail(a.error());
  auto id = detail::int_of(a->body, "id");
  if (id <= 0) return fail(Error::transient("Gitea created a hook without saying its id"));
  return id;
}

Result<void> GiteaProjects::update_hook(const DiscoveredRepo& repo, std::int64_t hook_id, const HookSpec& spec) {
  auto a = detail::call_json(client_, "PATCH", hooks_url(repo) + "/" + std::to_string(hook_id), headers(),
                             detail::body_text(hook_body(spec, hook_events(), false)), "Gitea");
  if (!a) return fail(a.error());
  return {};
}

}  // namespace flurry::forge
