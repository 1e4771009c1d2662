// FakeForge answers like the forges it stands in for, driven over HTTP
// the way Flurry's clients reach it.
#include "flurry/fakes/fake_forge.hpp"
#include "flurry/fakes/raw_http_client.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>

#include "flurry/core/text.hpp"
#include "flurry/forge/github_app.hpp"
#include "flurry/forge/status_poster.hpp"
#include "flurry/http/http.hpp"
#include "flurry/test/jwt.hpp"

using namespace flurry;
using nlohmann::json;

namespace {

const std::string kSha(40, 'a');

class FakeForgeTest : public ::testing::Test {
 protected:
  http::Response send(const std::string& method, const std::string& path, const std::string& body = "",
                      std::map<std::string, std::string> headers = {}) {
    auto r = client->send({.method = method, .url = forge.url() + path, .headers = std::move(headers), .body = body});
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r.has_value() ? *r : http::Response{0};
  }
  static json parsed(const http::Response& r) { return json::parse(r.body, nullptr, false); }
  // A GET as a browser makes it: a redirect is answered, not followed.
  http::Response browse(const std::string& path) {
    auto r = fakes::RawHttpClient().send({.url = forge.url() + path});
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r.has_value() ? *r : http::Response{0};
  }

  fakes::FakeForge forge;
  std::unique_ptr<http::Client> client = http::make_client();
};

TEST_F(FakeForgeTest, GitHubStatusIsRecordedAndAnInvalidStateIsRefused) {
  auto ok = send("POST", "/repos/octo/hello/statuses/" + kSha,
                 R"({"state":"pending","context":"flurry/eval","description":"Evaluating","target_url":"http://x/1"})");
  EXPECT_EQ(ok.status, 201) << ok.body;
  EXPECT_EQ(send("POST", "/repos/octo/hello/statuses/" + kSha, R"({"state":"running","context":"flurry/eval"})").status, 422);
  EXPECT_EQ(send("POST", "/repos/octo/hello/statuses/" + kSha, R"({"context":"flurry/eval"})").status, 422);
  EXPECT_EQ(send("POST", "/repos/octo/hello/statuses/" + kSha, R"({"state":"success","context":"flurry/eval"})").status, 201);

  auto all = forge.statuses();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].forge, "github");
  EXPECT_EQ(all[0].owner, "octo");
  EXPECT_EQ(all[0].repo, "hello");
  EXPECT_EQ(all[0].description, "Evaluating");
  EXPECT_EQ(all[0].target_url, "http://x/1");
  auto finals = forge.final_statuses(kSha);
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_EQ(finals["flurry/eval"].state, "success");
  EXPECT_TRUE(forge.final_statuses(kSha, fakes::kGitLab).empty());
  // Every call was recorded, refused ones too, with what it was answered.
  auto calls = forge.calls();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[1].status, 422);
  EXPECT_EQ(calls[0].forge, "github");
  EXPECT_EQ(calls[0].headers["content-type"], "application/json");
}

TEST_F(FakeForgeTest, GitLabRefusesRepeatingAPendingOrRunningStateButNotAFinishedOne) {
  const std::string path = "/api/v4/projects/group%2Fproj/statuses/" + kSha;
  EXPECT_EQ(send("POST", path, R"({"state":"running","name":"flurry/eval"})").status, 201);
  auto again = send("POST", path, R"({"state":"running","name":"flurry/eval"})");
  EXPECT_EQ(again.status, 400);
  EXPECT_EQ(parsed(again).value("message", "").rfind("Cannot transition status via :run from :running", 0), 0u) << again.body;
  auto back = send("POST", path, R"({"state":"pending","name":"flurry/eval"})");
  EXPECT_EQ(back.status, 400);
  EXPECT_NE(back.body.find("Cannot transition status via :enqueue from :running"), std::string::npos) << back.body;
  // A finished status is not reused: the next post starts a new one.
  EXPECT_EQ(send("POST", path, R"({"state":"success","name":"flurry/eval"})").status, 201);
  EXPECT_EQ(send("POST", path, R"({"state":"success","name":"flurry/eval"})").status, 201);
  // Another name has a state of its own; a form body works like JSON.
  EXPECT_EQ(send("POST", path, "state=pending&name=flurry%2Fother&description=in+queue",
                 {{"Content-Type", "application/x-www-form-urlencoded"}})
                .status,
            201);
  EXPECT_EQ(send("POST", path, R"({"state":"done"})").status, 400);

  auto finals = forge.final_statuses(kSha, fakes::kGitLab);
  ASSERT_EQ(finals.size(), 2u);
  EXPECT_EQ(finals["flurry/eval"].state, "success");
  EXPECT_EQ(finals["flurry/other"].state, "pending");
  EXPECT_EQ(finals["flurry/other"].description, "in queue");
  EXPECT_EQ(forge.statuses().size(), 4u);
}

