#pragma once
// GitLab commit statuses: POST {api}/api/v4/projects/{id}/statuses/{sha}
// with {state, name, description, target_url}, "PRIVATE-TOKEN: <t>"; the
// project id is its URL-encoded path ("group%2Fsub%2Fproject"), which
// GitLab accepts in place of the number.
//
// States: pending -> pending (a job being built: running), success ->
// success, failure -> failed, error (cancelled) -> canceled. GitLab refuses to post the state a status
// already has (400 "Cannot transition status via :x from :y"): that is the
// state we wanted, so it counts as posted.
#include <string>

#include "flurry/core/clock.hpp"
#include "flurry/forge/status_poster.hpp"

namespace flurry::forge {

std::string_view gitlab_state(msg::StatusState s);

class GitLabStatusClient final : public StatusPoster {
 public:
  // `api_url` is the instance's base URL ("https://gitlab.example.org").
  GitLabStatusClient(http::Client& client, std::string api_url, std::string token, Clock& clock);
  PostResult post(const msg::StatusEvent& status, Detail detail) override;

 private:
  http::Client& client_;
  std::string api_url_;
  std::string token_;
  Clock& clock_;
};

}  // namespace flurry::forge
