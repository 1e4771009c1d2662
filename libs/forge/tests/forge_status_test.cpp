// Gitea and GitLab status clients, the shared reading of forge answers and
// the forge configuration, on a scripted HTTP client.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "flurry/forge/forges.hpp"
#include "flurry/forge/gitea_status.hpp"
#include "flurry/forge/gitlab_status.hpp"
#include "flurry/http/testing/fake_client.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using namespace flurry::forge;

namespace {
msg::StatusEvent status(const std::string& forge, const std::string& owner, msg::StatusState state = msg::StatusState::kFailure) {
  msg::StatusEvent s;
  s.repo = {forge, owner, "hello", "", "", "main"};
  s.rev = std::string(40, 'a');
  s.context = "flurry/checks.x86_64-linux.\"a b\"";
  s.state = state;
  s.description = "Build failed";
  s.target_url = "https://ci.example/jobs/1";
  return s;
}
}  // namespace

TEST(GiteaStatus, PostsTheDocumentedRequestWithATokenHeader) {
  http::testing::FakeHttpClient http;
  ManualClock clock;
  GiteaStatusClient gitea(http, "https://gitea.example/", "gtok", clock);
  EXPECT_TRUE(gitea.post(status("gitea", "org"), forge::Detail::kFull).ok);
  ASSERT_EQ(http.requests.size(), 1u);
  const auto& req = http.requests[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "https://gitea.example/api/v1/repos/org/hello/statuses/" + std::string(40, 'a'));
  EXPECT_EQ(req.headers.at("Authorization"), "token gtok");
  auto body = nlohmann::json::parse(req.body);
  EXPECT_EQ(body["state"], "failure");
  EXPECT_EQ(body["context"], "flurry/checks.x86_64-linux.\"a b\"");
  EXPECT_EQ(body["target_url"], "https://ci.example/jobs/1");
}

TEST(GitLabStatus, PostsToTheProjectByItsEncodedPathWithGitLabsStateNames) {
  http::testing::FakeHttpClient http;
  ManualClock clock;
  GitLabStatusClient gitlab(http, "https://gitlab.example", "ltok", clock);
  EXPECT_TRUE(gitlab.post(status("gitlab", "infra/nix"), forge::Detail::kFull).ok);
  ASSERT_EQ(http.requests.size(), 1u);
  const auto& req = http.requests[0];
  EXPECT_EQ(req.url, "https://gitlab.example/api/v4/projects/infra%2Fnix%2Fhello/statuses/" + std::string(40, 'a'));
  EXPECT_EQ(req.headers.at("PRIVATE-TOKEN"), "ltok");
  auto body = nlohmann::json::parse(req.body);
  EXPECT_EQ(body["state"], "failed");
  EXPECT_EQ(body["name"], "flurry/checks.x86_64-linux.\"a b\"");
  EXPECT_EQ(gitlab_state(msg::StatusState::kError), "canceled");
  EXPECT_EQ(gitlab_state(msg::StatusState::kPending), "pending");
  EXPECT_EQ(gitlab_state(msg::StatusState::kSuccess), "success");
}

TEST(GitLabStatus, RepeatingTheStateAStatusHasCountsAsPostedButOther400sDoNot) {
  http::testing::FakeHttpClient http;
  ManualClock clock;
  GitLabStatusClient gitlab(http, "https://gitlab.example", "ltok", clock);
  http.answers.push_back(http::Response{400, R"({"message":"Cannot transition status via :enqueue from :pending"})"});
  EXPECT_TRUE(gitlab.post(status("gitlab", "g", msg::StatusState::kPending), forge::Detail::kFull).ok);
  http.answers.push_back(http::Response{400, R"({"message":{"state":["is invalid"]}})"});
  auto r = gitlab.post(status("gitlab", "g"), forge::Detail::kFull);
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.retry);
  EXPECT_EQ(r.message.find("ltok"), std::string::npos);
}

