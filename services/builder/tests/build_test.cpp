#include "build.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "flurry/bus/testing/memory_bus.hpp"
#include "flurry/core/log.hpp"
#include "flurry/messages/subjects.hpp"
#include "flurry/nix/testing/fake_nix_runner.hpp"
#include "flurry/state/testing/memory_store.hpp"

using namespace flurry;
using namespace flurry::builder;
using msg::JobState;

namespace {

state::JobSpec job(const std::string& id, std::vector<std::string> deps = {}) {
  return {id, "checks.x86_64-linux." + id, "/nix/store/" + id + ".drv", "x86_64-linux", {{"out", "/nix/store/" + id}},
          JobState::kQueued, "", "notBuilt", std::move(deps)};
}

class Build : public ::testing::Test {
 protected:
  void SetUp() override {
    state::EvalRecord e;
    e.id = "e1";
    e.repo = {"github", "octo", "hello", "file:///x", "", "main"};
    e.rev = std::string(40, 'a');
    ASSERT_TRUE(*store.create_eval(e));
    // a <- b <- c ; d independent
    ASSERT_TRUE(store.add_jobs("e1", {job("a"), job("b", {"a"}), job("c", {"b"}), job("d")}, 1).has_value());
  }
  BuildOutcome build(const std::string& id, std::uint64_t delivered = 1) {
    msg::BuildRequest req{"e1", id, "checks.x86_64-linux." + id, "/nix/store/" + id + ".drv", "x86_64-linux", ""};
    return handle_build_request(req, {delivered, 3}, {store, bus, nix, clock}, cfg);
  }
  std::vector<std::string> build_requests() {
    std::vector<std::string> out;
    for (const auto& m : bus.published("flurry.build.")) out.push_back(msg::decode_build_request(m.data)->job_id);
    return out;
  }
  state::testing::MemoryStore store;
  bus::testing::MemoryBus bus;
  nix::testing::FakeNixRunner nix;
  ManualClock clock;
  BuilderConfig cfg;
};

}  // namespace

TEST_F(Build, SuccessReleasesTheDependent) {
  auto o = build("a");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_EQ(o.state, JobState::kSucceeded);
  EXPECT_EQ((**store.get_job("a")).state, JobState::kSucceeded);
  EXPECT_EQ(build_requests(), std::vector<std::string>{"b"});
  auto finished = bus.published("flurry.job.finished");
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(msg::decode_job_finished(finished[0].data)->state, JobState::kSucceeded);
  // Building from its start (a check run "in progress"), then its end.
  auto statuses = bus.published("flurry.status.github");
  ASSERT_EQ(statuses.size(), 2u);
  auto building = msg::decode_status_event(statuses[0].data);
  EXPECT_EQ(building->context, "flurry/checks.x86_64-linux.a");
  EXPECT_EQ(building->state, msg::StatusState::kPending);
  EXPECT_EQ(building->job_state, "building");
  EXPECT_EQ(building->description, "Building");
  EXPECT_EQ(building->at_us, clock.now_ms() * 1000);
  EXPECT_EQ(building->repo.owner, "octo");  // from the request or the eval
  auto status = msg::decode_status_event(statuses[1].data);
  EXPECT_EQ(status->context, "flurry/checks.x86_64-linux.a");
  EXPECT_EQ(status->state, msg::StatusState::kSuccess);
  EXPECT_GT(status->at_us, building->at_us);
}

// The request carries the eval's repository and commit: the start's status
// needs no read of the eval.
TEST_F(Build, TheStartsStatusComesFromTheRequestsRepositoryAndCommit) {
  msg::BuildRequest req{"e1", "a", "checks.x86_64-linux.a", "/nix/store/a.drv", "x86_64-linux", ""};
  req.repo = {"github", "someone", "else", "file:///y", "", "main"};
  req.rev = std::string(40, 'f');
  handle_build_request(req, {1, 3}, {store, bus, nix, clock}, cfg);
  auto building = msg::decode_status_event(bus.published("flurry.status.").at(0).data);
  EXPECT_EQ(building->job_state, "building");
  EXPECT_EQ(building->repo.owner, "someone");
  EXPECT_EQ(building->rev, std::string(40, 'f'));
}

