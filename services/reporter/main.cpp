// flurry-reporter: flurry.status.> -> forge commit statuses.
#include <chrono>
#include <memory>

#include "flurry/core/log.hpp"
#include "flurry/messages/subjects.hpp"
#include "flurry/service/runtime.hpp"
#include "report.hpp"

using namespace flurry;

namespace {
// GitHub shows the App ID as a number; TOML may hold it as one or as a string.
std::string app_id(const Config& c) {
  try {
    return c.require_string("reporter.github.app_id");
  } catch (const ConfigError&) {
    auto id = c.get_int("reporter.github.app_id", 0);
    if (id <= 0) throw ConfigError("reporter.github.app_id must be the app's numeric id");
    return std::to_string(id);
  }
}
}  // namespace

int main(int argc, char** argv) {
  return service::run("reporter", argc, argv, [](service::Runtime& rt) {
    static std::unique_ptr<http::Client> client = http::make_client();
    static std::unique_ptr<forge::GitHubStatusClient> github;
    static std::unique_ptr<forge::GitHubTokens> tokens;
    static SystemClock clock;
    const auto& c = rt.config();
    if (c.has("reporter.github.api_url")) {
      const auto api_url = c.require_string("reporter.github.api_url");
      if (c.has("reporter.github.app_id")) {
        // As a GitHub App: installation tokens, made and refreshed as needed.
        tokens = std::make_unique<forge::GitHubAppTokens>(
            *client, clock,
            forge::GitHubAppOptions{.api_url = api_url,
                                    .app_id = app_id(c),
                                    .private_key_pem = read_secret_file(c.require_string("reporter.github.private_key_file"))});
      } else {
        tokens = std::make_unique<forge::FixedToken>(read_secret_file(c.require_string("reporter.github.token_file")));
      }
      github = std::make_unique<forge::GitHubStatusClient>(*client, api_url, *tokens);
    } else {
      log::warn("report.no_github", "reporter.github.api_url is not set: GitHub statuses are only logged");
    }
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
      auto o = reporter::handle_status(*status, d.num_delivered, {state, github.get()});
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      rt.metrics().counter("statuses_total", "Statuses handled, by forge and result.", {{"forge", status->repo.forge}, {"result", o.result}}).Increment();
      if (o.result == "posted" || o.result == "retry" || o.result == "rejected") {
        rt.metrics().histogram("status_post_duration_seconds", "Time to post one status.").Observe(secs);
      }
      auto level = o.result == "posted" || o.result == "stale" ? log::Level::kDebug : log::Level::kInfo;
      log::write(level, "status." + o.result, o.detail.empty() ? o.result : o.detail,
                 {{"eval_id", status->eval_id}, {"repo", status->repo.full_name()}, {"rev", status->rev},
                  {"context", status->context}, {"state", std::string(msg::to_string(status->state))}});
      return o.disposition;
    });
  });
}
