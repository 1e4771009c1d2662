// Signing in and the access rules (auth.hpp) over fakes: the fake forges
// on loopback, sessions in memory, a clock moved by hand.
#include "auth.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "auth_http.hpp"
#include "auth_setup.hpp"
#include "query.hpp"
#include "flurry/core/text.hpp"
#include "flurry/fakes/fake_forge.hpp"
#include "flurry/fakes/raw_http_client.hpp"
#include "flurry/forge/status_poster.hpp"
#include "flurry/state/testing/memory_sessions.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using namespace flurry::web;
using nlohmann::json;

namespace {

const std::string kApiToken = "the-api-token-0123456789";
const std::string kClientSecret = "oauth-client-secret-value";
const char* kForges[] = {"github", "gitea", "gitlab"};

std::string shown(const Result<bool>& r) { return r ? (*r ? "true" : "false") : "error: " + r.error().message; }

// The value of `key` in the query of a Location header, decoded.
std::string location_param(const http::Response& r, const std::string& key) {
  auto location = r.header("location");
  auto q = location.find('?');
  return q == std::string::npos ? "" : parse_query(location.substr(q + 1)).value_or(Query{})[key];
}

// The value a Set-Cookie header gives cookie `name`.
std::string cookie_set(const http::Response& r, const std::string& name) {
  auto header = r.header("set-cookie");
  if (!text::starts_with(header, name + "=")) return "";
  return header.substr(name.size() + 1, header.find(';') - name.size() - 1);
}

class SessionsDown final : public state::Sessions {
 public:
  Result<void> create(const state::Session&, std::chrono::milliseconds) override { return fail(Error::transient("redis down")); }
  Result<std::optional<state::Session>> find(const std::string&) override { return fail(Error::transient("redis down")); }
  Result<void> remove(const std::string&) override { return fail(Error::transient("redis down")); }
  Result<void> put_state(const std::string&, const std::string&, std::chrono::milliseconds) override {
    return fail(Error::transient("redis down"));
  }
  Result<std::optional<std::string>> take_state(const std::string&) override { return fail(Error::transient("redis down")); }
};

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const std::string forge : kForges) {
      fake.set_token(forge, "service-" + forge);
      fake.set_oauth_client(forge, forge + "-client", kClientSecret);
      forge::OAuthOptions o{forge, fake.url(), fake.url(), forge + "-client", kClientSecret, forge::default_oauth_scope(forge)};
      if (forge == "github") o.scope = "repo";  // an OAuth App reads private repositories with it
      oauth[forge] = forge::make_oauth(*client, o);
    }
    visibility["github"] = std::make_unique<forge::GitHubVisibility>(*client, fake.url(), github_token);
    visibility["gitea"] = std::make_unique<forge::GiteaVisibility>(*client, fake.url(), "service-gitea");
    visibility["gitlab"] = std::make_unique<forge::GitLabVisibility>(*client, fake.url(), "service-gitlab");
    permissions["github"] = std::make_unique<forge::GitHubPermissions>(*client, fake.url(), github_token);
    permissions["gitea"] = std::make_unique<forge::GiteaPermissions>(*client, fake.url(), "service-gitea");
    permissions["gitlab"] = std::make_unique<forge::GitLabPermissions>(*client, fake.url(), "service-gitlab");
    config.public_url = "https://ci.example/";
    config.api_token = kApiToken;
    make_auth();
  }
  void make_auth(state::Sessions* store = nullptr) {
    AuthPorts ports{store ? *store : sessions, clock, {}, {}, {}};
    for (auto& [name, o] : oauth) ports.sign_in[name] = o.get();
    for (auto& [name, v] : visibility) ports.visibility[name] = v.get();
    for (auto& [name, p] : permissions) ports.permissions[name] = p.get();
    auth = std::make_unique<Auth>(ports, config);
  }

  static http::Request request(const std::string& method, const std::string& path, const std::string& query = "",
                               std::map<std::string, std::string> headers = {}) {
    return http::Request{method, path, query, std::move(headers), ""};
  }
  http::Response login(const std::string& forge, const std::string& next = "/") {
    return auth->handle(request("GET", "/auth/" + forge + "/login", "next=" + forge::path_segment(next)));
  }
  // Follows the login's redirect to the forge, as the browser would; its
  // answer is the redirect back to the callback.
  http::Response at_forge(const http::Response& login_answer) {
    auto r = fakes::RawHttpClient().send({.url = login_answer.header("location")});
    EXPECT_TRUE(r.has_value());
    return r.has_value() ? *r : http::Response{0};
  }
  http::Response callback(const std::string& forge, const std::string& query, const std::string& state_cookie) {
    return auth->handle(request("GET", "/auth/" + forge + "/callback", query, {{"cookie", std::string(kStateCookie) + "=" + state_cookie}}));
  }
  // Signs `login` in with `forge`; the session cookie's value.
  std::string sign_in(const std::string& forge, const std::string& login, const std::string& name = "") {
    fake.sign_in_as(forge, login, name);
    auto start = login_answer_for(forge);
    auto back = at_forge(start);
    auto done = callback(forge, back.header("location").substr(back.header("location").find('?') + 1), cookie_set(start, kStateCookie));
    EXPECT_EQ(done.status, 302) << done.body;
    return cookie_set(done, kSessionCookie);
  }
  http::Response login_answer_for(const std::string& forge) { return login(forge); }
  std::optional<Viewer> viewer(const std::string& session_id) {
    return auth->viewer_of(request("GET", "/", "", {{"cookie", std::string(kSessionCookie) + "=" + session_id}}));
  }
  json session_json(std::map<std::string, std::string> headers) {
    auto r = auth->handle(request("GET", "/api/session", "", std::move(headers)));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("cache-control"), "no-store");
    return json::parse(r.body, nullptr, false);
  }
  int calls_to(const std::string& path_part) {
    int n = 0;
    for (const auto& c : fake.calls()) n += c.path.find(path_part) != std::string::npos;
    return n;
  }

  fakes::FakeForge fake;
  ManualClock clock;
  state::testing::MemorySessions sessions{clock};
  std::unique_ptr<http::Client> client = http::make_client();
  forge::FixedToken github_token{"service-github"};
  std::map<std::string, std::unique_ptr<forge::OAuth>> oauth;
  std::map<std::string, std::unique_ptr<forge::RepoVisibility>> visibility;
  std::map<std::string, std::unique_ptr<forge::Permissions>> permissions;
  AuthConfig config;
  std::unique_ptr<Auth> auth;
};

