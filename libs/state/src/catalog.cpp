#include "flurry/state/catalog.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "flurry/core/text.hpp"

namespace flurry::state {
namespace {

// "refs/pull/12/head" (GitHub, Gitea) or "refs/merge-requests/12/head"
// (GitLab): 12; 0 otherwise.
int pull_request_number(const std::string& ref) {
  for (const std::string prefix : {"refs/pull/", "refs/merge-requests/"}) {
    if (!text::starts_with(ref, prefix) || !text::ends_with(ref, "/head")) continue;
    const auto digits = ref.substr(prefix.size(), ref.size() - prefix.size() - 5);
    int n = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec == std::errc() && p == digits.data() + digits.size() && n > 0) return n;
  }
  return 0;
}

}  // namespace

EvalFiling filing_of(const std::string& eval_id, const msg::ChangeEvent& change, std::int64_t created_ms) {
  EvalFiling f;
  f.eval_id = eval_id;
  f.repo = change.repo;
  f.ref = change.ref;
  f.created_ms = created_ms;
  const int number = change.is_pull_request() ? change.pull_request.number : pull_request_number(change.ref);
  if (number > 0) {
    f.kind = "pull_request";
    f.name = "#" + std::to_string(number);
    f.number = number;
    f.title = text::truncate_utf8(change.pull_request.title, 300);
  } else if (text::starts_with(change.ref, "refs/tags/")) {
    f.kind = "tag";
    f.name = change.ref.substr(10);
  } else {
    f.kind = "branch";
    f.name = text::starts_with(change.ref, "refs/heads/") ? change.ref.substr(11) : change.ref;
  }
  return f;
}

std::string encode_cursor(const EvalPosition& at) { return std::to_string(at.created_ms) + "-" + at.eval_id; }

std::optional<EvalPosition> decode_cursor(const std::string& cursor) {
  const auto dash = cursor.find('-');
  if (dash == std::string::npos || dash == 0 || cursor.size() > 200) return std::nullopt;
  EvalPosition at;
  auto [p, ec] = std::from_chars(cursor.data(), cursor.data() + dash, at.created_ms);
  if (ec != std::errc() || p != cursor.data() + dash || at.created_ms < 0) return std::nullopt;
  at.eval_id = cursor.substr(dash + 1);
  // Eval ids are Flurry's: letters, digits, '-' and '_'.
  const bool plain = !at.eval_id.empty() && std::all_of(at.eval_id.begin(), at.eval_id.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_';
  });
  if (!plain) return std::nullopt;
  return at;
}

}  // namespace flurry::state
