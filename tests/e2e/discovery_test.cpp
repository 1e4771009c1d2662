// End to end, project discovery: webhook-ingest lists the fake forge's
// repositories ([discovery]), keeps the ones with the topic as projects in
// Redis, creates their Gitea and GitLab webhooks pointing at itself, the
// evaluator ignores pushes of repositories that are no project, and a
// GitHub installation_repositories webhook makes the GitHub App's listing
// run again.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "flurry/core/child.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/core/process.hpp"
#include "flurry/fakes/fake_forge.hpp"
#include "flurry/http/http.hpp"
#include "flurry/stack/stack.hpp"
#include "flurry/state/ids.hpp"
#include "flurry/state/redis_store.hpp"
#include "flurry/test/jwt.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const std::string kSystem = "x86_64-linux";
const std::string kTopic = "build-with-flurry";

json fixture(const std::string& forge, const std::string& name) {
  auto text = read_file(std::string(FLURRY_SOURCE_DIR) + "/tests/fixtures/webhooks/" + forge + "/" + name + ".json");
  EXPECT_TRUE(text.has_value()) << forge << "/" << name;
  return json::parse(text.value_or("{}"));
}

// Waits up to `timeout` for `done`.
template <typename F>
bool eventually(F done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return done();
}

class DiscoveryFlow : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = test::new_rsa_key_pair();
    forge.act_as_app("4242", key.public_pem, 77, "octo-org");
    forge.set_token("gitea", "gitea-token-e2e");
    forge.set_token("gitlab", "gitlab-token-e2e");
    forge.add_repository("gitea", "flurry-org", "hello", {kTopic});
    forge.add_repository("gitea", "flurry-org", "other", {"unrelated"});
    forge.add_repository("gitlab", "infra/nix", "hello", {kTopic});
    forge.add_repository("gitlab", "infra/nix", "other");
    forge.add_repository("github", "octo-org", "hello-world", {kTopic});

    stack::StackOptions o;
    o.state_dir = tmp.file("state");
    o.bin_dir = FLURRY_BINARY_DIR;
    // The hooks point at the ingest itself, so its port is chosen first.
    o.ingest_port = free_tcp_port();
    o.forges["github"] = {forge.url(), "", "4242", key.private_pem, false};
    o.forges["gitea"] = {forge.url(), "gitea-token-e2e"};
    o.forges["gitlab"] = {forge.url(), "gitlab-token-e2e"};
    o.extra_config = {"discovery.webhook_base_url=\"http://127.0.0.1:" + std::to_string(o.ingest_port) + "\"",
                      "discovery.lease=\"1s\""};
    o.env["NIX_CONFIG"] = test::test_nix_config();
    setenv("NIX_CONFIG", o.env["NIX_CONFIG"].c_str(), 1);
    stack_ = std::make_unique<stack::Stack>(o);
    auto r = stack_->start();
    ASSERT_TRUE(r.has_value()) << r.error().message;
    auto s = state::connect_redis({.host = "127.0.0.1", .port = stack_->redis_port()});
    ASSERT_TRUE(s.has_value()) << s.error().message;
    store = std::move(*s);
    repo = tmp.file("repo");
    git({"init", "-q", "-b", "main", repo});
  }
  void TearDown() override {
    if (stack_) {
      EXPECT_TRUE(stack_->stop().empty());
    }
  }

  void git(std::vector<std::string> args) {
    args.insert(args.begin(), "git");
    auto r = default_process_runner().run({.argv = args,
                                           .env = {{"GIT_AUTHOR_NAME", "t"}, {"GIT_AUTHOR_EMAIL", "t@t"},
                                                   {"GIT_COMMITTER_NAME", "t"}, {"GIT_COMMITTER_EMAIL", "t@t"}}});
    ASSERT_TRUE(r && r->ok()) << (r ? r->err : r.error().message);
  }
  std::string commit_flake() {
    const auto nonce = std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    test::write_file(repo + "/flake.nix", R"({
  outputs = { self }: {
    checks.)" + kSystem + R"(.ok = derivation { name = "ok"; system = ")" + kSystem +
                                              R"("; builder = "/bin/sh"; args = [ "-c" "# )" + nonce + R"(
echo ok > $out" ]; };
  };
}
)");
    git({"-C", repo, "add", "-A"});
    git({"-C", repo, "commit", "-q", "-m", "flake"});
    return stack::commit_all(repo, "flake").value_or("");
  }
  int signed_post(const std::string& forge_name, std::map<std::string, std::string> headers, const std::string& body) {
    headers["Content-Type"] = "application/json";
    auto r = http::make_client()->send({.method = "POST", .url = stack_->webhook_url(forge_name), .headers = headers, .body = body});
    return r ? r->status : 0;
  }
  int gitea_push(const std::string& name, const std::string& delivery, const std::string& rev) {
    auto push = fixture("gitea", "push");
    push["after"] = rev;
    push["repository"]["name"] = name;
    push["repository"]["full_name"] = "flurry-org/" + name;
    push["repository"]["clone_url"] = "file://" + repo;
    auto text = push.dump();
    return signed_post("gitea", {{"X-Gitea-Event", "push"}, {"X-Gitea-Delivery", delivery},
                                 {"X-Gitea-Signature", crypto::hmac_sha256_hex(stack_->webhook_secret(), text)}},
                       text);
  }
  std::size_t calls_to(const std::string& path) const {
    std::size_t n = 0;
    for (const auto& c : forge.calls()) n += c.path == path ? 1 : 0;
    return n;
  }
  std::string log_of(const std::string& service) const {
    std::ifstream in(stack_->log_path(service));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  test::TempDir tmp{"flurry-e2e-discovery"};
  fakes::FakeForge forge;
  std::unique_ptr<stack::Stack> stack_;
  std::unique_ptr<state::StateStore> store;
  std::string repo;
};

}  // namespace

