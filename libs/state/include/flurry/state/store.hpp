#pragma once
// The build-state store port. Production: Redis (redis_store.hpp, every
// multi-key change one Lua script). Tests: MemoryStore
// (testing/memory_store.hpp). Both pass tests/state_contract.
//
// Every mutating call is safe to repeat with the same arguments: handlers
// run again after a crash or redelivery.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "flurry/core/error.hpp"
#include "flurry/messages/job_state.hpp"
#include "flurry/messages/messages.hpp"

namespace flurry::state {

enum class EvalState { kEvaluating, kBuilding, kSucceeded, kFailed, kCancelled };
std::string_view to_string(EvalState s);
std::optional<EvalState> parse_eval_state(std::string_view s);

struct EvalRecord {
  std::string id;
  std::string change_id;
  msg::Repo repo;
  std::string ref;
  std::string branch;
  std::string tag;
  std::string rev;
  EvalState state = EvalState::kEvaluating;
  std::string error;  // why the eval failed as a whole
  std::int64_t created_ms = 0;
  std::int64_t finished_ms = 0;
  int jobs_total = 0;
  int jobs_pending = 0;  // not yet terminal
  int jobs_failed = 0;   // terminal and not a success
  // cancel_eval was called (with this reason): queued jobs ended, builders
  // stop the jobs still building; the eval ends cancelled when they have.
  bool cancelled = false;
  std::string cancel_reason;
  // How it ends once nothing builds: cancelled, or failed (an evaluation
  // failure cancelled it; `error` is that failure).
  EvalState cancel_ends_as = EvalState::kCancelled;
  // What nix warned about while evaluating, in the order first reported,
  // without repeats (add_eval_warnings).
  std::vector<std::string> warnings;
  // The change event that made it, encoded (msg::encode): what a re-run
  // evaluates again. Empty for evals made before it was kept.
  std::string change;
};

// A job as the evaluator hands it over.
struct JobSpec {
  std::string id;  // unique across evals; see ids.hpp
  std::string attr;
  std::string drv_path;  // empty for eval_failed
  std::string system;
  std::map<std::string, std::string> outputs;
  msg::JobState state = msg::JobState::kQueued;  // queued, eval_failed, skipped or unsupported_system
  std::string error;                             // nix's text for eval_failed
  std::string cache_status;                      // see JobRecord::cache_status
  std::vector<std::string> deps;                 // ids of jobs of the same eval (this batch or earlier) it waits for
  std::string name;  // the derivation's name (empty for eval_failed)
  std::vector<std::string> features;  // the derivation's requiredSystemFeatures
};

struct JobRecord {
  std::string id;
  std::string eval_id;
  std::string attr;
  std::string drv_path;
  std::string system;
  std::map<std::string, std::string> outputs;
  msg::JobState state = msg::JobState::kQueued;
  std::string error;
  // What evaluation found of its outputs: "local" (all valid in the local
  // store: the job is skipped), "cached" (all in a configured binary
  // cache: building substitutes them), "notBuilt", or "" (no derivation).
  std::string cache_status;
  std::int64_t started_ms = 0;
  std::int64_t finished_ms = 0;
  int attempts = 0;  // times a builder started it
  int deps_pending = 0;  // dependencies not yet ended (counted down only while queued)
  std::string name;  // the derivation's name
  std::vector<std::string> features;  // requiredSystemFeatures: only builders offering all of them build it
  bool operator==(const JobRecord&) const = default;
};

// An eval's counters as one change left them.
struct EvalTally {
  int jobs_total = 0;
  int jobs_pending = 0;
  int jobs_failed = 0;
  std::int64_t finished_ms = 0;  // when the eval ended; 0 while it runs
  bool operator==(const EvalTally&) const = default;
};

// What one change (a job reaching a terminal state, a batch of jobs, a
// cancel) set in motion, as the store made it: everything a caller
// publishes comes from here, never from reading the store again, because a
// read after the write can see a store that lost the write (a Redis
// restarted from an AOF without its last writes) or a job that moved on.
// Stored with the job (or the cancel) so that a repeat returns it again and
// the caller can republish.
struct Transition {
  std::vector<std::string> ready;              // job ids that may build now
  std::vector<std::string> dependency_failed;  // job ids that ended dependency_failed
  bool eval_finished = false;                  // this change ended the eval
  EvalState eval_state = EvalState::kBuilding;
  std::vector<std::string> cancelled;  // job ids that ended cancelled (cancel_eval)
  // The records of the jobs whose end the caller announces (job.finished, a
  // terminal status), as the store wrote them; always terminal. finish_job:
  // the job itself, then its dependency_failed dependents; cancel_eval: the
  // cancelled jobs; add_jobs: the jobs of the batch (the replay: of the
  // eval) that evaluation or a failed dependency ended (eval_failed,
  // skipped, unsupported_system, cached_failure, dependency_failed).
  std::vector<JobRecord> ended;
  EvalTally tally;  // the eval's counters right after the change
  bool operator==(const Transition&) const = default;
};

// States only evaluation or a failed dependency give a job: add_jobs
// reports jobs in them among Transition::ended.
bool ended_by_evaluation(msg::JobState s);

struct EffectRecord {
  std::string eval_id;
  std::string name;  // "<job>.<effect>", e.g. "default.deploy"
  std::string state;  // "running" | "succeeded" | "failed"
  std::string log;
  std::int64_t finished_ms = 0;
};

// A builder instance as it announces itself.
struct BuilderInfo {
  std::string id;                     // unique per instance, e.g. "host:pid"
  std::vector<std::string> systems;   // systems whose queues it takes work from
  std::vector<std::string> features;  // Nix system features it supports (kvm, big-parallel, ...)
  int slots = 0;
  int busy = 0;
  std::int64_t seen_ms = 0;  // when it last announced itself
  bool operator==(const BuilderInfo&) const = default;
};

// How one build of a derivation ended, for the jobs that waited for it.
struct DrvBuildResult {
  msg::JobState state = msg::JobState::kSucceeded;  // succeeded, failed or timed_out
  std::string error;
  std::string job_id;  // the job whose builder built it
  std::string attr;
  std::int64_t at_ms = 0;
  bool operator==(const DrvBuildResult&) const = default;
};

// Who builds a derivation now, and how its last build ended.
struct DrvBuildStatus {
  std::string owner;                   // job holding a live claim; "" if none
  std::optional<DrvBuildResult> last;  // kept for a while after a build ends
  int waiters = 0;                     // jobs waiting for it (live registrations)
};

// The first failure of a derivation, for the failed-build cache.
struct FailedBuild {
  std::string job_id;
  std::string eval_id;
  std::string attr;
  std::string error;
  std::int64_t at_ms = 0;
  bool operator==(const FailedBuild&) const = default;
};

// A piece of a build log (StateStore::read_log).
struct LogSlice {
  std::string bytes;
  std::size_t size = 0;  // the whole stored log's
  bool operator==(const LogSlice&) const = default;
};

// Limits of add_eval_warnings: a broken flake can warn without end.
inline constexpr std::size_t kMaxWarnings = 100;
inline constexpr std::size_t kMaxWarningBytes = 4096;

class StateStore {
 public:
  virtual ~StateStore() = default;

