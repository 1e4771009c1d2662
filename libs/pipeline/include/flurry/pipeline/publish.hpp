#pragma once
// What evaluator and builder both do after a state change: turn a
// state::Transition into bus messages (build requests for released jobs,
// job.finished and a commit status for each job that ended, eval.finished
// when the eval ended). Every message carries a deterministic msg id, so
// publishing the same transition twice (after a crash) is harmless.
#include <string>
#include <vector>

#include "flurry/bus/bus.hpp"
#include "flurry/core/clock.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/state/store.hpp"

namespace flurry::pipeline {

struct Ports {
  bus::Bus& bus;
  state::StateStore& state;
};

struct Links {
  std::string public_url;  // web base URL for target_url; empty = none
};

// "flurry/eval", "flurry/effects", and "flurry/<attr>" per job.
inline constexpr std::string_view kEvalContext = "flurry/eval";
inline constexpr std::string_view kEffectsContext = "flurry/effects";
std::string job_context(const std::string& attr);

// The commit status for a job in its current state. at_us is derived from
// the job's timestamps so a republished status orders the same way:
// queued at the eval's creation, building at the build's start, terminal
// just after its end.
msg::StatusEvent job_status(const state::EvalRecord& eval, const state::JobRecord& job, const Links& links);
msg::StatusEvent eval_status(const state::EvalRecord& eval, msg::StatusState s, const std::string& description,
                             std::int64_t at_us, const Links& links);

// Any status: the description is cut to its first line and 140 bytes
// (GitHub's limit), never splitting a UTF-8 character; when that cut
// anything, `details` holds the whole of it (up to msg::kMaxStatusDetails).
msg::StatusEvent make_status(const std::string& eval_id, const msg::Repo& repo, const std::string& rev, std::string context,
                             msg::StatusState state, const std::string& description, std::int64_t at_us,
                             std::string target_url);

Result<void> publish_status(bus::Bus& bus, const msg::StatusEvent& status);
// A job's build request, carrying its eval's repository and commit (for
// the status its build's start posts).
Result<void> publish_build_request(bus::Bus& bus, const state::EvalRecord& eval, const state::JobRecord& job);
Result<void> publish_job_finished(bus::Bus& bus, const state::JobRecord& job);
// eval.finished for `eval` (its identity) ending `ended_as` with the
// counters of the change that ended it.
Result<void> publish_eval_finished(bus::Bus& bus, const state::EvalRecord& eval, state::EvalState ended_as,
                                   const state::EvalTally& tally);

// Publishes what `t` implies: job.finished and a terminal status for each
// record in `t.ended` (as the change wrote it, never read again: a store
// restarted without its last writes, or a job that moved on, must not put
// a non-terminal state in a job.finished), build requests for `t.ready`,
// and eval.finished (with `t`'s state and counters) when the change ended
// the eval. `eval` gives the eval's identity only; the overload taking an
// id reads it.
Result<void> publish_transition(Ports ports, const state::EvalRecord& eval, const state::Transition& t, const Links& links);
Result<void> publish_transition(Ports ports, const std::string& eval_id, const state::Transition& t, const Links& links);

// How a cancelled eval shows on flurry/eval.
struct CancelStatus {
  msg::StatusState state = msg::StatusState::kError;
  std::string prefix = "Cancelled: ";
  // Post it even when the cancel changed nothing (the eval had ended): for
  // an eval failing itself, not for superseding or cancelling another.
  bool always = false;
  // The state the eval ends in: cancelled, or failed (its own evaluation
  // failed after jobs were recorded).
  state::EvalState ends_as = state::EvalState::kCancelled;
};

// Cancels an eval (state::StateStore::cancel_eval) and publishes what that
// set in motion: cancelled jobs' statuses and job.finished, eval.finished,
// and the eval's own status (later than any it posted itself). Safe to
// repeat: the store returns the first call's transition.
Result<state::Transition> cancel_and_publish(Ports ports, const std::string& eval_id, const std::string& reason,
                                             std::int64_t now_ms, const CancelStatus& shown, const Links& links);

}  // namespace flurry::pipeline
