#include "flurry/pipeline/publish.hpp"

#include <algorithm>

#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"
#include "flurry/messages/subjects.hpp"

namespace flurry::pipeline {
namespace {

std::string describe(const state::JobRecord& job) {
  using msg::JobState;
  switch (job.state) {
    case JobState::kQueued: return job.cache_status == "cached" ? "Queued (outputs are in a binary cache)" : "Queued";
    case JobState::kBuilding: return "Building";
    case JobState::kSucceeded: return "Build succeeded";
    case JobState::kSkipped: return "Already built";
    case JobState::kFailed: return "Build failed" + (job.error.empty() ? std::string() : ": " + job.error);
    case JobState::kDependencyFailed: return "Not built: " + job.error;
    case JobState::kCachedFailure: return "Not built: " + (job.error.empty() ? std::string("failed before") : job.error);
    case JobState::kTimedOut: return "Build timed out";
    case JobState::kCancelled: return "Cancelled" + (job.error.empty() ? std::string() : ": " + job.error);
    case JobState::kEvalFailed: return "Evaluation failed: " + job.error;
    case JobState::kUnsupportedSystem: return job.error.empty() ? "No builder for system " + job.system : job.error;
  }
  return std::string(msg::to_string(job.state));
}

std::string target_url(const Links& links, const std::string& eval_id, const std::string& job_id) {
  if (links.public_url.empty()) return {};
  std::string url = links.public_url + "/evals/" + eval_id;
  if (!job_id.empty()) url += "/jobs/" + job_id;
  return url;
}

// GitHub caps descriptions at 140 characters; keep the first line only.
std::string short_description(const std::string& s) {
  auto nl = s.find('\n');
  return text::truncate_utf8(nl == std::string::npos ? s : s.substr(0, nl), 140);
}

}  // namespace

std::string job_context(const std::string& attr) { return "flurry/" + attr; }

msg::StatusEvent job_status(const state::EvalRecord& eval, const state::JobRecord& job, const Links& links) {
  // Queued, then building, then terminal: finished_ms is never before the
  // build's start, nor that before the eval's creation (on one clock).
  auto at_us = msg::is_terminal(job.state)           ? job.finished_ms * 1000 + 1
               : job.state == msg::JobState::kBuilding ? std::max(job.started_ms * 1000, eval.created_ms * 1000 + 1)
                                                       : eval.created_ms * 1000;
  auto s = make_status(eval.id, eval.repo, eval.rev, job_context(job.attr), msg::status_for(job.state), describe(job), at_us,
                       target_url(links, eval.id, job.id));
  s.job_id = job.id;
  s.job_state = std::string(msg::to_string(job.state));
  return s;
}

msg::StatusEvent make_status(const std::string& eval_id, const msg::Repo& repo, const std::string& rev, std::string context,
                             msg::StatusState state, const std::string& description, std::int64_t at_us,
                             std::string target_url) {
  msg::StatusEvent s;
  s.eval_id = eval_id;
  s.repo = repo;
  s.rev = rev;
  s.context = std::move(context);
  s.state = state;
  s.description = short_description(description);
  // What the description could not hold travels whole, for check runs.
  if (s.description != description) s.details = text::truncate_utf8(description, msg::kMaxStatusDetails);
  s.target_url = std::move(target_url);
  s.at_us = at_us;
  return s;
}

msg::StatusEvent eval_status(const state::EvalRecord& eval, msg::StatusState st, const std::string& description,
                             std::int64_t at_us, const Links& links) {
  return make_status(eval.id, eval.repo, eval.rev, std::string(kEvalContext), st, description, at_us,
                     target_url(links, eval.id, ""));
}

Result<void> publish_status(bus::Bus& bus, const msg::StatusEvent& status) {
  auto id = "status:" + status.eval_id + ":" + crypto::sha256_hex(status.context).substr(0, 16) + ":" +
            std::string(msg::to_string(status.state)) + ":" + std::to_string(status.at_us);
  return bus.publish({subjects::status(status.repo.forge), msg::encode(status), id});
}

Result<void> publish_build_request(bus::Bus& bus, const state::EvalRecord& eval, const state::JobRecord& job) {
  msg::BuildRequest req{job.eval_id, job.id, job.attr, job.drv_path, job.system, "", eval.repo, eval.rev};
  return bus.publish({subjects::build(job.system, job.features), msg::encode(req), "build:" + job.id});
}

Result<void> publish_job_finished(bus::Bus& bus, const state::JobRecord& job) {
  msg::JobFinished f{job.eval_id, job.id, job.attr, job.drv_path, job.system, job.state, job.outputs, ""};
  return bus.publish({std::string(subjects::kJobFinished), msg::encode(f), "finished:" + job.id});
}

Result<void> publish_eval_finished(bus::Bus& bus, const state::EvalRecord& eval, state::EvalState ended_as, const state::EvalTally& tally) {
  msg::EvalFinished f;
  f.eval_id = eval.id;
  f.state = std::string(state::to_string(ended_as));
  f.repo = eval.repo;
  f.ref = eval.ref;
  f.branch = eval.branch;
  f.tag = eval.tag;
  f.rev = eval.rev;
  f.jobs_total = tally.jobs_total;
  f.jobs_failed = tally.jobs_failed;
  return bus.publish({std::string(subjects::kEvalFinished), msg::encode(f), "eval-finished:" + eval.id});
}

Result<void> publish_transition(Ports ports, const state::EvalRecord& eval, const state::Transition& t, const Links& links) {
  auto& bus = ports.bus;
  auto& state = ports.state;
  // Ends and statuses from the records the change wrote, not from reading
  // the jobs again (see state::Transition).
  for (const auto& job : t.ended) {
    if (!msg::is_terminal(job.state)) continue;  // (the store never says so; a message must not either)
    if (auto r = publish_job_finished(bus, job); !r) return r;
    if (auto r = publish_status(bus, job_status(eval, job, links)); !r) return r;
  }
  // A build request carries only what never changes about a job (its
  // attribute, derivation, system, features): reading it is safe.
  for (const auto& id : t.ready) {
    auto job = state.get_job(id);
    if (!job) return fail(job.error());
    if (!job->has_value()) continue;
    if (auto r = publish_build_request(bus, eval, **job); !r) return r;
  }
  if (t.eval_finished) {
    if (auto r = publish_eval_finished(bus, eval, t.eval_state, t.tally); !r) return r;
  }
  return {};
}

Result<void> publish_transition(Ports ports, const std::string& eval_id, const state::Transition& t, const Links& links) {
  // Nor does the eval's identity (repository, ref, commit).
  auto eval = ports.state.get_eval(eval_id);
  if (!eval) return fail(eval.error());
  if (!eval->has_value()) return fail(Error::not_found("eval " + eval_id + " not found"));
  return publish_transition(ports, **eval, t, links);
}

Result<state::Transition> cancel_and_publish(Ports ports, const std::string& eval_id, const std::string& reason,
                                             std::int64_t now_ms, const CancelStatus& shown, const Links& links) {
  auto t = ports.state.cancel_eval(eval_id, reason, now_ms, shown.ends_as);
  if (!t) return fail(t.error());
  auto e = ports.state.get_eval(eval_id);
  if (!e) return fail(e.error());
  if (!e->has_value()) return fail(Error::not_found("eval " + eval_id + " not found"));
  if (auto r = publish_transition(ports, **e, *t, links); !r) return fail(r.error());
  if (!shown.always && t->cancelled.empty() && !t->eval_finished) return t;
  // Later than any status the cancelled eval posted itself.
  auto at_us = std::max<std::int64_t>(t->tally.finished_ms, now_ms) * 1000 + 2;
  if (auto r = publish_status(ports.bus, eval_status(**e, shown.state, shown.prefix + reason, at_us, links)); !r) return fail(r.error());
  return t;
}

}  // namespace flurry::pipeline