// --- Signing in ----------------------------------------------------------

TEST_F(AuthTest, SigningInWithEachForgeMakesASessionAndReturnsToNext) {
  for (const std::string forge : kForges) {
    fake.sign_in_as(forge, "user-" + forge, "User of " + forge);
    auto start = login(forge, "/evals/e1?tab=jobs");
    ASSERT_EQ(start.status, 302);
    const auto location = start.header("location");
    EXPECT_EQ(location.rfind(fake.url(), 0), 0u) << location;
    EXPECT_EQ(location_param(start, "redirect_uri"), "https://ci.example/auth/" + forge + "/callback");
    EXPECT_EQ(location_param(start, "state").size(), 64u);
    EXPECT_EQ(start.header("set-cookie"), std::string(kStateCookie) + "=" + location_param(start, "state") +
                                             "; HttpOnly; SameSite=Lax; Path=/auth/" + forge + "/callback; Max-Age=600; Secure");
    auto back = at_forge(start);
    ASSERT_EQ(back.status, 302) << back.body;
    auto done = callback(forge, back.header("location").substr(back.header("location").find('?') + 1), location_param(start, "state"));
    ASSERT_EQ(done.status, 302) << done.body;
    EXPECT_EQ(done.header("location"), "/evals/e1?tab=jobs");
    const auto id = cookie_set(done, kSessionCookie);
    ASSERT_TRUE(plausible_session_id(id));
    EXPECT_EQ(done.header("set-cookie"), std::string(kSessionCookie) + "=" + id + "; HttpOnly; SameSite=Lax; Path=/; Max-Age=604800; Secure");
    auto me = session_json({{"cookie", "other=1; " + std::string(kSessionCookie) + "=" + id}});
    EXPECT_EQ(me["user"], json({{"forge", forge}, {"login", "user-" + forge}, {"name", "User of " + forge}}));
    EXPECT_EQ(me["csrf"].get<std::string>().size(), 64u);
    EXPECT_EQ(me["token_auth"], false);
    EXPECT_EQ(me["csrf"], viewer(id)->csrf);
  }
}

