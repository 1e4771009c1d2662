#include "api.hpp"
#include "badges.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "flurry/bus/testing/memory_bus.hpp"
#include "flurry/state/ids.hpp"
#include "flurry/state/testing/memory_catalog.hpp"
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

namespace {

// The listings over a catalog: two evals of main (the second breaks `a`
// and fixes nothing), one of a pull request.
class Listings : public Api {
 protected:
  void SetUp() override {
    Api::SetUp();
    file("e1", "refs/heads/main", 1000);
    auto e2 = make_eval("e2", "refs/heads/main", 2000);
    state::JobSpec spec_a{a2, "checks.x86_64-linux.a", "/nix/store/a2.drv", "x86_64-linux", {}, JobState::kQueued, "", "notBuilt", {}, "a"};
    state::JobSpec spec_b{b2, "checks.x86_64-linux.b", "/nix/store/b.drv", "x86_64-linux", {}, JobState::kQueued, "", "notBuilt", {a2}, "b"};
    ASSERT_TRUE(store.add_jobs("e2", {spec_a, spec_b}, 2000, true).has_value());
    ASSERT_TRUE(store.finish_job("j-a", JobState::kSucceeded, "", 1500).has_value());
    ASSERT_TRUE(store.finish_job("j-b", JobState::kSucceeded, "", 1600).has_value());
    ASSERT_TRUE(store.finish_job(a2, JobState::kFailed, "exit 1", 2500).has_value());
    file("e2", "refs/heads/main", 2000);
    make_eval("p1", "refs/pull/4/head", 3000);
    msg::ChangeEvent pr;
    pr.kind = "pull_request";
    pr.repo = repo;
    pr.ref = "refs/pull/4/head";
    pr.pull_request.number = 4;
    pr.pull_request.title = "Faster";
    pr.pull_request.base_branch = "main";
    ASSERT_TRUE(catalog.file_eval(state::filing_of("p1", pr, 3000)).has_value());
  }
  state::EvalRecord make_eval(const std::string& id, const std::string& ref, std::int64_t ms) {
    state::EvalRecord e;
    e.id = id;
    e.repo = repo;
    e.ref = ref;
    e.rev = std::string(40, 'c');
    e.created_ms = ms;
    msg::ChangeEvent c;
    c.id = "github:" + id;
    c.kind = "push";
    c.repo = repo;
    c.ref = ref;
    c.rev = e.rev;
    c.sender = "mona";
    e.change = msg::encode(c);
    EXPECT_TRUE(*store.create_eval(e));
    return e;
  }
  void file(const std::string& id, const std::string& ref, std::int64_t ms) {
    msg::ChangeEvent c;
    c.kind = "push";
    c.repo = repo;
    c.ref = ref;
    ASSERT_TRUE(catalog.file_eval(state::filing_of(id, c, ms)).has_value());
  }
  http::Response get(const std::string& path, const std::string& query = "") {
    http::Request r;
    r.method = "GET";
    r.path = path;
    r.query = query;
    return web::handle_api(r, {store, bus, clock, &catalog, access}, cfg);
  }
  msg::Repo repo{"github", "octo", "hello", "https://user:pw@example.com/octo/hello.git", "https://github.com/octo/hello", "main"};
  // Jobs' ids as the evaluator makes them.
  const std::string a2 = state::job_id_for("e2", "checks.x86_64-linux.a"), b2 = state::job_id_for("e2", "checks.x86_64-linux.b");
  state::testing::MemoryCatalog catalog;
  web::Access access;
};

}  // namespace

