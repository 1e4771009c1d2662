#include "effects.hpp"

#include <gtest/gtest.h>

#include "flurry/git/testing/fake_git.hpp"

#include <algorithm>
#include <fstream>

#include "flurry/bus/testing/memory_bus.hpp"
#include "flurry/nix/testing/fake_nix_runner.hpp"
#include "flurry/state/testing/memory_store.hpp"

using namespace flurry;
using namespace flurry::effects;

namespace {

using git::testing::FakeGit;

// Records what it was asked to run and answers with a scripted result.
class ScriptedRunner final : public ProcessRunner {
 public:
  Result<ProcessResult> run(const ProcessSpec& spec) override {
    specs.push_back(spec);
    ProcessResult r;
    r.exit_code = exit_code;
    if (spec.on_stdout) spec.on_stdout(output);
    return r;
  }
  std::vector<ProcessSpec> specs;
  int exit_code = 0;
  std::string output = "effect output\n";
};

msg::EvalFinished eval(const std::string& branch = "main") {
  msg::EvalFinished e;
  e.eval_id = "e1";
  e.state = "succeeded";
  e.repo = {"github", "octo", "hello", "https://example.invalid/octo/hello.git", "https://example.invalid/octo/hello", "main"};
  e.ref = "refs/heads/" + branch;
  e.branch = branch;
  e.rev = std::string(40, 'c');
  return e;
}

class Effects : public ::testing::Test {
 protected:
  void SetUp() override {
    nix.json_results["herculesCI"] = std::string(R"({"default":{"deploy":"/nix/store/deploy.drv"}})");
    nix::Derivation d;
    d.path = "/nix/store/deploy.drv";
    d.builder = "/bin/sh";
    d.args = {"-c", "echo deploying"};
    d.env = {{"name", "deploy"}, {"out", "/nix/store/deploy-out"}};
    d.outputs = {{"out", "/nix/store/deploy-out"}};
    d.input_drvs = {"/nix/store/tool.drv"};
    nix.derivations[d.path] = d;
    // Per test: ctest runs these tests in parallel processes.
    std::string unique = ::testing::TempDir() + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    secrets_path = unique + "-octo-secrets.json";
    std::ofstream(secrets_path) << R"({"deploy-key": {"data": {"key": "s3cr3t-deploy-key-value"}}})";
    cfg.work_dir = unique + "-effects-work";
    cfg.secrets["github:octo/*"] = secrets_path;
  }
  EffectsOutcome handle(const msg::EvalFinished& e, std::uint64_t n = 1) {
    return handle_eval_finished(e, n, {store, bus, nix, git, runner, clock}, cfg);
  }
  std::vector<msg::StatusEvent> statuses() {
    std::vector<msg::StatusEvent> out;
    for (const auto& m : bus.published("flurry.status.")) out.push_back(*msg::decode_status_event(m.data));
    return out;
  }
  state::testing::MemoryStore store;
  bus::testing::MemoryBus bus;
  nix::testing::FakeNixRunner nix;
  FakeGit git;
  ScriptedRunner runner;
  ManualClock clock;
  EffectsConfig cfg;
  std::string secrets_path;
};

}  // namespace

TEST_F(Effects, OnlyASuccessfulDefaultBranchPushRunsEffects) {
  git.heads["main"] = std::string(40, 'd');  // its config allows no other branch
  EXPECT_EQ(handle(eval("feature")).result, "not_allowed");
  auto failed = eval();
  failed.state = "failed";
  EXPECT_EQ(handle(failed).result, "not_allowed");
  auto tag = eval();
  tag.branch = "";
  tag.tag = "v1";
  tag.ref = "refs/tags/v1";
  EXPECT_EQ(handle(tag).result, "not_allowed");
  EXPECT_TRUE(runner.specs.empty());
  EXPECT_TRUE(bus.published().empty());
}