TEST_F(AuthTest, SomeoneNotSignedInSeesTheWaysToSignIn) {
  auto anonymous = session_json({});
  EXPECT_EQ(anonymous["user"], nullptr);
  EXPECT_EQ(anonymous["csrf"], "");
  EXPECT_EQ(anonymous["token_auth"], false);
  EXPECT_EQ(anonymous["sign_in"], json::parse(R"([{"forge":"gitea","url":"/auth/gitea/login"},
    {"forge":"github","url":"/auth/github/login"},{"forge":"gitlab","url":"/auth/gitlab/login"}])"));
  auto token = session_json({{"authorization", "Bearer " + kApiToken}});
  EXPECT_EQ(token["token_auth"], true);
  EXPECT_EQ(token["user"], nullptr);
  oauth.erase("gitea");
  make_auth();
  EXPECT_EQ(session_json({})["sign_in"].size(), 2u);
  EXPECT_EQ(auth->handle(request("GET", "/auth/gitea/login")).status, 404);
  EXPECT_EQ(auth->handle(request("GET", "/auth/git/login")).status, 404);
}

TEST_F(AuthTest, CookiesAreSecureOnlyWhenServedOverHttps) {
  config.public_url = "http://127.0.0.1:8081";
  make_auth();
  EXPECT_FALSE(auth->secure_cookies());
  EXPECT_EQ(login("github").header("set-cookie").find("Secure"), std::string::npos);
  fake.sign_in_as("github", "octocat");
  auto start = login("github");
  EXPECT_EQ(location_param(start, "redirect_uri"), "http://127.0.0.1:8081/auth/github/callback");
  auto back = at_forge(start);
  auto done = callback("github", back.header("location").substr(back.header("location").find('?') + 1), cookie_set(start, kStateCookie));
  EXPECT_EQ(done.header("set-cookie").find("Secure"), std::string::npos) << done.header("set-cookie");
  EXPECT_NE(done.header("set-cookie").find("HttpOnly; SameSite=Lax"), std::string::npos);
  config.cookie_secure = true;
  make_auth();
  EXPECT_TRUE(auth->secure_cookies());
  config.public_url = "HTTPS://ci.example";
  config.cookie_secure.reset();
  make_auth();
  EXPECT_TRUE(auth->secure_cookies());
  config.cookie_secure = false;
  make_auth();
  EXPECT_FALSE(auth->secure_cookies());
}

TEST_F(AuthTest, AStateIsUsedOnce) {
  fake.sign_in_as("github", "octocat");
  auto start = login("github");
  auto back = at_forge(start);
  const auto query = back.header("location").substr(back.header("location").find('?') + 1);
  EXPECT_EQ(callback("github", query, cookie_set(start, kStateCookie)).status, 302);
  auto again = callback("github", query, cookie_set(start, kStateCookie));
  EXPECT_EQ(again.status, 400);
  EXPECT_NE(again.body.find("already used"), std::string::npos) << again.body;
  EXPECT_EQ(again.header("set-cookie"), "");
  EXPECT_EQ(sessions.state_count(), 0u);
}

TEST_F(AuthTest, AStateIsBoundToItsForgeAndToTheBrowserThatStartedIt) {
  fake.sign_in_as("github", "octocat");
  auto start = login("github");
  auto back = at_forge(start);
  const auto query = back.header("location").substr(back.header("location").find('?') + 1);
  auto other_forge = callback("gitea", query, cookie_set(start, kStateCookie));
  EXPECT_EQ(other_forge.status, 400);
  EXPECT_NE(other_forge.body.find("another forge"), std::string::npos) << other_forge.body;
  // Taken by that attempt: it is no good for its own forge either.
  EXPECT_EQ(callback("github", query, cookie_set(start, kStateCookie)).status, 400);
  start = login("github");
  back = at_forge(start);
  auto other_browser = callback("github", back.header("location").substr(back.header("location").find('?') + 1), "");
  EXPECT_EQ(other_browser.status, 400);
  EXPECT_NE(other_browser.body.find("another browser"), std::string::npos) << other_browser.body;
  EXPECT_EQ(sessions.session_count(), 0u);
  EXPECT_EQ(callback("github", "code=x", "").status, 400);
  EXPECT_EQ(callback("github", "code=x&state=" + std::string(64, 'f'), std::string(64, 'f')).status, 400);
}

