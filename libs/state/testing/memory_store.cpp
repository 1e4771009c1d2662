#include "flurry/state/testing/memory_store.hpp"

#include <algorithm>

namespace flurry::state::testing {
namespace {
using msg::JobState;
Error down_error() { return Error::transient("memory store: down (injected)"); }
bool eval_ended(EvalState s) { return s == EvalState::kSucceeded || s == EvalState::kFailed || s == EvalState::kCancelled; }
}  // namespace

// Held (under the store's lock) through one losable call: when the call is
// the one roll_back_after named, the store goes back to the checkpoint as
// the call returns, after its answer was made.
class MemoryStore::Losing {
 public:
  Losing(MemoryStore& s, std::string_view op) : s_(s), op_(op) {}
  ~Losing() {
    if (s_.lose_after_.empty() || s_.lose_after_ != op_) return;
    s_.lose_after_.clear();
    s_.d_ = s_.checkpoint_;
  }
  Losing(const Losing&) = delete;
  Losing& operator=(const Losing&) = delete;

 private:
  MemoryStore& s_;
  std::string_view op_;
};

void MemoryStore::checkpoint() {
  std::lock_guard lock(mu_);
  checkpoint_ = d_;
}

void MemoryStore::roll_back_after(std::string op) {
  std::lock_guard lock(mu_);
  lose_after_ = std::move(op);
}

std::vector<JobRecord> MemoryStore::ended_locked(const std::vector<std::string>& ids) const {
  std::vector<JobRecord> out;
  for (const auto& id : ids) {
    auto it = d_.jobs.find(id);
    if (it != d_.jobs.end() && msg::is_terminal(it->second.rec.state)) out.push_back(it->second.rec);
  }
  return out;
}

EvalTally MemoryStore::tally_locked(const EvalRecord& e) const {
  return {e.jobs_total, e.jobs_pending, e.jobs_failed, e.finished_ms};
}

Result<bool> MemoryStore::create_eval(const EvalRecord& eval) {
  std::lock_guard lock(mu_);
  Losing losing(*this, "create_eval");
  if (down_) return fail(down_error());
  if (d_.evals.count(eval.id)) return false;
  Eval e;
  e.rec = eval;
  e.rec.state = EvalState::kEvaluating;
  e.rec.jobs_total = e.rec.jobs_pending = e.rec.jobs_failed = 0;
  e.rec.warnings.clear();
  d_.evals[eval.id] = std::move(e);
  return true;
}

Result<std::optional<EvalRecord>> MemoryStore::get_eval(const std::string& eval_id) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = d_.evals.find(eval_id);
  if (it == d_.evals.end()) return std::optional<EvalRecord>();
  return std::optional<EvalRecord>(it->second.rec);
}

void MemoryStore::fail_dependents_locked(const std::vector<std::string>& children, const std::string& attr, Eval& eval,
                                         Transition& t, std::int64_t now_ms) {
  std::vector<std::string> stack(children.rbegin(), children.rend());
  while (!stack.empty()) {
    auto cid = stack.back();
    stack.pop_back();
    auto& child = d_.jobs.at(cid);
    if (msg::is_terminal(child.rec.state)) continue;
    child.rec.state = JobState::kDependencyFailed;
    child.rec.error = "dependency " + attr + " failed";
    child.rec.finished_ms = now_ms;
    eval.rec.jobs_pending -= 1;
    eval.rec.jobs_failed += 1;
    t.dependency_failed.push_back(cid);
    for (auto it = child.children.rbegin(); it != child.children.rend(); ++it) stack.push_back(*it);
  }
}

void MemoryStore::settle_locked(Job& job, Eval& eval, Transition& t, std::int64_t now_ms) {
  auto& e = eval.rec;
  e.jobs_pending -= 1;
  if (!msg::is_success(job.rec.state)) e.jobs_failed += 1;
  if (msg::is_success(job.rec.state)) {
    for (const auto& cid : job.children) {
      auto& child = d_.jobs.at(cid);
      if (child.rec.state != JobState::kQueued) continue;
      if (--child.rec.deps_pending == 0) t.ready.push_back(cid);
    }
  } else {
    fail_dependents_locked(job.children, job.rec.attr, eval, t, now_ms);
    // A job released earlier in this same transition may have failed since.
    std::erase_if(t.ready, [&](const std::string& id) { return d_.jobs.at(id).rec.state != JobState::kQueued; });
  }
  // An eval whose job set is still arriving does not end when its known
  // jobs have: more may come.
  if (e.jobs_pending == 0 && !eval_ended(e.state) && (eval.complete || eval.cancelled)) {
    e.state = eval.cancelled ? e.cancel_ends_as : e.jobs_failed == 0 ? EvalState::kSucceeded : EvalState::kFailed;
    e.finished_ms = now_ms;
    t.eval_finished = true;
  }
  t.eval_state = e.state;
}

