#include "evaluate.hpp"

#include <gtest/gtest.h>

#include "flurry/bus/testing/memory_bus.hpp"
#include "flurry/nix/testing/fake_nix_runner.hpp"
#include "flurry/state/ids.hpp"
#include "flurry/state/testing/memory_store.hpp"

using namespace flurry;
using namespace flurry::evaluator;
using msg::JobState;

namespace {

class FakeGit final : public git::Git {
 public:
  Result<std::string> fetch(const git::FetchRequest& req) override {
    requests.push_back(req);
    if (error) return fail(*error);
    return std::string("git+file:///mirror?ref=refs/flurry/" + req.rev + "&rev=" + req.rev);
  }
  std::vector<git::FetchRequest> requests;
  std::optional<Error> error;
};

nix::AttrResult ok(const std::string& name) {
  nix::AttrResult a;
  a.path = {"checks", "x86_64-linux", name};
  a.drv_path = "/nix/store/" + name + ".drv";
  a.name = name;
  a.system = "x86_64-linux";
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
    // ok, fail, dep (on ok, through an intermediate drv), depOnFail, throws
    nix.eval_result = nix::EvalResult{{ok("ok"), ok("fail"), ok("dep"), ok("depOnFail"), bad("throws", "error: intentional")}, {}};
    nix.graph["/nix/store/dep.drv"] = {"/nix/store/helper.drv"};
    nix.graph["/nix/store/helper.drv"] = {"/nix/store/ok.drv"};
    nix.graph["/nix/store/depOnFail.drv"] = {"/nix/store/fail.drv"};
  }
  EvalOutcome run(std::uint64_t delivered = 1) {
    return handle_change(change, {delivered, 3}, {bus, store, nix, git, clock}, cfg);
  }
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

  msg::ChangeEvent change;
  bus::testing::MemoryBus bus;
  state::testing::MemoryStore store;
  nix::testing::FakeNixRunner nix;
  FakeGit git;
  ManualClock clock;
  EvaluatorConfig cfg{.work_dir = "/work"};
};

}  // namespace

TEST_F(Evaluate, CreatesOneJobPerAttributeWithDependenciesAndReleasesTheRoots) {
  auto o = run();
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_EQ(o.result, "evaluated");
  EXPECT_EQ(o.jobs, 5);
  EXPECT_EQ(o.eval_errors, 1);
  auto dep = **store.get_job(id("dep"));
  EXPECT_EQ(dep.state, JobState::kQueued);
  auto throws = **store.get_job(id("throws"));
  EXPECT_EQ(throws.state, JobState::kEvalFailed);
  EXPECT_EQ(throws.error, "error: intentional");
  // Only ok and fail are ready; dep waits for ok, depOnFail for fail.
  std::set<std::string> built;
  for (const auto& m : bus.published("flurry.build.")) built.insert(msg::decode_build_request(m.data)->job_id);
  EXPECT_EQ(built, (std::set<std::string>{id("ok"), id("fail")}));
  auto t = *store.finish_job(id("ok"), JobState::kSucceeded, "", 2);
  EXPECT_EQ(t.ready, std::vector<std::string>{id("dep")});
  auto t2 = *store.finish_job(id("fail"), JobState::kFailed, "exit 3", 3);
  EXPECT_EQ(t2.dependency_failed, std::vector<std::string>{id("depOnFail")});
  // The mirror path is derived safely from the repo.
  ASSERT_EQ(git.requests.size(), 1u);
  EXPECT_EQ(git.requests[0].mirror_dir, "/work/repos/github/octo/hello.git");
  EXPECT_EQ(nix.evals[0].attr_path, (std::vector<std::string>{"checks", "x86_64-linux"}));
}

TEST_F(Evaluate, PublishesEvalAndPerAttributeStatuses) {
  run();
  auto s = statuses();
  ASSERT_EQ(s["flurry/eval"].size(), 2u);
  EXPECT_EQ(s["flurry/eval"][0].state, msg::StatusState::kPending);
  EXPECT_EQ(s["flurry/eval"][1].state, msg::StatusState::kSuccess);
  EXPECT_NE(s["flurry/eval"][1].description.find("1 failed to evaluate"), std::string::npos);
  EXPECT_EQ(s["flurry/checks.x86_64-linux.ok"].back().state, msg::StatusState::kPending);
  EXPECT_EQ(s["flurry/checks.x86_64-linux.throws"].back().state, msg::StatusState::kFailure);
  EXPECT_NE(s["flurry/checks.x86_64-linux.throws"].back().description.find("intentional"), std::string::npos);
  // The eval_failed job is finished (the uploader and others hear of it).
  EXPECT_EQ(bus.published("flurry.job.finished").size(), 1u);
}