TEST_F(FakeForgeTest, GitLabProjectIsTheSameByNumericIdOrEncodedPath) {
  forge.add_repository(fakes::kGitLab, "group/sub", "proj", {"nix"});
  forge.set_token(fakes::kGitLab, "glpat-1");
  const std::string body = R"({"state":"success","name":"ci"})";
  EXPECT_EQ(send("POST", "/api/v4/projects/group%2Fsub%2Fproj/statuses/" + kSha, body, {{"PRIVATE-TOKEN", "glpat-1"}}).status, 201);
  EXPECT_EQ(send("POST", "/api/v4/projects/1/statuses/" + kSha, R"({"state":"failed","name":"ci"})",
                 {{"Authorization", "Bearer glpat-1"}})
                .status,
            201);
  EXPECT_EQ(send("POST", "/api/v4/projects/1/statuses/" + kSha, body, {{"PRIVATE-TOKEN", "wrong"}}).status, 401);
  EXPECT_EQ(send("POST", "/api/v4/projects/2/statuses/" + kSha, body, {{"PRIVATE-TOKEN", "glpat-1"}}).status, 404);
  auto all = forge.statuses();
  ASSERT_EQ(all.size(), 2u);
  for (const auto& s : all) {
    EXPECT_EQ(s.owner, "group/sub");
    EXPECT_EQ(s.repo, "proj");
  }
  // Members, users and the project list see the same project.
  forge.set_permission(fakes::kGitLab, "group/sub", "proj", "alice", "developer");
  auto users = parsed(send("GET", "/api/v4/users?username=alice", "", {{"PRIVATE-TOKEN", "glpat-1"}}));
  ASSERT_EQ(users.size(), 1u);
  auto uid = std::to_string(users[0]["id"].get<int>());
  auto member = send("GET", "/api/v4/projects/group%2Fsub%2Fproj/members/all/" + uid, "", {{"PRIVATE-TOKEN", "glpat-1"}});
  EXPECT_EQ(member.status, 200);
  EXPECT_EQ(parsed(member)["access_level"], 30);
  EXPECT_EQ(send("GET", "/api/v4/projects/1/members/all/999", "", {{"PRIVATE-TOKEN", "glpat-1"}}).status, 404);
  auto list = send("GET", "/api/v4/projects?membership=true&topic=nix&per_page=10", "", {{"PRIVATE-TOKEN", "glpat-1"}});
  ASSERT_EQ(parsed(list).size(), 1u);
  EXPECT_EQ(parsed(list)[0]["path_with_namespace"], "group/sub/proj");
  EXPECT_EQ(list.header("x-total"), "1");
  EXPECT_TRUE(parsed(send("GET", "/api/v4/projects?topic=other", "", {{"PRIVATE-TOKEN", "glpat-1"}})).empty());
}

TEST_F(FakeForgeTest, CheckRunsAreForGitHubAppsOnly) {
  auto r = send("POST", "/repos/octo/hello/check-runs", R"({"name":"flurry","head_sha":")" + kSha + R"("})");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(parsed(r)["message"], "You must authenticate via a GitHub App.");
  EXPECT_TRUE(forge.check_runs().empty());
}

