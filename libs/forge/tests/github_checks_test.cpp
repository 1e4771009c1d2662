#include "flurry/forge/github_checks.hpp"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "flurry/http/testing/fake_client.hpp"

using namespace flurry;
using namespace flurry::forge;

namespace {

struct MemoryIds final : CheckRunIds {
  Result<std::optional<std::string>> find(const std::string& k) override {
    auto it = ids.find(k);
    if (it == ids.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Result<void> remember(const std::string& k, const std::string& id) override {
    ids[k] = id;
    return {};
  }
  std::map<std::string, std::string> ids;
};

struct MemoryLogs final : JobLogs {
  Result<std::string> log(const std::string& job_id) override {
    asked.push_back(job_id);
    return text;
  }
  std::string text;
  std::vector<std::string> asked;
};

msg::StatusEvent job(msg::StatusState st, const std::string& job_state) {
  msg::StatusEvent s;
  s.eval_id = "e1";
  s.repo = {"github", "octo", "hello", "", "", "main"};
  s.rev = std::string(40, 'a');
  s.context = "flurry/checks.x86_64-linux.ok";
  s.state = st;
  s.description = st == msg::StatusState::kPending ? "Queued" : "Build failed";
  s.target_url = "https://ci.example/jobs/j1";
  s.job_id = "j1";
  s.job_state = job_state;
  return s;
}

class Checks : public ::testing::Test {
 protected:
  http::testing::FakeHttpClient http;
  FixedToken token{"ghs_tok"};
  ManualClock clock;
  MemoryIds ids;
  MemoryLogs logs;
  GitHubChecksClient checks{http, "https://api.example", token, clock, ids, logs};
};

}  // namespace

TEST_F(Checks, AQueuedJobCreatesItsRunAndItsEndUpdatesTheSameRun) {
  http.answers.push_back(http::Response{201, R"({"id": 4242, "status": "queued"})"});
  EXPECT_TRUE(checks.post(job(msg::StatusState::kPending, "queued")).ok);
  ASSERT_EQ(http.requests.size(), 1u);
  EXPECT_EQ(http.requests[0].method, "POST");
  EXPECT_EQ(http.requests[0].url, "https://api.example/repos/octo/hello/check-runs");
  EXPECT_EQ(http.requests[0].headers.at("Authorization"), "Bearer ghs_tok");
  auto created = nlohmann::json::parse(http.requests[0].body);
  EXPECT_EQ(created["name"], "flurry/checks.x86_64-linux.ok");
  EXPECT_EQ(created["head_sha"], std::string(40, 'a'));
  EXPECT_EQ(created["status"], "queued");
  EXPECT_FALSE(created.contains("conclusion"));
  EXPECT_EQ(created["external_id"], "job:j1");
  EXPECT_EQ(created["details_url"], "https://ci.example/jobs/j1");
  EXPECT_TRUE(logs.asked.empty());  // no log for a queued run

  logs.text = "building\n```\nerror: boom\n";
  http.answers.push_back(http::Response{200, R"({"id": 4242})"});
  EXPECT_TRUE(checks.post(job(msg::StatusState::kFailure, "failed")).ok);
  ASSERT_EQ(http.requests.size(), 2u);
  EXPECT_EQ(http.requests[1].method, "PATCH");
  EXPECT_EQ(http.requests[1].url, "https://api.example/repos/octo/hello/check-runs/4242");
  auto done = nlohmann::json::parse(http.requests[1].body);
  EXPECT_EQ(done["status"], "completed");
  EXPECT_EQ(done["conclusion"], "failure");
  EXPECT_EQ(done["output"]["title"], "Build failed");
  EXPECT_NE(done["output"]["summary"].get<std::string>().find("https://ci.example/jobs/j1"), std::string::npos);
  const auto text = done["output"]["text"].get<std::string>();
  EXPECT_NE(text.find("error: boom"), std::string::npos);
  // The log's own fence cannot close the one around it.
  EXPECT_EQ(text.find("```\nerror"), std::string::npos);
  EXPECT_EQ(logs.asked, std::vector<std::string>{"j1"});
}

TEST_F(Checks, ARunThatVanishedIsMadeAnew) {
  ids.ids["check-run\nocto\nhello\n" + std::string(40, 'a') + "\nflurry/checks.x86_64-linux.ok"] = "77";
  http.answers.push_back(http::Response{404, R"({"message":"Not Found"})"});
  http.answers.push_back(http::Response{201, R"({"id": 78})"});
  EXPECT_TRUE(checks.post(job(msg::StatusState::kSuccess, "succeeded")).ok);
  ASSERT_EQ(http.requests.size(), 2u);
  EXPECT_EQ(http.requests[1].method, "POST");
  EXPECT_EQ(ids.ids.begin()->second, "78");
}

TEST_F(Checks, FailuresOfTheApiAreRetriedOrNotAsForStatuses) {
  http.answers.push_back(http::Response{502, "bad gateway"});
  auto r = checks.post(job(msg::StatusState::kPending, "queued"));
  EXPECT_TRUE(r.retry);
  EXPECT_TRUE(ids.ids.empty());
  http.answers.push_back(http::Response{403, R"({"message":"You must authenticate via a GitHub App."})"});
  auto denied = checks.post(job(msg::StatusState::kPending, "queued"));
  EXPECT_FALSE(denied.ok);
  EXPECT_FALSE(denied.retry);
}

TEST(CheckRunFields, ConclusionsFollowTheJobsState) {
  auto f = [](msg::StatusState st, const std::string& js) { return check_run_fields(job(st, js), "").conclusion; };
  EXPECT_EQ(f(msg::StatusState::kSuccess, "succeeded"), "success");
  EXPECT_EQ(f(msg::StatusState::kSuccess, "skipped"), "success");
  EXPECT_EQ(f(msg::StatusState::kFailure, "timed_out"), "timed_out");
  EXPECT_EQ(f(msg::StatusState::kError, "cancelled"), "cancelled");
  EXPECT_EQ(f(msg::StatusState::kFailure, "dependency_failed"), "failure");
  EXPECT_EQ(f(msg::StatusState::kFailure, "unsupported_system"), "neutral");
  auto eval = job(msg::StatusState::kError, "");
  eval.job_id.clear();
  EXPECT_EQ(check_run_fields(eval, "").conclusion, "cancelled");
  EXPECT_EQ(check_run_fields(eval, "").external_id, "eval:e1");
  EXPECT_EQ(parse_external_id("job:j1"), std::make_optional(std::make_pair(std::string("job"), std::string("j1"))));
  EXPECT_EQ(parse_external_id("eval:e1")->first, "eval");
  EXPECT_FALSE(parse_external_id("job:").has_value());
  EXPECT_FALSE(parse_external_id("other:x").has_value());
}
