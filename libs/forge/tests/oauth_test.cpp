// The OAuth clients (oauth.hpp) against the fake forges and against
// scripted answers, and the service's repository reads (oauth_access.hpp).
#include "flurry/forge/oauth.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "flurry/core/text.hpp"
#include "flurry/fakes/fake_forge.hpp"
#include "flurry/fakes/raw_http_client.hpp"
#include "flurry/forge/oauth_access.hpp"
#include "flurry/forge/status_poster.hpp"
#include "flurry/http/testing/fake_client.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using forge::Visibility;

namespace {

const std::string kSecret = "client-secret-0123456789";

// A result as text, so that tests compare and print it.
std::string shown(const Result<bool>& r) { return r ? (*r ? "true" : "false") : "error: " + r.error().message; }
std::string shown(const Result<Visibility>& r) {
  return r ? (*r == Visibility::kPublic ? "public" : "private") : "error: " + r.error().message;
}

// The value of `key` in the query of `url`, still encoded.
std::string param(const std::string& url, const std::string& key) {
  auto q = url.find('?');
  if (q == std::string::npos) return "";
  for (const auto& kv : text::split(url.substr(q + 1), '&')) {
    if (kv.rfind(key + "=", 0) == 0) return kv.substr(key.size() + 1);
  }
  return "";
}

forge::OAuthOptions options_for(const std::string& name, const std::string& url) {
  forge::OAuthOptions o;
  o.forge = name;
  o.oauth_url = url;
  o.api_url = url;
  o.client_id = name + "-client";
  o.client_secret = kSecret;
  o.scope = forge::default_oauth_scope(name);
  return o;
}

class OAuthFlow : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fake.set_oauth_client(GetParam(), GetParam() + "-client", kSecret);
    oauth = forge::make_oauth(*client, options_for(GetParam(), fake.url()));
  }
  // What the forge's authorize page does for the signed-in user: the code
  // it sends the browser back with.
  std::string authorize(const std::string& redirect_uri, const std::string& state) {
    auto r = fakes::RawHttpClient().send({.url = oauth->authorize_url(redirect_uri, state)});
    EXPECT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 302) << r->body;
    EXPECT_EQ(param(r->header("location"), "state"), forge::path_segment(state));
    return param(r->header("location"), "code");
  }

  fakes::FakeForge fake;
  std::unique_ptr<http::Client> client = http::make_client();
  std::unique_ptr<forge::OAuth> oauth;
};

TEST_P(OAuthFlow, ACodeBecomesTheSignedInUsersTokenOnce) {
  fake.sign_in_as(GetParam(), "alice", "Alice Liddell");
  const std::string cb = "http://ci.example/auth/" + GetParam() + "/callback";
  auto code = authorize(cb, "state/1");
  ASSERT_FALSE(code.empty());
  auto token = oauth->exchange_code(code, cb);
  ASSERT_TRUE(token.has_value()) << token.error().message;
  EXPECT_EQ(fake.issued_user_tokens(GetParam()), std::vector<std::string>{*token});
  auto user = oauth->user(*token);
  ASSERT_TRUE(user.has_value()) << user.error().message;
  EXPECT_EQ(user->login, "alice");
  EXPECT_EQ(user->name, "Alice Liddell");
  EXPECT_FALSE(user->id.empty());
  auto again = oauth->exchange_code(code, cb);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kRejected);
  EXPECT_NE(again.error().message.find("refused the sign-in"), std::string::npos) << again.error().message;
  EXPECT_EQ(again.error().message.find(code), std::string::npos);
  EXPECT_EQ(again.error().message.find(kSecret), std::string::npos);
}

TEST_P(OAuthFlow, AUserWithoutADisplayNameIsNamedByLogin) {
  fake.sign_in_as(GetParam(), "bob");
  auto code = authorize("http://ci/cb", "s");
  auto token = oauth->exchange_code(code, "http://ci/cb");
  ASSERT_TRUE(token.has_value()) << token.error().message;
  EXPECT_EQ(oauth->user(*token)->name, "bob");
}

