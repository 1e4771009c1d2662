// GitLab's projects the token's user is a member of, by topic, and
// project webhooks.
#include <algorithm>

#include "api_call.hpp"
#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"
#include "flurry/forge/discovery.hpp"
#include "flurry/forge/status_poster.hpp"

namespace flurry::forge {
namespace {

using nlohmann::json;

constexpr int kPerPage = 100;

DiscoveredRepo read_project(const json& p) {
  DiscoveredRepo d;
  d.forge = "gitlab";
  // As webhook-ingest names it: owner the namespace path, name the last
  // component of path_with_namespace.
  const auto path = detail::str_of(p, "path_with_namespace");
  if (auto slash = path.rfind('/'); slash != std::string::npos && slash > 0 && slash + 1 < path.size()) {
    d.owner = path.substr(0, slash);
    d.name = path.substr(slash + 1);
  }
  d.clone_url = detail::str_of(p, "http_url_to_repo");
  d.html_url = detail::str_of(p, "web_url");
  d.default_branch = detail::str_of(p, "default_branch");
  d.topics = detail::strings_of(p, "topics");
  if (d.topics.empty()) d.topics = detail::strings_of(p, "tag_list");  // before GitLab 14.5
  d.id = detail::int_of(p, "id");
  return d;
}

json hook_body(const HookSpec& spec) {
  return {{"url", spec.url},
          {"token", spec.secret},
          {"push_events", true},
          {"tag_push_events", true},
          {"merge_requests_events", true},
          {"note_events", true},
          {"enable_ssl_verification", true}};
}

}  // namespace

GitLabProjects::GitLabProjects(http::Client& client, std::string api_url, std::string token)
    : client_(client), api_url_(std::move(api_url)), token_(std::move(token)) {
  log::register_secret(token_);
}

std::map<std::string, std::string> GitLabProjects::headers() const { return {{"PRIVATE-TOKEN", token_}}; }

std::string GitLabProjects::hooks_url(const DiscoveredRepo& repo) const {
  const auto project = repo.id > 0 ? std::to_string(repo.id) : path_segment(repo.full_name());
  return api(api_url_, "/api/v4/projects/" + project + "/hooks");
}

Result<Listing> GitLabProjects::list_repos(const RepoFilter& filter) {
  std::string query = "/api/v4/projects?membership=true";
  if (!filter.topic.empty()) query += "&topic=" + path_segment(filter.topic);
  query += "&per_page=" + std::to_string(kPerPage);
  std::vector<DiscoveredRepo> all;
  for (int page = 1; page <= detail::kMaxPages; ++page) {
    auto a = detail::call_json(client_, "GET", api(api_url_, query + "&page=" + std::to_string(page)), headers(), "", "GitLab");
    if (!a) return fail(a.error());
    if (!a->body.is_array()) return fail(Error::transient("GitLab answered /projects without a list"));
    for (const auto& p : a->body) {
      auto d = read_project(p);
      if (!d.owner.empty()) all.push_back(std::move(d));
    }
    // X-Next-Page is empty on the last page (GitLab leaves out only the
    // totals for big listings); without it, a short page is the last.
    const auto& headers = a->response.headers;
    const bool has_next_header = std::any_of(headers.begin(), headers.end(), [](const auto& h) {
      return h.first.size() == 11 && text::to_lower(h.first) == "x-next-page";
    });
    if (a->body.empty() || (has_next_header ? a->response.header("x-next-page").empty()
                                            : a->body.size() < static_cast<std::size_t>(kPerPage))) {
      break;
    }
  }
  Listing out;
  // The topic was asked of GitLab; both parts are checked here again, the
  // same way on every forge.
  out.repos = filter_repos(filter, std::move(all));
  return out;
}

Result<std::vector<RepoHook>> GitLabProjects::list_hooks(const DiscoveredRepo& repo) {
  auto a = detail::call_json(client_, "GET", hooks_url(repo), headers(), "", "GitLab");
  if (!a) return fail(a.error());
  if (!a->body.is_array()) return fail(Error::transient("GitLab answered the hook list without a list"));
  std::vector<RepoHook> out;
  for (const auto& h : a->body) {
    RepoHook hook;
    hook.id = detail::int_of(h, "id");
    hook.url = detail::str_of(h, "url");
    if (h.is_object()) {
      for (const auto& [key, value] : h.items()) {
        if (key.size() > 7 && key.compare(key.size() - 7, 7, "_events") == 0 && value.is_boolean() && value.get<bool>()) {
          hook.events.push_back(key);
        }
      }
    }
    if (hook.id > 0) out.push_back(std::move(hook));
  }
  return out;
}

Result<std::int64_t> GitLabProjects::create_hook(const DiscoveredRepo& repo, const HookSpec& spec) {
  auto a = detail::call_json(client_, "POST", hooks_url(repo), headers(), detail::body_text(hook_body(spec)), "GitLab");
  if (!a) return fail(a.error());
  auto id = detail::int_of(a->body, "id");
  if (id <= 0) return fail(Error::transient("GitLab created a hook without saying its id"));
  return id;
}

Result<void> GitLabProjects::update_hook(const DiscoveredRepo& repo, std::int64_t hook_id, const HookSpec& spec) {
  auto a = detail::call_json(client_, "PUT", hooks_url(repo) + "/" + std::to_string(hook_id), headers(), detail::body_text(hook_body(spec)),
                             "GitLab");
  if (!a) return fail(a.error());
  return {};
}

}  // namespace flurry::forge
