#include "evaluate.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "flurry/bus/testing/memory_bus.hpp"
#include "flurry/core/text.hpp"
#include "flurry/git/testing/fake_git.hpp"
#include "flurry/nix/testing/fake_nix_runner.hpp"
#include "flurry/pipeline/publish.hpp"
#include "flurry/state/ids.hpp"
#include "flurry/state/testing/memory_catalog.hpp"
#include "flurry/state/testing/memory_store.hpp"

using namespace flurry;
using namespace flurry::evaluator;
using msg::JobState;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

namespace {

using git::testing::FakeGit;

// A bus that stops storing messages after `allowed` publishes, like a
// process that dies (or loses NATS) half way through publishing.
class DyingBus final : public bus::Bus {
 public:
  explicit DyingBus(bus::Bus& inner, int allowed) : inner_(inner), allowed_(allowed) {}
  Result<void> publish(const bus::OutMessage& m) override {
    if (allowed_-- <= 0) return fail(Error::transient("nats: connection closed"));
    return inner_.publish(m);
  }
  Result<void> consume(const bus::ConsumerSpec& s, bus::Handler h, const std::atomic<bool>& stop) override { return inner_.consume(s, h, stop); }
  bool healthy() override { return allowed_ > 0; }

 private:
  bus::Bus& inner_;
  int allowed_;
};

std::multiset<std::pair<std::string, std::string>> contents(const bus::testing::MemoryBus& b) {
  std::multiset<std::pair<std::string, std::string>> out;
  for (const auto& m : b.published()) out.insert({m.subject, m.data});
  return out;
}

nix::AttrResult ok(const std::string& name, const std::string& system = "x86_64-linux") {
  nix::AttrResult a;
  a.path = {"checks", system, name};
  a.drv_path = "/nix/store/" + name + ".drv";
  a.name = name;
  a.system = system;
  a.outputs = {{"out", "/nix/store/" + name + "-out"}};
  return a;
}
nix::AttrResult bad(const std::string& name, const std::string& error) {
  nix::AttrResult a;
  a.path = {"checks", "x86_64-linux", name};
  a.error = error;
  return a;
}

class Evaluate : public ::testing::Test {
 protected:
  void SetUp() override {
    change.id = "github:d1";
    change.kind = "push";
    change.repo = {"github", "octo", "hello", "https://example.invalid/octo/hello.git", "", "main"};
    change.ref = "refs/heads/main";
    change.branch = "main";
    change.rev = std::string(40, 'a');
    // ok, fail, dep (on ok, through an intermediate drv), depOnFail, throws.
    nix.eval_result = nix::EvalResult{
        {ok("ok"), ok("fail"), ok("dep"), ok("depOnFail"), bad("throws", "error: intentional\n\n       at x:1:1:")}, {"warning: something"}};
    nix.graph["/nix/store/dep.drv"] = {"/nix/store/helper.drv"};
    nix.graph["/nix/store/helper.drv"] = {"/nix/store/ok.drv"};
    nix.graph["/nix/store/depOnFail.drv"] = {"/nix/store/fail.drv"};
  }
  EvalOutcome run(std::uint64_t delivered = 1) { return handle_change(change, delivered, {bus, store, nix, git, clock}, cfg); }
  std::string id(const std::string& name) { return state::job_id_for(eval_id(), "checks.x86_64-linux." + name); }
  std::string eval_id() { return state::eval_id_for_change(change.id); }
  std::map<std::string, std::vector<msg::StatusEvent>> statuses() {
    std::map<std::string, std::vector<msg::StatusEvent>> out;
    for (const auto& m : bus.published("flurry.status.github")) {
      auto s = *msg::decode_status_event(m.data);
      out[s.context].push_back(s);
    }
    return out;
  }
  std::set<std::string> build_requests() {
    std::set<std::string> out;
    for (const auto& m : bus.published("flurry.build.")) out.insert(msg::decode_build_request(m.data)->job_id);
    return out;
  }
  std::set<std::string> finished_jobs() {
    std::set<std::string> out;
    for (const auto& m : bus.published("flurry.job.finished")) out.insert(msg::decode_job_finished(m.data)->job_id);
    return out;
  }
  JobState state_of(const std::string& name) { return (**store.get_job(id(name))).state; }
  // What one clean run of `change` publishes, on a bus and store of its own.
  std::multiset<std::pair<std::string, std::string>> clean_run() {
    bus::testing::MemoryBus clean_bus;
    state::testing::MemoryStore clean_store;
    nix::testing::FakeNixRunner clean_nix;
    clean_nix.eval_result = nix.eval_result;
    clean_nix.graph = nix.graph;
    EXPECT_EQ(handle_change(change, 1, {clean_bus, clean_store, clean_nix, git, clock}, cfg).result, "evaluated");
    return contents(clean_bus);
  }

  msg::ChangeEvent change;
  bus::testing::MemoryBus bus;
  state::testing::MemoryStore store;
  nix::testing::FakeNixRunner nix;
  FakeGit git;
  ManualClock clock;
  EvaluatorConfig cfg{.work_dir = "/work", .max_deliver = 3};
};

}  // namespace

TEST_F(Evaluate, CreatesOneJobPerAttributeWithDependenciesAndReleasesTheRoots) {
  auto o = run();
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_EQ(o.result, "evaluated");
  EXPECT_EQ(o.jobs, 5);
  EXPECT_EQ(o.eval_errors, 1);
  EXPECT_EQ(o.ready, 2);
  EXPECT_EQ(o.warnings, std::vector<std::string>{"warning: something"});
  EXPECT_EQ(state_of("ok"), JobState::kQueued);
  EXPECT_EQ(state_of("dep"), JobState::kQueued);
  EXPECT_EQ(state_of("throws"), JobState::kEvalFailed);
  EXPECT_EQ((**store.get_job(id("throws"))).error, "error: intentional\n\n       at x:1:1:");
  EXPECT_EQ((**store.get_job(id("ok"))).drv_path, "/nix/store/ok.drv");
  EXPECT_EQ((**store.get_job(id("ok"))).outputs.at("out"), "/nix/store/ok-out");
  EXPECT_EQ((**store.get_job(id("ok"))).name, "ok");
  EXPECT_EQ((**store.get_job(id("ok"))).system, "x86_64-linux");
  EXPECT_EQ((**store.get_job(id("ok"))).cache_status, "notBuilt");
  // Only ok and fail are ready; dep waits for ok, depOnFail for fail.
  EXPECT_EQ(build_requests(), (std::set<std::string>{id("ok"), id("fail")}));
  auto eval = **store.get_eval(eval_id());
  EXPECT_EQ(eval.state, state::EvalState::kBuilding);
  EXPECT_EQ(eval.jobs_total, 5);
  EXPECT_EQ(eval.warnings, std::vector<std::string>{"warning: something"});  // kept on the eval record
  auto t = *store.finish_job(id("ok"), JobState::kSucceeded, "", 2);
  EXPECT_EQ(t.ready, std::vector<std::string>{id("dep")});
  auto t2 = *store.finish_job(id("fail"), JobState::kFailed, "exit 3", 3);
  EXPECT_EQ(t2.dependency_failed, std::vector<std::string>{id("depOnFail")});
  // The mirror path is derived safely from the repo.
  ASSERT_EQ(git.requests.size(), 1u);
  EXPECT_EQ(git.requests[0].mirror_dir, "/work/repos/github/octo/hello.git");
  EXPECT_EQ(git.requests[0].rev, change.rev);
  EXPECT_EQ(git.requests[0].ref, "refs/heads/main");
  ASSERT_EQ(nix.evals.size(), 1u);
  EXPECT_EQ(nix.evals[0].attr_path, (std::vector<std::string>{"checks", "x86_64-linux"}));
  EXPECT_EQ(nix.evals[0].flake_ref, "git+file:///mirror?ref=refs/flurry/" + change.rev + "&rev=" + change.rev);
}

TEST_F(Evaluate, AJobWaitsForItsNearestJobAncestorsOnly) {
  // c -> b -> a through non-job derivations: c waits for b, b for a.
  nix.eval_result = nix::EvalResult{{ok("a"), ok("b"), ok("c")}, {}};
  nix.graph = {{"/nix/store/c.drv", {"/nix/store/x.drv"}}, {"/nix/store/x.drv", {"/nix/store/b.drv", "/nix/store/y.drv"}},
               {"/nix/store/b.drv", {"/nix/store/a.drv"}}, {"/nix/store/y.drv", {"/nix/store/a.drv"}}};
  run();
  EXPECT_EQ(build_requests(), std::set<std::string>{id("a")});
  EXPECT_EQ((*store.finish_job(id("a"), JobState::kSucceeded, "", 2)).ready, std::vector<std::string>{id("b")});
  EXPECT_EQ((*store.finish_job(id("b"), JobState::kSucceeded, "", 3)).ready, std::vector<std::string>{id("c")});
}

