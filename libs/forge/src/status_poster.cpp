#include "flurry/forge/status_poster.hpp"

#include <algorithm>
#include <cctype>

#include "flurry/core/text.hpp"

namespace flurry::forge {
namespace {

std::optional<std::int64_t> number(const std::string& s) {
  if (s.empty() || s.size() > 18 || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return std::nullopt;
  }
  return std::stoll(s);
}

}  // namespace

std::string path_segment(const std::string& s) { return text::percent_encode(s); }

std::string api(const std::string& api_url, const std::string& path) {
  std::string url = api_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url + path;
}

StatusText status_text(const msg::StatusEvent& s, Detail detail, std::size_t max_description) {
  if (detail == Detail::kReduced) return {text::truncate_utf8(s.description, std::min(max_description, kReducedDescriptionBytes)), ""};
  return {text::truncate_utf8(s.description, max_description), s.target_url};
}

PostResult not_sent(const Error& e, const std::string& what) {
  PostResult r;
  r.retry = e.code == ErrorCode::kTransient;
  r.message = what + ": " + e.message;
  return r;
}

PostResult read_answer(const Result<http::Response>& answer, std::string_view forge, std::int64_t now_s) {
  PostResult r;
  if (!answer) {
    r.retry = true;
    r.message = std::string(forge) + " did not answer: " + answer.error().message;
    return r;
  }
  const auto& resp = *answer;
  r.http_status = resp.status;
  if (resp.status / 100 == 2) {
    r.ok = true;
    return r;
  }
  r.message = std::string(forge) + " answered " + std::to_string(resp.status) + ": " + text::truncate_utf8(resp.body, 300);
  if (auto s = number(resp.header("retry-after"))) r.retry_after = std::chrono::seconds(std::max<std::int64_t>(1, *s));
  const auto lower_body = text::to_lower(resp.body);
  const bool secondary = lower_body.find("secondary rate limit") != std::string::npos;
  const bool rate_limited = resp.status == 429 ||
                            (resp.status == 403 && (resp.header("x-ratelimit-remaining") == "0" ||
                                                    lower_body.find("rate limit") != std::string::npos));
  if (rate_limited && !r.retry_after) {
    // GitHub: X-RateLimit-Reset; GitLab: RateLimit-Reset (epoch seconds).
    auto reset = number(resp.header("x-ratelimit-reset"));
    if (!reset) reset = number(resp.header("ratelimit-reset"));
    if (reset) r.retry_after = std::chrono::seconds(std::max<std::int64_t>(1, *reset - now_s));
    // GitHub asks to wait at least a minute after a secondary limit that
    // names no time.
    else if (secondary) r.retry_after = std::chrono::seconds(60);
  }
  r.retry = resp.status >= 500 || rate_limited;
  return r;
}

}  // namespace flurry::forge