TEST_F(Listings, ProjectsRefsAndEvalPagesComeFromTheCatalog) {
  auto projects = json::parse(get("/api/projects").body);
  ASSERT_EQ(projects["projects"].size(), 1u);
  const auto& p = projects["projects"][0];
  EXPECT_EQ(p["owner"], "octo");
  EXPECT_EQ(p["repo"], "hello");
  EXPECT_EQ(p["last_activity_ms"], 3000);
  EXPECT_EQ(p["latest"]["id"], "e2");  // the default branch's
  EXPECT_EQ(p["latest"]["links"]["commit"], "https://github.com/octo/hello/commit/" + std::string(40, 'c'));
  EXPECT_EQ(p["latest"]["trigger"]["sender"], "mona");

  auto project = get("/api/project", "forge=github&owner=octo&repo=hello");
  ASSERT_EQ(project.status, 200) << project.body;
  auto refs = json::parse(project.body)["refs"];
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0]["kind"], "pull_request");
  EXPECT_EQ(refs[0]["name"], "#4");
  EXPECT_EQ(refs[0]["title"], "Faster");
  EXPECT_EQ(refs[1]["ref"], "refs/heads/main");
  EXPECT_EQ(refs[1]["latest"]["id"], "e2");

  auto first = json::parse(get("/api/project/evals", "forge=github&owner=octo&repo=hello&limit=2").body);
  ASSERT_EQ(first["evals"].size(), 2u);
  EXPECT_EQ(first["evals"][0]["id"], "p1");
  ASSERT_TRUE(first["next_cursor"].is_string());
  auto second = json::parse(get("/api/project/evals", "forge=github&owner=octo&repo=hello&limit=2&cursor=" +
                                                          first["next_cursor"].get<std::string>()).body);
  ASSERT_EQ(second["evals"].size(), 1u);
  EXPECT_EQ(second["evals"][0]["id"], "e1");
  EXPECT_TRUE(second["next_cursor"].is_null());
  auto main = json::parse(get("/api/project/evals", "forge=github&owner=octo&repo=hello&ref=refs%2Fheads%2Fmain").body);
  EXPECT_EQ(main["evals"].size(), 2u);

  EXPECT_EQ(get("/api/project", "forge=github&owner=octo&repo=nope").status, 404);
  EXPECT_EQ(get("/api/project", "forge=github&owner=octo").status, 400);
  EXPECT_EQ(get("/api/project", "forge=github&owner=%zz&repo=hello").status, 400);
  EXPECT_EQ(get("/api/project/evals", "forge=github&owner=octo&repo=hello&cursor=bogus").status, 400);
}

TEST_F(Listings, AnEvalIsComparedWithItsBaseAndNamesTheDependencyThatFailed) {
  auto c = get("/api/evals/e2/compare");
  ASSERT_EQ(c.status, 200) << c.body;
  auto j = json::parse(c.body);
  EXPECT_EQ(j["base"]["id"], "e1");
  ASSERT_EQ(j["newly_failing"].size(), 2u);  // b failed with its dependency
  EXPECT_EQ(j["newly_failing"][0]["attr"], "checks.x86_64-linux.a");
  EXPECT_EQ(j["newly_failing"][0]["base_job_id"], "j-a");
  EXPECT_EQ(j["newly_failing"][0]["state"], "failed");
  EXPECT_EQ(j["newly_failing"][1]["state"], "dependency_failed");
  EXPECT_EQ(j["summary"], "2 new failures");
  auto b = json::parse(get("/api/jobs/" + b2).body);
  EXPECT_EQ(b["state"], "dependency_failed");
  EXPECT_EQ(b["dependency"]["attr"], "checks.x86_64-linux.a");
  EXPECT_EQ(b["dependency"]["job_id"], state::job_id_for("e2", "checks.x86_64-linux.a"));
  EXPECT_TRUE(json::parse(get("/api/jobs/j-a").body)["dependency"].is_null());
  ASSERT_TRUE(store.put_effect({"e2", "default.deploy", "succeeded", "deployed\n", 2600}).has_value());
  auto fx = json::parse(get("/api/evals/e2/effects").body);
  ASSERT_EQ(fx["effects"].size(), 1u);
  EXPECT_EQ(fx["effects"][0]["log"], "deployed\n");
  EXPECT_EQ(get("/api/evals/nope/compare").status, 404);
}

TEST_F(Listings, WhatTheAskerMayNotReadIsNotThere) {
  access.may_read = [](const http::Request& req, const msg::Repo&) -> Result<bool> { return req.header("cookie") == "friend"; };
  EXPECT_TRUE(json::parse(get("/api/projects").body)["projects"].empty());
  EXPECT_EQ(get("/api/project", "forge=github&owner=octo&repo=hello").status, 404);
  for (const std::string path : {"/api/evals/e1", "/api/evals/e1/jobs", "/api/evals/e2/compare", "/api/evals/e2/effects", "/api/jobs/j-a",
                                 "/api/jobs/j-a/log", "/api/jobs/j-a/log/raw"}) {
    EXPECT_EQ(get(path).status, 404) << path;
  }
  access.may_read = [](const http::Request&, const msg::Repo&) -> Result<bool> { return fail(Error::transient("forge down")); };
  EXPECT_EQ(get("/api/evals/e1").status, 503);
}

TEST_F(Listings, AProjectNotEveryoneMayReadIsMarkedPrivate) {
  EXPECT_FALSE(json::parse(get("/api/projects").body)["projects"][0]["private"].get<bool>());  // no forge to ask: public
  access.is_public = [](const msg::Repo&) -> Result<bool> { return false; };
  EXPECT_TRUE(json::parse(get("/api/projects").body)["projects"][0]["private"].get<bool>());
  EXPECT_TRUE(json::parse(get("/api/project", "forge=github&owner=octo&repo=hello").body)["project"]["private"].get<bool>());
  access.is_public = [](const msg::Repo&) -> Result<bool> { return fail(Error::transient("forge down")); };
  EXPECT_TRUE(json::parse(get("/api/projects").body)["projects"][0]["private"].get<bool>()) << "unknown is private";
  access.is_public = [](const msg::Repo&) -> Result<bool> { return true; };
  EXPECT_FALSE(json::parse(get("/api/projects").body)["projects"][0]["private"].get<bool>());
}

