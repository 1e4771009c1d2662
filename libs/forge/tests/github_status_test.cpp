#include "flurry/forge/github_status.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "flurry/http/testing/fake_client.hpp"

using namespace flurry;
using namespace flurry::forge;

namespace {
msg::StatusEvent status() {
  msg::StatusEvent s;
  s.repo = {"github", "octo", "hello world", "", "", "main"};
  s.rev = std::string(40, 'a');
  s.context = "flurry/checks.x86_64-linux.ok";
  s.state = msg::StatusState::kSuccess;
  s.description = "Build succeeded";
  return s;
}
}  // namespace

TEST(GitHubStatus, PostsTheDocumentedRequest) {
  http::testing::FakeHttpClient http;
  FixedToken tok("tok");
  ManualClock clock;
  GitHubStatusClient gh(http, "https://api.example/", tok, clock);
  auto r = gh.post(status(), forge::Detail::kFull);
  EXPECT_TRUE(r.ok);
  ASSERT_EQ(http.requests.size(), 1u);
  const auto& req = http.requests[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "https://api.example/repos/octo/hello%20world/statuses/" + std::string(40, 'a'));
  EXPECT_EQ(req.headers.at("Authorization"), "Bearer tok");
  auto body = nlohmann::json::parse(req.body);
  EXPECT_EQ(body["state"], "success");
  EXPECT_EQ(body["context"], "flurry/checks.x86_64-linux.ok");
  EXPECT_EQ(body["description"], "Build succeeded");
  EXPECT_FALSE(body.contains("target_url"));
}

TEST(GitHubStatus, ServerErrorsAndRateLimitsAreRetriedHonouringRetryAfter) {
  http::testing::FakeHttpClient http;
  FixedToken tok("tok");
  ManualClock clock;
  GitHubStatusClient gh(http, "https://api.example", tok, clock);
  http.answers.push_back(http::Response{502, "bad gateway"});
  auto r = gh.post(status(), forge::Detail::kFull);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.retry);
  http::Response limited{403, "{\"message\":\"You have exceeded a secondary rate limit\"}"};
  limited.headers["Retry-After"] = "60";
  http.answers.push_back(limited);
  r = gh.post(status(), forge::Detail::kFull);
  EXPECT_TRUE(r.retry);
  ASSERT_TRUE(r.retry_after.has_value());
  EXPECT_EQ(r.retry_after->count(), 60);
  http.answers.push_back(fail(Error::transient("connection refused")));
  EXPECT_TRUE(gh.post(status(), forge::Detail::kFull).retry);
}

TEST(GitHubStatus, ClientErrorsAreNotRetried) {
  http::testing::FakeHttpClient http;
  FixedToken tok("tok");
  ManualClock clock;
  GitHubStatusClient gh(http, "https://api.example", tok, clock);
  http.answers.push_back(http::Response{422, "{\"message\":\"This SHA and context has reached the maximum number of statuses.\"}"});
  auto r = gh.post(status(), forge::Detail::kFull);
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.retry);
  EXPECT_EQ(r.http_status, 422);
  EXPECT_EQ(r.message.find("tok"), std::string::npos);
}
