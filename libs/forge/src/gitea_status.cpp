#include "flurry/forge/gitea_status.hpp"

#include <nlohmann/json.hpp>

#include "flurry/core/log.hpp"

namespace flurry::forge {

GiteaStatusClient::GiteaStatusClient(http::Client& client, std::string api_url, std::string token, Clock& clock)
    : client_(client), api_url_(std::move(api_url)), token_(std::move(token)), clock_(clock) {
  log::register_secret(token_);  // never in a log line, whoever writes it
}

PostResult GiteaStatusClient::post(const msg::StatusEvent& s, Detail detail) {
  const auto shown = status_text(s, detail, 255);
  nlohmann::json body = {{"state", msg::to_string(s.state)}, {"context", s.context}, {"description", shown.description}};
  if (!shown.target_url.empty()) body["target_url"] = shown.target_url;
  auto resp = client_.send({.method = "POST",
                            .url = api(api_url_, "/api/v1/repos/" + path_segment(s.repo.owner) + "/" + path_segment(s.repo.name) +
                                                     "/statuses/" + path_segment(s.rev)),
                            .headers = {{"Authorization", "token " + token_},
                                        {"Accept", "application/json"},
                                        {"Content-Type", "application/json"},
                                        {"User-Agent", "flurry"}},
                            .body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                            .timeout = std::chrono::seconds(30)});
  return read_answer(resp, "Gitea", clock_.now_ms() / 1000);
}

}  // namespace flurry::forge