Transition MemoryStore::standing_locked(const std::string& eval_id, const std::vector<std::string>& ids) const {
  Transition t;
  std::set<std::string> seen;
  for (const auto& id : ids) {
    auto it = d_.jobs.find(id);
    if (it == d_.jobs.end() || it->second.rec.eval_id != eval_id || !seen.insert(id).second) continue;
    const auto& r = it->second.rec;
    if (r.state == JobState::kQueued && r.deps_pending == 0) t.ready.push_back(id);
    if (r.state == JobState::kDependencyFailed) t.dependency_failed.push_back(id);
    if (ended_by_evaluation(r.state)) t.ended.push_back(r);
  }
  return t;
}

Result<Transition> MemoryStore::add_jobs(const std::string& eval_id, const std::vector<JobSpec>& specs, std::int64_t now_ms,
                                         bool complete) {
  std::lock_guard lock(mu_);
  Losing losing(*this, "add_jobs");
  if (down_) return fail(down_error());
  auto eit = d_.evals.find(eval_id);
  if (eit == d_.evals.end()) return fail(Error::not_found("eval " + eval_id + " not found"));
  auto& eval = eit->second;
  if (eval.complete) {
    if (!complete) return fail(Error::rejected("eval " + eval_id + ": job set already complete"));
    // A repeat of the last call, or a replay: the standing of every job.
    auto t = standing_locked(eval_id, eval.job_ids);
    t.eval_state = eval.rec.state;
    t.eval_finished = eval_ended(eval.rec.state);
    t.tally = tally_locked(eval.rec);
    return t;
  }
  if (eval.cancelled || eval_ended(eval.rec.state)) return fail(Error::rejected("eval " + eval_id + " already ended"));

  // Jobs new to the store, in batch order; ids that exist are left as they are.
  std::vector<const JobSpec*> fresh;
  std::set<std::string> fresh_ids;
  for (const auto& s : specs) {
    if (d_.jobs.count(s.id) || !fresh_ids.insert(s.id).second) continue;
    fresh.push_back(&s);
    Job j;
    j.rec = JobRecord{s.id, eval_id, s.attr, s.drv_path, s.system, s.outputs, s.state, s.error, s.cache_status, 0, 0, 0, 0, s.name, s.features};
    if (msg::is_terminal(s.state)) j.rec.finished_ms = now_ms;
    j.deps = s.deps;
    d_.jobs[s.id] = std::move(j);
    eval.job_ids.push_back(s.id);
  }
  // Edges: to a new job of this batch, or to a job of this eval that has not
  // ended. A dependency that already ended badly fails the new job below;
  // anything else (another eval's job, an unknown id, a success) is met.
  std::map<std::string, std::string> failed_by;  // new job -> attr of the ended dependency
  for (const auto* s : fresh) {
    auto& j = d_.jobs.at(s->id);
    for (const auto& d : s->deps) {
      auto dit = d_.jobs.find(d);
      if (dit == d_.jobs.end() || dit->second.rec.eval_id != eval_id) continue;
      auto& dep = dit->second;
      if (fresh_ids.count(d) || !msg::is_terminal(dep.rec.state)) {
        dep.children.push_back(s->id);
        j.rec.deps_pending += 1;
      } else if (!msg::is_success(dep.rec.state)) {
        failed_by.emplace(s->id, dep.rec.attr);
      }
    }
  }
  eval.rec.jobs_total += static_cast<int>(fresh.size());
  eval.rec.jobs_pending += static_cast<int>(fresh.size());
  // Every edge counts until its job settles, including jobs born terminal:
  // settling them here releases or fails their dependents in the batch.
  // The eval cannot end inside this loop: its job set is not complete yet.
  Transition t;
  for (const auto* s : fresh) {
    auto& j = d_.jobs.at(s->id);
    if (msg::is_terminal(s->state)) {
      settle_locked(j, eval, t, now_ms);
    } else if (auto f = failed_by.find(s->id); f != failed_by.end() && !msg::is_terminal(j.rec.state)) {
      j.rec.state = JobState::kDependencyFailed;
      j.rec.error = "dependency " + f->second + " failed";
      j.rec.finished_ms = now_ms;
      eval.rec.jobs_pending -= 1;
      eval.rec.jobs_failed += 1;
      fail_dependents_locked(j.children, f->second, eval, t, now_ms);
    }
  }
  if (complete) {
    eval.complete = true;
    eval.rec.state = EvalState::kBuilding;
    if (eval.rec.jobs_pending == 0) {  // nothing (left) to build
      eval.rec.state = eval.rec.jobs_failed == 0 ? EvalState::kSucceeded : EvalState::kFailed;
      eval.rec.finished_ms = now_ms;
      t.eval_finished = true;
    }
  }
  std::vector<std::string> ids;
  ids.reserve(specs.size());
  for (const auto& s : specs) ids.push_back(s.id);
  auto standing = standing_locked(eval_id, ids);
  t.ready = std::move(standing.ready);
  t.dependency_failed = std::move(standing.dependency_failed);
  t.ended = std::move(standing.ended);
  t.eval_state = eval.rec.state;
  t.tally = tally_locked(eval.rec);
  return t;
}

