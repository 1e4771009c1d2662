#include "flurry/forge/gitlab_status.hpp"

#include <nlohmann/json.hpp>

#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"

namespace flurry::forge {

std::string_view gitlab_state(msg::StatusState s) {
  switch (s) {
    case msg::StatusState::kPending: return "pending";
    case msg::StatusState::kSuccess: return "success";
    case msg::StatusState::kFailure: return "failed";
    case msg::StatusState::kError: return "canceled";
  }
  return "failed";
}

GitLabStatusClient::GitLabStatusClient(http::Client& client, std::string api_url, std::string token, Clock& clock)
    : client_(client), api_url_(std::move(api_url)), token_(std::move(token)), clock_(clock) {
  log::register_secret(token_);  // never in a log line, whoever writes it
}

PostResult GitLabStatusClient::post(const msg::StatusEvent& s, Detail detail) {
  // GitLab cuts descriptions at 255 characters and refuses longer ones on
  // some versions.
  const auto shown = status_text(s, detail, 250);
  // A job being built is GitLab's "running".
  const auto state = s.job_state == "building" && s.state == msg::StatusState::kPending ? std::string_view("running") : gitlab_state(s.state);
  nlohmann::json body = {{"state", state}, {"name", s.context}, {"description", shown.description}};
  if (!shown.target_url.empty()) body["target_url"] = shown.target_url;
  auto resp = client_.send({.method = "POST",
                            .url = api(api_url_, "/api/v4/projects/" + path_segment(s.repo.owner + "/" + s.repo.name) + "/statuses/" +
                                                     path_segment(s.rev)),
                            .headers = {{"PRIVATE-TOKEN", token_},
                                        {"Accept", "application/json"},
                                        {"Content-Type", "application/json"},
                                        {"User-Agent", "flurry"}},
                            .body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                            .timeout = std::chrono::seconds(30)});
  auto r = read_answer(resp, "GitLab", clock_.now_ms() / 1000);
  if (!r.ok && r.http_status == 400 && resp->body.find("Cannot transition status") != std::string::npos) {
    // Already in that state.
    PostResult same;
    same.ok = true;
    same.http_status = 400;
    return same;
  }
  return r;
}

}  // namespace flurry::forge
