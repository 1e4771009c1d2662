#pragma once
// The StateStore contract, as typed tests. Instantiate with a factory type
// providing `static std::unique_ptr<StateStore> make();` (a fresh, empty
// namespace each call).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "flurry/state/store.hpp"

namespace flurry::state::contract {

using msg::JobState;

template <typename Factory>
class StateContract : public ::testing::Test {
 protected:
  void SetUp() override { store = Factory::make(); }

  EvalRecord eval(const std::string& id = "e1") {
    EvalRecord e;
    e.id = id;
    e.change_id = "github:" + id;
    e.repo = {"github", "octo", "hello", "https://example.invalid/octo/hello.git", "", "main"};
    e.ref = "refs/heads/main";
    e.branch = "main";
    e.rev = std::string(40, 'a');
    e.created_ms = 1;
    return e;
  }
  static JobSpec job(const std::string& id, std::vector<std::string> deps = {}, JobState s = JobState::kQueued) {
    JobSpec j;
    j.id = id;
    j.attr = "checks.x86_64-linux." + id;
    j.drv_path = s == JobState::kEvalFailed ? "" : "/nix/store/" + id + ".drv";
    j.system = "x86_64-linux";
    j.outputs = {{"out", "/nix/store/" + id}};
    j.state = s;
    j.error = s == JobState::kEvalFailed ? "error: boom" : "";
    j.deps = std::move(deps);
    j.name = s == JobState::kEvalFailed ? "" : id + "-name";
    j.cache_status = s == JobState::kEvalFailed ? "" : "notBuilt";
    return j;
  }
  static std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  }
  JobState state_of(const std::string& id) { return (*store->get_job(id))->state; }

  std::unique_ptr<StateStore> store;
};

TYPED_TEST_SUITE_P(StateContract);

TYPED_TEST_P(StateContract, CreateEvalIsIdempotent) {
  auto& s = *this->store;
  EXPECT_TRUE(*s.create_eval(this->eval()));
  EXPECT_FALSE(*s.create_eval(this->eval()));
  auto e = *s.get_eval("e1");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->state, EvalState::kEvaluating);
  EXPECT_EQ(e->repo.owner, "octo");
  EXPECT_EQ(e->rev, std::string(40, 'a'));
  EXPECT_FALSE(s.get_eval("nope")->has_value());
}

TYPED_TEST_P(StateContract, AddJobsReleasesOnlyJobsWithoutDependencies) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  auto t = s.add_jobs("e1", {this->job("a"), this->job("b", {"a"}), this->job("c")}, 10);
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ(this->sorted(t->ready), (std::vector<std::string>{"a", "c"}));
  EXPECT_FALSE(t->eval_finished);
  auto e = *s.get_eval("e1");
  EXPECT_EQ(e->state, EvalState::kBuilding);
  EXPECT_EQ(e->jobs_total, 3);
  EXPECT_EQ(e->jobs_pending, 3);
  auto jobs = *s.list_jobs("e1");
  ASSERT_EQ(jobs.size(), 3u);
  auto j = *s.get_job("b");
  ASSERT_TRUE(j.has_value());
  EXPECT_EQ(j->eval_id, "e1");
  EXPECT_EQ(j->attr, "checks.x86_64-linux.b");
  EXPECT_EQ(j->outputs.at("out"), "/nix/store/b");
  // Everything a builder needs comes back as given.
  EXPECT_EQ(j->drv_path, "/nix/store/b.drv");
  EXPECT_EQ(j->system, "x86_64-linux");
  EXPECT_EQ(j->name, "b-name");
  EXPECT_EQ(j->cache_status, "notBuilt");
}

// A repeated complete call (a lost reply, a replay after a crash) adds
// nothing and answers with the standing of every job at that time.
TYPED_TEST_P(StateContract, AddJobsTwiceReturnsTheStandingOfEveryJob) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  auto first = *s.add_jobs("e1", {this->job("a"), this->job("b", {"a"})}, 10);
  auto second = *s.add_jobs("e1", {this->job("a"), this->job("b", {"a"})}, 11);
  EXPECT_EQ(first, second);
  EXPECT_EQ((*s.get_eval("e1"))->jobs_total, 2);
  ASSERT_TRUE(s.finish_job("a", JobState::kSucceeded, "", 12).has_value());
  auto third = *s.add_jobs("e1", {this->job("a"), this->job("b", {"a"})}, 13);
  EXPECT_EQ(third.ready, std::vector<std::string>{"b"});
  EXPECT_FALSE(third.eval_finished);
  EXPECT_EQ(third.eval_state, EvalState::kBuilding);
  EXPECT_EQ((*s.get_eval("e1"))->jobs_total, 2);
  EXPECT_EQ((*s.get_eval("e1"))->jobs_pending, 1);
}

TYPED_TEST_P(StateContract, SuccessReleasesDependentsWhenTheirLastDependencyEnds) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a"), this->job("b"), this->job("c", {"a", "b"})}, 10).has_value());
  EXPECT_EQ(*s.start_job("a", 11), JobState::kBuilding);
  auto t1 = *s.finish_job("a", JobState::kSucceeded, "", 12);
  EXPECT_TRUE(t1.ready.empty());
  auto t2 = *s.finish_job("b", JobState::kSucceeded, "", 13);
  EXPECT_EQ(t2.ready, std::vector<std::string>{"c"});
  EXPECT_FALSE(t2.eval_finished);
  auto t3 = *s.finish_job("c", JobState::kSucceeded, "", 14);
  EXPECT_TRUE(t3.eval_finished);
  EXPECT_EQ(t3.eval_state, EvalState::kSucceeded);
  auto e = *s.get_eval("e1");
  EXPECT_EQ(e->state, EvalState::kSucceeded);
  EXPECT_EQ(e->jobs_pending, 0);
  EXPECT_EQ(e->jobs_failed, 0);
  EXPECT_EQ(e->finished_ms, 14);
}

TYPED_TEST_P(StateContract, FailureFailsEveryTransitiveDependent) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a"), this->job("b", {"a"}), this->job("c", {"b"}), this->job("d")}, 10).has_value());
  auto t = *s.finish_job("a", JobState::kFailed, "builder failed", 12);
  EXPECT_EQ(this->sorted(t.dependency_failed), (std::vector<std::string>{"b", "c"}));
  EXPECT_TRUE(t.ready.empty());
  EXPECT_FALSE(t.eval_finished);
  EXPECT_EQ(this->state_of("b"), JobState::kDependencyFailed);
  EXPECT_EQ(this->state_of("c"), JobState::kDependencyFailed);
  EXPECT_NE((*s.get_job("c"))->error.find("checks.x86_64-linux.a"), std::string::npos);
  auto td = *s.finish_job("d", JobState::kSucceeded, "", 13);
  EXPECT_TRUE(td.eval_finished);
  EXPECT_EQ(td.eval_state, EvalState::kFailed);
  auto e = *s.get_eval("e1");
  EXPECT_EQ(e->jobs_failed, 3);
  EXPECT_EQ(e->jobs_pending, 0);
}

TYPED_TEST_P(StateContract, FinishingTwiceReturnsTheStoredTransition) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a"), this->job("b", {"a"})}, 10).has_value());
  auto first = *s.finish_job("a", JobState::kSucceeded, "", 12);
  auto again = *s.finish_job("a", JobState::kSucceeded, "", 13);
  EXPECT_EQ(first, again);
  EXPECT_EQ(again.ready, std::vector<std::string>{"b"});
  // A conflicting second finish does not change the terminal state.
  auto other = *s.finish_job("a", JobState::kFailed, "late", 14);
  EXPECT_EQ(other, first);
  EXPECT_EQ(this->state_of("a"), JobState::kSucceeded);
  EXPECT_EQ((*s.get_eval("e1"))->jobs_pending, 1);
}

TYPED_TEST_P(StateContract, JobsBornTerminalSettleAtOnce) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  auto t = *s.add_jobs("e1",
                       {this->job("bad", {}, JobState::kEvalFailed), this->job("done", {}, JobState::kSkipped),
                        this->job("after", {"done"}), this->job("x", {"bad"})},
                       10);
  EXPECT_EQ(t.ready, std::vector<std::string>{"after"});
  EXPECT_EQ(t.dependency_failed, std::vector<std::string>{"x"});
  EXPECT_FALSE(t.eval_finished);
  auto e = *s.get_eval("e1");
  EXPECT_EQ(e->jobs_pending, 1);
  EXPECT_EQ(e->jobs_failed, 2);
  EXPECT_EQ((*s.get_job("bad"))->error, "error: boom");
}

TYPED_TEST_P(StateContract, EvalWithOnlyTerminalJobsFinishesInAddJobs) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  auto t = *s.add_jobs("e1", {this->job("done", {}, JobState::kSkipped)}, 10);
  EXPECT_TRUE(t.eval_finished);
  EXPECT_EQ(t.eval_state, EvalState::kSucceeded);
  ASSERT_TRUE(*s.create_eval(this->eval("e2")));
  auto empty = *s.add_jobs("e2", {}, 10);
  EXPECT_TRUE(empty.eval_finished);
  EXPECT_EQ(empty.eval_state, EvalState::kSucceeded);
}

