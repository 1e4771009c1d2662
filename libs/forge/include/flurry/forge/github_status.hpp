#pragma once
// GitHub commit statuses over the HTTP client port.
#include <chrono>
#include <optional>
#include <string>

#include "flurry/forge/github_app.hpp"
#include "flurry/http/http.hpp"
#include "flurry/messages/messages.hpp"

namespace flurry::forge {

struct PostResult {
  bool ok = false;
  bool retry = false;                             // transient: 5xx, 429, rate limit, no answer
  std::optional<std::chrono::seconds> retry_after;  // when the forge said how long to wait
  int http_status = 0;
  std::string message;  // for logs; never contains the token
};

class GitHubStatusClient {
 public:
  // `tokens` gives the token per repository (FixedToken, GitHubAppTokens).
  GitHubStatusClient(http::Client& client, std::string api_url, GitHubTokens& tokens)
      : client_(client), api_url_(std::move(api_url)), tokens_(tokens) {}
  // POST {api}/repos/{owner}/{repo}/statuses/{sha}
  PostResult post(const msg::StatusEvent& status);

 private:
  http::Client& client_;
  std::string api_url_;
  GitHubTokens& tokens_;
};

// Percent-encodes one URL path segment.
std::string path_segment(const std::string& s);

}  // namespace flurry::forge
