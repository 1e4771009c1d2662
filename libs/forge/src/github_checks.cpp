#include "flurry/forge/github_checks.hpp"

#include <nlohmann/json.hpp>

#include <ctime>

#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"
#include "flurry/forge/github_status.hpp"

namespace flurry::forge {
namespace {

constexpr std::size_t kLogLines = 100;
// output.summary and output.text: GitHub's schema says 65,535 characters,
// its validation counts bytes ("exceeds a maximum bytesize of 65535").
constexpr std::size_t kMaxOutputBytes = 65535;
constexpr std::size_t kMaxTitleBytes = 1000;  // no documented limit; kept short

std::string conclusion_of(const msg::StatusEvent& s) {
  const auto& j = s.job_state;
  if (j == "succeeded" || j == "skipped") return "success";
  if (j == "timed_out") return "timed_out";
  if (j == "cancelled") return "cancelled";
  if (j == "unsupported_system") return "neutral";
  if (!j.empty()) return "failure";
  switch (s.state) {
    case msg::StatusState::kSuccess: return "success";
    case msg::StatusState::kError: return "cancelled";
    default: return "failure";
  }
}

bool failed(const std::string& conclusion) { return conclusion == "failure" || conclusion == "timed_out"; }

// "2026-12-03T21:51:16Z" for microseconds since 1970.
std::string iso_time(std::int64_t at_us) {
  const std::time_t t = static_cast<std::time_t>(at_us / 1'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

// A fence inside the text must not end ours: each ``` gets a zero-width
// space after its first backtick.
std::string break_fences(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 3, "```") == 0) {
      out += "`\u200b``";
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// `body` in a code block under `heading`, all of it within GitHub's byte
// limit once sent: invalid UTF-8 is replaced first (as the JSON encoder
// would), fences broken, then the end kept (a log: `keep_end`) or the start
// (an error), cut at a line when a whole one fits.
std::string fenced(const std::string& heading, std::string_view body, bool keep_end) {
  const std::string open = heading + "\n\n```\n", close = "\n```\n";
  const std::size_t budget = kMaxOutputBytes - open.size() - close.size();
  auto safe = break_fences(text::sanitize_utf8(body));
  while (!safe.empty() && safe.back() == '\n') safe.pop_back();
  if (safe.size() > budget) {
    if (keep_end) {
      safe = text::tail_utf8(safe, budget);
      if (auto nl = safe.find('\n'); nl != std::string::npos && nl + 1 < safe.size()) safe.erase(0, nl + 1);
    } else {
      safe = text::truncate_utf8(safe, budget);
    }
  }
  return open + safe + close;
}

}  // namespace

CheckRunFields check_run_fields(const msg::StatusEvent& s, const std::string& log, Detail detail) {
  CheckRunFields f;
  f.external_id = s.job_id.empty() ? "eval:" + s.eval_id : "job:" + s.job_id;
  const bool full = detail == Detail::kFull;
  const auto& title = s.description.empty() ? s.context : s.description;
  f.title = text::truncate_utf8(text::sanitize_utf8(title), full ? kMaxTitleBytes : kReducedDescriptionBytes);
  f.summary = text::truncate_utf8(text::sanitize_utf8(s.description), full ? kMaxOutputBytes : kReducedDescriptionBytes);
  if (full && !s.target_url.empty()) {
    const auto link = (f.summary.empty() ? std::string() : std::string("\n\n")) + "[Details and the full log](" + s.target_url + ")";
    if (f.summary.size() + link.size() <= kMaxOutputBytes) f.summary += link;
  }
  if (f.summary.empty()) f.summary = f.title;  // GitHub wants one
  if (s.state == msg::StatusState::kPending) {
    // Waiting, or being built since at_us.
    f.status = s.job_state == "building" ? "in_progress" : "queued";
    if (f.status == "in_progress" && s.at_us > 0) f.started_at = iso_time(s.at_us);
    return f;
  }
  f.status = "completed";
  f.conclusion = conclusion_of(s);
  if (s.at_us > 0) f.completed_at = iso_time(s.at_us);
  if (!full) return f;
  const bool evaluation_error = s.job_state == "eval_failed" || (s.context == "flurry/eval" && f.conclusion == "failure");
  if (failed(f.conclusion) && !log.empty()) {
    f.text = fenced("Last lines of the build log:", text::tail_lines(log, kLogLines), true);
  } else if (evaluation_error) {
    // nix's message, whole: the description holds only its first line.
    f.text = fenced("Evaluation error:", s.details.empty() ? s.description : s.details, false);
  } else if (!s.details.empty()) {
    f.text = fenced("Details:", s.details, false);
  }
  return f;
}

GitHubChecksClient::GitHubChecksClient(http::Client& client, std::string api_url, GitHubTokens& tokens, Clock& clock, CheckRunIds& ids,
                                       JobLogs& logs)
    : client_(client), api_url_(std::move(api_url)), tokens_(tokens), clock_(clock), ids_(ids), logs_(logs) {}

PostResult GitHubChecksClient::post(const msg::StatusEvent& s, Detail detail) {
  auto token = tokens_.token_for(s.repo.owner, s.repo.name, s.repo.installation_id);
  if (!token) return not_sent(token.error(), "no GitHub token");
  const std::string key = "check-run\n" + s.repo.owner + "\n" + s.repo.name + "\n" + s.rev + "\n" + s.context;
  auto known = ids_.find(key);
  if (!known) return not_sent(known.error(), "cannot read the check run id");

  std::string log;
  if (detail == Detail::kFull && s.state != msg::StatusState::kPending && !s.job_id.empty() && s.state != msg::StatusState::kSuccess) {
    if (auto l = logs_.log(s.job_id)) log = *l;  // without the log the run still says what happened
  }
  const auto f = check_run_fields(s, log, detail);
  // text always: "" clears a log an earlier state of the run showed.
  nlohmann::json output = {{"title", f.title}, {"summary", f.summary}, {"text", f.text}};
  nlohmann::json body = {{"name", s.context}, {"head_sha", s.rev}, {"status", f.status}, {"external_id", f.external_id}, {"output", output}};
  if (!f.conclusion.empty()) body["conclusion"] = f.conclusion;
  if (!f.started_at.empty()) body["started_at"] = f.started_at;
  if (!f.completed_at.empty()) body["completed_at"] = f.completed_at;
  if (detail == Detail::kFull && (text::starts_with(s.target_url, "https://") || text::starts_with(s.target_url, "http://"))) {
    body["details_url"] = s.target_url;
  }
  const auto payload = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const auto base = "/repos/" + path_segment(s.repo.owner) + "/" + path_segment(s.repo.name) + "/check-runs";

  if (known->has_value()) {
    auto patched = client_.send({.method = "PATCH",
                                 .url = api(api_url_, base + "/" + path_segment(**known)),
                                 .headers = github_headers(*token),
                                 .body = payload,
                                 .timeout = std::chrono::seconds(30)});
    auto r = read_answer(patched, "GitHub", clock_.now_ms() / 1000);
    if (r.http_status != 404) return r;  // gone (deleted with its suite): made anew below
  }
  auto created = client_.send({.method = "POST", .url = api(api_url_, base), .headers = github_headers(*token), .body = payload,
                               .timeout = std::chrono::seconds(30)});
  auto r = read_answer(created, "GitHub", clock_.now_ms() / 1000);
  if (!r.ok) return r;
  auto j = nlohmann::json::parse(created->body, nullptr, false);
  if (j.is_object() && j.contains("id") && j["id"].is_number_integer()) {
    // Losing it only means the next state makes a new run of the same name,
    // which GitHub shows in its place.
    (void)ids_.remember(key, std::to_string(j["id"].get<std::int64_t>()));
  }
  return r;
}

}  // namespace flurry::forge
