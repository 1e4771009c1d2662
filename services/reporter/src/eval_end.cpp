#include "eval_end.hpp"

#include "flurry/history/history.hpp"
#include "flurry/pipeline/publish.hpp"

namespace flurry::reporter {
std::string end_description(int jobs_total, int jobs_failed, const std::string& changed) {
  std::string d = std::to_string(jobs_total) + (jobs_total == 1 ? " job" : " jobs");
  if (jobs_failed > 0) d += ", " + std::to_string(jobs_failed) + " not successful";
  if (!changed.empty()) d += "; " + changed;
  return d;
}

ReportOutcome handle_eval_end(const msg::EvalFinished& f, std::uint64_t delivered, EvalEndPorts ports, const std::string& public_url) {
  if (f.state != "succeeded" && f.state != "failed") return acked("skipped", "eval " + f.state);
  auto e = ports.state.get_eval(f.eval_id);
  if (!e) return retried(e.error(), delivered);
  if (!e->has_value()) return acked("skipped", "no eval " + f.eval_id);
  const auto& eval = **e;
  // Failed as a whole (no jobs): its flurry/eval already says why.
  if (eval.jobs_total == 0 || eval.cancelled) return acked("skipped", "no jobs ran");
  auto c = history::compare({ports.state, ports.catalog}, eval);
  if (!c) return retried(c.error(), delivered);
  const auto description = end_description(f.jobs_total, f.jobs_failed, history::summary(*c));
  // After the evaluator's (created_ms*1000 + 1) and a cancel's (+2).
  const auto at_us = eval.finished_ms * 1000 + 3;
  auto status = pipeline::eval_status(eval, msg::StatusState::kSuccess, description, at_us, {public_url});
  if (auto r = pipeline::publish_status(ports.bus, status); !r) return retried(r.error(), delivered);
  return acked("described", description);
}

}  // namespace flurry::reporter
