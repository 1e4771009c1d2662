#include "flurry/forge/permissions.hpp"

#include <nlohmann/json.hpp>

#include "flurry/core/text.hpp"
#include "flurry/forge/github_status.hpp"
#include "flurry/forge/status_poster.hpp"

namespace flurry::forge {
namespace {

using json = nlohmann::json;

// The answer as JSON; nullopt for "no such user or membership" (404);
// a transient error when the forge did not answer usably.
Result<std::optional<json>> get_json(http::Client& client, const std::string& url, std::map<std::string, std::string> headers,
                                     std::string_view forge) {
  headers["Accept"] = "application/json";
  headers["User-Agent"] = "flurry";
  auto r = client.send({.method = "GET", .url = url, .headers = std::move(headers), .timeout = std::chrono::seconds(30)});
  if (!r) return fail(Error::transient(std::string(forge) + " did not answer: " + r.error().message));
  if (r->status == 404) return std::optional<json>();
  if (r->status / 100 != 2) {
    auto e = std::string(forge) + " answered " + std::to_string(r->status) + ": " + text::truncate_utf8(r->body, 200);
    // 5xx and rate limits pass; anything else (401, 403) will not by waiting.
    return fail(r->status >= 500 || r->status == 429 ? Error::transient(e) : Error::rejected(e));
  }
  auto j = json::parse(r->body, nullptr, false);
  if (j.is_discarded()) return fail(Error::transient(std::string(forge) + " answered something that is not JSON"));
  return std::optional<json>(std::move(j));
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

GitHubPermissions::GitHubPermissions(http::Client& client, std::string api_url, GitHubTokens& tokens)
    : client_(client), api_url_(std::move(api_url)), tokens_(tokens) {}

Result<bool> GitHubPermissions::can_write(const std::string& owner, const std::string& repo, const std::string& user) {
  if (user.empty()) return false;
  auto token = tokens_.token_for(owner, repo, 0);
  if (!token) return fail(token.error());
  auto j = get_json(client_,
                    api(api_url_, "/repos/" + path_segment(owner) + "/" + path_segment(repo) + "/collaborators/" + path_segment(user) +
                                      "/permission"),
                    github_headers(*token), "GitHub");
  if (!j) return fail(j.error());
  if (!j->has_value() || !(**j).is_object()) return false;
  const auto p = str(**j, "permission"), role = str(**j, "role_name");
  return p == "admin" || p == "write" || role == "maintain" || role == "admin" || role == "write";
}

GiteaPermissions::GiteaPermissions(http::Client& client, std::string api_url, std::string token)
    : client_(client), api_url_(std::move(api_url)), token_(std::move(token)) {}

Result<bool> GiteaPermissions::can_write(const std::string& owner, const std::string& repo, const std::string& user) {
  if (user.empty()) return false;
  auto j = get_json(client_,
                    api(api_url_, "/api/v1/repos/" + path_segment(owner) + "/" + path_segment(repo) + "/collaborators/" +
                                      path_segment(user) + "/permission"),
                    {{"Authorization", "token " + token_}}, "Gitea");
  if (!j) return fail(j.error());
  if (!j->has_value() || !(**j).is_object()) return false;
  const auto p = str(**j, "permission");
  return p == "owner" || p == "admin" || p == "write";
}

GitLabPermissions::GitLabPermissions(http::Client& client, std::string api_url, std::string token)
    : client_(client), api_url_(std::move(api_url)), token_(std::move(token)) {}

Result<bool> GitLabPermissions::can_write(const std::string& owner, const std::string& repo, const std::string& user) {
  if (user.empty()) return false;
  const std::map<std::string, std::string> auth = {{"PRIVATE-TOKEN", token_}};
  auto users = get_json(client_, api(api_url_, "/api/v4/users?username=" + path_segment(user)), auth, "GitLab");
  if (!users) return fail(users.error());
  if (!users->has_value() || !(**users).is_array() || (**users).empty() || !(**users)[0].contains("id") ||
      !(**users)[0]["id"].is_number_integer()) {
    return false;
  }
  const auto id = (**users)[0]["id"].get<std::int64_t>();
  auto member = get_json(client_,
                         api(api_url_, "/api/v4/projects/" + path_segment(owner + "/" + repo) + "/members/all/" + std::to_string(id)),
                         auth, "GitLab");
  if (!member) return fail(member.error());
  if (!member->has_value() || !(**member).is_object()) return false;
  auto level = (**member).find("access_level");
  return level != (**member).end() && level->is_number_integer() && level->get<int>() >= 30;  // Developer or more
}

}  // namespace flurry::forge