TYPED_TEST_P(StateContract, StartJobCountsAttemptsAndReportsTerminalState) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a")}, 10).has_value());
  EXPECT_EQ(*s.start_job("a", 11), JobState::kBuilding);
  EXPECT_EQ(*s.start_job("a", 12), JobState::kBuilding);  // a builder died; another takes over
  EXPECT_EQ((*s.get_job("a"))->attempts, 2);
  ASSERT_TRUE(s.finish_job("a", JobState::kTimedOut, "timed out", 13).has_value());
  EXPECT_EQ(*s.start_job("a", 14), JobState::kTimedOut);
  EXPECT_FALSE(s.start_job("missing", 1).has_value());
}

TYPED_TEST_P(StateContract, FailEvalEndsItOnce) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.fail_eval("e1", "error: syntax error", 20).has_value());
  ASSERT_TRUE(s.fail_eval("e1", "second", 21).has_value());
  auto e = *s.get_eval("e1");
  EXPECT_EQ(e->state, EvalState::kFailed);
  EXPECT_EQ(e->error, "error: syntax error");
  EXPECT_EQ(e->finished_ms, 20);
}

TYPED_TEST_P(StateContract, LogsAreCappedToTheTail) {
  auto& s = *this->store;
  ASSERT_TRUE(s.append_log("j", "0123456789", 8).has_value());
  ASSERT_TRUE(s.append_log("j", "abc", 8).has_value());
  EXPECT_EQ(s.get_log("j")->size(), 8u);
  EXPECT_EQ(*s.get_log("j"), "56789abc");
  EXPECT_EQ(*s.get_log("none"), "");
  // Read in pieces: what a page with a long log asks for.
  EXPECT_EQ(*s.read_log("j", 2, 3), (LogSlice{"789", 8}));
  EXPECT_EQ(*s.read_log("j", 6, 100), (LogSlice{"bc", 8}));
  EXPECT_EQ(*s.read_log("j", 8, 10), (LogSlice{"", 8}));
  EXPECT_EQ(*s.read_log("j", 50, 10), (LogSlice{"", 8}));
  EXPECT_EQ(*s.read_log("j", 0, 0), (LogSlice{"", 8}));
  EXPECT_EQ(*s.read_log("none", 0, 10), (LogSlice{"", 0}));
}

TYPED_TEST_P(StateContract, ClaimOnceAndStatusOrdering) {
  auto& s = *this->store;
  EXPECT_TRUE(*s.claim_once("delivery:1", 60));
  EXPECT_FALSE(*s.claim_once("delivery:1", 60));
  EXPECT_TRUE(*s.advance_status("ctx", 100));
  EXPECT_TRUE(*s.advance_status("ctx", 100));  // a retry of the same status
  EXPECT_FALSE(*s.advance_status("ctx", 50));  // older than what was posted
  EXPECT_TRUE(*s.advance_status("ctx", 150));
}

TYPED_TEST_P(StateContract, RefHeadIsTheEvalTheLastWinningSupersedeLeft) {
  auto& s = *this->store;
  EXPECT_EQ(*s.ref_head("github/o/r/refs/heads/main"), "");
  ASSERT_TRUE(s.supersede("github/o/r/refs/heads/main", "e1", 10).has_value());
  EXPECT_EQ(*s.ref_head("github/o/r/refs/heads/main"), "e1");
  ASSERT_TRUE(s.supersede("github/o/r/refs/heads/main", "e2", 20).has_value());
  ASSERT_TRUE(s.supersede("github/o/r/refs/heads/main", "e0", 5).has_value());  // older: loses
  EXPECT_EQ(*s.ref_head("github/o/r/refs/heads/main"), "e2");
  EXPECT_EQ(*s.ref_head("github/o/r/refs/heads/other"), "");
}

TYPED_TEST_P(StateContract, ForgeRefsAreKeptAndReplaced) {
  auto& s = *this->store;
  EXPECT_FALSE(s.get_forge_ref("check:x")->has_value());
  ASSERT_TRUE(s.put_forge_ref("check:x", "123", 60).has_value());
  EXPECT_EQ(**s.get_forge_ref("check:x"), "123");
  ASSERT_TRUE(s.put_forge_ref("check:x", "456", 60).has_value());
  EXPECT_EQ(**s.get_forge_ref("check:x"), "456");
  const std::string hostile = "check:\n\xff*?[]{}";
  ASSERT_TRUE(s.put_forge_ref(hostile, "7", 60).has_value());
  EXPECT_EQ(**s.get_forge_ref(hostile), "7");
}

TYPED_TEST_P(StateContract, ProjectsAreReplacedPerForgeAndUnknownUntilDiscoveryRan) {
  auto& s = *this->store;
  using V = std::vector<std::string>;
  EXPECT_EQ(*s.is_project("gitea", "org/hello"), std::nullopt);
  EXPECT_TRUE(s.list_projects("gitea")->empty());
  ASSERT_TRUE(s.set_projects("gitea", {"org/hello", "org/other", "org/hello"}).has_value());
  EXPECT_EQ(*s.is_project("gitea", "org/hello"), std::optional<bool>(true));
  EXPECT_EQ(*s.is_project("gitea", "org/nope"), std::optional<bool>(false));
  EXPECT_EQ(*s.list_projects("gitea"), (V{"org/hello", "org/other"}));
  // Per forge: another forge's discovery never ran.
  EXPECT_EQ(*s.is_project("gitlab", "org/hello"), std::nullopt);
  // Replaced whole, not merged.
  ASSERT_TRUE(s.set_projects("gitea", {"org/third"}).has_value());
  EXPECT_EQ(*s.is_project("gitea", "org/hello"), std::optional<bool>(false));
  EXPECT_EQ(*s.list_projects("gitea"), (V{"org/third"}));
  // Nothing found is an answer too: every repository is gated.
  ASSERT_TRUE(s.set_projects("gitea", {}).has_value());
  EXPECT_EQ(*s.is_project("gitea", "org/third"), std::optional<bool>(false));
  EXPECT_TRUE(s.list_projects("gitea")->empty());
  // A long list arrives whole.
  V many;
  for (int i = 0; i < 2500; ++i) many.push_back("org/repo-" + std::to_string(100000 + i));
  ASSERT_TRUE(s.set_projects("gitlab", many).has_value());
  EXPECT_EQ(*s.list_projects("gitlab"), many);
  EXPECT_EQ(*s.is_project("gitlab", "org/repo-102499"), std::optional<bool>(true));
}

TYPED_TEST_P(StateContract, ProjectNamesAreStoredExactly) {
  auto& s = *this->store;
  const std::string nul("org/a\0b", 7);
  std::vector<std::string> hostile = {"org/line\nbreak", "org/*", "org/?[a-z]{x}", "Org/Case", "org/case",
                                      "org/\xff\xfe", "group/sub/proj", nul, " org/space ", ""};
  ASSERT_TRUE(s.set_projects("github", hostile).has_value());
  for (const auto& name : hostile) EXPECT_EQ(*s.is_project("github", name), std::optional<bool>(true)) << name;
  auto sorted = hostile;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(*s.list_projects("github"), sorted);
  // No pattern matching, no case folding, no trimming, no prefix match.
  for (const std::string name : {"org/anything", "org/CASE", "org/line", "org/a", "org/space", "group/sub", "org/?"}) {
    EXPECT_EQ(*s.is_project("github", name), std::optional<bool>(false)) << name;
  }
  // Forge names shaped like other keys stay apart.
  ASSERT_TRUE(s.set_projects("x:projects-known:github", {"o/r"}).has_value());
  ASSERT_TRUE(s.set_projects("*", {"o/r"}).has_value());
  EXPECT_EQ(*s.is_project("gitea", "o/r"), std::nullopt);
  EXPECT_EQ(*s.is_project("github", "o/r"), std::optional<bool>(false));
  EXPECT_EQ(*s.list_projects("github"), sorted);
}

TYPED_TEST_P(StateContract, EffectsAreListedPerEval) {
  auto& s = *this->store;
  ASSERT_TRUE(s.put_effect({"e1", "default.deploy", "running", "", 0}).has_value());
  ASSERT_TRUE(s.put_effect({"e1", "default.deploy", "succeeded", "done\n", 5}).has_value());
  auto fx = *s.list_effects("e1");
  ASSERT_EQ(fx.size(), 1u);
  EXPECT_EQ(fx[0].state, "succeeded");
  EXPECT_EQ(fx[0].log, "done\n");
  EXPECT_TRUE(s.list_effects("e2")->empty());
}

TYPED_TEST_P(StateContract, HostileNamesAreStoredExactly) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  auto j = this->job("h");
  j.attr = "checks.x86_64-linux.\"a.b c\" ${x} \xC3\xA9 ; rm -rf /";
  ASSERT_TRUE(s.add_jobs("e1", {j}, 1).has_value());
  EXPECT_EQ((*s.get_job("h"))->attr, j.attr);
}

