#include "flurry/state/testing/memory_store.hpp"

#include <algorithm>

namespace flurry::state::testing {
namespace {
using msg::JobState;
Error down_error() { return Error::transient("memory store: down (injected)"); }
bool eval_ended(EvalState s) { return s == EvalState::kSucceeded || s == EvalState::kFailed || s == EvalState::kCancelled; }
}  // namespace

Result<bool> MemoryStore::create_eval(const EvalRecord& eval) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  if (evals_.count(eval.id)) return false;
  Eval e;
  e.rec = eval;
  e.rec.state = EvalState::kEvaluating;
  e.rec.jobs_total = e.rec.jobs_pending = e.rec.jobs_failed = 0;
  evals_[eval.id] = std::move(e);
  return true;
}

Result<std::optional<EvalRecord>> MemoryStore::get_eval(const std::string& eval_id) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = evals_.find(eval_id);
  if (it == evals_.end()) return std::optional<EvalRecord>();
  return std::optional<EvalRecord>(it->second.rec);
}

void MemoryStore::settle_locked(Job& job, Eval& eval, Transition& t, std::int64_t now_ms) {
  auto& e = eval.rec;
  e.jobs_pending -= 1;
  if (!msg::is_success(job.rec.state)) e.jobs_failed += 1;
  if (msg::is_success(job.rec.state)) {
    for (const auto& cid : job.children) {
      auto& child = jobs_.at(cid);
      if (child.rec.state != JobState::kQueued) continue;
      if (--child.deps_pending == 0) t.ready.push_back(cid);
    }
  } else {
    // Every transitive dependent that has not ended fails, naming this job.
    std::vector<std::string> stack(job.children.rbegin(), job.children.rend());
    while (!stack.empty()) {
      auto cid = stack.back();
      stack.pop_back();
      auto& child = jobs_.at(cid);
      if (msg::is_terminal(child.rec.state)) continue;
      child.rec.state = JobState::kDependencyFailed;
      child.rec.error = "dependency " + job.rec.attr + " failed";
      child.rec.finished_ms = now_ms;
      e.jobs_pending -= 1;
      e.jobs_failed += 1;
      t.dependency_failed.push_back(cid);
      for (auto it = child.children.rbegin(); it != child.children.rend(); ++it) stack.push_back(*it);
    }
    // A job released earlier in this same transition may have failed since.
    std::erase_if(t.ready, [&](const std::string& id) { return jobs_.at(id).rec.state != JobState::kQueued; });
  }
  if (e.jobs_pending == 0 && !eval_ended(e.state)) {
    e.state = eval.cancelled ? EvalState::kCancelled : e.jobs_failed == 0 ? EvalState::kSucceeded : EvalState::kFailed;
    e.finished_ms = now_ms;
    t.eval_finished = true;
  }
  t.eval_state = e.state;
}

Result<Transition> MemoryStore::add_jobs(const std::string& eval_id, const std::vector<JobSpec>& specs, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto eit = evals_.find(eval_id);
  if (eit == evals_.end()) return fail(Error::not_found("eval " + eval_id + " not found"));
  auto& eval = eit->second;
  if (eval.added) return *eval.added;
  if (eval_ended(eval.rec.state)) return fail(Error::rejected("eval " + eval_id + " already ended"));

  for (const auto& s : specs) {
    Job j;
    j.rec = JobRecord{s.id, eval_id, s.attr, s.drv_path, s.system, s.outputs, s.state, s.error, 0, 0, 0};
    if (msg::is_terminal(s.state)) j.rec.finished_ms = now_ms;
    j.deps = s.deps;
    jobs_[s.id] = std::move(j);
    eval.job_ids.push_back(s.id);
  }
  // Only edges between jobs of this eval count: a dependency on anything
  // else (another eval's job, an unknown id) is ignored.
  std::set<std::string> in_eval;
  for (const auto& s : specs) in_eval.insert(s.id);
  for (const auto& s : specs) {
    for (const auto& d : s.deps) {
      if (in_eval.count(d)) jobs_.at(d).children.push_back(s.id);
    }
  }
  eval.rec.state = EvalState::kBuilding;
  eval.rec.jobs_total = static_cast<int>(specs.size());
  eval.rec.jobs_pending = static_cast<int>(specs.size());
  eval.rec.jobs_failed = 0;
  // Every recorded dependency counts until it settles, including ones born
  // terminal: settling them below releases or fails their dependents.
  for (const auto& s : specs) {
    auto& j = jobs_.at(s.id);
    for (const auto& d : j.deps) j.deps_pending += in_eval.count(d) ? 1 : 0;
  }
  Transition t;
  for (const auto& s : specs) {
    auto& j = jobs_.at(s.id);
    if (msg::is_terminal(j.rec.state) && !std::count(t.dependency_failed.begin(), t.dependency_failed.end(), s.id)) {
      settle_locked(j, eval, t, now_ms);
    }
  }
  if (eval.rec.jobs_pending == 0 && !eval_ended(eval.rec.state)) {  // nothing to build at all
    eval.rec.state = eval.rec.jobs_failed == 0 ? EvalState::kSucceeded : EvalState::kFailed;
    eval.rec.finished_ms = now_ms;
    t.eval_finished = true;
  }
  t.ready.clear();  // recomputed: every queued job whose dependencies all succeeded
  for (const auto& s : specs) {
    auto& j = jobs_.at(s.id);
    if (j.rec.state == JobState::kQueued && j.deps_pending == 0) t.ready.push_back(s.id);
  }
  t.eval_state = eval.rec.state;
  eval.added = t;
  return t;
}