  // Creates the eval in state evaluating. Returns false (and changes
  // nothing) if an eval with this id exists.
  virtual Result<bool> create_eval(const EvalRecord& eval) = 0;
  virtual Result<std::optional<EvalRecord>> get_eval(const std::string& eval_id) = 0;
  // Records one batch of an eval's jobs with their dependency edges; an
  // eval may get its jobs in several batches while it is evaluated. A job
  // whose id exists is not added again. A dependency is an edge only to a
  // job of this eval that exists or is in this batch (others are ignored):
  // one on a job that already succeeded is met, one on a job that already
  // failed makes the new job (and its dependents in the batch) born
  // dependency_failed. Jobs created terminal count as finished at once.
  //
  // The eval stays evaluating until the call with `complete` marks its job
  // set complete and moves it to building; only then can it end, here if
  // nothing is pending (eval_finished set) or in the finish_job that ends
  // its last job.
  //
  // Returns the batch's standing: `ready` holds its queued jobs with no
  // pending dependency, `dependency_failed` its jobs in dependency_failed
  // (new or not), so a repeated batch answers the same. Once the job set is
  // complete, a call with `complete` adds nothing and returns the standing
  // of every job of the eval (eval_finished set if the eval has ended):
  // `add_jobs(id, {}, now)` is the replay after a crash or a lost reply.
  //
  // kNotFound for an unknown eval; kRejected once the eval was cancelled or
  // failed by fail_eval (before its job set was complete), or for a call
  // without `complete` once the job set is complete.
  virtual Result<Transition> add_jobs(const std::string& eval_id, const std::vector<JobSpec>& jobs, std::int64_t now_ms,
                                      bool complete = true) = 0;
  // Appends each warning not already stored (compared after truncation to
  // kMaxWarningBytes), keeping their order; at most kMaxWarnings are kept.
  // kNotFound for an unknown eval.
  virtual Result<void> add_eval_warnings(const std::string& eval_id, const std::vector<std::string>& warnings) = 0;
  // The eval could not be evaluated at all: failed with `error`, finished.
  // No-op if the eval already ended. Returns the eval as the call left it
  // (without warnings): what the caller publishes. kNotFound for an
  // unknown eval.
  virtual Result<EvalRecord> fail_eval(const std::string& eval_id, const std::string& error, std::int64_t now_ms) = 0;