TEST_F(Evaluate, AnAttributeThatFailedToEvaluateHoldsNothingElseBack) {
  nix.eval_result = nix::EvalResult{{bad("throws", "error: boom"), ok("user")}, {}};
  // A failed attribute has no derivation, so nothing can depend on it
  // through the graph: user is simply built.
  run();
  EXPECT_EQ(state_of("user"), JobState::kQueued);
  EXPECT_EQ(build_requests(), std::set<std::string>{id("user")});
}

TEST_F(Evaluate, PublishesPendingTerminalAndEvalStatusesInOrder) {
  run();
  auto s = statuses();
  ASSERT_EQ(s["flurry/eval"].size(), 2u);
  EXPECT_EQ(s["flurry/eval"][0].state, msg::StatusState::kPending);
  EXPECT_EQ(s["flurry/eval"][0].description, "Evaluating");
  EXPECT_EQ(s["flurry/eval"][1].state, msg::StatusState::kSuccess);
  EXPECT_EQ(s["flurry/eval"][1].description, "5 jobs, 1 failed to evaluate, 1 warning");
  EXPECT_GT(s["flurry/eval"][1].at_us, s["flurry/eval"][0].at_us);
  for (const auto* name : {"ok", "fail", "dep", "depOnFail"}) {
    auto& ctx = s[std::string("flurry/checks.x86_64-linux.") + name];
    ASSERT_EQ(ctx.size(), 1u) << name;
    EXPECT_EQ(ctx[0].state, msg::StatusState::kPending) << name;
    EXPECT_EQ(ctx[0].rev, change.rev);
  }
  auto& throws = s["flurry/checks.x86_64-linux.throws"];
  ASSERT_EQ(throws.size(), 1u);
  EXPECT_EQ(throws[0].state, msg::StatusState::kFailure);
  EXPECT_EQ(throws[0].description, "Evaluation failed: error: intentional");  // first line only
  // The eval_failed job is finished (the uploader and others hear of it).
  EXPECT_EQ(finished_jobs(), std::set<std::string>{id("throws")});
  EXPECT_TRUE(bus.published("flurry.eval.finished").empty());
  // The eval's first status precedes every job status.
  auto all = bus.published("flurry.status.");
  EXPECT_EQ(msg::decode_status_event(all.front().data)->context, "flurry/eval");
  EXPECT_EQ(msg::decode_status_event(all.back().data)->context, "flurry/eval");
}

TEST_F(Evaluate, AlreadyBuiltOutputsAreSkippedAndTheirDependentsReleased) {
  nix.valid = {"/nix/store/ok-out"};
  auto o = run();
  EXPECT_EQ(o.skipped, 1);
  EXPECT_EQ(state_of("ok"), JobState::kSkipped);
  EXPECT_EQ(build_requests(), (std::set<std::string>{id("dep"), id("fail")}));
  EXPECT_EQ(finished_jobs(), (std::set<std::string>{id("ok"), id("throws")}));
  EXPECT_EQ(statuses()["flurry/checks.x86_64-linux.ok"].back().state, msg::StatusState::kSuccess);
}

TEST_F(Evaluate, AnEvalWhoseJobsAllEndAtOnceFinishesAtOnce) {
  nix.eval_result = nix::EvalResult{{ok("ok"), bad("throws", "error: x")}, {}};
  nix.valid = {"/nix/store/ok-out"};
  run();
  auto e = **store.get_eval(eval_id());
  EXPECT_EQ(e.state, state::EvalState::kFailed);
  auto fin = bus.published("flurry.eval.finished");
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(msg::decode_eval_finished(fin[0].data)->jobs_failed, 1);
  // eval.finished comes after the eval's success status.
  EXPECT_EQ(msg::decode_status_event(bus.published("flurry.status.").back().data)->context, "flurry/eval");
  EXPECT_EQ(bus.published().back().subject, "flurry.eval.finished");
}

TEST_F(Evaluate, FlakeThatCannotBeEvaluatedFailsTheEvalWithNixsError) {
  nix.eval_result = fail(Error::rejected("error: syntax error, unexpected '}'\n\n       at /nix/store/x-source/flake.nix:3:1:"));
  auto o = run();
  EXPECT_EQ(o.result, "eval_failed");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  auto e = **store.get_eval(eval_id());
  EXPECT_EQ(e.state, state::EvalState::kFailed);
  EXPECT_EQ(e.error, "error: syntax error, unexpected '}'\n\n       at /nix/store/x-source/flake.nix:3:1:");
  auto s = statuses();
  ASSERT_EQ(s["flurry/eval"].size(), 2u);
  EXPECT_EQ(s["flurry/eval"].back().state, msg::StatusState::kFailure);
  EXPECT_EQ(s["flurry/eval"].back().description, "error: syntax error, unexpected '}'");
  auto fin = bus.published("flurry.eval.finished");
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(msg::decode_eval_finished(fin[0].data)->state, "failed");
  EXPECT_TRUE(bus.published("flurry.build.").empty());
  EXPECT_TRUE(store.list_jobs(eval_id())->empty());
}

TEST_F(Evaluate, RedeliveryRepublishesWithoutEvaluatingAgain) {
  run();
  auto published = bus.published().size();
  auto o = run(2);
  EXPECT_EQ(o.result, "replayed");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_EQ(o.jobs, 5);
  EXPECT_EQ(nix.evals.size(), 1u);
  EXPECT_EQ(git.requests.size(), 1u);
  EXPECT_EQ(bus.published().size(), published);  // every republish was a duplicate
  // Also after builders moved on: the replay republishes what the jobs'
  // standing implies now. `dep` was released when `ok` succeeded: its build
  // request (the one the builder publishes, same msg id) is the only new one.
  ASSERT_TRUE(store.start_job(id("ok"), 5).has_value());
  ASSERT_TRUE(store.finish_job(id("ok"), JobState::kSucceeded, "", 6).has_value());
  bus.clear();  // forget the stored messages but keep the dedupe ids
  EXPECT_EQ(run(3).result, "replayed");
  ASSERT_EQ(bus.published().size(), 1u);
  EXPECT_EQ(build_requests(), std::set<std::string>{id("dep")});
}

TEST_F(Evaluate, ACrashWhileRecordingBatchesIsCompletedByEvaluatingAgain) {
  const auto expected = clean_run();
  // First delivery: the first batches are recorded, then publishing dies
  // half way, before the job set is complete.
  nix.stream_batch = 2;
  DyingBus dying(bus, 4);
  auto o = handle_change(change, 1, {dying, store, nix, git, clock}, cfg);
  EXPECT_EQ(o.result, "retry");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kNak);
  EXPECT_EQ((**store.get_eval(eval_id())).state, state::EvalState::kEvaluating);
  EXPECT_GT(store.list_jobs(eval_id())->size(), 0u);
  EXPECT_LT(bus.published().size(), expected.size());
  // The redelivery evaluates again; recorded jobs are not added twice and
  // what was not published is.
  auto again = run(2);
  EXPECT_EQ(again.result, "evaluated");
  EXPECT_EQ(again.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_EQ(nix.evals.size(), 2u);
  EXPECT_EQ((**store.get_eval(eval_id())).jobs_total, 5);
  EXPECT_EQ(contents(bus), expected);
}

// Issue 13, the case the fault run met: a delivery records a batch with a
// job queued and dies before the job set is complete; meanwhile another
// eval's job builds the same derivation, so the redelivery's evaluation
// finds the outputs valid and would call the job skipped. The store keeps
// it queued (a job that exists is not added again): it must be built like
// any queued job, and no job.finished may say it ended, let alone that it
// is queued.
TEST_F(Evaluate, AJobRecordedQueuedIsBuiltEvenIfARedeliveryFindsItsOutputsValid) {
  nix.stream_batch = 2;  // ok and fail first
  DyingBus dying(bus, 4);
  EXPECT_EQ(handle_change(change, 1, {dying, store, nix, git, clock}, cfg).result, "retry");
  ASSERT_EQ(state_of("ok"), JobState::kQueued);
  nix.valid.insert("/nix/store/ok-out");  // built by another eval's job of the same derivation

  EXPECT_EQ(run(2).result, "evaluated");
  EXPECT_EQ(state_of("ok"), JobState::kQueued);
  EXPECT_TRUE(build_requests().count(id("ok")));
  std::map<std::string, JobState> finished;
  for (const auto& m : bus.published("flurry.job.finished")) {
    auto f = *msg::decode_job_finished(m.data);
    EXPECT_TRUE(msg::is_terminal(f.state)) << f.attr << ": job.finished says " << msg::to_string(f.state);
    finished[f.job_id] = f.state;
  }
  EXPECT_FALSE(finished.count(id("ok")));
  for (const auto& [context, list] : statuses()) {
    if (context == "flurry/checks.x86_64-linux.ok") {
      for (const auto& s : list) EXPECT_EQ(s.state, msg::StatusState::kPending);
    }
  }
  // Its builder ends it; then its one job.finished says how.
  auto t = *store.finish_job(id("ok"), JobState::kSucceeded, "", 50);
  ASSERT_TRUE(pipeline::publish_transition({bus, store}, eval_id(), t, {}).has_value());
  int ok_finished = 0;
  for (const auto& m : bus.published("flurry.job.finished")) {
    auto f = *msg::decode_job_finished(m.data);
    if (f.job_id != id("ok")) continue;
    ++ok_finished;
    EXPECT_EQ(f.state, JobState::kSucceeded);
  }
  EXPECT_EQ(ok_finished, 1);
}

