// The reporter as a GitHub App, end to end: the real flurry-reporter
// binary, real nats-server and redis-server, and the fake GitHub acting as
// GitHub does for an app (JWT-authenticated installation lookup and access
// token, statuses only with that token).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "flurry/bus/nats_bus.hpp"
#include "flurry/core/child.hpp"
#include "flurry/fakes/fake_forge.hpp"
#include "flurry/pipeline/publish.hpp"
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
