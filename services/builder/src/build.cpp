#include "build.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

#include "flurry/core/log.hpp"
#include "flurry/messages/subjects.hpp"
#include "flurry/pipeline/publish.hpp"

namespace flurry::builder {
namespace {

using msg::JobState;

BuildOutcome retry(const Error& e, std::uint64_t delivered) {
  BuildOutcome o;
  o.result = "retry";
  o.disposition = bus::retry_later(e, delivered);
  return o;
}

// Buffers build output and appends it to the job's log in chunks, with
// registered secrets redacted.
class LogSink {
 public:
  LogSink(state::StateStore& s, std::string job, const BuilderConfig& cfg) : state_(s), job_(std::move(job)), cfg_(cfg) {}
  void write(std::string_view chunk) {
    std::lock_guard lock(mu_);
    buf_.append(chunk);
    auto now = std::chrono::steady_clock::now();
    if (buf_.size() >= cfg_.log_flush_bytes || now - last_ >= cfg_.log_flush_interval) flush_locked(now);
  }
  void flush() {
    std::lock_guard lock(mu_);
    flush_locked(std::chrono::steady_clock::now());
  }
  // Sends what waited log_flush_interval or longer.
  void flush_if_due() {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    if (now - last_ >= cfg_.log_flush_interval) flush_locked(now);
  }

 private:
  void flush_locked(std::chrono::steady_clock::time_point now) {
    last_ = now;
    if (buf_.empty()) return;
    // A lost log chunk must not fail the build; it is logged instead.
    if (auto r = state_.append_log(job_, log::redact(buf_), cfg_.log_cap_bytes); !r) {
      log::warn("build.log_write_failed", r.error().message, {{"job_id", job_}});
    }
    buf_.clear();
  }
  state::StateStore& state_;
  std::string job_;
  const BuilderConfig& cfg_;
  std::mutex mu_;
  std::string buf_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// Work beside a build, done from nix's runner every tick (no thread of its
// own): sends buffered output to the log store while nix is silent
// (readers follow the build live, and a builder that dies loses little of
// it), renews the job's claim on its derivation, and once the job's eval
// is cancelled sets `cancel` (nix's process group is killed), unless
// another job is waiting for this derivation's build.
class BuildWatch {
 public:
  BuildWatch(BuildPorts ports, const state::JobRecord& job, LogSink& sink, const BuilderConfig& cfg)
      : ports_(ports), job_(job), sink_(sink), cfg_(cfg), next_check_(std::chrono::steady_clock::now() + cfg.cancel_poll_interval) {}
  const std::atomic<bool>* flag() const { return &cancel_; }
  const std::string& reason() const { return reason_; }

  void tick() {
    sink_.flush_if_due();
    const auto steady = std::chrono::steady_clock::now();
    if (cancel_ || steady < next_check_) return;
    next_check_ = steady + cfg_.cancel_poll_interval;
    // A store that does not answer is no reason to stop a build.
    const auto now = ports_.clock.now_ms();
    (void)ports_.state.claim_drv_build(job_.drv_path, job_.id, now, cfg_.build_lease.count());
    auto e = ports_.state.get_eval(job_.eval_id);
    if (!e || !e->has_value() || !(**e).cancelled) return;
    auto needed = ports_.state.drv_build_status(job_.drv_path, now);
    if (!needed || needed->waiters > 0) return;  // a live eval still needs it: keep building
    reason_ = (**e).cancel_reason.empty() ? "cancelled" : (**e).cancel_reason;
    cancel_ = true;
  }