TEST_F(FakeForgeTest, AsAnAppCheckRunsAreCreatedAndPatchedWithAnInstallationToken) {
  auto key = test::new_rsa_key_pair();
  forge.act_as_app("4242", key.public_pem, 99);
  auto jwt = forge::github_app_jwt("4242", key.private_pem, std::time(nullptr));
  ASSERT_TRUE(jwt.has_value()) << jwt.error().message;
  EXPECT_EQ(send("POST", "/app/installations/99/access_tokens", "", {{"Authorization", "Bearer not-a-jwt"}}).status, 401);
  auto issued = send("POST", "/app/installations/99/access_tokens", "", {{"Authorization", "Bearer " + *jwt}});
  ASSERT_EQ(issued.status, 201) << issued.body;
  const std::map<std::string, std::string> auth = {{"Authorization", "Bearer " + parsed(issued)["token"].get<std::string>()}};
  EXPECT_EQ(forge.issued_tokens().size(), 1u);

  const std::string create = R"({"name":"flurry/eval","head_sha":")" + kSha + R"(","status":"in_progress","external_id":"e1"})";
  EXPECT_EQ(send("POST", "/repos/octo/hello/check-runs", create, {{"Authorization", "Bearer ghp_other"}}).status, 401);
  auto created = send("POST", "/repos/octo/hello/check-runs", create, auth);
  ASSERT_EQ(created.status, 201) << created.body;
  auto id = std::to_string(parsed(created)["id"].get<std::int64_t>());
  const auto run_path = "/repos/octo/hello/check-runs/" + id;
  EXPECT_EQ(send("PATCH", run_path, R"({"status":"completed"})", auth).status, 422);
  EXPECT_EQ(send("PATCH", run_path, R"({"status":"completed","conclusion":"passed"})", auth).status, 422);
  auto done = send("PATCH", run_path, R"({"status":"completed","conclusion":"success","output":{"title":"ok","summary":"3 built"}})", auth);
  EXPECT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(parsed(done)["conclusion"], "success");
  EXPECT_EQ(send("PATCH", "/repos/octo/hello/check-runs/12345", R"({"status":"queued"})", auth).status, 404);
  EXPECT_EQ(send("PATCH", "/repos/octo/other/check-runs/" + id, R"({"status":"queued"})", auth).status, 404);

  auto runs = forge.check_runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].name, "flurry/eval");
  EXPECT_EQ(runs[0].head_sha, kSha);
  EXPECT_EQ(runs[0].status, "completed");
  EXPECT_EQ(runs[0].conclusion, "success");
  EXPECT_EQ(runs[0].external_id, "e1");
  EXPECT_EQ(runs[0].summary, "3 built");
  auto history = forge.check_run_history();
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].status, "in_progress");
  EXPECT_EQ(history[1].status, "completed");
  // Statuses, too, only with the installation token.
  EXPECT_EQ(send("POST", "/repos/octo/hello/statuses/" + kSha, R"({"state":"success"})").status, 401);
  EXPECT_EQ(send("POST", "/repos/octo/hello/statuses/" + kSha, R"({"state":"success"})", auth).status, 201);
}

TEST_F(FakeForgeTest, AsAnAppGitHubListsInstallationRepositoriesPermissionsAndHooks) {
  auto key = test::new_rsa_key_pair();
  forge.add_repository(fakes::kGitHub, "octo", "hello", {"nix"}, "trunk", "file:///srv/hello");
  forge.set_permission(fakes::kGitHub, "octo", "hello", "alice", "maintain");
  forge.act_as_app("7", key.public_pem, 5);
  auto jwt = forge::github_app_jwt("7", key.private_pem, std::time(nullptr));
  ASSERT_TRUE(jwt.has_value());
  auto installations = parsed(send("GET", "/app/installations", "", {{"Authorization", "Bearer " + *jwt}}));
  ASSERT_EQ(installations.size(), 1u);
  EXPECT_EQ(installations[0]["id"], 5);
  EXPECT_EQ(installations[0]["account"]["login"], "octo");
  auto token = parsed(send("POST", "/app/installations/5/access_tokens", "", {{"Authorization", "Bearer " + *jwt}}))["token"];
  const std::map<std::string, std::string> auth = {{"Authorization", "token " + token.get<std::string>()}};

  auto repos = parsed(send("GET", "/installation/repositories", "", auth));
  EXPECT_EQ(repos["total_count"], 1);
  EXPECT_EQ(repos["repositories"][0]["full_name"], "octo/hello");
  EXPECT_EQ(repos["repositories"][0]["clone_url"], "file:///srv/hello");
  EXPECT_EQ(repos["repositories"][0]["default_branch"], "trunk");
  EXPECT_EQ(repos["repositories"][0]["topics"], json::array({"nix"}));
  auto alice = parsed(send("GET", "/repos/octo/hello/collaborators/alice/permission", "", auth));
  EXPECT_EQ(alice["permission"], "write");
  EXPECT_EQ(alice["role_name"], "maintain");
  EXPECT_EQ(parsed(send("GET", "/repos/octo/hello/collaborators/eve/permission", "", auth))["permission"], "none");

  const std::string hook = R"({"name":"web","active":true,"events":["push"],"config":{"url":"http://ci/gh","content_type":"json","secret":"s"}})";
  auto created = send("POST", "/repos/octo/hello/hooks", hook, auth);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(parsed(created)["config"]["secret"], "********");
  EXPECT_EQ(send("POST", "/repos/octo/hello/hooks", hook, auth).status, 422) << "the same URL twice";
  auto id = std::to_string(parsed(created)["id"].get<std::int64_t>());
  EXPECT_EQ(send("PATCH", "/repos/octo/hello/hooks/" + id, R"({"add_events":["pull_request"]})", auth).status, 200);
  auto hooks = forge.hooks(fakes::kGitHub);
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].secret, "s");
  EXPECT_EQ(hooks[0].events, (std::vector<std::string>{"push", "pull_request"}));
  EXPECT_EQ(parsed(send("GET", "/repos/octo/hello/hooks", "", auth)).size(), 1u);
}

