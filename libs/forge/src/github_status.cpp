#include "flurry/forge/github_status.hpp"

#include <nlohmann/json.hpp>

#include "flurry/core/clock.hpp"
#include "flurry/core/text.hpp"

namespace flurry::forge {

std::string path_segment(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

PostResult GitHubStatusClient::post(const msg::StatusEvent& s) {
  nlohmann::json body = {{"state", msg::to_string(s.state)}, {"context", s.context}, {"description", s.description}};
  if (!s.target_url.empty()) body["target_url"] = s.target_url;
  std::string url = api_url_;
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += "/repos/" + path_segment(s.repo.owner) + "/" + path_segment(s.repo.name) + "/statuses/" + path_segment(s.rev);
  auto token = tokens_.token_for(s.repo.owner, s.repo.name);
  if (!token) {
    PostResult r;
    r.retry = token.error().code == ErrorCode::kTransient;
    r.message = "no GitHub token: " + token.error().message;
    return r;
  }
  auto resp = client_.send({.method = "POST",
                            .url = url,
                            .headers = {{"Authorization", "Bearer " + *token},
                                        {"Accept", "application/vnd.github+json"},
                                        {"X-GitHub-Api-Version", "2022-11-28"},
                                        {"User-Agent", "flurry"},
                                        {"Content-Type", "application/json"}},
                            .body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                            .timeout = std::chrono::seconds(30)});
  PostResult r;
  if (!resp) {
    r.retry = true;
    r.message = resp.error().message;
    return r;
  }
  r.http_status = resp->status;
  if (resp->status / 100 == 2) {
    r.ok = true;
    return r;
  }
  r.message = "GitHub answered " + std::to_string(resp->status) + ": " + text::truncate_utf8(resp->body, 300);
  auto retry_after = resp->header("retry-after");
  if (!retry_after.empty()) {
    try {
      r.retry_after = std::chrono::seconds(std::stoll(retry_after));
    } catch (...) {
    }
  }
  bool rate_limited = resp->status == 429 ||
                      (resp->status == 403 && (resp->header("x-ratelimit-remaining") == "0" ||
                                               resp->body.find("rate limit") != std::string::npos));
  if (rate_limited && !r.retry_after && !resp->header("x-ratelimit-reset").empty()) {
    try {
      SystemClock clock;
      auto reset = std::stoll(resp->header("x-ratelimit-reset"));
      r.retry_after = std::chrono::seconds(std::max<long long>(1, reset - clock.now_ms() / 1000));
    } catch (...) {
    }
  }
  r.retry = resp->status >= 500 || rate_limited;
  return r;
}

}  // namespace flurry::forge
