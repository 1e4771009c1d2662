// Project discovery on fakes: the fake forge over loopback (Gitea and
// GitLab clients as in production) or a scripted source, MemoryStore as
// the registry, a manual clock.
#include "discovery.hpp"

#include <gtest/gtest.h>

#include "flurry/bus/testing/memory_bus.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/fakes/fake_forge.hpp"
#include "flurry/state/testing/memory_store.hpp"
#include "webhook.hpp"

using namespace flurry;
using namespace flurry::ingest;
using namespace std::chrono_literals;

namespace {

const std::string kSecret = "hook-secret-1";
const std::string kBase = "https://ci.example.org/";

// A forge whose listing and hooks a test scripts.
class ScriptedSource final : public forge::ProjectSource {
 public:
  const std::string& forge() const override { return name_; }
  Result<forge::Listing> list_repos(const forge::RepoFilter&) override {
    if (list_error) return fail(*list_error);
    return forge::Listing{repos, {}};
  }
  bool has_repo_hooks() const override { return true; }
  std::vector<std::string> hook_events() const override { return {"push"}; }
  Result<std::vector<forge::RepoHook>> list_hooks(const forge::DiscoveredRepo& r) override {
    if (auto e = hook_errors.find(r.full_name()); e != hook_errors.end()) return fail(e->second);
    ++hook_lists;
    return hooks[r.full_name()];
  }
  Result<std::int64_t> create_hook(const forge::DiscoveredRepo& r, const forge::HookSpec& spec) override {
    writes.push_back("create " + r.full_name());
    hooks[r.full_name()].push_back({next_id, spec.url, true, {"push"}});
    return next_id++;
  }
  Result<void> update_hook(const forge::DiscoveredRepo& r, std::int64_t id, const forge::HookSpec& spec) override {
    writes.push_back("update " + r.full_name() + " " + std::to_string(id));
    for (auto& h : hooks[r.full_name()]) {
      if (h.id == id) h.url = spec.url;
    }
    return {};
  }

  std::vector<forge::DiscoveredRepo> repos;
  std::optional<Error> list_error;
  std::map<std::string, std::vector<forge::RepoHook>> hooks;
  std::map<std::string, Error> hook_errors;
  std::vector<std::string> writes;
  int hook_lists = 0;
  std::int64_t next_id = 100;

 private:
  std::string name_ = "gitea";
};

forge::DiscoveredRepo repo(const std::string& owner, const std::string& name) {
  forge::DiscoveredRepo r;
  r.forge = "gitea";
  r.owner = owner;
  r.name = name;
  return r;
}

DiscoveryConfig config_for(std::vector<std::string> forges, std::string base = kBase) {
  DiscoveryConfig c;
  c.forges = std::move(forges);
  c.webhook_base_url = std::move(base);
  return c;
}

std::vector<fakes::RecordedCall> writes_of(const fakes::FakeForge& forge) {
  std::vector<fakes::RecordedCall> out;
  for (const auto& c : forge.calls()) {
    if (c.method != "GET") out.push_back(c);
  }
  return out;
}

}  // namespace

TEST(DiscoveryConfigTest, DefaultsCoverEveryForgeWithWebhooksAndBadValuesRefuseToStart) {
  const std::vector<DiscoverableForge> available = {{"github", false, true}, {"gitea", true, true}, {"gitlab", true, false}};
  EXPECT_FALSE(read_discovery_config(Config::from_string(""), available).has_value());
  auto d = read_discovery_config(Config::from_string("[discovery]\n"), available);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->interval, std::chrono::hours(12));
  EXPECT_EQ(d->lease, std::chrono::seconds(60));
  EXPECT_EQ(d->filter.topic, "build-with-flurry");
  EXPECT_TRUE(d->webhook_base_url.empty());
  EXPECT_EQ(d->forges, (std::vector<std::string>{"gitea", "github"}));  // gitlab: no webhook secret here

  d = read_discovery_config(Config::from_string(R"([discovery]
interval = "30m"
topic = ""
user_allowlist = ["org"]
repo_allowlist = ["friend/tool"]
webhook_base_url = "https://ci.example.org/"
forges = ["gitea"]
)"),
                            available);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->interval, std::chrono::minutes(30));
  EXPECT_EQ(d->filter.topic, "");
  EXPECT_EQ(d->filter.user_allowlist, std::vector<std::string>{"org"});
  EXPECT_EQ(d->filter.repo_allowlist, std::vector<std::string>{"friend/tool"});
  EXPECT_EQ(d->webhook_base_url, "https://ci.example.org");
  EXPECT_EQ(d->forges, std::vector<std::string>{"gitea"});
  EXPECT_EQ(hook_url(d->webhook_base_url, "gitea"), "https://ci.example.org/webhooks/gitea");

  for (const char* bad : {"[discovery]\nintervall = \"1h\"\n", "[discovery]\ninterval = \"30s\"\n", "[discovery]\ninterval = \"soon\"\n",
                          "[discovery]\nwebhook_base_url = \"ftp://x\"\n", "[discovery]\nwebhook_base_url = \"https://x/?a=b\"\n",
                          "[discovery]\nwebhook_base_url = \"https:///path\"\n", "[discovery]\nrepo_allowlist = [\"no-slash\"]\n",
                          "[discovery]\nforges = [\"bitbucket\"]\n",
                          // Hooks on GitLab need the secret its webhooks are checked with.
                          "[discovery]\nforges = [\"gitlab\"]\nwebhook_base_url = \"https://ci.example.org\"\n"}) {
    EXPECT_THROW(read_discovery_config(Config::from_string(bad), available), ConfigError) << bad;
  }
  // Without hooks, GitLab's list alone needs no secret.
  EXPECT_EQ(read_discovery_config(Config::from_string("[discovery]\nforges = [\"gitlab\"]\n"), available)->forges,
            std::vector<std::string>{"gitlab"});
}

