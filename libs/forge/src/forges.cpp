#include "flurry/forge/forges.hpp"

#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"

#include "flurry/forge/gitea_status.hpp"
#include "flurry/forge/github_checks.hpp"
#include "flurry/forge/github_status.hpp"
#include "flurry/forge/gitlab_status.hpp"

namespace flurry::forge {
namespace {

// GitHub shows the App ID as a number; TOML may hold it as one or as a string.
std::string app_id(const Config& c, const std::string& key) {
  try {
    return c.require_string(key);
  } catch (const ConfigError&) {
    auto id = c.get_int(key, 0);
    if (id <= 0) throw ConfigError(key + " must be the app's numeric id");
    return std::to_string(id);
  }
}

bool present(const Config& c, const std::string& section) { return !c.keys(section).empty(); }

// "host[:port]" of an http(s) URL, lower case, without credentials; "" otherwise.
std::string url_host(const std::string& url) {
  const auto sep = url.find("://");
  if (sep == std::string::npos) return "";
  const auto scheme = text::to_lower(url.substr(0, sep));
  if (scheme != "https" && scheme != "http") return "";
  auto host = url.substr(sep + 3);
  host = host.substr(0, host.find_first_of("/?#"));
  if (auto at = host.rfind('@'); at != std::string::npos) host = host.substr(at + 1);
  return text::to_lower(host);
}

std::string token_from(const Config& c, const std::string& section) {
  return read_secret_file(c.require_string(section + ".token_file"));
}

}  // namespace

Forges::Forges(const Config& c, http::Client& client, Clock& clock, CheckStores checks) {
  const std::string gh = present(c, "github") ? "github" : present(c, "reporter.github") ? "reporter.github" : "";
  if (!gh.empty()) {
    const auto url = c.get_string(gh + ".api_url", "https://api.github.com");
    if (c.has(gh + ".app_id")) {
      auto app = std::make_unique<GitHubAppTokens>(
          client, clock,
          GitHubAppOptions{.api_url = url,
                           .app_id = app_id(c, gh + ".app_id"),
                           .private_key_pem = read_secret_file(c.require_string(gh + ".private_key_file"))});
      projects_["github"] = std::make_unique<GitHubProjects>(client, *app);
      github_tokens_ = std::move(app);
    } else {
      github_tokens_ = std::make_unique<FixedToken>(token_from(c, gh));
    }
    if (c.get_bool(gh + ".checks", false)) {
      if (!c.has(gh + ".app_id")) throw ConfigError(gh + ".checks needs a GitHub App (app_id and private_key_file): check runs are for apps only");
      // A service that posts nothing passes no stores and gets no poster.
      if (checks.ids && checks.logs) {
        posters_["github"] = std::make_unique<GitHubChecksClient>(client, url, *github_tokens_, clock, *checks.ids, *checks.logs);
      }
    } else {
      posters_["github"] = std::make_unique<GitHubStatusClient>(client, url, *github_tokens_, clock);
    }
    permissions_["github"] = std::make_unique<GitHubPermissions>(client, url, *github_tokens_);
    // github.com's API lives on api.github.com; Enterprise serves both from one host.
    const auto api_host = url_host(url);
    clone_hosts_["github"] = api_host == "api.github.com" ? "github.com" : api_host;
  }
  if (present(c, "gitea")) {
    const auto url = c.require_string("gitea.api_url");
    const auto token = token_from(c, "gitea");
    posters_["gitea"] = std::make_unique<GiteaStatusClient>(client, url, token, clock);
    permissions_["gitea"] = std::make_unique<GiteaPermissions>(client, url, token);
    clone_hosts_["gitea"] = url_host(url);
    fixed_tokens_["gitea"] = token;
    projects_["gitea"] = std::make_unique<GiteaProjects>(client, url, token);
  }
  if (present(c, "gitlab")) {
    const auto url = c.get_string("gitlab.api_url", "https://gitlab.com");
    const auto token = token_from(c, "gitlab");
    posters_["gitlab"] = std::make_unique<GitLabStatusClient>(client, url, token, clock);
    permissions_["gitlab"] = std::make_unique<GitLabPermissions>(client, url, token);
    clone_hosts_["gitlab"] = url_host(url);
    fixed_tokens_["gitlab"] = token;
    projects_["gitlab"] = std::make_unique<GitLabProjects>(client, url, token);
  }
}

Forges::~Forges() = default;

StatusPoster* Forges::poster(const std::string& forge) const {
  auto it = posters_.find(forge);
  return it == posters_.end() ? nullptr : it->second.get();
}

Result<std::string> Forges::clone_auth(const msg::Repo& repo, const std::string& url) const {
  auto host = clone_hosts_.find(repo.forge);
  if (host == clone_hosts_.end() || host->second.empty() || url_host(url) != host->second) return std::string();
  if (repo.forge == "github") {
    auto token = github_tokens_->token_for(repo.owner, repo.name, repo.installation_id);
    if (!token) return fail(token.error());
    return "Authorization: Basic " + crypto::base64("x-access-token:" + *token);
  }
  auto token = fixed_tokens_.find(repo.forge);
  if (token == fixed_tokens_.end()) return std::string();
  return "Authorization: Basic " + crypto::base64("oauth2:" + token->second);
}

Permissions* Forges::permissions(const std::string& forge) const {
  auto it = permissions_.find(forge);
  return it == permissions_.end() ? nullptr : it->second.get();
}

ProjectSource* Forges::projects(const std::string& forge) const {
  auto it = projects_.find(forge);
  return it == projects_.end() ? nullptr : it->second.get();
}

std::vector<std::string> Forges::discoverable() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : projects_) out.push_back(name);
  return out;
}

std::vector<std::string> Forges::configured() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : posters_) out.push_back(name);
  return out;
}

}  // namespace flurry::forge