TEST_F(Build, FailureFailsTransitiveDependentsWithoutBuildingThem) {
  nix.build_results["/nix/store/a.drv"] = {nix::BuildResult::Outcome::kFailed, {}, "error: builder for '/nix/store/a.drv' failed with exit code 3"};
  auto o = build("a");
  EXPECT_EQ(o.state, JobState::kFailed);
  EXPECT_EQ((**store.get_job("a")).error, "error: builder for '/nix/store/a.drv' failed with exit code 3");
  EXPECT_EQ((**store.get_job("b")).state, JobState::kDependencyFailed);
  EXPECT_EQ((**store.get_job("c")).state, JobState::kDependencyFailed);
  EXPECT_TRUE(build_requests().empty());
  EXPECT_EQ(bus.published("flurry.job.finished").size(), 3u);
  std::map<std::string, msg::StatusEvent> statuses;
  for (const auto& m : bus.published("flurry.status.")) {
    auto s = *msg::decode_status_event(m.data);
    statuses[s.context] = s;
  }
  EXPECT_EQ(statuses["flurry/checks.x86_64-linux.c"].state, msg::StatusState::kFailure);
  EXPECT_NE(statuses["flurry/checks.x86_64-linux.c"].description.find("checks.x86_64-linux.a"), std::string::npos);
  EXPECT_EQ(nix.builds, std::vector<std::string>{"/nix/store/a.drv"});
}

// `d` needs `a`'s derivation but was recorded before `a` (no edge): nix
// builds `a` inside `d`'s build and `a`'s builder fails. `d` did not fail,
// its dependency did; and `d`'s derivation is not remembered as failed.
TEST_F(Build, AJobWhoseDependencysBuilderFailedEndsDependencyFailed) {
  nix.build_results["/nix/store/d.drv"] = {nix::BuildResult::Outcome::kFailed, {},
                                           "error: builder for '/nix/store/a.drv' failed with exit code 1", "/nix/store/a.drv"};
  auto o = build("d");
  EXPECT_EQ(o.state, JobState::kDependencyFailed);
  EXPECT_EQ((**store.get_job("d")).error, "dependency checks.x86_64-linux.a failed");
  EXPECT_TRUE((*store.failed_builds({"/nix/store/d.drv"})).empty());
  // A derivation that is no job's: the job failed, as nix says.
  nix.build_results["/nix/store/c.drv"] = {nix::BuildResult::Outcome::kFailed, {},
                                           "error: builder for '/nix/store/zz-lib.drv' failed with exit code 1", "/nix/store/zz-lib.drv"};
  ASSERT_EQ(build("a").state, JobState::kSucceeded);
  ASSERT_EQ(build("b").state, JobState::kSucceeded);
  EXPECT_EQ(build("c").state, JobState::kFailed);
  EXPECT_EQ((**store.get_job("c")).error, "error: builder for '/nix/store/zz-lib.drv' failed with exit code 1");
}

TEST_F(Build, TheLastJobEndsTheEvalExactlyOnce) {
  build("a");
  build("b");
  build("c");
  EXPECT_TRUE(bus.published("flurry.eval.finished").empty());
  build("d");
  ASSERT_EQ(bus.published("flurry.eval.finished").size(), 1u);
  EXPECT_EQ(msg::decode_eval_finished(bus.published("flurry.eval.finished")[0].data)->state, "succeeded");
  build("d");  // a duplicate request
  EXPECT_EQ(bus.published("flurry.eval.finished").size(), 1u);
}