TEST_P(OAuthFlow, AnotherRedirectUriOrAWrongSecretIsRefused) {
  fake.sign_in_as(GetParam(), "alice");
  auto code = authorize("http://ci/cb", "s");
  auto other = oauth->exchange_code(code, "http://evil/cb");
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().code, ErrorCode::kRejected);
  auto o = options_for(GetParam(), fake.url());
  o.client_secret = "wrong-secret-value";
  auto wrong = forge::make_oauth(*client, o)->exchange_code(authorize("http://ci/cb", "s"), "http://ci/cb");
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code, ErrorCode::kRejected);
  EXPECT_EQ(wrong.error().message.find("wrong-secret-value"), std::string::npos);
}

TEST_P(OAuthFlow, ADeniedOrUnansweredSignInFails) {
  auto r = fakes::RawHttpClient().send({.url = oauth->authorize_url("http://ci/cb", "s")});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(param(r->header("location"), "error"), "access_denied");
  fake.fail_next(1, 502);
  auto down = oauth->exchange_code("code", "http://ci/cb");
  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.error().code, ErrorCode::kTransient);
}

TEST_P(OAuthFlow, UsersReadPrivateRepositoriesTheyArePermittedToOnly) {
  const std::string owner = GetParam() == "gitlab" ? "group/sub" : "octo";
  fake.set_private(GetParam(), owner, "secret");
  fake.set_permission(GetParam(), owner, "secret", "member", GetParam() == "gitlab" ? "reporter" : "read");
  auto token_of = [&](const std::string& login) {
    fake.sign_in_as(GetParam(), login);
    return *oauth->exchange_code(authorize("http://ci/cb", "s"), "http://ci/cb");
  };
  const auto stranger = token_of("stranger");
  EXPECT_EQ(shown(oauth->can_read(stranger, owner, "open")), "true");
  EXPECT_EQ(shown(oauth->can_read(stranger, owner, "secret")), "false");
  // GitHub's OAuth Apps read private repositories only with the repo scope.
  const auto member = token_of("member");
  EXPECT_EQ(shown(oauth->can_read(member, owner, "secret")), GetParam() != "github" ? "true" : "false");
  auto o = options_for(GetParam(), fake.url());
  o.scope = GetParam() == "github" ? "repo" : o.scope;
  oauth = forge::make_oauth(*client, o);
  EXPECT_EQ(shown(oauth->can_read(token_of("member"), owner, "secret")), "true");
  // A token the forge no longer takes (revoked, expired) asks for a new sign-in.
  fake.set_token(GetParam(), "the-service-token");
  auto revoked = oauth->can_read("not-a-token", owner, "secret");
  ASSERT_FALSE(revoked.has_value());
  EXPECT_NE(revoked.error().message.find("sign in again"), std::string::npos) << revoked.error().message;
}

INSTANTIATE_TEST_SUITE_P(Forges, OAuthFlow, ::testing::Values("github", "gitea", "gitlab"));

TEST(OAuth, AuthorizeUrlsAreTheForgesOwn) {
  http::testing::FakeHttpClient client;
  auto gh = forge::make_oauth(client, options_for("github", "https://github.com/"));
  EXPECT_EQ(gh->authorize_url("https://ci.example/auth/github/callback", "abc"),
            "https://github.com/login/oauth/authorize?client_id=github-client&redirect_uri=https%3A%2F%2Fci.example%2Fauth%2Fgithub%2Fcallback"
            "&state=abc&scope=read%3Auser");
  auto gitea = forge::make_oauth(client, options_for("gitea", "https://gitea.example"));
  EXPECT_EQ(gitea->authorize_url("https://ci/cb", "abc"),
            "https://gitea.example/login/oauth/authorize?client_id=gitea-client&redirect_uri=https%3A%2F%2Fci%2Fcb&response_type=code&state=abc");
  auto gl = forge::make_oauth(client, options_for("gitlab", "https://gitlab.com"));
  EXPECT_EQ(gl->authorize_url("https://ci/cb", "abc"),
            "https://gitlab.com/oauth/authorize?client_id=gitlab-client&redirect_uri=https%3A%2F%2Fci%2Fcb&response_type=code&state=abc"
            "&scope=read_api");
  EXPECT_THROW(forge::make_oauth(client, options_for("git", "x")), std::invalid_argument);
}

