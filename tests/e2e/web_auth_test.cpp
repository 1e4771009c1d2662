// Signing in end to end: the real flurry-web binary with its own
// nats-server and redis-server, configured with OAuth for the fake GitHub,
// Gitea and GitLab; a browser's redirects followed by hand.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "flurry/core/text.hpp"
#include "flurry/fakes/fake_forge.hpp"
#include "flurry/fakes/raw_http_client.hpp"
#include "flurry/state/redis_sessions.hpp"
#include "flurry/test/servers.hpp"
#include "service_process.hpp"

using namespace flurry;
using nlohmann::json;

namespace {

const std::string kClientSecret = "e2e-oauth-client-secret";
const std::string kApiToken = "e2e-api-token-0123456789";
const char* kForges[] = {"github", "gitea", "gitlab"};

// The value of cookie `name` a Set-Cookie header (or several, one per line) sets.
std::string cookie_set(const http::Response& r, const std::string& name) {
  for (const auto& line : text::split(r.header("set-cookie"), '\n')) {
    if (text::starts_with(line, name + "=")) return line.substr(name.size() + 1, line.find(';') - name.size() - 1);
  }
  return "";
}

struct WebRig {
  WebRig() {
    for (const std::string forge : kForges) {
      fake.set_token(forge, "service-" + forge);
      fake.set_oauth_client(forge, forge + "-client", kClientSecret);
      secret_file(forge + "-token", "service-" + forge);
    }
    secret_file("oauth-secret", kClientSecret);
    secret_file("api-token", kApiToken);
    web = test::start_service("web", "services/web/flurry-web", [&](int port) { return config(port); }, tmp);
    base = "http://127.0.0.1:" + std::to_string(web.port);
  }
  void secret_file(const std::string& name, const std::string& value) {
    test::write_file(tmp.file(name), value + "\n");
    std::filesystem::permissions(tmp.file(name), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  std::string config(int port) const {
    std::string c = "[nats]\nurl = \"" + nats.url() + "\"\n[redis]\nhost = \"127.0.0.1\"\nport = " + std::to_string(redis.port()) +
                    "\n[web]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\npublic_url = \"http://127.0.0.1:" +
                    std::to_string(port) + "\"\napi_token_file = \"" + tmp.file("api-token") + "\"\n";
    for (const std::string forge : kForges) {
      c += "[" + forge + "]\napi_url = \"" + fake.url() + "\"\ntoken_file = \"" + tmp.file(forge + "-token") + "\"\n";
      if (forge == "github") c += "oauth_url = \"" + fake.url() + "\"\n";
      c += "[web.oauth." + forge + "]\nclient_id = \"" + forge + "-client\"\nclient_secret_file = \"" + tmp.file("oauth-secret") + "\"\n";
    }
    return c;
  }

  http::Response get(const std::string& url, const std::map<std::string, std::string>& headers = {}) {
    auto r = browser.send({.url = url, .headers = headers});
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : http::Response{0};
  }
  http::Response post(const std::string& path, const std::map<std::string, std::string>& headers) {
    auto r = browser.send({.method = "POST", .url = base + path, .headers = headers});
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : http::Response{0};
  }
  json session(const std::string& id) {
    auto r = get(base + "/api/session", {{"Cookie", "flurry_session=" + id}});
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false);
  }

  // A sign-in as far as the forge's answer: login, then the forge's
  // authorize page. `state_cookie` is what the login set.
  struct Started {
    std::string state_cookie;
    std::string callback_url;  // where the forge sends the browser back
  };
  Started start(const std::string& forge, const std::string& next) {
    auto login = get(base + "/auth/" + forge + "/login?next=" + next);
    EXPECT_EQ(login.status, 302) << login.body;
    EXPECT_EQ(login.header("location").rfind(fake.url(), 0), 0u) << login.header("location");
    auto at_forge = get(login.header("location"));
    EXPECT_EQ(at_forge.status, 302) << at_forge.body;
    return {cookie_set(login, "flurry_oauth_state"), at_forge.header("location")};
  }
  http::Response finish(const Started& s) { return get(s.callback_url, {{"Cookie", "flurry_oauth_state=" + s.state_cookie}}); }

  test::TempDir tmp{"flurry-web-auth"};
  test::NatsServer nats{tmp.file("nats")};
  test::RedisServer redis{tmp.file("redis")};
  fakes::FakeForge fake;
  fakes::RawHttpClient browser;
  test::ServiceProcess web;
  std::string base;
};

TEST(WebAuth, SigningInWithEachForgeSetsASessionCookieThatApiSessionKnows) {
  WebRig rig;
  std::vector<std::string> secrets = {kClientSecret};
  for (const std::string forge : kForges) {
    rig.fake.sign_in_as(forge, "user-" + forge, "User " + forge);
    auto s = rig.start(forge, "/evals/e1");
    EXPECT_EQ(s.callback_url.rfind(rig.base + "/auth/" + forge + "/callback?code=", 0), 0u) << s.callback_url;
    auto done = rig.finish(s);
    ASSERT_EQ(done.status, 302) << done.body << rig.web.log();
    EXPECT_EQ(done.header("location"), "/evals/e1");
    const auto id = cookie_set(done, "flurry_session");
    ASSERT_EQ(id.size(), 64u) << done.header("set-cookie");
    // Served over http: no Secure.
    EXPECT_EQ(done.header("set-cookie"), "flurry_session=" + id + "; HttpOnly; SameSite=Lax; Path=/; Max-Age=604800");
    auto me = rig.session(id);
    EXPECT_EQ(me["user"], json({{"forge", forge}, {"login", "user-" + forge}, {"name", "User " + forge}})) << me.dump();
    EXPECT_EQ(me["csrf"].get<std::string>().size(), 64u);
    EXPECT_EQ(me["sign_in"].size(), 3u);
    secrets.push_back(id);
    secrets.push_back(me["csrf"]);
    secrets.push_back(s.state_cookie);
  }
  for (const auto& t : rig.fake.issued_user_tokens("github")) secrets.push_back(t);
  for (const auto& t : rig.fake.issued_user_tokens("gitlab")) secrets.push_back(t);
  EXPECT_EQ(rig.session("")["user"], nullptr);
  EXPECT_EQ(rig.web.proc->stop(), 0);
  const auto log = rig.web.log();
  EXPECT_NE(log.find("web.signed_in"), std::string::npos) << log;
  for (const auto& secret : secrets) EXPECT_EQ(log.find(secret), std::string::npos) << secret << "\n" << log;
}

TEST(WebAuth, AStateWorksOnceAndOnlyForItsForge) {
  WebRig rig;
  rig.fake.sign_in_as("github", "octocat");
  rig.fake.sign_in_as("gitea", "octocat");
  auto s = rig.start("github", "/");
  ASSERT_EQ(rig.finish(s).status, 302);
  auto again = rig.finish(s);
  EXPECT_EQ(again.status, 400);
  EXPECT_NE(again.body.find("already used"), std::string::npos) << again.body;
  EXPECT_EQ(cookie_set(again, "flurry_session"), "");
  // GitHub's state and code taken to Gitea's callback.
  auto github = rig.start("github", "/");
  auto query = github.callback_url.substr(github.callback_url.find('?'));
  auto crossed = rig.get(rig.base + "/auth/gitea/callback" + query, {{"Cookie", "flurry_oauth_state=" + github.state_cookie}});
  EXPECT_EQ(crossed.status, 400);
  EXPECT_NE(crossed.body.find("another forge"), std::string::npos) << crossed.body;
  // A state made up, or without the browser's cookie.
  EXPECT_EQ(rig.get(rig.base + "/auth/gitea/callback?code=x&state=" + std::string(64, 'a')).status, 400);
  auto gitea = rig.start("gitea", "/");
  EXPECT_EQ(rig.get(gitea.callback_url).status, 400);
}

TEST(WebAuth, SigningOutNeedsTheCsrfHeaderAndEndsTheSession) {
  WebRig rig;
  rig.fake.sign_in_as("gitlab", "alice", "Alice");
  auto done = rig.finish(rig.start("gitlab", "/"));
  const auto id = cookie_set(done, "flurry_session");
  ASSERT_EQ(id.size(), 64u) << done.body;
  const auto csrf = rig.session(id)["csrf"].get<std::string>();
  state::RedisOptions o;
  o.port = rig.redis.port();
  auto sessions = state::make_redis_sessions(o);
  ASSERT_TRUE((*sessions->find(id)).has_value());

  auto refused = rig.post("/auth/logout", {{"Cookie", "flurry_session=" + id}});
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_EQ(rig.post("/auth/logout", {{"Cookie", "flurry_session=" + id}, {"X-Flurry-CSRF", std::string(64, '0')}}).status, 403);
  EXPECT_EQ(rig.session(id)["user"]["login"], "alice");
  auto out = rig.post("/auth/logout", {{"Cookie", "flurry_session=" + id}, {"X-Flurry-CSRF", csrf}});
  EXPECT_EQ(out.status, 204) << out.body;
  EXPECT_EQ(cookie_set(out, "flurry_session"), "");
  EXPECT_NE(out.header("set-cookie").find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(rig.session(id)["user"], nullptr);
  EXPECT_FALSE((*sessions->find(id)).has_value());
  // The API token is no session: /api/session says so.
  auto token = rig.get(rig.base + "/api/session", {{"Authorization", "Bearer " + kApiToken}});
  EXPECT_EQ(json::parse(token.body, nullptr, false)["token_auth"], true) << token.body;
}

}  // namespace
