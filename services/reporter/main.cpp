// flurry-reporter: flurry.status.> -> forge commit statuses.
#include <chrono>
#include <memory>

#include "flurry/core/log.hpp"
#include "flurry/forge/forges.hpp"
#include "flurry/messages/subjects.hpp"
#include "flurry/service/runtime.hpp"
#include "eval_end.hpp"
#include "report.hpp"

using namespace flurry;

namespace {

// Check runs keep their ids and read job logs in the state store (reached
// when first needed, so that configuration is checked before connecting).
class StoredCheckRuns final : public forge::CheckRunIds, public forge::JobLogs {
 public:
  explicit StoredCheckRuns(service::Runtime& rt) : rt_(rt) {}
  Result<std::optional<std::string>> find(const std::string& key) override { return rt_.state().get_forge_ref(key); }
  Result<void> remember(const std::string& key, const std::string& id) override {
    return rt_.state().put_forge_ref(key, id, 30 * 24 * 3600);  // a month covers re-runs
  }
  Result<std::string> log(const std::string& job_id) override { return rt_.state().get_log(job_id); }

 private:
  service::Runtime& rt_;
};

}  // namespace

int main(int argc, char** argv) {
  return service::run("reporter", argc, argv, [](service::Runtime& rt) {
    static std::unique_ptr<http::Client> client = http::make_client();
    static SystemClock clock;
    const auto& c = rt.config();
    static reporter::ReportConfig cfg;
    cfg.max_job_statuses = static_cast<int>(c.get_int("reporter.max_job_statuses", cfg.max_job_statuses));
    cfg.max_failure_statuses = static_cast<int>(c.get_int("reporter.max_failure_statuses", cfg.max_failure_statuses));
    cfg.combined_interval = c.get_duration_ms("reporter.combined_interval", cfg.combined_interval);
    if (cfg.max_job_statuses < 0 || cfg.max_failure_statuses < 0) throw ConfigError("reporter.max_*_statuses must not be negative");
    static StoredCheckRuns stored(rt);
    static forge::Forges forges(c, *client, clock, {&stored, &stored});
    if (forges.configured().empty()) {
      log::warn("report.no_forge", "no forge is configured ([github], [gitea], [gitlab]): statuses are only logged");
    }
    for (const auto& name : forges.configured()) log::info("report.forge", "posting statuses to " + name, {{"forge", name}});
    auto& state = rt.state();
    // How long a taken message stays with an instance that stopped answering
    // (killed) before another gets it; in-progress acks keep long work.
    const auto ack_wait = c.get_duration_ms("reporter.ack_wait", std::chrono::seconds(60));
    if (ack_wait < std::chrono::seconds(1)) throw ConfigError("reporter.ack_wait must be at least 1s");
    bus::ConsumerSpec spec{.stream = std::string(subjects::kEventsStream),
                           .durable = "reporter",
                           .filter_subject = "flurry.status.>",
                           .max_deliver = static_cast<int>(c.get_int("reporter.max_deliver", 20)),
                           .ack_wait = ack_wait,
                           .concurrency = 1};  // one at a time keeps each context in order
    auto& bus = rt.bus();
    // Each ended eval's flurry/eval says what changed (its own consumer: it
    // reads two evals' jobs, which must not hold up the statuses).
    static const std::string public_url = c.get_string("reporter.public_url", "");
    auto& catalog = rt.catalog();
    bus::ConsumerSpec ends{.stream = std::string(subjects::kEventsStream),
                           .durable = "reporter-eval-ends",
                           .filter_subject = std::string(subjects::kEvalFinished),
                           .max_deliver = static_cast<int>(c.get_int("reporter.max_deliver", 20)),
                           .ack_wait = ack_wait,
                           .concurrency = 1};
    rt.consume(ends, [&rt, &state, &catalog, &bus](const bus::Delivery& d) {
      auto finished = msg::decode_eval_finished(d.data);
      if (!finished) return bus::disposition_for(finished.error(), d.num_delivered);
      auto o = reporter::handle_eval_end(*finished, d.num_delivered, {state, catalog, bus}, public_url);
      rt.metrics().counter("eval_ends_total", "Ended evals described on flurry/eval, by result.", {{"result", o.result}}).Increment();
      log::info("eval_end." + o.result, o.detail.empty() ? o.result : o.detail, {{"eval_id", finished->eval_id}});
      return o.disposition;
    });
    rt.consume(spec, [&rt, &state](const bus::Delivery& d) {
      auto status = msg::decode_status_event(d.data);
      if (!status) return bus::disposition_for(status.error(), d.num_delivered);
      auto start = std::chrono::steady_clock::now();
      auto o = reporter::handle_status(*status, d.num_delivered, {state, [](const std::string& f) { return forges.poster(f); }, clock}, cfg);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      rt.metrics().counter("statuses_total", "Statuses handled, by forge and result.", {{"forge", status->repo.forge}, {"result", o.result}}).Increment();
      if (o.result == "posted" || o.result == "retry" || o.result == "reduced" || o.result == "refused") {
        rt.metrics().histogram("status_post_duration_seconds", "Time to post one status.", {{"forge", status->repo.forge}}).Observe(secs);
      }
      if (o.refused_status != 0) {
        rt.metrics()
            .counter("status_refusals_total", "Statuses a forge refused, by forge, HTTP status and whether the reduced retry was taken.",
                     {{"forge", status->repo.forge}, {"status", std::to_string(o.refused_status)},
                      {"reduced_taken", o.result == "reduced" ? "true" : "false"}})
            .Increment();
      }
      auto level = o.result == "posted" || o.result == "stale"                            ? log::Level::kDebug
                   : o.result == "reduced" || o.result == "refused" ? log::Level::kWarn
                                                                                          : log::Level::kInfo;
      log::write(level, "status." + o.result, o.detail.empty() ? o.result : o.detail,
                 {{"eval_id", status->eval_id}, {"forge", status->repo.forge}, {"repo", status->repo.full_name()}, {"rev", status->rev},
                  {"context", status->context}, {"state", std::string(msg::to_string(status->state))},
                  {"target_url", status->target_url}});
      return o.disposition;
    });
  });
}