TEST_F(Effects, RunsEachEffectInBubblewrapWithSecretsAndReportsSuccess) {
  auto o = handle(eval());
  EXPECT_EQ(o.result, "succeeded");
  EXPECT_EQ(o.effects, 1);
  ASSERT_EQ(runner.specs.size(), 1u);
  const auto& argv = runner.specs[0].argv;
  EXPECT_EQ(argv[0], "bwrap");
  auto has = [&](std::vector<std::string> seq) { return std::search(argv.begin(), argv.end(), seq.begin(), seq.end()) != argv.end(); };
  EXPECT_TRUE(has({"--unshare-all", "--share-net"}));
  EXPECT_TRUE(has({"--ro-bind", "/nix/store", "/nix/store"}));
  EXPECT_TRUE(has({"--setenv", "out", "/build/outputs/out"}));
  EXPECT_TRUE(has({"--setenv", "HERCULES_CI_SECRETS_JSON", "/run/secrets.json"}));
  EXPECT_TRUE(has({"--setenv", "IN_HERCULES_CI_EFFECT", "true"}));
  EXPECT_TRUE(has({"--", "/bin/sh", "-c", "echo deploying"}));
  // The effect's inputs were built first.
  ASSERT_EQ(nix.realised.size(), 1u);
  EXPECT_EQ(nix.realised[0], std::vector<std::string>{"/nix/store/tool.drv"});
  auto fx = *store.list_effects("e1");
  ASSERT_EQ(fx.size(), 1u);
  EXPECT_EQ(fx[0].name, "default.deploy");
  EXPECT_EQ(fx[0].state, "succeeded");
  EXPECT_EQ(fx[0].log, "effect output\n");
  auto s = statuses();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].context, "flurry/effects");
  EXPECT_EQ(s[0].state, msg::StatusState::kPending);
  EXPECT_EQ(s[1].state, msg::StatusState::kSuccess);
  // The herculesCI arguments carry the rev, embedded as a Nix string.
  ASSERT_EQ(nix.json_applies.size(), 1u);
  EXPECT_NE(nix.json_applies[0].find("builtins.fromJSON"), std::string::npos);
  EXPECT_NE(nix.json_applies[0].find(std::string(40, 'c')), std::string::npos);
}

TEST_F(Effects, SecretsNeverReachTheStoredLog) {
  runner.output = "leaking s3cr3t-deploy-key-value\n";
  handle(eval());
  auto fx = *store.list_effects("e1");
  EXPECT_EQ(fx[0].log.find("s3cr3t-deploy-key-value"), std::string::npos);
  EXPECT_NE(fx[0].log.find("[redacted]"), std::string::npos);
}

TEST_F(Effects, ExactRepositorySecretsBeatOwnerWildcards) {
  cfg.secrets["github:octo/hello"] = "/exact.json";
  EXPECT_EQ(secrets_file_for(cfg, eval().repo), "/exact.json");
  cfg.secrets.erase("github:octo/hello");
  EXPECT_EQ(secrets_file_for(cfg, eval().repo), secrets_path);
  msg::Repo other{"github", "someone", "x", "", "", "main"};
  EXPECT_EQ(secrets_file_for(cfg, other), "");
}

TEST_F(Effects, FailingEffectReportsFailureNamingIt) {
  runner.exit_code = 1;
  auto o = handle(eval());
  EXPECT_EQ(o.result, "failed");
  auto s = statuses();
  EXPECT_EQ(s.back().state, msg::StatusState::kFailure);
  EXPECT_NE(s.back().description.find("default.deploy"), std::string::npos);
  EXPECT_EQ((*store.list_effects("e1"))[0].state, "failed");
}

TEST_F(Effects, RedeliveryAfterCompletionDoesNotRunAgain) {
  handle(eval());
  auto o = handle(eval(), 2);
  EXPECT_EQ(o.result, "replayed");
  EXPECT_EQ(runner.specs.size(), 1u);
}