Result<void> MemoryStore::add_eval_warnings(const std::string& eval_id, const std::vector<std::string>& warnings) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = d_.evals.find(eval_id);
  if (it == d_.evals.end()) return fail(Error::not_found("eval " + eval_id + " not found"));
  auto& stored = it->second.rec.warnings;
  for (const auto& w : warnings) {
    if (stored.size() >= kMaxWarnings) break;
    auto text = w.substr(0, kMaxWarningBytes);
    if (std::find(stored.begin(), stored.end(), text) == stored.end()) stored.push_back(std::move(text));
  }
  return {};
}

Result<EvalRecord> MemoryStore::fail_eval(const std::string& eval_id, const std::string& error, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  Losing losing(*this, "fail_eval");
  if (down_) return fail(down_error());
  auto it = d_.evals.find(eval_id);
  if (it == d_.evals.end()) return fail(Error::not_found("eval " + eval_id + " not found"));
  auto& e = it->second.rec;
  if (!eval_ended(e.state)) {
    e.state = EvalState::kFailed;
    e.error = error;
    e.finished_ms = now_ms;
  }
  auto out = e;
  out.warnings.clear();
  return out;
}

Result<std::string> MemoryStore::supersede(const std::string& ref_key, const std::string& eval_id, std::int64_t received_ms) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = d_.ref_heads.find(ref_key);
  if (it == d_.ref_heads.end()) {
    d_.ref_heads[ref_key] = {eval_id, received_ms, ""};
    return std::string();
  }
  auto& head = it->second;
  if (head.eval == eval_id) return head.replaced;
  if (received_ms >= head.received_ms) {
    auto old = head.eval;
    head = {eval_id, received_ms, old};
    return old;
  }
  return eval_id;
}

Result<Transition> MemoryStore::cancel_eval(const std::string& eval_id, const std::string& reason, std::int64_t now_ms,
                                            EvalState ends_as) {
  std::lock_guard lock(mu_);
  Losing losing(*this, "cancel_eval");
  if (down_) return fail(down_error());
  auto it = d_.evals.find(eval_id);
  if (it == d_.evals.end()) return fail(Error::not_found("eval " + eval_id + " not found"));
  auto& eval = it->second;
  if (eval.cancel) {
    auto t = *eval.cancel;
    t.ended = ended_locked(t.cancelled);
    return t;
  }
  Transition t;
  if (eval_ended(eval.rec.state)) {
    t.eval_state = eval.rec.state;
    t.tally = tally_locked(eval.rec);
    return t;
  }
  eval.cancelled = true;
  eval.rec.cancelled = true;
  eval.rec.cancel_reason = reason;
  eval.rec.cancel_ends_as = ends_as == EvalState::kFailed ? EvalState::kFailed : EvalState::kCancelled;
  // Evaluating or building alike: what is queued ends now; builders see the
  // mark and stop what is building, and the last job to end ends the eval.
  if (eval.rec.state == EvalState::kEvaluating || eval.rec.cancel_ends_as == EvalState::kFailed) eval.rec.error = reason;
  for (const auto& id : eval.job_ids) {
    auto& j = d_.jobs.at(id);
    if (j.rec.state != JobState::kQueued) continue;
    j.rec.state = JobState::kCancelled;
    j.rec.error = reason;
    j.rec.finished_ms = now_ms;
    eval.rec.jobs_pending -= 1;
    eval.rec.jobs_failed += 1;
    t.cancelled.push_back(id);
  }
  if (eval.rec.jobs_pending == 0) {
    eval.rec.state = eval.rec.cancel_ends_as;
    eval.rec.finished_ms = now_ms;
    t.eval_finished = true;
  }
  t.eval_state = eval.rec.state;
  t.tally = tally_locked(eval.rec);
  t.ended = ended_locked(t.cancelled);
  eval.cancel = t;
  return t;
}