TYPED_TEST_P(StateContract, EvalRecordRoundTrips) {
  auto& s = *this->store;
  auto e = this->eval("full");
  e.repo.html_url = "https://example.invalid/octo/hello";
  e.repo.installation_id = 12345678901;  // the App installation the webhook named
  e.tag = "v1.0";
  e.created_ms = 1732400000123;
  e.change = R"({"version":1,"id":"github:x","kind":"push"})";
  ASSERT_TRUE(*s.create_eval(e));
  auto got = **s.get_eval("full");
  EXPECT_EQ(got.change, e.change);
  EXPECT_EQ(got.id, "full");
  EXPECT_EQ(got.change_id, e.change_id);
  EXPECT_EQ(got.repo, e.repo);
  EXPECT_EQ(got.ref, e.ref);
  EXPECT_EQ(got.branch, e.branch);
  EXPECT_EQ(got.tag, "v1.0");
  EXPECT_EQ(got.rev, e.rev);
  EXPECT_EQ(got.created_ms, 1732400000123);
  EXPECT_EQ(got.finished_ms, 0);
  EXPECT_EQ(got.error, "");
  EXPECT_EQ(got.jobs_total, 0);
}

// An evaluation that fails after some jobs were recorded: their queued
// jobs end, running ones are stopped by builders, and the eval ends failed
// with the failure once the last one has.
TYPED_TEST_P(StateContract, CancellingAsFailedEndsTheEvalFailedWithTheReason) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a"), this->job("b")}, 10, false).has_value());
  ASSERT_EQ(*s.start_job("a", 11), JobState::kBuilding);
  auto t = *s.cancel_eval("e1", "evaluation of checks.aarch64-linux timed out", 12, EvalState::kFailed);
  EXPECT_EQ(t.cancelled, std::vector<std::string>{"b"});
  EXPECT_FALSE(t.eval_finished);
  auto e = **s.get_eval("e1");
  EXPECT_TRUE(e.cancelled);
  EXPECT_EQ(e.cancel_ends_as, EvalState::kFailed);
  EXPECT_EQ(e.error, "evaluation of checks.aarch64-linux timed out");
  EXPECT_EQ(*s.cancel_eval("e1", "again", 13, EvalState::kFailed), t);  // a repeat: the same
  auto end = *s.finish_job("a", JobState::kCancelled, "evaluation of checks.aarch64-linux timed out", 14);
  EXPECT_TRUE(end.eval_finished);
  EXPECT_EQ(end.eval_state, EvalState::kFailed);
  EXPECT_EQ((**s.get_eval("e1")).state, EvalState::kFailed);

  // Nothing building: it ends failed at once; a plain cancel still ends cancelled.
  auto other = this->eval();
  other.id = "e2";
  ASSERT_TRUE(*s.create_eval(other));
  ASSERT_TRUE(s.add_jobs("e2", {this->job("c")}, 10, false).has_value());
  EXPECT_EQ(s.cancel_eval("e2", "broken", 12, EvalState::kFailed)->eval_state, EvalState::kFailed);
  EXPECT_EQ((**s.get_eval("e2")).cancel_ends_as, EvalState::kFailed);
  auto third = this->eval();
  third.id = "e3";
  ASSERT_TRUE(*s.create_eval(third));
  EXPECT_EQ(s.cancel_eval("e3", "superseded", 12)->eval_state, EvalState::kCancelled);
  EXPECT_EQ((**s.get_eval("e3")).cancel_ends_as, EvalState::kCancelled);
}

TYPED_TEST_P(StateContract, ListJobsKeepsEvaluationOrderAndEveryField) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  auto a = this->job("zeta");
  a.outputs = {{"out", "/nix/store/zeta"}, {"dev", "/nix/store/zeta-dev"}, {"lib", "/nix/store/zeta-lib"}};
  a.features = {"kvm", "nixos-test"};
  auto bad = this->job("alpha", {}, JobState::kEvalFailed);
  ASSERT_TRUE(s.add_jobs("e1", {a, bad, this->job("mid", {"zeta"})}, 10).has_value());
  auto jobs = *s.list_jobs("e1");
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(jobs[0].id, "zeta");
  EXPECT_EQ(jobs[1].id, "alpha");
  EXPECT_EQ(jobs[2].id, "mid");
  EXPECT_EQ(jobs[0].outputs, a.outputs);
  EXPECT_EQ(jobs[0].drv_path, "/nix/store/zeta.drv");
  EXPECT_EQ(jobs[0].system, "x86_64-linux");
  EXPECT_EQ(jobs[0].finished_ms, 0);
  EXPECT_EQ(jobs[0].features, a.features);
  EXPECT_TRUE(jobs[2].features.empty());
  EXPECT_EQ((*s.get_job("zeta"))->features, a.features);
  EXPECT_EQ(jobs[1].state, JobState::kEvalFailed);
  EXPECT_EQ(jobs[1].drv_path, "");
  EXPECT_EQ(jobs[1].finished_ms, 10);
  EXPECT_TRUE(s.list_jobs("nope")->empty());
}

TYPED_TEST_P(StateContract, ErrorsSayHowToReact) {
  auto& s = *this->store;
  auto missing_eval = s.add_jobs("nope", {this->job("a")}, 1);
  ASSERT_FALSE(missing_eval.has_value());
  EXPECT_EQ(missing_eval.error().code, ErrorCode::kNotFound);
  auto fail_missing = s.fail_eval("nope", "x", 1);
  ASSERT_FALSE(fail_missing.has_value());
  EXPECT_EQ(fail_missing.error().code, ErrorCode::kNotFound);
  auto start_missing = s.start_job("nope", 1);
  ASSERT_FALSE(start_missing.has_value());
  EXPECT_EQ(start_missing.error().code, ErrorCode::kNotFound);
  auto finish_missing = s.finish_job("nope", JobState::kSucceeded, "", 1);
  ASSERT_FALSE(finish_missing.has_value());
  EXPECT_EQ(finish_missing.error().code, ErrorCode::kNotFound);

  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a")}, 1).has_value());
  auto not_terminal = s.finish_job("a", JobState::kBuilding, "", 2);
  ASSERT_FALSE(not_terminal.has_value());
  EXPECT_EQ(not_terminal.error().code, ErrorCode::kPoison);
  EXPECT_EQ(this->state_of("a"), JobState::kQueued);

  ASSERT_TRUE(*s.create_eval(this->eval("e2")));
  ASSERT_TRUE(s.fail_eval("e2", "error: syntax error", 3).has_value());
  auto after_end = s.add_jobs("e2", {this->job("b")}, 4);
  ASSERT_FALSE(after_end.has_value());
  EXPECT_EQ(after_end.error().code, ErrorCode::kRejected);
  EXPECT_FALSE(s.get_job("b")->has_value());
}

TYPED_TEST_P(StateContract, DiamondFailureFailsEachDependentOnce) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1",
                         {this->job("a"), this->job("b", {"a"}), this->job("c", {"a"}), this->job("d", {"b", "c"}),
                          this->job("e", {"d", "a"})},
                         10)
                  .has_value());
  auto t = *s.finish_job("a", JobState::kFailed, "exit 1", 11);
  EXPECT_EQ(this->sorted(t.dependency_failed), (std::vector<std::string>{"b", "c", "d", "e"}));
  EXPECT_TRUE(t.eval_finished);
  EXPECT_EQ(t.eval_state, EvalState::kFailed);
  auto e = *s.get_eval("e1");
  EXPECT_EQ(e->jobs_failed, 5);
  EXPECT_EQ(e->jobs_pending, 0);
  EXPECT_EQ((*s.get_job("d"))->finished_ms, 11);
}

TYPED_TEST_P(StateContract, DuplicateDependencyEdgesReleaseOnce) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a"), this->job("b", {"a", "a"})}, 10).has_value());
  auto t = *s.finish_job("a", JobState::kSucceeded, "", 11);
  EXPECT_EQ(t.ready, std::vector<std::string>{"b"});
}

TYPED_TEST_P(StateContract, DependenciesOutsideTheEvalAreIgnored) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("x")}, 10).has_value());
  ASSERT_TRUE(*s.create_eval(this->eval("e2")));
  // "x" belongs to another eval and "ghost" to none: neither holds "y" back.
  auto t = *s.add_jobs("e2", {this->job("y", {"x", "ghost"})}, 11);
  EXPECT_EQ(t.ready, std::vector<std::string>{"y"});
  // Nor does the other eval's failure reach into this one.
  auto tx = *s.finish_job("x", JobState::kFailed, "", 12);
  EXPECT_TRUE(tx.dependency_failed.empty());
  EXPECT_EQ(this->state_of("y"), JobState::kQueued);
  EXPECT_EQ((*s.get_eval("e2"))->jobs_pending, 1);
  EXPECT_EQ((*s.get_eval("e1"))->jobs_pending, 0);
  EXPECT_TRUE(tx.eval_finished);
}