TEST(DiscoveryTest, TopicProjectsGetAHookOnceAndASecondRefreshWritesNothing) {
  fakes::FakeForge forge;
  forge.set_token("gitea", "gt");
  forge.add_repository("gitea", "org", "project", {"build-with-flurry"});
  forge.add_repository("gitea", "org", "plain", {"docs"});
  auto client = http::make_client();
  forge::GiteaProjects gitea(*client, forge.url(), "gt");
  state::testing::MemoryStore store;
  ManualClock clock(1'000'000);
  Discovery discovery(config_for({"gitea"}), {{"gitea", {&gitea, kSecret}}}, {store, clock});

  auto o = discovery.refresh("gitea");
  EXPECT_EQ(o.result, "ok") << (o.errors.empty() ? "" : o.errors[0]);
  EXPECT_EQ(o.projects, 1);
  EXPECT_EQ(o.hooks_created, 1);
  EXPECT_EQ(*store.is_project("gitea", "org/project"), std::optional<bool>(true));
  EXPECT_EQ(*store.is_project("gitea", "org/plain"), std::optional<bool>(false));
  auto hooks = forge.hooks("gitea");
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].repo, "project");
  EXPECT_EQ(hooks[0].url, "https://ci.example.org/webhooks/gitea");
  EXPECT_EQ(hooks[0].secret, kSecret);
  EXPECT_TRUE(hooks[0].active);
  // What is remembered names the hook, not the secret.
  auto memory = store.get_forge_ref(hook_memory_key("gitea", "org/project"));
  ASSERT_TRUE(memory.has_value() && memory->has_value());
  EXPECT_EQ((*memory)->find(kSecret), std::string::npos);
  EXPECT_EQ((*memory)->rfind(std::to_string(hooks[0].id) + " ", 0), 0u);

  // Nothing changed: the second refresh (a later lease window) only reads.
  clock.advance_ms(61'000);
  const auto writes = writes_of(forge).size();
  o = discovery.refresh("gitea");
  EXPECT_EQ(o.result, "ok");
  EXPECT_EQ(o.hooks_created + o.hooks_updated, 0);
  EXPECT_EQ(o.hooks_unchanged, 1);
  EXPECT_EQ(writes_of(forge).size(), writes);

  // The secret rotates: the same hook is updated in place.
  Discovery rotated(config_for({"gitea"}), {{"gitea", {&gitea, "hook-secret-2"}}}, {store, clock});
  clock.advance_ms(61'000);
  o = rotated.refresh("gitea");
  EXPECT_EQ(o.hooks_updated, 1) << (o.errors.empty() ? "" : o.errors[0]);
  ASSERT_EQ(forge.hooks("gitea").size(), 1u);
  EXPECT_EQ(forge.hooks("gitea")[0].secret, "hook-secret-2");
  ASSERT_EQ(o.hooks_written.size(), 1u);
  EXPECT_EQ(o.hooks_written[0], "org/project: updated (the secret or URL changed)");
  EXPECT_EQ(o.hooks_written[0].find("hook-secret"), std::string::npos);

  // The base URL moves: still one hook, now at the new URL.
  Discovery moved(config_for({"gitea"}, "https://new.example.org"), {{"gitea", {&gitea, "hook-secret-2"}}}, {store, clock});
  clock.advance_ms(61'000);
  o = moved.refresh("gitea");
  EXPECT_EQ(o.hooks_updated, 1);
  ASSERT_EQ(forge.hooks("gitea").size(), 1u);
  EXPECT_EQ(forge.hooks("gitea")[0].url, "https://new.example.org/webhooks/gitea");

}

TEST(DiscoveryTest, GitLabProjectsOfTheTopicGetTheirHookWithTheToken) {
  fakes::FakeForge forge;
  forge.set_token("gitlab", "gl");
  forge.add_repository("gitlab", "infra/nix", "hello", {"build-with-flurry"});
  forge.add_repository("gitlab", "infra/nix", "other");
  auto client = http::make_client();
  forge::GitLabProjects gitlab(*client, forge.url(), "gl");
  state::testing::MemoryStore store;
  ManualClock clock(1'000'000);
  Discovery discovery(config_for({"gitlab"}), {{"gitlab", {&gitlab, kSecret}}}, {store, clock});
  auto o = discovery.refresh("gitlab");
  EXPECT_EQ(o.result, "ok") << (o.errors.empty() ? "" : o.errors[0]);
  EXPECT_EQ(*store.list_projects("gitlab"), std::vector<std::string>{"infra/nix/hello"});
  auto hooks = forge.hooks("gitlab");
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].url, "https://ci.example.org/webhooks/gitlab");
  EXPECT_EQ(hooks[0].secret, kSecret);
  EXPECT_EQ(hooks[0].events, (std::vector<std::string>{"push_events", "tag_push_events", "merge_requests_events", "note_events"}));
  clock.advance_ms(61'000);
  const auto writes = writes_of(forge).size();
  EXPECT_EQ(discovery.refresh("gitlab").hooks_unchanged, 1);
  EXPECT_EQ(writes_of(forge).size(), writes);
}

TEST(DiscoveryTest, WithoutABaseUrlOnlyTheListIsKept) {
  ScriptedSource source;
  source.repos = {repo("org", "a"), repo("org", "b")};
  state::testing::MemoryStore store;
  ManualClock clock(1'000'000);
  Discovery discovery(config_for({"gitea"}, ""), {{"gitea", {&source, kSecret}}}, {store, clock});
  auto o = discovery.refresh("gitea");
  EXPECT_EQ(o.result, "ok");
  EXPECT_EQ(o.projects, 2);
  EXPECT_EQ(source.hook_lists, 0);
  EXPECT_TRUE(source.writes.empty());
  EXPECT_EQ(*store.list_projects("gitea"), (std::vector<std::string>{"org/a", "org/b"}));
}

TEST(DiscoveryTest, AFailedListingKeepsTheOldListAndARefusedHookSkipsOnlyItsProject) {
  ScriptedSource source;
  source.repos = {repo("org", "a"), repo("org", "denied"), repo("org", "c")};
  state::testing::MemoryStore store;
  ManualClock clock(1'000'000);
  Discovery discovery(config_for({"gitea"}), {{"gitea", {&source, kSecret}}}, {store, clock});
  source.hook_errors.emplace("org/denied", Error::rejected("Gitea answered 403: forbidden"));
  auto o = discovery.refresh("gitea");
  EXPECT_EQ(o.result, "partial");
  EXPECT_EQ(o.projects, 3);
  EXPECT_EQ(o.hooks_created, 2);
  ASSERT_EQ(o.errors.size(), 1u);
  EXPECT_EQ(o.errors[0], "org/denied: Gitea answered 403: forbidden");
  EXPECT_EQ(source.writes, (std::vector<std::string>{"create org/a", "create org/c"}));
  EXPECT_EQ(*store.is_project("gitea", "org/denied"), std::optional<bool>(true));  // still a project

  // The forge is down: nothing is replaced.
  source.list_error = Error::transient("Gitea did not answer: connection refused");
  clock.advance_ms(61'000);
  o = discovery.refresh("gitea");
  EXPECT_EQ(o.result, "failed");
  EXPECT_EQ(*store.list_projects("gitea"), (std::vector<std::string>{"org/a", "org/c", "org/denied"}));

  // A forge that stops answering while hooks sync ends the syncs there.
  source.list_error.reset();
  source.hook_errors.clear();
  source.hooks.clear();
  source.writes.clear();
  source.hook_errors.emplace("org/a", Error::transient("Gitea answered 502: bad gateway"));
  clock.advance_ms(61'000);
  o = discovery.refresh("gitea");
  EXPECT_EQ(o.result, "partial");
  EXPECT_TRUE(source.writes.empty());
  ASSERT_EQ(o.errors.size(), 2u);
  EXPECT_EQ(o.errors[1], "hooks of 2 more projects not synced");

  // The store is down: failed, nothing written to the forge.
  store.set_down(true);
  clock.advance_ms(61'000);
  EXPECT_EQ(discovery.refresh("gitea").result, "failed");
  EXPECT_TRUE(source.writes.empty());
}

TEST(DiscoveryTest, RefreshesAtStartEveryIntervalAndWhenAsked) {
  ScriptedSource source;
  source.repos = {repo("org", "a")};
  state::testing::MemoryStore store;
  ManualClock clock(1'000'000);
  auto cfg = config_for({"gitea"}, "");
  cfg.interval = std::chrono::hours(1);
  Discovery discovery(cfg, {{"gitea", {&source, kSecret}}}, {store, clock});
  auto first = discovery.tick();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].trigger, "start");
  EXPECT_EQ(first[0].result, "ok");
  EXPECT_TRUE(discovery.tick().empty());  // not due
  clock.advance_ms(30 * 60 * 1000);
  EXPECT_TRUE(discovery.tick().empty());

  // A webhook asks: refreshed at the next tick, outside the interval.
  EXPECT_TRUE(discovery.request("gitea"));
  EXPECT_FALSE(discovery.request("gitlab"));  // not discovered
  auto asked = discovery.tick();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].trigger, "webhook");
  EXPECT_EQ(asked[0].result, "ok");

  // Asked again within the same lease window: it waits for the next one.
  EXPECT_TRUE(discovery.request("gitea"));
  auto busy = discovery.tick();
  ASSERT_EQ(busy.size(), 1u);
  EXPECT_EQ(busy[0].result, "busy");
  clock.advance_ms(60'000);
  auto later = discovery.tick();
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].trigger, "webhook");
  EXPECT_EQ(later[0].result, "ok");

  // An hour after the last refresh: the interval's.
  clock.advance_ms(60 * 60 * 1000);
  auto periodic = discovery.tick();
  ASSERT_EQ(periodic.size(), 1u);
  EXPECT_EQ(periodic[0].trigger, "interval");

  // A failure is retried within minutes, not after the interval.
  source.list_error = Error::transient("down");
  clock.advance_ms(60 * 60 * 1000);
  ASSERT_EQ(discovery.tick()[0].result, "failed");
  source.list_error.reset();
  clock.advance_ms(5 * 60 * 1000);
  auto retried = discovery.tick();
  ASSERT_EQ(retried.size(), 1u);
  EXPECT_EQ(retried[0].result, "ok");
}

