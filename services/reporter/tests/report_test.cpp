#include "report.hpp"

#include <gtest/gtest.h>

#include "flurry/forge/github_status.hpp"
#include "flurry/http/testing/fake_client.hpp"
#include "flurry/state/testing/memory_store.hpp"

using namespace flurry;
using namespace flurry::reporter;

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
    return handle_status(s, n, {store, [this](const std::string& f) -> forge::StatusPoster* { return f == "github" ? &github : nullptr; }});
  }
  state::testing::MemoryStore store;
  http::testing::FakeHttpClient http;
  forge::FixedToken token{"tok"};
  ManualClock clock;
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

TEST_F(Report, ClientErrorIsNotRetried) {
  http.answers.push_back(http::Response{422, "{\"message\":\"Validation Failed\"}"});
  auto o = handle(status(msg::StatusState::kSuccess, 5));
  EXPECT_EQ(o.result, "rejected");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
}

TEST_F(Report, OtherForgesWithoutAClientAreSkipped) {
  auto s = status(msg::StatusState::kSuccess, 5);
  s.repo.forge = "gitea";
  EXPECT_EQ(handle(s).result, "skipped");
  EXPECT_TRUE(http.requests.empty());
  EXPECT_EQ(handle_status(status(msg::StatusState::kSuccess, 6), 1, {store, nullptr}).result, "skipped");
}

TEST_F(Report, StoreOutageNaks) {
  store.set_down(true);
  EXPECT_EQ(handle(status(msg::StatusState::kSuccess, 5)).disposition.kind, bus::Disposition::Kind::kNak);
}
