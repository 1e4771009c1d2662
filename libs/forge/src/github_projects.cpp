// GitHub's repositories as a GitHub App sees them: every installation's
// repositories, each installation through its own token.
#include "api_call.hpp"
#include "flurry/forge/discovery.hpp"
#include "flurry/forge/github_status.hpp"
#include "flurry/forge/status_poster.hpp"

namespace flurry::forge {
namespace {

constexpr int kPerPage = 100;

DiscoveredRepo read_repo(const nlohmann::json& r) {
  DiscoveredRepo d;
  d.forge = "github";
  d.name = detail::str_of(r, "name");
  if (r.contains("owner")) d.owner = detail::str_of(r["owner"], "login");
  d.clone_url = detail::str_of(r, "clone_url");
  d.html_url = detail::str_of(r, "html_url");
  d.default_branch = detail::str_of(r, "default_branch");
  d.topics = detail::strings_of(r, "topics");
  d.id = detail::int_of(r, "id");
  return d;
}

}  // namespace

GitHubProjects::GitHubProjects(http::Client& client, GitHubAppTokens& tokens) : client_(client), tokens_(tokens) {}

Result<Listing> GitHubProjects::list_repos(const RepoFilter& filter) {
  // The app's installations, as the app itself.
  std::vector<std::int64_t> installations;
  for (int page = 1; page <= detail::kMaxPages; ++page) {
    auto jwt = tokens_.app_jwt();
    if (!jwt) return fail(jwt.error());
    auto a = detail::call_json(client_, "GET",
                               api(tokens_.api_url(), "/app/installations?per_page=" + std::to_string(kPerPage) + "&page=" + std::to_string(page)),
                               github_headers(*jwt), "", "GitHub");
    if (!a) return fail(a.error());
    if (!a->body.is_array()) return fail(Error::transient("GitHub answered /app/installations without a list"));
    for (const auto& i : a->body) {
      if (auto id = detail::int_of(i, "id"); id > 0) installations.push_back(id);
    }
    if (a->body.size() < static_cast<std::size_t>(kPerPage)) break;
  }

  Listing out;
  std::vector<DiscoveredRepo> all;
  for (auto installation : installations) {
    auto token = tokens_.token_for_installation(installation);
    if (!token) {
      if (token.error().code == ErrorCode::kTransient) return fail(token.error());
      // A suspended installation, say: the others still count.
      out.skipped.push_back("installation " + std::to_string(installation) + ": " + token.error().message);
      continue;
    }
    std::size_t seen = 0;
    for (int page = 1; page <= detail::kMaxPages; ++page) {
      auto a = detail::call_json(
          client_, "GET",
          api(tokens_.api_url(), "/installation/repositories?per_page=" + std::to_string(kPerPage) + "&page=" + std::to_string(page)),
          github_headers(*token), "", "GitHub");
      if (!a) return fail(a.error());
      if (!a->body.is_object() || !a->body.contains("repositories") || !a->body["repositories"].is_array()) {
        return fail(Error::transient("GitHub answered /installation/repositories without repositories"));
      }
      const auto& repos = a->body["repositories"];
      for (const auto& r : repos) {
        auto d = read_repo(r);
        if (!d.owner.empty() && !d.name.empty()) all.push_back(std::move(d));
      }
      seen += repos.size();
      const auto total = detail::int_of(a->body, "total_count");
      if (repos.size() < static_cast<std::size_t>(kPerPage) || (total > 0 && seen >= static_cast<std::size_t>(total))) break;
    }
  }
  out.repos = filter_repos(filter, std::move(all));
  return out;
}

}  // namespace flurry::forge
