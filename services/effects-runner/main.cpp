// flurry-effects-runner: flurry.eval.finished -> hercules-ci-effects.
#include <chrono>

#include "effects.hpp"
#include "flurry/core/log.hpp"
#include "flurry/forge/forges.hpp"
#include "flurry/git/cli_git.hpp"
#include "flurry/messages/subjects.hpp"
#include "flurry/nix/cli_nix_runner.hpp"
#include "flurry/service/runtime.hpp"

using namespace flurry;

int main(int argc, char** argv) {
  return service::run("effects-runner", argc, argv, [](service::Runtime& rt) {
    static SystemClock clock;
    static nix::CliNixRunner nix(default_process_runner());
    const auto& c = rt.config();
    static effects::EffectsConfig cfg;
    cfg.work_dir = c.get_string("effects-runner.work_dir", cfg.work_dir);
    cfg.sandbox = c.get_bool("effects-runner.sandbox", true);
    cfg.extra_sandbox_paths = c.get_string_list("effects-runner.extra_sandbox_paths", {});
    cfg.timeout = c.get_duration_ms("effects-runner.timeout", cfg.timeout);
    cfg.public_url = c.get_string("effects-runner.public_url", "");
    for (const auto& key : c.keys("effects-runner.secrets")) {
      auto path = c.get_string("effects-runner.secrets.\"" + key + "\"", "");
      if (path.empty()) path = c.get_string("effects-runner.secrets." + key, "");
      if (!read_file(path)) throw ConfigError("effects-runner.secrets: cannot read " + path + " for " + key);
      cfg.secrets[key] = path;
    }
    static git::CliGit git(default_process_runner(),
                           {.allowed_schemes = c.get_string_list("effects-runner.allowed_url_schemes", {"https", "ssh", "git"})});
    // Private repositories are fetched with the forges' credentials.
    static std::unique_ptr<http::Client> forge_client = http::make_client();
    static forge::Forges forges(c, *forge_client, clock);
    auto& state = rt.state();
    auto& bus = rt.bus();
    // How long a taken message stays with an instance that stopped answering
    // (killed) before another gets it; in-progress acks keep long work.
    const auto ack_wait = c.get_duration_ms("effects-runner.ack_wait", std::chrono::seconds(60));
    if (ack_wait < std::chrono::seconds(1)) throw ConfigError("effects-runner.ack_wait must be at least 1s");
    bus::ConsumerSpec spec{.stream = std::string(subjects::kEventsStream),
                           .durable = "effects-runner",
                           .filter_subject = std::string(subjects::kEvalFinished),
                           // Deliveries that find Redis or NATS away end in a nak; 15
                           // (the bus's backoff doubles from 1 s to a minute) outlast
                           // about nine minutes of outage before an eval's effects are
                           // dead-lettered; 5 gave up after 15 s.
                           .max_deliver = static_cast<int>(c.get_int("effects-runner.max_deliver", 15)),
                           .ack_wait = ack_wait,
                           .concurrency = static_cast<int>(c.get_int("effects-runner.concurrency", 1))};
    rt.consume(spec, [&rt, &state, &bus](const bus::Delivery& d) {
      auto eval = msg::decode_eval_finished(d.data);
      if (!eval) return bus::disposition_for(eval.error(), d.num_delivered);
      auto o = effects::handle_eval_finished(*eval, d.num_delivered, {state, bus, nix, git, default_process_runner(), clock,
                                                                               [](const msg::Repo& r, const std::string& url) {
                                                                                 return forges.clone_auth(r, url);
                                                                               }},
                                                       cfg);
      rt.metrics().counter("effect_runs_total", "Finished evals handled by the effects runner, by result.", {{"result", o.result}}).Increment();
      rt.metrics().counter("effects_total", "Effects run.", {{"result", "failed"}}).Increment(o.failed);
      rt.metrics().counter("effects_total", "Effects run.", {{"result", "succeeded"}}).Increment(o.effects - o.failed);
      log::info("effects." + o.result, o.disposition.reason.empty() ? o.result : o.disposition.reason,
                {{"eval_id", eval->eval_id}, {"repo", eval->repo.full_name()}, {"branch", eval->branch}, {"effects", o.effects}, {"failed", o.failed}});
      return o.disposition;
    });
  });
}