Result<std::optional<JobRecord>> MemoryStore::get_job(const std::string& job_id) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = d_.jobs.find(job_id);
  if (it == d_.jobs.end()) return std::optional<JobRecord>();
  return std::optional<JobRecord>(it->second.rec);
}

Result<std::vector<JobRecord>> MemoryStore::list_jobs(const std::string& eval_id) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  std::vector<JobRecord> out;
  auto it = d_.evals.find(eval_id);
  if (it == d_.evals.end()) return out;
  for (const auto& id : it->second.job_ids) out.push_back(d_.jobs.at(id).rec);
  return out;
}

Result<msg::JobState> MemoryStore::start_job(const std::string& job_id, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  Losing losing(*this, "start_job");
  if (down_) return fail(down_error());
  auto it = d_.jobs.find(job_id);
  if (it == d_.jobs.end()) return fail(Error::not_found("job " + job_id + " not found"));
  auto& r = it->second.rec;
  if (msg::is_terminal(r.state)) return r.state;
  r.state = JobState::kBuilding;
  r.attempts += 1;
  r.started_ms = now_ms;
  return r.state;
}

Result<Transition> MemoryStore::finish_job(const std::string& job_id, msg::JobState state, const std::string& error,
                                           std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  Losing losing(*this, "finish_job");
  if (down_) return fail(down_error());
  if (!msg::is_terminal(state)) return fail(Error::poison("finish_job: state must be terminal"));
  auto it = d_.jobs.find(job_id);
  if (it == d_.jobs.end()) return fail(Error::not_found("job " + job_id + " not found"));
  auto& job = it->second;
  const auto& eval = d_.evals.at(job.rec.eval_id).rec;
  // The job first, then the dependents its failure ended.
  auto with_ended = [&](Transition t) {
    std::vector<std::string> ids{job_id};
    ids.insert(ids.end(), t.dependency_failed.begin(), t.dependency_failed.end());
    t.ended = ended_locked(ids);
    return t;
  };
  if (msg::is_terminal(job.rec.state)) {
    // Ended without a finish of its own (born terminal, dependency_failed):
    // an empty transition.
    if (!job.transition) return with_ended(Transition{{}, {}, false, eval.state, {}, {}, tally_locked(eval)});
    return with_ended(*job.transition);
  }
  job.rec.state = state;
  job.rec.error = error;
  job.rec.finished_ms = now_ms;
  Transition t;
  settle_locked(job, d_.evals.at(job.rec.eval_id), t, now_ms);
  t.tally = tally_locked(eval);
  job.transition = with_ended(t);
  return *job.transition;
}

Result<void> MemoryStore::append_log(const std::string& job_id, const std::string& chunk, std::size_t cap) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto& log = d_.logs[job_id];
  log += chunk;
  if (log.size() > cap) log.erase(0, log.size() - cap);
  return {};
}

Result<LogSlice> MemoryStore::read_log(const std::string& job_id, std::size_t offset, std::size_t max_bytes) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = d_.logs.find(job_id);
  if (it == d_.logs.end()) return LogSlice{};
  const auto& log = it->second;
  return LogSlice{offset >= log.size() ? std::string() : log.substr(offset, max_bytes), log.size()};
}

Result<std::string> MemoryStore::get_log(const std::string& job_id) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = d_.logs.find(job_id);
  return it == d_.logs.end() ? std::string() : it->second;
}

Result<std::string> MemoryStore::ref_head(const std::string& ref_key) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = d_.ref_heads.find(ref_key);
  return it == d_.ref_heads.end() ? std::string() : it->second.eval;
}

Result<void> MemoryStore::put_forge_ref(const std::string& key, const std::string& value, int) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  d_.forge_refs[key] = value;
  return {};
}

Result<std::optional<std::string>> MemoryStore::get_forge_ref(const std::string& key) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = d_.forge_refs.find(key);
  if (it == d_.forge_refs.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

Result<void> MemoryStore::set_projects(const std::string& forge, const std::vector<std::string>& full_names) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  d_.projects[forge] = std::set<std::string>(full_names.begin(), full_names.end());
  return {};
}

