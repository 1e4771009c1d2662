#include "eval_end.hpp"

#include "flurry/history/history.hpp"
#include "flurry/pipeline/publish.hpp"

namespace flurry::reporter {
namespace {

ReportOutcome done(std::string result, std::string detail = "") {
  ReportOutcome o;
  o.result = std::move(result);
  o.detail = std::move(detail);
  o.disposition = bus::Disposition::ack();
  return o;
}

ReportOutcome retry(const Error& e, std::uint64_t delivered) {
  ReportOutcome o;
  o.result = "retry";
  o.detail = e.message;
  o.disposition = bus::disposition_for(e, delivered);
  return o;
}

}  // namespace

std::string end_description(int jobs_total, int jobs_failed, const std::string& changed) {
  std::string d = std::to_string(jobs_total) + (jobs_total == 1 ? " job" : " jobs");
  if (jobs_failed > 0) d += ", " + std::to_string(jobs_failed) + " not successful";
  if (!changed.empty()) d += "; " + changed;
  return d;
}

ReportOutcome handle_eval_end(const msg::EvalFinished& f, std::uint64_t delivered, EvalEndPorts ports, const std::string& public_url) {
  if (f.state != "succeeded" && f.state != "failed") return done("skipped", "eval " + f.state);
  auto e = ports.state.get_eval(f.eval_id);
  if (!e) return retry(e.error(), delivered);
  if (!e->has_value()) return done("skipped", "no eval " + f.eval_id);
  const auto& eval = **e;
  // Failed as a whole (no jobs): its flurry/eval already says why.
  if (eval.jobs_total == 0 || eval.cancelled) return done("skipped", "no jobs ran");
  auto c = history::compare({ports.state, ports.catalog}, eval);
  if (!c) return retry(c.error(), delivered);
  const auto description = end_description(f.jobs_total, f.jobs_failed, history::summary(*c));
  // After the evaluator's (created_ms*1000 + 1) and a cancel's (+2).
  const auto at_us = eval.finished_ms * 1000 + 3;
  auto status = pipeline::eval_status(eval, msg::StatusState::kSuccess, description, at_us, {public_url});
  if (auto r = pipeline::publish_status(ports.bus, status); !r) return retry(r.error(), delivered);
  return done("described", description);
}

}  // namespace flurry::reporter
