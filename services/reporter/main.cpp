// flurry-reporter: flurry.status.> -> forge commit statuses.
#include <chrono>
#include <memory>

#include "flurry/core/log.hpp"
#include "flurry/forge/forges.hpp"
#include "flurry/messages/subjects.hpp"
#include "flurry/service/runtime.hpp"
#include "report.hpp"

using namespace flurry;

int main(int argc, char** argv) {
  return service::run("reporter", argc, argv, [](service::Runtime& rt) {
    static std::unique_ptr<http::Client> client = http::make_client();
    static SystemClock clock;
    const auto& c = rt.config();
    static forge::Forges forges(c, *client, clock);
    if (forges.configured().empty()) {
      log::warn("report.no_forge", "no forge is configured ([github], [gitea], [gitlab]): statuses are only logged");
    }
    for (const auto& name : forges.configured()) log::info("report.forge", "posting statuses to " + name, {{"forge", name}});
    auto& state = rt.state();
    bus::ConsumerSpec spec{.stream = std::string(subjects::kEventsStream),
                           .durable = "reporter",
                           .filter_subject = "flurry.status.>",
                           .max_deliver = static_cast<int>(c.get_int("reporter.max_deliver", 20)),
                           .ack_wait = std::chrono::seconds(60),
                           .concurrency = 1};  // one at a time keeps each context in order
    rt.bus();
    rt.consume(spec, [&rt, &state](const bus::Delivery& d) {
      auto status = msg::decode_status_event(d.data);
      if (!status) return bus::disposition_for(status.error(), d.num_delivered);
      auto start = std::chrono::steady_clock::now();
      auto o = reporter::handle_status(*status, d.num_delivered, {state, [](const std::string& f) { return forges.poster(f); }});
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      rt.metrics().counter("statuses_total", "Statuses handled, by forge and result.", {{"forge", status->repo.forge}, {"result", o.result}}).Increment();
      if (o.result == "posted" || o.result == "retry" || o.result == "rejected") {
        rt.metrics().histogram("status_post_duration_seconds", "Time to post one status.", {{"forge", status->repo.forge}}).Observe(secs);
      }
      auto level = o.result == "posted" || o.result == "stale" ? log::Level::kDebug : log::Level::kInfo;
      log::write(level, "status." + o.result, o.detail.empty() ? o.result : o.detail,
                 {{"eval_id", status->eval_id}, {"forge", status->repo.forge}, {"repo", status->repo.full_name()}, {"rev", status->rev},
                  {"context", status->context}, {"state", std::string(msg::to_string(status->state))}});
      return o.disposition;
    });
  });
}