TEST_F(FakeForgeTest, GitLabKeepsProjectHooksByEventFlags) {
  const std::string hooks_path = "/api/v4/projects/group%2Fproj/hooks";
  EXPECT_EQ(send("POST", hooks_path, R"({"push_events":true})").status, 400) << "no url";
  auto created = send("POST", hooks_path, R"({"url":"http://ci/gl","token":"t","merge_requests_events":true})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_FALSE(parsed(created).contains("token"));
  auto id = std::to_string(parsed(created)["id"].get<std::int64_t>());
  EXPECT_EQ(send("PUT", hooks_path + "/" + id, R"({"push_events":false,"tag_push_events":true})").status, 200);
  auto hooks = forge.hooks(fakes::kGitLab);
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].owner, "group");
  EXPECT_EQ(hooks[0].repo, "proj");
  EXPECT_EQ(hooks[0].secret, "t");
  EXPECT_EQ(hooks[0].events, (std::vector<std::string>{"tag_push_events", "merge_requests_events"}));
  EXPECT_EQ(parsed(send("GET", hooks_path, "")).size(), 1u);
}

TEST_F(FakeForgeTest, AFailedCallChangesNothingAndTheNextOneSucceeds) {
  forge.fail_next(1, 502);
  forge.fail_next(1, 403, R"({"message":"API rate limit exceeded"})", {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "1700000000"}},
                  "/api/v1/");
  const std::string body = R"({"state":"success","context":"c"})";
  EXPECT_EQ(send("POST", "/repos/octo/hello/statuses/" + kSha, body).status, 502);
  EXPECT_TRUE(forge.statuses().empty());
  EXPECT_EQ(send("POST", "/repos/octo/hello/statuses/" + kSha, body).status, 201);
  // The second fault waited for a Gitea call.
  auto limited = send("POST", "/api/v1/repos/octo/hello/statuses/" + kSha, body);
  EXPECT_EQ(limited.status, 403);
  EXPECT_EQ(limited.header("x-ratelimit-remaining"), "0");
  EXPECT_EQ(limited.header("x-ratelimit-reset"), "1700000000");
  EXPECT_EQ(send("POST", "/api/v1/repos/octo/hello/statuses/" + kSha, body).status, 201);
  EXPECT_EQ(forge.statuses().size(), 2u);
  auto calls = forge.calls();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0].status, 502);
  EXPECT_EQ(calls[2].forge, "gitea");
  EXPECT_EQ(calls[2].status, 403);
}

TEST_F(FakeForgeTest, ADelayedCallIsAnsweredLateAndStillTakesEffect) {
  forge.delay_next(1, std::chrono::milliseconds(400));
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(send("POST", "/repos/octo/hello/statuses/" + kSha, R"({"state":"success"})").status, 201);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(400));
  EXPECT_EQ(forge.final_statuses(kSha)["default"].state, "success");
}

