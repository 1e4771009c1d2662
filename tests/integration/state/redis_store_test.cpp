// The Redis adapter against a real redis-server: the whole StateStore
// contract, then what only a real server shows: restarts, a frozen or
// killed server, lost replies, passwords, and many threads at once.
#include <gtest/gtest.h>
#include <hiredis.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "../../../libs/state/tests/state_contract.hpp"
#include "flurry/state/redis_store.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using namespace flurry::state;
using msg::JobState;

namespace {

// One server per test binary run (ctest runs each test in its own process);
// each store gets a fresh key prefix.
struct Shared {
  test::TempDir tmp{"flurry-redis"};
  test::RedisServer redis{tmp.file("redis")};
  std::atomic<int> next{0};
};
Shared& shared() {
  static Shared s;
  return s;
}

std::string fresh_prefix(const std::string& name) { return "t" + std::to_string(shared().next++) + "-" + name; }

RedisOptions options(const std::string& prefix) {
  RedisOptions o;
  o.port = shared().redis.port();
  o.prefix = prefix;
  return o;
}

std::unique_ptr<StateStore> make_store(const std::string& prefix) {
  auto s = connect_redis(options(prefix));
  EXPECT_TRUE(s.has_value()) << s.error().message;
  return s ? std::move(*s) : nullptr;
}

// Retries `call` while it fails as transient (a restarted server loading
// its data); gives up after about ten seconds.
template <typename F>
auto until_ok(F call) {
  auto r = call();
  for (int i = 0; i < 200 && !r.has_value() && r.error().code == ErrorCode::kTransient; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = call();
  }
  return r;
}

// A store on a server that may still be loading its data after a restart.
std::unique_ptr<StateStore> make_store_when_up(const std::string& prefix) {
  auto s = until_ok([&] { return connect_redis(options(prefix)); });
  EXPECT_TRUE(s.has_value()) << s.error().message;
  return s ? std::move(*s) : nullptr;
}

std::vector<std::string> sorted_copy(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

struct RedisFactory {
  static std::unique_ptr<StateStore> make() { return make_store(fresh_prefix("contract")); }
};

JobSpec job(const std::string& id, std::vector<std::string> deps = {}, JobState state = JobState::kQueued) {
  JobSpec j;
  j.id = id;
  j.attr = "checks.x86_64-linux." + id;
  j.drv_path = "/nix/store/" + id + ".drv";
  j.system = "x86_64-linux";
  j.outputs = {{"out", "/nix/store/" + id}};
  j.state = state;
  j.error = state == JobState::kEvalFailed ? "error: boom" : "";
  j.deps = std::move(deps);
  return j;
}

EvalRecord eval(const std::string& id) {
  EvalRecord e;
  e.id = id;
  e.change_id = "github:" + id;
  e.repo = {"github", "o", "r", "file:///x", "", "main"};
  e.rev = std::string(40, 'b');
  return e;
}

// A plain hiredis connection for what the port does not offer (server
// config, the server's pid).
class RawRedis {
 public:
  RawRedis() : c_(redisConnect("127.0.0.1", shared().redis.port())) {}
  ~RawRedis() {
    if (c_) redisFree(c_);
  }
  // The reply as text (strings, status, errors, integers).
  std::string run(std::vector<std::string> args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c_, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (!r) return "<no reply>";
    std::string out = r->type == REDIS_REPLY_INTEGER ? std::to_string(r->integer) : r->str ? std::string(r->str, r->len) : "";
    freeReplyObject(r);
    return out;
  }
  int server_pid() {
    std::string info = run({"INFO", "server"});
    auto at = info.find("process_id:");
    return at == std::string::npos ? 0 : std::stoi(info.substr(at + 11));
  }

 private:
  redisContext* c_;
};

}  // namespace

namespace flurry::state::contract {
INSTANTIATE_TYPED_TEST_SUITE_P(Redis, StateContract, RedisFactory);
}

// Eight builder threads on two store instances (two processes' worth of
// connection pools) finish an eval of 2,000 jobs: 250 chains of four and
// 1,000 independent jobs, some failing at the head or in the middle of a
// chain. Every job is released exactly once, ends in the state the rules
// give, and exactly one finish reports the end of the eval.
TEST(RedisStore, ConcurrentFinishesKeepExactCountersAndEndTheEvalOnce) {
  const std::string prefix = fresh_prefix("concurrent");
  std::unique_ptr<StateStore> stores[2] = {make_store(prefix), make_store(prefix)};
  ASSERT_TRUE(stores[0] && stores[1]);
  ASSERT_TRUE(*stores[0]->create_eval(eval("big")));

  std::vector<JobSpec> jobs;
  std::map<std::string, JobState> builds_as;  // outcome a builder reports
  std::map<std::string, JobState> expected;   // final state of every job
  for (int i = 0; i < 250; ++i) {
    bool head_fails = i % 7 == 0;
    bool third_fails = !head_fails && i % 11 == 3;
    for (int k = 0; k < 4; ++k) {
      std::string id = "c" + std::to_string(i) + "-" + std::to_string(k);
      jobs.push_back(job(id, k == 0 ? std::vector<std::string>{} : std::vector<std::string>{"c" + std::to_string(i) + "-" + std::to_string(k - 1)}));
      bool fails = (k == 0 && head_fails) || (k == 2 && third_fails);
      builds_as[id] = fails ? JobState::kFailed : JobState::kSucceeded;
      bool upstream_failed = (head_fails && k > 0) || (third_fails && k > 2);
      expected[id] = upstream_failed ? JobState::kDependencyFailed : builds_as[id];
    }
  }
  for (int i = 0; i < 1000; ++i) {
    std::string id = "solo" + std::to_string(i);
    jobs.push_back(job(id));
    builds_as[id] = i % 13 == 0 ? JobState::kFailed : JobState::kSucceeded;
    expected[id] = builds_as[id];
  }
  ASSERT_EQ(jobs.size(), 2000u);
  auto added = stores[0]->add_jobs("big", jobs, 1);
  ASSERT_TRUE(added.has_value()) << added.error().message;
  ASSERT_EQ(added->ready.size(), 1250u);

  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> queue = added->ready;
  std::multiset<std::string> dispatched(queue.begin(), queue.end());
  std::vector<std::string> problems;
  int settled = 0;  // jobs made terminal by the finishes so far
  std::atomic<int> saw_eval_finished{0};
  auto give_up_at = std::chrono::steady_clock::now() + std::chrono::seconds(120);

  auto worker = [&](StateStore& store) {
    while (true) {
      std::string id;
      {
        std::unique_lock lock(mu);
        cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return !queue.empty() || settled >= 2000; });
        if (settled >= 2000) return;
        if (std::chrono::steady_clock::now() > give_up_at) {
          problems.push_back("gave up waiting with " + std::to_string(settled) + " jobs settled");
          settled = 2000;
          cv.notify_all();
          return;
        }
        if (queue.empty()) continue;
        id = queue.back();
        queue.pop_back();
      }
      auto started = store.start_job(id, 2);
      auto done = store.finish_job(id, builds_as.at(id), "", 3);
      std::lock_guard lock(mu);
      if (!started || *started != JobState::kBuilding) problems.push_back("start_job " + id + " failed");
      if (!done) {
        problems.push_back("finish_job " + id + ": " + done.error().message);
        settled = 2000;  // cannot account for this job any more
      } else {
        if (done->eval_finished) ++saw_eval_finished;
        settled += 1 + static_cast<int>(done->dependency_failed.size());
        queue.insert(queue.end(), done->ready.begin(), done->ready.end());
        dispatched.insert(done->ready.begin(), done->ready.end());
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < 8; ++w) threads.emplace_back(worker, std::ref(*stores[w % 2]));
  for (auto& t : threads) t.join();

  EXPECT_TRUE(problems.empty()) << problems.front();
  EXPECT_EQ(saw_eval_finished.load(), 1);
  for (const auto& id : dispatched) EXPECT_EQ(dispatched.count(id), 1u) << id << " was released twice";

  int failed = 0;
  for (const auto& [id, s] : expected) failed += msg::is_success(s) ? 0 : 1;
  auto e = **stores[1]->get_eval("big");
  EXPECT_EQ(e.state, EvalState::kFailed);
  EXPECT_EQ(e.jobs_total, 2000);
  EXPECT_EQ(e.jobs_pending, 0);
  EXPECT_EQ(e.jobs_failed, failed);
  EXPECT_EQ(e.finished_ms, 3);
  auto all = stores[1]->list_jobs("big");
  ASSERT_TRUE(all.has_value()) << all.error().message;
  ASSERT_EQ(all->size(), 2000u);
  for (const auto& j : *all) {
    EXPECT_EQ(j.state, expected.at(j.id)) << j.id;
    EXPECT_EQ(j.attempts, j.state == JobState::kDependencyFailed ? 0 : 1) << j.id;
  }
}

// Streaming: the evaluator adds 20 batches of 50 jobs while four builders
// finish what is ready. Job i of batch k waits for job i of batch k-1, which
// may be queued, building, finished or failed when the batch arrives; some
// chains fail in batch 0 or batch 5. Every job is released exactly once
// (by add_jobs or by the finish of its dependency, never both), ends in the
// state the rules give, and exactly one call reports the end of the eval.
TEST(RedisStore, StreamedBatchesRacingFinishesReleaseEachJobOnce) {
  const std::string prefix = fresh_prefix("stream");
  std::unique_ptr<StateStore> stores[2] = {make_store(prefix), make_store(prefix)};
  ASSERT_TRUE(stores[0] && stores[1]);
  ASSERT_TRUE(*stores[0]->create_eval(eval("stream")));
  constexpr int kBatches = 20, kWidth = 50, kJobs = kBatches * kWidth;

  std::map<std::string, JobState> builds_as, expected;
  std::vector<std::vector<JobSpec>> batches(kBatches);
  for (int k = 0; k < kBatches; ++k) {
    for (int i = 0; i < kWidth; ++i) {
      std::string id = "s" + std::to_string(k) + "-" + std::to_string(i);
      std::vector<std::string> deps;
      if (k > 0) deps.push_back("s" + std::to_string(k - 1) + "-" + std::to_string(i));
      batches[k].push_back(job(id, deps));
      bool head_fails = i % 9 == 0, mid_fails = !head_fails && i % 7 == 3;
      bool fails = (k == 0 && head_fails) || (k == 5 && mid_fails);
      builds_as[id] = fails ? JobState::kFailed : JobState::kSucceeded;
      bool upstream_failed = (head_fails && k > 0) || (mid_fails && k > 5);
      expected[id] = upstream_failed ? JobState::kDependencyFailed : builds_as[id];
    }
  }

  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> queue;
  std::multiset<std::string> dispatched;
  std::vector<std::string> problems;
  int settled = 0;
  int saw_eval_finished = 0;
  auto give_up_at = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  auto take = [&](const Transition& t, int ended) {  // with mu held
    settled += ended + static_cast<int>(t.dependency_failed.size());
    saw_eval_finished += t.eval_finished ? 1 : 0;
    queue.insert(queue.end(), t.ready.begin(), t.ready.end());
    dispatched.insert(t.ready.begin(), t.ready.end());
    cv.notify_all();
  };
  auto worker = [&](StateStore& store) {
    while (true) {
      std::string id;
      {
        std::unique_lock lock(mu);
        cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return !queue.empty() || settled >= kJobs; });
        if (settled >= kJobs) return;
        if (std::chrono::steady_clock::now() > give_up_at) {
          problems.push_back("gave up waiting with " + std::to_string(settled) + " jobs settled");
          settled = kJobs;
          cv.notify_all();
          return;
        }
        if (queue.empty()) continue;
        id = queue.back();
        queue.pop_back();
      }
      auto started = store.start_job(id, 2);
      auto done = store.finish_job(id, builds_as.at(id), "", 3);
      std::lock_guard lock(mu);
      if (!started || *started != JobState::kBuilding) problems.push_back("start_job " + id + " failed");
      if (!done) {
        problems.push_back("finish_job " + id + ": " + done.error().message);
        settled = kJobs;
        cv.notify_all();
      } else {
        take(*done, 1);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) threads.emplace_back(worker, std::ref(*stores[w % 2]));
  for (int k = 0; k < kBatches; ++k) {
    auto t = stores[k % 2]->add_jobs("stream", batches[k], 1, k == kBatches - 1);
    std::lock_guard lock(mu);
    if (!t) {
      problems.push_back("add_jobs batch " + std::to_string(k) + ": " + t.error().message);
      settled = kJobs;
      cv.notify_all();
      break;
    }
    take(*t, 0);
  }
  for (auto& t : threads) t.join();

  ASSERT_TRUE(problems.empty()) << problems.front();
  EXPECT_EQ(saw_eval_finished, 1);
  for (const auto& id : dispatched) EXPECT_EQ(dispatched.count(id), 1u) << id << " was released twice";
  int failed = 0;
  for (const auto& [id, st] : expected) failed += msg::is_success(st) ? 0 : 1;
  auto e = **stores[1]->get_eval("stream");
  EXPECT_EQ(e.state, EvalState::kFailed);
  EXPECT_EQ(e.jobs_total, kJobs);
  EXPECT_EQ(e.jobs_pending, 0);
  EXPECT_EQ(e.jobs_failed, failed);
  auto all = stores[1]->list_jobs("stream");
  ASSERT_TRUE(all.has_value()) << all.error().message;
  ASSERT_EQ(all->size(), static_cast<std::size_t>(kJobs));
  for (const auto& j : *all) {
    EXPECT_EQ(j.state, expected.at(j.id)) << j.id;
    EXPECT_EQ(j.attempts, j.state == JobState::kDependencyFailed ? 0 : 1) << j.id;
  }
}

// Redelivery races: eight builders report the same job at once, some as a
// success, some as a failure. One report wins; everyone gets its transition.
TEST(RedisStore, RacingFinishesOfOneJobApplyExactlyOnce) {
  auto store = make_store(fresh_prefix("race"));
  for (int round = 0; round < 20; ++round) {
    std::string eid = "race" + std::to_string(round);
    std::string x = eid + "-x";
    ASSERT_TRUE(*store->create_eval(eval(eid)));
    ASSERT_TRUE(store->add_jobs(eid, {job(x), job(eid + "-d1", {x}), job(eid + "-d2", {x}), job(eid + "-y")}, 1).has_value());
    std::vector<Result<Transition>> results(8);
    std::atomic<int> waiting{8};
    std::vector<std::thread> threads;
    for (int w = 0; w < 8; ++w) {
      threads.emplace_back([&, w] {
        --waiting;
        while (waiting.load() > 0) std::this_thread::yield();
        results[w] = store->finish_job(x, w % 2 ? JobState::kFailed : JobState::kSucceeded, "", 2);
      });
    }
    for (auto& t : threads) t.join();
    for (auto& r : results) {
      ASSERT_TRUE(r.has_value()) << r.error().message;
      EXPECT_EQ(*r, *results[0]);
    }
    auto state = (*store->get_job(x))->state;
    auto e = **store->get_eval(eid);
    if (state == JobState::kSucceeded) {
      EXPECT_EQ(results[0]->ready.size(), 2u);
      EXPECT_EQ(e.jobs_pending, 3);
      EXPECT_EQ(e.jobs_failed, 0);
    } else {
      ASSERT_EQ(state, JobState::kFailed);
      EXPECT_EQ(results[0]->dependency_failed.size(), 2u);
      EXPECT_EQ(e.jobs_pending, 1);
      EXPECT_EQ(e.jobs_failed, 3);
    }
  }
}

TEST(RedisStore, RacingCreatesAndStartsCountExactly) {
  auto store = make_store(fresh_prefix("create-race"));
  std::atomic<int> created{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 8; ++w) {
    threads.emplace_back([&] {
      auto r = store->create_eval(eval("once"));
      if (r && *r) ++created;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  ASSERT_TRUE(store->add_jobs("once", {job("a")}, 1).has_value());
  threads.clear();
  for (int w = 0; w < 8; ++w) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) EXPECT_EQ(*store->start_job("a", 2), JobState::kBuilding);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ((*store->get_job("a"))->attempts, 80);
}

// 10,000 jobs in one call, with born-terminal jobs and their dependents
// mixed in, then built to the end.
TEST(RedisStore, TenThousandJobsInOneEval) {
  auto store = make_store(fresh_prefix("wide"));
  ASSERT_TRUE(*store->create_eval(eval("wide")));
  // w0 is the root. Per block of ten: 1 skipped, 2 eval_failed, 3 waits for
  // the skipped one, 4 for the eval_failed one, 5 for w0 and the skipped
  // one; the rest wait for w0.
  std::vector<JobSpec> jobs;
  std::set<std::string> ready_now, dep_failed_now, ready_after_root;
  int born_failed = 0;
  for (int i = 0; i < 10000; ++i) {
    std::string id = "w" + std::to_string(i);
    std::string prev2 = "w" + std::to_string(i - 2);
    if (i == 0) {
      jobs.push_back(job(id));
      ready_now.insert(id);
      continue;
    }
    switch (i % 10) {
      case 1: jobs.push_back(job(id, {}, JobState::kSkipped)); break;
      case 2: jobs.push_back(job(id, {}, JobState::kEvalFailed)); ++born_failed; break;
      case 3: jobs.push_back(job(id, {prev2})); ready_now.insert(id); break;
      case 4: jobs.push_back(job(id, {prev2})); dep_failed_now.insert(id); break;
      case 5: jobs.push_back(job(id, {"w0", "w" + std::to_string(i - 4)})); ready_after_root.insert(id); break;
      default: jobs.push_back(job(id, {"w0"})); ready_after_root.insert(id); break;
    }
  }
  auto t = store->add_jobs("wide", jobs, 1);
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ(std::set<std::string>(t->ready.begin(), t->ready.end()), ready_now);
  EXPECT_EQ(t->ready.size(), ready_now.size());
  EXPECT_EQ(std::set<std::string>(t->dependency_failed.begin(), t->dependency_failed.end()), dep_failed_now);
  EXPECT_FALSE(t->eval_finished);
  auto e = **store->get_eval("wide");
  EXPECT_EQ(e.jobs_total, 10000);
  EXPECT_EQ(e.jobs_failed, born_failed + static_cast<int>(dep_failed_now.size()));
  EXPECT_EQ(e.jobs_pending, 10000 - 1000 - born_failed - static_cast<int>(dep_failed_now.size()));
  auto listed = store->list_jobs("wide");
  ASSERT_TRUE(listed.has_value()) << listed.error().message;
  ASSERT_EQ(listed->size(), 10000u);
  for (int i = 0; i < 10000; ++i) ASSERT_EQ((*listed)[i].id, "w" + std::to_string(i));

  auto root = store->finish_job("w0", JobState::kSucceeded, "", 2);
  ASSERT_TRUE(root.has_value()) << root.error().message;
  EXPECT_EQ(std::set<std::string>(root->ready.begin(), root->ready.end()), ready_after_root);
  std::vector<std::string> rest(ready_now.begin(), ready_now.end());
  rest.insert(rest.end(), root->ready.begin(), root->ready.end());
  int finished = 0;
  for (const auto& id : rest) {
    if (id == "w0") continue;
    auto r = store->finish_job(id, JobState::kSucceeded, "", 3);
    ASSERT_TRUE(r.has_value()) << id << ": " << r.error().message;
    EXPECT_TRUE(r->ready.empty());
    finished += r->eval_finished;
  }
  EXPECT_EQ(finished, 1);
  e = **store->get_eval("wide");
  EXPECT_EQ(e.state, EvalState::kFailed);
  EXPECT_EQ(e.jobs_pending, 0);
}

// Calls while Redis is down fail as transient errors; once it is back
// (loading its append-only file), the same store works again, data and
// stored transitions included, and scripts the restarted server forgot are
// sent again.
TEST(RedisStore, KeepsWorkingAcrossARedisRestart) {
  auto store = make_store(fresh_prefix("restart"));
  ASSERT_TRUE(*store->create_eval(eval("r1")));
  ASSERT_TRUE(store->add_jobs("r1", {job("a"), job("b", {"a"}), job("c")}, 1).has_value());
  auto ta = store->finish_job("a", JobState::kSucceeded, "", 2);
  ASSERT_TRUE(ta.has_value());
  ASSERT_TRUE(store->healthy());

  shared().redis.stop();  // a clean shutdown writes the append-only file out
  auto during = store->get_job("b");
  ASSERT_FALSE(during.has_value());
  EXPECT_EQ(during.error().code, ErrorCode::kTransient);
  auto finish_during = store->finish_job("b", JobState::kSucceeded, "", 3);
  ASSERT_FALSE(finish_during.has_value());
  EXPECT_EQ(finish_during.error().code, ErrorCode::kTransient);
  EXPECT_FALSE(store->healthy());

  shared().redis.restart();
  auto after = until_ok([&] { return store->get_job("b"); });
  ASSERT_TRUE(after.has_value()) << after.error().message;
  ASSERT_TRUE(after->has_value());
  EXPECT_EQ((*after)->state, JobState::kQueued);
  EXPECT_TRUE(store->healthy());
  EXPECT_EQ(*store->finish_job("a", JobState::kSucceeded, "", 4), *ta);
  auto tb = store->finish_job("b", JobState::kSucceeded, "", 5);
  ASSERT_TRUE(tb.has_value()) << tb.error().message;
  EXPECT_FALSE(tb->eval_finished);
  auto tc = store->finish_job("c", JobState::kSucceeded, "", 6);
  ASSERT_TRUE(tc.has_value()) << tc.error().message;
  EXPECT_TRUE(tc->eval_finished);
  EXPECT_EQ(tc->eval_state, EvalState::kSucceeded);
}

// Connections pooled before a restart that happened while nobody called are
// dropped before use: once the server serves again, no call fails.
TEST(RedisStore, ConnectionsPooledBeforeAQuietRestartAreNotUsed) {
  const std::string prefix = fresh_prefix("quiet");
  auto store = make_store(prefix);
  ASSERT_TRUE(*store->create_eval(eval("q1")));
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) EXPECT_TRUE(store->get_eval("q1")->has_value());
    });
  }
  for (auto& t : threads) t.join();

  shared().redis.restart();
  auto probe = make_store_when_up(fresh_prefix("probe"));
  ASSERT_TRUE(probe);
  ASSERT_TRUE(until_ok([&] { return probe->get_eval("q1"); }).has_value());  // loaded
  for (int i = 0; i < 8; ++i) {
    auto e = store->get_eval("q1");
    ASSERT_TRUE(e.has_value()) << "call " << i << ": " << e.error().message;
    EXPECT_TRUE(e->has_value());
  }
}