TEST(OAuth, TheCodeIsExchangedWithAFormAndTheAnswerReadDefensively) {
  http::testing::FakeHttpClient client;
  auto gl = forge::make_oauth(client, options_for("gitlab", "https://gitlab.example/"));
  client.answers = {http::Response{200, R"({"access_token":"glat-1234567890","token_type":"Bearer"})"}};
  auto ok = gl->exchange_code("the-code", "https://ci/cb");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(*ok, "glat-1234567890");
  const auto& sent = client.requests.back();
  EXPECT_EQ(sent.method, "POST");
  EXPECT_EQ(sent.url, "https://gitlab.example/oauth/token");
  EXPECT_EQ(sent.headers.at("Content-Type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(sent.body, "client_id=gitlab-client&client_secret=" + kSecret +
                           "&code=the-code&redirect_uri=https%3A%2F%2Fci%2Fcb&grant_type=authorization_code");
  EXPECT_LE(sent.timeout, std::chrono::seconds(10));
  for (const auto* body : {"not json", "[]", R"({"token_type":"bearer"})", R"({"access_token":12})",
                           R"({"access_token":"t-0123456789","token_type":"mac"})",
                           R"({"error":"invalid_grant","error_description":"the-code is bad"})"}) {
    client.answers = {http::Response{200, body}};
    auto r = gl->exchange_code("the-code", "https://ci/cb");
    ASSERT_FALSE(r.has_value()) << body;
    EXPECT_EQ(r.error().code, ErrorCode::kRejected) << body;
    EXPECT_EQ(r.error().message.find("the-code"), std::string::npos) << r.error().message;
  }
  client.answers = {http::Response{400, R"({"error":"invalid_grant"})"}};
  EXPECT_NE(gl->exchange_code("c", "https://ci/cb").error().message.find("invalid_grant"), std::string::npos);
  client.answers = {http::Response{400, R"({"error":"<script>alert(1)</script>"})"}};
  EXPECT_EQ(gl->exchange_code("c", "https://ci/cb").error().message.find("script"), std::string::npos);
  client.answers = {http::Response{503, ""}};
  EXPECT_EQ(gl->exchange_code("c", "https://ci/cb").error().code, ErrorCode::kTransient);
  client.answers = {fail(Error::transient("http: POST https://gitlab.example/oauth/token failed"))};
  EXPECT_EQ(gl->exchange_code("c", "https://ci/cb").error().code, ErrorCode::kTransient);
}

TEST(OAuth, WhoSignedInIsReadDefensively) {
  http::testing::FakeHttpClient client;
  auto gh = forge::make_oauth(client, options_for("github", "https://api.example"));
  client.answers = {http::Response{200, R"({"login":"octocat","id":583231,"name":null})"}};
  auto u = gh->user("gho_token_value");
  ASSERT_TRUE(u.has_value()) << u.error().message;
  EXPECT_EQ(u->id, "583231");
  EXPECT_EQ(u->name, "octocat");
  EXPECT_EQ(client.requests.back().url, "https://api.example/user");
  EXPECT_EQ(client.requests.back().headers.at("Authorization"), "Bearer gho_token_value");
  for (const auto* body : {"[]", "nope", R"({"id":1})", R"({"login":"x"})", R"({"login":"a\nb","id":1})", R"({"login":7,"id":1})"}) {
    client.answers = {http::Response{200, body}};
    auto r = gh->user("gho_token_value");
    ASSERT_FALSE(r.has_value()) << body;
    EXPECT_EQ(r.error().code, ErrorCode::kRejected);
  }
  client.answers = {http::Response{401, R"({"message":"Bad credentials"})"}};
  EXPECT_EQ(gh->user("gho_token_value").error().code, ErrorCode::kRejected);
  EXPECT_EQ(gh->user("gho_token_value").error().message.find("gho_token_value"), std::string::npos);
}

TEST(OAuth, CanReadTellsHiddenFromUnanswered) {
  http::testing::FakeHttpClient client;
  auto gh = forge::make_oauth(client, options_for("github", "https://api.example"));
  client.answers = {http::Response{404, "{}"}, http::Response{403, R"({"message":"Resource not accessible"})"},
                    http::Response{403, R"({"message":"API rate limit exceeded"})"}, http::Response{500, ""},
                    http::Response{401, "{}"}};
  EXPECT_EQ(shown(gh->can_read("t", "o", "r")), "false");
  EXPECT_EQ(shown(gh->can_read("t", "o", "r")), "false");
  EXPECT_EQ(gh->can_read("t", "o", "r").error().code, ErrorCode::kTransient);
  EXPECT_EQ(gh->can_read("t", "o", "r").error().code, ErrorCode::kTransient);
  auto revoked = gh->can_read("t", "o", "r");
  EXPECT_EQ(revoked.error().code, ErrorCode::kRejected);
  EXPECT_NE(revoked.error().message.find("sign in again"), std::string::npos);
  auto gl = forge::make_oauth(client, options_for("gitlab", "https://gitlab.example"));
  client.answers = {http::Response{200, "{}"}};
  EXPECT_EQ(shown(gl->can_read("t", "group/sub", "proj")), "true");
  EXPECT_EQ(client.requests.back().url, "https://gitlab.example/api/v4/projects/group%2Fsub%2Fproj");
}

class OAuthConfig : public ::testing::Test {
 protected:
  Config config(const std::string& toml) {
    test::write_file(tmp.file("secret"), "s3cret-value\n");
    auto c = Config::from_string(toml);
    c.set("web.oauth.github.client_secret_file=" + tmp.file("secret"));
    c.set("web.oauth.gitea.client_secret_file=" + tmp.file("secret"));
    c.set("web.oauth.gitlab.client_secret_file=" + tmp.file("secret"));
    return c;
  }
  test::TempDir tmp{"flurry-oauth-config"};
};

TEST_F(OAuthConfig, GitHubSignsInOnItsWebHost) {
  auto o = forge::oauth_options(config("[web.oauth.github]\nclient_id = \"Iv1.abc\"\n"), "github", "web.oauth.github");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->oauth_url, "https://github.com");
  EXPECT_EQ(o->api_url, "https://api.github.com");
  EXPECT_EQ(o->client_secret, "s3cret-value");
  EXPECT_EQ(o->scope, "read:user");
  auto ghe = forge::oauth_options(config("[github]\napi_url = \"https://ghe.example/api/v3/\"\n[web.oauth.github]\nclient_id = \"x\"\n"),
                                  "github", "web.oauth.github");
  EXPECT_EQ(ghe->oauth_url, "https://ghe.example");
  EXPECT_EQ(ghe->api_url, "https://ghe.example/api/v3");
  auto set = forge::oauth_options(
      config("[github]\noauth_url = \"http://127.0.0.1:9\"\n[web.oauth.github]\nclient_id = \"x\"\nscope = \"repo\"\n"), "github",
      "web.oauth.github");
  EXPECT_EQ(set->oauth_url, "http://127.0.0.1:9");
  EXPECT_EQ(set->scope, "repo");
}

