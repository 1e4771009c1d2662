#pragma once
// The reporter's port to a forge: post one commit status (or check run).
// One implementation per forge API (GitHub statuses and check runs, Gitea/
// Forgejo statuses, GitLab commit statuses), all over http::Client.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "flurry/core/error.hpp"
#include "flurry/http/http.hpp"
#include "flurry/messages/messages.hpp"

namespace flurry::forge {

struct PostResult {
  bool ok = false;
  bool retry = false;                               // transient: 5xx, 429, rate limit, no answer
  std::optional<std::chrono::seconds> retry_after;  // when the forge said how long to wait
  int http_status = 0;
  std::string message;  // for logs; never contains a token
};

// How much a post says. kReduced is the one retry after a forge refused
// the full post (a 4xx that waiting will not change): the same context and
// state with a short description, no link and no log, which any forge
// takes unless it refuses the context or the state itself.
enum class Detail { kFull, kReduced };

// The description a reduced post carries: its first 60 bytes.
inline constexpr std::size_t kReducedDescriptionBytes = 60;

class StatusPoster {
 public:
  virtual ~StatusPoster() = default;
  // Shows `status` on the forge. Safe to repeat: the forge keeps the last
  // state per context (the reporter orders them).
  virtual PostResult post(const msg::StatusEvent& status, Detail detail) = 0;
};

// How a forge's answer to a write reads: 2xx ok; 5xx, 429, and 403 or 429
// that say rate limit (GitHub's X-RateLimit-Remaining: 0 or "secondary
// rate limit", GitLab's RateLimit-*) are retried after Retry-After, else
// until the reset time the headers give, else a minute for a secondary
// limit; no answer is retried; any other answer is final. `forge` names
// it in messages ("GitHub answered 422: ...").
PostResult read_answer(const Result<http::Response>& answer, std::string_view forge, std::int64_t now_s);

// The description and link a commit status of `detail` carries; the
// description at most `max_description` bytes, never splitting a
// character.
struct StatusText {
  std::string description;
  std::string target_url;  // empty: none
};
StatusText status_text(const msg::StatusEvent& s, Detail detail, std::size_t max_description);

// A failure before anything was sent (no credentials, bad input).
PostResult not_sent(const Error& e, const std::string& what);

// Percent-encodes one URL path segment (RFC 3986 unreserved kept).
std::string path_segment(const std::string& s);
// `api_url` without trailing slashes, then `path`.
std::string api(const std::string& api_url, const std::string& path);

}  // namespace flurry::forge