 private:
  BuildPorts ports_;
  const state::JobRecord& job_;
  LogSink& sink_;
  const BuilderConfig& cfg_;
  std::chrono::steady_clock::time_point next_check_;
  std::string reason_;
  std::atomic<bool> cancel_{false};
};

// Stores the job's end, retrying while the store is unreachable (see
// BuilderConfig::store_retry_for): the end is known now, and a redelivery
// would have to build again to learn it.
Result<state::Transition> store_end(const state::JobRecord& job, JobState st, const std::string& error, BuildPorts ports,
                                    const BuilderConfig& cfg) {
  const auto give_up = std::chrono::steady_clock::now() + cfg.store_retry_for;
  bool told = false;
  while (true) {
    auto t = ports.state.finish_job(job.id, st, error, ports.clock.now_ms());
    if (t || t.error().code != ErrorCode::kTransient || std::chrono::steady_clock::now() >= give_up) return t;
    if (!told) {
      log::warn("build.result_store_retry", "cannot store the build's end; retrying: " + t.error().message,
                {{"job_id", job.id}, {"state", std::string(msg::to_string(st))}});
      told = true;
    }
    std::this_thread::sleep_for(cfg.store_retry_interval);
  }
}

BuildOutcome finish_and_publish(const state::JobRecord& job, JobState st, const std::string& error, BuildPorts ports,
                                const BuilderConfig& cfg, std::uint64_t delivered, const std::string& result) {
  auto t = store_end(job, st, error, ports, cfg);
  if (!t) return retry(t.error(), delivered);
  if (auto r = pipeline::publish_transition({ports.bus, ports.state}, job.eval_id, *t, {cfg.public_url}); !r) {
    return retry(r.error(), delivered);
  }
  BuildOutcome o;
  o.result = result;
  // The state the job is in, which is not ours when it had ended before.
  o.state = !t->ended.empty() && t->ended.front().id == job.id ? t->ended.front().state : st;
  o.disposition = bus::Disposition::ack();
  return o;
}

// The job's context shows it building (a check run "in progress") from
// `started_ms`. Best effort: a status that cannot be published leaves the
// job shown queued until it ends, no reason to hold its build. The request
// names the repository and commit; older requests make it read the eval.
void announce_start(const msg::BuildRequest& req, state::JobRecord job, std::int64_t started_ms, BuildPorts ports,
                    const BuilderConfig& cfg) {
  state::EvalRecord eval;
  eval.id = job.eval_id;
  eval.repo = req.repo;
  eval.rev = req.rev;
  if (eval.repo.forge.empty() || eval.rev.empty()) {
    auto stored = ports.state.get_eval(job.eval_id);
    if (!stored || !stored->has_value()) return;
    eval = **stored;
  }
  job.state = JobState::kBuilding;
  job.started_ms = started_ms;
  if (auto r = pipeline::publish_status(ports.bus, pipeline::job_status(eval, job, {cfg.public_url})); !r) {
    log::warn("build.start_status_failed", r.error().message, {{"job_id", job.id}});
  }
}

}  // namespace

std::vector<std::vector<std::string>> feature_queues(const std::vector<std::string>& stored_subjects, const std::string& system,
                                                     const std::vector<std::string>& offered) {
  std::vector<std::vector<std::string>> out;
  for (const auto& subject : stored_subjects) {
    auto needed = subjects::build_features(subject, system);
    if (!needed || needed->empty()) continue;
    bool all = std::all_of(needed->begin(), needed->end(),
                           [&](const std::string& f) { return std::find(offered.begin(), offered.end(), f) != offered.end(); });
    if (all) out.push_back(*needed);
  }
  return out;
}

namespace {

// How a build nix ran ends for its job. When the builder that failed is
// another job's of the same eval, this job did not fail: its dependency
// did. (Evaluation streams jobs in batches; a job recorded before the job
// it needs has no edge to wait on, and nix builds that one inside it.)
std::pair<JobState, std::string> end_of_build(const nix::BuildResult& built, const state::JobRecord& rec, BuildPorts ports) {
  switch (built.outcome) {
    case nix::BuildResult::Outcome::kSucceeded: return {JobState::kSucceeded, built.error};
    case nix::BuildResult::Outcome::kTimedOut: return {JobState::kTimedOut, built.error};
    case nix::BuildResult::Outcome::kCancelled: return {JobState::kCancelled, built.error};
    case nix::BuildResult::Outcome::kFailed: break;
  }
  if (!built.failed_drv.empty() && built.failed_drv != rec.drv_path) {
    auto jobs = ports.state.list_jobs(rec.eval_id);  // a failure's rare path: one read of the eval's jobs
    if (!jobs) log::warn("build.jobs_unreadable", jobs.error().message, {{"job_id", rec.id}});
    for (const auto& j : jobs ? *jobs : std::vector<state::JobRecord>{}) {
      if (j.drv_path == built.failed_drv && j.id != rec.id) return {JobState::kDependencyFailed, "dependency " + j.attr + " failed"};
    }
  }
  // For the failed-build cache (projects that enable it skip this
  // derivation from now on); losing the record only costs a rebuild.
  if (auto r = ports.state.record_failed_build(rec.drv_path, {rec.id, rec.eval_id, rec.attr, built.error, ports.clock.now_ms()}); !r) {
    log::warn("build.failure_not_cached", r.error().message, {{"job_id", rec.id}});
  }
  return {JobState::kFailed, built.error};
}

}  // namespace

BuildOutcome handle_build_request(const msg::BuildRequest& req, Delivery delivery, BuildPorts ports, const BuilderConfig& cfg) {
  auto job = ports.state.get_job(req.job_id);
  if (!job) return retry(job.error(), delivery.num_delivered);
  if (!job->has_value()) {
    BuildOutcome o;
    o.result = "unknown_job";
    o.disposition = bus::Disposition::ack();
    return o;
  }
  const state::JobRecord& rec = **job;
  // Already ended (a crash after the state change, or a duplicate request):
  // republish what the end set in motion.
  if (msg::is_terminal(rec.state)) return finish_and_publish(rec, rec.state, rec.error, ports, cfg, delivery.num_delivered, "replayed");

  const auto started_ms = ports.clock.now_ms();
  auto started = ports.state.start_job(rec.id, started_ms);
  if (!started) return retry(started.error(), delivery.num_delivered);
  if (msg::is_terminal(*started)) return finish_and_publish(rec, *started, rec.error, ports, cfg, delivery.num_delivered, "replayed");
  announce_start(req, rec, started_ms, ports, cfg);

  LogSink sink(ports.state, rec.id, cfg);
  if (rec.attempts > 0) sink.write("--- flurry: build attempt " + std::to_string(rec.attempts + 1) + " ---\n");

  // One build per derivation: while another job (of this eval or any
  // other) builds the same derivation, wait for it and take its result.
  const auto wait_started = ports.clock.now_ms();
  const auto wait_lease = 3 * cfg.cancel_poll_interval.count();  // a waiter that stops refreshing stops counting
  bool waiting = false;
  while (true) {
    if (waiting) {
      auto status = ports.state.await_drv_build(rec.drv_path, rec.id, ports.clock.now_ms(), wait_lease);
      if (!status) return retry(status.error(), delivery.num_delivered);
      if (status->owner.empty() && status->last && status->last->at_ms >= wait_started) {
        const auto& shared = *status->last;
        sink.write("--- flurry: this derivation was built once for every job that needed it, by " + shared.attr + " (job " +
                   shared.job_id + "); its log follows\n");
        if (auto other = ports.state.get_log(shared.job_id)) sink.write(*other);
        sink.flush();
        auto o = finish_and_publish(rec, shared.state, shared.error, ports, cfg, delivery.num_delivered,
                                    std::string(msg::to_string(shared.state)));
        o.shared = true;
        return o;
      }
    }
    auto claimed = ports.state.claim_drv_build(rec.drv_path, rec.id, ports.clock.now_ms(), cfg.build_lease.count());
    if (!claimed) return retry(claimed.error(), delivery.num_delivered);
    if (*claimed) break;  // ours to build (free, or its holder's lease ran out)
    if (!waiting) {
      // Registered at once, so that the holder knows a live job needs it.
      auto status = ports.state.await_drv_build(rec.drv_path, rec.id, ports.clock.now_ms(), wait_lease);
      if (!status) return retry(status.error(), delivery.num_delivered);
      sink.write("--- flurry: waiting for job " + status->owner + ", which builds the same derivation\n");
      sink.flush();
      waiting = true;
    }
    auto eval = ports.state.get_eval(rec.eval_id);
    if (eval && eval->has_value() && (**eval).cancelled) {
      const auto why = (**eval).cancel_reason.empty() ? std::string("cancelled") : (**eval).cancel_reason;
      return finish_and_publish(rec, JobState::kCancelled, why, ports, cfg, delivery.num_delivered, "cancelled");
    }
    std::this_thread::sleep_for(cfg.cancel_poll_interval);
  }

  auto begin = std::chrono::steady_clock::now();
  Result<nix::BuildResult> built = fail(Error::transient("not built"));
  std::string cancel_reason;
  {
    BuildWatch watch(ports, rec, sink, cfg);
    built = ports.nix.build({.drv_path = rec.drv_path,
                             .max_silent = cfg.max_silent,
                             .timeout = cfg.timeout,
                             .on_log = [&sink](std::string_view s) { sink.write(s); },
                             .cancel = watch.flag(),
                             .on_tick = [&watch] { watch.tick(); }});
    cancel_reason = watch.reason();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  // Jobs waiting for this derivation take a real result; without one (nix
  // did not run, the build was stopped) they build it themselves.
  std::optional<state::DrvBuildResult> shared;
  if (built && built->outcome != nix::BuildResult::Outcome::kCancelled) {
    shared = state::DrvBuildResult{built->outcome == nix::BuildResult::Outcome::kSucceeded ? JobState::kSucceeded
                                   : built->outcome == nix::BuildResult::Outcome::kTimedOut ? JobState::kTimedOut
                                                                                            : JobState::kFailed,
                                   built->error, rec.id, rec.attr, ports.clock.now_ms()};
  }
  sink.flush();  // before the result is shared, so waiters copy the whole log
  if (auto r = ports.state.finish_drv_build(rec.drv_path, rec.id, shared, cfg.shared_result_ttl.count()); !r) {
    log::warn("build.result_not_shared", r.error().message, {{"job_id", rec.id}});
  }
  if (!built) {
    sink.write("--- flurry: could not run nix: " + built.error().message + "\n");
    sink.flush();
    // Infrastructure trouble is retried a bounded number of times; then the
    // job fails so that nothing waits for it forever.
    if (!delivery.last()) return retry(Error::transient(built.error().message), delivery.num_delivered);
    auto o = finish_and_publish(rec, JobState::kFailed, "infrastructure failure: " + built.error().message, ports, cfg,
                                delivery.num_delivered, "failed");
    o.seconds = secs;
    return o;
  }
  if (built->outcome == nix::BuildResult::Outcome::kCancelled) {
    sink.write("--- flurry: build stopped: " + (cancel_reason.empty() ? std::string("cancelled") : cancel_reason) + "\n");
    built->error = cancel_reason.empty() ? "cancelled" : cancel_reason;
  }
  sink.flush();
  const auto [st, error] = end_of_build(*built, rec, ports);
  auto o = finish_and_publish(rec, st, error, ports, cfg, delivery.num_delivered, std::string(msg::to_string(st)));
  o.seconds = secs;
  return o;
}

}  // namespace flurry::builder