TEST_F(AuthTest, AStateExpiresAfterTenMinutes) {
  fake.sign_in_as("gitlab", "alice");
  auto start = login("gitlab");
  auto back = at_forge(start);
  clock.advance_ms(10 * 60 * 1000 + 1);
  auto late = callback("gitlab", back.header("location").substr(back.header("location").find('?') + 1), cookie_set(start, kStateCookie));
  EXPECT_EQ(late.status, 400);
  EXPECT_NE(late.body.find("expired"), std::string::npos);
}

TEST_F(AuthTest, NextIsOnlyEverALocalPath) {
  for (const auto* bad : {"", "//evil.example/x", "https://evil.example", "/\\evil.example", "\\\\evil", "evil", "/a b", "/a\r\nSet-Cookie: x",
                          "/\t/evil.example"}) {
    EXPECT_EQ(local_path(bad), "/") << bad;
  }
  for (const auto* good : {"/", "/evals/e1", "/jobs/j1/log?offset=10#end", "/a/%2F%2Fb"}) EXPECT_EQ(local_path(good), good);
  fake.sign_in_as("gitea", "alice");
  auto start = login("gitea", "//evil.example/steal");
  auto back = at_forge(start);
  auto done = callback("gitea", back.header("location").substr(back.header("location").find('?') + 1), cookie_set(start, kStateCookie));
  EXPECT_EQ(done.header("location"), "/");
}

TEST_F(AuthTest, ARefusedOrFailedSignInSaysWhyAndLogsNoSecret) {
  testing::internal::CaptureStderr();
  auto start = login("github");  // nobody signed in at the forge: it answers access_denied
  auto back = at_forge(start);
  auto denied = callback("github", back.header("location").substr(back.header("location").find('?') + 1), cookie_set(start, kStateCookie));
  EXPECT_EQ(denied.status, 403);
  EXPECT_NE(denied.body.find("access_denied"), std::string::npos) << denied.body;
  fake.sign_in_as("github", "octocat");
  start = login("github");
  back = at_forge(start);
  const auto code = location_param(back, "code");
  fake.fail_next(1, 500, "", {}, "/login/oauth/access_token");
  auto failed = callback("github", back.header("location").substr(back.header("location").find('?') + 1), cookie_set(start, kStateCookie));
  const auto logged = testing::internal::GetCapturedStderr();
  EXPECT_EQ(failed.status, 502);
  EXPECT_NE(failed.body.find("GitHub"), std::string::npos) << failed.body;
  for (const auto& secret : {kClientSecret, code, location_param(start, "state")}) {
    EXPECT_EQ(failed.body.find(secret), std::string::npos) << failed.body;
    EXPECT_EQ(logged.find(secret), std::string::npos) << logged;
  }
  EXPECT_EQ(sessions.session_count(), 0u);
}

TEST_F(AuthTest, NothingSecretOfASessionReachesTheLog) {
  testing::internal::CaptureStderr();
  const auto id = sign_in("gitlab", "alice");
  auto v = viewer(id);
  ASSERT_TRUE(v.has_value());
  auth->handle(request("POST", "/auth/logout", "", {{"cookie", std::string(kSessionCookie) + "=" + id}, {"x-flurry-csrf", v->csrf}}));
  const auto logged = testing::internal::GetCapturedStderr();
  EXPECT_NE(logged.find("web.signed_in"), std::string::npos) << logged;
  for (const auto& secret : {id, v->csrf, v->access_token, kClientSecret}) EXPECT_EQ(logged.find(secret), std::string::npos) << logged;
}

TEST_F(AuthTest, WithoutTheSessionStoreNobodyIsSignedInAndSigningInWaits) {
  SessionsDown down;
  make_auth(&down);
  EXPECT_FALSE(viewer(std::string(64, 'a')).has_value());
  EXPECT_EQ(login("github").status, 503);
  EXPECT_EQ(callback("github", "code=c&state=s", "s").status, 503);
  EXPECT_TRUE(auth->viewer_of(request("GET", "/", "", {{"authorization", "Bearer " + kApiToken}}))->api_token);
}

