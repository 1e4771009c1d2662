// flurry-webhook-ingest: POST /webhooks/github -> flurry.change.github.
#include <chrono>

#include "flurry/core/log.hpp"
#include "flurry/service/runtime.hpp"
#include "github_webhook.hpp"

using namespace flurry;

int main(int argc, char** argv) {
  return service::run("webhook-ingest", argc, argv, [](service::Runtime& rt) {
    static SystemClock clock;
    const std::string secret = read_secret_file(rt.config().require_string("webhook-ingest.github.secret_file"));
    auto& bus = rt.bus();
    rt.http().route("POST", "/webhooks/github", [&rt, &bus, secret](const http::Request& req) {
      auto start = std::chrono::steady_clock::now();
      auto o = ingest::handle_github_webhook(req, secret, {bus, clock});
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      rt.metrics()
          .counter("webhooks_total", "Webhooks received, by forge, event and result.",
                   {{"forge", "github"}, {"event", o.event.size() <= 40 ? o.event : "other"}, {"result", o.result}})
          .Increment();
      rt.metrics().histogram("webhook_duration_seconds", "Time to answer a webhook.", {{"forge", "github"}}).Observe(secs);
      auto level = o.result == "accepted" || o.result == "ping" || o.result == "ignored" ? log::Level::kInfo : log::Level::kWarn;
      log::write(level, "webhook." + o.result, o.detail.empty() ? o.result : o.detail,
                 {{"forge", "github"}, {"event", o.event}, {"delivery", o.delivery}, {"status", o.response.status}});
      return o.response;
    });
  });
}
