#pragma once
// The forges one installation talks to, configured once and shared by the
// services that call them (the reporter today):
//
//   [github]  api_url = "https://api.github.com"   (the default)
//             token_file = "..."                   a personal or fixed token, or
//             app_id = 123, private_key_file = "..."  as a GitHub App
//             checks = false                       true: check runs (an app
//                                                  only) instead of statuses
//   [gitea]   api_url = "https://gitea.example.org" (required), token_file
//   [gitlab]  api_url = "https://gitlab.com"        (the default), token_file
//
// Project discovery's listings come from the same sections: GitHub only as
// an App, Gitea and GitLab with their token.
//
// [reporter.github] is read as [github] when [github] is absent (the
// spelling of earlier versions). Secrets are read with read_secret_file, so
// they are redacted from every log line.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "flurry/core/clock.hpp"
#include "flurry/core/config.hpp"
#include "flurry/forge/discovery.hpp"
#include "flurry/forge/github_app.hpp"
#include "flurry/forge/github_checks.hpp"
#include "flurry/forge/permissions.hpp"
#include "flurry/forge/status_poster.hpp"
#include "flurry/messages/messages.hpp"

namespace flurry::forge {

// What check runs need besides the API: where their ids are kept and
// where job logs are read. Without them ([github] checks = true in a
// service that posts nothing) there is no GitHub poster.
struct CheckStores {
  CheckRunIds* ids = nullptr;
  JobLogs* logs = nullptr;
};

class Forges {
 public:
  // Throws ConfigError for a section that is present but incomplete.
  Forges(const Config& config, http::Client& client, Clock& clock, CheckStores checks = {});
  ~Forges();
  // The status poster of `forge` ("github", "gitea", "gitlab"); null when
  // that forge is not configured.
  StatusPoster* poster(const std::string& forge) const;
  // The header that lets git fetch `url` of `repo` (a private repository)
  // with the forge's credentials: GitHub "Authorization: Basic
  // base64(x-access-token:<token>)" (an installation token as an app),
  // Gitea and GitLab "Authorization: Basic base64(oauth2:<token>)". Empty
  // when the forge is not configured or `url` is not on the forge's host:
  // credentials never go anywhere else.
  Result<std::string> clone_auth(const msg::Repo& repo, const std::string& url) const;
  // Who may write to a repository of `forge`; null when not configured.
  Permissions* permissions(const std::string& forge) const;
  // Names of the forges with a poster, sorted.
  std::vector<std::string> configured() const;
  // Repository listing and hooks of `forge`, for project discovery; null
  // when not configured (and for GitHub without an App).
  ProjectSource* projects(const std::string& forge) const;
  // Names of the forges with a ProjectSource, sorted.
  std::vector<std::string> discoverable() const;

 private:
  std::unique_ptr<GitHubTokens> github_tokens_;
  std::map<std::string, std::string> clone_hosts_;   // forge -> host its repositories are cloned from
  std::map<std::string, std::string> fixed_tokens_;  // gitea, gitlab
  std::map<std::string, std::unique_ptr<StatusPoster>> posters_;
  std::map<std::string, std::unique_ptr<Permissions>> permissions_;
  std::map<std::string, std::unique_ptr<ProjectSource>> projects_;
};

}  // namespace flurry::forge