TEST_F(AuthTest, SigningInAgainEndsTheBrowsersEarlierSession) {
  const auto first = sign_in("github", "octocat");
  ASSERT_TRUE(viewer(first).has_value());
  fake.sign_in_as("gitlab", "alice");
  auto start = login("gitlab");
  auto back = at_forge(start);
  const auto query = back.header("location").substr(back.header("location").find('?') + 1);
  auto done = auth->handle(request("GET", "/auth/gitlab/callback", query,
                                   {{"cookie", std::string(kSessionCookie) + "=" + first + "; " + kStateCookie + "=" +
                                                   cookie_set(start, kStateCookie)}}));
  ASSERT_EQ(done.status, 302) << done.body;
  EXPECT_FALSE(viewer(first).has_value());
  EXPECT_EQ(viewer(cookie_set(done, kSessionCookie))->login, "alice");
  EXPECT_EQ(sessions.session_count(), 1u);
}

// --- Sessions, CSRF, signing out ------------------------------------------

TEST_F(AuthTest, ASessionEndsWithItsTtl) {
  const auto id = sign_in("github", "octocat");
  ASSERT_TRUE(viewer(id).has_value());
  EXPECT_EQ(viewer(id)->login, "octocat");
  EXPECT_EQ(viewer(id)->name, "octocat");  // no display name: the login
  clock.advance_ms(7LL * 24 * 3600 * 1000);
  EXPECT_FALSE(viewer(id).has_value());
  EXPECT_FALSE(viewer("not-a-session-id").has_value());
  EXPECT_FALSE(viewer(std::string(64, 'a')).has_value());
}

TEST_F(AuthTest, APostWithASessionNeedsItsCsrfTokenTheApiTokenNone) {
  const auto id = sign_in("gitea", "alice");
  auto v = viewer(id);
  ASSERT_TRUE(v.has_value());
  const std::string cookie = std::string(kSessionCookie) + "=" + id;
  EXPECT_FALSE(auth->csrf_ok(request("POST", "/api/rebuild", "", {{"cookie", cookie}}), *v));
  EXPECT_FALSE(auth->csrf_ok(request("POST", "/api/rebuild", "", {{"cookie", cookie}, {"x-flurry-csrf", std::string(64, '0')}}), *v));
  EXPECT_FALSE(auth->csrf_ok(request("POST", "/api/rebuild", "", {{"cookie", cookie}, {"x-flurry-csrf", v->csrf + "0"}}), *v));
  EXPECT_TRUE(auth->csrf_ok(request("POST", "/api/rebuild", "", {{"cookie", cookie}, {"x-flurry-csrf", v->csrf}}), *v));
  auto holder = auth->viewer_of(request("POST", "/api/rebuild", "", {{"authorization", "Bearer " + kApiToken}}));
  ASSERT_TRUE(holder.has_value());
  EXPECT_TRUE(holder->api_token);
  EXPECT_TRUE(auth->csrf_ok(request("POST", "/api/rebuild", "", {{"authorization", "Bearer " + kApiToken}}), *holder));
  // A wrong token is nobody; with a session cookie too, the session.
  EXPECT_FALSE(auth->viewer_of(request("POST", "/", "", {{"authorization", "Bearer wrong"}})).has_value());
  auto both = auth->viewer_of(request("POST", "/", "", {{"authorization", "Bearer wrong"}, {"cookie", cookie}}));
  ASSERT_TRUE(both.has_value());
  EXPECT_FALSE(both->api_token);
  EXPECT_FALSE(auth->csrf_ok(request("POST", "/"), Viewer{"gitea", "alice", "", false, "", id, ""}));
}