TEST_F(Build, RedeliveryOfAFinishedJobRepublishesWithoutBuilding) {
  build("a");
  bus.clear();
  auto o = build("a", 2);
  EXPECT_EQ(o.result, "replayed");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_EQ(nix.builds.size(), 1u);
}

TEST_F(Build, PublishFailureNaksAndTheRetryCompletesTheWork) {
  // The start's status is best effort (the build goes on); the end's is not.
  bus.fail_next_publishes(2);
  auto o = build("a");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kNak);
  EXPECT_EQ((**store.get_job("a")).state, JobState::kSucceeded);  // state is durable
  auto again = build("a", 2);
  EXPECT_EQ(again.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_EQ(build_requests(), std::vector<std::string>{"b"});
  EXPECT_EQ(nix.builds.size(), 1u);
}

TEST_F(Build, InfrastructureErrorIsRetriedThenFailsTheJob) {
  nix.build_errors["/nix/store/a.drv"] = Error::transient("cannot run nix: No such file or directory");
  auto first = build("a", 1);
  EXPECT_EQ(first.disposition.kind, bus::Disposition::Kind::kNak);
  EXPECT_EQ((**store.get_job("a")).state, JobState::kBuilding);
  auto last = build("a", 3);
  EXPECT_EQ(last.disposition.kind, bus::Disposition::Kind::kAck);
  auto a = **store.get_job("a");
  EXPECT_EQ(a.state, JobState::kFailed);
  EXPECT_NE(a.error.find("infrastructure"), std::string::npos);
  EXPECT_EQ((**store.get_job("b")).state, JobState::kDependencyFailed);
  // Not the derivation's failure: the failed-build cache does not keep it.
  EXPECT_TRUE(store.failed_builds({"/nix/store/a.drv"})->empty());
}

TEST_F(Build, TimeoutEndsTimedOut) {
  nix.build_results["/nix/store/d.drv"] = {nix::BuildResult::Outcome::kTimedOut, {}, "error: building of '/nix/store/d.drv' timed out after 1 seconds"};
  EXPECT_EQ(build("d").state, JobState::kTimedOut);
  EXPECT_EQ((**store.get_job("d")).state, JobState::kTimedOut);
}

TEST_F(Build, LogIsStoredCappedAndRedacted) {
  log::register_secret("hunter2-secret-token");
  nix.build_logs["/nix/store/a.drv"] = std::string(100, 'x') + "token=hunter2-secret-token\nend\n";
  cfg.log_cap_bytes = 64;
  build("a");
  auto stored = *store.get_log("a");
  EXPECT_LE(stored.size(), 64u);
  EXPECT_NE(stored.find("end\n"), std::string::npos);
  EXPECT_EQ(stored.find("hunter2"), std::string::npos);
  EXPECT_NE(stored.find("[redacted]"), std::string::npos);
}

TEST_F(Build, CancellingTheEvalKillsItsRunningBuild) {
  cfg.cancel_poll_interval = std::chrono::milliseconds(20);
  nix.runs_until_cancelled = {"/nix/store/a.drv"};
  BuildOutcome o;
  std::thread builder([&] { o = build("a"); });
  // Once a is building, a newer push supersedes the eval.
  for (int i = 0; i < 1000 && (**store.get_job("a")).state != JobState::kBuilding; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ((**store.get_job("a")).state, JobState::kBuilding);
  auto t = store.cancel_eval("e1", "superseded by bbbbbbbbbbbb", 5);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->cancelled.size(), 3u);  // b, c, d were queued
  builder.join();
  EXPECT_EQ(o.state, JobState::kCancelled);
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  auto a = **store.get_job("a");
  EXPECT_EQ(a.state, JobState::kCancelled);
  EXPECT_EQ(a.error, "superseded by bbbbbbbbbbbb");
  EXPECT_NE(store.get_log("a")->find("build stopped: superseded by bbbbbbbbbbbb"), std::string::npos);
  // The killed build was the last one: the eval ended cancelled.
  EXPECT_EQ((**store.get_eval("e1")).state, state::EvalState::kCancelled);
  ASSERT_EQ(bus.published("flurry.eval.finished").size(), 1u);
  EXPECT_TRUE(build_requests().empty());
}

