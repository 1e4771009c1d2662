// Every service binary: health endpoint, Prometheus metrics that promtool
// accepts, refusal of bad configuration, and a clean exit on SIGTERM.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "flurry/core/process.hpp"
#include "flurry/http/http.hpp"
#include "flurry/stack/stack.hpp"
#include "local_stack.hpp"
#include "flurry/state/redis_store.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using namespace std::chrono_literals;

namespace {

std::string binary(const std::string& name) {
  return std::string(FLURRY_BINARY_DIR) + "/services/" + name + "/flurry-" + name;
}

}  // namespace

TEST(Services, EveryServiceAnswersHealthAndMetricsAndStopsCleanlyOnSigterm) {
  test::TempDir tmp("flurry-services");
  stack::Stack stack(test::local_stack_options(tmp));
  auto started = stack.start();
  ASSERT_TRUE(started.has_value()) << started.error().message;
  auto client = http::make_client();
  PosixProcessRunner runner;
  for (const auto& name : stack::service_names()) {
    SCOPED_TRACE(name);
    auto health = client->send({.url = stack.service_url(name) + "/healthz"});
    ASSERT_TRUE(health.has_value());
    EXPECT_EQ(health->status, 200) << health->body;
    EXPECT_NE(health->body.find("\"nats\":true"), std::string::npos) << health->body;
    auto metrics = client->send({.url = stack.service_url(name) + "/metrics"});
    ASSERT_TRUE(metrics.has_value());
    EXPECT_EQ(metrics->status, 200);
    auto check = runner.run({.argv = {"promtool", "check", "metrics"}, .stdin_data = metrics->body});
    ASSERT_TRUE(check.has_value()) << "promtool (Debian package prometheus) is required";
    EXPECT_EQ(check->exit_code, 0) << check->out << check->err;
  }
  // Ingest counts webhooks in its metrics once one arrived.
  auto ping = client->send({.method = "POST", .url = stack.webhook_url(), .headers = {{"X-GitHub-Event", "ping"}}, .body = "{}"});
  ASSERT_TRUE(ping.has_value());
  EXPECT_EQ(ping->status, 401);
  // Bodies over the limit are refused before anything else happens.
  auto huge = client->send({.method = "POST", .url = stack.webhook_url(), .headers = {{"X-GitHub-Event", "push"}},
                            .body = std::string(26 * 1024 * 1024, 'x'), .timeout = 30s});
  ASSERT_TRUE(huge.has_value()) << huge.error().message;
  EXPECT_EQ(huge->status, 413);
  auto metrics = client->send({.url = stack.service_url("webhook-ingest") + "/metrics"});
  EXPECT_NE(metrics->body.find("flurry_webhooks_total{event=\"ping\",forge=\"github\",result=\"unauthorized\"} 1"), std::string::npos)
      << metrics->body;
  // The builder exports its system's queue depth once it has read it from
  // JetStream (every second here; the gauges do not exist before), and its
  // free slots.
  std::string builder_metrics;
  for (int i = 0; i < 100; ++i) {
    auto m = client->send({.url = stack.service_url("builder") + "/metrics"});
    ASSERT_TRUE(m.has_value());
    builder_metrics = m->body;
    if (builder_metrics.find("flurry_build_queue_waiting{system=\"x86_64-linux\"} 0") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(builder_metrics.find("flurry_build_queue_waiting{system=\"x86_64-linux\"} 0"), std::string::npos) << builder_metrics;
  EXPECT_NE(builder_metrics.find("flurry_build_queue_in_flight{system=\"x86_64-linux\"} 0"), std::string::npos) << builder_metrics;
  EXPECT_NE(builder_metrics.find("flurry_builder_free_slots{system=\"x86_64-linux\"} 2"), std::string::npos) << builder_metrics;
  // The builder announced itself: evaluators see which systems are served.
  auto store = state::connect_redis({.host = "127.0.0.1", .port = stack.redis_port()});
  ASSERT_TRUE(store.has_value()) << store.error().message;
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto builders = (*store)->list_builders(now_ms);
  ASSERT_TRUE(builders.has_value()) << builders.error().message;
  ASSERT_EQ(builders->size(), 1u);
  EXPECT_EQ(builders->front().systems, std::vector<std::string>{"x86_64-linux"});
  EXPECT_EQ(builders->front().slots, 2);
  auto unclean = stack.stop();
  EXPECT_TRUE(unclean.empty()) << unclean.front();
}

TEST(Services, HealthIs503WhenRedisIsDown) {
  test::TempDir tmp("flurry-services");
  stack::Stack stack(test::local_stack_options(tmp));
  ASSERT_TRUE(stack.start().has_value());
  // Stop only Redis: the builder must report it.
  PosixProcessRunner runner;
  auto r = runner.run({.argv = {"redis-cli", "-p", std::to_string(stack.redis_port()), "shutdown", "nosave"}});
  ASSERT_TRUE(r.has_value());
  auto client = http::make_client();
  int status = 0;
  std::string body;
  for (int i = 0; i < 50 && status != 503; ++i) {
    auto h = client->send({.url = stack.service_url("builder") + "/healthz"});
    status = h ? h->status : 0;
    body = h ? h->body : "";
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(status, 503);
  EXPECT_NE(body.find("\"redis\":false"), std::string::npos) << body;
  stack.stop();
}

TEST(Services, BadConfigurationIsRefusedWithExitCode2) {
  test::TempDir tmp("flurry-services");
  test::write_file(tmp.file("bad.toml"), "[builder\nlisten = 1\n");
  test::write_file(tmp.file("nolisten.toml"), "[nats]\nurl = \"nats://127.0.0.1:1\"\n");
  PosixProcessRunner runner;
  for (const auto& name : stack::service_names()) {
    SCOPED_TRACE(name);
    auto bad = runner.run({.argv = {binary(name), "--config", tmp.file("bad.toml")}, .timeout = 20s});
    ASSERT_TRUE(bad.has_value());
    EXPECT_EQ(bad->exit_code, 2) << bad->err;
    EXPECT_NE(bad->err.find("config"), std::string::npos) << bad->err;
    auto missing = runner.run({.argv = {binary(name), "--config", tmp.file("nolisten.toml")}, .timeout = 20s});
    ASSERT_TRUE(missing.has_value());
    EXPECT_EQ(missing->exit_code, 2) << missing->err;
    EXPECT_NE(missing->err.find(name + ".listen"), std::string::npos) << missing->err;
  }
  // Ingest refuses to start without its webhook secret.
  test::write_file(tmp.file("nosecret.toml"), "[nats]\nurl = \"nats://127.0.0.1:1\"\n[webhook-ingest]\nlisten = \"127.0.0.1:1\"\n");
  auto r = runner.run({.argv = {binary("webhook-ingest"), "--config", tmp.file("nosecret.toml")}, .timeout = 20s});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_NE(r->err.find("secret_file"), std::string::npos) << r->err;
}