TEST_F(Listings, ALogIsServedInPiecesAndWhole) {
  ASSERT_TRUE(store.append_log("j-a", "0123456789", 1 << 20).has_value());
  auto piece = get("/api/jobs/j-a/log", "offset=2&limit=3");
  EXPECT_EQ(piece.body, "234");
  EXPECT_EQ(piece.header("x-flurry-log-offset"), "5");
  EXPECT_EQ(piece.header("x-flurry-log-size"), "10");
  auto raw = get("/api/jobs/j-a/log/raw");
  EXPECT_EQ(raw.body, "0123456789");
  EXPECT_EQ(raw.header("content-disposition"), "attachment; filename=\"checks.x86_64-linux.a.log\"");
}

TEST_F(Listings, RebuildingAFailedJobQueuesAReRunForWhomMayAct) {
  http::Request req;
  req.method = "POST";
  req.path = "/api/jobs/" + a2 + "/rebuild";
  auto send = [&] { return web::handle_api(req, {store, bus, clock, &catalog, access}, cfg); };
  EXPECT_EQ(send().status, 401);
  access.may_act = [](const http::Request& r, const msg::Repo&) -> Result<bool> { return r.header("cookie") == "maintainer"; };
  req.headers["cookie"] = "visitor";
  EXPECT_EQ(send().status, 403);
  EXPECT_TRUE(bus.published("flurry.change.").empty());
  req.headers["cookie"] = "maintainer";
  access.actor = "mona";
  auto r = send();
  ASSERT_EQ(r.status, 202) << r.body;
  auto msgs = bus.published("flurry.change.github");
  ASSERT_EQ(msgs.size(), 1u);
  auto c = *msg::decode_change_event(msgs[0].data);
  EXPECT_EQ(c.kind, "rerun");
  EXPECT_EQ(c.rerun.job_id, a2);
  EXPECT_EQ(c.sender, "mona") << "the re-run is sent by whom pressed it";
  EXPECT_EQ(c.rev, std::string(40, 'c'));
  EXPECT_EQ(send().status, 202);  // a double click is one re-run
  EXPECT_EQ(bus.published("flurry.change.github").size(), 1u);
  req.path = "/api/jobs/j-a/rebuild";  // succeeded: nothing to rebuild
  EXPECT_EQ(send().status, 409);
  req.headers.clear();
  req.headers["authorization"] = "Bearer " + kToken;  // the API token may, always
  req.path = "/api/jobs/" + a2 + "/rebuild";
  clock.advance_ms(20000);
  EXPECT_EQ(send().status, 202);
}

// Issue 15: pages update as jobs start and end, and a log grows live,
// through server-sent events.
TEST_F(Listings, AnEvalsEventsSayWhatChangedAndEndWithTheEval) {
  ASSERT_TRUE(store.create_eval([] {
                     state::EvalRecord e;
                     e.id = "live";
                     e.repo = {"github", "octo", "hello", "", "", "main"};
                     return e;
                   }())
                  .has_value());
  state::JobSpec x{"live-x", "checks.x86_64-linux.x", "/nix/store/x.drv", "x86_64-linux", {}, JobState::kQueued, "", "notBuilt", {}, "x"};
  state::JobSpec y{"live-y", "checks.x86_64-linux.y", "/nix/store/y.drv", "x86_64-linux", {}, JobState::kQueued, "", "notBuilt", {}, "y"};
  ASSERT_TRUE(store.add_jobs("live", {x, y}, 10, true).has_value());
  auto r = get("/api/evals/live/events");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/event-stream");
  ASSERT_TRUE(r.stream);
  auto first = *r.stream->next();
  EXPECT_NE(first.find("event: eval\ndata: {"), std::string::npos) << first;
  EXPECT_EQ(first.find("event: job"), std::string::npos);
  EXPECT_EQ(*r.stream->next(), "");  // nothing changed
  ASSERT_EQ(*store.start_job("live-x", 11), JobState::kBuilding);
  auto started = *r.stream->next();
  EXPECT_NE(started.find("event: job\ndata: {"), std::string::npos) << started;
  EXPECT_NE(started.find("\"live-x\""), std::string::npos);
  EXPECT_NE(started.find("\"building\""), std::string::npos);
  ASSERT_TRUE(store.finish_job("live-x", JobState::kSucceeded, "", 12).has_value());
  ASSERT_TRUE(store.finish_job("live-y", JobState::kFailed, "boom", 13).has_value());
  auto last = *r.stream->next();
  EXPECT_NE(last.find("event: eval"), std::string::npos);
  EXPECT_NE(last.find("\"live-y\""), std::string::npos);
  EXPECT_NE(last.find("event: end"), std::string::npos) << last;
  EXPECT_FALSE(r.stream->next().has_value());
  // What may not be read has no events either.
  access.may_read = [](const http::Request&, const msg::Repo&) -> Result<bool> { return false; };
  EXPECT_EQ(get("/api/evals/live/events").status, 404);
}

