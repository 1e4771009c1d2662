#include "report.hpp"

#include <gtest/gtest.h>

#include "flurry/forge/github_status.hpp"

#include <nlohmann/json.hpp>
#include "flurry/http/testing/fake_client.hpp"
#include "flurry/state/testing/memory_store.hpp"

using namespace flurry;
using namespace flurry::reporter;
using msg::JobState;

namespace {
msg::StatusEvent status(msg::StatusState st, std::int64_t at) {
  msg::StatusEvent s;
  s.eval_id = "e1";
  s.repo = {"github", "octo", "hello", "", "", "main"};
  s.rev = std::string(40, 'a');
  s.context = "flurry/checks.x86_64-linux.ok";
  s.state = st;
  s.at_us = at;
  return s;
}

class Report : public ::testing::Test {
 protected:
  ReportOutcome handle(const msg::StatusEvent& s, std::uint64_t n = 1) {
    return handle_status(s, n, {store, [this](const std::string& f) -> forge::StatusPoster* { return f == "github" ? &github : nullptr; }, clock},
                         cfg);
  }
  state::testing::MemoryStore store;
  http::testing::FakeHttpClient http;
  forge::FixedToken token{"tok"};
  ManualClock clock;
  ReportConfig cfg;
  forge::GitHubStatusClient github{http, "https://api.example", token, clock};
};
}  // namespace

TEST_F(Report, PostsEachStatus) {
  EXPECT_EQ(handle(status(msg::StatusState::kPending, 1)).result, "posted");
  EXPECT_EQ(handle(status(msg::StatusState::kSuccess, 2)).result, "posted");
  ASSERT_EQ(http.requests.size(), 2u);
  EXPECT_NE(http.requests[1].body.find("\"success\""), std::string::npos);
}

TEST_F(Report, AnOlderStatusNeverOverwritesANewerOne) {
  EXPECT_EQ(handle(status(msg::StatusState::kSuccess, 20)).result, "posted");
  auto o = handle(status(msg::StatusState::kPending, 10));
  EXPECT_EQ(o.result, "stale");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_EQ(http.requests.size(), 1u);
}

TEST_F(Report, ServerErrorNaksWithTheForgesDelayAndTheRetryPosts) {
  http::Response limited{429, "slow down"};
  limited.headers["Retry-After"] = "7";
  http.answers.push_back(limited);
  auto o = handle(status(msg::StatusState::kSuccess, 5));
  EXPECT_EQ(o.result, "retry");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kNak);
  EXPECT_EQ(o.disposition.delay, std::chrono::seconds(7));
  EXPECT_EQ(handle(status(msg::StatusState::kSuccess, 5), 2).result, "posted");
}

