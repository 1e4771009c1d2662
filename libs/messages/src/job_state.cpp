#include "flurry/messages/job_state.hpp"

#include <array>
#include <utility>

#include "flurry/core/text.hpp"
#include "flurry/messages/subjects.hpp"

namespace flurry::msg {
namespace {
constexpr std::array<std::pair<JobState, std::string_view>, 11> kNames{{
    {JobState::kQueued, "queued"},
    {JobState::kBuilding, "building"},
    {JobState::kSucceeded, "succeeded"},
    {JobState::kFailed, "failed"},
    {JobState::kDependencyFailed, "dependency_failed"},
    {JobState::kCachedFailure, "cached_failure"},
    {JobState::kTimedOut, "timed_out"},
    {JobState::kCancelled, "cancelled"},
    {JobState::kEvalFailed, "eval_failed"},
    {JobState::kSkipped, "skipped"},
    {JobState::kUnsupportedSystem, "unsupported_system"},
}};
}  // namespace

std::string_view to_string(JobState s) {
  for (const auto& [k, v] : kNames) {
    if (k == s) return v;
  }
  return "unknown";
}

std::optional<JobState> parse_job_state(std::string_view s) {
  for (const auto& [k, v] : kNames) {
    if (v == s) return k;
  }
  return std::nullopt;
}

bool is_terminal(JobState s) { return s != JobState::kQueued && s != JobState::kBuilding; }
bool is_success(JobState s) { return s == JobState::kSucceeded || s == JobState::kSkipped; }

std::string_view to_string(StatusState s) {
  switch (s) {
    case StatusState::kPending: return "pending";
    case StatusState::kSuccess: return "success";
    case StatusState::kFailure: return "failure";
    case StatusState::kError: return "error";
  }
  return "error";
}

std::optional<StatusState> parse_status_state(std::string_view s) {
  if (s == "pending") return StatusState::kPending;
  if (s == "success") return StatusState::kSuccess;
  if (s == "failure") return StatusState::kFailure;
  if (s == "error") return StatusState::kError;
  return std::nullopt;
}

StatusState status_for(JobState s) {
  switch (s) {
    case JobState::kQueued:
    case JobState::kBuilding: return StatusState::kPending;
    case JobState::kSucceeded:
    case JobState::kSkipped: return StatusState::kSuccess;
    case JobState::kCancelled: return StatusState::kError;
    default: return StatusState::kFailure;
  }
}

}  // namespace flurry::msg