TEST_F(Build, ABuildOfALiveEvalIsNotStopped) {
  cfg.cancel_poll_interval = std::chrono::milliseconds(5);
  auto o = build("a");
  EXPECT_EQ(o.state, JobState::kSucceeded);
  EXPECT_FALSE((**store.get_eval("e1")).cancelled);
}

TEST_F(Build, AFailedBuildIsRememberedForTheFailedBuildCache) {
  nix.build_results["/nix/store/a.drv"].outcome = nix::BuildResult::Outcome::kFailed;
  nix.build_results["/nix/store/a.drv"].error = "error: builder for '/nix/store/a.drv' failed with exit code 1";
  const auto at = clock.now_ms();
  EXPECT_EQ(build("a").state, JobState::kFailed);
  auto failed = *store.failed_builds({"/nix/store/a.drv", "/nix/store/d.drv"});
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed.at("/nix/store/a.drv"),
            (state::FailedBuild{"a", "e1", "checks.x86_64-linux.a", "error: builder for '/nix/store/a.drv' failed with exit code 1", at}));
  // Successes and time-outs are not cached.
  EXPECT_EQ(build("d").state, JobState::kSucceeded);
  EXPECT_TRUE(store.failed_builds({"/nix/store/d.drv"})->empty());
}

// A second eval with job "a2" whose derivation is a's.
void add_second_eval(state::testing::MemoryStore& store) {
  state::EvalRecord e;
  e.id = "e2";
  e.repo = {"github", "octo", "hello", "file:///x", "", "main"};
  e.rev = std::string(40, 'b');
  ASSERT_TRUE(*store.create_eval(e));
  auto a2 = job("a2");
  a2.drv_path = "/nix/store/a.drv";
  ASSERT_TRUE(store.add_jobs("e2", {a2}, 1).has_value());
}

BuildOutcome build_in(state::testing::MemoryStore& store, bus::testing::MemoryBus& bus, nix::testing::FakeNixRunner& nix,
                      ManualClock& clock, const BuilderConfig& cfg, const std::string& eval, const std::string& id) {
  msg::BuildRequest req{eval, id, "checks.x86_64-linux." + id, "/nix/store/a.drv", "x86_64-linux", ""};
  return handle_build_request(req, {1, 3}, {store, bus, nix, clock}, cfg);
}