TEST_F(OAuthConfig, GiteaAndGitLabSignInOnTheirApiHost) {
  auto gitea = forge::oauth_options(config("[gitea]\napi_url = \"https://gitea.example\"\n[web.oauth.gitea]\nclient_id = \"g\"\n"), "gitea",
                                    "web.oauth.gitea");
  EXPECT_EQ(gitea->oauth_url, "https://gitea.example");
  EXPECT_EQ(gitea->scope, "");
  EXPECT_THROW(forge::oauth_options(config("[web.oauth.gitea]\nclient_id = \"g\"\n"), "gitea", "web.oauth.gitea"), ConfigError);
  auto gl = forge::oauth_options(config("[web.oauth.gitlab]\nclient_id = \"l\"\n"), "gitlab", "web.oauth.gitlab");
  EXPECT_EQ(gl->oauth_url, "https://gitlab.com");
  EXPECT_EQ(gl->scope, "read_api");
  EXPECT_FALSE(forge::oauth_options(config(""), "gitlab", "web.oauth.gitlab").has_value());
  auto no_secret = Config::from_string("[web.oauth.gitlab]\nclient_id = \"l\"\n");
  EXPECT_THROW(forge::oauth_options(no_secret, "gitlab", "web.oauth.gitlab"), ConfigError);
}

// --- Flurry's own view: visibility ----------------------------------------

class NoInstallation final : public forge::GitHubTokens {
 public:
  explicit NoInstallation(ErrorCode code) : code_(code) {}
  Result<std::string> token_for(const std::string&, const std::string&, std::int64_t) override {
    return fail(Error{code_, "github app: not installed"});
  }

 private:
  ErrorCode code_;
};

