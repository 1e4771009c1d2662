// End to end, pull-based: a plain git repository ([poll.<name>], a file://
// URL, no forge and no webhook) polled by webhook-ingest, through the whole
// stack (real NATS, Redis, nix, git), to the jobs' final states in Redis.
#include <gtest/gtest.h>

#include <thread>

#include "flurry/core/config.hpp"
#include "flurry/core/process.hpp"
#include "flurry/http/http.hpp"
#include "flurry/stack/stack.hpp"
#include "flurry/state/ids.hpp"
#include "flurry/state/redis_store.hpp"
#include "flurry/test/servers.hpp"
#include "poller.hpp"

using namespace flurry;
using namespace std::chrono_literals;

namespace {

const std::string kSystem = "x86_64-linux";

// The same head always has the same change id, so the eval id is known
// before the eval exists.
using ingest::poll_change_id;

class PollFlows : public ::testing::Test {
 protected:
  void SetUp() override {
    repo = tmp.file("repo");
    git({"init", "-q", "-b", "main", repo});
  }
  void TearDown() override {
    if (stack_) {
      EXPECT_TRUE(stack_->stop().empty());
    }
  }

  void start() {
    stack::StackOptions o;
    o.state_dir = tmp.file("state");
    o.bin_dir = FLURRY_BINARY_DIR;
    o.env["NIX_CONFIG"] = test::test_nix_config();
    setenv("NIX_CONFIG", o.env["NIX_CONFIG"].c_str(), 1);
    o.extra_config = {
        "webhook-ingest.poll_jitter=\"200ms\"",
        "poll.hello.url=\"file://" + repo + "\"",
        "poll.hello.interval=\"1s\"",
        "branches.releases.match_glob=\"release-*\"",
    };
    stack_ = std::make_unique<stack::Stack>(o);
    auto r = stack_->start();
    ASSERT_TRUE(r.has_value()) << r.error().message;
    auto s = state::connect_redis({.host = "127.0.0.1", .port = stack_->redis_port()});
    ASSERT_TRUE(s.has_value()) << s.error().message;
    store = std::move(*s);
  }

  void git(std::vector<std::string> args) {
    args.insert(args.begin(), "git");
    auto r = default_process_runner().run({.argv = args,
                                           .env = {{"GIT_AUTHOR_NAME", "t"}, {"GIT_AUTHOR_EMAIL", "t@t"},
                                                   {"GIT_COMMITTER_NAME", "t"}, {"GIT_COMMITTER_EMAIL", "t@t"}}});
    ASSERT_TRUE(r && r->ok()) << (r ? r->err : r.error().message);
  }
  // Commits `files` on `branch` (created from the current one if new).
  std::string commit(const std::string& branch, const std::map<std::string, std::string>& files) {
    git({"-C", repo, "checkout", "-q", "-B", branch});
    for (const auto& [name, text] : files) test::write_file(repo + "/" + name, text);
    git({"-C", repo, "add", "-A"});
    git({"-C", repo, "commit", "-q", "-m", branch});
    auto rev = stack::commit_all(repo, branch);
    return rev.value_or("");
  }
  // A flake with check `ok` and, when asked, `fail`; the nonce makes every
  // derivation new to the store.
  static std::string flake(bool failing, const std::string& nonce) {
    return R"({
  outputs = { self }: let
    mk = name: script: derivation { inherit name; system = ")" + kSystem + R"("; builder = "/bin/sh"; args = [ "-c" ("# )" + nonce + R"(
" + script) ]; };
  in { checks.)" + kSystem + R"( = { ok = mk "ok" "echo ok > $out"; })" + (failing ? R"( // { fail = mk "fail" "exit 3"; })" : "") +
           R"(; };
}
)";
  }
  static std::string nonce() { return std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()); }

  // Waits until the eval of the poller's change for `rev` on `branch` has
  // ended, and returns it with its jobs by check name.
  std::pair<state::EvalRecord, std::map<std::string, state::JobRecord>> ended(const std::string& branch, const std::string& rev) {
    const auto eval_id = state::eval_id_for_change(poll_change_id("hello", branch, rev));
    const auto deadline = std::chrono::steady_clock::now() + 180s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto e = store->get_eval(eval_id);
      if (e && e->has_value() && (*e)->state != state::EvalState::kEvaluating && (*e)->state != state::EvalState::kBuilding) {
        std::map<std::string, state::JobRecord> jobs;
        auto listed = store->list_jobs(eval_id);
        EXPECT_TRUE(listed.has_value());
        for (const auto& j : listed.value_or(std::vector<state::JobRecord>{})) {
          jobs[j.attr.substr(j.attr.rfind('.') + 1)] = j;
        }
        return {**e, jobs};
      }
      auto dead = stack_->dead_children();
      if (!dead.empty()) {
        ADD_FAILURE() << dead[0] << " died; see " << stack_->log_path(dead[0]);
        return {};
      }
      std::this_thread::sleep_for(200ms);
    }
    ADD_FAILURE() << "timed out waiting for the eval of " << branch << " at " << rev << "; see " << stack_->log_path("webhook-ingest");
    return {};
  }
  bool has_eval(const std::string& branch, const std::string& rev) {
    auto e = store->get_eval(state::eval_id_for_change(poll_change_id("hello", branch, rev)));
    EXPECT_TRUE(e.has_value());
    return e && e->has_value();
  }

