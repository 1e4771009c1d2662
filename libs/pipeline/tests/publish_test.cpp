#include "flurry/pipeline/publish.hpp"

#include <gtest/gtest.h>

#include <map>

#include "flurry/bus/testing/memory_bus.hpp"
#include "flurry/state/testing/memory_store.hpp"

using namespace flurry;
using msg::JobState;

namespace {
state::JobSpec job(const std::string& id, std::vector<std::string> deps = {}) {
  return {id, "checks.x86_64-linux." + id, "/nix/store/" + id + ".drv", "x86_64-linux", {{"out", "/nix/store/" + id}},
          JobState::kQueued, "", "notBuilt", std::move(deps)};
}
}  // namespace

class Publish : public ::testing::Test {
 protected:
  void SetUp() override {
    state::EvalRecord e;
    e.id = "e1";
    e.repo = {"github", "octo", "hello", "file:///x", "", "main"};
    e.rev = std::string(40, 'a');
    e.created_ms = 1000;
    ASSERT_TRUE(*store.create_eval(e));
  }
  bus::testing::MemoryBus bus;
  state::testing::MemoryStore store;
};

TEST_F(Publish, FailureTransitionPublishesFinishedAndStatusesForDependents) {
  ASSERT_TRUE(store.add_jobs("e1", {job("a"), job("b", {"a"})}, 1000).has_value());
  auto t = *store.finish_job("a", JobState::kFailed, "exit code 3", 2000);
  ASSERT_TRUE(pipeline::publish_transition({bus, store}, "e1", t, {"http://ci"}).has_value());
  EXPECT_EQ(bus.published("flurry.job.finished").size(), 2u);
  auto statuses = bus.published("flurry.status.github");
  ASSERT_EQ(statuses.size(), 2u);
  auto b = *msg::decode_status_event(statuses[1].data);
  EXPECT_EQ(b.context, "flurry/checks.x86_64-linux.b");
  EXPECT_EQ(b.state, msg::StatusState::kFailure);
  EXPECT_NE(b.description.find("checks.x86_64-linux.a"), std::string::npos);
  EXPECT_EQ(b.target_url, "http://ci/evals/e1/jobs/b");
  EXPECT_EQ(bus.published("flurry.eval.finished").size(), 1u);
  EXPECT_TRUE(bus.published("flurry.build.").empty());
}

TEST_F(Publish, RepublishingTheSameTransitionIsDeduplicated) {
  ASSERT_TRUE(store.add_jobs("e1", {job("a"), job("b", {"a"})}, 1000).has_value());
  auto t = *store.finish_job("a", JobState::kSucceeded, "", 2000);
  ASSERT_TRUE(pipeline::publish_transition({bus, store}, "e1", t, {}).has_value());
  auto again = *store.finish_job("a", JobState::kSucceeded, "", 3000);
  ASSERT_TRUE(pipeline::publish_transition({bus, store}, "e1", again, {}).has_value());
  EXPECT_EQ(bus.published("flurry.build.x86_64-linux").size(), 1u);
  EXPECT_EQ(bus.published("flurry.job.finished").size(), 1u);
  EXPECT_EQ(bus.published("flurry.status.").size(), 1u);
}

TEST_F(Publish, PendingStatusOrdersBeforeTerminal) {
  ASSERT_TRUE(store.add_jobs("e1", {job("a")}, 1000).has_value());
  auto eval = **store.get_eval("e1");
  auto pending = pipeline::job_status(eval, **store.get_job("a"), {});
  ASSERT_TRUE(store.finish_job("a", JobState::kSucceeded, "", 1000).has_value());
  auto done = pipeline::job_status(eval, **store.get_job("a"), {});
  EXPECT_EQ(pending.state, msg::StatusState::kPending);
  EXPECT_EQ(done.state, msg::StatusState::kSuccess);
  EXPECT_LT(pending.at_us, done.at_us);
}

TEST_F(Publish, PublishFailureIsReturned) {
  ASSERT_TRUE(store.add_jobs("e1", {job("a")}, 1000).has_value());
  auto t = *store.finish_job("a", JobState::kSucceeded, "", 2000);
  bus.fail_next_publishes(1);
  auto r = pipeline::publish_transition({bus, store}, "e1", t, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kTransient);
}

