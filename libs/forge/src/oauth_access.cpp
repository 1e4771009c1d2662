#include "flurry/forge/oauth_access.hpp"

#include <nlohmann/json.hpp>

#include <optional>

#include "flurry/forge/github_status.hpp"
#include "flurry/forge/status_poster.hpp"

namespace flurry::forge {
namespace {

using json = nlohmann::json;

// The repository as the forge shows it to Flurry; nullopt when it does not
// (404, or a 403 that is no rate limit). Errors name neither token nor body.
Result<std::optional<json>> read_repo(http::Client& client, const std::string& url, std::map<std::string, std::string> headers,
                                      const std::string& forge, const std::string& full_name) {
  headers.emplace("Accept", "application/json");
  headers["User-Agent"] = "flurry";
  auto r = client.send({.method = "GET", .url = url, .headers = std::move(headers), .timeout = std::chrono::seconds(10)});
  const auto asking = " when asked whether " + full_name + " is public";
  if (!r) return fail(Error::transient(forge + " did not answer" + asking));
  if (read_answer(r, forge, 0).retry) return fail(Error::transient(forge + " answered HTTP " + std::to_string(r->status) + asking));
  if (r->status == 404 || r->status == 403) return std::optional<json>();
  if (r->status / 100 != 2) return fail(Error::rejected(forge + " answered HTTP " + std::to_string(r->status) + asking));
  auto j = json::parse(r->body, nullptr, false);
  if (!j.is_object()) return fail(Error::transient(forge + " answered something that is not a JSON object" + asking));
  return std::optional<json>(std::move(j));
}

bool is_false(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && !it->get<bool>();
}

bool is_true(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

Visibility public_if(bool is_public) { return is_public ? Visibility::kPublic : Visibility::kPrivate; }

bool present(const Config& c, const std::string& section) { return !c.keys(section).empty(); }

}  // namespace

GitHubVisibility::GitHubVisibility(http::Client& client, std::string api_url, GitHubTokens& tokens)
    : client_(client), api_url_(std::move(api_url)), tokens_(tokens) {}

Result<Visibility> GitHubVisibility::visibility(const std::string& owner, const std::string& repo) {
  auto token = tokens_.token_for(owner, repo, 0);
  if (!token) {
    // An App not installed there cannot see it: only users who can read it may.
    if (token.error().code == ErrorCode::kTransient) return fail(token.error());
    return Visibility::kPrivate;
  }
  auto j = read_repo(client_, api(api_url_, "/repos/" + path_segment(owner) + "/" + path_segment(repo)), github_headers(*token),
                     "GitHub", owner + "/" + repo);
  if (!j) return fail(j.error());
  if (!j->has_value()) return Visibility::kPrivate;
  const auto shown = str(**j, "visibility");
  return public_if(is_false(**j, "private") && (shown.empty() || shown == "public"));
}

GiteaVisibility::GiteaVisibility(http::Client& client, std::string api_url, std::string token)
    : client_(client), api_url_(std::move(api_url)), token_(std::move(token)) {}

Result<Visibility> GiteaVisibility::visibility(const std::string& owner, const std::string& repo) {
  auto j = read_repo(client_, api(api_url_, "/api/v1/repos/" + path_segment(owner) + "/" + path_segment(repo)),
                     {{"Authorization", "token " + token_}}, "Gitea", owner + "/" + repo);
  if (!j) return fail(j.error());
  if (!j->has_value()) return Visibility::kPrivate;
  return public_if(is_false(**j, "private") && !is_true(**j, "internal"));
}

GitLabVisibility::GitLabVisibility(http::Client& client, std::string api_url, std::string token)
    : client_(client), api_url_(std::move(api_url)), token_(std::move(token)) {}

Result<Visibility> GitLabVisibility::visibility(const std::string& owner, const std::string& repo) {
  auto j = read_repo(client_, api(api_url_, "/api/v4/projects/" + path_segment(owner + "/" + repo)), {{"PRIVATE-TOKEN", token_}},
                     "GitLab", owner + "/" + repo);
  if (!j) return fail(j.error());
  if (!j->has_value()) return Visibility::kPrivate;
  return public_if(str(**j, "visibility") == "public");
}

ServiceAccess::ServiceAccess(const Config& c, http::Client& client, Clock& clock) {
  const std::string gh = present(c, "github") ? "github" : present(c, "reporter.github") ? "reporter.github" : "";
  if (!gh.empty()) {
    const auto url = c.get_string(gh + ".api_url", "https://api.github.com");
    if (c.has(gh + ".app_id")) {
      GitHubAppOptions o{.api_url = url, .private_key_pem = read_secret_file(c.require_string(gh + ".private_key_file"))};
      try {
        o.app_id = c.require_string(gh + ".app_id");
      } catch (const ConfigError&) {
        const auto id = c.get_int(gh + ".app_id", 0);
        if (id <= 0) throw ConfigError(gh + ".app_id must be the app's numeric id");
        o.app_id = std::to_string(id);
      }
      github_tokens_ = std::make_unique<GitHubAppTokens>(client, clock, std::move(o));
    } else {
      github_tokens_ = std::make_unique<FixedToken>(read_secret_file(c.require_string(gh + ".token_file")));
    }
    visibility_["github"] = std::make_unique<GitHubVisibility>(client, url, *github_tokens_);
    permissions_["github"] = std::make_unique<GitHubPermissions>(client, url, *github_tokens_);
  }
  if (present(c, "gitea")) {
    const auto url = c.require_string("gitea.api_url");
    const auto token = read_secret_file(c.require_string("gitea.token_file"));
    visibility_["gitea"] = std::make_unique<GiteaVisibility>(client, url, token);
    permissions_["gitea"] = std::make_unique<GiteaPermissions>(client, url, token);
  }
  if (present(c, "gitlab")) {
    const auto url = c.get_string("gitlab.api_url", "https://gitlab.com");
    const auto token = read_secret_file(c.require_string("gitlab.token_file"));
    visibility_["gitlab"] = std::make_unique<GitLabVisibility>(client, url, token);
    permissions_["gitlab"] = std::make_unique<GitLabPermissions>(client, url, token);
  }
}

ServiceAccess::~ServiceAccess() = default;

RepoVisibility* ServiceAccess::visibility(const std::string& forge) const {
  auto it = visibility_.find(forge);
  return it == visibility_.end() ? nullptr : it->second.get();
}

Permissions* ServiceAccess::permissions(const std::string& forge) const {
  auto it = permissions_.find(forge);
  return it == permissions_.end() ? nullptr : it->second.get();
}

}  // namespace flurry::forge
