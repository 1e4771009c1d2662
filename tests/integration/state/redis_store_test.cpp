// The Redis adapter against a real redis-server: the whole StateStore
// contract, plus restarts and concurrency.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "../../../libs/state/tests/state_contract.hpp"
#include "flurry/state/redis_store.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using namespace flurry::state;
using msg::JobState;

namespace {

// One server for the whole binary; each store gets a fresh key prefix.
struct Shared {
  test::TempDir tmp{"flurry-redis"};
  test::RedisServer redis{tmp.file("redis")};
  int next = 0;
};
Shared& shared() {
  static Shared s;
  return s;
}

std::unique_ptr<StateStore> make_store(const std::string& prefix) {
  auto s = connect_redis({.port = shared().redis.port(), .prefix = prefix});
  EXPECT_TRUE(s.has_value()) << s.error().message;
  return s ? std::move(*s) : nullptr;
}

struct RedisFactory {
  static std::unique_ptr<StateStore> make() { return make_store("t" + std::to_string(shared().next++)); }
};

JobSpec job(const std::string& id, std::vector<std::string> deps = {}) {
  return {id, "checks.x86_64-linux." + id, "/nix/store/" + id + ".drv", "x86_64-linux", {{"out", "/nix/store/" + id}},
          JobState::kQueued, "", std::move(deps)};
}

EvalRecord eval(const std::string& id) {
  EvalRecord e;
  e.id = id;
  e.repo = {"github", "o", "r", "file:///x", "", "main"};
  e.rev = std::string(40, 'b');
  return e;
}

}  // namespace

namespace flurry::state::contract {
INSTANTIATE_TYPED_TEST_SUITE_P(Redis, StateContract, RedisFactory);
}

TEST(RedisStore, ConcurrentFinishesKeepExactCountersAndEndTheEvalOnce) {
  auto store = make_store("concurrent");
  ASSERT_TRUE(*store->create_eval(eval("big")));
  // 500 chains of 4: job c<i>-<k> depends on c<i>-<k-1>.
  std::vector<JobSpec> jobs;
  for (int i = 0; i < 500; ++i) {
    for (int k = 0; k < 4; ++k) {
      std::string id = "c" + std::to_string(i) + "-" + std::to_string(k);
      jobs.push_back(job(id, k == 0 ? std::vector<std::string>{} : std::vector<std::string>{"c" + std::to_string(i) + "-" + std::to_string(k - 1)}));
    }
  }
  auto t = store->add_jobs("big", jobs, 1);
  ASSERT_TRUE(t.has_value()) << t.error().message;
  ASSERT_EQ(t->ready.size(), 500u);
  // 8 threads build whatever is ready; every 7th chain head fails.
  std::mutex mu;
  std::vector<std::string> ready = t->ready;
  std::atomic<int> finished_evals{0};
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 8; ++w) {
    threads.emplace_back([&] {
      auto local = make_store("concurrent");
      while (true) {
        std::string id;
        {
          std::lock_guard lock(mu);
          if (ready.empty()) {
            if (done.load() >= 8 * 0 + 1 && ready.empty()) {
            }
          }
          if (!ready.empty()) {
            id = ready.back();
            ready.pop_back();
          }
        }
        if (id.empty()) {
          auto e = local->get_eval("big");
          if (e && e->has_value() && ((*e)->state == EvalState::kSucceeded || (*e)->state == EvalState::kFailed)) break;
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
          continue;
        }
        ASSERT_EQ(*local->start_job(id, 2), JobState::kBuilding);
        bool fails = id.size() > 2 && id.substr(id.size() - 2) == "-0" && std::stoi(id.substr(1)) % 7 == 0;
        auto tr = local->finish_job(id, fails ? JobState::kFailed : JobState::kSucceeded, "", 3);
        ASSERT_TRUE(tr.has_value()) << tr.error().message;
        if (tr->eval_finished) ++finished_evals;
        std::lock_guard lock(mu);
        ready.insert(ready.end(), tr->ready.begin(), tr->ready.end());
      }
      ++done;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(finished_evals.load(), 1);
  auto e = **store->get_eval("big");
  EXPECT_EQ(e.state, EvalState::kFailed);
  EXPECT_EQ(e.jobs_pending, 0);
  EXPECT_EQ(e.jobs_total, 2000);
  // Chains 0, 7, 14, ... (72 of them) fail at the head: 4 failed jobs each.
  EXPECT_EQ(e.jobs_failed, 72 * 4);
  auto all = *store->list_jobs("big");
  ASSERT_EQ(all.size(), 2000u);
  int dep_failed = 0;
  for (const auto& j : all) {
    EXPECT_TRUE(msg::is_terminal(j.state)) << j.id;
    dep_failed += j.state == JobState::kDependencyFailed;
  }
  EXPECT_EQ(dep_failed, 72 * 3);
}

TEST(RedisStore, TenThousandJobsInOneEval) {
  auto store = make_store("wide");
  ASSERT_TRUE(*store->create_eval(eval("wide")));
  std::vector<JobSpec> jobs;
  for (int i = 0; i < 10000; ++i) jobs.push_back(job("w" + std::to_string(i), i > 0 ? std::vector<std::string>{"w0"} : std::vector<std::string>{}));
  auto t = store->add_jobs("wide", jobs, 1);
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ(t->ready, std::vector<std::string>{"w0"});
  auto done = store->finish_job("w0", JobState::kSucceeded, "", 2);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->ready.size(), 9999u);
}

TEST(RedisStore, KeepsWorkingAcrossARedisRestart) {
  auto store = make_store("restart");
  ASSERT_TRUE(*store->create_eval(eval("r1")));
  ASSERT_TRUE(store->add_jobs("r1", {job("a")}, 1).has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // appendfsync everysec
  shared().redis.stop();
  auto during = store->get_job("a");
  ASSERT_FALSE(during.has_value());
  EXPECT_EQ(during.error().code, ErrorCode::kTransient);
  EXPECT_FALSE(store->healthy());
  shared().redis.restart();
  // While Redis loads its AOF, calls fail as transient; then they work.
  auto after = store->get_job("a");
  for (int i = 0; i < 100 && !after; ++i) {
    EXPECT_EQ(after.error().code, ErrorCode::kTransient);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    after = store->get_job("a");
  }
  ASSERT_TRUE(after.has_value()) << after.error().message;
  ASSERT_TRUE(after->has_value());
  EXPECT_EQ((*after)->state, JobState::kQueued);
  EXPECT_TRUE(store->finish_job("a", JobState::kSucceeded, "", 2)->eval_finished);
}
