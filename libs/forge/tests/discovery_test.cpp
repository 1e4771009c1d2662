// Project discovery's forge side: the filter, the hook decision, and each
// forge's listing and hooks against the real fake forge (tests/fakes).
#include "flurry/forge/discovery.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>

#include "flurry/fakes/fake_forge.hpp"
#include "flurry/http/testing/fake_client.hpp"
#include "flurry/test/jwt.hpp"

using namespace flurry;
using namespace flurry::forge;

namespace {

DiscoveredRepo repo(const std::string& owner, const std::string& name, std::vector<std::string> topics = {}) {
  DiscoveredRepo r;
  r.forge = "gitea";
  r.owner = owner;
  r.name = name;
  r.topics = std::move(topics);
  return r;
}

std::vector<std::string> names(const std::vector<DiscoveredRepo>& repos) {
  std::vector<std::string> out;
  for (const auto& r : repos) out.push_back(r.full_name());
  return out;
}

std::vector<fakes::RecordedCall> calls_to(const fakes::FakeForge& forge, const std::string& method, const std::string& path_prefix) {
  std::vector<fakes::RecordedCall> out;
  for (const auto& c : forge.calls()) {
    if (c.method == method && c.path.rfind(path_prefix, 0) == 0) out.push_back(c);
  }
  return out;
}

const std::vector<std::string> kGiteaEvents = {"push", "pull_request", "issue_comment"};

}  // namespace

TEST(RepoFilter, TopicFirstThenTheUserOrTheRepositoryAllowList) {
  const std::vector<DiscoveredRepo> repos = {repo("org", "tagged", {"build-with-flurry"}), repo("org", "plain"),
                                             repo("Friend", "tagged", {"Build-With-Flurry", "nix"}),
                                             repo("stranger", "tagged", {"build-with-flurry"})};
  // No topic, no lists: everything.
  EXPECT_EQ(names(filter_repos({}, repos)).size(), 4u);
  // Topic only (compared case-insensitively, as forges do).
  EXPECT_EQ(names(filter_repos({"build-with-flurry"}, repos)),
            (std::vector<std::string>{"org/tagged", "Friend/tagged", "stranger/tagged"}));
  // A user allow-list OR a repository allow-list.
  RepoFilter f{"build-with-flurry", {"friend"}, {"ORG/tagged", "org/plain"}};
  EXPECT_EQ(names(filter_repos(f, repos)), (std::vector<std::string>{"org/tagged", "Friend/tagged"}));
  // The topic still applies to allow-listed repositories.
  EXPECT_FALSE(has_topic(f, {}));
  EXPECT_TRUE(allowlisted(f, "org", "plain"));
  // Only one list set: the other keeps nothing by itself.
  RepoFilter users_only{"", {"org"}, {}};
  EXPECT_EQ(names(filter_repos(users_only, repos)), (std::vector<std::string>{"org/tagged", "org/plain"}));
  RepoFilter repos_only{"", {}, {"stranger/tagged"}};
  EXPECT_EQ(names(filter_repos(repos_only, repos)), (std::vector<std::string>{"stranger/tagged"}));
  // Owner and name are not mixed up: "org/tagged" is no user.
  EXPECT_FALSE(allowlisted({"", {"org/tagged"}, {}}, "org", "tagged"));
}