TEST_F(AuthTest, SigningOutNeedsTheCsrfTokenThenEndsTheSession) {
  const auto id = sign_in("github", "octocat");
  const std::string cookie = std::string(kSessionCookie) + "=" + id;
  auto refused = auth->handle(request("POST", "/auth/logout", "", {{"cookie", cookie}}));
  EXPECT_EQ(refused.status, 403);
  ASSERT_TRUE(viewer(id).has_value());
  auto out = auth->handle(request("POST", "/auth/logout", "", {{"cookie", cookie}, {"x-flurry-csrf", viewer(id)->csrf}}));
  EXPECT_EQ(out.status, 204);
  EXPECT_EQ(out.header("set-cookie"), std::string(kSessionCookie) + "=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0; Secure");
  EXPECT_FALSE(viewer(id).has_value());
  EXPECT_EQ(session_json({{"cookie", cookie}})["user"], nullptr);
  EXPECT_EQ(auth->handle(request("POST", "/auth/logout")).status, 204);  // nobody to sign out
  EXPECT_EQ(auth->handle(request("GET", "/auth/logout")).status, 405);
}

// --- Who may read and act ----------------------------------------------------

TEST_F(AuthTest, ReadingFollowsTheRepositorysVisibility) {
  const msg::Repo open{"github", "octo", "open"}, secret{"github", "octo", "secret"};
  fake.set_private("github", "octo", "secret");
  fake.set_permission("github", "octo", "secret", "reader", "read");
  const auto reader = viewer(sign_in("github", "reader"));
  const auto stranger = viewer(sign_in("github", "stranger"));
  const auto gitlab_user = viewer(sign_in("gitlab", "reader"));
  const auto holder = auth->viewer_of(request("GET", "/", "", {{"authorization", "Bearer " + kApiToken}}));
  EXPECT_EQ(shown(auth->may_read(std::nullopt, open)), "true");
  EXPECT_EQ(shown(auth->may_read(stranger, open)), "true");
  EXPECT_EQ(shown(auth->may_read(std::nullopt, secret)), "false");
  EXPECT_EQ(shown(auth->may_read(stranger, secret)), "false");
  EXPECT_EQ(shown(auth->may_read(gitlab_user, secret)), "false");  // signed in with another forge
  EXPECT_EQ(shown(auth->may_read(reader, secret)), "true");
  EXPECT_EQ(shown(auth->may_read(holder, secret)), "true");
  // Forges Flurry has no credentials for: a polled repository, the local example.
  EXPECT_EQ(shown(auth->may_read(std::nullopt, msg::Repo{"git", "local", "example"})), "true");
  visibility.erase("gitea");
  make_auth();
  EXPECT_EQ(shown(auth->may_read(std::nullopt, msg::Repo{"gitea", "org", "repo"})), "true");
}

TEST_F(AuthTest, GiteaAndGitLabPrivateRepositoriesAreForTheirMembers) {
  fake.set_private("gitea", "org", "repo");
  fake.set_private("gitlab", "group/sub", "proj");
  fake.set_permission("gitea", "org", "repo", "member", "read");
  fake.set_permission("gitlab", "group/sub", "proj", "member", "reporter");
  for (const std::string forge : {"gitea", "gitlab"}) {
    const msg::Repo repo = forge == "gitea" ? msg::Repo{"gitea", "org", "repo"} : msg::Repo{"gitlab", "group/sub", "proj"};
    EXPECT_EQ(shown(auth->may_read(viewer(sign_in(forge, "member")), repo)), "true") << forge;
    EXPECT_EQ(shown(auth->may_read(viewer(sign_in(forge, "outsider")), repo)), "false") << forge;
    EXPECT_EQ(shown(auth->may_read(std::nullopt, repo)), "false") << forge;
  }
}

TEST_F(AuthTest, AForgeThatCannotBeAskedRefusesWithAReason) {
  const msg::Repo repo{"github", "octo", "secret"};
  fake.set_private("github", "octo", "secret");
  fake.set_permission("github", "octo", "secret", "reader", "read");
  const auto reader = viewer(sign_in("github", "reader"));
  fake.fail_next(1, 502, "", {}, "/repos/octo/secret");
  auto down = auth->may_read(reader, repo);
  ASSERT_FALSE(down.has_value());
  EXPECT_NE(down.error().message.find("cannot tell whether octo/secret is public"), std::string::npos) << down.error().message;
  EXPECT_EQ(down.error().code, ErrorCode::kTransient);
  // The failure is reused briefly, then the forge is asked again.
  EXPECT_FALSE(auth->may_read(reader, repo).has_value());
  clock.advance_ms(5001);
  EXPECT_EQ(shown(auth->may_read(std::nullopt, repo)), "false");  // private, known for a minute now
  fake.fail_next(1, 503, "", {}, "/repos/octo/secret");          // the user's read fails
  auto user_down = auth->may_read(reader, repo);
  ASSERT_FALSE(user_down.has_value());
  EXPECT_EQ(user_down.error().code, ErrorCode::kTransient);
  clock.advance_ms(5001);
  EXPECT_EQ(shown(auth->may_read(reader, repo)), "true");
  // A revoked user token asks for a new sign-in.
  const auto stale = Viewer{"github", "reader2", "", false, "c", std::string(64, 'a'), "gho_revoked"};
  auto revoked = auth->may_read(stale, repo);
  ASSERT_FALSE(revoked.has_value());
  EXPECT_NE(revoked.error().message.find("sign in again"), std::string::npos) << revoked.error().message;
  EXPECT_EQ(revoked.error().message.find("gho_revoked"), std::string::npos);
}

