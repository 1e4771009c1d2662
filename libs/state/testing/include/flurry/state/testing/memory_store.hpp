#pragma once
// An in-memory StateStore: the reference semantics for the Redis adapter.
// Both pass libs/state/tests/state_contract.hpp.
#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "flurry/state/store.hpp"

namespace flurry::state::testing {

class MemoryStore final : public StateStore {
 public:
  Result<bool> create_eval(const EvalRecord& eval) override;
  Result<std::optional<EvalRecord>> get_eval(const std::string& eval_id) override;
  Result<Transition> add_jobs(const std::string& eval_id, const std::vector<JobSpec>& jobs, std::int64_t now_ms,
                              bool complete = true) override;
  Result<void> add_eval_warnings(const std::string& eval_id, const std::vector<std::string>& warnings) override;
  Result<EvalRecord> fail_eval(const std::string& eval_id, const std::string& error, std::int64_t now_ms) override;
  Result<std::string> supersede(const std::string& ref_key, const std::string& eval_id, std::int64_t received_ms) override;
  Result<std::string> ref_head(const std::string& ref_key) override;
  Result<void> put_forge_ref(const std::string& key, const std::string& value, int ttl_seconds) override;
  Result<std::optional<std::string>> get_forge_ref(const std::string& key) override;
  Result<void> set_projects(const std::string& forge, const std::vector<std::string>& full_names) override;
  Result<std::optional<bool>> is_project(const std::string& forge, const std::string& full_name) override;
  Result<std::vector<std::string>> list_projects(const std::string& forge) override;
  Result<Transition> cancel_eval(const std::string& eval_id, const std::string& reason, std::int64_t now_ms,
                                 EvalState ends_as = EvalState::kCancelled) override;
  Result<std::optional<JobRecord>> get_job(const std::string& job_id) override;
  Result<std::vector<JobRecord>> list_jobs(const std::string& eval_id) override;
  Result<msg::JobState> start_job(const std::string& job_id, std::int64_t now_ms) override;
  Result<Transition> finish_job(const std::string& job_id, msg::JobState state, const std::string& error, std::int64_t now_ms) override;
  Result<void> append_log(const std::string& job_id, const std::string& chunk, std::size_t cap) override;
  Result<std::string> get_log(const std::string& job_id) override;
  Result<LogSlice> read_log(const std::string& job_id, std::size_t offset, std::size_t max_bytes) override;
  Result<bool> claim_once(const std::string& key, int ttl_seconds) override;
  Result<bool> advance_status(const std::string& context_key, std::int64_t at_us) override;
  Result<void> record_failed_build(const std::string& drv_path, const FailedBuild& failure) override;
  Result<std::map<std::string, FailedBuild>> failed_builds(const std::vector<std::string>& drv_paths) override;
  Result<bool> clear_failed_build(const std::string& drv_path) override;
  Result<bool> claim_drv_build(const std::string& drv, const std::string& job_id, std::int64_t now_ms, std::int64_t lease_ms) override;
  Result<void> finish_drv_build(const std::string& drv, const std::string& job_id, const std::optional<DrvBuildResult>& result,
                                std::int64_t result_ttl_ms) override;
  Result<DrvBuildStatus> await_drv_build(const std::string& drv, const std::string& job_id, std::int64_t now_ms,
                                         std::int64_t lease_ms) override;
  Result<DrvBuildStatus> drv_build_status(const std::string& drv, std::int64_t now_ms) override;
  Result<void> register_builder(const BuilderInfo& b, std::int64_t ttl_ms) override;
  Result<std::vector<BuilderInfo>> list_builders(std::int64_t now_ms) override;
  Result<void> put_effect(const EffectRecord& effect) override;
  Result<std::vector<EffectRecord>> list_effects(const std::string& eval_id) override;
  bool healthy() override { return !down_; }

  // Makes every call fail as a lost connection would (from any thread).
  void set_down(bool down) { down_ = down; }

  // A store that loses writes it acknowledged, as a Redis restarted from an
  // AOF without its last writes does: checkpoint() remembers everything as
  // it is now, and once the next call of `op` (a method name such as
  // "finish_job") has answered, the store is put back to that checkpoint.
  // Methods that can lose their writes: create_eval, add_jobs, fail_eval,
  // cancel_eval, start_job, finish_job, put_effect.
  void checkpoint();
  void roll_back_after(std::string op);

 private:
  struct Job {
    JobRecord rec;  // rec.deps_pending: edges to jobs that have not ended
    std::vector<std::string> deps;
    std::vector<std::string> children;
    std::optional<Transition> transition;
  };
  struct Eval {
    EvalRecord rec;
    std::vector<std::string> job_ids;
    std::optional<Transition> cancel;
    bool cancelled = false;
    bool complete = false;  // the call with `complete` came: the eval may end
  };
  // Ends `job` (already set terminal by the caller) in its eval's counters,
  // releases or fails its dependents and ends the eval when it may; fills `t`.
  void settle_locked(Job& job, Eval& eval, Transition& t, std::int64_t now_ms);
  // Fails every transitive dependent in `children` that has not ended, with
  // an error naming `attr`; counts them and lists them in `t`.
  void fail_dependents_locked(const std::vector<std::string>& children, const std::string& attr, Eval& eval,
                              Transition& t, std::int64_t now_ms);
  // The ids of `ids` (once each, jobs of `eval_id` only) that are queued
  // with nothing pending, and those that ended dependency_failed.
  Transition standing_locked(const std::string& eval_id, const std::vector<std::string>& ids) const;

  struct DrvBuild {
    std::string owner;
    std::int64_t owner_until = 0;
    std::optional<DrvBuildResult> last;
    std::int64_t last_until = 0;
    std::map<std::string, std::int64_t> waiters;  // job -> waiting until
  };
  DrvBuildStatus drv_status_locked(const std::string& drv, std::int64_t now_ms);
  // The jobs `ids` that are terminal, as they are now.
  std::vector<JobRecord> ended_locked(const std::vector<std::string>& ids) const;
  EvalTally tally_locked(const EvalRecord& e) const;
  // Puts the store back to the checkpoint if `op` is the call to lose.
  class Losing;

  struct RefHead {
    std::string eval;
    std::int64_t received_ms = 0;
    std::string replaced;
  };
  // Everything stored: one value, so that a checkpoint is a copy.
  struct Data {
    std::map<std::string, FailedBuild> failed_builds;
    std::map<std::string, DrvBuild> drv_builds;
    std::map<std::string, std::pair<BuilderInfo, std::int64_t>> builders;  // id -> (info, present until)
    std::map<std::string, Eval> evals;
    std::map<std::string, Job> jobs;
    std::map<std::string, std::string> logs;
    std::set<std::string> claims;
    std::map<std::string, std::string> forge_refs;
    std::map<std::string, std::set<std::string>> projects;  // forge -> full names (present once set_projects ran)
    std::map<std::string, std::int64_t> statuses;
    std::map<std::string, RefHead> ref_heads;
    std::map<std::string, std::map<std::string, EffectRecord>> effects;
  };
  std::mutex mu_;
  std::atomic<bool> down_{false};
  Data d_;
  Data checkpoint_;
  std::string lose_after_;  // the call whose answer is followed by a roll back
};

}  // namespace flurry::state::testing