TEST(HookDecision, CreateWhenMissingUpdateWhenSecretUrlOrEventsChangedElseNothing) {
  const HookSpec spec{"https://ci.example/webhooks/gitea", "s3cret"};
  const auto fp = hook_fingerprint(spec);
  RepoHook foreign{7, "https://chat.example/hook", true, {"push"}};
  RepoHook ours{9, spec.url, true, kGiteaEvents};

  auto d = decide_hook({foreign}, spec, kGiteaEvents, std::nullopt);
  EXPECT_EQ(d.action, HookAction::kCreate);

  // Ours by URL, but nothing remembered: the secret may be stale.
  d = decide_hook({foreign, ours}, spec, kGiteaEvents, std::nullopt);
  EXPECT_EQ(d.action, HookAction::kUpdate);
  EXPECT_EQ(d.hook_id, 9);

  // Remembered and unchanged: nothing.
  d = decide_hook({foreign, ours}, spec, kGiteaEvents, ManagedHook{9, fp});
  EXPECT_EQ(d.action, HookAction::kNone) << d.why;

  // The secret was rotated.
  d = decide_hook({ours}, HookSpec{spec.url, "rotated"}, kGiteaEvents, ManagedHook{9, fp});
  EXPECT_EQ(d.action, HookAction::kUpdate);
  EXPECT_EQ(d.hook_id, 9);

  // The base URL moved: the remembered hook (old URL) is updated, not a second one made.
  const HookSpec moved{"https://new.example/webhooks/gitea", "s3cret"};
  d = decide_hook({foreign, ours}, moved, kGiteaEvents, ManagedHook{9, fp});
  EXPECT_EQ(d.action, HookAction::kUpdate);
  EXPECT_EQ(d.hook_id, 9);
  // ... but without memory, a hook of another URL is not ours.
  d = decide_hook({foreign, ours}, moved, kGiteaEvents, std::nullopt);
  EXPECT_EQ(d.action, HookAction::kCreate);

  // Disabled, or an event missing: updated.
  auto off = ours;
  off.active = false;
  EXPECT_EQ(decide_hook({off}, spec, kGiteaEvents, ManagedHook{9, fp}).action, HookAction::kUpdate);
  auto fewer = ours;
  fewer.events = {"push"};
  EXPECT_EQ(decide_hook({fewer}, spec, kGiteaEvents, ManagedHook{9, fp}).action, HookAction::kUpdate);
  // More events than needed are fine.
  auto more = ours;
  more.events.push_back("release");
  EXPECT_EQ(decide_hook({more}, spec, kGiteaEvents, ManagedHook{9, fp}).action, HookAction::kNone);

  // A remembered hook that was deleted: created again.
  EXPECT_EQ(decide_hook({foreign}, spec, kGiteaEvents, ManagedHook{9, fp}).action, HookAction::kCreate);

  // The fingerprint depends on both and shows neither.
  EXPECT_NE(hook_fingerprint({spec.url, "other"}), fp);
  EXPECT_NE(hook_fingerprint({moved.url, spec.secret}), fp);
  EXPECT_EQ(fp.find("s3cret"), std::string::npos);
}

TEST(GiteaProjects, EveryPageIsReadAndTopicsAreAskedOnlyForAllowListedRepositories) {
  fakes::FakeForge forge;
  forge.set_token("gitea", "gt");
  for (int i = 0; i < 55; ++i) {
    forge.add_repository("gitea", "org", "r" + std::to_string(i), i % 2 == 0 ? std::vector<std::string>{"build-with-flurry"}
                                                                             : std::vector<std::string>{});
  }
  forge.add_repository("gitea", "stranger", "tagged", {"build-with-flurry"});
  auto client = http::make_client();
  GiteaProjects gitea(*client, forge.url(), "gt");

  auto all = gitea.list_repos({});
  ASSERT_TRUE(all.has_value()) << all.error().message;
  EXPECT_EQ(all->repos.size(), 56u);
  EXPECT_EQ(calls_to(forge, "GET", "/api/v1/user/repos").size(), 2u);  // 50 + 6
  EXPECT_TRUE(calls_to(forge, "GET", "/api/v1/repos/").empty());       // no topic: no topic calls
  const auto& first = all->repos.front();
  EXPECT_EQ(first.forge, "gitea");
  EXPECT_EQ(first.owner, "org");
  EXPECT_EQ(first.name, "r0");
  EXPECT_EQ(first.clone_url, forge.url() + "/org/r0.git");
  EXPECT_EQ(first.html_url, forge.url() + "/org/r0");
  EXPECT_EQ(first.default_branch, "main");
  for (const auto& c : forge.calls()) EXPECT_EQ(c.headers.at("authorization"), "token gt");

  const auto before = forge.calls().size();
  auto tagged = gitea.list_repos({"build-with-flurry", {}, {"org/r1", "org/r2", "org/r3"}});
  ASSERT_TRUE(tagged.has_value()) << tagged.error().message;
  EXPECT_EQ(names(tagged->repos), (std::vector<std::string>{"org/r2"}));
  std::vector<std::string> topic_calls;
  for (std::size_t i = before; i < forge.calls().size(); ++i) {
    if (forge.calls()[i].path.find("/topics") != std::string::npos) topic_calls.push_back(forge.calls()[i].path);
  }
  EXPECT_EQ(topic_calls, (std::vector<std::string>{"/api/v1/repos/org/r1/topics", "/api/v1/repos/org/r2/topics",
                                                   "/api/v1/repos/org/r3/topics"}));
}