TEST_F(Evaluate, ACrashAfterTheJobSetIsCompleteIsReplayedWithoutEvaluating) {
  const auto expected = clean_run();
  // Everything but the eval's final status gets out.
  DyingBus dying(bus, static_cast<int>(expected.size()) - 1);
  EXPECT_EQ(handle_change(change, 1, {dying, store, nix, git, clock}, cfg).result, "retry");
  EXPECT_EQ((**store.get_eval(eval_id())).state, state::EvalState::kBuilding);
  auto again = run(2);
  EXPECT_EQ(again.result, "replayed");
  EXPECT_EQ(nix.evals.size(), 1u);
  EXPECT_EQ(contents(bus), expected);
}

TEST_F(Evaluate, BatchesAreRecordedAsTheyArriveWithEdgesToEarlierBatches) {
  // b depends on a through the graph; a arrives in the first batch, b in
  // the second, c (which a later job d depends on) in the third.
  nix.eval_result = nix::EvalResult{{ok("a"), ok("b"), ok("c"), ok("d")}, {}};
  nix.graph = {{"/nix/store/b.drv", {"/nix/store/a.drv"}}, {"/nix/store/d.drv", {"/nix/store/c.drv"}}};
  nix.stream_batch = 1;
  auto o = run();
  EXPECT_EQ(o.result, "evaluated");
  EXPECT_EQ(o.batches, 4);
  EXPECT_EQ(o.jobs, 4);
  EXPECT_EQ(build_requests(), (std::set<std::string>{id("a"), id("c")}));
  EXPECT_EQ((**store.get_job(id("b"))).deps_pending, 1);
  EXPECT_EQ((*store.finish_job(id("a"), JobState::kSucceeded, "", 2)).ready, std::vector<std::string>{id("b")});
  // A job's status is pending from its own batch on.
  EXPECT_EQ(statuses()["flurry/checks.x86_64-linux.d"].front().state, msg::StatusState::kPending);
}

TEST_F(Evaluate, AnEvalFailingAfterSomeBatchesCancelsTheirQueuedBuildsAndFails) {
  cfg.systems = {"x86_64-linux", "aarch64-linux"};
  nix.eval_results["checks.aarch64-linux"] = fail(Error::rejected("evaluation of checks.aarch64-linux timed out after 600s"));
  auto o = run();
  EXPECT_EQ(o.result, "eval_failed");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  // x86_64-linux's jobs had been recorded and released; their queued
  // builds are dropped.
  EXPECT_EQ(state_of("ok"), JobState::kCancelled);
  auto e = **store.get_eval(eval_id());
  EXPECT_EQ(e.state, state::EvalState::kFailed);
  EXPECT_EQ(e.error, "evaluation of checks.aarch64-linux timed out after 600s");
  auto s = statuses();
  EXPECT_EQ(s["flurry/eval"].back().state, msg::StatusState::kFailure);
  EXPECT_EQ(s["flurry/eval"].back().description, "evaluation of checks.aarch64-linux timed out after 600s");
  EXPECT_EQ(bus.published("flurry.eval.finished").size(), 1u);
  EXPECT_EQ(msg::decode_eval_finished(bus.published("flurry.eval.finished")[0].data)->state, "failed");
}

// The crash window between recording the failure and posting its status:
// the redelivery posts it (and does not evaluate again).
TEST_F(Evaluate, ACrashBeforeTheFailureOfALaterSystemIsPostedIsFinishedOnRedelivery) {
  cfg.systems = {"x86_64-linux", "aarch64-linux"};
  nix.eval_results["checks.aarch64-linux"] = fail(Error::rejected("evaluation of checks.aarch64-linux timed out after 600s"));
  // A run on a bus and store of its own counts the publishes; the failure
  // status is the last. The real bus dies just before it.
  bus::testing::MemoryBus scratch_bus;
  state::testing::MemoryStore scratch_store;
  ASSERT_EQ(handle_change(change, 1, {scratch_bus, scratch_store, nix, git, clock}, cfg).result, "eval_failed");
  const auto all = static_cast<int>(scratch_bus.published().size());
  DyingBus dying(bus, all - 1);
  auto first = handle_change(change, 1, {dying, store, nix, git, clock}, cfg);
  EXPECT_EQ(first.disposition.kind, bus::Disposition::Kind::kNak);
  EXPECT_TRUE((**store.get_eval(eval_id())).cancelled);
  EXPECT_NE(statuses()["flurry/eval"].back().state, msg::StatusState::kFailure);
  const auto evals_before = nix.evals.size();
  auto again = run(2);
  EXPECT_EQ(again.result, "replayed");
  EXPECT_EQ(again.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_EQ(nix.evals.size(), evals_before);  // not evaluated again
  auto s = statuses();
  EXPECT_EQ(s["flurry/eval"].back().state, msg::StatusState::kFailure);
  EXPECT_EQ(s["flurry/eval"].back().description, "evaluation of checks.aarch64-linux timed out after 600s");
  EXPECT_EQ((**store.get_eval(eval_id())).state, state::EvalState::kFailed);
  EXPECT_EQ(bus.published("flurry.eval.finished").size(), 1u);
}

TEST_F(Evaluate, EvaluationsOfDifferentProjectsRunAtTheSameTime) {
  // Each evaluation waits inside nix until the other is inside too: with a
  // lock around evaluation (buildbot-nix's global one), the first would
  // wait in vain.
  std::mutex mu;
  std::condition_variable cv;
  int inside = 0;
  std::atomic<bool> met{true};
  nix.on_eval = [&](const nix::EvalRequest&) {
    std::unique_lock lock(mu);
    ++inside;
    cv.notify_all();
    if (!cv.wait_for(lock, std::chrono::seconds(20), [&] { return inside >= 2; })) met = false;
  };
  auto other = change;
  other.id = "github:o1";
  other.repo = {"github", "octo", "other", "https://example.invalid/octo/other.git", "", "main"};
  FakeGit git1, git2;
  EvalOutcome o1, o2;
  std::thread t1([&] { o1 = handle_change(change, 1, {bus, store, nix, git1, clock}, cfg); });
  std::thread t2([&] { o2 = handle_change(other, 1, {bus, store, nix, git2, clock}, cfg); });
  t1.join();
  t2.join();
  EXPECT_TRUE(met.load());
  EXPECT_EQ(o1.result, "evaluated");
  EXPECT_EQ(o2.result, "evaluated");
}

TEST_F(Evaluate, JobsKnowWhetherABinaryCacheHoldsTheirOutputs) {
  cfg.caches = {"https://user:hunter22@cache.example", "file:///var/cache/flurry"};
  nix.caches["file:///var/cache/flurry"] = {"/nix/store/ok-out"};
  run();
  auto ok_job = **store.get_job(id("ok"));
  EXPECT_EQ(ok_job.state, JobState::kQueued);  // still built: building substitutes
  EXPECT_EQ(ok_job.cache_status, "cached");
  EXPECT_EQ((**store.get_job(id("dep"))).cache_status, "notBuilt");
  EXPECT_EQ(statuses()["flurry/checks.x86_64-linux.ok"].front().description, "Queued (outputs are in a binary cache)");
  EXPECT_EQ(statuses()["flurry/checks.x86_64-linux.dep"].front().description, "Queued");
}

TEST_F(Evaluate, AnUnreachableCacheIsAWarningNotAFailure) {
  cfg.caches = {"https://user:hunter22@cache.example"};
  // As the runner reports it: without the URL's credentials.
  nix.cache_error = Error::transient("unable to download 'https://***@cache.example/nix-cache-info'");
  auto o = run();
  EXPECT_EQ(o.result, "evaluated");
  EXPECT_EQ((**store.get_job(id("ok"))).cache_status, "notBuilt");
  auto e = **store.get_eval(eval_id());
  ASSERT_EQ(e.warnings.size(), 2u);
  EXPECT_THAT(e.warnings, ::testing::Contains(HasSubstr("warning: binary cache https://***@cache.example could not be queried: "
                                                        "unable to download 'https://***@cache.example/nix-cache-info'")));
  for (const auto& w : e.warnings) EXPECT_THAT(w, ::testing::Not(HasSubstr("hunter22")));
}

TEST_F(Evaluate, ADerivationThatFailedBeforeIsACachedFailureWhenTheCacheIsOn) {
  ASSERT_TRUE(store.record_failed_build("/nix/store/fail.drv", {"old-job", "old-eval", "checks.x86_64-linux.fail",
                                                                "error: builder for '/nix/store/fail.drv' failed with exit code 3", 1})
                  .has_value());
  // Off by default: built again.
  auto off = change;
  off.id = "github:off";
  off.ref = "refs/heads/off";
  EXPECT_EQ(handle_change(off, 1, {bus, store, nix, git, clock}, cfg).result, "evaluated");
  EXPECT_EQ((**store.get_job(state::job_id_for(state::eval_id_for_change(off.id), "checks.x86_64-linux.fail"))).state, JobState::kQueued);
  // On for the service: the failed derivation is not built, its dependent
  // ends dependency_failed, everything else builds.
  cfg.cache_failed_builds = true;
  run();
  auto fail_job = **store.get_job(id("fail"));
  EXPECT_EQ(fail_job.state, JobState::kCachedFailure);
  EXPECT_EQ(fail_job.error, "failed before as checks.x86_64-linux.fail in eval old-eval (job old-job): error: builder for "
                            "'/nix/store/fail.drv' failed with exit code 3");
  EXPECT_EQ(state_of("depOnFail"), JobState::kDependencyFailed);
  EXPECT_EQ(state_of("ok"), JobState::kQueued);
  EXPECT_EQ(build_requests().count(id("fail")), 0u);
  auto s = statuses()["flurry/checks.x86_64-linux.fail"];
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s.back().state, msg::StatusState::kFailure);
  EXPECT_THAT(s.back().description, HasSubstr("Not built: failed before as checks.x86_64-linux.fail in eval old-eval"));
}

