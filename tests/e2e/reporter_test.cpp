// The reporter as a GitHub App, end to end: the real flurry-reporter
// binary, real nats-server and redis-server, and the fake GitHub acting as
// GitHub does for an app (JWT-authenticated installation lookup and access
// token, statuses only with that token).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "flurry/bus/nats_bus.hpp"
#include "flurry/core/child.hpp"
#include "flurry/fakes/fake_forge.hpp"
#include "flurry/forge/status_poster.hpp"
#include "flurry/http/http.hpp"
#include "flurry/pipeline/publish.hpp"
#include "flurry/state/redis_store.hpp"
#include "flurry/test/jwt.hpp"
#include "flurry/test/servers.hpp"
#include "service_process.hpp"

using namespace flurry;
using namespace std::chrono_literals;

TEST(Reporter, AsAGitHubAppItPostsStatusesWithInstallationTokensItNeverLogs) {
  test::TempDir tmp("flurry-reporter-app");
  test::NatsServer nats(tmp.file("nats"));
  test::RedisServer redis(tmp.file("redis"));
  fakes::FakeForge github;
  auto key = test::new_rsa_key_pair();
  github.act_as_app("4242", key.public_pem, 99);
  test::write_file(tmp.file("app.pem"), key.private_pem);
  std::filesystem::permissions(tmp.file("app.pem"), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto reporter = test::start_service(
      "reporter", "services/reporter/flurry-reporter",
      [&](int port) {
        return "[nats]\nurl = \"" + nats.url() + "\"\n[redis]\nhost = \"127.0.0.1\"\nport = " + std::to_string(redis.port()) +
               "\n[reporter]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n[reporter.github]\napi_url = \"" +
               github.url() + "\"\napp_id = 4242\nprivate_key_file = \"" + tmp.file("app.pem") + "\"\n";
      },
      tmp);

  auto bus = bus::connect_nats({.url = nats.url()});
  ASSERT_TRUE(bus.has_value()) << bus.error().message;
  const std::string sha(40, 'c');
  for (int i = 0; i < 2; ++i) {
    auto status = pipeline::make_status("e1", {"github", "octo", "hello", "", "", "main"}, sha, "flurry/checks.x86_64-linux.t" + std::to_string(i),
                                        msg::StatusState::kSuccess, "Build succeeded", 1000 + i, "");
    ASSERT_TRUE(pipeline::publish_status(**bus, status).has_value());
  }
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (github.final_statuses(sha).size() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(100ms);
  ASSERT_EQ(github.final_statuses(sha).size(), 2u) << reporter.log();
  // One installation lookup and one token serve both statuses.
  auto tokens = github.issued_tokens();
  ASSERT_EQ(tokens.size(), 1u);
  int status_calls = 0;
  for (const auto& call : github.calls()) {
    if (call.path.find("/statuses/") == std::string::npos) continue;
    ++status_calls;
    EXPECT_EQ(call.headers.at("authorization"), "Bearer " + tokens[0]);
  }
  EXPECT_EQ(status_calls, 2);
  EXPECT_EQ(reporter.proc->stop(), 0);
  // Neither the token nor the key reached the log.
  auto log = reporter.log();
  EXPECT_EQ(log.find(tokens[0]), std::string::npos) << log;
  EXPECT_EQ(log.find("PRIVATE KEY"), std::string::npos) << log;
}

namespace {

// The real flurry-reporter against the fake forges (GitHub as an App
// posting check runs when `checks`, Gitea and GitLab with tokens), with its
// own nats-server and redis-server.
struct ReporterRig {
  explicit ReporterRig(bool checks) {
    auto key = test::new_rsa_key_pair();
    forge.act_as_app("4242", key.public_pem, 99);
    forge.set_token("gitea", "gitea-token");
    forge.set_token("gitlab", "gitlab-token");
    test::write_file(tmp.file("app.pem"), key.private_pem);
    test::write_file(tmp.file("gitea-token"), "gitea-token\n");
    test::write_file(tmp.file("gitlab-token"), "gitlab-token\n");
    for (const char* f : {"app.pem", "gitea-token", "gitlab-token"}) {
      std::filesystem::permissions(tmp.file(f), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
    reporter = test::start_service(
        "reporter", "services/reporter/flurry-reporter",
        [&](int port) {
          return "[nats]\nurl = \"" + nats.url() + "\"\n[redis]\nhost = \"127.0.0.1\"\nport = " + std::to_string(redis.port()) +
                 "\n[reporter]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n[github]\napi_url = \"" + forge.url() +
                 "\"\napp_id = 4242\nprivate_key_file = \"" + tmp.file("app.pem") + "\"\nchecks = " + (checks ? "true" : "false") +
                 "\n[gitea]\napi_url = \"" + forge.url() + "\"\ntoken_file = \"" + tmp.file("gitea-token") + "\"\n[gitlab]\napi_url = \"" +
                 forge.url() + "\"\ntoken_file = \"" + tmp.file("gitlab-token") + "\"\n";
        },
        tmp);
    auto b = bus::connect_nats({.url = nats.url()});
    if (!b) throw std::runtime_error(b.error().message);
    bus = std::move(*b);
    auto s = state::connect_redis({.host = "127.0.0.1", .port = redis.port()});
    if (!s) throw std::runtime_error(s.error().message);
    store = std::move(*s);
  }
  void publish(const msg::StatusEvent& s) { ASSERT_TRUE(pipeline::publish_status(*bus, s).has_value()); }
  // The reporter handled every status published so far: its counter of
  // handled statuses reached `n`.
  bool handled(int n) {
    auto deadline = std::chrono::steady_clock::now() + 60s;
    auto client = http::make_client();
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = client->send({.url = "http://127.0.0.1:" + std::to_string(reporter.port) + "/metrics"});
      if (r && r->status == 200) {
        int total = 0;
        std::istringstream lines(r->body);
        for (std::string line; std::getline(lines, line);) {
          if (line.rfind("flurry_statuses_total{", 0) == 0) total += std::stoi(line.substr(line.rfind(' ') + 1));
        }
        if (total >= n) return true;
      }
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  std::string metrics() {
    auto r = http::make_client()->send({.url = "http://127.0.0.1:" + std::to_string(reporter.port) + "/metrics"});
    return r ? r->body : "";
  }

  test::TempDir tmp{"flurry-reporter-limits"};
  test::NatsServer nats{tmp.file("nats")};
  test::RedisServer redis{tmp.file("redis")};
  fakes::FakeForge forge;
  test::ServiceProcess reporter;
  std::unique_ptr<bus::Bus> bus;
  std::unique_ptr<state::StateStore> store;
};

// A status of job j1 of an eval of `sha` (one eval per commit: the bus
// tells statuses apart by eval, context, state and time).
msg::StatusEvent job_status(const std::string& forge, const std::string& owner, const std::string& sha, msg::StatusState st,
                            const std::string& job_state, const std::string& description, std::int64_t at_us) {
  const auto eval = "e-" + sha.substr(0, 8);
  auto s = pipeline::make_status(eval, {forge, owner, "hello", "", "", "main"}, sha, "flurry/checks.x86_64-linux.noisy", st, description,
                                 at_us, "http://127.0.0.1:1/evals/" + eval + "/jobs/j1");
  s.job_id = "j1";
  s.job_state = job_state;
  return s;
}

}  // namespace

// Issue 14: a failed build whose log is many lines of backticks (and bytes
// that are no UTF-8) once made an output.text GitHub refuses (422), and the
// run stayed queued for good. Through the real reporter against a fake
// GitHub that enforces GitHub's limits: queued, in progress from the
// build's start, then completed with the log's tail, every request taken.
TEST(Reporter, ALongLogOfFencesEndsItsCheckRunAndTheRunShowsTheBuildInProgress) {
  ReporterRig rig(/*checks=*/true);
  std::string log;
  for (int i = 0; i < 400; ++i) log += std::string(600, '`') + "\xff line " + std::to_string(i) + "\n";
  log += "error: builder for '/nix/store/x-noisy.drv' failed with exit code 1\n";
  ASSERT_TRUE(rig.store->append_log("j1", log, 10 << 20).has_value());
  const std::string sha(40, 'd');
  const std::int64_t t0 = 1'764'806'400'000'000;
  rig.publish(job_status("github", "octo", sha, msg::StatusState::kPending, "queued", "Queued", t0));
  ASSERT_TRUE(rig.handled(1));
  rig.publish(job_status("github", "octo", sha, msg::StatusState::kPending, "building", "Building", t0 + 5'000'000));
  ASSERT_TRUE(rig.handled(2));
  rig.publish(job_status("github", "octo", sha, msg::StatusState::kFailure, "failed", "Build failed: exit code 1", t0 + 65'000'001));
  ASSERT_TRUE(rig.handled(3)) << rig.reporter.log();

  std::vector<std::string> seen;
  for (const auto& r : rig.forge.check_run_history()) seen.push_back(r.status);
  EXPECT_EQ(seen, (std::vector<std::string>{"queued", "in_progress", "completed"})) << rig.reporter.log();
  auto runs = rig.forge.check_runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].conclusion, "failure");
  EXPECT_EQ(runs[0].started_at, "2025-12-04T00:00:05Z");
  EXPECT_EQ(runs[0].completed_at, "2025-12-04T00:01:05Z");
  EXPECT_LE(runs[0].text.size(), 65535u);
  EXPECT_NE(runs[0].text.find("failed with exit code 1\n```"), std::string::npos);
  for (const auto& call : rig.forge.calls()) EXPECT_EQ(call.status / 100, 2) << call.method << " " << call.path << ": " << call.status;
}

// Whatever a forge refuses (too long, invalid, an unknown context), the
// context still reaches its state: the status goes once more, reduced.
// What is refused even then is logged and counted, and nothing else waits.
TEST(Reporter, EveryKindOfRefusalStillBringsTheContextToItsState) {
  ReporterRig rig(/*checks=*/false);
  const std::string long_text = "Build failed: " + std::string(120, 'x');
  struct Case {
    std::string forge, owner, path, body;
    int status;
  };
  const std::vector<Case> cases = {
      {"github", "octo", "/repos/octo/hello/statuses/", R"({"message":"Validation Failed","errors":[{"field":"description","code":"too_long"}]})", 422},
      {"gitea", "org", "/api/v1/", R"({"message":"target_url is not a valid URL"})", 422},
      {"gitlab", "group", "/api/v4/", R"j({"message":{"name":["is too long (maximum is 255 characters)"]}})j", 400},
  };
  int handled = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    SCOPED_TRACE(c.forge);
    const std::string sha(40, static_cast<char>('a' + i));
    rig.forge.fail_next(1, c.status, c.body, {}, c.path);
    rig.publish(job_status(c.forge, c.owner, sha, msg::StatusState::kFailure, "failed", long_text, 1000));
    ASSERT_TRUE(rig.handled(++handled)) << rig.reporter.log() << rig.metrics();
    auto finals = rig.forge.final_statuses(sha, c.forge);
    ASSERT_EQ(finals.size(), 1u);
    const auto& posted = finals.begin()->second;
    EXPECT_EQ(posted.state, c.forge == "gitlab" ? "failed" : "failure");
    EXPECT_LE(posted.description.size(), forge::kReducedDescriptionBytes);
    EXPECT_TRUE(posted.target_url.empty());
  }
  // Refused twice (the forge will not take this context at all): recorded.
  const std::string sha(40, 'f');
  rig.forge.fail_next(2, 422, R"({"message":"Validation Failed","errors":[{"field":"context","code":"invalid"}]})", {},
                      "/repos/octo/hello/statuses/");
  rig.publish(job_status("github", "octo", sha, msg::StatusState::kFailure, "failed", long_text, 1000));
  ASSERT_TRUE(rig.handled(++handled));
  EXPECT_TRUE(rig.forge.final_statuses(sha, "github").empty());
  const auto metrics = rig.metrics();
  EXPECT_NE(metrics.find(R"(flurry_status_refusals_total{forge="github",reduced_taken="false",status="422"} 1)"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find(R"(flurry_status_refusals_total{forge="gitlab",reduced_taken="true",status="400"} 1)"), std::string::npos)
      << metrics;
  const auto log = rig.reporter.log();
  EXPECT_NE(log.find("\"event\":\"status.refused\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"event\":\"status.reduced\""), std::string::npos) << log;
  // The reporter goes on: the next status of that context is posted.
  rig.publish(job_status("github", "octo", sha, msg::StatusState::kSuccess, "succeeded", "Build succeeded", 2000));
  ASSERT_TRUE(rig.handled(++handled));
  EXPECT_EQ(rig.forge.final_statuses(sha, "github").begin()->second.state, "success");
}
