#include "api.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "flurry/bus/testing/memory_bus.hpp"
#include "flurry/state/testing/memory_store.hpp"

using namespace flurry;
using json = nlohmann::json;
using msg::JobState;

namespace {

const std::string kToken = "api-token-0123456789abcdef";

class Api : public ::testing::Test {
 protected:
  void SetUp() override {
    state::EvalRecord e;
    e.id = "e1";
    e.repo = {"github", "octo", "hello", "https://user:pw@example.com/octo/hello.git", "https://github.com/octo/hello", "main"};
    e.rev = std::string(40, 'a');
    e.ref = "refs/heads/main";
    ASSERT_TRUE(*store.create_eval(e));
    state::JobSpec a{"j-a", "checks.x86_64-linux.a", "/nix/store/a.drv", "x86_64-linux", {{"out", "/nix/store/a"}}, JobState::kQueued,
                     "", "notBuilt", {}, "a"};
    state::JobSpec b{"j-b", "checks.x86_64-linux.b", "/nix/store/b.drv", "x86_64-linux", {{"out", "/nix/store/b"}}, JobState::kQueued,
                     "", "notBuilt", {"j-a"}, "b"};
    ASSERT_TRUE(store.add_jobs("e1", {a, b}, 1, true).has_value());
  }
  http::Response call(const std::string& method, const std::string& path, const std::string& body = "", const std::string& query = "",
                      const std::string& token = "") {
    http::Request r;
    r.method = method;
    r.path = path;
    r.query = query;
    r.body = body;
    if (!token.empty()) r.headers["authorization"] = "Bearer " + token;
    return web::handle_api(r, {store, bus, clock}, cfg);
  }
  state::testing::MemoryStore store;
  bus::testing::MemoryBus bus;
  ManualClock clock;
  web::ApiConfig cfg{kToken, "https://ci.example"};
};

}  // namespace

TEST_F(Api, EvalsAndJobsAreReadableWithoutTheCloneUrl) {
  auto r = call("GET", "/api/evals/e1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  auto e = json::parse(r.body);
  EXPECT_EQ(e["state"], "building");
  EXPECT_EQ(e["jobs_total"], 2);
  EXPECT_EQ(e["repo"]["name"], "hello");
  EXPECT_EQ(r.body.find("user:pw"), std::string::npos);  // clone URLs may carry credentials

  auto jobs = json::parse(call("GET", "/api/evals/e1/jobs").body);
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0]["attr"], "checks.x86_64-linux.a");
  EXPECT_EQ(jobs[1]["state"], "queued");
  auto j = json::parse(call("GET", "/api/jobs/j-a").body);
  EXPECT_EQ(j["drv_path"], "/nix/store/a.drv");
  EXPECT_EQ(j["outputs"]["out"], "/nix/store/a");

  EXPECT_EQ(call("GET", "/api/evals/nope").status, 404);
  EXPECT_EQ(call("GET", "/api/jobs/nope").status, 404);
  EXPECT_EQ(call("GET", "/api/evals/" + std::string(300, 'x')).status, 404);
  EXPECT_EQ(call("GET", "/api/elsewhere").status, 404);
  EXPECT_EQ(call("DELETE", "/api/evals/e1").status, 405);
}

TEST_F(Api, ALogIsReadWhileTheJobBuildsAndFollowedByOffset) {
  ASSERT_EQ(*store.start_job("j-a", 2), JobState::kBuilding);
  ASSERT_TRUE(store.append_log("j-a", "a> one\n", 1 << 20).has_value());
  auto first = call("GET", "/api/jobs/j-a/log");
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.body, "a> one\n");
  EXPECT_EQ(first.header("x-flurry-job-state"), "building");
  const auto offset = first.header("x-flurry-log-offset");
  EXPECT_EQ(offset, "7");
  ASSERT_TRUE(store.append_log("j-a", "a> two\n", 1 << 20).has_value());
  ASSERT_TRUE(store.finish_job("j-a", JobState::kSucceeded, "", 3).has_value());
  auto next = call("GET", "/api/jobs/j-a/log", "", "offset=" + offset);
  EXPECT_EQ(next.body, "a> two\n");
  EXPECT_EQ(next.header("x-flurry-job-state"), "succeeded");
  // Past the end (the stored tail was cut): from the start.
  EXPECT_EQ(call("GET", "/api/jobs/j-a/log", "", "offset=999").body, "a> one\na> two\n");
  EXPECT_EQ(call("GET", "/api/jobs/j-a/log", "", "offset=-3").body, "a> one\na> two\n");
  EXPECT_EQ(call("GET", "/api/jobs/nope/log").status, 404);
}