TEST_F(FakeForgeTest, GiteaTakesItsTokenPagesRepositoriesAndKeepsHooks) {
  forge.set_token(fakes::kGitea, "gt-1");
  forge.add_repository(fakes::kGitea, "octo", "one", {"flurry"});
  forge.add_repository(fakes::kGitea, "octo", "two");
  forge.set_permission(fakes::kGitea, "octo", "one", "bob", "write");
  const std::map<std::string, std::string> auth = {{"Authorization", "token gt-1"}};
  EXPECT_EQ(send("GET", "/api/v1/user/repos", "", {{"Authorization", "token nope"}}).status, 401);
  auto page1 = send("GET", "/api/v1/user/repos?page=1&limit=1", "", auth);
  ASSERT_EQ(parsed(page1).size(), 1u);
  EXPECT_EQ(parsed(page1)[0]["full_name"], "octo/one");
  EXPECT_EQ(page1.header("x-total-count"), "2");
  EXPECT_EQ(parsed(send("GET", "/api/v1/user/repos?page=2&limit=1", "", auth))[0]["name"], "two");
  EXPECT_TRUE(parsed(send("GET", "/api/v1/user/repos?page=3&limit=1", "", auth)).empty());
  EXPECT_EQ(parsed(send("GET", "/api/v1/repos/octo/one/topics", "", auth))["topics"], json::array({"flurry"}));
  EXPECT_EQ(parsed(send("GET", "/api/v1/repos/octo/one/collaborators/bob/permission", "", auth))["permission"], "write");
  EXPECT_EQ(parsed(send("GET", "/api/v1/repos/octo/one/collaborators/eve/permission", "", auth))["permission"], "none");
  auto hook = send("POST", "/api/v1/repos/octo/one/hooks",
                   R"({"type":"gitea","active":true,"events":["push","pull_request"],"config":{"url":"http://ci/hook","content_type":"json","secret":"s3"}})",
                   auth);
  ASSERT_EQ(hook.status, 201) << hook.body;
  auto id = std::to_string(parsed(hook)["id"].get<std::int64_t>());
  EXPECT_EQ(send("PATCH", "/api/v1/repos/octo/one/hooks/" + id, R"({"active":false})", auth).status, 200);
  EXPECT_EQ(send("POST", "/api/v1/repos/octo/one/hooks", R"({"type":"gitea","config":{"url":"http://ci/hook"}})", auth).status, 422);
  auto hooks = forge.hooks(fakes::kGitea);
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].url, "http://ci/hook");
  EXPECT_EQ(hooks[0].secret, "s3");
  EXPECT_EQ(hooks[0].events, (std::vector<std::string>{"push", "pull_request"}));
  EXPECT_FALSE(hooks[0].active);
  EXPECT_EQ(parsed(send("GET", "/api/v1/repos/octo/one/hooks", "", auth)).size(), 1u);
  EXPECT_TRUE(forge.hooks(fakes::kGitHub).empty());
}

// --- Signing in (OAuth) and private repositories -----------------------

const std::string kCallback = "http://ci.example/auth/github/callback";

// The value of `key` in the query of a Location header.
std::string location_param(const http::Response& r, const std::string& key) {
  auto location = r.header("location");
  auto q = location.find('?');
  if (q == std::string::npos) return "";
  for (const auto& kv : text::split(location.substr(q + 1), '&')) {
    if (kv.rfind(key + "=", 0) == 0) return kv.substr(key.size() + 1);
  }
  return "";
}

const std::map<std::string, std::string> kForm = {{"Content-Type", "application/x-www-form-urlencoded"},
                                                  {"Accept", "application/json"}};

