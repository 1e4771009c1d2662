#pragma once
#include <optional>
#include <string_view>

namespace flurry::msg {

// DESIGN.md's job state machine. Terminal states never change except by an
// explicit rebuild.
enum class JobState {
  kQueued,
  kBuilding,
  kSucceeded,
  kFailed,
  kDependencyFailed,
  kCachedFailure,
  kTimedOut,
  kCancelled,
  kEvalFailed,
  kSkipped,  // outputs already valid; counts as success
  kUnsupportedSystem,
};

std::string_view to_string(JobState s);
std::optional<JobState> parse_job_state(std::string_view s);
bool is_terminal(JobState s);
// Succeeded or skipped: dependents may build.
bool is_success(JobState s);

// Forge commit-status states.
enum class StatusState { kPending, kSuccess, kFailure, kError };
std::string_view to_string(StatusState s);
std::optional<StatusState> parse_status_state(std::string_view s);
// The forge state a job state is reported as.
StatusState status_for(JobState s);

}  // namespace flurry::msg