// SIGKILL, no clean shutdown: calls fail as transient (the process does not
// die of SIGPIPE on the dead connections), and recover after a restart.
TEST(RedisStore, SurvivesAKilledServer) {
  auto store = make_store(fresh_prefix("killed"));
  ASSERT_TRUE(*store->create_eval(eval("k1")));
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) threads.emplace_back([&] { EXPECT_TRUE(store->healthy()); });
  for (auto& t : threads) t.join();  // several pooled connections now

  shared().redis.kill();
  struct RestartIfStillDown {
    bool down = true;
    ~RestartIfStillDown() {
      if (down) shared().redis.restart();
    }
  } guard;
  for (int i = 0; i < 10; ++i) {
    auto r = store->claim_once("k" + std::to_string(i), 60);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kTransient);
  }
  shared().redis.restart();
  guard.down = false;
  auto back = until_ok([&] { return store->claim_once("after-kill", 60); });
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_TRUE(*back);
}

// A server that stops answering (SIGSTOP) must not hang callers: they get a
// transient error within the configured timeout and work again later.
TEST(RedisStore, AFrozenServerGivesTransientErrorsNotHangs) {
  auto o = options(fresh_prefix("frozen"));
  o.timeout = std::chrono::milliseconds(300);
  auto store = connect_redis(o);
  ASSERT_TRUE(store.has_value()) << store.error().message;
  ASSERT_TRUE(*(*store)->create_eval(eval("f1")));
  int pid = RawRedis().server_pid();
  ASSERT_GT(pid, 0);

  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  struct Thaw {
    int pid;
    ~Thaw() { ::kill(pid, SIGCONT); }
  } thaw{pid};
  auto r = (*store)->get_eval("f1");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kTransient);
  auto w = (*store)->add_jobs("f1", {job("a")}, 1);
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code, ErrorCode::kTransient);
  EXPECT_FALSE((*store)->healthy());

  ::kill(pid, SIGCONT);
  // The add_jobs above may or may not have reached the server; the retry
  // gives the same, single result either way.
  auto again = until_ok([&] { return (*store)->add_jobs("f1", {job("a")}, 1); });
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(again->ready, std::vector<std::string>{"a"});
  EXPECT_EQ((**(*store)->get_eval("f1")).jobs_total, 1);
  EXPECT_EQ((*(*store)->list_jobs("f1")).size(), 1u);
}