TEST_F(Api, RebuildClearsCachedFailuresOnlyWithTheToken) {
  ASSERT_TRUE(store.record_failed_build("/nix/store/a.drv", {"j-a", "e1", "checks.x86_64-linux.a", "exit 1", 1}).has_value());
  const std::string body = R"({"drv_paths": ["/nix/store/a.drv", "/nix/store/zz.drv"]})";
  EXPECT_EQ(call("POST", "/api/rebuild", body).status, 401);
  EXPECT_EQ(call("POST", "/api/rebuild", body, "", "wrong-token-0123456789").status, 401);
  EXPECT_FALSE(store.failed_builds({"/nix/store/a.drv"})->empty());
  auto r = call("POST", "/api/rebuild", body, "", kToken);
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["cleared"], json::array({"/nix/store/a.drv"}));
  EXPECT_EQ(j["not_cached"], json::array({"/nix/store/zz.drv"}));
  EXPECT_TRUE(store.failed_builds({"/nix/store/a.drv"})->empty());
  for (const std::string bad : {"{", "[]", R"({"drv_paths": "x"})", R"({"drv_paths": ["../../etc/passwd"]})", R"({"drv_paths": [1]})",
                          R"({"drv_paths": ["/nix/store/../../etc/x.drv"]})"}) {
    EXPECT_EQ(call("POST", "/api/rebuild", bad, "", kToken).status, 400) << bad;
  }
  // No token configured: refused for everyone.
  cfg.token.clear();
  EXPECT_EQ(call("POST", "/api/rebuild", body, "", kToken).status, 403);
}

TEST_F(Api, CancelDropsQueuedJobsAndPostsTheStatuses) {
  EXPECT_EQ(call("POST", "/api/evals/e1/cancel", R"({"reason": "not needed"})").status, 401);
  EXPECT_EQ(call("POST", "/api/evals/nope/cancel", "", "", kToken).status, 404);
  EXPECT_EQ(call("POST", "/api/evals/e1/cancel", "{bad", "", kToken).status, 400);
  auto r = call("POST", "/api/evals/e1/cancel", R"({"reason": "not needed"})", "", kToken);
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["cancelled_jobs"], 2);
  EXPECT_EQ(j["eval_state"], "cancelled");
  EXPECT_EQ((**store.get_job("j-b")).state, JobState::kCancelled);
  EXPECT_EQ((**store.get_eval("e1")).cancel_reason, "not needed");
  std::map<std::string, msg::StatusEvent> last;
  for (const auto& m : bus.published("flurry.status.")) {
    auto s = *msg::decode_status_event(m.data);
    last[s.context] = s;
  }
  EXPECT_EQ(last["flurry/eval"].description, "Cancelled: not needed");
  EXPECT_EQ(last["flurry/checks.x86_64-linux.a"].state, msg::StatusState::kError);
  EXPECT_EQ(bus.published("flurry.eval.finished").size(), 1u);
  // A repeat (a client retrying) changes nothing and publishes nothing new.
  const auto finished = bus.published("flurry.job.finished").size();
  auto again = call("POST", "/api/evals/e1/cancel", R"({"reason": "not needed"})", "", kToken);
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(json::parse(again.body)["eval_state"], "cancelled");
  EXPECT_EQ(bus.published("flurry.job.finished").size(), finished);
  EXPECT_EQ(bus.published("flurry.eval.finished").size(), 1u);
}

TEST_F(Api, HostileBytesInStoredNamesStillGiveValidJson) {
  state::JobSpec odd{"j-odd", "checks.x86_64-linux.\xff\xfe\"<x>", "/nix/store/odd.drv", "x86_64-linux", {}, JobState::kQueued,
                     "", "notBuilt", {}, "odd"};
  state::EvalRecord e;
  e.id = "e2";
  e.repo = {"github", "octo", "h\xffllo", "", "", "main"};
  ASSERT_TRUE(*store.create_eval(e));
  ASSERT_TRUE(store.add_jobs("e2", {odd}, 1, true).has_value());
  auto eval = call("GET", "/api/evals/e2");
  ASSERT_EQ(eval.status, 200);
  EXPECT_FALSE(json::parse(eval.body, nullptr, false).is_discarded()) << eval.body;
  auto job = call("GET", "/api/jobs/j-odd");
  ASSERT_EQ(job.status, 200);
  auto j = json::parse(job.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << job.body;
  EXPECT_EQ(j["drv_path"], "/nix/store/odd.drv");
}

TEST_F(Api, ApprovingAPullRequestQueuesAnApprovalOnlyWithTheToken) {
  const std::string body = R"({"forge": "gitlab", "owner": "infra/nix", "repo": "hello", "number": 7, "by": "ops"})";
  EXPECT_EQ(call("POST", "/api/approve", body).status, 401);
  EXPECT_TRUE(bus.published().empty());
  auto r = call("POST", "/api/approve", body, "", kToken);
  EXPECT_EQ(r.status, 202) << r.body;
  auto msgs = bus.published("flurry.change.gitlab");
  ASSERT_EQ(msgs.size(), 1u);
  auto c = msg::decode_change_event(msgs[0].data);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->kind, "approve");
  EXPECT_EQ(c->ref, "refs/merge-requests/7/head");
  EXPECT_EQ(c->pull_request.number, 7);
  EXPECT_EQ(c->approval.by, "ops");
  EXPECT_EQ(c->approval.association, "api");
  // A client's retry is the same approval.
  EXPECT_EQ(call("POST", "/api/approve", body, "", kToken).status, 202);
  EXPECT_EQ(bus.published("flurry.change.gitlab").size(), 1u);
  for (const std::string bad : {"{}", R"({"forge":"svn","owner":"o","repo":"r","number":1})",
                                R"({"forge":"github","owner":"o","repo":"r","number":0})", "not json"}) {
    EXPECT_EQ(call("POST", "/api/approve", bad, "", kToken).status, 400) << bad;
  }
}
