#include "flurry/forge/github_app.hpp"

#include <gtest/gtest.h>

#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>

#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"
#include "flurry/http/testing/fake_client.hpp"
#include "flurry/test/jwt.hpp"

using namespace flurry;
using namespace flurry::forge;
using json = nlohmann::json;


TEST(GitHubApp, TheJwtIsRs256SignedWithTheAppsKeyAndLastsUnderTenMinutes) {
  auto key = test::new_rsa_key_pair();
  auto jwt = github_app_jwt("12345", key.private_pem, 1'700'000'000);
  ASSERT_TRUE(jwt.has_value()) << jwt.error().message;
  auto parts = text::split(*jwt, '.');
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(json::parse(*test::unbase64url(parts[0]))["alg"], "RS256");
  auto verified = test::verified_jwt_claims(*jwt, key.public_pem);
  ASSERT_TRUE(verified.has_value());
  auto claims = json::parse(*verified);
  EXPECT_EQ(claims["iss"], "12345");
  EXPECT_EQ(claims["iat"], 1'700'000'000 - 60);
  EXPECT_EQ(claims["exp"], 1'700'000'000 + 540);
  // The check itself can fail: another key does not verify it.
  EXPECT_FALSE(test::verified_jwt_claims(*jwt, test::new_rsa_key_pair().public_pem).has_value());
  // A key that is not one is refused, without echoing it.
  auto bad = github_app_jwt("1", "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", 1);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kRejected);
  EXPECT_EQ(bad.error().message.find("not a key"), std::string::npos);
}

TEST(GitHubApp, GitHubTimesAreRead) {
  EXPECT_EQ(parse_github_time("2016-07-11T22:14:10Z"), 1468275250);
  EXPECT_EQ(parse_github_time("2016-07-11 22:14:10"), std::nullopt);
  EXPECT_EQ(parse_github_time(""), std::nullopt);
}

class AppTokens : public ::testing::Test {
 protected:
  void SetUp() override { tokens = std::make_unique<GitHubAppTokens>(http, clock, GitHubAppOptions{"https://api.example/", "777", key.private_pem}); }
  static http::Response installation(int id) { return {200, "{\"id\": " + std::to_string(id) + "}"}; }
  // An access token that expires an hour after the clock's now.
  http::Response token(const std::string& value) {
    std::time_t t = static_cast<std::time_t>(clock.now_ms() / 1000 + 3600);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return {201, json{{"token", value}, {"expires_at", buf}}.dump()};
  }
  test::KeyPair key = test::new_rsa_key_pair();
  http::testing::FakeHttpClient http;
  ManualClock clock;
  std::unique_ptr<GitHubAppTokens> tokens;
};

TEST_F(AppTokens, AnInstallationTokenIsFetchedOnceAndRefreshedBeforeItExpires) {
  http.answers = {installation(42), token("ghs_first_token_value")};
  auto t = tokens->token_for("octo", "hello", 0);
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ(*t, "ghs_first_token_value");
  ASSERT_EQ(http.requests.size(), 2u);
  EXPECT_EQ(http.requests[0].method, "GET");
  EXPECT_EQ(http.requests[0].url, "https://api.example/repos/octo/hello/installation");
  EXPECT_EQ(http.requests[1].method, "POST");
  EXPECT_EQ(http.requests[1].url, "https://api.example/app/installations/42/access_tokens");
  // Both authenticated as the app, with a JWT signed by its key.
  for (int i : {0, 1}) {
    auto jwt = http.requests[i].headers["Authorization"].substr(7);
    ASSERT_TRUE(test::verified_jwt_claims(jwt, key.public_pem).has_value()) << i;
    EXPECT_EQ(json::parse(*test::verified_jwt_claims(jwt, key.public_pem))["iss"], "777");
  }

  // Cached: no call for the same repository, nor for another repository
  // of the same installation (once its installation is known).
  EXPECT_EQ(*tokens->token_for("octo", "hello", 0), "ghs_first_token_value");
  EXPECT_EQ(http.requests.size(), 2u);
  http.answers = {installation(42)};
  EXPECT_EQ(*tokens->token_for("octo", "other", 0), "ghs_first_token_value");
  EXPECT_EQ(http.requests.size(), 3u);

  // 56 minutes later (under 5 minutes left): a new token.
  clock.advance_ms(56 * 60 * 1000);
  http.answers = {token("ghs_second_token_value")};
  EXPECT_EQ(*tokens->token_for("octo", "hello", 0), "ghs_second_token_value");
  EXPECT_EQ(http.requests.size(), 4u);
  // Tokens are secrets: log lines never show them.
  EXPECT_EQ(log::redact("token ghs_second_token_value"), "token [redacted]");
}

TEST_F(AppTokens, FailuresSayWhetherToTryAgain) {
  http.answers = {http::Response{404, R"({"message":"Not Found"})"}};
  auto missing = tokens->token_for("octo", "private", 0);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kRejected);
  EXPECT_NE(missing.error().message.find("not installed on octo/private"), std::string::npos);

  http.answers = {installation(7), http::Response{502, "bad gateway"}};
  auto down = tokens->token_for("octo", "hello", 0);
  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.error().code, ErrorCode::kTransient);

  http.answers = {Result<http::Response>(fail(Error::transient("connection refused")))};
  auto unreachable = tokens->token_for("octo", "hello", 0);
  ASSERT_FALSE(unreachable.has_value());
  EXPECT_EQ(unreachable.error().code, ErrorCode::kTransient);

  http.answers = {http::Response{201, R"({"token": "x"})"}};
  EXPECT_FALSE(tokens->token_for("octo", "hello", 0).has_value());  // no expiry: not used
}