TEST(GiteaProjects, ARepositoryWhoseTopicsAreRefusedIsSkippedAndAnOutageFailsTheListing) {
  fakes::FakeForge forge;
  forge.add_repository("gitea", "org", "hidden", {"build-with-flurry"});
  forge.add_repository("gitea", "org", "shown", {"build-with-flurry"});
  auto client = http::make_client();
  GiteaProjects gitea(*client, forge.url(), "gt");
  forge.fail_next(1, 404, "", {}, "/api/v1/repos/org/hidden/topics");
  auto l = gitea.list_repos({"build-with-flurry"});
  ASSERT_TRUE(l.has_value()) << l.error().message;
  EXPECT_EQ(names(l->repos), (std::vector<std::string>{"org/shown"}));
  ASSERT_EQ(l->skipped.size(), 1u);
  EXPECT_NE(l->skipped[0].find("org/hidden: Gitea answered 404"), std::string::npos) << l->skipped[0];

  forge.fail_next(1, 502, "bad gateway", {}, "/api/v1/user/repos");
  auto down = gitea.list_repos({"build-with-flurry"});
  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.error().code, ErrorCode::kTransient);
  forge.fail_next(1, 503, "", {}, "/api/v1/repos/org/shown/topics");
  down = gitea.list_repos({"build-with-flurry"});
  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.error().code, ErrorCode::kTransient);

  forge.set_token("gitea", "right");
  auto denied = gitea.list_repos({});
  ASSERT_FALSE(denied.has_value());
  EXPECT_EQ(denied.error().code, ErrorCode::kRejected);
}

TEST(GiteaProjects, HooksAreCreatedActiveWithTheSecretAndUpdatedInPlace) {
  fakes::FakeForge forge;
  forge.add_repository("gitea", "org", "hello", {"build-with-flurry"});
  auto client = http::make_client();
  GiteaProjects gitea(*client, forge.url(), "gt");
  const auto r = repo("org", "hello");
  EXPECT_TRUE(gitea.list_hooks(r)->empty());
  auto id = gitea.create_hook(r, {"https://ci.example/webhooks/gitea", "first-secret"});
  ASSERT_TRUE(id.has_value()) << id.error().message;
  auto hooks = forge.hooks("gitea");
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].id, *id);
  EXPECT_EQ(hooks[0].url, "https://ci.example/webhooks/gitea");
  EXPECT_EQ(hooks[0].content_type, "json");
  EXPECT_EQ(hooks[0].secret, "first-secret");
  EXPECT_TRUE(hooks[0].active);
  EXPECT_EQ(hooks[0].events, kGiteaEvents);
  // As the forge shows it back: no secret, the events Flurry needs.
  auto listed = gitea.list_hooks(r);
  ASSERT_TRUE(listed.has_value());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].url, "https://ci.example/webhooks/gitea");
  EXPECT_EQ(decide_hook(*listed, {"https://ci.example/webhooks/gitea", "first-secret"}, gitea.hook_events(),
                        ManagedHook{*id, hook_fingerprint({"https://ci.example/webhooks/gitea", "first-secret"})})
                .action,
            HookAction::kNone);
  // No call carried the secret anywhere but the body.
  for (const auto& c : forge.calls()) {
    for (const auto& [k, v] : c.headers) EXPECT_EQ(v.find("first-secret"), std::string::npos) << k;
  }

  ASSERT_TRUE(gitea.update_hook(r, *id, {"https://new.example/webhooks/gitea", "second-secret"}).has_value());
  hooks = forge.hooks("gitea");
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].url, "https://new.example/webhooks/gitea");
  EXPECT_EQ(hooks[0].secret, "second-secret");
  EXPECT_EQ(calls_to(forge, "PATCH", "/api/v1/repos/org/hello/hooks/" + std::to_string(*id)).size(), 1u);

  forge.fail_next(1, 403, "", {}, "/api/v1/repos/org/hello/hooks");
  auto denied = gitea.list_hooks(r);
  ASSERT_FALSE(denied.has_value());
  EXPECT_EQ(denied.error().code, ErrorCode::kRejected);
}

