// The JetStream adapter against a real nats-server.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <mutex>
#include <set>
#include <thread>

#include "flurry/bus/nats_bus.hpp"
#include "flurry/core/config.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/messages/subjects.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using namespace flurry::bus;
using namespace std::chrono_literals;

namespace {

class NatsBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    nats = std::make_unique<test::NatsServer>(tmp.file("nats"));
    bus = connect();
  }
  std::unique_ptr<Bus> connect() {
    auto b = connect_nats({.url = nats->url()});
    EXPECT_TRUE(b.has_value()) << b.error().message;
    return b ? std::move(*b) : nullptr;
  }
  static ConsumerSpec spec(const std::string& durable, const std::string& filter) {
    return {.stream = std::string(subjects::kBuildsStream), .durable = durable, .filter_subject = filter,
            .max_deliver = 3, .ack_wait = 2000ms, .concurrency = 1};
  }
  // Consumes on a background thread until `until` says stop or 20 s pass.
  void consume_until(Bus& b, const ConsumerSpec& s, Handler h, std::function<bool()> until) {
    std::atomic<bool> stop{false};
    std::thread t([&] { ASSERT_TRUE(b.consume(s, h, stop).has_value()); });
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!until() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    stop = true;
    t.join();
  }

  test::TempDir tmp{"flurry-bus"};
  std::unique_ptr<test::NatsServer> nats;
  std::unique_ptr<Bus> bus;
};

}  // namespace

TEST_F(NatsBusTest, PublishedMessageIsDeliveredOnceAndDuplicatesAreDropped) {
  ASSERT_TRUE(bus->publish({"flurry.build.x86_64-linux", "one", "id-1"}).has_value());
  ASSERT_TRUE(bus->publish({"flurry.build.x86_64-linux", "one again", "id-1"}).has_value());
  ASSERT_TRUE(bus->publish({"flurry.build.x86_64-linux", "two", "id-2"}).has_value());
  std::mutex mu;
  std::vector<std::string> got;
  consume_until(*bus, spec("builder-x86_64-linux", "flurry.build.x86_64-linux"),
                [&](const Delivery& d) {
                  std::lock_guard lock(mu);
                  got.push_back(d.data);
                  EXPECT_EQ(d.subject, "flurry.build.x86_64-linux");
                  EXPECT_EQ(d.num_delivered, 1u);
                  return Disposition::ack();
                },
                [&] {
                  std::lock_guard lock(mu);
                  return got.size() >= 2;
                });
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(got, (std::vector<std::string>{"one", "two"}));
}

TEST_F(NatsBusTest, NakIsRedeliveredAndGivingUpDeadLettersWithTheReason) {
  ASSERT_TRUE(bus->publish({"flurry.build.x86_64-linux", "poison?", "p1"}).has_value());
  std::atomic<int> deliveries{0};
  consume_until(*bus, spec("builder-x86_64-linux", "flurry.build.x86_64-linux"),
                [&](const Delivery& d) {
                  EXPECT_EQ(d.num_delivered, static_cast<std::uint64_t>(deliveries + 1));
                  ++deliveries;
                  return Disposition::nak("still broken", 10ms);
                },
                [&] { return deliveries >= 3; });
  EXPECT_EQ(deliveries.load(), 3);
  // The dead letter carries the reason and the original data.
  std::vector<msg::DeadLetter> dead;
  consume_until(*bus, {.stream = std::string(subjects::kDeadStream), .durable = "dead-reader", .filter_subject = "flurry.dead.>"},
                [&](const Delivery& d) {
                  auto dl = msg::decode_dead_letter(d.data);
                  EXPECT_TRUE(dl.has_value());
                  if (dl) dead.push_back(*dl);
                  return Disposition::ack();
                },
                [&] { return !dead.empty(); });
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].consumer, "builder-x86_64-linux");
  EXPECT_EQ(dead[0].data, "poison?");
  EXPECT_EQ(dead[0].deliveries, 3u);
  EXPECT_NE(dead[0].reason.find("still broken"), std::string::npos);
}

TEST_F(NatsBusTest, TwoInstancesShareOneDurableWithoutDuplicates) {
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(bus->publish({"flurry.build.x86_64-linux", std::to_string(i), "m" + std::to_string(i)}).has_value());
  }
  auto other = connect();
  std::mutex mu;
  std::multiset<std::string> got;
  std::set<int> instances;
  auto handler = [&](int who) {
    return [&, who](const Delivery& d) {
      std::this_thread::sleep_for(20ms);
      std::lock_guard lock(mu);
      got.insert(d.data);
      instances.insert(who);
      return Disposition::ack();
    };
  };
  std::atomic<bool> stop{false};
  auto s = spec("builder-x86_64-linux", "flurry.build.x86_64-linux");
  std::thread a([&] { (void)bus->consume(s, handler(1), stop); });
  std::thread b([&] { (void)other->consume(s, handler(2), stop); });
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu);
      if (got.size() >= 20) break;
    }
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(300ms);
  stop = true;
  a.join();
  b.join();
  EXPECT_EQ(got.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(got.count(std::to_string(i)), 1u) << i;
  EXPECT_EQ(instances.size(), 2u) << "both instances should have taken work";
}