TEST_F(Evaluate, AProjectCanTurnTheFailedBuildCacheOff) {
  ASSERT_TRUE(store.record_failed_build("/nix/store/fail.drv", {"old-job", "old-eval", "checks.x86_64-linux.fail", "boom", 1}).has_value());
  cfg.cache_failed_builds = true;
  git.files["flurry.toml"] = "cache_failed_builds = false\n";
  run();
  EXPECT_EQ(state_of("fail"), JobState::kQueued);
}

TEST_F(Evaluate, SystemsOfAnnouncedBuildersAreServedToo) {
  // Only x86_64-linux is configured; an aarch64 builder has announced itself.
  ASSERT_TRUE(store.register_builder({"mac:1", {"aarch64-linux"}, {}, 2, 0, clock.now_ms()}, 30000).has_value());
  nix.eval_result = nix::EvalResult{{ok("x"), ok("arm", "aarch64-linux"), ok("riscv", "riscv64-linux")}, {}};
  run();
  EXPECT_EQ(state_of("x"), JobState::kQueued);
  EXPECT_EQ((**store.get_job(state::job_id_for(eval_id(), "checks.aarch64-linux.arm"))).state, JobState::kQueued);
  EXPECT_EQ((**store.get_job(state::job_id_for(eval_id(), "checks.riscv64-linux.riscv"))).state, JobState::kUnsupportedSystem);
  // Once it stops announcing itself, its system is no longer served.
  clock.advance_ms(60000);
  auto later = change;
  later.id = "github:later";
  later.ref = "refs/heads/later";
  EXPECT_EQ(handle_change(later, 1, {bus, store, nix, git, clock}, cfg).result, "evaluated");
  EXPECT_EQ((**store.get_job(state::job_id_for(state::eval_id_for_change(later.id), "checks.aarch64-linux.arm"))).state,
            JobState::kUnsupportedSystem);
}

TEST_F(Evaluate, EvaluationSettingsReachNix) {
  cfg.attr_timeout = std::chrono::seconds(9);
  cfg.force_recurse = false;
  cfg.show_trace = true;
  run();
  ASSERT_EQ(nix.evals.size(), 1u);
  EXPECT_EQ(nix.evals[0].attr_timeout, std::chrono::seconds(9));
  EXPECT_FALSE(nix.evals[0].force_recurse);
  EXPECT_TRUE(nix.evals[0].show_trace);
  EXPECT_TRUE(nix.evals[0].on_attrs);  // streamed
}

TEST_F(Evaluate, AFailedEvalIsReplayedIdentically) {
  nix.eval_result = fail(Error::rejected("error: syntax error"));
  run();
  bus.clear();
  auto o = run(2);
  EXPECT_EQ(o.result, "replayed");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_EQ(nix.evals.size(), 1u);
  EXPECT_TRUE(bus.published().empty());  // same ids as before: all deduplicated
}

TEST_F(Evaluate, FetchFailureRetriesThenFailsTheEvalOnTheLastDelivery) {
  git.error = Error::transient("fatal: unable to access 'https://example.invalid/': could not resolve host");
  auto first = run(1);
  EXPECT_EQ(first.result, "retry");
  EXPECT_EQ(first.disposition.kind, bus::Disposition::Kind::kNak);
  EXPECT_EQ((**store.get_eval(eval_id())).state, state::EvalState::kEvaluating);
  EXPECT_TRUE(nix.evals.empty());
  EXPECT_EQ(run(2).disposition.kind, bus::Disposition::Kind::kNak);
  EXPECT_TRUE(bus.published("flurry.eval.finished").empty());
  auto last = run(3);
  EXPECT_EQ(last.result, "eval_failed");
  EXPECT_EQ(last.disposition.kind, bus::Disposition::Kind::kAck);
  auto e = **store.get_eval(eval_id());
  EXPECT_EQ(e.state, state::EvalState::kFailed);
  EXPECT_THAT(e.error, HasSubstr("could not resolve host"));
  EXPECT_THAT(e.error, HasSubstr("cannot fetch " + change.rev));
  EXPECT_EQ(statuses()["flurry/eval"].back().state, msg::StatusState::kFailure);
  EXPECT_EQ(bus.published("flurry.eval.finished").size(), 1u);
}

TEST_F(Evaluate, ARejectedCloneUrlFailsTheEvalAtOnce) {
  git.error = Error::rejected("clone URL scheme 'file' is not allowed (allowed: https, ssh, git)");
  auto o = run(1);
  EXPECT_EQ(o.result, "eval_failed");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_THAT((**store.get_eval(eval_id())).error, HasSubstr("scheme 'file' is not allowed"));
  EXPECT_TRUE(nix.evals.empty());
}

TEST_F(Evaluate, NixThatCannotRunIsRetriedThenFailsTheEvalOnTheLastDelivery) {
  nix.eval_result = fail(Error::transient("cannot run nix: No such file or directory"));
  EXPECT_EQ(run(1).disposition.kind, bus::Disposition::Kind::kNak);
  EXPECT_EQ((**store.get_eval(eval_id())).state, state::EvalState::kEvaluating);
  auto last = run(3);
  EXPECT_EQ(last.result, "eval_failed");
  EXPECT_EQ((**store.get_eval(eval_id())).state, state::EvalState::kFailed);
  EXPECT_EQ(bus.published("flurry.eval.finished").size(), 1u);
}

TEST_F(Evaluate, StoreOutageNaksAndLosesNothing) {
  store.set_down(true);
  auto o = run();
  EXPECT_EQ(o.result, "retry");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kNak);
  store.set_down(false);
  EXPECT_EQ(run(2).result, "evaluated");
  EXPECT_EQ(build_requests(), (std::set<std::string>{id("ok"), id("fail")}));
}

TEST_F(Evaluate, HostileAttributeNamesAreKeptExact) {
  const std::string name = "a.b c \"${x}\" \xC3\xA9";
  nix.eval_result = nix::EvalResult{{ok(name), bad("x\ny", "error: z")}, {}};
  run();
  auto jobs = *store.list_jobs(eval_id());
  ASSERT_EQ(jobs.size(), 2u);
  std::set<std::string> attrs;
  for (const auto& j : jobs) attrs.insert(j.attr);
  const std::string rendered = "checks.x86_64-linux.\"a.b c \\\"\\${x}\\\" \xC3\xA9\"";
  EXPECT_EQ(attrs, (std::set<std::string>{rendered, "checks.x86_64-linux.\"x\\ny\""}));
  auto job = **store.get_job(state::job_id_for(eval_id(), rendered));
  EXPECT_EQ(job.drv_path, "/nix/store/" + name + ".drv");
  auto s = statuses();
  EXPECT_EQ(s["flurry/" + rendered].size(), 1u);
  EXPECT_EQ(s["flurry/checks.x86_64-linux.\"x\\ny\""].size(), 1u);
  auto br = bus.published("flurry.build.x86_64-linux");
  ASSERT_EQ(br.size(), 1u);
  EXPECT_EQ(msg::decode_build_request(br[0].data)->attr, rendered);
}

TEST_F(Evaluate, EverySystemIsEvaluatedAndASystemWithoutChecksIsSkipped) {
  cfg.systems = {"x86_64-linux", "aarch64-linux", "riscv64-linux"};
  nix.eval_results["checks.x86_64-linux"] = nix::EvalResult{{ok("ok")}, {}};
  nix.eval_results["checks.aarch64-linux"] = nix::EvalResult{{ok("ok", "aarch64-linux")}, {}};
  nix.eval_results["checks.riscv64-linux"] =
      fail(Error::rejected("error: flake 'git+file:///mirror' does not provide attribute 'packages.x86_64-linux.checks.riscv64-linux', "
                           "'legacyPackages.x86_64-linux.checks.riscv64-linux' or 'checks.riscv64-linux'"));
  auto o = run();
  EXPECT_EQ(o.result, "evaluated");
  EXPECT_EQ(o.jobs, 2);
  EXPECT_EQ(nix.evals.size(), 3u);
  EXPECT_EQ(bus.published("flurry.build.x86_64-linux").size(), 1u);
  EXPECT_EQ(bus.published("flurry.build.aarch64-linux").size(), 1u);
  EXPECT_TRUE(store.get_job(state::job_id_for(eval_id(), "checks.aarch64-linux.ok"))->has_value());
}