TEST(ReadAnswer, RateLimitsWaitForWhatTheForgeSaid) {
  const std::int64_t now = 1'800'000'000;
  http::Response reset{403, R"({"message":"API rate limit exceeded"})"};
  reset.headers["X-RateLimit-Remaining"] = "0";
  reset.headers["X-RateLimit-Reset"] = std::to_string(now + 120);
  auto r = read_answer(reset, "GitHub", now);
  EXPECT_TRUE(r.retry);
  ASSERT_TRUE(r.retry_after);
  EXPECT_EQ(r.retry_after->count(), 120);
  // A secondary limit that names no time: at least a minute.
  auto secondary = read_answer(http::Response{403, R"({"message":"You have exceeded a secondary rate limit."})"}, "GitHub", now);
  EXPECT_TRUE(secondary.retry);
  ASSERT_TRUE(secondary.retry_after);
  EXPECT_EQ(secondary.retry_after->count(), 60);
  http::Response gitlab{429, "Retry later\n"};
  gitlab.headers["RateLimit-Reset"] = std::to_string(now + 7);
  auto g = read_answer(gitlab, "GitLab", now);
  EXPECT_TRUE(g.retry);
  EXPECT_EQ(g.retry_after->count(), 7);
  // A plain 403 (no permission) is final.
  auto denied = read_answer(http::Response{403, R"({"message":"Resource not accessible by integration"})"}, "GitHub", now);
  EXPECT_FALSE(denied.retry);
  EXPECT_EQ(denied.message, R"(GitHub answered 403: {"message":"Resource not accessible by integration"})");
}

TEST(Forges, EachConfiguredForgeGetsItsPosterAndAnIncompleteSectionIsRefused) {
  test::TempDir tmp("flurry-forges");
  test::write_file(tmp.file("gitea-token"), "gitea-token-value\n");
  test::write_file(tmp.file("gitlab-token"), "gitlab-token-value\n");
  http::testing::FakeHttpClient http;
  ManualClock clock;
  auto config = Config::from_string("[gitea]\napi_url = \"https://gitea.example\"\ntoken_file = \"" + tmp.file("gitea-token") +
                                    "\"\n[gitlab]\ntoken_file = \"" + tmp.file("gitlab-token") + "\"\n");
  Forges forges(config, http, clock);
  EXPECT_EQ(forges.configured(), (std::vector<std::string>{"gitea", "gitlab"}));
  EXPECT_EQ(forges.poster("github"), nullptr);
  ASSERT_NE(forges.poster("gitlab"), nullptr);
  EXPECT_TRUE(forges.poster("gitlab")->post(status("gitlab", "g"), forge::Detail::kFull).ok);
  EXPECT_EQ(http.requests.back().url.rfind("https://gitlab.com/api/v4/", 0), 0u);  // gitlab.com unless told
  EXPECT_EQ(http.requests.back().headers.at("PRIVATE-TOKEN"), "gitlab-token-value");

  EXPECT_THROW(Forges(Config::from_string("[gitea]\ntoken_file = \"" + tmp.file("gitea-token") + "\"\n"), http, clock), ConfigError);
  EXPECT_THROW(Forges(Config::from_string("[github]\napi_url = \"https://x\"\n"), http, clock), ConfigError);
  // The earlier spelling still works.
  test::write_file(tmp.file("gh-token"), "gh-token-value\n");
  Forges old(Config::from_string("[reporter.github]\napi_url = \"https://gh.example\"\ntoken_file = \"" + tmp.file("gh-token") + "\"\n"),
             http, clock);
  EXPECT_EQ(old.configured(), std::vector<std::string>{"github"});
}

TEST(Forges, CloneCredentialsGoOnlyToTheForgesOwnHost) {
  test::TempDir tmp("flurry-forges-clone");
  test::write_file(tmp.file("gh"), "ghp_fixed\n");
  test::write_file(tmp.file("gl"), "glpat-x\n");
  http::testing::FakeHttpClient http;
  ManualClock clock;
  Forges forges(Config::from_string("[github]\ntoken_file = \"" + tmp.file("gh") + "\"\n[gitlab]\napi_url = \"https://gitlab.example\"\n"
                                    "token_file = \"" + tmp.file("gl") + "\"\n"),
                http, clock);
  msg::Repo gh{"github", "octo", "private", "", "", "main"};
  EXPECT_EQ(*forges.clone_auth(gh, "https://github.com/octo/private.git"),
            "Authorization: Basic " + crypto::base64("x-access-token:ghp_fixed"));
  EXPECT_EQ(*forges.clone_auth(gh, "https://evil.example/octo/private.git"), "");
  EXPECT_EQ(*forges.clone_auth(gh, "git@github.com:octo/private.git"), "");  // ssh has keys of its own
  msg::Repo gl{"gitlab", "infra/nix", "hello", "", "", "main"};
  EXPECT_EQ(*forges.clone_auth(gl, "https://user@GitLab.example/infra/nix/hello.git"),
            "Authorization: Basic " + crypto::base64("oauth2:glpat-x"));
  EXPECT_EQ(*forges.clone_auth(gl, "https://gitlab.com/infra/nix/hello.git"), "");
  msg::Repo git_repo{"git", "poll", "x", "", "", "main"};
  EXPECT_EQ(*forges.clone_auth(git_repo, "https://github.com/a/b.git"), "");
}
