#pragma once
// GitHub check runs (a GitHub App's installation token is required): one
// check run per commit and context, created with
// POST /repos/{owner}/{repo}/check-runs and moved on with
// PATCH /repos/{owner}/{repo}/check-runs/{id}; the id is remembered per
// (repository, commit, context). A run shows the state (queued while a
// job waits, in_progress from its build's start, then GitHub's
// conclusions: success, failure, timed_out, cancelled, neutral), the
// description, a link, and for a failed job the tail of its build log (an
// evaluation error: nix's whole message). Its
// external_id names the job ("job:<id>") or the eval ("eval:<id>"), so the
// Re-run button (check_run rerequested) says what to build again.
#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include "flurry/core/clock.hpp"
#include "flurry/forge/github_app.hpp"
#include "flurry/forge/status_poster.hpp"

namespace flurry::forge {

// Where check run ids are remembered (the reporter: Redis).
class CheckRunIds {
 public:
  virtual ~CheckRunIds() = default;
  virtual Result<std::optional<std::string>> find(const std::string& key) = 0;
  virtual Result<void> remember(const std::string& key, const std::string& id) = 0;
};

// Where a job's build log is read (the reporter: Redis).
class JobLogs {
 public:
  virtual ~JobLogs() = default;
  virtual Result<std::string> log(const std::string& job_id) = 0;
};

// The check run fields for a status (exposed for tests). Within GitHub's
// limits: summary and text at most 65,535 bytes each as sent (invalid
// UTF-8 counted as the U+FFFD it becomes), title at most 1,000.
struct CheckRunFields {
  std::string status;      // queued (waiting) | in_progress (building) | completed
  std::string conclusion;  // when completed
  std::string started_at;    // in_progress: when the build started (ISO 8601)
  std::string completed_at;  // completed: when it ended
  std::string title, summary, text;
  std::string external_id;
};
// `log` is the job's build log ("" when none or not wanted): a failed
// build's text is its last lines. Without a log, the status's `details`
// (nix's whole evaluation error) is the text. kReduced: no text, no link,
// a short title and summary.
CheckRunFields check_run_fields(const msg::StatusEvent& s, const std::string& log, Detail detail = Detail::kFull);

// The external_id's parts: {"job", id} or {"eval", id}; nullopt otherwise.
// Inline: the webhook parsers read it without linking the checks client.
inline std::optional<std::pair<std::string, std::string>> parse_external_id(const std::string& external_id) {
  for (const std::string kind : {"job", "eval"}) {
    if (external_id.size() > kind.size() + 1 && external_id.compare(0, kind.size() + 1, kind + ":") == 0) {
      return std::make_pair(kind, external_id.substr(kind.size() + 1));
    }
  }
  return std::nullopt;
}

class GitHubChecksClient final : public StatusPoster {
 public:
  GitHubChecksClient(http::Client& client, std::string api_url, GitHubTokens& tokens, Clock& clock, CheckRunIds& ids,
                     JobLogs& logs);
  PostResult post(const msg::StatusEvent& status, Detail detail) override;

 private:
  http::Client& client_;
  std::string api_url_;
  GitHubTokens& tokens_;
  Clock& clock_;
  CheckRunIds& ids_;
  JobLogs& logs_;
};

}  // namespace flurry::forge
