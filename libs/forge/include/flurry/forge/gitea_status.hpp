#pragma once
// Gitea and Forgejo commit statuses:
// POST {api}/api/v1/repos/{owner}/{repo}/statuses/{sha} with
// {state, target_url, description, context}, "Authorization: token <t>".
// Gitea's states include GitHub's four (pending, success, error, failure).
#include <string>

#include "flurry/core/clock.hpp"
#include "flurry/forge/status_poster.hpp"

namespace flurry::forge {

class GiteaStatusClient final : public StatusPoster {
 public:
  // `api_url` is the instance's base URL ("https://gitea.example.org").
  GiteaStatusClient(http::Client& client, std::string api_url, std::string token, Clock& clock);
  PostResult post(const msg::StatusEvent& status, Detail detail) override;

 private:
  http::Client& client_;
  std::string api_url_;
  std::string token_;
  Clock& clock_;
};

}  // namespace flurry::forge