  // Makes `eval_id` the newest eval of `ref_key` (one branch or pull
  // request of one project) unless a change received later already holds
  // it. Returns the eval the caller should cancel: the one it replaced, or
  // `eval_id` itself when the caller's change is the older one; "" when
  // nothing is superseded. A repeat by the eval holding the key answers the
  // same as its first call did (so a crashed caller can finish the cancel).
  virtual Result<std::string> supersede(const std::string& ref_key, const std::string& eval_id, std::int64_t received_ms) = 0;
  // The eval holding `ref_key` now (the last supersede that won); "" when
  // none did.
  virtual Result<std::string> ref_head(const std::string& ref_key) = 0;
  // Cancels an eval: every queued job ends cancelled with `reason`; the
  // eval record shows `cancelled` and `cancel_reason` so that builders stop
  // the jobs still building, and when the last one ends the eval ends
  // cancelled (at once if none is building). This holds for an eval
  // still evaluating too (its eval error becomes `reason`); a later add_jobs
  // is refused. No-op for an ended eval. A repeat returns the first call's
  // transition. With `ends_as` kFailed (its evaluation failed after some
  // jobs were recorded) the same happens, the eval's error becomes
  // `reason` and it ends failed instead.
  virtual Result<Transition> cancel_eval(const std::string& eval_id, const std::string& reason, std::int64_t now_ms,
                                         EvalState ends_as = EvalState::kCancelled) = 0;

  virtual Result<std::optional<JobRecord>> get_job(const std::string& job_id) = 0;
  virtual Result<std::vector<JobRecord>> list_jobs(const std::string& eval_id) = 0;
  // queued -> building (and counts an attempt). Returns the state the job
  // is in afterwards: building (now or already: a previous builder died),
  // or the terminal state it already reached.
  virtual Result<msg::JobState> start_job(const std::string& job_id, std::int64_t now_ms) = 0;
  // queued|building -> `state` (terminal). Fails every transitive dependent
  // as dependency_failed (error names this job's attr), releases dependents
  // whose last dependency this was, counts down the eval and ends it when
  // nothing is pending and its job set is complete (or it was cancelled).
  // If the job is already terminal, changes nothing and returns the
  // transition stored when it ended, with the job's own record first in
  // `ended` however it ended.
  virtual Result<Transition> finish_job(const std::string& job_id, msg::JobState state, const std::string& error, std::int64_t now_ms) = 0;

  // Build logs, capped to the last `cap` bytes.
  virtual Result<void> append_log(const std::string& job_id, const std::string& chunk, std::size_t cap) = 0;
  virtual Result<std::string> get_log(const std::string& job_id) = 0;
  // At most `max_bytes` of the stored log from byte `offset`, and the
  // stored log's size then (one read: the two agree). An offset at or past
  // the end gives no bytes. What a reader of a long log uses instead of
  // get_log.
  virtual Result<LogSlice> read_log(const std::string& job_id, std::size_t offset, std::size_t max_bytes) = 0;