Result<void> MemoryStore::fail_eval(const std::string& eval_id, const std::string& error, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = evals_.find(eval_id);
  if (it == evals_.end()) return fail(Error::not_found("eval " + eval_id + " not found"));
  auto& e = it->second.rec;
  if (eval_ended(e.state)) return {};
  e.state = EvalState::kFailed;
  e.error = error;
  e.finished_ms = now_ms;
  return {};
}

Result<std::string> MemoryStore::supersede(const std::string& ref_key, const std::string& eval_id, std::int64_t received_ms) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = ref_heads_.find(ref_key);
  if (it == ref_heads_.end()) {
    ref_heads_[ref_key] = {eval_id, received_ms, ""};
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

Result<Transition> MemoryStore::cancel_eval(const std::string& eval_id, const std::string& reason, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = evals_.find(eval_id);
  if (it == evals_.end()) return fail(Error::not_found("eval " + eval_id + " not found"));
  auto& eval = it->second;
  if (eval.cancel) return *eval.cancel;
  Transition t;
  if (eval_ended(eval.rec.state)) {
    t.eval_state = eval.rec.state;
    return t;
  }
  eval.cancelled = true;
  if (eval.rec.state == EvalState::kEvaluating) {
    eval.rec.state = EvalState::kCancelled;
    eval.rec.error = reason;
    eval.rec.finished_ms = now_ms;
    t.eval_finished = true;
  } else {
    for (const auto& id : eval.job_ids) {
      auto& j = jobs_.at(id);
      if (j.rec.state != JobState::kQueued) continue;
      j.rec.state = JobState::kCancelled;
      j.rec.error = reason;
      j.rec.finished_ms = now_ms;
      eval.rec.jobs_pending -= 1;
      eval.rec.jobs_failed += 1;
      t.cancelled.push_back(id);
    }
    if (eval.rec.jobs_pending == 0) {
      eval.rec.state = EvalState::kCancelled;
      eval.rec.finished_ms = now_ms;
      t.eval_finished = true;
    }
  }
  t.eval_state = eval.rec.state;
  eval.cancel = t;
  return t;
}

Result<std::optional<JobRecord>> MemoryStore::get_job(const std::string& job_id) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return std::optional<JobRecord>();
  return std::optional<JobRecord>(it->second.rec);
}

Result<std::vector<JobRecord>> MemoryStore::list_jobs(const std::string& eval_id) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  std::vector<JobRecord> out;
  auto it = evals_.find(eval_id);
  if (it == evals_.end()) return out;
  for (const auto& id : it->second.job_ids) out.push_back(jobs_.at(id).rec);
  return out;
}

Result<msg::JobState> MemoryStore::start_job(const std::string& job_id, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return fail(Error::not_found("job " + job_id + " not found"));
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
  if (down_) return fail(down_error());
  if (!msg::is_terminal(state)) return fail(Error::poison("finish_job: state must be terminal"));
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return fail(Error::not_found("job " + job_id + " not found"));
  auto& job = it->second;
  if (msg::is_terminal(job.rec.state)) return job.transition.value_or(Transition{{}, {}, false, evals_.at(job.rec.eval_id).rec.state});
  job.rec.state = state;
  job.rec.error = error;
  job.rec.finished_ms = now_ms;
  Transition t;
  settle_locked(job, evals_.at(job.rec.eval_id), t, now_ms);
  job.transition = t;
  return t;
}

Result<void> MemoryStore::append_log(const std::string& job_id, const std::string& chunk, std::size_t cap) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto& log = logs_[job_id];
  log += chunk;
  if (log.size() > cap) log.erase(0, log.size() - cap);
  return {};
}

Result<std::string> MemoryStore::get_log(const std::string& job_id) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = logs_.find(job_id);
  return it == logs_.end() ? std::string() : it->second;
}

Result<bool> MemoryStore::claim_once(const std::string& key, int) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  return claims_.insert(key).second;
}

Result<bool> MemoryStore::advance_status(const std::string& key, std::int64_t at_us) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto it = statuses_.find(key);
  if (it != statuses_.end() && it->second > at_us) return false;
  statuses_[key] = at_us;
  return true;
}

Result<void> MemoryStore::put_effect(const EffectRecord& effect) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  effects_[effect.eval_id][effect.name] = effect;
  return {};
}

Result<std::vector<EffectRecord>> MemoryStore::list_effects(const std::string& eval_id) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  std::vector<EffectRecord> out;
  auto it = effects_.find(eval_id);
  if (it == effects_.end()) return out;
  for (const auto& [_, e] : it->second) out.push_back(e);
  return out;
}

}  // namespace flurry::state::testing