TEST_F(Evaluate, OtherErrorsOfOneSystemFailTheWholeEval) {
  cfg.systems = {"x86_64-linux", "aarch64-linux"};
  nix.eval_results["checks.aarch64-linux"] = fail(Error::rejected("error: infinite recursion encountered"));
  auto o = run();
  EXPECT_EQ(o.result, "eval_failed");
  EXPECT_EQ((**store.get_eval(eval_id())).error, "error: infinite recursion encountered");
}

TEST_F(Evaluate, AnEmptySetEndsTheEvalSuccessfullyAtOnce) {
  nix.eval_result = nix::EvalResult{};
  auto o = run();
  EXPECT_EQ(o.result, "evaluated");
  EXPECT_EQ(o.jobs, 0);
  EXPECT_EQ((**store.get_eval(eval_id())).state, state::EvalState::kSucceeded);
  EXPECT_EQ(statuses()["flurry/eval"].back().description, "0 jobs");
  EXPECT_EQ(bus.published("flurry.eval.finished").size(), 1u);
  EXPECT_EQ(run(2).result, "replayed");
  EXPECT_EQ(bus.published("flurry.eval.finished").size(), 1u);
}

TEST(PlanJobs, KeepsOnlyTheNearestJobAncestors) {
  // c -> b -> a (all jobs): c depends on b only.
  std::vector<nix::AttrResult> attrs = {ok("a"), ok("b"), ok("c")};
  nix::DerivationGraph graph = {{"/nix/store/c.drv", {{"/nix/store/b.drv"}}}, {"/nix/store/b.drv", {{"/nix/store/a.drv"}}}};
  auto jobs = plan_jobs("e", attrs, graph, StoreFacts{.invalid = {"/nix/store/a-out", "/nix/store/b-out", "/nix/store/c-out"}});
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_TRUE(jobs[0].deps.empty());
  EXPECT_EQ(jobs[1].deps, std::vector<std::string>{jobs[0].id});
  EXPECT_EQ(jobs[2].deps, std::vector<std::string>{jobs[1].id});
}

TEST(PlanJobs, OutputsWithoutAKnownPathAreNeverSkipped) {
  auto a = ok("ca");
  a.outputs = {{"out", ""}};
  auto jobs = plan_jobs("e", {a}, {}, StoreFacts{});
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].state, JobState::kQueued);
  EXPECT_EQ(jobs[0].cache_status, "notBuilt");
}

TEST(PlanJobs, CacheStatusIsLocalCachedOrNotBuilt) {
  auto local = ok("local"), cached = ok("cached"), half = ok("half"), none = ok("none");
  half.outputs["dev"] = "/nix/store/half-dev";
  StoreFacts facts{.invalid = {"/nix/store/cached-out", "/nix/store/half-out", "/nix/store/half-dev", "/nix/store/none-out"},
                   .cached = {"/nix/store/cached-out", "/nix/store/half-out"}};
  auto jobs = plan_jobs("e", {local, cached, half, none, bad("broken", "error: x")}, {}, facts);
  ASSERT_EQ(jobs.size(), 5u);
  EXPECT_EQ(jobs[0].state, JobState::kSkipped);
  EXPECT_EQ(jobs[0].cache_status, "local");
  EXPECT_EQ(jobs[1].state, JobState::kQueued);
  EXPECT_EQ(jobs[1].cache_status, "cached");
  EXPECT_EQ(jobs[2].cache_status, "notBuilt");  // one output is in no cache
  EXPECT_EQ(jobs[3].cache_status, "notBuilt");
  EXPECT_EQ(jobs[4].cache_status, "");
}

TEST(MirrorDir, EveryComponentIsFileNameSafe) {
  EXPECT_EQ(mirror_dir("/w", {"github", "octo", "hello", "", "", ""}), "/w/repos/github/octo/hello.git");
  std::filesystem::path p = mirror_dir("/w", {"../..", "..", "x/../../y", "", "", ""});
  std::vector<std::string> parts;
  for (const auto& c : p) parts.push_back(c.string());
  ASSERT_EQ(parts.size(), 6u) << p;  // "/", "w", "repos", forge, owner, name.git
  for (const auto& c : parts) {
    EXPECT_NE(c, "..") << p;
    EXPECT_NE(c, ".") << p;
  }
  EXPECT_EQ(p.lexically_normal(), p);
}

TEST(PlanJobs, JobsForSystemsNoBuilderServesEndUnsupportedSystem) {
  auto arm = ok("arm", "aarch64-linux");
  auto after = ok("after");
  nix::DerivationGraph graph = {{"/nix/store/after.drv", {{"/nix/store/arm.drv"}}}};
  auto jobs = plan_jobs("e", {arm, after, ok("x86")}, graph,
                        StoreFacts{.invalid = {"/nix/store/arm-out", "/nix/store/after-out", "/nix/store/x86-out"}},
                        Builders{.systems = {"x86_64-linux"}});
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(jobs[0].state, JobState::kUnsupportedSystem);
  EXPECT_EQ(jobs[0].error, "No builder for system aarch64-linux");
  EXPECT_EQ(jobs[1].state, JobState::kQueued);  // ends dependency_failed once recorded
  EXPECT_EQ(jobs[1].deps, std::vector<std::string>{jobs[0].id});
  EXPECT_EQ(jobs[2].state, JobState::kQueued);
}

TEST_F(Evaluate, RepositoryConfigChoosesTheAttributeAndFlakeDirectory) {
  git.files["nixbot.toml"] = "attribute = \"ci.checks\"\n";  // used: no flurry.toml
  git.files["buildbot-nix.toml"] = "attribute = \"ignored\"\n";
  auto o = run();
  EXPECT_EQ(o.result, "evaluated");
  ASSERT_FALSE(nix.evals.empty());
  EXPECT_EQ(nix.evals[0].attr_path, (std::vector<std::string>{"ci", "checks", "x86_64-linux"}));
  EXPECT_EQ(nix.evals[0].flake_ref.find("&dir="), std::string::npos);
}

TEST_F(Evaluate, FlakeDirIsPassedAsTheFlakeRefsDir) {
  git.files["flurry.toml"] = "flake_dir = \"nix\"\nlock_file = \"nix/flake.lock\"\n";
  run();
  ASSERT_FALSE(nix.evals.empty());
  EXPECT_NE(nix.evals[0].flake_ref.find("&dir=nix"), std::string::npos) << nix.evals[0].flake_ref;
}

TEST_F(Evaluate, BadRepositoryConfigFailsTheEvalNamingTheKey) {
  git.files["flurry.toml"] = "flake_dir = \"../../etc\"\n";
  auto o = run();
  EXPECT_EQ(o.result, "eval_failed");
  EXPECT_TRUE(nix.evals.empty());
  auto e = **store.get_eval(eval_id());
  EXPECT_NE(e.error.find("flurry.toml: flake_dir"), std::string::npos) << e.error;
  std::string last_eval_status;
  for (const auto& m : bus.published("flurry.status.")) {
    auto st = *msg::decode_status_event(m.data);
    if (st.context == "flurry/eval") last_eval_status = std::string(msg::to_string(st.state)) + " " + st.description;
  }
  EXPECT_NE(last_eval_status.find("failure flurry.toml: flake_dir"), std::string::npos) << last_eval_status;
}

TEST_F(Evaluate, ANewerPushToTheSameBranchCancelsTheOlderEvalsQueuedBuilds) {
  change.received_at_ms = 1000;
  ASSERT_EQ(run().result, "evaluated");
  const auto old_eval = eval_id();
  const auto old_ok = id("ok");
  ASSERT_EQ(*store.start_job(old_ok, 5), JobState::kBuilding);  // already building: left to finish
  auto older = change;
  change.id = "github:d2";
  change.rev = std::string(40, 'b');
  change.received_at_ms = 2000;
  auto o = run();
  EXPECT_EQ(o.result, "evaluated");
  auto jobs = *store.list_jobs(old_eval);
  for (const auto& j : jobs) {
    if (j.id == old_ok) {
      EXPECT_EQ(j.state, JobState::kBuilding);
    } else if (j.state != JobState::kEvalFailed) {
      EXPECT_EQ(j.state, JobState::kCancelled) << j.attr;
    }
  }
  EXPECT_EQ((**store.get_job(state::job_id_for(old_eval, "checks.x86_64-linux.fail"))).error, "superseded by bbbbbbbbbbbb");
  // The old commit's statuses say so; its eval ends when its running build does.
  std::string old_eval_status;
  for (const auto& m : bus.published("flurry.status.")) {
    auto s = *msg::decode_status_event(m.data);
    if (s.rev == older.rev && s.context == "flurry/eval") old_eval_status = std::string(msg::to_string(s.state)) + " " + s.description;
  }
  EXPECT_EQ(old_eval_status, "error Cancelled: superseded by bbbbbbbbbbbb");
  auto done = *store.finish_job(old_ok, JobState::kSucceeded, "", 9);
  EXPECT_TRUE(done.eval_finished);
  EXPECT_EQ(done.eval_state, state::EvalState::kCancelled);
}

