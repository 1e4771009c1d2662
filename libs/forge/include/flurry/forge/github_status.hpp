#pragma once
// GitHub commit statuses over the HTTP client port.
#include <string>

#include "flurry/core/clock.hpp"
#include "flurry/forge/github_app.hpp"
#include "flurry/forge/status_poster.hpp"

namespace flurry::forge {

class GitHubStatusClient final : public StatusPoster {
 public:
  // `tokens` gives the token per repository (FixedToken, GitHubAppTokens).
  GitHubStatusClient(http::Client& client, std::string api_url, GitHubTokens& tokens, Clock& clock)
      : client_(client), api_url_(std::move(api_url)), tokens_(tokens), clock_(clock) {}
  // POST {api}/repos/{owner}/{repo}/statuses/{sha}
  PostResult post(const msg::StatusEvent& status, Detail detail) override;

 private:
  http::Client& client_;
  std::string api_url_;
  GitHubTokens& tokens_;
  Clock& clock_;
};

// The headers of every GitHub REST call with `token`.
std::map<std::string, std::string> github_headers(const std::string& token);

}  // namespace flurry::forge