TEST(GitLabProjects, MemberProjectsOfTheTopicAreReadOnEveryPage) {
  fakes::FakeForge forge;
  forge.set_token("gitlab", "gl");
  for (int i = 0; i < 130; ++i) {
    forge.add_repository("gitlab", "group/sub", "p" + std::to_string(i), i < 120 ? std::vector<std::string>{"build-with-flurry"}
                                                                                 : std::vector<std::string>{});
  }
  auto client = http::make_client();
  GitLabProjects gitlab(*client, forge.url(), "gl");
  auto l = gitlab.list_repos({"build-with-flurry"});
  ASSERT_TRUE(l.has_value()) << l.error().message;
  ASSERT_EQ(l->repos.size(), 120u);
  const auto listings = calls_to(forge, "GET", "/api/v4/projects");
  ASSERT_EQ(listings.size(), 2u);
  EXPECT_EQ(listings[0].query, "membership=true&topic=build-with-flurry&per_page=100&page=1");
  EXPECT_EQ(listings[1].query, "membership=true&topic=build-with-flurry&per_page=100&page=2");
  const auto& first = l->repos.front();
  EXPECT_EQ(first.owner, "group/sub");
  EXPECT_EQ(first.name, "p0");
  EXPECT_EQ(first.full_name(), "group/sub/p0");
  EXPECT_EQ(first.id, 1);
  EXPECT_EQ(first.clone_url, forge.url() + "/group/sub/p0.git");

  // No topic: every membership project, and no topic parameter.
  auto all = gitlab.list_repos({"", {}, {"group/sub/p125"}});
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(names(all->repos), (std::vector<std::string>{"group/sub/p125"}));
  EXPECT_EQ(calls_to(forge, "GET", "/api/v4/projects").back().query, "membership=true&per_page=100&page=2");
}

TEST(GitLabProjects, HooksCarryTheTokenAndPushMergeRequestNoteAndTagEvents) {
  fakes::FakeForge forge;
  forge.add_repository("gitlab", "infra/nix", "hello", {"build-with-flurry"});
  auto client = http::make_client();
  GitLabProjects gitlab(*client, forge.url(), "gl");
  auto listed = gitlab.list_repos({"build-with-flurry"});
  ASSERT_TRUE(listed.has_value());
  ASSERT_EQ(listed->repos.size(), 1u);
  const auto& r = listed->repos[0];
  auto id = gitlab.create_hook(r, {"https://ci.example/webhooks/gitlab", "tok-1"});
  ASSERT_TRUE(id.has_value()) << id.error().message;
  EXPECT_EQ(calls_to(forge, "POST", "/api/v4/projects/1/hooks").size(), 1u);
  auto hooks = forge.hooks("gitlab");
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].owner, "infra/nix");
  EXPECT_EQ(hooks[0].secret, "tok-1");
  EXPECT_EQ(hooks[0].events, (std::vector<std::string>{"push_events", "tag_push_events", "merge_requests_events", "note_events"}));
  auto shown = gitlab.list_hooks(r);
  ASSERT_TRUE(shown.has_value()) << shown.error().message;
  ASSERT_EQ(shown->size(), 1u);
  EXPECT_EQ((*shown)[0].url, "https://ci.example/webhooks/gitlab");
  const HookSpec spec{"https://ci.example/webhooks/gitlab", "tok-1"};
  EXPECT_EQ(decide_hook(*shown, spec, gitlab.hook_events(), ManagedHook{*id, hook_fingerprint(spec)}).action, HookAction::kNone);

  ASSERT_TRUE(gitlab.update_hook(r, *id, {"https://ci.example/webhooks/gitlab", "tok-2"}).has_value());
  EXPECT_EQ(calls_to(forge, "PUT", "/api/v4/projects/1/hooks/" + std::to_string(*id)).size(), 1u);
  EXPECT_EQ(forge.hooks("gitlab")[0].secret, "tok-2");
  EXPECT_EQ(forge.hooks("gitlab").size(), 1u);
}

