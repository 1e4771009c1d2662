// flurry-webhook-ingest: POST /webhooks/{github,gitea,gitlab} -> flurry.change.<forge>.
#include <chrono>
#include <utility>
#include <vector>

#include "flurry/core/log.hpp"
#include "flurry/service/runtime.hpp"
#include "webhook.hpp"

using namespace flurry;

int main(int argc, char** argv) {
  return service::run("webhook-ingest", argc, argv, [](service::Runtime& rt) {
    static SystemClock clock;
    // Configuration first: a bad one is refused before anything connects.
    std::vector<std::pair<const ingest::Dialect*, std::string>> forges;
    for (const ingest::Dialect* dialect : {&ingest::github_dialect(), &ingest::gitea_dialect(), &ingest::gitlab_dialect()}) {
      const auto key = "webhook-ingest." + dialect->forge + ".secret_file";
      if (rt.config().has(key)) forges.emplace_back(dialect, read_secret_file(rt.config().require_string(key)));
    }
    if (forges.empty()) {
      throw ConfigError("no forge is configured: set webhook-ingest.github.secret_file, webhook-ingest.gitea.secret_file "
                        "or webhook-ingest.gitlab.secret_file");
    }
    auto& bus = rt.bus();
    for (const auto& [dialect, secret] : forges) {
      const auto path = "/webhooks/" + dialect->forge;
      auto handler = [&rt, &bus, secret, dialect](const http::Request& req) {
        auto start = std::chrono::steady_clock::now();
        auto o = ingest::handle_webhook(*dialect, req, secret, {bus, clock});
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        rt.metrics()
            .counter("webhooks_total", "Webhooks received, by forge, event and result.",
                     {{"forge", dialect->forge}, {"event", o.event.size() <= 40 ? o.event : "other"}, {"result", o.result}})
            .Increment();
        rt.metrics().histogram("webhook_duration_seconds", "Time to answer a webhook.", {{"forge", dialect->forge}}).Observe(secs);
        auto level = o.result == "accepted" || o.result == "ping" || o.result == "ignored" ? log::Level::kInfo : log::Level::kWarn;
        log::write(level, "webhook." + o.result, o.detail.empty() ? o.result : o.detail,
                   {{"forge", dialect->forge}, {"event", o.event}, {"delivery", o.delivery}, {"status", o.response.status}});
        return o.response;
      };
      rt.http().route("POST", path, handler);
      // Forgejo is Gitea's fork and speaks its dialect.
      if (dialect->forge == "gitea") rt.http().route("POST", "/webhooks/forgejo", handler);
    }
  });
}