TEST_F(Evaluate, AnOlderPushArrivingLateCancelsItselfWithoutEvaluating) {
  change.received_at_ms = 2000;
  ASSERT_EQ(run().result, "evaluated");
  change.id = "github:late";
  change.rev = std::string(40, 'c');
  change.received_at_ms = 1000;
  auto o = run();
  EXPECT_EQ(o.result, "superseded");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_EQ(nix.evals.size(), 1u);
  EXPECT_EQ((**store.get_eval(eval_id())).state, state::EvalState::kCancelled);
  bool finished = false;
  for (const auto& m : bus.published("flurry.eval.finished")) finished = finished || msg::decode_eval_finished(m.data)->eval_id == eval_id();
  EXPECT_TRUE(finished);
}

TEST_F(Evaluate, PushesToDifferentBranchesDoNotCancelEachOther) {
  cfg.branch_rules = {{"features", "feature*", false, false}};
  change.received_at_ms = 1000;
  run();
  const auto first = eval_id();
  change.id = "github:other-branch";
  change.ref = "refs/heads/feature";
  change.branch = "feature";
  change.received_at_ms = 2000;
  EXPECT_EQ(run().result, "evaluated");
  EXPECT_EQ((**store.get_eval(first)).state, state::EvalState::kBuilding);
}

TEST_F(Evaluate, ACrashWhileCancellingTheOlderEvalIsFinishedOnRedelivery) {
  change.received_at_ms = 1000;
  ASSERT_EQ(run().result, "evaluated");
  const auto older_rev = change.rev;
  change.id = "github:d2";
  change.rev = std::string(40, 'b');
  change.received_at_ms = 2000;
  // The bus dies right after the new eval's pending status.
  DyingBus dying(bus, 1);
  auto first = handle_change(change, 1, {dying, store, nix, git, clock}, cfg);
  EXPECT_EQ(first.disposition.kind, bus::Disposition::Kind::kNak);
  auto redelivered = run(2);
  EXPECT_EQ(redelivered.result, "evaluated");
  std::string old_eval_status;
  for (const auto& m : bus.published("flurry.status.")) {
    auto s = *msg::decode_status_event(m.data);
    if (s.rev == older_rev && s.context == "flurry/eval") old_eval_status = std::string(msg::to_string(s.state));
  }
  EXPECT_EQ(old_eval_status, "error");
}

TEST(PlanJobs, JobsGoOnlyToBuildersOfferingTheirRequiredSystemFeatures) {
  nix::DerivationGraph graph = {{"/nix/store/vm.drv", {{}, {"kvm", "nixos-test"}}},
                                {"/nix/store/big.drv", {{}, {"big-parallel"}}},
                                {"/nix/store/arm.drv", {{}, {"big-parallel"}}}};
  StoreFacts facts{.invalid = {"/nix/store/vm-out", "/nix/store/big-out", "/nix/store/plain-out", "/nix/store/arm-out"}};
  std::vector<nix::AttrResult> attrs = {ok("vm"), ok("big"), ok("plain"), ok("arm", "aarch64-linux")};
  // Configured x86_64-linux offers big-parallel; an announced builder offers
  // kvm but not nixos-test; the arm builder offers nothing.
  Builders builders{.systems = {"x86_64-linux"}, .features = {"big-parallel"},
                    .announced = {{"b1", {"x86_64-linux"}, {"kvm"}, 2, 0, 0}, {"b2", {"aarch64-linux"}, {}, 2, 0, 0}}};
  auto jobs = plan_jobs("e", attrs, graph, facts, builders);
  ASSERT_EQ(jobs.size(), 4u);
  EXPECT_EQ(jobs[0].features, (std::vector<std::string>{"kvm", "nixos-test"}));
  EXPECT_EQ(jobs[0].state, JobState::kUnsupportedSystem);
  EXPECT_EQ(jobs[0].error, "No builder for x86_64-linux offers the system features it requires (kvm, nixos-test)");
  EXPECT_EQ(jobs[1].state, JobState::kQueued);
  EXPECT_EQ(jobs[1].features, std::vector<std::string>{"big-parallel"});
  EXPECT_EQ(jobs[2].state, JobState::kQueued);
  EXPECT_TRUE(jobs[2].features.empty());
  EXPECT_EQ(jobs[3].state, JobState::kUnsupportedSystem);
  EXPECT_THAT(jobs[3].error, HasSubstr("aarch64-linux offers the system features it requires (big-parallel)"));

  // Once a builder announces both, the VM test is queued.
  builders.announced.push_back({"b3", {"x86_64-linux"}, {"kvm", "nixos-test", "benchmark"}, 1, 0, 0});
  jobs = plan_jobs("e", attrs, graph, facts, builders);
  EXPECT_EQ(jobs[0].state, JobState::kQueued);
  // Nothing known about builders: nothing is refused.
  EXPECT_EQ(plan_jobs("e", attrs, graph, facts, Builders{})[0].state, JobState::kQueued);
}

namespace {
// A pull request from a fork by a collaborator, as the ingest makes it.
void make_pull_request(msg::ChangeEvent& c, const std::string& id, const std::string& head, std::int64_t received) {
  c.id = id;
  c.kind = "pull_request";
  c.ref = "refs/pull/9/head";
  c.branch = "";
  c.rev = head;
  c.received_at_ms = received;
  c.pull_request = {9, "main", std::string(40, 'b'), "topic", "https://example.invalid/fork/hello.git", true, "visitor", "COLLABORATOR", "T", {}};
}
}  // namespace

TEST_F(Evaluate, APullRequestIsEvaluatedMergedOntoItsBaseAndReportedOnItsHead) {
  make_pull_request(change, "github:pr1", std::string(40, 'c'), 1000);
  auto o = run();
  ASSERT_EQ(o.result, "evaluated") << o.error;
  // The head from the forge's pull ref of the base repository, the base at
  // the commit the event named, then the merge of the two.
  ASSERT_EQ(git.requests.size(), 2u);
  EXPECT_EQ(git.requests[0].url, "https://example.invalid/octo/hello.git");
  EXPECT_EQ(git.requests[0].ref, "refs/pull/9/head");
  EXPECT_EQ(git.requests[0].rev, std::string(40, 'c'));
  EXPECT_EQ(git.requests[1].ref, "refs/heads/main");
  EXPECT_EQ(git.requests[1].rev, std::string(40, 'b'));
  ASSERT_EQ(git.merges.size(), 1u);
  EXPECT_EQ(git.merges[0], std::make_pair(std::string(40, 'b'), std::string(40, 'c')));
  const std::string merge_rev = std::string(20, 'b') + std::string(20, 'c');
  ASSERT_EQ(nix.evals.size(), 1u);
  EXPECT_THAT(nix.evals[0].flake_ref, HasSubstr("rev=" + merge_rev));
  // Statuses go to the head commit, which is what the forge shows.
  for (const auto& [context, list] : statuses()) {
    for (const auto& s : list) EXPECT_EQ(s.rev, std::string(40, 'c')) << context;
  }
  EXPECT_EQ((**store.get_eval(eval_id())).rev, std::string(40, 'c'));
}

TEST_F(Evaluate, APullRequestWithoutABaseCommitIsMergedOntoTheBranchHeadNow) {
  make_pull_request(change, "github:pr1", std::string(40, 'c'), 1000);
  change.pull_request.base_rev = "";
  git.heads["main"] = std::string(40, 'd');
  ASSERT_EQ(run().result, "evaluated");
  ASSERT_EQ(git.merges.size(), 1u);
  EXPECT_EQ(git.merges[0].first, std::string(40, 'd'));
}

TEST_F(Evaluate, APullRequestThatConflictsWithItsBaseFailsTheEvalSayingSo) {
  make_pull_request(change, "github:pr1", std::string(40, 'c'), 1000);
  git.merge_error = Error::rejected("merging cccccccccccc into bbbbbbbbbbbb conflicts in flake.nix");
  auto o = run();
  EXPECT_EQ(o.result, "eval_failed");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_TRUE(nix.evals.empty());
  auto eval_statuses = statuses()["flurry/eval"];
  ASSERT_FALSE(eval_statuses.empty());
  EXPECT_EQ(eval_statuses.back().state, msg::StatusState::kFailure);
  EXPECT_THAT(eval_statuses.back().description, HasSubstr("cannot be merged into main"));
  EXPECT_THAT(eval_statuses.back().description, HasSubstr("conflicts in flake.nix"));
}

TEST_F(Evaluate, NewCommitsOnAPullRequestCancelTheOlderEvalOfIt) {
  make_pull_request(change, "github:pr1", std::string(40, 'c'), 1000);
  ASSERT_EQ(run().result, "evaluated");
  const auto first = eval_id();
  make_pull_request(change, "github:pr2", std::string(40, 'e'), 2000);
  ASSERT_EQ(run().result, "evaluated");
  EXPECT_EQ((**store.get_eval(first)).state, state::EvalState::kCancelled);
}