TYPED_TEST_P(StateContract, JobEndedByItsDependencyReplaysAnEmptyTransition) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a"), this->job("b", {"a"}), this->job("c")}, 10).has_value());
  ASSERT_TRUE(s.finish_job("a", JobState::kFailed, "", 11).has_value());
  // A builder that had b in hand reports late: b stays dependency_failed.
  auto t = *s.finish_job("b", JobState::kSucceeded, "", 12);
  EXPECT_TRUE(t.ready.empty());
  EXPECT_TRUE(t.dependency_failed.empty());
  EXPECT_FALSE(t.eval_finished);
  EXPECT_EQ(t.eval_state, EvalState::kBuilding);
  EXPECT_EQ(this->state_of("b"), JobState::kDependencyFailed);
  EXPECT_EQ((*s.get_eval("e1"))->jobs_pending, 1);
}

TYPED_TEST_P(StateContract, JobsEndingAfterFailEvalLeaveItFailed) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a")}, 10).has_value());
  ASSERT_TRUE(s.fail_eval("e1", "cancelled by a newer push", 11).has_value());
  auto t = *s.finish_job("a", JobState::kSucceeded, "", 12);
  EXPECT_FALSE(t.eval_finished);
  EXPECT_EQ(t.eval_state, EvalState::kFailed);
  auto e = *s.get_eval("e1");
  EXPECT_EQ(e->state, EvalState::kFailed);
  EXPECT_EQ(e->finished_ms, 11);
  EXPECT_EQ(e->jobs_pending, 0);
}

TYPED_TEST_P(StateContract, StatusOrderingIsExactForMicrosecondTimestamps) {
  auto& s = *this->store;
  const std::int64_t t0 = 1732400000000000;  // 2024, in microseconds
  EXPECT_TRUE(*s.advance_status("github:octo/hello@abc/flurry:checks.x", t0 + 1));
  EXPECT_FALSE(*s.advance_status("github:octo/hello@abc/flurry:checks.x", t0));
  EXPECT_TRUE(*s.advance_status("github:octo/hello@abc/flurry:checks.x", t0 + 2));
  EXPECT_TRUE(*s.advance_status("github:octo/hello@abc/flurry:checks.y", t0));  // contexts are independent
}

TYPED_TEST_P(StateContract, EffectsAreSortedByNameAndKeepEveryField) {
  auto& s = *this->store;
  ASSERT_TRUE(s.put_effect({"e1", "web.deploy", "failed", "boom\n", 7}).has_value());
  ASSERT_TRUE(s.put_effect({"e1", "db:migrate", "running", "", 0}).has_value());
  ASSERT_TRUE(s.put_effect({"e2", "other", "running", "", 0}).has_value());
  auto fx = *s.list_effects("e1");
  ASSERT_EQ(fx.size(), 2u);
  EXPECT_EQ(fx[0].name, "db:migrate");
  EXPECT_EQ(fx[0].eval_id, "e1");
  EXPECT_EQ(fx[0].state, "running");
  EXPECT_EQ(fx[1].name, "web.deploy");
  EXPECT_EQ(fx[1].state, "failed");
  EXPECT_EQ(fx[1].log, "boom\n");
  EXPECT_EQ(fx[1].finished_ms, 7);
}

// Ids and names are attacker-controlled bytes: invalid UTF-8, NUL, quotes,
// newlines, JSON and shell syntax all come back exactly as written.
TYPED_TEST_P(StateContract, HostileBytesAreStoredExactly) {
  auto& s = *this->store;
  const std::string nasty = std::string("q\"uote' \\ \n\t${x} $(rm -rf /) \xC3\xA9 \xFF\xFE \xED\xA0\x80 ") +
                            std::string(1, '\0') + "end {\"a\":[]}";
  auto e = this->eval("ev " + nasty);
  e.branch = nasty;
  e.ref = "refs/heads/" + nasty;
  ASSERT_TRUE(*s.create_eval(e));
  auto got = **s.get_eval(e.id);
  EXPECT_EQ(got.branch, nasty);
  EXPECT_EQ(got.ref, e.ref);

  auto a = this->job("a" + nasty);
  a.attr = "checks.x86_64-linux." + nasty;
  a.drv_path = "/nix/store/" + nasty;
  a.outputs = {{nasty, "/nix/store/o" + nasty}};
  auto bad = this->job("bad" + nasty, {}, JobState::kEvalFailed);
  bad.error = "error: " + nasty;
  auto b = this->job("b" + nasty, {a.id});
  auto t = *s.add_jobs(e.id, {a, bad, b}, 1);
  EXPECT_EQ(t.ready, std::vector<std::string>{a.id});
  auto ja = **s.get_job(a.id);
  EXPECT_EQ(ja.attr, a.attr);
  EXPECT_EQ(ja.drv_path, a.drv_path);
  EXPECT_EQ(ja.outputs, a.outputs);
  EXPECT_EQ(ja.eval_id, e.id);
  EXPECT_EQ((*s.get_job(bad.id))->error, bad.error);
  auto tf = *s.finish_job(a.id, JobState::kFailed, "exit " + nasty, 2);
  EXPECT_EQ(tf.dependency_failed, std::vector<std::string>{b.id});
  EXPECT_EQ((*s.get_job(a.id))->error, "exit " + nasty);
  EXPECT_EQ((*s.get_job(b.id))->error, "dependency " + a.attr + " failed");
  EXPECT_EQ(*s.finish_job(a.id, JobState::kFailed, "", 3), tf);

  ASSERT_TRUE(s.append_log(a.id, nasty, 1000).has_value());
  EXPECT_EQ(*s.get_log(a.id), nasty);
  ASSERT_TRUE(s.put_effect({e.id, nasty, "failed", nasty, 4}).has_value());
  auto fx = *s.list_effects(e.id);
  ASSERT_EQ(fx.size(), 1u);
  EXPECT_EQ(fx[0].name, nasty);
  EXPECT_EQ(fx[0].log, nasty);
  EXPECT_TRUE(*s.claim_once(nasty, 60));
  EXPECT_FALSE(*s.claim_once(nasty, 60));
  EXPECT_TRUE(*s.advance_status(nasty, 5));
  EXPECT_FALSE(*s.advance_status(nasty, 4));
}

// Ids that look like another record's key suffix stay separate records.
TYPED_TEST_P(StateContract, IdsShapedLikeKeySuffixesDoNotCollide) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval("e1")));
  ASSERT_TRUE(*s.create_eval(this->eval("e1:jobs")));
  ASSERT_TRUE(*s.create_eval(this->eval("e1:added")));
  auto t = *s.add_jobs("e1",
                       {this->job("a"), this->job("a:children", {"a"}), this->job("a:transition", {"a"}),
                        this->job("a:log")},
                       10);
  EXPECT_EQ(t.ready, (std::vector<std::string>{"a", "a:log"}));
  auto t2 = *s.add_jobs("e1:jobs", {this->job("j:children")}, 10);
  EXPECT_EQ(t2.ready, std::vector<std::string>{"j:children"});
  auto ta = *s.finish_job("a", JobState::kSucceeded, "", 11);
  EXPECT_EQ(this->sorted(ta.ready), (std::vector<std::string>{"a:children", "a:transition"}));
  EXPECT_EQ(s.list_jobs("e1")->size(), 4u);
  EXPECT_EQ(s.list_jobs("e1:jobs")->size(), 1u);
  EXPECT_EQ((*s.get_eval("e1:added"))->state, EvalState::kEvaluating);
}


TYPED_TEST_P(StateContract, CancelEndsQueuedJobsAndTheEvalWhenBuildingJobsFinish) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a"), this->job("b", {"a"}), this->job("c")}, 10).has_value());
  ASSERT_EQ(*s.start_job("a", 11), JobState::kBuilding);
  auto t = s.cancel_eval("e1", "superseded by bbbb", 12);
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ(this->sorted(t->cancelled), (std::vector<std::string>{"b", "c"}));
  EXPECT_FALSE(t->eval_finished);
  EXPECT_EQ(this->state_of("b"), JobState::kCancelled);
  EXPECT_EQ((*s.get_job("c"))->error, "superseded by bbbb");
  EXPECT_EQ(this->state_of("a"), JobState::kBuilding);
  // Builders of the running job see the mark and the reason.
  EXPECT_FALSE(this->eval().cancelled);
  EXPECT_TRUE((*s.get_eval("e1"))->cancelled);
  EXPECT_EQ((*s.get_eval("e1"))->cancel_reason, "superseded by bbbb");
  // The running build ends (here as a success); it releases nothing and ends the eval.
  auto done = *s.finish_job("a", JobState::kSucceeded, "", 13);
  EXPECT_TRUE(done.ready.empty());
  EXPECT_TRUE(done.eval_finished);
  EXPECT_EQ(done.eval_state, EvalState::kCancelled);
  EXPECT_EQ((*s.get_eval("e1"))->state, EvalState::kCancelled);
  // A repeat changes nothing and answers the same.
  EXPECT_EQ(*s.cancel_eval("e1", "again", 14), *t);
  EXPECT_EQ((*s.get_eval("e1"))->cancel_reason, "superseded by bbbb");
}