TEST_F(AuthTest, ActingNeedsWritePermissionOrTheApiToken) {
  const msg::Repo repo{"gitlab", "group", "proj"};
  fake.set_permission("gitlab", "group", "proj", "dev", "developer");
  fake.set_permission("gitlab", "group", "proj", "guest", "reporter");
  const auto dev = viewer(sign_in("gitlab", "dev"));
  const auto guest = viewer(sign_in("gitlab", "guest"));
  const auto github_dev = viewer(sign_in("github", "dev"));
  const auto holder = auth->viewer_of(request("POST", "/", "", {{"authorization", "Bearer " + kApiToken}}));
  EXPECT_EQ(shown(auth->may_act(std::nullopt, repo)), "false");
  EXPECT_EQ(shown(auth->may_act(dev, repo)), "true");
  EXPECT_EQ(shown(auth->may_act(guest, repo)), "false");
  EXPECT_EQ(shown(auth->may_act(github_dev, repo)), "false");
  EXPECT_EQ(shown(auth->may_act(holder, repo)), "true");
  EXPECT_EQ(shown(auth->may_act(dev, msg::Repo{"git", "local", "example"})), "false");
  EXPECT_EQ(shown(auth->may_act(holder, msg::Repo{"git", "local", "example"})), "true");
  fake.set_permission("github", "octo", "hello", "dev", "write");
  fake.fail_next(1, 500, "", {}, "/repos/octo/hello/collaborators");
  auto down = auth->may_act(github_dev, msg::Repo{"github", "octo", "hello"});
  ASSERT_FALSE(down.has_value());
  EXPECT_NE(down.error().message.find("may write to octo/hello"), std::string::npos) << down.error().message;
  clock.advance_ms(5001);
  EXPECT_EQ(shown(auth->may_act(github_dev, msg::Repo{"github", "octo", "hello"})), "true");
}

TEST_F(AuthTest, ForgeAnswersAreReusedPerRepositoryAndUserForAWhile) {
  const msg::Repo repo{"gitea", "org", "repo"};
  fake.set_private("gitea", "org", "repo");
  fake.set_permission("gitea", "org", "repo", "alice", "write");
  fake.set_permission("gitea", "org", "repo", "bob", "read");
  const auto alice = viewer(sign_in("gitea", "alice"));
  const auto bob = viewer(sign_in("gitea", "bob"));
  for (int i = 0; i < 10'000; ++i) {
    ASSERT_EQ(shown(auth->may_read(alice, repo)), "true");
    ASSERT_EQ(shown(auth->may_act(alice, repo)), "true");
  }
  EXPECT_EQ(shown(auth->may_read(bob, repo)), "true");
  EXPECT_EQ(shown(auth->may_act(bob, repo)), "false");
  EXPECT_EQ(shown(auth->may_read(std::nullopt, repo)), "false");
  // One visibility question (service token), one read per user, one write per user.
  EXPECT_EQ(calls_to("/api/v1/repos/org/repo/collaborators/"), 2);
  int visibility_calls = 0, read_calls = 0;
  for (const auto& c : fake.calls()) {
    if (c.path != "/api/v1/repos/org/repo") continue;
    (c.headers.at("authorization") == "token service-gitea" ? visibility_calls : read_calls)++;
  }
  EXPECT_EQ(visibility_calls, 1);
  EXPECT_EQ(read_calls, 2);
  // After the cache's lifetime the forge is asked again: a changed answer shows.
  fake.set_permission("gitea", "org", "repo", "alice", "read");
  EXPECT_EQ(shown(auth->may_act(alice, repo)), "true");
  clock.advance_ms(60'001);
  EXPECT_EQ(shown(auth->may_act(alice, repo)), "false");
  EXPECT_EQ(calls_to("/api/v1/repos/org/repo/collaborators/"), 3);
}

TEST_F(AuthTest, CachesAreBounded) {
  config.cache_max = 3;
  make_auth();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(shown(auth->may_read(std::nullopt, msg::Repo{"github", "octo", "r" + std::to_string(i)})), "true");
  EXPECT_EQ(calls_to("/repos/octo/r"), 10);
  EXPECT_EQ(shown(auth->may_read(std::nullopt, msg::Repo{"github", "octo", "r9"})), "true");
  EXPECT_EQ(calls_to("/repos/octo/r"), 10);  // still kept
  EXPECT_EQ(shown(auth->may_read(std::nullopt, msg::Repo{"github", "octo", "r0"})), "true");
  EXPECT_EQ(calls_to("/repos/octo/r"), 11);  // made room for others

  TtlCache<int> cache(2);
  cache.put("a", 1, 100);
  cache.put("b", 2, 100);
  cache.put("c", 3, 100);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.get("a", 0).has_value());
  EXPECT_EQ(cache.get("c", 99).value_or(0), 3);
  EXPECT_FALSE(cache.get("c", 100).has_value());
  EXPECT_EQ(cache.size(), 1u);
}