TEST_F(NatsBusTest, LongHandlerIsNotRedeliveredWhileItHeartbeats) {
  ASSERT_TRUE(bus->publish({"flurry.build.x86_64-linux", "slow", "s1"}).has_value());
  std::atomic<int> deliveries{0};
  std::atomic<bool> finished{false};
  auto s = spec("builder-x86_64-linux", "flurry.build.x86_64-linux");
  s.ack_wait = 1000ms;
  s.concurrency = 2;
  consume_until(*bus, s,
                [&](const Delivery&) {
                  ++deliveries;
                  std::this_thread::sleep_for(3s);
                  finished = true;
                  return Disposition::ack();
                },
                [&] { return finished.load(); });
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(deliveries.load(), 1);
}

TEST_F(NatsBusTest, MessagesSurviveAServerRestart) {
  ASSERT_TRUE(bus->publish({"flurry.build.x86_64-linux", "kept", "k1"}).has_value());
  bus.reset();
  nats->restart();
  bus = connect();
  std::atomic<bool> got{false};
  consume_until(*bus, spec("builder-x86_64-linux", "flurry.build.x86_64-linux"),
                [&](const Delivery& d) {
                  got = d.data == "kept";
                  return Disposition::ack();
                },
                [&] { return got.load(); });
  EXPECT_TRUE(got.load());
}

TEST_F(NatsBusTest, PublishesWithIdsAcrossAServerKillEachSucceedAndAreStoredOnce) {
  // The publish in flight when the server dies never gets its ack: it
  // must be sent again (its id makes that safe), not failed, or a webhook
  // already being answered would get a 503 for an outage of a moment.
  auto b = connect_nats({.url = nats->url(), .publish_timeout = 8000ms});
  ASSERT_TRUE(b.has_value()) << b.error().message;
  std::atomic<bool> stop{false};
  std::atomic<int> published{0}, failed{0};
  std::string first_error;
  std::thread publisher([&] {
    for (int i = 0; !stop; ++i) {
      auto r = (*b)->publish({"flurry.build.x86_64-linux", "m" + std::to_string(i), "id-" + std::to_string(i)});
      if (r) {
        ++published;
      } else if (failed++ == 0) {
        first_error = r.error().message;
      }
    }
  });
  std::this_thread::sleep_for(300ms);
  nats->kill();
  std::this_thread::sleep_for(300ms);
  nats->restart();
  std::this_thread::sleep_for(1500ms);
  stop = true;
  publisher.join();
  EXPECT_EQ(failed.load(), 0) << first_error;
  ASSERT_GT(published.load(), 0);

  std::set<std::string> seen;
  int deliveries = 0;
  consume_until(**b, spec("builder-x86_64-linux", "flurry.build.x86_64-linux"),
                [&](const Delivery& d) {
                  ++deliveries;
                  seen.insert(d.data);
                  return Disposition::ack();
                },
                [&] { return static_cast<int>(seen.size()) >= published.load(); });
  EXPECT_EQ(static_cast<int>(seen.size()), published.load()) << "every acknowledged publish is stored";
  EXPECT_EQ(deliveries, published.load()) << "and stored once";
}

TEST_F(NatsBusTest, PublishWithoutServerIsATransientError) {
  nats->stop();
  auto r = bus->publish({"flurry.build.x86_64-linux", "lost?", "x"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kTransient);
  EXPECT_FALSE(bus->healthy());
}

TEST_F(NatsBusTest, QueueDepthCountsWaitingAndInFlightRequests) {
  auto s = spec("builder-aarch64-linux", "flurry.build.aarch64-linux");
  auto empty = bus->queue_depth(s);
  ASSERT_TRUE(empty.has_value()) << empty.error().message;
  EXPECT_EQ(empty->waiting, 0u);
  EXPECT_EQ(empty->in_flight, 0u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(bus->publish({"flurry.build.aarch64-linux", "q" + std::to_string(i), "q" + std::to_string(i)}).has_value());
  }
  auto three = bus->queue_depth(s);
  ASSERT_TRUE(three.has_value());
  EXPECT_EQ(three->waiting, 3u);
  // One taken and held by a handler: in flight, not waiting.
  std::atomic<bool> holding{false}, release{false};
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    auto consumed = bus->consume(s,
                 [&](const Delivery&) {
                   holding = true;
                   while (!release) std::this_thread::sleep_for(10ms);
                   return Disposition::ack();
                 },
                 stop);
    EXPECT_TRUE(consumed.has_value());
  });
  for (int i = 0; i < 500 && !holding; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(holding.load());
  auto held = bus->queue_depth(s);
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->waiting, 2u);
  EXPECT_EQ(held->in_flight, 1u);
  release = true;
  for (int i = 0; i < 500; ++i) {
    auto d = bus->queue_depth(s);
    if (d && d->waiting == 0 && d->in_flight == 0) break;
    std::this_thread::sleep_for(10ms);
  }
  stop = true;
  consumer.join();
  auto done = bus->queue_depth(s);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->waiting, 0u);
  EXPECT_EQ(done->in_flight, 0u);
}

