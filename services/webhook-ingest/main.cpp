// flurry-webhook-ingest: POST /webhooks/{github,gitea,gitlab} -> flurry.change.<forge>;
// polled repositories ([poll.<name>]) -> flurry.change.git; project
// discovery ([discovery]) -> the state store's project registry and the
// projects' webhooks.
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "flurry/core/log.hpp"
#include "flurry/core/process.hpp"
#include "flurry/core/text.hpp"
#include "flurry/forge/forges.hpp"
#include "flurry/git/cli_git.hpp"
#include "flurry/repo/branch_rules.hpp"
#include "flurry/service/runtime.hpp"
#include "discovery.hpp"
#include "poller.hpp"
#include "webhook.hpp"

using namespace flurry;

namespace {

// How often each repository's thread looks whether its poll is due.
constexpr std::chrono::milliseconds kPollTick{200};
// A poll (one git ls-remote) that hangs is cut off after this; SIGTERM
// cuts it off at once.
constexpr std::chrono::seconds kPollTimeout{60};

std::string joined(const std::vector<std::string>& v, const std::string& sep, std::size_t max_bytes) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return text::truncate_utf8(out, max_bytes);
}

// One thread per polled repository (a hung remote delays only itself),
// each polling when due and scheduling its next poll with jitter.
void start_polling(service::Runtime& rt, bus::Bus& bus, Clock& clock, const ingest::PollConfig& polling,
                   const std::vector<repo::BranchRule>& rules) {
  if (polling.repos.empty()) return;
  auto git = std::make_shared<git::CliGit>(
      default_process_runner(),
      git::CliGitOptions{.allowed_schemes = polling.allowed_url_schemes, .timeout = kPollTimeout, .cancel = &rt.stopping()});
  struct Task {
    ingest::Poller poller;
    std::mt19937_64 rng;
    std::chrono::steady_clock::time_point due;
    double random() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }
  };
  for (const auto& repo : polling.repos) {
    auto task = std::make_shared<Task>(Task{ingest::Poller(repo, rules, {*git, bus, clock}), std::mt19937_64(std::random_device{}()), {}});
    task->due = std::chrono::steady_clock::now() +
                ingest::next_poll_delay(repo.interval, polling.jitter, true, [&task] { return task->random(); });
    const auto jitter = polling.jitter;
    rt.every(kPollTick, [&rt, git, task, jitter] {
      if (rt.stopping().load() || std::chrono::steady_clock::now() < task->due) return;
      const auto& r = task->poller.repo();
      const auto start = std::chrono::steady_clock::now();
      auto o = task->poller.poll();
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      task->due = std::chrono::steady_clock::now() + ingest::next_poll_delay(r.interval, jitter, false, [&task] { return task->random(); });
      rt.metrics().counter("polls_total", "Polls of pull-based repositories, by repository and result.", {{"repo", r.name}, {"result", o.result}})
          .Increment();
      rt.metrics().histogram("poll_duration_seconds", "Time to poll one repository.", {{"repo", r.name}}).Observe(secs);
      const auto url = text::display_url(r.url);
      for (const auto& s : o.skipped) log::warn("poll.skipped", s, {{"repo", r.name}, {"url", url}});
      if (o.result == "unchanged") {
        log::debug("poll.unchanged", "no selected branch moved", {{"repo", r.name}, {"url", url}});
        return;
      }
      const auto level = o.result == "failed" ? log::Level::kWarn : log::Level::kInfo;
      log::write(level, "poll." + o.result, o.errors.empty() ? "published new branch heads" : joined(o.errors, "; ", 2000),
                 {{"repo", r.name},
                  {"url", url},
                  {"published", static_cast<int>(o.published.size())},
                  {"change_ids", joined(o.published, ",", 2000)},
                  {"seconds", secs}});
    });
  }
  log::info("poll.started", "polling repositories", {{"repos", static_cast<int>(polling.repos.size())}});
}

// How often discovery looks whether a refresh is due or was asked for.
constexpr std::chrono::seconds kDiscoveryTick{1};

void report_refresh(service::Runtime& rt, const ingest::RefreshOutcome& o) {
  if (o.result == "busy") {
    log::debug("discovery.busy", "another instance is refreshing", {{"forge", o.forge}, {"trigger", o.trigger}});
    return;
  }
  rt.metrics().counter("discovery_runs_total", "Project discovery refreshes, by forge and result.", {{"forge", o.forge}, {"result", o.result}})
      .Increment();
  if (o.result != "failed") {
    rt.metrics().gauge("discovered_projects", "Projects the last discovery refresh found, by forge.", {{"forge", o.forge}}).Set(o.projects);
  }
  const char* help = "Project webhooks discovery created or updated, by forge and action.";
  if (o.hooks_created > 0) rt.metrics().counter("webhooks_managed_total", help, {{"forge", o.forge}, {"action", "created"}}).Increment(o.hooks_created);
  if (o.hooks_updated > 0) rt.metrics().counter("webhooks_managed_total", help, {{"forge", o.forge}, {"action", "updated"}}).Increment(o.hooks_updated);
  const auto level = o.result == "ok" ? log::Level::kInfo : log::Level::kWarn;
  std::string message = o.result == "failed" ? "projects not refreshed" : "projects refreshed";
  if (!o.errors.empty()) message += ": " + joined(o.errors, "; ", 2000);
  log::write(level, "discovery." + o.result, message,
             {{"forge", o.forge},
              {"trigger", o.trigger},
              {"projects", o.projects},
              {"hooks_created", o.hooks_created},
              {"hooks_updated", o.hooks_updated},
              {"hooks_unchanged", o.hooks_unchanged},
              {"errors", static_cast<int>(o.errors.size())},
              {"hooks_written", joined(o.hooks_written, "; ", 2000)}});
}

}  // namespace

