// flurry-evaluator: flurry.change.> -> eval + jobs in Redis, build requests.
#include <chrono>

#include "evaluate.hpp"
#include "flurry/core/log.hpp"
#include "flurry/git/cli_git.hpp"
#include "flurry/messages/subjects.hpp"
#include "flurry/nix/cli_nix_runner.hpp"
#include "flurry/service/runtime.hpp"

using namespace flurry;

int main(int argc, char** argv) {
  return service::run("evaluator", argc, argv, [](service::Runtime& rt) {
    static SystemClock clock;
    const auto& c = rt.config();
    static evaluator::EvaluatorConfig cfg;
    cfg.systems = c.get_string_list("evaluator.systems", cfg.systems);
    cfg.attribute = c.get_string("evaluator.attribute", cfg.attribute);
    cfg.work_dir = c.get_string("evaluator.work_dir", cfg.work_dir);
    cfg.show_trace = c.get_bool("evaluator.show_trace", false);
    cfg.public_url = c.get_string("evaluator.public_url", "");
    cfg.eval_timeout = c.get_duration_ms("evaluator.eval_timeout", cfg.eval_timeout);
    static nix::CliNixRunner nix(default_process_runner(), {.eval_parallelism = static_cast<int>(c.get_int("evaluator.eval_workers", 2))});
    static git::CliGit git(default_process_runner(),
                           {.allowed_schemes = c.get_string_list("evaluator.allowed_url_schemes", {"https", "ssh", "git"})});
    auto& bus = rt.bus();
    auto& state = rt.state();
    int max_deliver = static_cast<int>(c.get_int("evaluator.max_deliver", 5));
    bus::ConsumerSpec spec{.stream = std::string(subjects::kChangesStream),
                           .durable = "evaluator",
                           .filter_subject = "flurry.change.>",
                           .max_deliver = max_deliver,
                           .ack_wait = std::chrono::seconds(60),
                           .concurrency = static_cast<int>(c.get_int("evaluator.concurrency", 2))};
    rt.consume(spec, [&rt, &bus, &state, max_deliver](const bus::Delivery& d) {
      auto change = msg::decode_change_event(d.data);
      if (!change) return bus::disposition_for(change.error(), d.num_delivered);
      auto start = std::chrono::steady_clock::now();
      log::info("eval.started", "evaluating", {{"change_id", change->id}, {"repo", change->repo.full_name()}, {"rev", change->rev}, {"ref", change->ref}});
      auto o = evaluator::handle_change(*change, {d.num_delivered, max_deliver}, {bus, state, nix, git, clock}, cfg);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      rt.metrics().counter("evals_total", "Evaluations by result.", {{"result", o.result}}).Increment();
      rt.metrics().histogram("eval_duration_seconds", "Time to evaluate a change.").Observe(secs);
      rt.metrics().counter("jobs_created_total", "Jobs created by evaluations.").Increment(o.jobs);
      log::info("eval." + o.result, o.disposition.reason.empty() ? o.result : o.disposition.reason,
                {{"eval_id", o.eval_id}, {"change_id", change->id}, {"repo", change->repo.full_name()}, {"rev", change->rev},
                 {"jobs", o.jobs}, {"eval_errors", o.eval_errors}, {"seconds", secs}});
      return o.disposition;
    });
  });
}
