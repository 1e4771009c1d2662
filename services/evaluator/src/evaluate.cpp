#include "evaluate.hpp"

#include <map>

#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"
#include "flurry/pipeline/publish.hpp"
#include "flurry/state/ids.hpp"

namespace flurry::evaluator {
namespace {

using msg::JobState;

EvalOutcome retry(const std::string& eval_id, const Error& e, std::uint64_t delivered) {
  EvalOutcome o;
  o.eval_id = eval_id;
  o.result = "retry";
  o.disposition = bus::disposition_for(e, delivered);
  if (o.disposition.kind == bus::Disposition::Kind::kAck) o.disposition = bus::Disposition::nak(e.message);
  return o;
}

// Ends an eval that could not be evaluated: state, status, eval.finished.
EvalOutcome fail_whole_eval(const std::string& eval_id, const std::string& error, EvalPorts ports, const EvaluatorConfig& cfg,
                            std::uint64_t delivered) {
  std::string text = error.empty() ? "evaluation failed" : error;
  if (auto r = ports.state.fail_eval(eval_id, text, ports.clock.now_ms()); !r) return retry(eval_id, r.error(), delivered);
  auto eval = ports.state.get_eval(eval_id);
  if (!eval || !eval->has_value()) return retry(eval_id, eval ? Error::transient("eval vanished") : eval.error(), delivered);
  const auto& e = **eval;
  auto status = pipeline::eval_status(e, msg::StatusState::kFailure, e.error, e.finished_ms * 1000 + 1, {cfg.public_url});
  if (auto r = pipeline::publish_status(ports.bus, status); !r) return retry(eval_id, r.error(), delivered);
  if (auto r = pipeline::publish_eval_finished(ports.bus, e); !r) return retry(eval_id, r.error(), delivered);
  EvalOutcome o;
  o.eval_id = eval_id;
  o.result = "eval_failed";
  o.disposition = bus::Disposition::ack();
  return o;
}

// Publishes everything that follows add_jobs. Deterministic msg ids make a
// replay harmless.
Result<void> publish_jobs(const state::EvalRecord& eval, const state::Transition& t, EvalPorts ports,
                          const EvaluatorConfig& cfg, int eval_errors, std::size_t warnings) {
  auto jobs = ports.state.list_jobs(eval.id);
  if (!jobs) return fail(jobs.error());
  std::vector<std::string> born_terminal;
  std::set<std::string> dep_failed(t.dependency_failed.begin(), t.dependency_failed.end());
  pipeline::Links links{cfg.public_url};
  for (const auto& j : *jobs) {
    if (dep_failed.count(j.id)) continue;
    if (msg::is_terminal(j.state) && j.finished_ms != 0 && j.started_ms == 0 && j.attempts == 0) {
      born_terminal.push_back(j.id);
    } else if (auto r = pipeline::publish_status(ports.bus, pipeline::job_status(eval, j, links)); !r) {
      return r;
    }
  }
  if (auto r = pipeline::publish_transition({ports.bus, ports.state}, eval.id, born_terminal, t, links); !r) return r;
  std::string desc = std::to_string(jobs->size()) + (jobs->size() == 1 ? " job" : " jobs");
  if (eval_errors > 0) desc += ", " + std::to_string(eval_errors) + " failed to evaluate";
  if (warnings > 0) desc += " (" + std::to_string(warnings) + (warnings == 1 ? " warning)" : " warnings)");
  auto status = pipeline::eval_status(eval, msg::StatusState::kSuccess, desc, eval.created_ms * 1000 + 1, links);
  return pipeline::publish_status(ports.bus, status);
}

bool missing_attribute_error(const std::string& e) {
  return e.find("does not provide attribute") != std::string::npos || e.find("attribute '") != std::string::npos;
}

}  // namespace

std::string mirror_dir(const std::string& work_dir, const msg::Repo& repo) {
  return work_dir + "/repos/" + text::safe_file_name(repo.forge) + "/" + text::safe_file_name(repo.owner) + "/" +
         text::safe_file_name(repo.name) + ".git";
}

std::vector<state::JobSpec> plan_jobs(const std::string& eval_id, const std::vector<nix::AttrResult>& attrs,
                                      const std::map<std::string, std::vector<std::string>>& graph,
                                      const std::set<std::string>& invalid) {
  std::vector<state::JobSpec> jobs;
  std::map<std::string, std::vector<std::string>> jobs_by_drv;
  for (const auto& a : attrs) {
    state::JobSpec j;
    j.attr = nix::render_attr_path(a.path);
    j.id = state::job_id_for(eval_id, j.attr);
    j.system = a.system.empty() && a.path.size() >= 2 ? a.path[a.path.size() - 2] : a.system;
    if (!a.ok()) {
      j.state = JobState::kEvalFailed;
      j.error = a.error;
    } else {
      j.drv_path = a.drv_path;
      j.outputs = a.outputs;
      bool all_valid = !a.outputs.empty();
      for (const auto& [_, p] : a.outputs) all_valid = all_valid && !invalid.count(p);
      j.state = all_valid ? JobState::kSkipped : JobState::kQueued;
      jobs_by_drv[a.drv_path].push_back(j.id);
    }
    jobs.push_back(std::move(j));
  }
  for (auto& j : jobs) {
    if (j.drv_path.empty()) continue;
    std::set<std::string> seen{j.drv_path};
    std::set<std::string> deps;
    std::vector<std::string> stack;
    if (auto it = graph.find(j.drv_path); it != graph.end()) stack = it->second;
    while (!stack.empty()) {
      auto d = stack.back();
      stack.pop_back();
      if (!seen.insert(d).second) continue;
      if (auto hit = jobs_by_drv.find(d); hit != jobs_by_drv.end()) {
        deps.insert(hit->second.begin(), hit->second.end());
        continue;  // the nearest job is enough: its own deps order the rest
      }
      if (auto it = graph.find(d); it != graph.end()) stack.insert(stack.end(), it->second.begin(), it->second.end());
    }
    deps.erase(j.id);
    j.deps.assign(deps.begin(), deps.end());
  }
  return jobs;
}

EvalOutcome handle_change(const msg::ChangeEvent& change, Delivery delivery, EvalPorts ports, const EvaluatorConfig& cfg) {
  const std::string eval_id = state::eval_id_for_change(change.id);
  state::EvalRecord rec;
  rec.id = eval_id;
  rec.change_id = change.id;
  rec.repo = change.repo;
  rec.ref = change.ref;
  rec.branch = change.branch;
  rec.tag = change.tag;
  rec.rev = change.rev;
  rec.created_ms = ports.clock.now_ms();
  auto created = ports.state.create_eval(rec);
  if (!created) return retry(eval_id, created.error(), delivery.num_delivered);
  auto current = ports.state.get_eval(eval_id);
  if (!current || !current->has_value()) {
    return retry(eval_id, current ? Error::transient("eval vanished") : current.error(), delivery.num_delivered);
  }
  const state::EvalRecord eval = **current;

  // Redelivery of a change that was already evaluated: republish, don't redo.
  if (eval.state != state::EvalState::kEvaluating) {
    if (eval.jobs_total == 0 && eval.state == state::EvalState::kFailed && !eval.error.empty()) {
      auto o = fail_whole_eval(eval_id, eval.error, ports, cfg, delivery.num_delivered);
      o.result = "replayed";
      return o;
    }
    auto t = ports.state.add_jobs(eval_id, {}, ports.clock.now_ms());
    if (!t) return retry(eval_id, t.error(), delivery.num_delivered);
    if (auto r = publish_jobs(eval, *t, ports, cfg, 0, 0); !r) return retry(eval_id, r.error(), delivery.num_delivered);
    EvalOutcome o;
    o.eval_id = eval_id;
    o.result = "replayed";
    o.jobs = eval.jobs_total;
    o.disposition = bus::Disposition::ack();
    return o;
  }

  pipeline::Links links{cfg.public_url};
  auto pending = pipeline::eval_status(eval, msg::StatusState::kPending, "Evaluating", eval.created_ms * 1000, links);
  if (auto r = pipeline::publish_status(ports.bus, pending); !r) return retry(eval_id, r.error(), delivery.num_delivered);

  auto flake = ports.git.fetch({change.repo.clone_url, change.ref, change.rev, mirror_dir(cfg.work_dir, change.repo)});
  if (!flake) {
    if (flake.error().code == ErrorCode::kTransient && !delivery.last()) return retry(eval_id, flake.error(), delivery.num_delivered);
    return fail_whole_eval(eval_id, "cannot fetch " + change.rev + ": " + flake.error().message, ports, cfg, delivery.num_delivered);
  }

  std::vector<nix::AttrResult> attrs;
  std::vector<std::string> warnings;
  std::vector<std::string> errors;
  for (const auto& system : cfg.systems) {
    auto r = ports.nix.eval_attrs({*flake, {cfg.attribute, system}, cfg.show_trace, cfg.eval_timeout});
    if (!r) {
      if (r.error().code == ErrorCode::kTransient) {
        if (!delivery.last()) return retry(eval_id, r.error(), delivery.num_delivered);
        return fail_whole_eval(eval_id, r.error().message, ports, cfg, delivery.num_delivered);
      }
      errors.push_back(r.error().message);
      continue;
    }
    attrs.insert(attrs.end(), r->attrs.begin(), r->attrs.end());
    warnings.insert(warnings.end(), r->warnings.begin(), r->warnings.end());
  }
  // A system without the attribute set is fine when another has it; any
  // other error (syntax, lock file) fails the eval.
  bool fatal = errors.size() == cfg.systems.size();
  for (const auto& e : errors) fatal = fatal || !missing_attribute_error(e);
  if (fatal && !errors.empty()) return fail_whole_eval(eval_id, errors.front(), ports, cfg, delivery.num_delivered);

  std::vector<std::string> drvs, outputs;
  for (const auto& a : attrs) {
    if (!a.ok()) continue;
    drvs.push_back(a.drv_path);
    for (const auto& [_, p] : a.outputs) outputs.push_back(p);
  }
  auto graph = ports.nix.derivation_graph(drvs);
  if (!graph) return retry(eval_id, graph.error(), delivery.num_delivered);
  auto invalid = ports.nix.invalid_paths(outputs);
  if (!invalid) return retry(eval_id, invalid.error(), delivery.num_delivered);
  auto jobs = plan_jobs(eval_id, attrs, *graph, std::set<std::string>(invalid->begin(), invalid->end()));
  int eval_errors = 0;
  for (const auto& j : jobs) eval_errors += j.state == JobState::kEvalFailed;

  auto t = ports.state.add_jobs(eval_id, jobs, ports.clock.now_ms());
  if (!t) return retry(eval_id, t.error(), delivery.num_delivered);
  auto after = ports.state.get_eval(eval_id);
  if (!after || !after->has_value()) return retry(eval_id, after ? Error::transient("eval vanished") : after.error(), delivery.num_delivered);
  if (auto r = publish_jobs(**after, *t, ports, cfg, eval_errors, warnings.size()); !r) {
    return retry(eval_id, r.error(), delivery.num_delivered);
  }
  for (const auto& w : warnings) log::warn("eval.warning", w, {{"eval_id", eval_id}});
  EvalOutcome o;
  o.eval_id = eval_id;
  o.result = "evaluated";
  o.jobs = static_cast<int>(jobs.size());
  o.eval_errors = eval_errors;
  o.warnings = warnings;
  o.disposition = bus::Disposition::ack();
  return o;
}

}  // namespace flurry::evaluator