TEST_F(Listings, ALogsEventsCarryEachNewPieceThenItsEnd) {
  state::JobSpec c{"j-c", "checks.x86_64-linux.c", "/nix/store/c.drv", "x86_64-linux", {}, JobState::kQueued, "", "notBuilt", {}, "c"};
  ASSERT_TRUE(store.create_eval([] {
                     state::EvalRecord e;
                     e.id = "e3";
                     e.repo = {"github", "octo", "hello", "", "", "main"};
                     return e;
                   }())
                  .has_value());
  ASSERT_TRUE(store.add_jobs("e3", {c}, 4, true).has_value());
  ASSERT_EQ(*store.start_job("j-c", 5), JobState::kBuilding);
  ASSERT_TRUE(store.append_log("j-c", "one\n", 1 << 20).has_value());
  auto r = get("/api/jobs/j-c/log/events", "offset=0");
  ASSERT_TRUE(r.stream);
  auto first = *r.stream->next();
  EXPECT_NE(first.find(R"(event: log)" "\n" R"(data: {"next":4,"offset":0,"text":"one\n"})"), std::string::npos) << first;
  ASSERT_TRUE(store.append_log("j-c", "two\n", 1 << 20).has_value());
  auto second = *r.stream->next();
  EXPECT_NE(second.find(R"("offset":4)"), std::string::npos) << second;
  EXPECT_NE(second.find(R"("text":"two\n")"), std::string::npos) << second;
  ASSERT_TRUE(store.finish_job("j-c", JobState::kSucceeded, "", 6).has_value());
  auto last = *r.stream->next();
  EXPECT_NE(last.find("event: state\ndata: {\"state\":\"succeeded\"}"), std::string::npos) << last;
  EXPECT_NE(last.find("event: end"), std::string::npos) << last;
  EXPECT_FALSE(r.stream->next().has_value());
  // Following from the end of a finished log: the end at once.
  auto later = get("/api/jobs/j-c/log/events", "offset=8");
  EXPECT_NE(later.stream->next()->find("event: end"), std::string::npos);
}

TEST_F(Listings, BadgesShowABranchsAndAnAttributesLatestState) {
  auto badge = [&](const std::string& path, const std::string& query = "") {
    http::Request r;
    r.method = "GET";
    r.path = path;
    r.query = query;
    auto read = [&](const msg::Repo& repo) -> Result<bool> { return access.may_read ? access.may_read(r, repo) : true; };
    return web::handle_badge(r, {store, catalog}, read).value_or(http::Response{});
  };
  auto main = badge("/badge/github/octo/hello.svg");
  ASSERT_EQ(main.status, 200);
  EXPECT_EQ(main.content_type, "image/svg+xml");
  EXPECT_NE(main.body.find(">failing<"), std::string::npos) << main.body;
  EXPECT_EQ(main.header("cache-control"), "max-age=60, must-revalidate");
  auto attr = badge("/badge/github/octo/hello.svg", "attr=checks.x86_64-linux.a");
  EXPECT_NE(attr.body.find(">a<"), std::string::npos);
  EXPECT_NE(attr.body.find(">failing<"), std::string::npos);
  auto other = badge("/badge/github/octo/hello.svg", "branch=dev");
  EXPECT_EQ(other.status, 404);
  EXPECT_NE(other.body.find("not found"), std::string::npos);
  http::Request again;
  again.method = "GET";
  again.path = "/badge/github/octo/hello.svg";
  again.headers["if-none-match"] = main.header("etag");
  EXPECT_EQ(web::handle_badge(again, {store, catalog}, [](const msg::Repo&) -> Result<bool> { return true; })->status, 304);
  EXPECT_EQ(badge("/badge/github/octo/nope.svg").status, 404);
  EXPECT_EQ(badge("/badge/github.svg").status, 404);
  access.may_read = [](const http::Request&, const msg::Repo&) -> Result<bool> { return false; };
  EXPECT_EQ(badge("/badge/github/octo/hello.svg").status, 404);
  // Hostile names never reach the SVG unescaped.
  EXPECT_EQ(web::badge_svg("<b>&\"", "x", "#000").find("<b>"), std::string::npos);
}