  test::TempDir tmp{"flurry-e2e-poll"};
  std::unique_ptr<stack::Stack> stack_;
  std::unique_ptr<state::StateStore> store;
  std::string repo;
};

}  // namespace

TEST_F(PollFlows, PolledBranchesTheRulesSelectAreBuiltAndOthersAreNot) {
  const auto rev1 = commit("main", {{"flake.nix", flake(true, nonce())}});
  const auto wip1 = commit("wip", {{"wip.txt", "1\n"}});  // no rule selects it
  git({"-C", repo, "checkout", "-q", "main"});
  start();

  // The first poll publishes main's head: evaluated, one check passes, one fails.
  auto [eval1, jobs1] = ended("main", rev1);
  EXPECT_EQ(eval1.repo.forge, "git");
  EXPECT_EQ(eval1.repo.owner, "poll");
  EXPECT_EQ(eval1.repo.name, "hello");
  EXPECT_EQ(eval1.branch, "main");
  EXPECT_EQ(eval1.rev, rev1);
  EXPECT_EQ(eval1.state, state::EvalState::kFailed);
  ASSERT_EQ(jobs1.size(), 2u);
  EXPECT_EQ(jobs1["ok"].state, msg::JobState::kSucceeded) << jobs1["ok"].error;
  EXPECT_EQ(jobs1["fail"].state, msg::JobState::kFailed);

  // New commits on main, on the unselected branch and on a rule-matching one.
  const auto rev2 = commit("main", {{"flake.nix", flake(false, nonce())}});
  const auto wip2 = commit("wip", {{"wip.txt", "2\n"}});
  git({"-C", repo, "checkout", "-q", "main"});
  const auto rel = commit("release-1", {{"flake.nix", flake(false, nonce())}});
  auto [eval2, jobs2] = ended("main", rev2);
  EXPECT_EQ(eval2.state, state::EvalState::kSucceeded);
  ASSERT_EQ(jobs2.size(), 1u);
  EXPECT_EQ(jobs2["ok"].state, msg::JobState::kSucceeded) << jobs2["ok"].error;
  auto [eval3, jobs3] = ended("release-1", rel);
  EXPECT_EQ(eval3.state, state::EvalState::kSucceeded);
  EXPECT_EQ(eval3.branch, "release-1");

  // A few more polls: the unselected branch never became an eval.
  std::this_thread::sleep_for(3s);
  EXPECT_FALSE(has_eval("wip", wip1));
  EXPECT_FALSE(has_eval("wip", wip2));
  // Nor did the ingest ever publish it (the evaluator would have ignored it).
  const auto ingest_log = read_file(stack_->log_path("webhook-ingest")).value_or("");
  EXPECT_NE(ingest_log.find(poll_change_id("hello", "main", rev2)), std::string::npos);
  EXPECT_EQ(ingest_log.find(poll_change_id("hello", "wip", wip1)), std::string::npos);
  EXPECT_EQ(ingest_log.find(poll_change_id("hello", "wip", wip2)), std::string::npos);
  // main's first head stayed one eval (no republish under another id).
  EXPECT_EQ(store->get_eval(state::eval_id_for_change(poll_change_id("hello", "main", rev1))).value()->state, state::EvalState::kFailed);

  auto metrics = http::make_client()->send({.method = "GET", .url = stack_->service_url("webhook-ingest") + "/metrics"});
  ASSERT_TRUE(metrics.has_value());
  EXPECT_NE(metrics->body.find("flurry_polls_total{repo=\"hello\",result=\"changed\"}"), std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("flurry_polls_total{repo=\"hello\",result=\"unchanged\"}"), std::string::npos);
  EXPECT_NE(metrics->body.find("flurry_poll_duration_seconds"), std::string::npos);
}
