#pragma once
// Who may push to a repository, asked of the forge: the evaluator trusts a
// pull request from a fork only when its author (or whoever approved it)
// may write to the base repository.
//   GitHub: GET /repos/{owner}/{repo}/collaborators/{user}/permission
//           (admin, maintain or write; a 404 is no collaborator)
//   Gitea:  GET /api/v1/repos/{owner}/{repo}/collaborators/{user}/permission
//           (owner, admin or write)
//   GitLab: GET /api/v4/users?username={user}, then
//           GET /api/v4/projects/{path}/members/all/{id} (access_level of
//           Developer, 30, or more)
#include <string>

#include "flurry/core/clock.hpp"
#include "flurry/core/error.hpp"
#include "flurry/forge/github_app.hpp"
#include "flurry/http/http.hpp"

namespace flurry::forge {

class Permissions {
 public:
  virtual ~Permissions() = default;
  // True if `user` may push to owner/repo; false when not (or unknown to
  // the forge). Transient error: the forge did not answer, try later.
  virtual Result<bool> can_write(const std::string& owner, const std::string& repo, const std::string& user) = 0;
};

class GitHubPermissions final : public Permissions {
 public:
  GitHubPermissions(http::Client& client, std::string api_url, GitHubTokens& tokens);
  Result<bool> can_write(const std::string& owner, const std::string& repo, const std::string& user) override;

 private:
  http::Client& client_;
  std::string api_url_;
  GitHubTokens& tokens_;
};

class GiteaPermissions final : public Permissions {
 public:
  GiteaPermissions(http::Client& client, std::string api_url, std::string token);
  Result<bool> can_write(const std::string& owner, const std::string& repo, const std::string& user) override;

 private:
  http::Client& client_;
  std::string api_url_;
  std::string token_;
};

class GitLabPermissions final : public Permissions {
 public:
  GitLabPermissions(http::Client& client, std::string api_url, std::string token);
  Result<bool> can_write(const std::string& owner, const std::string& repo, const std::string& user) override;

 private:
  http::Client& client_;
  std::string api_url_;
  std::string token_;
};

}  // namespace flurry::forge