TYPED_TEST_P(StateContract, CancelOfAnEvaluatingEvalEndsItAndRefusesItsJobs) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  auto t = *s.cancel_eval("e1", "superseded", 5);
  EXPECT_TRUE(t.eval_finished);
  EXPECT_EQ(t.eval_state, EvalState::kCancelled);
  auto e = **s.get_eval("e1");
  EXPECT_EQ(e.state, EvalState::kCancelled);
  EXPECT_EQ(e.error, "superseded");
  auto added = s.add_jobs("e1", {this->job("a")}, 6);
  ASSERT_FALSE(added.has_value());
  EXPECT_EQ(added.error().code, ErrorCode::kRejected);
}

TYPED_TEST_P(StateContract, CancelOfAnEndedEvalChangesNothing) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a")}, 1).has_value());
  ASSERT_TRUE(s.finish_job("a", JobState::kSucceeded, "", 2).has_value());
  auto t = *s.cancel_eval("e1", "late", 3);
  EXPECT_FALSE(t.eval_finished);
  EXPECT_TRUE(t.cancelled.empty());
  EXPECT_EQ((*s.get_eval("e1"))->state, EvalState::kSucceeded);
  EXPECT_FALSE(s.cancel_eval("nope", "x", 1).has_value());
}

TYPED_TEST_P(StateContract, SupersedeKeepsTheNewestEvalPerRef) {
  auto& s = *this->store;
  EXPECT_EQ(*s.supersede("github/o/r/refs/heads/main", "e1", 100), "");
  EXPECT_EQ(*s.supersede("github/o/r/refs/heads/main", "e1", 100), "");  // a redelivery
  EXPECT_EQ(*s.supersede("github/o/r/refs/heads/main", "e2", 200), "e1");
  EXPECT_EQ(*s.supersede("github/o/r/refs/heads/main", "e2", 200), "e1");  // a repeat answers the same
  EXPECT_EQ(*s.supersede("github/o/r/refs/heads/main", "e0", 150), "e0");  // older than the head: cancel yourself
  EXPECT_EQ(*s.supersede("github/o/r/refs/heads/other \"x\"", "e3", 50), "");
  EXPECT_EQ(*s.supersede("github/o/r/refs/heads/main", "e4", 200), "e2");  // ties go to the later arrival
}

// --- Streaming: an eval's jobs arrive in several batches. ---

TYPED_TEST_P(StateContract, BatchEdgeToAQueuedJobOfAnEarlierBatchWaitsForIt) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  auto t1 = *s.add_jobs("e1", {this->job("a")}, 10, false);
  EXPECT_EQ(t1.ready, std::vector<std::string>{"a"});
  EXPECT_FALSE(t1.eval_finished);
  EXPECT_EQ(t1.eval_state, EvalState::kEvaluating);
  auto t2 = *s.add_jobs("e1", {this->job("b", {"a"}), this->job("c")}, 11, false);
  EXPECT_EQ(t2.ready, std::vector<std::string>{"c"});
  EXPECT_TRUE(t2.dependency_failed.empty());
  EXPECT_EQ(t2.eval_state, EvalState::kEvaluating);
  EXPECT_EQ((*s.get_job("b"))->deps_pending, 1);
  auto e = **s.get_eval("e1");
  EXPECT_EQ(e.state, EvalState::kEvaluating);
  EXPECT_EQ(e.jobs_total, 3);
  EXPECT_EQ(e.jobs_pending, 3);
  EXPECT_EQ(s.list_jobs("e1")->size(), 3u);
  auto ta = *s.finish_job("a", JobState::kSucceeded, "", 12);
  EXPECT_EQ(ta.ready, std::vector<std::string>{"b"});
  EXPECT_EQ(ta.eval_state, EvalState::kEvaluating);
  EXPECT_EQ((*s.get_job("b"))->deps_pending, 0);
}

TYPED_TEST_P(StateContract, BatchEdgeToASucceededJobOfAnEarlierBatchIsMet) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a")}, 10, false).has_value());
  ASSERT_TRUE(s.finish_job("a", JobState::kSucceeded, "", 11).has_value());
  auto t = *s.add_jobs("e1", {this->job("b", {"a"}), this->job("c", {"b"})}, 12, false);
  EXPECT_EQ(t.ready, std::vector<std::string>{"b"});
  EXPECT_TRUE(t.dependency_failed.empty());
  EXPECT_EQ((*s.get_job("b"))->deps_pending, 0);
  EXPECT_EQ((*s.get_job("c"))->deps_pending, 1);
  auto tb = *s.finish_job("b", JobState::kSucceeded, "", 13);
  EXPECT_EQ(tb.ready, std::vector<std::string>{"c"});
}

TYPED_TEST_P(StateContract, BatchEdgeToAFailedJobOfAnEarlierBatchIsBornDependencyFailed) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a"), this->job("ok")}, 10, false).has_value());
  ASSERT_TRUE(s.finish_job("a", JobState::kFailed, "exit 1", 11).has_value());
  ASSERT_TRUE(s.finish_job("ok", JobState::kSucceeded, "", 11).has_value());
  auto t = *s.add_jobs("e1", {this->job("b", {"ok", "a"}), this->job("c", {"b"}), this->job("d")}, 12, false);
  EXPECT_EQ(t.ready, std::vector<std::string>{"d"});
  EXPECT_EQ(t.dependency_failed, (std::vector<std::string>{"b", "c"}));
  EXPECT_FALSE(t.eval_finished);
  for (const auto* id : {"b", "c"}) {
    auto j = **s.get_job(id);
    EXPECT_EQ(j.state, JobState::kDependencyFailed) << id;
    EXPECT_EQ(j.error, "dependency checks.x86_64-linux.a failed") << id;
    EXPECT_EQ(j.finished_ms, 12) << id;
  }
  auto e = **s.get_eval("e1");
  EXPECT_EQ(e.state, EvalState::kEvaluating);
  EXPECT_EQ(e.jobs_total, 5);
  EXPECT_EQ(e.jobs_pending, 1);
  EXPECT_EQ(e.jobs_failed, 3);
  // A builder that gets to b anyway changes nothing.
  auto late = *s.finish_job("b", JobState::kSucceeded, "", 13);
  EXPECT_FALSE(late.eval_finished);
  EXPECT_EQ(this->state_of("b"), JobState::kDependencyFailed);
  ASSERT_TRUE(s.finish_job("d", JobState::kSucceeded, "", 14).has_value());
  auto done = *s.add_jobs("e1", {}, 15);
  EXPECT_TRUE(done.eval_finished);
  EXPECT_EQ(done.eval_state, EvalState::kFailed);
}

TYPED_TEST_P(StateContract, EvalDoesNotEndBeforeItsJobSetIsComplete) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  auto t1 = *s.add_jobs("e1", {this->job("a"), this->job("done", {}, JobState::kSkipped)}, 10, false);
  EXPECT_FALSE(t1.eval_finished);
  auto ta = *s.finish_job("a", JobState::kSucceeded, "", 11);
  EXPECT_FALSE(ta.eval_finished);
  EXPECT_EQ(ta.eval_state, EvalState::kEvaluating);
  auto e = **s.get_eval("e1");
  EXPECT_EQ(e.state, EvalState::kEvaluating);
  EXPECT_EQ(e.jobs_pending, 0);
  EXPECT_EQ(e.finished_ms, 0);
  // An empty batch without `complete` changes nothing either.
  auto t2 = *s.add_jobs("e1", {}, 12, false);
  EXPECT_FALSE(t2.eval_finished);
  EXPECT_EQ(t2.eval_state, EvalState::kEvaluating);
  // The final call ends it, and only that call says so.
  auto last = *s.add_jobs("e1", {}, 13);
  EXPECT_TRUE(last.eval_finished);
  EXPECT_EQ(last.eval_state, EvalState::kSucceeded);
  EXPECT_TRUE(last.ready.empty());
  e = **s.get_eval("e1");
  EXPECT_EQ(e.state, EvalState::kSucceeded);
  EXPECT_EQ(e.finished_ms, 13);
  EXPECT_EQ(e.jobs_total, 2);
}

TYPED_TEST_P(StateContract, CompleteCallMovesTheEvalToBuildingWhileJobsArePending) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a")}, 10, false).has_value());
  auto t = *s.add_jobs("e1", {this->job("b", {"a"})}, 11);
  EXPECT_TRUE(t.ready.empty());
  EXPECT_FALSE(t.eval_finished);
  EXPECT_EQ(t.eval_state, EvalState::kBuilding);
  EXPECT_EQ((*s.get_eval("e1"))->state, EvalState::kBuilding);
  auto ta = *s.finish_job("a", JobState::kSucceeded, "", 12);
  EXPECT_EQ(ta.ready, std::vector<std::string>{"b"});
  auto tb = *s.finish_job("b", JobState::kSucceeded, "", 13);
  EXPECT_TRUE(tb.eval_finished);
  EXPECT_EQ(tb.eval_state, EvalState::kSucceeded);
}