TEST_F(DiscoveryFlow, TopicRepositoriesBecomeProjectsWithHooksAndOthersAreIgnored) {
  // At start: the topic repositories are projects and have our hook.
  ASSERT_TRUE(eventually([&] { return forge.hooks("gitea").size() == 1 && forge.hooks("gitlab").size() == 1; }, 20s))
      << "hooks: gitea " << forge.hooks("gitea").size() << ", gitlab " << forge.hooks("gitlab").size() << "; see "
      << stack_->log_path("webhook-ingest");
  const auto gitea_hook = forge.hooks("gitea")[0];
  EXPECT_EQ(gitea_hook.repo, "hello");
  EXPECT_EQ(gitea_hook.url, stack_->webhook_url("gitea"));
  EXPECT_EQ(gitea_hook.secret, stack_->webhook_secret());
  EXPECT_EQ(gitea_hook.content_type, "json");
  EXPECT_TRUE(gitea_hook.active);
  const auto gitlab_hook = forge.hooks("gitlab")[0];
  EXPECT_EQ(gitlab_hook.owner, "infra/nix");
  EXPECT_EQ(gitlab_hook.repo, "hello");
  EXPECT_EQ(gitlab_hook.url, stack_->webhook_url("gitlab"));
  EXPECT_EQ(gitlab_hook.secret, stack_->webhook_secret());
  EXPECT_EQ(*store->is_project("gitea", "flurry-org/hello"), std::optional<bool>(true));
  EXPECT_EQ(*store->is_project("gitea", "flurry-org/other"), std::optional<bool>(false));
  EXPECT_EQ(*store->list_projects("gitlab"), std::vector<std::string>{"infra/nix/hello"});
  EXPECT_EQ(*store->list_projects("github"), std::vector<std::string>{"octo-org/hello-world"});
  // The ingest said so, in its log and metrics.
  EXPECT_TRUE(eventually([&] { return log_of("webhook-ingest").find("discovery.ok") != std::string::npos; }, 5s));
  auto metrics = http::make_client()->send({.url = stack_->service_url("webhook-ingest") + "/metrics"});
  ASSERT_TRUE(metrics.has_value());
  for (const char* line : {"flurry_discovery_runs_total{forge=\"gitea\",result=\"ok\"} 1",
                           "flurry_discovered_projects{forge=\"gitlab\"} 1",
                           "flurry_webhooks_managed_total{action=\"created\",forge=\"gitea\"} 1"}) {
    EXPECT_NE(metrics->body.find(line), std::string::npos) << line << "\n" << metrics->body;
  }

  // A push to the repository that is no project is ignored; one to the
  // project is evaluated.
  const auto rev = commit_flake();
  EXPECT_EQ(gitea_push("other", "disc-other", rev), 202);
  EXPECT_EQ(gitea_push("hello", "disc-hello", rev), 202);
  const auto hello = state::eval_id_for_change("gitea:disc-hello");
  ASSERT_TRUE(eventually(
      [&] {
        auto e = store->get_eval(hello);
        return e && e->has_value() && (*e)->state == state::EvalState::kSucceeded;
      },
      60s))
      << "see " << stack_->log_path("evaluator");
  ASSERT_TRUE(eventually([&] { return log_of("evaluator").find("flurry-org/other is not a project (discovery)") != std::string::npos; }, 10s))
      << "see " << stack_->log_path("evaluator");
  EXPECT_FALSE(store->get_eval(state::eval_id_for_change("gitea:disc-other"))->has_value());

  // Nothing changed: a later refresh writes no hook again. The App gets a
  // repository: GitHub's installation_repositories event refreshes at once.
  const auto listings = calls_to("/installation/repositories");
  EXPECT_GE(listings, 1u);
  forge.add_repository("github", "octo-org", "new-one", {kTopic});
  const std::string body = R"({"action":"added","installation":{"id":77},"repositories_added":[{"full_name":"octo-org/new-one"}]})";
  EXPECT_EQ(signed_post("github", {{"X-GitHub-Event", "installation_repositories"}, {"X-GitHub-Delivery", "disc-install"},
                                   {"X-Hub-Signature-256", "sha256=" + crypto::hmac_sha256_hex(stack_->webhook_secret(), body)}},
                        body),
            202);
  ASSERT_TRUE(eventually([&] { return calls_to("/installation/repositories") > listings; }, 15s))
      << "see " << stack_->log_path("webhook-ingest");
  ASSERT_TRUE(eventually([&] { return store->is_project("github", "octo-org/new-one").value_or(std::nullopt) == true; }, 10s));
  // Gitea and GitLab were not asked again by a GitHub event, and their
  // hooks were written once.
  std::size_t hook_writes = 0;
  for (const auto& c : forge.calls()) hook_writes += c.method != "GET" && c.path.find("/hooks") != std::string::npos ? 1 : 0;
  EXPECT_EQ(hook_writes, 2u);
}
