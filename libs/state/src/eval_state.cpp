#include "flurry/state/store.hpp"

namespace flurry::state {

std::string_view to_string(EvalState s) {
  switch (s) {
    case EvalState::kEvaluating: return "evaluating";
    case EvalState::kBuilding: return "building";
    case EvalState::kSucceeded: return "succeeded";
    case EvalState::kFailed: return "failed";
    case EvalState::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::optional<EvalState> parse_eval_state(std::string_view s) {
  for (auto v : {EvalState::kEvaluating, EvalState::kBuilding, EvalState::kSucceeded, EvalState::kFailed, EvalState::kCancelled}) {
    if (to_string(v) == s) return v;
  }
  return std::nullopt;
}

bool ended_by_evaluation(msg::JobState s) {
  using msg::JobState;
  return s == JobState::kEvalFailed || s == JobState::kSkipped || s == JobState::kUnsupportedSystem ||
         s == JobState::kCachedFailure || s == JobState::kDependencyFailed;
}

}  // namespace flurry::state