// A batch sent again (its reply was lost) adds nothing and answers with the
// standing of its jobs: a queued job is ready again, a failed one is listed.
TYPED_TEST_P(StateContract, RepeatedBatchReturnsTheStandingOfItsJobs) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  std::vector<JobSpec> batch = {this->job("a"), this->job("b", {"a"}), this->job("x", {}, JobState::kEvalFailed),
                                this->job("y", {"x"})};
  auto first = *s.add_jobs("e1", batch, 10, false);
  EXPECT_EQ(first.ready, std::vector<std::string>{"a"});
  EXPECT_EQ(first.dependency_failed, std::vector<std::string>{"y"});
  auto again = *s.add_jobs("e1", batch, 11, false);
  EXPECT_EQ(again, first);
  auto e = **s.get_eval("e1");
  EXPECT_EQ(e.jobs_total, 4);
  EXPECT_EQ(e.jobs_pending, 2);
  EXPECT_EQ(e.jobs_failed, 2);
  EXPECT_EQ(s.list_jobs("e1")->size(), 4u);
  EXPECT_EQ((*s.get_job("y"))->finished_ms, 10);

  ASSERT_TRUE(s.finish_job("a", JobState::kSucceeded, "", 12).has_value());
  auto later = *s.add_jobs("e1", batch, 13, false);
  EXPECT_EQ(later.ready, std::vector<std::string>{"b"});
  EXPECT_EQ(later.dependency_failed, std::vector<std::string>{"y"});
  // Old and new jobs mixed: the old ones are left as they are, the new one
  // is added; ids repeated within a batch count once.
  auto mixed = *s.add_jobs("e1", {this->job("b"), this->job("c", {"b"}), this->job("c"), this->job("a")}, 14, false);
  EXPECT_EQ(mixed.ready, std::vector<std::string>{"b"});
  EXPECT_EQ((*s.get_job("c"))->deps_pending, 1);
  EXPECT_EQ((*s.get_eval("e1"))->jobs_total, 5);
  EXPECT_EQ(s.list_jobs("e1")->size(), 5u);
}

// The replay call (complete, on an eval whose job set is complete) returns
// the standing of every job, also after the eval ended.
TYPED_TEST_P(StateContract, CompleteReplayReturnsTheStandingOfEveryJob) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a"), this->job("b")}, 10, false).has_value());
  auto last = *s.add_jobs("e1", {this->job("c", {"a"}), this->job("x", {}, JobState::kEvalFailed), this->job("y", {"x"})}, 11);
  EXPECT_TRUE(last.ready.empty());
  EXPECT_EQ(last.dependency_failed, std::vector<std::string>{"y"});
  ASSERT_TRUE(s.finish_job("a", JobState::kSucceeded, "", 12).has_value());

  auto replay = *s.add_jobs("e1", {}, 13);
  EXPECT_EQ(replay.ready, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(replay.dependency_failed, std::vector<std::string>{"y"});
  EXPECT_FALSE(replay.eval_finished);
  EXPECT_EQ(replay.eval_state, EvalState::kBuilding);
  // Repeating the last batch answers for every job too, and adds nothing.
  auto repeat = *s.add_jobs("e1", {this->job("c", {"a"}), this->job("z")}, 14);
  EXPECT_EQ(repeat, replay);
  EXPECT_FALSE(s.get_job("z")->has_value());

  ASSERT_TRUE(s.finish_job("b", JobState::kSucceeded, "", 15).has_value());
  auto end = *s.finish_job("c", JobState::kSucceeded, "", 16);
  EXPECT_TRUE(end.eval_finished);
  EXPECT_EQ(end.eval_state, EvalState::kFailed);
  auto after = s.add_jobs("e1", {}, 17);
  ASSERT_TRUE(after.has_value()) << after.error().message;
  EXPECT_TRUE(after->ready.empty());
  EXPECT_EQ(after->dependency_failed, std::vector<std::string>{"y"});
  EXPECT_TRUE(after->eval_finished);
  EXPECT_EQ(after->eval_state, EvalState::kFailed);
  auto e = **s.get_eval("e1");
  EXPECT_EQ(e.finished_ms, 16);
  EXPECT_EQ(e.jobs_total, 5);

  // Ended succeeded in add_jobs itself: the replay says so again.
  ASSERT_TRUE(*s.create_eval(this->eval("e2")));
  ASSERT_TRUE(s.add_jobs("e2", {this->job("s", {}, JobState::kSkipped)}, 20)->eval_finished);
  auto again = *s.add_jobs("e2", {}, 21);
  EXPECT_TRUE(again.eval_finished);
  EXPECT_EQ(again.eval_state, EvalState::kSucceeded);
  EXPECT_TRUE(again.ready.empty());
}

TYPED_TEST_P(StateContract, AddJobsIsRefusedOnceTheJobSetIsCompleteOrTheEvalWasStopped) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a")}, 10).has_value());
  auto more = s.add_jobs("e1", {this->job("b")}, 11, false);
  ASSERT_FALSE(more.has_value());
  EXPECT_EQ(more.error().code, ErrorCode::kRejected);
  EXPECT_FALSE(s.get_job("b")->has_value());
  EXPECT_EQ((*s.get_eval("e1"))->jobs_total, 1);

  // Failed by fail_eval while its jobs were arriving.
  ASSERT_TRUE(*s.create_eval(this->eval("e2")));
  ASSERT_TRUE(s.add_jobs("e2", {this->job("c")}, 10, false).has_value());
  ASSERT_TRUE(s.fail_eval("e2", "error: evaluation crashed", 11).has_value());
  for (bool complete : {false, true}) {
    auto after_fail = s.add_jobs("e2", {this->job("d")}, 12, complete);
    ASSERT_FALSE(after_fail.has_value());
    EXPECT_EQ(after_fail.error().code, ErrorCode::kRejected);
  }
  EXPECT_FALSE(s.get_job("d")->has_value());
}

TYPED_TEST_P(StateContract, CancelOfAnEvaluatingEvalWithJobsEndsWhenItsBuildingJobsFinish) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a"), this->job("b"), this->job("c", {"a"})}, 10, false).has_value());
  ASSERT_EQ(*s.start_job("a", 11), JobState::kBuilding);
  auto t = *s.cancel_eval("e1", "superseded", 12);
  EXPECT_EQ(t.cancelled, (std::vector<std::string>{"b", "c"}));
  EXPECT_FALSE(t.eval_finished);
  EXPECT_EQ(this->state_of("b"), JobState::kCancelled);
  EXPECT_EQ((*s.get_job("c"))->error, "superseded");
  EXPECT_EQ(this->state_of("a"), JobState::kBuilding);
  for (bool complete : {false, true}) {
    auto added = s.add_jobs("e1", {this->job("d")}, 13, complete);
    ASSERT_FALSE(added.has_value());
    EXPECT_EQ(added.error().code, ErrorCode::kRejected);
  }
  EXPECT_FALSE(s.get_job("d")->has_value());
  // The build ends normally, releases nothing and ends the eval cancelled,
  // although its job set never became complete.
  auto done = *s.finish_job("a", JobState::kSucceeded, "", 14);
  EXPECT_TRUE(done.ready.empty());
  EXPECT_TRUE(done.eval_finished);
  EXPECT_EQ(done.eval_state, EvalState::kCancelled);
  auto e = **s.get_eval("e1");
  EXPECT_EQ(e.state, EvalState::kCancelled);
  EXPECT_EQ(e.error, "superseded");
  EXPECT_EQ(e.finished_ms, 14);
  EXPECT_EQ(e.jobs_pending, 0);
  EXPECT_EQ(e.jobs_failed, 2);
  EXPECT_EQ(*s.cancel_eval("e1", "again", 15), t);

  // Nothing building: it ends at once.
  ASSERT_TRUE(*s.create_eval(this->eval("e2")));
  ASSERT_TRUE(s.add_jobs("e2", {this->job("p"), this->job("q", {}, JobState::kSkipped)}, 20, false).has_value());
  auto now = *s.cancel_eval("e2", "superseded", 21);
  EXPECT_EQ(now.cancelled, std::vector<std::string>{"p"});
  EXPECT_TRUE(now.eval_finished);
  EXPECT_EQ(now.eval_state, EvalState::kCancelled);
  EXPECT_EQ((*s.get_eval("e2"))->state, EvalState::kCancelled);
}