// A store that lost the record of an effect's run (a Redis restarted
// without its last writes) must not make a redelivery report every effect
// done: an effect without an end on record runs.
TEST_F(Effects, ARedeliveryRunsEveryEffectWhoseEndTheStoreLost) {
  nix.json_results["herculesCI"] = std::string(R"({"default":{"deploy":"/nix/store/deploy.drv","notify":"/nix/store/deploy.drv"}})");
  handle(eval());
  ASSERT_EQ(runner.specs.size(), 2u);
  // Only the first effect's records survived.
  state::testing::MemoryStore lossy;
  ASSERT_TRUE(lossy.put_effect((*store.list_effects("e1"))[0]).has_value());
  bus.clear();
  clock.advance_ms(5000);
  auto o = handle_eval_finished(eval(), 2, {lossy, bus, nix, git, runner, clock}, cfg);
  EXPECT_EQ(o.result, "succeeded");
  EXPECT_EQ(runner.specs.size(), 4u);
  EXPECT_EQ(lossy.list_effects("e1")->size(), 2u);
  EXPECT_EQ(statuses().back().description, "2 effects succeeded");
}

TEST_F(Effects, NoHerculesCIOutputMeansNothingToDo) {
  nix.json_results.clear();
  auto o = handle(eval());
  EXPECT_EQ(o.result, "none");
  EXPECT_TRUE(bus.published().empty());
}

TEST(HerculesArgs, HostileBranchNamesAreDataNotCode) {
  auto e = eval("x\"; builtins.abort \"pwned");
  e.repo.default_branch = e.branch;
  auto expr = list_effects_expression(herculesci_args_json(e));
  // The branch only appears inside the escaped string literal.
  EXPECT_EQ(expr.find("x\"; builtins.abort"), std::string::npos);
  EXPECT_NE(expr.find("x\\\\\\\"; builtins.abort"), std::string::npos) << expr;
}

TEST_F(Effects, OtherBranchesRunEffectsOnlyWhenTheDefaultBranchConfigAllowsThem) {
  git.heads["main"] = std::string(40, 'd');
  // No config on the default branch: a feature branch runs nothing.
  EXPECT_EQ(handle(eval("release-1")).result, "not_allowed");
  git.files["flurry.toml"] = "effects_branches = [\"release-*\"]\n";
  EXPECT_EQ(handle(eval("feature")).result, "not_allowed");
  auto e = eval("release-1");
  e.eval_id = "e2";
  EXPECT_EQ(handle(e).result, "succeeded");
  EXPECT_EQ(runner.specs.size(), 1u);
}

TEST_F(Effects, PullRequestsRunEffectsOnlyWhenTheDefaultBranchConfigAllowsThem) {
  git.heads["main"] = std::string(40, 'd');
  auto pr = eval();
  pr.ref = "refs/pull/7/head";
  pr.branch.clear();
  // No config: not allowed. effects_branches does not cover pull requests.
  EXPECT_EQ(handle(pr).result, "not_allowed");
  git.files["flurry.toml"] = "effects_branches = [\"*\"]\n";
  EXPECT_EQ(handle(pr).result, "not_allowed");
  git.files["flurry.toml"] = "effects_on_pull_requests = true\n";
  EXPECT_EQ(handle(pr).result, "succeeded");
  EXPECT_EQ(runner.specs.size(), 1u);
  // Tags never run effects, whatever the config says.
  auto tag = eval();
  tag.eval_id = "e3";
  tag.ref = "refs/tags/v1";
  tag.branch.clear();
  tag.tag = "v1";
  EXPECT_EQ(handle(tag).result, "not_allowed");
}

TEST_F(Effects, AnUnreachableDefaultBranchIsRetriedNotSkipped) {
  auto o = handle(eval("release-1"));  // heads has no "main"
  EXPECT_EQ(o.result, "retry");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kNak);
}