// --- Configuration ------------------------------------------------------------

TEST(AuthConfig, ReadsTheWebSection) {
  auto c = Config::from_string(
      "[web]\npublic_url = \"https://ci.example\"\nsession_ttl = \"2d\"\ncookie_secure = \"auto\"\naccess_cache_ttl = \"30s\"\n"
      "access_cache_max = 50\n");
  auto a = auth_config(c, "tok");
  EXPECT_EQ(a.session_ttl, std::chrono::hours(48));
  EXPECT_FALSE(a.cookie_secure.has_value());
  EXPECT_EQ(a.cache_ttl, std::chrono::seconds(30));
  EXPECT_EQ(a.cache_max, 50u);
  EXPECT_EQ(a.api_token, "tok");
  EXPECT_EQ(auth_config(Config::from_string(""), "").session_ttl, std::chrono::hours(24 * 7));
  EXPECT_EQ(auth_config(Config::from_string("[web]\ncookie_secure = false\nsession_ttl = \"12h\"\n"), "").cookie_secure, false);
  EXPECT_THROW(auth_config(Config::from_string("[web]\ncookie_secure = \"sometimes\"\n"), ""), ConfigError);
  EXPECT_THROW(auth_config(Config::from_string("[web]\nsession_ttl = \"10s\"\n"), ""), ConfigError);
  EXPECT_THROW(auth_config(Config::from_string("[web]\naccess_cache_max = 0\n"), ""), ConfigError);
}

TEST(AuthConfig, SigningInNeedsThePublicUrlAndTheClientSecret) {
  test::TempDir tmp("flurry-auth-config");
  test::write_file(tmp.file("secret"), "s3cret\n");
  ManualClock clock;
  state::testing::MemorySessions sessions(clock);
  auto client = http::make_client();
  const std::string oauth = "[web.oauth.gitlab]\nclient_id = \"id\"\nclient_secret_file = \"" + tmp.file("secret") + "\"\n";
  EXPECT_THROW(AuthService(Config::from_string(oauth), "", sessions, *client, clock), ConfigError);
  AuthService service(Config::from_string("[web]\npublic_url = \"http://127.0.0.1:1\"\n" + oauth), "", sessions, *client, clock);
  EXPECT_EQ(service.auth().sign_in_forges(), std::vector<std::string>{"gitlab"});
  EXPECT_THROW(AuthService(Config::from_string("[web]\npublic_url = \"http://x\"\n[web.oauth.github]\nclient_id = \"id\"\n"), "", sessions,
                           *client, clock),
               ConfigError);
  AuthService none(Config::from_string(""), "", sessions, *client, clock);
  EXPECT_TRUE(none.auth().sign_in_forges().empty());
}

}  // namespace