TEST_F(FakeForgeTest, GitHubGrantsTheSignedInUserACodeOnceForAnAccessToken) {
  forge.set_oauth_client(fakes::kGitHub, "gh-client", "gh-secret");
  forge.sign_in_as(fakes::kGitHub, "octocat", "The Octocat");
  auto authorize = browse("/login/oauth/authorize?client_id=gh-client&redirect_uri=http%3A%2F%2Fci.example%2Fauth%2Fgithub%2Fcallback"
                               "&state=st%2B1&scope=read%3Auser");
  ASSERT_EQ(authorize.status, 302) << authorize.body;
  EXPECT_EQ(authorize.header("location").rfind(kCallback + "?code=", 0), 0u) << authorize.header("location");
  EXPECT_EQ(location_param(authorize, "state"), "st%2B1");
  const auto code = location_param(authorize, "code");
  ASSERT_FALSE(code.empty());
  // GitHub refuses with a 200 that says why.
  auto wrong_secret = send("POST", "/login/oauth/access_token", "client_id=gh-client&client_secret=nope&code=" + code, kForm);
  EXPECT_EQ(wrong_secret.status, 200);
  EXPECT_EQ(parsed(wrong_secret)["error"], "incorrect_client_credentials");
  auto token = send("POST", "/login/oauth/access_token",
                    "client_id=gh-client&client_secret=gh-secret&redirect_uri=" + forge::path_segment(kCallback) + "&code=" + code, kForm);
  ASSERT_EQ(token.status, 200);
  const auto access = parsed(token).value("access_token", "");
  ASSERT_EQ(access.rfind("gho_", 0), 0u) << token.body;
  EXPECT_EQ(parsed(token)["scope"], "read:user");
  EXPECT_EQ(forge.issued_user_tokens(fakes::kGitHub), std::vector<std::string>{access});
  auto again = send("POST", "/login/oauth/access_token", "client_id=gh-client&client_secret=gh-secret&code=" + code, kForm);
  EXPECT_EQ(parsed(again)["error"], "bad_verification_code");
  auto user = send("GET", "/user", "", {{"Authorization", "Bearer " + access}});
  ASSERT_EQ(user.status, 200);
  EXPECT_EQ(parsed(user)["login"], "octocat");
  EXPECT_EQ(parsed(user)["name"], "The Octocat");
  EXPECT_TRUE(parsed(user)["id"].is_number_integer());
  EXPECT_EQ(send("GET", "/user", "", {{"Authorization", "Bearer gho_unknown"}}).status, 401);
}