  // First caller for `key` within `ttl_seconds` gets true; later ones false.
  virtual Result<bool> claim_once(const std::string& key, int ttl_seconds) = 0;
  // Records at_us for a status context if it is not older than the stored
  // one; true if the caller should post this status.
  virtual Result<bool> advance_status(const std::string& context_key, std::int64_t at_us) = 0;

  // Failed-build cache. Remembers the first failure of `drv_path`; a later
  // one changes nothing (the cache links to the first).
  virtual Result<void> record_failed_build(const std::string& drv_path, const FailedBuild& failure) = 0;
  // The recorded failures among `drv_paths`, by drv path.
  virtual Result<std::map<std::string, FailedBuild>> failed_builds(const std::vector<std::string>& drv_paths) = 0;
  // Forgets `drv_path`'s failure (a rebuild was asked for); true if there was one.
  virtual Result<bool> clear_failed_build(const std::string& drv_path) = 0;

  // One build per derivation across evals. Claims the build of `drv` for
  // `job_id` until now_ms + lease_ms: true if the caller holds it now (it
  // was free, its holder's lease ran out, or it was the caller's: renewal).
  virtual Result<bool> claim_drv_build(const std::string& drv, const std::string& job_id, std::int64_t now_ms,
                                       std::int64_t lease_ms) = 0;
  // The caller's build of `drv` ended: `result` (if any; none for a
  // cancelled or unrun build) is kept for result_ttl_ms for the jobs that
  // waited, and the claim is freed if it is still the caller's.
  virtual Result<void> finish_drv_build(const std::string& drv, const std::string& job_id,
                                        const std::optional<DrvBuildResult>& result, std::int64_t result_ttl_ms) = 0;
  // Registers `job_id` as waiting for `drv` until now_ms + lease_ms (a
  // repeat refreshes it) and returns the derivation's status.
  virtual Result<DrvBuildStatus> await_drv_build(const std::string& drv, const std::string& job_id, std::int64_t now_ms,
                                                 std::int64_t lease_ms) = 0;
  // The derivation's status without waiting.
  virtual Result<DrvBuildStatus> drv_build_status(const std::string& drv, std::int64_t now_ms) = 0;

  // Announces (or refreshes) a builder: it is present until
  // b.seen_ms + ttl_ms unless it announces itself again.
  virtual Result<void> register_builder(const BuilderInfo& b, std::int64_t ttl_ms) = 0;
  // The builders present at now_ms, ordered by id.
  virtual Result<std::vector<BuilderInfo>> list_builders(std::int64_t now_ms) = 0;

  virtual Result<void> put_effect(const EffectRecord& effect) = 0;
  virtual Result<std::vector<EffectRecord>> list_effects(const std::string& eval_id) = 0;

  // Small facts about forge objects (a check run's id per commit and
  // context), kept for `ttl_seconds`; put replaces.
  virtual Result<void> put_forge_ref(const std::string& key, const std::string& value, int ttl_seconds) = 0;
  virtual Result<std::optional<std::string>> get_forge_ref(const std::string& key) = 0;

  // The project registry project discovery keeps, per forge. set_projects
  // replaces the projects of `forge` with `full_names` ("owner/name",
  // stored byte for byte; repeats count once) in one step: readers see the
  // old list or the new one, never a mix. An empty list is a list too:
  // discovery ran and found no project.
  virtual Result<void> set_projects(const std::string& forge, const std::vector<std::string>& full_names) = 0;
  // Whether `full_name` is a project of `forge`: nullopt when set_projects
  // never ran for `forge` (discovery does not cover it: nothing is gated).
  virtual Result<std::optional<bool>> is_project(const std::string& forge, const std::string& full_name) = 0;
  // The projects of `forge`, sorted bytewise; empty when none or never set.
  virtual Result<std::vector<std::string>> list_projects(const std::string& forge) = 0;

  // True if the store answers.
  virtual bool healthy() = 0;
};

}  // namespace flurry::state
