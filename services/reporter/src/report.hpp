#pragma once
// The reporter's handler: a status event becomes a forge API call, in order
// per context (an older status never overwrites a newer one). Big evals
// are reported in one combined context plus their failures, so that a
// 10,000-job eval never floods a forge's API.
#include <chrono>
#include <functional>
#include <string>

#include "flurry/bus/bus.hpp"
#include "flurry/core/clock.hpp"
#include "flurry/forge/status_poster.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/state/store.hpp"

namespace flurry::reporter {

// The poster of a forge ("github", "gitea", "gitlab"); null when that forge
// is not configured.
using PosterFor = std::function<forge::StatusPoster*(const std::string& forge)>;

struct ReportConfig {
  // Up to this many jobs an eval gets one status per job. Past it, a job's
  // status is posted only when it failed (at most max_failure_statuses of
  // them) or its context was posted before (so nothing stays pending), and
  // "flurry/builds" says how many of how many are done and failed.
  int max_job_statuses = 50;
  int max_failure_statuses = 50;
  // How often the combined context shows progress (its end always shows).
  std::chrono::milliseconds combined_interval{std::chrono::seconds(30)};
};

inline constexpr std::string_view kCombinedContext = "flurry/builds";

struct ReportPorts {
  state::StateStore& state;
  PosterFor posters;
  Clock& clock;
};

struct ReportOutcome {
  bus::Disposition disposition;
  // posted; reduced (the forge refused the full post and took the reduced
  // one); refused (it refused both); stale, skipped, combined, retry
  std::string result;
  std::string detail;
  int refused_status = 0;  // reduced, refused: the HTTP status of the refusal
};

// The outcomes every reporter handler ends with: done (acknowledged, with
// its result), and retry (the error model decides nak or dead letter).
inline ReportOutcome acked(std::string result, std::string detail = "") {
  return {bus::Disposition::ack(), std::move(result), std::move(detail)};
}
inline ReportOutcome retried(const Error& e, std::uint64_t num_delivered) {
  return {bus::disposition_for(e, num_delivered), "retry", e.message};
}

// The per-context ordering key: forge/owner/repo/sha/context.
std::string context_key(const msg::StatusEvent& s);

ReportOutcome handle_status(const msg::StatusEvent& status, std::uint64_t num_delivered, ReportPorts ports,
                            const ReportConfig& cfg = {});

}  // namespace flurry::reporter
