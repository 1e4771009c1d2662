// Poison messages on every consumer of the running stack: bytes that are
// not a message, truncated JSON, the wrong shape, an unknown version, a
// change with a hostile revision. Each ends in FLURRY_DEAD with its
// consumer, reason and original bytes after one delivery (poison is never
// retried), is counted in the service's flurry_dead_letters_total, and the
// service goes on: still healthy, and still doing real work afterwards.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "flurry/bus/nats_bus.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/http/http.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/messages/subjects.hpp"
#include "flurry/stack/stack.hpp"
#include "local_stack.hpp"
#include "flurry/state/ids.hpp"
#include "flurry/state/redis_store.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using namespace std::chrono_literals;

namespace {

// One subject per service, and every durable consumer reading it: a poison
// message published there reaches each of them and each dead-letters it.
struct Target {
  std::string service;
  std::string subject;
  std::vector<std::pair<std::string, std::string>> consumers;  // service, durable name
};

std::vector<Target> targets() {
  return {
      {"evaluator", "flurry.change.github", {{"evaluator", "evaluator"}}},
      {"builder", "flurry.build.x86_64-linux", {{"builder", subjects::durable("builder-x86_64-linux")}}},
      {"uploader", std::string(subjects::kJobFinished), {{"uploader", "uploader"}}},
      {"effects-runner",
       std::string(subjects::kEvalFinished),
       {{"effects-runner", "effects-runner"}, {"reporter", "reporter-eval-ends"}}},
      {"reporter", "flurry.status.github", {{"reporter", "reporter"}}},
  };
}

std::vector<std::string> poisons() {
  return {
      "not json at all",
      R"({"version":1,"eval_id":"e)",  // truncated
      "[1,2,3]",
      R"({"no":"version"})",
      R"({"version":99,"eval_id":"x"})",
      std::string("\xff\xfe\x00\x01", 4),
  };
}

// The dead letters stored so far, read by a consumer of our own.
std::vector<msg::DeadLetter> read_dead(bus::Bus& bus, std::size_t want, std::chrono::seconds timeout) {
  std::mutex mu;
  std::vector<msg::DeadLetter> got;
  std::atomic<bool> stop{false};
  std::thread t([&] {
    (void)bus.consume({.stream = std::string(subjects::kDeadStream), .durable = "poison-test-reader", .filter_subject = "flurry.dead.>"},
                      [&](const bus::Delivery& d) {
                        auto dl = msg::decode_dead_letter(d.data);
                        EXPECT_TRUE(dl.has_value()) << d.data;
                        std::lock_guard lock(mu);
                        if (dl) got.push_back(*dl);
                        return bus::Disposition::ack();
                      },
                      stop);
  });
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu);
      if (got.size() >= want) break;
    }
    std::this_thread::sleep_for(50ms);
  }
  stop = true;
  t.join();
  return got;
}

}  // namespace