// Issue 13: a store that answers a job's end and then loses it (a Redis
// restarted from an AOF without its last writes) must not make job.finished,
// the job's status or eval.finished say anything but what the end was.
TEST_F(Publish, WhatAStoreLostAfterAnsweringIsPublishedAsItAnswered) {
  ASSERT_TRUE(store.add_jobs("e1", {job("a"), job("b", {"a"})}, 1000).has_value());
  ASSERT_TRUE(store.start_job("a", 1500).has_value());
  store.checkpoint();
  store.roll_back_after("finish_job");
  auto t = *store.finish_job("a", JobState::kFailed, "exit code 3", 2000);
  ASSERT_EQ((**store.get_job("a")).state, JobState::kBuilding);  // lost
  ASSERT_TRUE(pipeline::publish_transition({bus, store}, "e1", t, {}).has_value());

  std::map<std::string, JobState> finished;
  for (const auto& m : bus.published("flurry.job.finished")) {
    auto f = *msg::decode_job_finished(m.data);
    finished[f.job_id] = f.state;
  }
  EXPECT_EQ(finished, (std::map<std::string, JobState>{{"a", JobState::kFailed}, {"b", JobState::kDependencyFailed}}));
  for (const auto& m : bus.published("flurry.status.github")) {
    auto s = *msg::decode_status_event(m.data);
    EXPECT_EQ(s.state, msg::StatusState::kFailure) << s.context;
  }
  auto ended = bus.published("flurry.eval.finished");
  ASSERT_EQ(ended.size(), 1u);
  auto f = *msg::decode_eval_finished(ended[0].data);
  EXPECT_EQ(f.state, "failed");
  EXPECT_EQ(f.jobs_total, 2);
  EXPECT_EQ(f.jobs_failed, 2);
}

// A transition never carries a job that has not ended, whatever its ids
// name: job.finished only ever says a terminal state.
TEST_F(Publish, ARecordThatIsNotTerminalIsNeverPublishedAsAnEnd) {
  ASSERT_TRUE(store.add_jobs("e1", {job("a")}, 1000).has_value());
  state::Transition t;
  t.ended.push_back(**store.get_job("a"));  // queued
  ASSERT_TRUE(pipeline::publish_transition({bus, store}, "e1", t, {}).has_value());
  EXPECT_TRUE(bus.published("flurry.job.finished").empty());
  EXPECT_TRUE(bus.published("flurry.status.").empty());
}

// Issue 14: a status shows the first line of what happened (GitHub allows
// 140 characters); the whole of it travels as details, for check runs.
TEST_F(Publish, WhatTheDescriptionCannotHoldTravelsWholeAsDetails) {
  const std::string error = "error: attribute 'x' missing\n\n       at /nix/store/abc-source/flake.nix:3:5:\n            3|   x = y.x;";
  state::JobSpec broken = job("broken");
  broken.state = JobState::kEvalFailed;
  broken.error = error;
  broken.drv_path.clear();
  ASSERT_TRUE(store.add_jobs("e1", {broken}, 1000).has_value());
  auto eval = **store.get_eval("e1");
  auto s = pipeline::job_status(eval, **store.get_job("broken"), {});
  EXPECT_EQ(s.description, "Evaluation failed: error: attribute 'x' missing");
  EXPECT_EQ(s.details, "Evaluation failed: " + error);
  EXPECT_EQ(s.job_state, "eval_failed");
  // Short ones need none.
  ASSERT_TRUE(store.add_jobs("e1", {job("fine")}, 1000).has_value());
  EXPECT_TRUE(pipeline::job_status(eval, **store.get_job("fine"), {}).details.empty());
  // Nor more than a message can carry.
  auto huge = pipeline::eval_status(eval, msg::StatusState::kFailure, "error: x\n" + std::string(200000, 'y'), 1, {});
  EXPECT_LE(huge.details.size(), msg::kMaxStatusDetails);
  EXPECT_EQ(huge.description, "error: x");
}
