// flurry-builder: flurry.build.<system> -> nix build -> job results.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>

#include "build.hpp"
#include "flurry/core/log.hpp"
#include "flurry/messages/subjects.hpp"
#include "flurry/nix/cli_nix_runner.hpp"
#include "flurry/service/runtime.hpp"

using namespace flurry;

int main(int argc, char** argv) {
  return service::run("builder", argc, argv, [](service::Runtime& rt) {
    static SystemClock clock;
    const auto& c = rt.config();
    nix::CliOptions nix_options;
    if (c.has("builder.remote_builders")) nix_options.builders = c.get_string("builder.remote_builders", "");
    if (c.has("builder.max_local_builds")) nix_options.max_jobs = static_cast<int>(c.get_int("builder.max_local_builds", 1));
    if (nix_options.max_jobs && *nix_options.max_jobs < 0) throw ConfigError("builder.max_local_builds must not be negative");
    static nix::CliNixRunner nix(default_process_runner(), nix_options);
    static builder::BuilderConfig cfg;
    cfg.max_silent = c.get_duration_ms("builder.max_silent_time", cfg.max_silent);
    cfg.timeout = c.get_duration_ms("builder.timeout", cfg.timeout);
    cfg.cancel_poll_interval = c.get_duration_ms("builder.cancel_poll_interval", cfg.cancel_poll_interval);
    cfg.build_lease = c.get_duration_ms("builder.build_lease", cfg.build_lease);
    cfg.shared_result_ttl = c.get_duration_ms("builder.shared_result_ttl", cfg.shared_result_ttl);
    cfg.store_retry_for = c.get_duration_ms("builder.store_retry_for", cfg.store_retry_for);
    if (cfg.build_lease <= 2 * cfg.cancel_poll_interval) {
      throw ConfigError("builder.build_lease must be more than twice builder.cancel_poll_interval (it is renewed that often)");
    }
    cfg.log_cap_bytes = static_cast<std::size_t>(c.get_int("builder.log_cap_bytes", static_cast<std::int64_t>(cfg.log_cap_bytes)));
    cfg.public_url = c.get_string("builder.public_url", "");
    int slots = static_cast<int>(c.get_int("builder.slots", 2));
    int max_deliver = static_cast<int>(c.get_int("builder.max_attempts", 3));
    // The handler ends a job itself after max_attempts (an infrastructure
    // failure); the bus gives up on a request (dead-letters it, stranding
    // the job) only bus::kOutageDeliveries deliveries later.
    // How long a taken request stays with a builder that stopped answering
    // (in-progress acks every third of it while nix runs) before another
    // builder gets it.
    const auto ack_wait = c.get_duration_ms("builder.ack_wait", std::chrono::seconds(60));
    if (ack_wait < std::chrono::seconds(1)) throw ConfigError("builder.ack_wait must be at least 1s");
    auto& bus = rt.bus();
    auto& state = rt.state();
    // System features: configured, else those this host's nix offers.
    std::vector<std::string> features;
    if (c.has("builder.features")) {
      features = c.get_string_list("builder.features", {});
    } else if (auto f = nix.system_features()) {
      features = *f;
    } else {
      log::warn("builder.features_unknown", "cannot read nix's system-features; offering none: " + f.error().message);
    }
    const auto feature_tokens = subjects::feature_tokens(features);
    // One pool of `slots` handlers per system drains that system's queue
    // (flurry.build.<system>) and the queue of every set of system features
    // this builder offers that has requests waiting
    // (flurry.build.<system>.<feature>+...), found by looking at the stream.
    struct Queue {
      std::string system;
      std::mutex mu;
      std::vector<bus::ConsumerSpec> specs;  // [0]: the plain queue
      std::vector<bus::ConsumerSpec> current() {
        std::lock_guard lock(mu);
        return specs;
      }
    };
    static std::vector<std::unique_ptr<Queue>> queues;
    static std::atomic<int> busy_total{0};
    const auto systems = c.get_string_list("builder.systems", {"x86_64-linux"});
    auto spec_for = [ack_wait, max_deliver, slots](const std::string& system, const std::vector<std::string>& feats) {
      std::string durable = "builder-" + subjects::token(system);
      for (std::size_t i = 0; i < feats.size(); ++i) durable += (i == 0 ? "-" : "+") + feats[i];
      return bus::ConsumerSpec{.stream = std::string(subjects::kBuildsStream),
                               .durable = subjects::durable(durable),
                               .filter_subject = subjects::build(system, feats),
                               .max_deliver = max_deliver + bus::kOutageDeliveries,
                               .ack_wait = ack_wait,
                               .concurrency = slots};
    };
    for (const auto& system : systems) {
      auto& busy = rt.metrics().gauge("builder_busy_slots", "Build slots in use.", {{"system", system}});
      auto& free = rt.metrics().gauge("builder_free_slots", "Build slots free.", {{"system", system}});
      free.Set(slots);
      rt.metrics().gauge("builder_slots", "Build slots configured.", {{"system", system}}).Set(slots);
      auto& q = *queues.emplace_back(std::make_unique<Queue>());
      q.system = system;
      q.specs.push_back(spec_for(system, {}));
      rt.consume_pool("builder-" + system, [&q] { return q.current(); }, slots,
                      [&rt, &state, &bus, &busy, &free, system, max_deliver](const bus::Delivery& d) {
        auto req = msg::decode_build_request(d.data);
        if (!req) return bus::disposition_for(req.error(), d.num_delivered);
        busy.Increment();
        free.Decrement();
        ++busy_total;
        log::info("build.started", "building", {{"eval_id", req->eval_id}, {"job_id", req->job_id}, {"attr", req->attr},
                                                {"drv", req->drv_path}, {"delivery", d.num_delivered}, {"queue", d.consumer}});
        auto o = builder::handle_build_request(*req, {d.num_delivered, max_deliver}, {state, bus, nix, clock}, cfg);
        busy.Decrement();
        free.Increment();
        --busy_total;
        rt.metrics().counter("builds_total", "Build requests handled, by system and result.", {{"system", system}, {"result", o.result}}).Increment();
        if (o.seconds > 0) rt.metrics().histogram("build_duration_seconds", "Time nix spent building.", {{"system", system}}).Observe(o.seconds);
        if (o.shared) {
          rt.metrics().counter("builds_shared_total", "Jobs that took the result of another job's build of the same derivation.",
                               {{"system", system}}).Increment();
        }
        log::info("build." + o.result, o.disposition.reason.empty() ? o.result : o.disposition.reason,
                  {{"eval_id", req->eval_id}, {"job_id", req->job_id}, {"attr", req->attr}, {"drv", req->drv_path},
                   {"seconds", o.seconds}});
        return o.disposition;
      });
    }
    // Queues of feature sets this builder offers come and go with their
    // requests: a set's queue is drained while the stream holds any.
    if (!feature_tokens.empty()) {
      rt.every(c.get_duration_ms("builder.feature_poll_interval", std::chrono::seconds(1)), [&bus, spec_for, feature_tokens] {
        for (auto& q : queues) {
          auto stored = bus.stored_subjects(std::string(subjects::kBuildsStream), subjects::build(q->system) + ".>");
          if (!stored) continue;  // keep what there is; the bus logs its own trouble
          std::vector<bus::ConsumerSpec> specs{spec_for(q->system, {})};
          for (const auto& feats : builder::feature_queues(*stored, q->system, feature_tokens)) specs.push_back(spec_for(q->system, feats));
          std::lock_guard lock(q->mu);
          q->specs = std::move(specs);
        }
      });
    }
    // Announces this instance (systems, features, slots) so that evaluators
    // know which systems are served; it counts as gone 3 intervals after
    // its last announcement.
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    static state::BuilderInfo self{std::string(host) + ":" + std::to_string(::getpid()), systems, features,
                                   slots * static_cast<int>(systems.size()), 0, 0};
    const auto announce_every = c.get_duration_ms("builder.announce_interval", std::chrono::seconds(10));
    auto announce = [&state, announce_every] {
      self.busy = busy_total.load();
      self.seen_ms = clock.now_ms();
      if (auto r = state.register_builder(self, 3 * announce_every.count()); !r) {
        log::warn("builder.announce_failed", r.error().message, {{"builder", self.id}});
      }
    };
    announce();
    rt.every(announce_every, announce);
    // Over the system's queues this builder drains now (with their
    // features, when it offers any).
    rt.every(c.get_duration_ms("builder.queue_poll_interval", std::chrono::seconds(5)), [&rt, &bus] {
      for (auto& q : queues) {
        bus::QueueDepth total;
        bool read = false;
        for (const auto& spec : q->current()) {
          auto d = bus.queue_depth(spec);
          if (!d) continue;
          read = true;
          total.waiting += d->waiting;
          total.in_flight += d->in_flight;
        }
        if (!read) continue;
        rt.metrics().gauge("build_queue_waiting", "Build requests not yet taken by any builder.", {{"system", q->system}})
            .Set(static_cast<double>(total.waiting));
        rt.metrics().gauge("build_queue_in_flight", "Build requests taken and not finished, by any builder.", {{"system", q->system}})
            .Set(static_cast<double>(total.in_flight));
      }
    });
  });
}