// Issue 14: a refusal never strands a context. The forge gets the status
// once more, reduced; what it refuses even then is recorded, not retried.
TEST_F(Report, ARefusedStatusIsSentOnceMoreReducedThenRecordedAsRefused) {
  auto s = status(msg::StatusState::kFailure, 5);
  s.description = "Build failed: " + std::string(100, 'x');
  s.target_url = "https://ci.example/evals/e1/jobs/j1";
  http.answers.push_back(http::Response{422, "{\"message\":\"Validation Failed\"}"});
  auto o = handle(s);
  EXPECT_EQ(o.result, "reduced");
  EXPECT_EQ(o.refused_status, 422);
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  ASSERT_EQ(http.requests.size(), 2u);
  auto reduced = nlohmann::json::parse(http.requests[1].body);
  EXPECT_EQ(reduced["state"], "failure");
  EXPECT_EQ(reduced["context"], s.context);
  EXPECT_FALSE(reduced.contains("target_url"));
  EXPECT_LE(reduced["description"].get<std::string>().size(), forge::kReducedDescriptionBytes);

  http.answers.push_back(http::Response{422, "{\"message\":\"Validation Failed\"}"});
  http.answers.push_back(http::Response{422, "{\"message\":\"Validation Failed\"}"});
  auto refused = handle(status(msg::StatusState::kSuccess, 6));
  EXPECT_EQ(refused.result, "refused");
  EXPECT_EQ(refused.refused_status, 422);
  EXPECT_EQ(refused.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_EQ(http.requests.size(), 4u);
  // A rate limit on the reduced post is waited out like any other.
  http.answers.push_back(http::Response{422, "{\"message\":\"Validation Failed\"}"});
  http.answers.push_back(http::Response{429, "slow down"});
  EXPECT_EQ(handle(status(msg::StatusState::kSuccess, 7)).result, "retry");
}

TEST_F(Report, OtherForgesWithoutAClientAreSkipped) {
  auto s = status(msg::StatusState::kSuccess, 5);
  s.repo.forge = "gitea";
  EXPECT_EQ(handle(s).result, "skipped");
  EXPECT_TRUE(http.requests.empty());
  EXPECT_EQ(handle_status(status(msg::StatusState::kSuccess, 6), 1, {store, nullptr, clock}).result, "skipped");
}

TEST_F(Report, StoreOutageNaks) {
  store.set_down(true);
  EXPECT_EQ(handle(status(msg::StatusState::kSuccess, 5)).disposition.kind, bus::Disposition::Kind::kNak);
}

namespace {
// An eval of `jobs` jobs in the store, `failed` of them failed and
// `pending` not yet ended.
void big_eval(state::StateStore& store, int jobs) {
  state::EvalRecord e;
  e.id = "big";
  e.repo = {"github", "octo", "hello", "", "", "main"};
  e.rev = std::string(40, 'b');
  ASSERT_TRUE(*store.create_eval(e));
  std::vector<state::JobSpec> specs;
  for (int i = 0; i < jobs; ++i) {
    state::JobSpec j;
    j.id = "j" + std::to_string(i);
    j.attr = "checks.x86_64-linux.t" + std::to_string(i);
    j.drv_path = "/nix/store/t" + std::to_string(i) + ".drv";
    j.system = "x86_64-linux";
    specs.push_back(j);
  }
  ASSERT_TRUE(store.add_jobs("big", specs, 1, true).has_value());
}
msg::StatusEvent job_status(int i, msg::StatusState st, std::int64_t at) {
  msg::StatusEvent s;
  s.eval_id = "big";
  s.repo = {"github", "octo", "hello", "", "", "main"};
  s.rev = std::string(40, 'b');
  s.context = "flurry/checks.x86_64-linux.t" + std::to_string(i);
  s.state = st;
  s.at_us = at;
  s.job_id = "j" + std::to_string(i);
  s.job_state = st == msg::StatusState::kPending ? "queued" : st == msg::StatusState::kSuccess ? "succeeded" : "failed";
  return s;
}
std::map<std::string, std::string> posted_contexts(const http::testing::FakeHttpClient& http) {
  std::map<std::string, std::string> out;  // context -> last state
  for (const auto& r : http.requests) {
    auto j = nlohmann::json::parse(r.body);
    out[j["context"]] = j["state"];
  }
  return out;
}
}  // namespace

TEST_F(Report, ABigEvalIsOneCombinedStatusPlusItsFailuresOnly) {
  cfg.max_job_statuses = 10;
  cfg.max_failure_statuses = 3;
  big_eval(store, 40);
  std::int64_t at = 100;
  for (int i = 0; i < 40; ++i) EXPECT_NE(handle(job_status(i, msg::StatusState::kPending, at++)).result, "retry");
  // Jobs end: the first five fail, the rest succeed.
  for (int i = 0; i < 40; ++i) {
    const auto st = i < 5 ? JobState::kFailed : JobState::kSucceeded;
    ASSERT_TRUE(store.finish_job("j" + std::to_string(i), st, "", 50 + i).has_value());
    clock.advance_ms(1000);
    handle(job_status(i, i < 5 ? msg::StatusState::kFailure : msg::StatusState::kSuccess, at++));
  }
  auto posted = posted_contexts(http);
  // No per-job pending or success statuses, three failures, and the
  // combined context, which ended failed.
  int failures = 0, others = 0;
  for (const auto& [context, state] : posted) {
    if (context == "flurry/builds") continue;
    (state == "failure" ? failures : others) += 1;
  }
  EXPECT_EQ(failures, 3);
  EXPECT_EQ(others, 0);
  ASSERT_TRUE(posted.count("flurry/builds"));
  EXPECT_EQ(posted["flurry/builds"], "failure");
  auto last = nlohmann::json::parse(http.requests.back().body);
  EXPECT_EQ(last["context"], "flurry/builds");
  EXPECT_EQ(last["description"], "40 of 40 done, 5 not successful");
  // Progress was shown at most every combined_interval (30 s here), not per job.
  int combined_posts = 0;
  for (const auto& r : http.requests) combined_posts += nlohmann::json::parse(r.body)["context"] == "flurry/builds";
  EXPECT_LE(combined_posts, 1 + 40 / 30 + 1);
  EXPECT_LT(http.requests.size(), 10u);
}

TEST_F(Report, InABigEvalAContextPostedBeforeIsEndedToo) {
  cfg.max_job_statuses = 10;
  big_eval(store, 20);
  // Posted while the eval looked small (its jobs arrive in batches).
  ASSERT_TRUE(store.put_forge_ref("posted\n" + context_key(job_status(3, msg::StatusState::kPending, 1)), "1", 60).has_value());
  ASSERT_TRUE(store.finish_job("j3", JobState::kSucceeded, "", 9).has_value());
  EXPECT_EQ(handle(job_status(3, msg::StatusState::kSuccess, 10)).result, "posted");
  EXPECT_EQ(posted_contexts(http)["flurry/checks.x86_64-linux.t3"], "success");
  // Another success in the same eval is not posted on its own.
  ASSERT_TRUE(store.finish_job("j4", JobState::kSucceeded, "", 9).has_value());
  EXPECT_EQ(handle(job_status(4, msg::StatusState::kSuccess, 11)).result, "combined");
  EXPECT_FALSE(posted_contexts(http).count("flurry/checks.x86_64-linux.t4"));
}

TEST_F(Report, ARedeliveredFailureOfABigEvalCountsOnce) {
  cfg.max_job_statuses = 1;
  cfg.max_failure_statuses = 1;
  big_eval(store, 5);
  ASSERT_TRUE(store.finish_job("j0", JobState::kFailed, "", 9).has_value());
  ASSERT_TRUE(store.finish_job("j1", JobState::kFailed, "", 9).has_value());
  EXPECT_EQ(handle(job_status(0, msg::StatusState::kFailure, 10)).result, "posted");
  EXPECT_EQ(handle(job_status(0, msg::StatusState::kFailure, 10), 2).result, "posted");  // the same, redelivered
  EXPECT_EQ(handle(job_status(1, msg::StatusState::kFailure, 11)).result, "combined");   // over the limit
}