TEST(Poison, EveryConsumerDeadLettersPoisonWithItsReasonAndGoesOn) {
  test::TempDir tmp("flurry-poison");
  stack::Stack stack(test::local_stack_options(tmp));
  auto started = stack.start();
  ASSERT_TRUE(started.has_value()) << started.error().message;
  auto bus = bus::connect_nats({.url = stack.nats_url(), .name = "poison-test"});
  ASSERT_TRUE(bus.has_value()) << bus.error().message;

  const auto payloads = poisons();
  std::size_t sent = 0;
  for (const auto& t : targets()) {
    for (std::size_t i = 0; i < payloads.size(); ++i) {
      ASSERT_TRUE((*bus)->publish({t.subject, payloads[i], "poison-" + t.service + "-" + std::to_string(i)}).has_value());
      ++sent;
    }
  }
  // A change whose revision is a shell string and a kind nobody knows.
  const std::string hostile_rev = R"J({"version":1,"id":"h1","kind":"push","repo":{"forge":"github","owner":"o","name":"r","clone_url":"https://github.com/o/r.git"},"ref":"refs/heads/main","rev":"$(touch /tmp/pwned)"})J";
  ASSERT_TRUE((*bus)->publish({"flurry.change.github", hostile_rev, "poison-hostile-rev"}).has_value());
  ++sent;

  std::size_t want_dead = 0;
  for (const auto& t : targets()) want_dead += t.consumers.size() * payloads.size() + (t.service == "evaluator" ? 1 : 0);
  auto dead = read_dead(**bus, want_dead, 60s);
  ASSERT_EQ(dead.size(), want_dead) << "every poison message is dead-lettered exactly once by each consumer it reaches";
  std::map<std::string, int> per_consumer;
  for (const auto& d : dead) {
    SCOPED_TRACE(d.consumer + " " + d.subject);
    per_consumer[d.consumer] += 1;
    EXPECT_EQ(d.deliveries, 1u) << "poison is not retried: " << d.reason;
    EXPECT_FALSE(d.reason.empty());
    const bool known = std::find(payloads.begin(), payloads.end(), d.data) != payloads.end() || d.data == hostile_rev;
    EXPECT_TRUE(known) << "the dead letter keeps the original bytes";
  }
  for (const auto& t : targets()) {
    for (const auto& [service, consumer] : t.consumers) {
      EXPECT_EQ(per_consumer[consumer], static_cast<int>(payloads.size()) + (t.service == "evaluator" ? 1 : 0)) << consumer;
    }
  }
  EXPECT_FALSE(std::filesystem::exists("/tmp/pwned"));

  // Each service counted them, is alive and healthy.
  EXPECT_TRUE(stack.dead_children().empty());
  auto client = http::make_client();
  for (const auto& t : targets()) {
    SCOPED_TRACE(t.service);
    auto health = client->send({.url = stack.service_url(t.service) + "/healthz"});
    ASSERT_TRUE(health.has_value());
    EXPECT_EQ(health->status, 200) << health->body;
    for (const auto& [service, consumer] : t.consumers) {
      auto metrics = client->send({.url = stack.service_url(service) + "/metrics"});
      ASSERT_TRUE(metrics.has_value());
      const std::string want = "flurry_dead_letters_total{consumer=\"" + consumer + "\"} " +
                               std::to_string(payloads.size() + (t.service == "evaluator" ? 1 : 0));
      EXPECT_NE(metrics->body.find(want), std::string::npos) << want << "\n" << metrics->body;
    }
  }

  // And still does real work: a signed push after the poison is evaluated
  // and built, and its eval succeeds.
  const std::string repo = tmp.file("repo");
  const std::string nonce = std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  ASSERT_TRUE(std::filesystem::create_directories(tmp.file("src")));
  test::write_file(tmp.file("src") + "/flake.nix", R"({ outputs = { self }: { checks.x86_64-linux.ok = derivation {
    name = "ok"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo )" + nonce + R"( > $out" ]; }; }; })");
  auto rev = stack::commit_directory(tmp.file("src"), repo, "after poison");
  ASSERT_TRUE(rev.has_value()) << rev.error().message;
  auto body = stack::github_push_payload("octo", "poison", "file://" + repo, "main", "main", std::string(40, '0'), *rev);
  auto resp = client->send({.method = "POST",
                            .url = stack.webhook_url(),
                            .headers = {{"Content-Type", "application/json"},
                                        {"X-GitHub-Event", "push"},
                                        {"X-GitHub-Delivery", "after-poison"},
                                        {"X-Hub-Signature-256", "sha256=" + crypto::hmac_sha256_hex(stack.webhook_secret(), body)}},
                            .body = body});
  ASSERT_TRUE(resp.has_value());
  ASSERT_EQ(resp->status / 100, 2) << resp->body;
  auto store = state::connect_redis({.host = "127.0.0.1", .port = stack.redis_port()});
  ASSERT_TRUE(store.has_value()) << store.error().message;
  const auto eval_id = state::eval_id_for_change("github:after-poison");
  std::optional<state::EvalState> end;
  std::string why;
  const auto deadline = std::chrono::steady_clock::now() + 180s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto e = (*store)->get_eval(eval_id);
    if (e && e->has_value() && (**e).state != state::EvalState::kEvaluating && (**e).state != state::EvalState::kBuilding) {
      end = (**e).state;
      why = (**e).error;
      break;
    }
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(end.has_value()) << "the eval after the poison did not end; see " << stack.log_path("evaluator");
  EXPECT_EQ(*end, state::EvalState::kSucceeded) << why;
  EXPECT_TRUE(stack.stop().empty()) << "every service stops cleanly on SIGTERM after the poison";
}