int main(int argc, char** argv) {
  return service::run("webhook-ingest", argc, argv, [](service::Runtime& rt) {
    static SystemClock clock;
    // Configuration first: a bad one is refused before anything connects.
    std::vector<std::pair<const ingest::Dialect*, std::string>> forges;
    for (const ingest::Dialect* dialect : {&ingest::github_dialect(), &ingest::gitea_dialect(), &ingest::gitlab_dialect()}) {
      const auto key = "webhook-ingest." + dialect->forge + ".secret_file";
      if (rt.config().has(key)) forges.emplace_back(dialect, read_secret_file(rt.config().require_string(key)));
    }
    const auto polling = ingest::read_poll_config(rt.config());
    const auto branch_rules = repo::read_branch_rules(rt.config());
    if (forges.empty() && polling.repos.empty()) {
      throw ConfigError("no forge and no polled repository is configured: set webhook-ingest.github.secret_file, "
                        "webhook-ingest.gitea.secret_file or webhook-ingest.gitlab.secret_file, or add a [poll.<name>] table");
    }
    // Project discovery reads the forges' API sections ([github] as an
    // App, [gitea], [gitlab]), as the reporter does.
    static auto api_client = http::make_client();
    static std::unique_ptr<forge::Forges> forge_apis;
    std::optional<ingest::DiscoveryConfig> discovery_config;
    std::map<std::string, ingest::DiscoveryTarget> discovery_targets;
    if (rt.config().has("discovery")) {
      forge_apis = std::make_unique<forge::Forges>(rt.config(), *api_client, clock);
      std::vector<ingest::DiscoverableForge> available;
      for (const auto& name : forge_apis->discoverable()) {
        auto secret = std::find_if(forges.begin(), forges.end(), [&](const auto& f) { return f.first->forge == name; });
        available.push_back({name, forge_apis->projects(name)->has_repo_hooks(), secret != forges.end()});
        discovery_targets[name] = {forge_apis->projects(name), secret != forges.end() ? secret->second : ""};
      }
      discovery_config = ingest::read_discovery_config(rt.config(), available);
      if (discovery_config->forges.empty()) {
        throw ConfigError("[discovery]: no forge to discover: it needs [github] as an App, [gitea] or [gitlab], with "
                          "webhook-ingest.<forge>.secret_file (or discovery.forges)");
      }
    }
    auto& bus = rt.bus();
    start_polling(rt, bus, clock, polling, branch_rules);
    static std::unique_ptr<ingest::Discovery> discovery;
    if (discovery_config) {
      discovery = std::make_unique<ingest::Discovery>(*discovery_config, discovery_targets,
                                                      ingest::DiscoveryPorts{rt.state(), clock, &rt.stopping()});
      rt.every(kDiscoveryTick, [&rt] {
        for (const auto& o : discovery->tick()) report_refresh(rt, o);
      });
      log::info("discovery.started", "discovering projects",
                {{"forges", joined(discovery_config->forges, ",", 200)},
                 {"topic", discovery_config->filter.topic},
                 {"hooks", discovery_config->webhook_base_url.empty() ? "not managed" : "managed"}});
    }
    ingest::RefreshProjects refresh = [](const std::string& forge) { return discovery && discovery->request(forge); };
    for (const auto& [dialect, secret] : forges) {
      const auto path = "/webhooks/" + dialect->forge;
      auto handler = [&rt, &bus, secret, dialect, refresh](const http::Request& req) {
        auto start = std::chrono::steady_clock::now();
        auto o = ingest::handle_webhook(*dialect, req, secret, {bus, clock, refresh});
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        rt.metrics()
            .counter("webhooks_total", "Webhooks received, by forge, event and result.",
                     {{"forge", dialect->forge}, {"event", o.event.size() <= 40 ? o.event : "other"}, {"result", o.result}})
            .Increment();
        rt.metrics().histogram("webhook_duration_seconds", "Time to answer a webhook.", {{"forge", dialect->forge}}).Observe(secs);
        auto level = o.result == "accepted" || o.result == "ping" || o.result == "ignored" || o.result == "refresh" ? log::Level::kInfo
                                                                                                                  : log::Level::kWarn;
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