// Issue 14: webhooks to an App name its installation; then no look-up.
TEST_F(AppTokens, TheInstallationAWebhookNamedNeedsNoLookUp) {
  http.answers = {token("ghs_named")};
  EXPECT_EQ(*tokens->token_for("octo", "hello", 42), "ghs_named");
  ASSERT_EQ(http.requests.size(), 1u);
  EXPECT_EQ(http.requests[0].url, "https://api.example/app/installations/42/access_tokens");
  // Known from now on for that repository, also where nothing names it.
  EXPECT_EQ(*tokens->token_for("octo", "hello", 0), "ghs_named");
  EXPECT_EQ(http.requests.size(), 1u);
  // A named installation GitHub no longer knows (the App was reinstalled):
  // the look-up finds the current one.
  http.answers = {http::Response{404, R"({"message":"Not Found"})"}, installation(43), token("ghs_current")};
  EXPECT_EQ(*tokens->token_for("octo", "moved", 41), "ghs_current");
  EXPECT_EQ(http.requests.size(), 4u);
  EXPECT_EQ(http.requests[2].url, "https://api.example/repos/octo/moved/installation");
}

// A look-up that failed is answered from memory for a while, so that every
// status of a repository the App cannot reach does not ask GitHub again.
TEST_F(AppTokens, AFailedLookUpIsRememberedForAWhile) {
  http.answers = {http::Response{404, R"({"message":"Not Found"})"}};
  auto first = tokens->token_for("octo", "private", 0);
  ASSERT_FALSE(first.has_value());
  auto again = tokens->token_for("octo", "private", 0);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kRejected);
  EXPECT_EQ(again.error().message, first.error().message);
  EXPECT_EQ(http.requests.size(), 1u);
  // A minute later GitHub is asked again (the App may have been installed).
  clock.advance_ms(61 * 1000);
  http.answers = {installation(9), token("ghs_now_installed")};
  EXPECT_EQ(*tokens->token_for("octo", "private", 0), "ghs_now_installed");
  EXPECT_EQ(http.requests.size(), 3u);
}