TEST_F(NatsBusTest, StoredSubjectsListWhatAWorkQueueStillHolds) {
  const std::string plain = "flurry.build.x86_64-linux", kvm = "flurry.build.x86_64-linux.kvm";
  ASSERT_TRUE(bus->publish({plain, "p", "p"}).has_value());
  ASSERT_TRUE(bus->publish({kvm, "k", "k"}).has_value());
  ASSERT_TRUE(bus->publish({"flurry.build.aarch64-linux.kvm", "a", "a"}).has_value());
  auto stored = bus->stored_subjects(std::string(subjects::kBuildsStream), plain + ".>");
  ASSERT_TRUE(stored.has_value()) << stored.error().message;
  EXPECT_EQ(*stored, std::vector<std::string>{kvm});
  std::atomic<int> handled{0};
  consume_until(*bus, spec("builder-x86_64-linux-kvm", kvm), [&](const Delivery&) { ++handled; return Disposition::ack(); },
                [&] { return handled == 1; });
  // Acknowledged: gone from the work queue, so no longer listed.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!bus->stored_subjects(std::string(subjects::kBuildsStream), plain + ".>")->empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(bus->stored_subjects(std::string(subjects::kBuildsStream), plain + ".>")->empty());
}

// A builder's pool: the plain queue and, added while it runs, a feature
// set's queue, drained by no more handlers at once than its concurrency.
TEST_F(NatsBusTest, APoolDrainsEveryListedConsumerWithinItsConcurrency) {
  const std::string plain = "flurry.build.x86_64-linux", kvm = "flurry.build.x86_64-linux.kvm";
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(bus->publish({plain, "p" + std::to_string(i), "p" + std::to_string(i)}).has_value());
    ASSERT_TRUE(bus->publish({kvm, "k" + std::to_string(i), "k" + std::to_string(i)}).has_value());
  }
  std::mutex mu;
  std::vector<ConsumerSpec> specs{spec("builder-x86_64-linux", plain)};
  std::multiset<std::string> got;
  std::set<std::string> consumers;
  std::atomic<int> running{0}, most{0};
  std::atomic<bool> stop{false};
  std::thread t([&] {
    auto source = [&] {
      std::lock_guard lock(mu);
      return specs;
    };
    ASSERT_TRUE(bus->consume_pool(source, 2,
                                  [&](const Delivery& d) {
                                    int now = ++running;
                                    for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {
                                    }
                                    std::this_thread::sleep_for(50ms);
                                    {
                                      std::lock_guard lock(mu);
                                      got.insert(d.data);
                                      consumers.insert(d.consumer);
                                    }
                                    --running;
                                    return Disposition::ack();
                                  },
                                  stop)
                    .has_value());
  });
  auto count = [&] {
    std::lock_guard lock(mu);
    return got.size();
  };
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (count() < 6 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(count(), 6u);  // only the plain queue is listed so far
  {
    std::lock_guard lock(mu);
    specs.push_back(spec("builder-x86_64-linux-kvm", kvm));
  }
  while (count() < 12 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  stop = true;
  t.join();
  EXPECT_EQ(got.size(), 12u);
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), 12u);  // each once
  EXPECT_EQ(consumers, (std::set<std::string>{"builder-x86_64-linux", "builder-x86_64-linux-kvm"}));
  EXPECT_LE(most.load(), 2);
  EXPECT_EQ(most.load(), 2);  // and it did use both
}

// What the adapter logs about its connection: the URL without credentials,
// and no "lost connection" line when it closes on purpose.
TEST_F(NatsBusTest, ConnectionLogLinesHideCredentialsAndACleanCloseIsNotALoss) {
  const std::string path = tmp.file("stderr.log");
  fflush(stderr);
  int saved = dup(2);
  int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(file, 0);
  dup2(file, 2);
  {
    auto b = connect_nats({.url = "nats://flurry:s3cret-token@127.0.0.1:" + std::to_string(nats->port())});
    EXPECT_TRUE(b.has_value()) << b.error().message;
  }
  std::this_thread::sleep_for(300ms);  // callbacks come from libnats' own threads
  fflush(stderr);
  dup2(saved, 2);
  ::close(saved);
  ::close(file);
  auto logged = read_file(path).value_or("");
  EXPECT_NE(logged.find("bus.connected"), std::string::npos) << logged;
  EXPECT_NE(logged.find("nats://***@127.0.0.1"), std::string::npos) << logged;
  EXPECT_EQ(logged.find("s3cret-token"), std::string::npos) << logged;
  EXPECT_EQ(logged.find("lost connection"), std::string::npos) << logged;
}