// The handler crashed after finish_job wrote its change but before it
// published: a new process (new store, new connections), even after a Redis
// restart, gets the same transition back, and nothing is counted twice.
TEST(RedisStore, RepeatedFinishAfterACrashReturnsTheSameTransition) {
  const std::string prefix = fresh_prefix("crash");
  Transition first_add, first_finish;
  {
    auto crashed = make_store(prefix);
    ASSERT_TRUE(*crashed->create_eval(eval("c1")));
    auto add = crashed->add_jobs("c1", {job("a"), job("b", {"a"}), job("c", {"a"}), job("d")}, 1);
    ASSERT_TRUE(add.has_value());
    first_add = *add;
    ASSERT_TRUE(crashed->start_job("a", 2).has_value());
    auto fin = crashed->finish_job("a", JobState::kSucceeded, "", 3);
    ASSERT_TRUE(fin.has_value());
    first_finish = *fin;
  }  // the process dies here, nothing published
  EXPECT_EQ(sorted_copy(first_finish.ready), (std::vector<std::string>{"b", "c"}));

  auto replay = make_store(prefix);
  EXPECT_EQ(*replay->finish_job("a", JobState::kSucceeded, "", 10), first_finish);
  EXPECT_EQ(*replay->finish_job("a", JobState::kFailed, "late duplicate", 11), first_finish);
  // The add_jobs replay answers with every job's standing now: a has
  // succeeded, so b and c are ready beside d.
  EXPECT_EQ(first_add.ready, (std::vector<std::string>{"a", "d"}));
  auto replayed_add = *replay->add_jobs("c1", {}, 12);
  EXPECT_EQ(replayed_add.ready, (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_FALSE(replayed_add.eval_finished);
  EXPECT_EQ(replayed_add.eval_state, EvalState::kBuilding);

  shared().redis.restart();
  auto after_restart = make_store_when_up(prefix);
  ASSERT_TRUE(after_restart);
  auto again = until_ok([&] { return after_restart->finish_job("a", JobState::kSucceeded, "", 13); });
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(*again, first_finish);
  auto e = **after_restart->get_eval("c1");
  EXPECT_EQ(e.jobs_total, 4);
  EXPECT_EQ(e.jobs_pending, 3);
  EXPECT_EQ(e.jobs_failed, 0);
  auto a = **after_restart->get_job("a");
  EXPECT_EQ(a.state, JobState::kSucceeded);
  EXPECT_EQ(a.finished_ms, 3);
  EXPECT_EQ(a.attempts, 1);
}

// A reply lost to a client timeout (the script may still run to the end on
// the server) leaves nothing half done: the retry returns one consistent
// result.
TEST(RedisStore, ALostReplyIsHarmlessToRetry) {
  const std::string prefix = fresh_prefix("lost");
  auto store = make_store(prefix);
  ASSERT_TRUE(*store->create_eval(eval("l1")));
  std::vector<JobSpec> jobs;
  for (int i = 0; i < 10000; ++i) jobs.push_back(job("l" + std::to_string(i), i % 2 ? std::vector<std::string>{"l" + std::to_string(i - 1)} : std::vector<std::string>{}));
  auto o = options(prefix);
  o.timeout = std::chrono::milliseconds(20);
  auto impatient = connect_redis(o);
  ASSERT_TRUE(impatient.has_value()) << impatient.error().message;
  auto first = (*impatient)->add_jobs("l1", jobs, 1);
  if (!first) {
    EXPECT_EQ(first.error().code, ErrorCode::kTransient) << first.error().message;
  }

  auto retry = until_ok([&] { return store->add_jobs("l1", jobs, 2); });
  ASSERT_TRUE(retry.has_value()) << retry.error().message;
  if (first) {
    EXPECT_EQ(*first, *retry);
  }
  EXPECT_EQ(retry->ready.size(), 5000u);
  auto e = **store->get_eval("l1");
  EXPECT_EQ(e.jobs_total, 10000);
  EXPECT_EQ(e.jobs_pending, 10000);
  EXPECT_EQ(store->list_jobs("l1")->size(), 10000u);
  auto t = *store->finish_job("l0", JobState::kSucceeded, "", 3);
  EXPECT_EQ(t.ready, std::vector<std::string>{"l1"});
}

TEST(RedisStore, AuthenticatesWithThePassword) {
  RawRedis admin;
  ASSERT_EQ(admin.run({"CONFIG", "SET", "requirepass", "s3cret-pass"}), "OK");
  struct Reset {
    RawRedis& admin;
    ~Reset() { admin.run({"CONFIG", "SET", "requirepass", ""}); }
  } reset{admin};  // this connection stays authenticated

  auto o = options(fresh_prefix("auth"));
  auto anonymous = connect_redis(o);
  ASSERT_FALSE(anonymous.has_value());
  EXPECT_EQ(anonymous.error().code, ErrorCode::kTransient);

  o.password = "wrong-pass";
  auto wrong = connect_redis(o);
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().message.find("wrong-pass"), std::string::npos) << wrong.error().message;

  o.password = "s3cret-pass";
  auto good = connect_redis(o);
  ASSERT_TRUE(good.has_value()) << good.error().message;
  EXPECT_TRUE(*(*good)->create_eval(eval("a1")));
  EXPECT_TRUE((*good)->healthy());
}

TEST(RedisStore, RefusesToConnectWhenNothingListens) {
  RedisOptions o;
  o.port = free_tcp_port();
  o.timeout = std::chrono::milliseconds(500);
  auto s = connect_redis(o);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kTransient);
}
