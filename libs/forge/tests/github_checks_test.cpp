#include "flurry/forge/github_checks.hpp"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "flurry/core/text.hpp"
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
  EXPECT_TRUE(checks.post(job(msg::StatusState::kPending, "queued"), forge::Detail::kFull).ok);
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
  EXPECT_TRUE(checks.post(job(msg::StatusState::kFailure, "failed"), forge::Detail::kFull).ok);
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
  EXPECT_TRUE(checks.post(job(msg::StatusState::kSuccess, "succeeded"), forge::Detail::kFull).ok);
  ASSERT_EQ(http.requests.size(), 2u);
  EXPECT_EQ(http.requests[1].method, "POST");
  EXPECT_EQ(ids.ids.begin()->second, "78");
}

TEST_F(Checks, FailuresOfTheApiAreRetriedOrNotAsForStatuses) {
  http.answers.push_back(http::Response{502, "bad gateway"});
  auto r = checks.post(job(msg::StatusState::kPending, "queued"), forge::Detail::kFull);
  EXPECT_TRUE(r.retry);
  EXPECT_TRUE(ids.ids.empty());
  http.answers.push_back(http::Response{403, R"({"message":"You must authenticate via a GitHub App."})"});
  auto denied = checks.post(job(msg::StatusState::kPending, "queued"), forge::Detail::kFull);
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

// Issue 14: GitHub refuses an output.text or summary over 65,535 bytes
// (422), and a run it refused stays as it was. A log of many fences grows
// when its fences are broken: the limit holds after that, counted in bytes
// as sent (invalid UTF-8 becomes a 3-byte U+FFFD), and the text stays one
// closed code block ending with the log's last line.
TEST(CheckRunFields, ALogTailOfFencesAndBadBytesStaysWithinGitHubsByteLimit) {
  std::string log;
  for (int i = 0; i < 100; ++i) log += std::string(700, '`') + "\xff\xfe" + "line " + std::to_string(i) + "\n";
  log += "error: the last line\n";
  auto f = check_run_fields(job(msg::StatusState::kFailure, "failed"), log);
  const auto sent = nlohmann::json(f.text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const auto as_github_reads = nlohmann::json::parse(sent).get<std::string>();
  EXPECT_LE(as_github_reads.size(), 65535u);
  EXPECT_GT(as_github_reads.size(), 60000u);  // as much of the log as fits
  EXPECT_TRUE(text::valid_utf8(f.text));
  EXPECT_EQ(f.text.find("```\n"), f.text.find("```"));  // our opening fence is the first
  EXPECT_NE(f.text.find("error: the last line\n```\n"), std::string::npos);
  EXPECT_EQ(f.text.rfind("```"), f.text.size() - 4);  // and our closing one the last
  EXPECT_EQ(f.text.find("````"), std::string::npos);   // none of the log's is whole
}

TEST(CheckRunFields, AJobBeingBuiltIsInProgressSinceItsStart) {
  auto s = job(msg::StatusState::kPending, "building");
  s.description = "Building";
  s.at_us = 1'764'806'400'000'000;  // 2025-12-04T00:00:00Z
  auto f = check_run_fields(s, "");
  EXPECT_EQ(f.status, "in_progress");
  EXPECT_EQ(f.started_at, "2025-12-04T00:00:00Z");
  EXPECT_EQ(check_run_fields(job(msg::StatusState::kPending, "queued"), "").status, "queued");
  EXPECT_TRUE(check_run_fields(job(msg::StatusState::kPending, "queued"), "").started_at.empty());
  auto done = job(msg::StatusState::kSuccess, "succeeded");
  done.at_us = 1'764'806'460'000'001;
  EXPECT_EQ(check_run_fields(done, "").completed_at, "2025-12-04T00:01:00Z");
}

TEST(CheckRunFields, AnEvaluationErrorShowsNixsWholeMessage) {
  auto s = job(msg::StatusState::kFailure, "eval_failed");
  s.description = "Evaluation failed: error: attribute 'x' missing";
  s.details = "Evaluation failed: error: attribute 'x' missing\n\n       at /nix/store/abc-source/flake.nix:3:5:\n"
              "            2|\n            3|   x = y.x;\n";
  auto f = check_run_fields(s, "");
  EXPECT_EQ(f.conclusion, "failure");
  EXPECT_NE(f.text.find("Evaluation error:"), std::string::npos);
  EXPECT_NE(f.text.find("at /nix/store/abc-source/flake.nix:3:5:"), std::string::npos);
  EXPECT_NE(f.text.find("3|   x = y.x;"), std::string::npos);
  // One too long keeps its start: where nix says what went wrong.
  s.details = "error: the start\n" + std::string(100000, 'y');
  auto long_error = check_run_fields(s, "");
  EXPECT_LE(long_error.text.size(), 65535u);
  EXPECT_NE(long_error.text.find("error: the start"), std::string::npos);
  // The eval's own context too.
  auto eval = job(msg::StatusState::kFailure, "");
  eval.job_id.clear();
  eval.context = "flurry/eval";
  eval.details = "error: syntax error, unexpected '}'\n       at flake.nix:9:1";
  EXPECT_NE(check_run_fields(eval, "").text.find("at flake.nix:9:1"), std::string::npos);
}

TEST(CheckRunFields, AReducedRunSaysTheStateWithAShortTitleAndNoText) {
  auto s = job(msg::StatusState::kFailure, "failed");
  s.description = "Build failed: " + std::string(200, 'z');
  auto f = check_run_fields(s, "a log\n", Detail::kReduced);
  EXPECT_EQ(f.status, "completed");
  EXPECT_EQ(f.conclusion, "failure");
  EXPECT_TRUE(f.text.empty());
  EXPECT_LE(f.title.size(), kReducedDescriptionBytes);
  EXPECT_LE(f.summary.size(), kReducedDescriptionBytes);
  EXPECT_FALSE(f.summary.empty());
  EXPECT_EQ(f.summary.find("https://"), std::string::npos);
}