TEST_F(Evaluate, AlreadyBuiltOutputsAreSkipped) {
  nix.valid = {"/nix/store/ok-out"};
  run();
  EXPECT_EQ((**store.get_job(id("ok"))).state, JobState::kSkipped);
  // dep is released at once because its dependency is already built.
  std::set<std::string> built;
  for (const auto& m : bus.published("flurry.build.")) built.insert(msg::decode_build_request(m.data)->job_id);
  EXPECT_TRUE(built.count(id("dep")));
  EXPECT_FALSE(built.count(id("ok")));
}

TEST_F(Evaluate, FlakeThatCannotBeEvaluatedFailsTheEvalWithNixsError) {
  nix.eval_result = fail(Error::rejected("error: syntax error, unexpected '}'"));
  auto o = run();
  EXPECT_EQ(o.result, "eval_failed");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  auto e = **store.get_eval(eval_id());
  EXPECT_EQ(e.state, state::EvalState::kFailed);
  EXPECT_EQ(e.error, "error: syntax error, unexpected '}'");
  auto s = statuses();
  EXPECT_EQ(s["flurry/eval"].back().state, msg::StatusState::kFailure);
  EXPECT_NE(s["flurry/eval"].back().description.find("syntax error"), std::string::npos);
  EXPECT_EQ(bus.published("flurry.eval.finished").size(), 1u);
}

TEST_F(Evaluate, RedeliveryRepublishesWithoutEvaluatingAgain) {
  run();
  auto published = bus.published().size();
  auto o = run(2);
  EXPECT_EQ(o.result, "replayed");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_EQ(nix.evals.size(), 1u);
  EXPECT_EQ(bus.published().size(), published);  // every republish was a duplicate
}

TEST_F(Evaluate, FetchFailureRetriesThenFailsTheEvalOnTheLastDelivery) {
  git.error = Error::transient("could not resolve host");
  auto first = run(1);
  EXPECT_EQ(first.disposition.kind, bus::Disposition::Kind::kNak);
  EXPECT_EQ((**store.get_eval(eval_id())).state, state::EvalState::kEvaluating);
  auto last = run(3);
  EXPECT_EQ(last.disposition.kind, bus::Disposition::Kind::kAck);
  auto e = **store.get_eval(eval_id());
  EXPECT_EQ(e.state, state::EvalState::kFailed);
  EXPECT_NE(e.error.find("could not resolve host"), std::string::npos);
}

TEST_F(Evaluate, StoreOutageNaksAndLosesNothing) {
  store.set_down(true);
  EXPECT_EQ(run().disposition.kind, bus::Disposition::Kind::kNak);
  store.set_down(false);
  EXPECT_EQ(run(2).result, "evaluated");
}

TEST_F(Evaluate, HostileAttributeNamesAreKeptExact) {
  nix.eval_result = nix::EvalResult{{ok("a.b c \"${x}\" \xC3\xA9")}, {}};
  run();
  auto jobs = *store.list_jobs(eval_id());
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].attr, "checks.x86_64-linux.\"a.b c \\\"\\${x}\\\" \xC3\xA9\"");
  auto s = statuses();
  EXPECT_TRUE(s.count("flurry/" + jobs[0].attr));
}

TEST(PlanJobs, KeepsOnlyTheNearestJobAncestors) {
  // c -> b -> a (all jobs): c depends on b only.
  std::vector<nix::AttrResult> attrs = {ok("a"), ok("b"), ok("c")};
  std::map<std::string, std::vector<std::string>> graph = {{"/nix/store/c.drv", {"/nix/store/b.drv"}},
                                                           {"/nix/store/b.drv", {"/nix/store/a.drv"}}};
  auto jobs = plan_jobs("e", attrs, graph, {"/nix/store/a-out", "/nix/store/b-out", "/nix/store/c-out"});
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_TRUE(jobs[0].deps.empty());
  EXPECT_EQ(jobs[1].deps, std::vector<std::string>{jobs[0].id});
  EXPECT_EQ(jobs[2].deps, std::vector<std::string>{jobs[1].id});
}
