#include "flurry/forge/github_status.hpp"

#include <nlohmann/json.hpp>

namespace flurry::forge {

std::map<std::string, std::string> github_headers(const std::string& token) {
  return {{"Authorization", "Bearer " + token},
          {"Accept", "application/vnd.github+json"},
          {"X-GitHub-Api-Version", "2022-11-28"},
          {"User-Agent", "flurry"},
          {"Content-Type", "application/json"}};
}

PostResult GitHubStatusClient::post(const msg::StatusEvent& s, Detail detail) {
  // GitHub: descriptions of at most 140 characters.
  const auto shown = status_text(s, detail, 140);
  nlohmann::json body = {{"state", msg::to_string(s.state)}, {"context", s.context}, {"description", shown.description}};
  if (!shown.target_url.empty()) body["target_url"] = shown.target_url;
  auto token = tokens_.token_for(s.repo.owner, s.repo.name, s.repo.installation_id);
  if (!token) return not_sent(token.error(), "no GitHub token");
  auto resp = client_.send({.method = "POST",
                            .url = api(api_url_, "/repos/" + path_segment(s.repo.owner) + "/" + path_segment(s.repo.name) +
                                                     "/statuses/" + path_segment(s.rev)),
                            .headers = github_headers(*token),
                            .body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                            .timeout = std::chrono::seconds(30)});
  return read_answer(resp, "GitHub", clock_.now_ms() / 1000);
}

}  // namespace flurry::forge