TEST(DiscoveryTest, TwoInstancesShareTheLeaseSoOnlyOneRefreshes) {
  ScriptedSource source;
  source.repos = {repo("org", "a")};
  state::testing::MemoryStore store;
  ManualClock clock(1'000'000);
  Discovery a(config_for({"gitea"}), {{"gitea", {&source, kSecret}}}, {store, clock});
  Discovery b(config_for({"gitea"}), {{"gitea", {&source, kSecret}}}, {store, clock});
  EXPECT_EQ(a.tick()[0].result, "ok");
  EXPECT_EQ(b.tick()[0].result, "busy");  // started together: a's refresh counts for b
  EXPECT_EQ(source.writes.size(), 1u);
  clock.advance_ms(61'000);
  EXPECT_TRUE(b.tick().empty());  // b's next refresh is an interval away
}

TEST(DiscoveryTest, GitHubInstallationEventsAskForARefreshAndAnswer202) {
  bus::testing::MemoryBus bus;
  ManualClock clock(1000);
  std::vector<std::string> asked;
  RefreshProjects refresh = [&](const std::string& forge) {
    asked.push_back(forge);
    return true;
  };
  const std::string secret = "gh-secret";
  auto request = [&](const std::string& event, const std::string& body) {
    http::Request r;
    r.method = "POST";
    r.path = "/webhooks/github";
    r.body = body;
    r.headers["x-hub-signature-256"] = "sha256=" + crypto::hmac_sha256_hex(secret, body);
    r.headers["x-github-event"] = event;
    r.headers["x-github-delivery"] = "d-" + event;
    return r;
  };
  auto o = handle_webhook(github_dialect(), request("installation_repositories", R"({"action":"added","installation":{"id":1}})"), secret,
                          {bus, clock, refresh});
  EXPECT_EQ(o.response.status, 202);
  EXPECT_EQ(o.result, "refresh");
  EXPECT_EQ(o.detail, "installation_repositories added: projects will be refreshed");
  o = handle_webhook(github_dialect(), request("installation", R"({"action":"created"})"), secret, {bus, clock, refresh});
  EXPECT_EQ(o.result, "refresh");
  EXPECT_EQ(asked, (std::vector<std::string>{"github", "github"}));
  EXPECT_TRUE(bus.published().empty());
  // Without discovery: answered and ignored.
  o = handle_webhook(github_dialect(), request("installation", R"({"action":"deleted"})"), secret, {bus, clock});
  EXPECT_EQ(o.response.status, 202);
  EXPECT_EQ(o.result, "ignored");
  // Still signed like every other event.
  auto unsigned_req = request("installation", "{}");
  unsigned_req.headers["x-hub-signature-256"] = "sha256=" + std::string(64, '0');
  EXPECT_EQ(handle_webhook(github_dialect(), unsigned_req, secret, {bus, clock, refresh}).response.status, 401);
  EXPECT_EQ(asked.size(), 2u);
}