Result<std::optional<bool>> MemoryStore::is_project(const std::string& forge, const std::string& full_name) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = d_.projects.find(forge);
  if (it == d_.projects.end()) return std::optional<bool>();
  return std::optional<bool>(it->second.count(full_name) > 0);
}

Result<std::vector<std::string>> MemoryStore::list_projects(const std::string& forge) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = d_.projects.find(forge);
  if (it == d_.projects.end()) return std::vector<std::string>();
  return std::vector<std::string>(it->second.begin(), it->second.end());
}

Result<bool> MemoryStore::claim_once(const std::string& key, int) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  return d_.claims.insert(key).second;
}

Result<bool> MemoryStore::advance_status(const std::string& key, std::int64_t at_us) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = d_.statuses.find(key);
  if (it != d_.statuses.end() && it->second > at_us) return false;
  d_.statuses[key] = at_us;
  return true;
}

Result<void> MemoryStore::put_effect(const EffectRecord& effect) {
  std::lock_guard lock(mu_);
  Losing losing(*this, "put_effect");
  if (down_) return fail(down_error());
  d_.effects[effect.eval_id][effect.name] = effect;
  return {};
}

Result<std::vector<EffectRecord>> MemoryStore::list_effects(const std::string& eval_id) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  std::vector<EffectRecord> out;
  auto it = d_.effects.find(eval_id);
  if (it == d_.effects.end()) return out;
  for (const auto& [_, e] : it->second) out.push_back(e);
  return out;
}

Result<void> MemoryStore::record_failed_build(const std::string& drv_path, const FailedBuild& failure) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  d_.failed_builds.emplace(drv_path, failure);  // the first one stays
  return {};
}

Result<std::map<std::string, FailedBuild>> MemoryStore::failed_builds(const std::vector<std::string>& drv_paths) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  std::map<std::string, FailedBuild> out;
  for (const auto& d : drv_paths) {
    if (auto it = d_.failed_builds.find(d); it != d_.failed_builds.end()) out.emplace(d, it->second);
  }
  return out;
}

Result<bool> MemoryStore::clear_failed_build(const std::string& drv_path) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  return d_.failed_builds.erase(drv_path) > 0;
}

Result<void> MemoryStore::register_builder(const BuilderInfo& b, std::int64_t ttl_ms) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  d_.builders[b.id] = {b, b.seen_ms + ttl_ms};
  return {};
}

Result<std::vector<BuilderInfo>> MemoryStore::list_builders(std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  std::vector<BuilderInfo> out;
  for (const auto& [_, entry] : d_.builders) {
    if (entry.second > now_ms) out.push_back(entry.first);
  }
  return out;
}

Result<bool> MemoryStore::claim_drv_build(const std::string& drv, const std::string& job_id, std::int64_t now_ms,
                                          std::int64_t lease_ms) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto& b = d_.drv_builds[drv];
  if (!b.owner.empty() && b.owner != job_id && b.owner_until > now_ms) return false;
  b.owner = job_id;
  b.owner_until = now_ms + lease_ms;
  return true;
}

Result<void> MemoryStore::finish_drv_build(const std::string& drv, const std::string& job_id,
                                           const std::optional<DrvBuildResult>& result, std::int64_t result_ttl_ms) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto& b = d_.drv_builds[drv];
  if (result) {
    b.last = result;
    b.last_until = result->at_ms + result_ttl_ms;
  }
  if (b.owner == job_id) {
    b.owner.clear();
    b.owner_until = 0;
  }
  return {};
}

DrvBuildStatus MemoryStore::drv_status_locked(const std::string& drv, std::int64_t now_ms) {
  DrvBuildStatus st;
  auto it = d_.drv_builds.find(drv);
  if (it == d_.drv_builds.end()) return st;
  auto& b = it->second;
  if (!b.owner.empty() && b.owner_until > now_ms) st.owner = b.owner;
  if (b.last && b.last_until > now_ms) st.last = b.last;
  for (const auto& [_, until] : b.waiters) st.waiters += until > now_ms;
  return st;
}

Result<DrvBuildStatus> MemoryStore::await_drv_build(const std::string& drv, const std::string& job_id, std::int64_t now_ms,
                                                    std::int64_t lease_ms) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  d_.drv_builds[drv].waiters[job_id] = now_ms + lease_ms;
  return drv_status_locked(drv, now_ms);
}

Result<DrvBuildStatus> MemoryStore::drv_build_status(const std::string& drv, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  return drv_status_locked(drv, now_ms);
}

}  // namespace flurry::state::testing