TYPED_TEST_P(StateContract, WarningsAreKeptOnceInOrderAndCapped) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  EXPECT_TRUE((*s.get_eval("e1"))->warnings.empty());
  ASSERT_TRUE(s.add_eval_warnings("e1", {"warning: b", "warning: a", "warning: b"}).has_value());
  ASSERT_TRUE(s.add_eval_warnings("e1", {"warning: a", "warning: c"}).has_value());
  ASSERT_TRUE(s.add_eval_warnings("e1", {}).has_value());
  EXPECT_EQ((*s.get_eval("e1"))->warnings, (std::vector<std::string>{"warning: b", "warning: a", "warning: c"}));

  // Long ones are cut to kMaxWarningBytes and then compared.
  const std::string nasty = std::string("q\"uote' \n\xFF ") + std::string(1, '\0') + "end";
  const std::string long_one = nasty + std::string(kMaxWarningBytes, 'x');
  ASSERT_TRUE(s.add_eval_warnings("e1", {long_one, long_one + "tail", long_one.substr(0, kMaxWarningBytes)}).has_value());
  auto w = (*s.get_eval("e1"))->warnings;
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[3], long_one.substr(0, kMaxWarningBytes));

  // At most kMaxWarnings are kept: the first ones.
  std::vector<std::string> many;
  for (std::size_t i = 0; i < 2 * kMaxWarnings; ++i) many.push_back("warning " + std::to_string(i));
  ASSERT_TRUE(s.add_eval_warnings("e1", many).has_value());
  ASSERT_TRUE(s.add_eval_warnings("e1", {"one more"}).has_value());
  w = (*s.get_eval("e1"))->warnings;
  ASSERT_EQ(w.size(), kMaxWarnings);
  EXPECT_EQ(w[4], "warning 0");
  EXPECT_EQ(w.back(), "warning " + std::to_string(kMaxWarnings - 5));

  auto missing = s.add_eval_warnings("nope", {"x"});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(*s.create_eval(this->eval("e2")));
  EXPECT_TRUE((*s.get_eval("e2"))->warnings.empty());
}

TYPED_TEST_P(StateContract, JobRecordsShowTheirPendingDependencies) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a"), this->job("b"), this->job("c", {"a", "b"}), this->job("d", {"c"})}, 10).has_value());
  auto pending = [&] {
    std::vector<int> out;
    auto jobs = s.list_jobs("e1");  // kept: iterating *s.list_jobs(...) would outlive the temporary
    for (const auto& j : *jobs) out.push_back(j.deps_pending);
    return out;
  };
  EXPECT_EQ(pending(), (std::vector<int>{0, 0, 2, 1}));
  EXPECT_EQ((*s.get_job("c"))->deps_pending, 2);
  ASSERT_TRUE(s.finish_job("a", JobState::kSucceeded, "", 11).has_value());
  EXPECT_EQ((*s.get_job("c"))->deps_pending, 1);
  ASSERT_TRUE(s.finish_job("b", JobState::kSucceeded, "", 12).has_value());
  EXPECT_EQ(pending(), (std::vector<int>{0, 0, 0, 1}));
}

TYPED_TEST_P(StateContract, FailedBuildCacheKeepsTheFirstFailureUntilCleared) {
  auto& s = *this->store;
  const std::string drv = "/nix/store/x-odd name \"q\".drv";
  FailedBuild first{"j1", "e1", "checks.x86_64-linux.x", "error: builder failed\nwith two lines", 100};
  EXPECT_TRUE(s.failed_builds({drv})->empty());
  ASSERT_TRUE(s.record_failed_build(drv, first).has_value());
  ASSERT_TRUE(s.record_failed_build(drv, {"j2", "e2", "checks.x86_64-linux.x", "other", 200}).has_value());
  auto got = s.failed_builds({drv, "/nix/store/never-failed.drv"});
  ASSERT_TRUE(got.has_value()) << got.error().message;
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(got->at(drv), first);  // the first failure, byte for byte
  EXPECT_TRUE(*s.clear_failed_build(drv));
  EXPECT_FALSE(*s.clear_failed_build(drv));
  EXPECT_TRUE(s.failed_builds({drv})->empty());
}

TYPED_TEST_P(StateContract, BuildersArePresentWhileTheyKeepAnnouncingThemselves) {
  auto& s = *this->store;
  EXPECT_TRUE(s.list_builders(1000)->empty());
  BuilderInfo x86{"host-a:1", {"x86_64-linux", "i686-linux"}, {"kvm", "big-parallel"}, 4, 1, 1000};
  BuilderInfo arm{"host-b:7", {"aarch64-linux"}, {}, 2, 0, 1000};
  ASSERT_TRUE(s.register_builder(x86, 30000).has_value());
  ASSERT_TRUE(s.register_builder(arm, 5000).has_value());
  auto both = s.list_builders(2000);
  ASSERT_TRUE(both.has_value()) << both.error().message;
  EXPECT_EQ(*both, (std::vector<BuilderInfo>{x86, arm}));
  // arm stopped announcing itself; x86 refreshed.
  x86.busy = 3;
  x86.seen_ms = 20000;
  ASSERT_TRUE(s.register_builder(x86, 30000).has_value());
  EXPECT_EQ(*s.list_builders(21000), std::vector<BuilderInfo>{x86});
  EXPECT_TRUE(s.list_builders(60000)->empty());
}

TYPED_TEST_P(StateContract, OneJobAtATimeBuildsADerivationAndOthersTakeItsResult) {
  auto& s = *this->store;
  const std::string drv = "/nix/store/shared.drv";
  EXPECT_TRUE(*s.claim_drv_build(drv, "a", 1000, 60000));
  EXPECT_FALSE(*s.claim_drv_build(drv, "b", 1000, 60000));   // a builds it
  EXPECT_TRUE(*s.claim_drv_build(drv, "a", 30000, 60000));   // a renews
  auto waiting = s.await_drv_build(drv, "b", 31000, 5000);
  ASSERT_TRUE(waiting.has_value()) << waiting.error().message;
  EXPECT_EQ(waiting->owner, "a");
  EXPECT_FALSE(waiting->last.has_value());
  EXPECT_EQ(waiting->waiters, 1);
  DrvBuildResult done{JobState::kFailed, "error: builder failed\nline 2", "a", "checks.x86_64-linux.a", 40000};
  ASSERT_TRUE(s.finish_drv_build(drv, "a", done, 3600000).has_value());
  auto after = *s.await_drv_build(drv, "b", 41000, 5000);
  EXPECT_EQ(after.owner, "");
  ASSERT_TRUE(after.last.has_value());
  EXPECT_EQ(*after.last, done);
  // Waiters that stop refreshing stop counting.
  EXPECT_EQ(s.drv_build_status(drv, 50000)->waiters, 0);
  // A holder that vanished: its lease runs out and another job takes over;
  // the vanished one finishing late does not free the new claim.
  EXPECT_TRUE(*s.claim_drv_build(drv, "c", 50000, 1000));
  EXPECT_TRUE(*s.claim_drv_build(drv, "d", 52000, 60000));
  ASSERT_TRUE(s.finish_drv_build(drv, "c", std::nullopt, 3600000).has_value());
  EXPECT_EQ(s.drv_build_status(drv, 53000)->owner, "d");
  EXPECT_EQ(s.drv_build_status(drv, 53000)->last, done);  // no result: the last one stays
}

// Issue 13: what a change ended comes back with it, as the change wrote it,
// so that nothing published about it depends on reading the store again.
TYPED_TEST_P(StateContract, FinishCarriesTheRecordsOfEveryJobItEndedAndTheEvalsCounters) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a"), this->job("b", {"a"}), this->job("c", {"b"}), this->job("d")}, 10).has_value());
  ASSERT_TRUE(s.start_job("a", 11).has_value());
  auto t = *s.finish_job("a", JobState::kFailed, "exit code 3", 12);
  ASSERT_EQ(t.ended.size(), 3u);
  // The job itself first, whole, then the dependents its failure ended.
  EXPECT_EQ(t.ended[0], **s.get_job("a"));
  EXPECT_EQ(t.ended[0].state, JobState::kFailed);
  EXPECT_EQ(t.ended[0].error, "exit code 3");
  EXPECT_EQ(t.ended[0].finished_ms, 12);
  EXPECT_EQ(t.ended[0].outputs.at("out"), "/nix/store/a");
  EXPECT_EQ(t.ended[0].attempts, 1);
  std::vector<std::string> dependents{t.ended[1].id, t.ended[2].id};
  EXPECT_EQ(this->sorted(dependents), (std::vector<std::string>{"b", "c"}));
  for (std::size_t i = 1; i < 3; ++i) {
    EXPECT_EQ(t.ended[i].state, JobState::kDependencyFailed);
    EXPECT_EQ(t.ended[i].attr, "checks.x86_64-linux." + t.ended[i].id);
    EXPECT_EQ(t.ended[i].finished_ms, 12);
  }
  EXPECT_EQ(t.tally, (EvalTally{4, 1, 3, 0}));
  // A repeat answers the same, records and counters as they were then.
  auto td = *s.finish_job("d", JobState::kSucceeded, "", 13);
  EXPECT_TRUE(td.eval_finished);
  EXPECT_EQ(td.tally, (EvalTally{4, 0, 3, 13}));
  EXPECT_EQ(*s.finish_job("a", JobState::kSucceeded, "late", 14), t);
  // A job ended by its dependency: its own record, and nothing else.
  auto tb = *s.finish_job("b", JobState::kSucceeded, "", 15);
  ASSERT_EQ(tb.ended.size(), 1u);
  EXPECT_EQ(tb.ended[0].id, "b");
  EXPECT_EQ(tb.ended[0].state, JobState::kDependencyFailed);
  EXPECT_TRUE(tb.dependency_failed.empty());
  EXPECT_EQ(tb.tally, (EvalTally{4, 0, 3, 13}));
}