TEST(GitHubProjects, EveryInstallationsRepositoriesAreListedWithItsOwnToken) {
  fakes::FakeForge forge;
  auto key = test::new_rsa_key_pair();
  forge.act_as_app("4242", key.public_pem, 99, "octo-org");
  for (int i = 0; i < 105; ++i) {
    forge.add_repository("github", "octo-org", "r" + std::to_string(i), i == 3 || i == 104 ? std::vector<std::string>{"build-with-flurry"}
                                                                                           : std::vector<std::string>{"other"});
  }
  auto client = http::make_client();
  ManualClock clock(static_cast<std::int64_t>(std::time(nullptr)) * 1000);
  GitHubAppTokens tokens(*client, clock, {forge.url(), "4242", key.private_pem});
  GitHubProjects github(*client, tokens);
  auto l = github.list_repos({"build-with-flurry"});
  ASSERT_TRUE(l.has_value()) << l.error().message;
  EXPECT_EQ(names(l->repos), (std::vector<std::string>{"octo-org/r3", "octo-org/r104"}));
  EXPECT_EQ(l->repos[0].forge, "github");
  EXPECT_EQ(l->repos[0].clone_url, forge.url() + "/octo-org/r3.git");
  EXPECT_EQ(calls_to(forge, "GET", "/app/installations").size(), 1u);
  EXPECT_EQ(calls_to(forge, "POST", "/app/installations/99/access_tokens").size(), 1u);
  auto pages = calls_to(forge, "GET", "/installation/repositories");
  ASSERT_EQ(pages.size(), 2u);
  EXPECT_EQ(pages[0].query, "per_page=100&page=1");
  EXPECT_EQ(pages[1].query, "per_page=100&page=2");
  ASSERT_EQ(forge.issued_tokens().size(), 1u);
  EXPECT_EQ(pages[0].headers.at("authorization"), "Bearer " + forge.issued_tokens()[0]);
  // No repository hooks on GitHub: the app's webhook brings the events.
  EXPECT_FALSE(github.has_repo_hooks());

  // A second listing reuses the installation token.
  ASSERT_TRUE(github.list_repos({}).has_value());
  EXPECT_EQ(calls_to(forge, "POST", "/app/installations/99/access_tokens").size(), 1u);
  EXPECT_EQ(github.list_repos({})->repos.size(), 105u);
}

TEST(GitHubProjects, ARefusedInstallationIsSkippedAndAnOutageFailsTheListing) {
  auto key = test::new_rsa_key_pair();
  http::testing::FakeHttpClient http;
  ManualClock clock(1'700'000'000'000);
  GitHubAppTokens tokens(http, clock, {"https://api.example", "1", key.private_pem});
  GitHubProjects github(http, tokens);
  const std::string repos = R"({"total_count": 1, "repositories": [{"id": 5, "name": "hello", "owner": {"login": "octo"},
      "clone_url": "https://github.com/octo/hello.git", "html_url": "https://github.com/octo/hello", "default_branch": "trunk",
      "topics": ["build-with-flurry"]}]})";
  http.answers = {http::Response{200, R"([{"id": 1}, {"id": 2}])"},
                  http::Response{403, R"({"message": "This installation has been suspended"})"},
                  http::Response{201, R"({"token": "ghs_two", "expires_at": "2099-01-01T00:00:00Z"})"}, http::Response{200, repos}};
  auto l = github.list_repos({"build-with-flurry"});
  ASSERT_TRUE(l.has_value()) << l.error().message;
  ASSERT_EQ(l->repos.size(), 1u);
  EXPECT_EQ(l->repos[0].full_name(), "octo/hello");
  EXPECT_EQ(l->repos[0].default_branch, "trunk");
  ASSERT_EQ(l->skipped.size(), 1u);
  EXPECT_NE(l->skipped[0].find("installation 1"), std::string::npos);
  EXPECT_EQ(http.requests[3].url, "https://api.example/installation/repositories?per_page=100&page=1");
  EXPECT_EQ(http.requests[3].headers["Authorization"], "Bearer ghs_two");

  http.answers = {http::Response{200, R"([{"id": 2}])"}, http::Response{502, "bad gateway"}};
  auto down = github.list_repos({});
  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.error().code, ErrorCode::kTransient);
  http.answers = {Result<http::Response>(fail(Error::transient("connection refused")))};
  down = github.list_repos({});
  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.error().code, ErrorCode::kTransient);
}