TEST(RepoVisibility, EachForgeSaysWhichRepositoriesArePublic) {
  fakes::FakeForge fake;
  auto client = http::make_client();
  fake.set_token("github", "gh-service");
  fake.set_private("github", "octo", "secret");
  fake.set_private("gitea", "org", "secret");
  fake.set_private("gitlab", "group", "secret");
  forge::FixedToken token("gh-service");
  forge::GitHubVisibility gh(*client, fake.url(), token);
  forge::GiteaVisibility gitea(*client, fake.url(), "t");
  forge::GitLabVisibility gl(*client, fake.url(), "t");
  EXPECT_EQ(shown(gh.visibility("octo", "open")), "public");
  EXPECT_EQ(shown(gh.visibility("octo", "secret")), "private");
  EXPECT_EQ(shown(gitea.visibility("org", "open")), "public");
  EXPECT_EQ(shown(gitea.visibility("org", "secret")), "private");
  EXPECT_EQ(shown(gl.visibility("group", "open")), "public");
  EXPECT_EQ(shown(gl.visibility("group", "secret")), "private");
  // What the forge does not show Flurry is private; what it cannot answer is an error.
  fake.fail_next(1, 404);
  EXPECT_EQ(shown(gh.visibility("octo", "open")), "private");
  fake.fail_next(1, 502);
  EXPECT_EQ(gh.visibility("octo", "open").error().code, ErrorCode::kTransient);
  fake.fail_next(1, 401);
  EXPECT_EQ(gitea.visibility("org", "open").error().code, ErrorCode::kRejected);
  for (const auto& call : fake.calls()) {
    if (call.forge == "github") {
      EXPECT_EQ(call.headers.at("authorization"), "Bearer gh-service");
    }
  }
}

TEST(RepoVisibility, OnlyWhatSaysPublicIsPublic) {
  http::testing::FakeHttpClient client;
  forge::GitLabVisibility gl(client, "https://gitlab.example", "t");
  forge::GiteaVisibility gitea(client, "https://gitea.example", "t");
  forge::FixedToken token("t");
  forge::GitHubVisibility gh(client, "https://api.example", token);
  client.answers = {http::Response{200, R"({"visibility":"internal"})"}, http::Response{200, R"({"id":1})"}};
  EXPECT_EQ(shown(gl.visibility("g", "p")), "private");
  EXPECT_EQ(shown(gl.visibility("g", "p")), "private");
  client.answers = {http::Response{200, R"({"private":false,"internal":true})"}, http::Response{200, R"({"private":"no"})"}};
  EXPECT_EQ(shown(gitea.visibility("o", "r")), "private");
  EXPECT_EQ(shown(gitea.visibility("o", "r")), "private");
  client.answers = {http::Response{200, R"({"private":false,"visibility":"internal"})"}, http::Response{200, "[]"}};
  EXPECT_EQ(shown(gh.visibility("o", "r")), "private");
  EXPECT_FALSE(gh.visibility("o", "r").has_value());
  // An App not installed on the repository cannot see it.
  NoInstallation not_installed(ErrorCode::kRejected), unreachable(ErrorCode::kTransient);
  EXPECT_EQ(shown(forge::GitHubVisibility(client, "https://api.example", not_installed).visibility("o", "r")), "private");
  EXPECT_FALSE(forge::GitHubVisibility(client, "https://api.example", unreachable).visibility("o", "r").has_value());
}

TEST(ServiceAccess, HasTheForgesFlurryHasCredentialsFor) {
  test::TempDir tmp("flurry-service-access");
  test::write_file(tmp.file("token"), "service-token\n");
  auto c = Config::from_string("[github]\napi_url = \"http://127.0.0.1:9\"\ntoken_file = \"" + tmp.file("token") +
                               "\"\n[gitlab]\ntoken_file = \"" + tmp.file("token") + "\"\n");
  http::testing::FakeHttpClient client;
  SystemClock clock;
  forge::ServiceAccess access(c, client, clock);
  EXPECT_NE(access.visibility("github"), nullptr);
  EXPECT_NE(access.permissions("gitlab"), nullptr);
  EXPECT_EQ(access.visibility("gitea"), nullptr);
  EXPECT_EQ(access.permissions("git"), nullptr);
  EXPECT_THROW(forge::ServiceAccess(Config::from_string("[gitea]\napi_url = \"x\"\n"), client, clock), ConfigError);
}

}  // namespace