void wait_until_building(nix::testing::FakeNixRunner& nix, const std::string& drv) {
  for (int i = 0; i < 1000 && std::find(nix.builds.begin(), nix.builds.end(), drv) == nix.builds.end(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void wait_for_a_waiter(state::testing::MemoryStore& store, ManualClock& clock, const std::string& drv) {
  for (int i = 0; i < 200 && store.drv_build_status(drv, clock.now_ms())->waiters == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

TEST_F(Build, TwoEvalsNeedingTheSameDerivationShareOneBuild) {
  add_second_eval(store);
  cfg.cancel_poll_interval = std::chrono::milliseconds(10);
  nix.held = {"/nix/store/a.drv"};
  nix.build_logs["/nix/store/a.drv"] = "a> compiling\n";
  BuildOutcome first, second;
  std::thread t1([&] { first = build("a"); });
  wait_until_building(nix, "/nix/store/a.drv");
  std::thread t2([&] { second = build_in(store, bus, nix, clock, cfg, "e2", "a2"); });
  // a2 waits for a's build rather than starting its own.
  wait_for_a_waiter(store, clock, "/nix/store/a.drv");
  EXPECT_EQ(store.drv_build_status("/nix/store/a.drv", clock.now_ms())->waiters, 1);
  nix.release = true;
  t1.join();
  t2.join();
  EXPECT_EQ(first.state, JobState::kSucceeded);
  EXPECT_FALSE(first.shared);
  EXPECT_EQ(second.state, JobState::kSucceeded);
  EXPECT_TRUE(second.shared);
  EXPECT_EQ(std::count(nix.builds.begin(), nix.builds.end(), "/nix/store/a.drv"), 1);  // built once
  EXPECT_EQ((**store.get_job("a2")).state, JobState::kSucceeded);
  auto log = *store.get_log("a2");
  EXPECT_NE(log.find("built once for every job that needed it, by checks.x86_64-linux.a (job a)"), std::string::npos) << log;
  EXPECT_NE(log.find("a> compiling"), std::string::npos) << log;
  // Both evals' dependents were released.
  EXPECT_EQ(build_requests(), std::vector<std::string>{"b"});
}

TEST_F(Build, ACancelledEvalsBuildGoesOnWhileAnotherEvalWaitsForIt) {
  add_second_eval(store);
  cfg.cancel_poll_interval = std::chrono::milliseconds(10);
  nix.held = {"/nix/store/a.drv"};
  BuildOutcome first, second;
  std::thread t1([&] { first = build("a"); });
  wait_until_building(nix, "/nix/store/a.drv");
  std::thread t2([&] { second = build_in(store, bus, nix, clock, cfg, "e2", "a2"); });
  wait_for_a_waiter(store, clock, "/nix/store/a.drv");
  ASSERT_TRUE(store.cancel_eval("e1", "superseded by cccc", 5).has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // several watch rounds
  nix.release = true;
  t1.join();
  t2.join();
  EXPECT_EQ(first.state, JobState::kSucceeded);  // not killed: e2 still needed it
  EXPECT_EQ(second.state, JobState::kSucceeded);
  EXPECT_EQ((**store.get_eval("e1")).state, state::EvalState::kCancelled);
}

TEST_F(Build, AClaimWhoseBuilderDiedRunsOutAndTheBuildHappensHere) {
  // A builder claimed a.drv and died: nobody renews its lease.
  ASSERT_TRUE(*store.claim_drv_build("/nix/store/a.drv", "ghost", clock.now_ms(), 1000));
  clock.advance_ms(1001);
  auto o = build("a");
  EXPECT_EQ(o.state, JobState::kSucceeded);
  EXPECT_FALSE(o.shared);
  EXPECT_EQ(nix.builds, std::vector<std::string>{"/nix/store/a.drv"});
}

TEST_F(Build, ARedeliveredJobWhoseBuilderDiedBuildsAtOnceDespiteTheOldClaim) {
  // The first builder started a, claimed its derivation and died.
  ASSERT_EQ(*store.start_job("a", clock.now_ms()), JobState::kBuilding);
  ASSERT_TRUE(*store.claim_drv_build("/nix/store/a.drv", "a", clock.now_ms(), 60000));
  // The redelivery (another builder) does not wait for that claim: it is a's own.
  auto o = build("a", 2);
  EXPECT_EQ(o.state, JobState::kSucceeded);
  EXPECT_EQ(nix.builds, std::vector<std::string>{"/nix/store/a.drv"});
  EXPECT_EQ((**store.get_job("a")).attempts, 2);
  EXPECT_NE(store.get_log("a")->find("build attempt 2"), std::string::npos);
}

// Redis restarting as a build ends: the end is stored once it is back, in
// the same delivery, and the derivation is not built a second time.
TEST_F(Build, AnEndTheStoreCannotTakeYetIsStoredWhenItIsBackWithoutBuildingAgain) {
  nix.held.insert("/nix/store/a.drv");  // ends (succeeded) once released
  cfg.store_retry_interval = std::chrono::milliseconds(10);
  BuildOutcome o;
  std::thread worker([&] { o = build("a"); });
  while (nix.builds.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  store.set_down(true);
  nix.release = true;  // nix is done; its result has nowhere to go
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  store.set_down(false);
  worker.join();
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck) << o.disposition.reason;
  EXPECT_EQ((**store.get_job("a")).state, JobState::kSucceeded);
  EXPECT_EQ(nix.builds.size(), 1u);
  EXPECT_EQ(build_requests(), std::vector<std::string>{"b"});
}

TEST_F(Build, AnEndTheStoreNeverTakesIsHandedBackAfterStoreRetryFor) {
  cfg.store_retry_for = std::chrono::milliseconds(50);
  cfg.store_retry_interval = std::chrono::milliseconds(10);
  nix.held.insert("/nix/store/a.drv");
  BuildOutcome o;
  std::thread worker([&] { o = build("a"); });
  while (nix.builds.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  store.set_down(true);
  nix.release = true;
  worker.join();
  store.set_down(false);
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kNak);
  EXPECT_EQ((**store.get_job("a")).state, JobState::kBuilding);
}

TEST_F(Build, UnknownJobIsAcknowledged) {
  auto o = build("nope");
  EXPECT_EQ(o.result, "unknown_job");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
}

// Output printed before nix goes quiet reaches the log store while the
// build still runs (readers follow it; a builder that dies loses little).
TEST_F(Build, OutputReachesTheLogWhileNixIsSilent) {
  nix.held.insert("/nix/store/a.drv");
  nix.build_logs["/nix/store/a.drv"] = "a> compiling\n";
  cfg.log_flush_interval = std::chrono::milliseconds(50);
  cfg.cancel_poll_interval = std::chrono::milliseconds(20);
  std::thread t([&] { build("a"); });
  std::string seen;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (seen.find("a> compiling") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    seen = store.get_log("a").value_or("");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ((**store.get_job("a")).state, JobState::kBuilding);  // still building
  nix.release = true;
  t.join();
  EXPECT_NE(seen.find("a> compiling"), std::string::npos);
  EXPECT_EQ((**store.get_job("a")).state, JobState::kSucceeded);
}

TEST(FeatureQueues, OnlySetsThisBuilderOffersAllOfForItsSystem) {
  const std::vector<std::string> stored = {"flurry.build.x86_64-linux", "flurry.build.x86_64-linux.kvm+nixos-test",
                                           "flurry.build.x86_64-linux.big-parallel", "flurry.build.x86_64-linux.cuda",
                                           "flurry.build.aarch64-linux.kvm", "flurry.build.x86_64-linuxx.kvm"};
  auto queues = feature_queues(stored, "x86_64-linux", subjects::feature_tokens({"nixos-test", "kvm", "big-parallel"}));
  EXPECT_EQ(queues, (std::vector<std::vector<std::string>>{{"kvm", "nixos-test"}, {"big-parallel"}}));
  EXPECT_TRUE(feature_queues(stored, "x86_64-linux", {}).empty());
  EXPECT_TRUE(feature_queues(stored, "x86_64-linux", {"kvm"}).empty());  // kvm alone does not serve kvm+nixos-test
}

// Issue 13: Redis answered the build's end and then lost it (restarted from
// an AOF without its last writes: the job is queued again there). What the
// builder publishes is the end it stored, never what a read finds later.
TEST_F(Build, AnEndTheStoreLostAfterAnsweringIsStillPublishedAsTheEnd) {
  store.checkpoint();  // a queued, as before the build
  store.roll_back_after("finish_job");
  auto o = build("a");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  ASSERT_EQ((**store.get_job("a")).state, JobState::kQueued);  // the store lost the start and the end
  auto finished = bus.published("flurry.job.finished");
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(msg::decode_job_finished(finished[0].data)->state, JobState::kSucceeded);
  auto statuses = bus.published("flurry.status.");
  ASSERT_FALSE(statuses.empty());
  EXPECT_EQ(msg::decode_status_event(statuses.back().data)->state, msg::StatusState::kSuccess);
  EXPECT_EQ(build_requests(), std::vector<std::string>{"b"});
}