TEST_F(FakeForgeTest, GitHubAuthorizeWithoutASignedInUserOrForAnotherClientGrantsNothing) {
  forge.set_oauth_client(fakes::kGitHub, "gh-client", "gh-secret");
  auto denied = browse("/login/oauth/authorize?client_id=gh-client&redirect_uri=" + forge::path_segment(kCallback) + "&state=s");
  ASSERT_EQ(denied.status, 302);
  EXPECT_EQ(location_param(denied, "error"), "access_denied");
  EXPECT_EQ(location_param(denied, "state"), "s");
  EXPECT_EQ(location_param(denied, "code"), "");
  forge.sign_in_as(fakes::kGitHub, "octocat");
  EXPECT_EQ(browse("/login/oauth/authorize?client_id=other&redirect_uri=" + forge::path_segment(kCallback) + "&state=s").status, 404);
  // A code granted for one redirect_uri is not exchanged for another.
  auto granted = browse("/login/oauth/authorize?client_id=gh-client&redirect_uri=" + forge::path_segment(kCallback) + "&state=s");
  auto other = send("POST", "/login/oauth/access_token",
                    "client_id=gh-client&client_secret=gh-secret&redirect_uri=http%3A%2F%2Fevil&code=" + location_param(granted, "code"), kForm);
  EXPECT_EQ(parsed(other)["error"], "redirect_uri_mismatch");
  // Without Accept: application/json, GitHub answers form-encoded.
  forge.sign_out(fakes::kGitHub);
  forge.sign_in_as(fakes::kGitHub, "hubot");
  granted = browse("/login/oauth/authorize?client_id=gh-client&redirect_uri=" + forge::path_segment(kCallback) + "&state=s");
  auto form = send("POST", "/login/oauth/access_token", "client_id=gh-client&client_secret=gh-secret&code=" + location_param(granted, "code"),
                   {{"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(form.body.rfind("access_token=gho_", 0), 0u) << form.body;
}

TEST_F(FakeForgeTest, GiteaSharesGitHubsOAuthPathsAndIsToldApartByClientId) {
  forge.set_oauth_client(fakes::kGitHub, "gh-client", "gh-secret");
  forge.set_oauth_client(fakes::kGitea, "gitea-client", "gitea-secret");
  EXPECT_THROW(forge.set_oauth_client(fakes::kGitLab, "gitea-client", "x"), std::invalid_argument);
  forge.sign_in_as(fakes::kGitea, "alice", "Alice A.");
  const auto cb = forge::path_segment("http://ci.example/auth/gitea/callback");
  auto no_type = browse("/login/oauth/authorize?client_id=gitea-client&redirect_uri=" + cb + "&state=s");
  EXPECT_EQ(location_param(no_type, "error"), "unsupported_response_type");
  auto granted = browse("/login/oauth/authorize?client_id=gitea-client&redirect_uri=" + cb + "&response_type=code&state=s");
  ASSERT_EQ(granted.status, 302);
  const auto code = location_param(granted, "code");
  EXPECT_EQ(forge.calls().back().forge, fakes::kGitea);
  const std::string creds = "client_id=gitea-client&client_secret=gitea-secret&redirect_uri=" + cb;
  auto no_grant_type = send("POST", "/login/oauth/access_token", creds + "&code=" + code, kForm);
  EXPECT_EQ(no_grant_type.status, 400);
  EXPECT_EQ(parsed(no_grant_type)["error"], "unsupported_grant_type");
  auto token = send("POST", "/login/oauth/access_token", creds + "&grant_type=authorization_code&code=" + code, kForm);
  ASSERT_EQ(token.status, 200) << token.body;
  EXPECT_EQ(forge.calls().back().forge, fakes::kGitea);
  auto access = parsed(token).value("access_token", "");
  auto user = send("GET", "/api/v1/user", "", {{"Authorization", "Bearer " + access}});
  ASSERT_EQ(user.status, 200);
  EXPECT_EQ(parsed(user)["login"], "alice");
  EXPECT_EQ(parsed(user)["full_name"], "Alice A.");
  // The code was used up by the first exchange.
  auto again = send("POST", "/login/oauth/access_token", creds + "&grant_type=authorization_code&code=" + code, kForm);
  EXPECT_EQ(again.status, 400);
  EXPECT_EQ(parsed(again)["error"], "invalid_grant");
  EXPECT_TRUE(forge.issued_user_tokens(fakes::kGitHub).empty());
}

TEST_F(FakeForgeTest, GitLabSignsInUnderOAuthAndRefusesAnUnknownClientWith401) {
  forge.set_oauth_client(fakes::kGitLab, "gl-client", "gl-secret");
  forge.set_permission(fakes::kGitLab, "group", "proj", "bob", "developer");
  forge.sign_in_as(fakes::kGitLab, "bob", "Bob B.");
  const auto cb = forge::path_segment("http://ci.example/auth/gitlab/callback");
  auto granted = browse("/oauth/authorize?client_id=gl-client&redirect_uri=" + cb + "&response_type=code&state=s&scope=read_api");
  ASSERT_EQ(granted.status, 302);
  const auto code = location_param(granted, "code");
  auto bad_client = send("POST", "/oauth/token", "client_id=gl-client&client_secret=x&grant_type=authorization_code&code=" + code, kForm);
  EXPECT_EQ(bad_client.status, 401);
  EXPECT_EQ(parsed(bad_client)["error"], "invalid_client");
  auto token = send("POST", "/oauth/token",
                    "client_id=gl-client&client_secret=gl-secret&grant_type=authorization_code&redirect_uri=" + cb + "&code=" + code, kForm);
  ASSERT_EQ(token.status, 200) << token.body;
  auto access = parsed(token).value("access_token", "");
  auto user = send("GET", "/api/v4/user", "", {{"Authorization", "Bearer " + access}});
  ASSERT_EQ(user.status, 200);
  EXPECT_EQ(parsed(user)["username"], "bob");
  EXPECT_EQ(parsed(user)["name"], "Bob B.");
  // The same id as the users listing gives him.
  auto listed = parsed(send("GET", "/api/v4/users?username=bob"));
  EXPECT_EQ(parsed(user)["id"], listed[0]["id"]);
}

TEST_F(FakeForgeTest, PrivateRepositoriesAreHiddenFromUsersWithoutPermission) {
  forge.set_oauth_client(fakes::kGitHub, "gh-client", "gh-secret");
  forge.set_private(fakes::kGitHub, "octo", "secret");
  forge.set_permission(fakes::kGitHub, "octo", "secret", "reader", "read");
  auto token_for = [&](const std::string& login, const std::string& scope) {
    forge.sign_in_as(fakes::kGitHub, login);
    auto granted = browse("/login/oauth/authorize?client_id=gh-client&redirect_uri=x&state=s&scope=" + scope);
    auto t = send("POST", "/login/oauth/access_token", "client_id=gh-client&client_secret=gh-secret&code=" + location_param(granted, "code"), kForm);
    return std::map<std::string, std::string>{{"Authorization", "Bearer " + parsed(t).value("access_token", "")}};
  };
  // Flurry's credentials see every repository and whether it is private.
  auto service = send("GET", "/repos/octo/secret");
  ASSERT_EQ(service.status, 200);
  EXPECT_EQ(parsed(service)["private"], true);
  EXPECT_EQ(parsed(send("GET", "/repos/octo/open"))["private"], false);
  // A user without permission gets 404; an OAuth App's user needs the repo scope too.
  EXPECT_EQ(send("GET", "/repos/octo/secret", "", token_for("stranger", "repo")).status, 404);
  EXPECT_EQ(send("GET", "/repos/octo/secret", "", token_for("reader", "read:user")).status, 404);
  EXPECT_EQ(send("GET", "/repos/octo/secret", "", token_for("reader", "repo")).status, 200);
  EXPECT_EQ(send("GET", "/repos/octo/open", "", token_for("stranger", "read:user")).status, 200);
  forge.set_private(fakes::kGitHub, "octo", "secret", false);
  EXPECT_EQ(send("GET", "/repos/octo/secret", "", token_for("stranger", "read:user")).status, 200);
}

TEST_F(FakeForgeTest, GiteaAndGitLabHidePrivateRepositoriesFromNonMembers) {
  forge.set_oauth_client(fakes::kGitea, "gitea-client", "gitea-secret");
  forge.set_oauth_client(fakes::kGitLab, "gl-client", "gl-secret");
  forge.set_private(fakes::kGitea, "org", "repo");
  forge.set_private(fakes::kGitLab, "group/sub", "proj");
  forge.set_permission(fakes::kGitea, "org", "repo", "member", "read");
  forge.set_permission(fakes::kGitLab, "group/sub", "proj", "member", "guest");
  auto token_for = [&](const std::string& forge_name, const std::string& login, const std::string& scope) {
    forge.sign_in_as(forge_name, login);
    const bool gitlab = forge_name == fakes::kGitLab;
    auto granted = browse(std::string(gitlab ? "/oauth/authorize" : "/login/oauth/authorize") + "?client_id=" +
                                   (gitlab ? "gl-client" : "gitea-client") + "&redirect_uri=x&response_type=code&state=s&scope=" + scope);
    auto t = send("POST", gitlab ? "/oauth/token" : "/login/oauth/access_token",
                  std::string("client_id=") + (gitlab ? "gl-client&client_secret=gl-secret" : "gitea-client&client_secret=gitea-secret") +
                      "&grant_type=authorization_code&redirect_uri=x&code=" + location_param(granted, "code"),
                  kForm);
    return std::map<std::string, std::string>{{"Authorization", "Bearer " + parsed(t).value("access_token", "")}};
  };
  EXPECT_EQ(parsed(send("GET", "/api/v1/repos/org/repo"))["private"], true);
  EXPECT_EQ(send("GET", "/api/v1/repos/org/repo", "", token_for(fakes::kGitea, "stranger", "")).status, 404);
  EXPECT_EQ(send("GET", "/api/v1/repos/org/repo", "", token_for(fakes::kGitea, "member", "")).status, 200);
  EXPECT_EQ(parsed(send("GET", "/api/v4/projects/group%2Fsub%2Fproj"))["visibility"], "private");
  EXPECT_EQ(parsed(send("GET", "/api/v4/projects/group%2Fsub%2Fopen"))["visibility"], "public");
  EXPECT_EQ(send("GET", "/api/v4/projects/group%2Fsub%2Fproj", "", token_for(fakes::kGitLab, "stranger", "read_api")).status, 404);
  EXPECT_EQ(send("GET", "/api/v4/projects/group%2Fsub%2Fproj", "", token_for(fakes::kGitLab, "member", "read_api")).status, 200);
  // GitLab wants the read_api (or api) scope for projects.
  EXPECT_EQ(send("GET", "/api/v4/projects/group%2Fsub%2Fproj", "", token_for(fakes::kGitLab, "member", "read_user")).status, 403);
}

}  // namespace
