#pragma once
// What the web service's access rules ask a forge with Flurry's own
// credentials (users' tokens are oauth.hpp's): whether a repository is
// public, and who may write to it (the Permissions the evaluator's trust
// check uses).
//   GitHub: GET /repos/{owner}/{repo}: "private" (and "visibility" when given)
//   Gitea:  GET /api/v1/repos/{owner}/{repo}: "private", "internal"
//   GitLab: GET /api/v4/projects/{url-encoded path}: "visibility" ("public",
//           "internal", "private")
#include <map>
#include <memory>
#include <string>

#include "flurry/core/clock.hpp"
#include "flurry/core/config.hpp"
#include "flurry/core/error.hpp"
#include "flurry/forge/github_app.hpp"
#include "flurry/forge/permissions.hpp"
#include "flurry/http/http.hpp"

namespace flurry::forge {

enum class Visibility { kPublic, kPrivate };

class RepoVisibility {
 public:
  virtual ~RepoVisibility() = default;
  // kPublic only when the forge shows the repository to anyone (GitLab's
  // "internal" is not public). kPrivate also when the forge does not show
  // it to Flurry (404, 403, a GitHub App not installed there): then only
  // users who can read it on the forge may. An error when the forge could
  // not be asked (no answer, 5xx, rate limit, Flurry's credentials refused).
  virtual Result<Visibility> visibility(const std::string& owner, const std::string& repo) = 0;
};

class GitHubVisibility final : public RepoVisibility {
 public:
  GitHubVisibility(http::Client& client, std::string api_url, GitHubTokens& tokens);
  Result<Visibility> visibility(const std::string& owner, const std::string& repo) override;

 private:
  http::Client& client_;
  std::string api_url_;
  GitHubTokens& tokens_;
};

class GiteaVisibility final : public RepoVisibility {
 public:
  GiteaVisibility(http::Client& client, std::string api_url, std::string token);
  Result<Visibility> visibility(const std::string& owner, const std::string& repo) override;

 private:
  http::Client& client_;
  std::string api_url_;
  std::string token_;
};

class GitLabVisibility final : public RepoVisibility {
 public:
  GitLabVisibility(http::Client& client, std::string api_url, std::string token);
  Result<Visibility> visibility(const std::string& owner, const std::string& repo) override;

 private:
  http::Client& client_;
  std::string api_url_;
  std::string token_;
};

// Flurry's own credentials per forge, read from [github] (token_file, or
// app_id and private_key_file), [gitea] and [gitlab] as Forges reads them
// ([reporter.github] when [github] is absent), for the access rules. Throws
// ConfigError for a section that is present but incomplete.
class ServiceAccess {
 public:
  ServiceAccess(const Config& config, http::Client& client, Clock& clock);
  ~ServiceAccess();
  // Null when Flurry has no credentials for `forge`.
  RepoVisibility* visibility(const std::string& forge) const;
  Permissions* permissions(const std::string& forge) const;

 private:
  std::unique_ptr<GitHubTokens> github_tokens_;
  std::map<std::string, std::unique_ptr<RepoVisibility>> visibility_;
  std::map<std::string, std::unique_ptr<Permissions>> permissions_;
};

}  // namespace flurry::forge