TEST_F(Evaluate, ClosingAPullRequestCancelsItsEvalAndALatePushOfItCancelsItself) {
  make_pull_request(change, "github:pr1", std::string(40, 'c'), 1000);
  ASSERT_EQ(run().result, "evaluated");
  const auto first = eval_id();
  const auto ok_job = id("ok");
  auto closed = change;
  closed.id = "github:close";
  closed.kind = "pull_request_closed";
  closed.received_at_ms = 3000;
  auto o = handle_change(closed, 1, {bus, store, nix, git, clock}, cfg);
  EXPECT_EQ(o.result, "closed");
  EXPECT_EQ(o.eval_id, first);
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_EQ((**store.get_eval(first)).state, state::EvalState::kCancelled);
  EXPECT_EQ((**store.get_job(ok_job)).error, "pull request #9 was closed");
  // No eval is made for the close itself.
  EXPECT_FALSE(store.get_eval(state::eval_id_for_change("github:close"))->has_value());
  // A redelivery of the close changes nothing.
  EXPECT_EQ(handle_change(closed, 2, {bus, store, nix, git, clock}, cfg).result, "closed");
  // A synchronize sent before the close but arriving after it cancels itself.
  make_pull_request(change, "github:late", std::string(40, 'f'), 2000);
  EXPECT_EQ(run().result, "superseded");
  EXPECT_EQ(nix.evals.size(), 1u);
  // Reopened later: evaluated again.
  make_pull_request(change, "github:reopen", std::string(40, 'f'), 4000);
  EXPECT_EQ(run().result, "evaluated");
}

TEST_F(Evaluate, OnlyTheDefaultBranchAndBranchesARuleSelectsAreBuilt) {
  change.id = "github:feature-push";
  change.ref = "refs/heads/feature/x";
  change.branch = "feature/x";
  auto o = run();
  EXPECT_EQ(o.result, "ignored");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_THAT(o.error, HasSubstr("no branch rule matches"));
  EXPECT_TRUE(nix.evals.empty());
  EXPECT_TRUE(bus.published().empty());
  EXPECT_FALSE(store.get_eval(eval_id())->has_value());

  cfg.branch_rules = {{"features", "feature/*", true, false}};
  EXPECT_EQ(run(2).result, "evaluated");
  // Tags are no branches: they build.
  change.id = "github:tag";
  change.ref = "refs/tags/v1";
  change.branch = "";
  change.tag = "v1";
  cfg.branch_rules.clear();
  EXPECT_EQ(run().result, "evaluated");
}

namespace {
msg::ChangeEvent rerun_of(const msg::ChangeEvent& original, const std::string& id) {
  msg::ChangeEvent r;
  r.id = id;
  r.kind = "rerun";
  r.repo = original.repo;
  r.ref = original.ref;
  r.rev = original.rev;
  r.sender = "maintainer";
  r.received_at_ms = original.received_at_ms + 1000;
  return r;
}
}  // namespace

TEST_F(Evaluate, ReRunningAFailedJobClearsItsCachedFailureAndEvaluatesTheSameChangeAgain) {
  cfg.cache_failed_builds = true;
  change.received_at_ms = 1000;
  ASSERT_EQ(run().result, "evaluated");
  const auto first = eval_id();
  const auto fail_job = id("fail");
  ASSERT_TRUE(store.finish_job(fail_job, JobState::kFailed, "exit 3", 5).has_value());
  ASSERT_TRUE(store.record_failed_build("/nix/store/fail.drv", {fail_job, first, "checks.x86_64-linux.fail", "exit 3", 5}).has_value());
  // The other failure stays cached.
  ASSERT_TRUE(store.record_failed_build("/nix/store/depOnFail.drv", {"x", first, "y", "e", 5}).has_value());

  auto r = rerun_of(change, "github:rerun-1");
  r.rerun.job_id = fail_job;
  auto o = handle_change(r, 1, {bus, store, nix, git, clock}, cfg);
  ASSERT_EQ(o.result, "evaluated") << o.error;
  EXPECT_NE(o.eval_id, first);
  EXPECT_TRUE(store.failed_builds({"/nix/store/fail.drv"})->empty());
  EXPECT_FALSE(store.failed_builds({"/nix/store/depOnFail.drv"})->empty());
  // The new eval is of the same commit and ref, made from the stored change.
  auto again = **store.get_eval(state::eval_id_for_change("github:rerun-1"));
  EXPECT_EQ(again.rev, change.rev);
  EXPECT_EQ(again.ref, change.ref);
  EXPECT_EQ((**store.get_job(state::job_id_for(again.id, "checks.x86_64-linux.fail"))).state, JobState::kQueued);
  // It superseded the first.
  EXPECT_EQ((**store.get_eval(first)).state, state::EvalState::kCancelled);
  // A redelivery of the re-run replays rather than evaluating a third time.
  EXPECT_EQ(handle_change(r, 2, {bus, store, nix, git, clock}, cfg).result, "replayed");
  EXPECT_EQ(nix.evals.size(), 2u);
}

TEST_F(Evaluate, ReRunningASuiteFindsTheEvalOfItsRefAtThatCommit) {
  change.received_at_ms = 1000;
  ASSERT_EQ(run().result, "evaluated");
  auto r = rerun_of(change, "github:suite");
  EXPECT_EQ(handle_change(r, 1, {bus, store, nix, git, clock}, cfg).result, "evaluated");
  // A suite of another commit, or of a ref never evaluated: nothing to do.
  auto other = rerun_of(change, "github:suite-2");
  other.rev = std::string(40, 'f');
  EXPECT_EQ(handle_change(other, 1, {bus, store, nix, git, clock}, cfg).result, "ignored");
  auto unknown = rerun_of(change, "github:suite-3");
  unknown.ref = "refs/heads/never";
  EXPECT_EQ(handle_change(unknown, 1, {bus, store, nix, git, clock}, cfg).result, "ignored");
  auto foreign_job = rerun_of(change, "github:suite-4");
  foreign_job.rerun.job_id = "no-such-job";
  EXPECT_EQ(handle_change(foreign_job, 1, {bus, store, nix, git, clock}, cfg).result, "ignored");
  EXPECT_EQ(nix.evals.size(), 2u);
}

TEST_F(Evaluate, AReRunOfAPullRequestMergesItAgain) {
  make_pull_request(change, "github:pr1", std::string(40, 'c'), 1000);
  ASSERT_EQ(run().result, "evaluated");
  auto r = rerun_of(change, "github:pr-rerun");
  r.rerun.eval_id = eval_id();
  ASSERT_EQ(handle_change(r, 1, {bus, store, nix, git, clock}, cfg).result, "evaluated");
  ASSERT_EQ(git.merges.size(), 2u);
  EXPECT_EQ(git.merges[1], git.merges[0]);
}

namespace {
// A forge's permission API, scripted.
struct ScriptedPermissions final : forge::Permissions {
  Result<bool> can_write(const std::string&, const std::string&, const std::string& user) override {
    asked.push_back(user);
    if (down) return fail(Error::transient("forge down"));
    return writers.count(user) > 0;
  }
  std::set<std::string> writers;
  std::vector<std::string> asked;
  bool down = false;
};

msg::ChangeEvent approval_of(const msg::ChangeEvent& pr, const std::string& id, const std::string& by, const std::string& association) {
  msg::ChangeEvent a;
  a.id = id;
  a.kind = "approve";
  a.repo = pr.repo;
  a.ref = pr.ref;
  a.pull_request.number = pr.pull_request.number;
  a.approval = {by, association};
  a.received_at_ms = pr.received_at_ms + 500;
  return a;
}
}  // namespace

class Trust : public Evaluate {
 protected:
  EvalOutcome handle(const msg::ChangeEvent& c, std::uint64_t delivered = 1) {
    return handle_change(c, delivered, {bus, store, nix, git, clock, [this](const std::string&) -> forge::Permissions* { return &perms; }},
                         cfg);
  }
  ScriptedPermissions perms;
};

TEST_F(Trust, APullRequestFromAForkByAStrangerWaitsAndShowsWhy) {
  make_pull_request(change, "github:pr-stranger", std::string(40, 'c'), 1000);
  change.pull_request.author = "stranger";
  auto o = handle(change);
  EXPECT_EQ(o.result, "awaiting_approval");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_TRUE(nix.evals.empty());
  EXPECT_TRUE(git.requests.empty());  // not even fetched
  EXPECT_FALSE(store.get_eval(eval_id())->has_value());
  auto s = statuses()["flurry/eval"];
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].state, msg::StatusState::kPending);
  EXPECT_EQ(s[0].rev, std::string(40, 'c'));
  EXPECT_THAT(s[0].description, HasSubstr("Waiting for approval"));
  EXPECT_EQ(perms.asked, std::vector<std::string>{"stranger"});
}