// A batch reports the jobs evaluation or a failed dependency ended, from
// the store: a job an earlier delivery recorded queued stays queued (and
// ready) when a later delivery calls it skipped.
TYPED_TEST_P(StateContract, AddJobsCarriesTheJobsEvaluationEndedAsTheStoreHoldsThem) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  auto first = *s.add_jobs("e1", {this->job("a"), this->job("bad", {}, JobState::kEvalFailed)}, 10, false);
  ASSERT_EQ(first.ended.size(), 1u);
  EXPECT_EQ(first.ended[0], **s.get_job("bad"));
  EXPECT_EQ(first.ended[0].error, "error: boom");
  EXPECT_EQ(first.ready, std::vector<std::string>{"a"});
  EXPECT_EQ(first.tally, (EvalTally{2, 1, 1, 0}));
  // Evaluated again: "a" is skipped now (its outputs were built meanwhile).
  auto again = *s.add_jobs("e1",
                           {this->job("a", {}, JobState::kSkipped), this->job("bad", {}, JobState::kEvalFailed),
                            this->job("done", {}, JobState::kSkipped), this->job("x", {"bad"})},
                           11, false);
  EXPECT_EQ(again.ready, std::vector<std::string>{"a"});
  EXPECT_EQ(this->state_of("a"), JobState::kQueued);
  std::vector<std::string> ended;
  for (const auto& j : again.ended) {
    EXPECT_TRUE(msg::is_terminal(j.state)) << j.id;
    ended.push_back(j.id);
  }
  EXPECT_EQ(ended, (std::vector<std::string>{"bad", "done", "x"}));
  EXPECT_EQ(again.ended[2].state, JobState::kDependencyFailed);
  // The replay: every job of the eval evaluation ended, none a builder did.
  ASSERT_TRUE(s.add_jobs("e1", {}, 12).has_value());
  ASSERT_TRUE(s.finish_job("a", JobState::kSucceeded, "", 13).has_value());
  auto replay = *s.add_jobs("e1", {}, 14);
  ended.clear();
  for (const auto& j : replay.ended) ended.push_back(j.id);
  EXPECT_EQ(ended, (std::vector<std::string>{"bad", "done", "x"}));
  EXPECT_TRUE(replay.eval_finished);
  EXPECT_EQ(replay.tally, (EvalTally{4, 0, 2, 13}));
}

TYPED_TEST_P(StateContract, CancelCarriesTheCancelledJobsRecords) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  ASSERT_TRUE(s.add_jobs("e1", {this->job("a"), this->job("b")}, 10).has_value());
  ASSERT_TRUE(s.start_job("a", 11).has_value());
  auto t = *s.cancel_eval("e1", "superseded", 12);
  ASSERT_EQ(t.ended.size(), 1u);
  EXPECT_EQ(t.ended[0], **s.get_job("b"));
  EXPECT_EQ(t.ended[0].state, JobState::kCancelled);
  EXPECT_EQ(t.ended[0].error, "superseded");
  EXPECT_EQ(t.tally, (EvalTally{2, 1, 1, 0}));
  EXPECT_EQ(*s.cancel_eval("e1", "again", 13), t);
  auto ta = *s.finish_job("a", JobState::kCancelled, "superseded", 14);
  EXPECT_TRUE(ta.eval_finished);
  EXPECT_EQ(ta.eval_state, EvalState::kCancelled);
  EXPECT_EQ(ta.tally, (EvalTally{2, 0, 2, 14}));
  EXPECT_EQ(*s.cancel_eval("e1", "late", 15), t);  // the first call's transition
  // Cancelling an eval that ended by itself: nothing ended, its counters.
  ASSERT_TRUE(*s.create_eval(this->eval("e2")));
  ASSERT_TRUE(s.add_jobs("e2", {this->job("x")}, 10).has_value());
  ASSERT_TRUE(s.finish_job("x", JobState::kSucceeded, "", 16).has_value());
  auto late = *s.cancel_eval("e2", "late", 17);
  EXPECT_TRUE(late.ended.empty());
  EXPECT_FALSE(late.eval_finished);
  EXPECT_EQ(late.tally, (EvalTally{1, 0, 0, 16}));
}

TYPED_TEST_P(StateContract, FailEvalAnswersTheEvalAsTheCallLeftIt) {
  auto& s = *this->store;
  ASSERT_TRUE(*s.create_eval(this->eval()));
  auto e = *s.fail_eval("e1", "error: syntax error", 20);
  EXPECT_EQ(e.id, "e1");
  EXPECT_EQ(e.repo.owner, "octo");
  EXPECT_EQ(e.state, EvalState::kFailed);
  EXPECT_EQ(e.error, "error: syntax error");
  EXPECT_EQ(e.finished_ms, 20);
  auto again = *s.fail_eval("e1", "second", 21);
  EXPECT_EQ(again.error, "error: syntax error");
  EXPECT_EQ(again.finished_ms, 20);
  EXPECT_EQ(s.fail_eval("nope", "x", 1).error().code, ErrorCode::kNotFound);
}

REGISTER_TYPED_TEST_SUITE_P(StateContract, CancelEndsQueuedJobsAndTheEvalWhenBuildingJobsFinish,
                            CancelOfAnEvaluatingEvalEndsItAndRefusesItsJobs, CancelOfAnEndedEvalChangesNothing,
                            SupersedeKeepsTheNewestEvalPerRef, CreateEvalIsIdempotent, AddJobsReleasesOnlyJobsWithoutDependencies,
                            AddJobsTwiceReturnsTheStandingOfEveryJob, SuccessReleasesDependentsWhenTheirLastDependencyEnds,
                            FailureFailsEveryTransitiveDependent, FinishingTwiceReturnsTheStoredTransition,
                            JobsBornTerminalSettleAtOnce, EvalWithOnlyTerminalJobsFinishesInAddJobs,
                            StartJobCountsAttemptsAndReportsTerminalState, FailEvalEndsItOnce, LogsAreCappedToTheTail,
                            ClaimOnceAndStatusOrdering, RefHeadIsTheEvalTheLastWinningSupersedeLeft, ForgeRefsAreKeptAndReplaced,
                            ProjectsAreReplacedPerForgeAndUnknownUntilDiscoveryRan, ProjectNamesAreStoredExactly,
                            EffectsAreListedPerEval, HostileNamesAreStoredExactly,
                            EvalRecordRoundTrips, ListJobsKeepsEvaluationOrderAndEveryField, CancellingAsFailedEndsTheEvalFailedWithTheReason, ErrorsSayHowToReact,
                            DiamondFailureFailsEachDependentOnce, DuplicateDependencyEdgesReleaseOnce,
                            DependenciesOutsideTheEvalAreIgnored, JobEndedByItsDependencyReplaysAnEmptyTransition,
                            JobsEndingAfterFailEvalLeaveItFailed, StatusOrderingIsExactForMicrosecondTimestamps,
                            EffectsAreSortedByNameAndKeepEveryField, HostileBytesAreStoredExactly,
                            IdsShapedLikeKeySuffixesDoNotCollide, BatchEdgeToAQueuedJobOfAnEarlierBatchWaitsForIt,
                            BatchEdgeToASucceededJobOfAnEarlierBatchIsMet,
                            BatchEdgeToAFailedJobOfAnEarlierBatchIsBornDependencyFailed,
                            EvalDoesNotEndBeforeItsJobSetIsComplete,
                            CompleteCallMovesTheEvalToBuildingWhileJobsArePending,
                            RepeatedBatchReturnsTheStandingOfItsJobs, CompleteReplayReturnsTheStandingOfEveryJob,
                            AddJobsIsRefusedOnceTheJobSetIsCompleteOrTheEvalWasStopped,
                            CancelOfAnEvaluatingEvalWithJobsEndsWhenItsBuildingJobsFinish,
                            WarningsAreKeptOnceInOrderAndCapped, JobRecordsShowTheirPendingDependencies, FailedBuildCacheKeepsTheFirstFailureUntilCleared, BuildersArePresentWhileTheyKeepAnnouncingThemselves, OneJobAtATimeBuildsADerivationAndOthersTakeItsResult,
                            FinishCarriesTheRecordsOfEveryJobItEndedAndTheEvalsCounters,
                            AddJobsCarriesTheJobsEvaluationEndedAsTheStoreHoldsThem, CancelCarriesTheCancelledJobsRecords,
                            FailEvalAnswersTheEvalAsTheCallLeftIt);

}  // namespace flurry::state::contract
