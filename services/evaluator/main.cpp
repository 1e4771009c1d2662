// flurry-evaluator: flurry.change.> -> eval + jobs in Redis, build requests.
#include <chrono>

#include "evaluate.hpp"
#include "flurry/core/log.hpp"
#include "flurry/forge/forges.hpp"
#include "flurry/git/cli_git.hpp"
#include "flurry/messages/subjects.hpp"
#include "flurry/nix/cli_nix_runner.hpp"
#include "flurry/nix/eval_jobs_runner.hpp"
#include "flurry/service/runtime.hpp"

using namespace flurry;

int main(int argc, char** argv) {
  return service::run("evaluator", argc, argv, [](service::Runtime& rt) {
    static SystemClock clock;
    const auto& c = rt.config();
    static evaluator::EvaluatorConfig cfg;
    cfg.systems = c.get_string_list("evaluator.systems", cfg.systems);
    cfg.build_systems = c.get_string_list("evaluator.build_systems", cfg.systems);
    cfg.build_features = c.get_string_list("evaluator.build_features", cfg.build_features);
    cfg.attribute = c.get_string("evaluator.attribute", cfg.attribute);
    cfg.work_dir = c.get_string("evaluator.work_dir", cfg.work_dir);
    cfg.show_trace = c.get_bool("evaluator.show_trace", cfg.show_trace);
    cfg.public_url = c.get_string("evaluator.public_url", cfg.public_url);
    cfg.caches = c.get_string_list("evaluator.caches", cfg.caches);
    cfg.cache_failed_builds = c.get_bool("evaluator.cache_failed_builds", cfg.cache_failed_builds);
    cfg.eval_timeout = c.get_duration_ms("evaluator.eval_timeout", cfg.eval_timeout);
    cfg.attr_timeout = c.get_duration_ms("evaluator.attr_timeout", cfg.attr_timeout);
    cfg.force_recurse = c.get_bool("evaluator.force_recurse", cfg.force_recurse);
    cfg.max_deliver = static_cast<int>(c.get_int("evaluator.max_deliver", cfg.max_deliver));
    cfg.branch_rules = repo::read_branch_rules(c);
    const auto forks = c.get_string("trust.fork_pull_requests", "approve");
    if (forks != "approve" && forks != "build") throw ConfigError("trust.fork_pull_requests must be \"approve\" or \"build\"");
    cfg.trust.forks_need_approval = forks == "approve";
    cfg.trust.label = c.get_string("trust.label", cfg.trust.label);
    // The forges' APIs tell who may write (pull request trust).
    static std::unique_ptr<http::Client> forge_client = http::make_client();
    static forge::Forges forges(c, *forge_client, clock);
    if (cfg.systems.empty()) throw ConfigError("evaluator.systems must name at least one system");
    if (cfg.attribute.empty()) throw ConfigError("evaluator.attribute must not be empty");
    if (cfg.max_deliver < 1) throw ConfigError("evaluator.max_deliver must be at least 1");

    const int workers = static_cast<int>(c.get_int("evaluator.eval_workers", 2));
    const auto max_memory_mib = c.get_int("evaluator.max_memory_mib", 2048);
    if (workers < 1) throw ConfigError("evaluator.eval_workers must be at least 1");
    if (max_memory_mib < 0) throw ConfigError("evaluator.max_memory_mib must not be negative (0 = no ceiling)");
    static nix::CliNixRunner cli(default_process_runner(),
                                 {.eval_workers = workers, .eval_max_memory_mib = static_cast<std::size_t>(max_memory_mib)});
    // nix-eval-jobs when installed ("auto"), never ("off"), or at a path.
    static std::unique_ptr<nix::EvalJobsRunner> eval_jobs;
    const auto nej = c.get_string("evaluator.nix_eval_jobs", "auto");
    if (nej != "off") {
      auto found = nix::find_on_path(nej == "auto" ? "nix-eval-jobs" : nej);
      if (!found && nej != "auto") throw ConfigError("evaluator.nix_eval_jobs: " + nej + " is not executable");
      if (found) {
        eval_jobs = std::make_unique<nix::EvalJobsRunner>(
            default_process_runner(), cli,
            nix::EvalJobsOptions{.binary = *found, .workers = workers,
                                 .max_memory_mib = static_cast<int>(max_memory_mib)});
      }
      log::info("eval.engine", found ? "evaluating with nix-eval-jobs" : "nix-eval-jobs not found: evaluating with the nix CLI",
                {{"binary", found.value_or("")}});
    }
    static nix::NixRunner& nix = eval_jobs ? static_cast<nix::NixRunner&>(*eval_jobs) : cli;
    static git::CliGit git(default_process_runner(),
                           {.allowed_schemes = c.get_string_list("evaluator.allowed_url_schemes", {"https", "ssh", "git"})});
    auto& bus = rt.bus();
    auto& state = rt.state();
    // How long a taken message stays with an instance that stopped answering
    // (killed) before another gets it; in-progress acks keep long work.
    const auto ack_wait = c.get_duration_ms("evaluator.ack_wait", std::chrono::seconds(60));
    if (ack_wait < std::chrono::seconds(1)) throw ConfigError("evaluator.ack_wait must be at least 1s");
    bus::ConsumerSpec spec{.stream = std::string(subjects::kChangesStream),
                           .durable = "evaluator",
                           .filter_subject = "flurry.change.>",
                           // The handler fails the eval itself on its max_deliver-th
                           // delivery; the bus dead-letters a change (losing the push)
                           // only when even that could not be stored, Redis or NATS
                           // away for bus::kOutageDeliveries more deliveries.
                           .max_deliver = cfg.max_deliver + bus::kOutageDeliveries,
                           .ack_wait = ack_wait,  // the bus sends in-progress acks while we work
                           .concurrency = static_cast<int>(c.get_int("evaluator.concurrency", 2))};
    auto& catalog = rt.catalog();
    rt.consume(spec, [&rt, &bus, &state, &catalog](const bus::Delivery& d) {
      auto change = msg::decode_change_event(d.data);
      if (!change) {
        log::warn("change.undecodable", change.error().message, {{"subject", d.subject}});
        return bus::disposition_for(change.error(), d.num_delivered);
      }
      const auto start = std::chrono::steady_clock::now();
      const auto repo = change->repo.forge + ":" + change->repo.full_name();
      log::info("eval.started", "evaluating",
                {{"change_id", change->id}, {"repo", repo}, {"ref", change->ref}, {"rev", change->rev}, {"delivery", d.num_delivered}});
      auto o = evaluator::handle_change(*change, d.num_delivered,
                                        {bus, state, nix, git, clock, [](const std::string& f) { return forges.permissions(f); },
                                         [](const msg::Repo& r, const std::string& url) { return forges.clone_auth(r, url); }, &catalog},
                                        cfg);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      rt.metrics().counter("evals_total", "Change events handled, by result.", {{"result", o.result}}).Increment();
      rt.metrics().histogram("eval_duration_seconds", "Time to handle a change event.", {{"result", o.result}}).Observe(secs);
      if (o.result == "evaluated") rt.metrics().counter("jobs_created_total", "Jobs created by evaluations.").Increment(o.jobs);
      if (!o.warnings.empty()) {
        rt.metrics().counter("eval_warnings_total", "Evaluation warnings reported by nix.").Increment(static_cast<double>(o.warnings.size()));
      }
      for (const auto& w : o.warnings) log::warn("eval.warning", w, {{"eval_id", o.eval_id}, {"repo", repo}, {"rev", change->rev}});
      auto level = o.result == "retry" ? log::Level::kWarn : log::Level::kInfo;
      log::write(level, "eval." + o.result, o.error.empty() ? o.result : o.error,
                 {{"eval_id", o.eval_id}, {"change_id", change->id}, {"repo", repo}, {"rev", change->rev}, {"jobs", o.jobs},
                  {"eval_errors", o.eval_errors}, {"skipped", o.skipped}, {"ready", o.ready}, {"batches", o.batches}, {"seconds", secs}});
      return o.disposition;
    });
  });
}