TEST_F(Trust, AMaintainersApprovalEvaluatesTheWaitingChangeOnce) {
  make_pull_request(change, "github:pr-stranger", std::string(40, 'c'), 1000);
  change.pull_request.author = "stranger";
  ASSERT_EQ(handle(change).result, "awaiting_approval");
  // Someone without write access cannot approve.
  EXPECT_EQ(handle(approval_of(change, "github:comment-1", "stranger", "NONE")).result, "ignored");
  EXPECT_TRUE(nix.evals.empty());
  perms.writers = {"maintainer"};
  auto approved = approval_of(change, "github:comment-2", "maintainer", "MEMBER");
  auto o = handle(approved);
  ASSERT_EQ(o.result, "evaluated") << o.error;
  EXPECT_EQ(nix.evals.size(), 1u);
  auto e = **store.get_eval(state::eval_id_for_change("github:comment-2"));
  EXPECT_EQ(e.rev, std::string(40, 'c'));
  EXPECT_EQ(e.ref, "refs/pull/9/head");
  // Redelivered: replayed, not evaluated again.
  EXPECT_EQ(handle(approved, 2).result, "replayed");
  EXPECT_EQ(nix.evals.size(), 1u);
  // Later commits of the approved pull request run without asking again.
  make_pull_request(change, "github:pr-stranger-2", std::string(40, 'd'), 3000);
  change.pull_request.author = "stranger";
  EXPECT_EQ(handle(change).result, "evaluated");
}

TEST_F(Trust, AuthorsWhoMayWriteTheTrustLabelAndSameRepositoryBranchesRunAtOnce) {
  perms.writers = {"maintainer"};
  make_pull_request(change, "github:pr-a", std::string(40, 'c'), 1000);
  change.pull_request.author = "maintainer";
  EXPECT_EQ(handle(change).result, "evaluated");
  make_pull_request(change, "github:pr-b", std::string(40, 'd'), 2000);
  change.pull_request.number = 10;
  change.ref = "refs/pull/10/head";
  change.pull_request.author = "stranger";
  change.pull_request.labels = {"ok-to-test"};
  EXPECT_EQ(handle(change).result, "evaluated");
  make_pull_request(change, "github:pr-c", std::string(40, 'e'), 3000);
  change.pull_request.number = 11;
  change.ref = "refs/pull/11/head";
  change.pull_request.author = "stranger";
  change.pull_request.from_fork = false;
  EXPECT_EQ(handle(change).result, "evaluated");
  // With fork_pull_requests = "build", every pull request runs.
  cfg.trust.forks_need_approval = false;
  make_pull_request(change, "github:pr-d", std::string(40, 'f'), 4000);
  change.pull_request.number = 12;
  change.ref = "refs/pull/12/head";
  change.pull_request.author = "stranger";
  EXPECT_EQ(handle(change).result, "evaluated");
}

TEST_F(Trust, AForgeThatCannotBeAskedIsRetriedNotTrusted) {
  perms.down = true;
  make_pull_request(change, "github:pr-down", std::string(40, 'c'), 1000);
  change.pull_request.author = "someone";
  auto o = handle(change);
  EXPECT_EQ(o.result, "retry");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kNak);
  EXPECT_TRUE(nix.evals.empty());
}

TEST_F(Trust, WithoutAPermissionApiGitHubsAssociationDecides) {
  make_pull_request(change, "github:pr-assoc", std::string(40, 'c'), 1000);
  change.pull_request.author_association = "FIRST_TIME_CONTRIBUTOR";
  EXPECT_EQ(run().result, "awaiting_approval");
  EXPECT_EQ(handle_change(approval_of(change, "github:c1", "x", "CONTRIBUTOR"), 1, {bus, store, nix, git, clock}, cfg).result, "ignored");
  EXPECT_EQ(handle_change(approval_of(change, "github:c2", "owner", "OWNER"), 1, {bus, store, nix, git, clock}, cfg).result, "evaluated");
}

TEST_F(Evaluate, APullRequestEventOfTheSameHeadAndBaseMakesNoNewEval) {
  make_pull_request(change, "github:pr1", std::string(40, 'c'), 1000);
  ASSERT_EQ(run().result, "evaluated");
  make_pull_request(change, "github:labeled", std::string(40, 'c'), 2000);  // e.g. a label added
  auto o = run();
  EXPECT_EQ(o.result, "ignored");
  EXPECT_EQ(nix.evals.size(), 1u);
  // Retargeted to another base: evaluated again.
  make_pull_request(change, "github:retargeted", std::string(40, 'c'), 3000);
  change.pull_request.base_branch = "release";
  EXPECT_EQ(run().result, "evaluated");
}

TEST_F(Evaluate, ARepositoryDiscoveryDidNotFindIsIgnoredAndNothingElseHappens) {
  // Discovery ran for GitHub and found another repository only.
  ASSERT_TRUE(store.set_projects("github", {"octo/other"}).has_value());
  auto o = run();
  EXPECT_EQ(o.result, "ignored");
  EXPECT_EQ(o.error, "octo/hello is not a project (discovery)");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_TRUE(nix.evals.empty());
  EXPECT_TRUE(git.requests.empty());
  EXPECT_TRUE(bus.published().empty());
  EXPECT_FALSE(store.get_eval(eval_id())->has_value());
  // Once discovery finds it, the same change is evaluated.
  ASSERT_TRUE(store.set_projects("github", {"octo/other", "octo/hello"}).has_value());
  EXPECT_EQ(run().result, "evaluated");
}

TEST_F(Evaluate, WithoutDiscoveryForTheForgeNothingIsGated) {
  // Discovery covers Gitea only: a GitHub change goes on as always.
  ASSERT_TRUE(store.set_projects("gitea", {}).has_value());
  EXPECT_EQ(run().result, "evaluated");
  // A registry that cannot be read is retried, not taken as "no project".
  change.id = "github:d2";
  store.set_down(true);
  auto o = run();
  store.set_down(false);
  EXPECT_EQ(o.result, "retry");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kNak);
}

TEST_F(Evaluate, PrivateRepositoriesAreFetchedWithTheForgesCredentials) {
  make_pull_request(change, "github:private", std::string(40, 'c'), 1000);
  change.pull_request.base_rev = "";
  git.heads["main"] = std::string(40, 'd');
  std::vector<std::string> asked;
  auto auth = [&](const msg::Repo&, const std::string& url) -> Result<std::string> {
    asked.push_back(url);
    return url == change.repo.clone_url ? std::string("Authorization: Basic abc") : std::string();
  };
  auto o = handle_change(change, 1, {bus, store, nix, git, clock, {}, auth}, cfg);
  ASSERT_EQ(o.result, "evaluated") << o.error;
  ASSERT_FALSE(git.requests.empty());
  EXPECT_EQ(git.requests[0].auth_header, "Authorization: Basic abc");
  EXPECT_EQ(git.branch_auth, std::vector<std::string>{"Authorization: Basic abc"});
  EXPECT_EQ(asked.size(), 2u);  // the base repository's URL and the fork's
  // Credentials that cannot be had now (an app's token): retried.
  auto down = [](const msg::Repo&, const std::string&) -> Result<std::string> { return fail(Error::transient("github app: no answer")); };
  change.id = "github:private-2";
  change.rev = std::string(40, 'e');
  EXPECT_EQ(handle_change(change, 1, {bus, store, nix, git, clock, {}, down}, cfg).result, "retry");
}

// The web UI lists what the evaluator files: each eval under its project
// and ref, once however often its change is delivered; a closed pull
// request is no longer open.
TEST_F(Evaluate, EachEvalIsFiledForTheListingsAndAClosedPullRequestIsClosed) {
  state::testing::MemoryCatalog catalog;
  auto with_catalog = [&](const msg::ChangeEvent& c, std::uint64_t n) {
    return handle_change(c, n, {bus, store, nix, git, clock, {}, {}, &catalog}, cfg);
  };
  EXPECT_EQ(with_catalog(change, 1).result, "evaluated");
  EXPECT_EQ(with_catalog(change, 2).result, "replayed");
  const state::ProjectKey project{"github", "octo", "hello"};
  auto main = catalog.ref(project, "refs/heads/main");
  ASSERT_TRUE(main && main->has_value());
  EXPECT_EQ((**main).latest_eval, eval_id());
  EXPECT_EQ(catalog.evals(project, "", "", 10)->eval_ids, std::vector<std::string>{eval_id()});

  msg::ChangeEvent pr = change;
  make_pull_request(pr, "github:pr-1", std::string(40, 'c'), 1000);
  pr.pull_request.title = "Make it faster";
  auto o = with_catalog(pr, 1);
  auto filed = catalog.ref(project, "refs/pull/9/head");
  ASSERT_TRUE(filed && filed->has_value()) << o.result << " " << o.error;
  EXPECT_EQ((**filed).title, "Make it faster");
  EXPECT_TRUE((**filed).open);
  msg::ChangeEvent closed = pr;
  closed.id = "github:pr-1-closed";
  closed.kind = "pull_request_closed";
  EXPECT_EQ(with_catalog(closed, 1).result, "closed");
  EXPECT_FALSE((**catalog.ref(project, "refs/pull/9/head")).open);
}
