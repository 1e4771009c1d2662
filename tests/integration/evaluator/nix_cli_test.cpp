// CliNixRunner on real nix (2.8, local store): building by .drv path with
// streamed logs and nix's own time limits, derivation queries, realise,
// copy to a file:// binary cache, eval_json.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>

#include "flurry/core/text.hpp"
#include "flurry/nix/cli_nix_runner.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using namespace flurry::nix;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

class NixCli : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("NIX_CONFIG", test::test_nix_config().c_str(), 1);
    std::random_device rd;
    nonce = std::to_string(rd()) + "-" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  }
  // Instantiates `derivation { name; builder = /bin/sh; args = [-c script]; }`
  // (with the nonce, so outputs are always fresh) and returns its drvPath.
  std::string drv(const std::string& name, const std::string& script) {
    std::string expr = "(derivation { name = " + text::nix_string_literal(name) +
                       "; system = \"x86_64-linux\"; builder = \"/bin/sh\"; args = [ \"-c\" " +
                       text::nix_string_literal("echo " + nonce + " >/dev/null; " + script) + " ]; }).drvPath";
    auto r = runner.run({.argv = {"nix", "eval", "--raw", "--impure", "--expr", expr}, .timeout = std::chrono::minutes(1)});
    EXPECT_TRUE(r && r->ok()) << (r ? r->err : r.error().message);
    return r ? text::trim(r->out) : "";
  }

  test::TempDir tmp{"flurry-nix-it"};
  PosixProcessRunner runner;
  CliNixRunner nix{runner};
  std::string nonce;
};

}  // namespace

TEST_F(NixCli, BuildsADerivationStreamingItsLogAndReturnsItsOutputs) {
  auto d = drv("hello-1.0", "echo building-hello; printf '\\033[32mgreen\\033[0m\\n'; echo hi > $out");
  std::mutex mu;
  std::string log;
  auto r = nix.build({.drv_path = d, .timeout = std::chrono::minutes(1), .on_log = [&](std::string_view s) {
                        std::lock_guard lock(mu);
                        log += s;
                      }});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->outcome, BuildResult::Outcome::kSucceeded) << r->error;
  ASSERT_EQ(r->outputs.size(), 1u);
  EXPECT_THAT(r->outputs.at("out"), StartsWith("/nix/store/"));
  EXPECT_THAT(log, HasSubstr("hello> building-hello\n"));
  // The builder's colours reach the log (nix strips them from its plain
  // log formats on a pipe), with nix's prefix: the name without version.
  EXPECT_THAT(log, HasSubstr("hello> \x1b[32mgreen\x1b[0m\n"));
  EXPECT_THAT(log, HasSubstr("building '" + d + "'...\n"));
  EXPECT_EQ(log.find("@nix "), std::string::npos) << log;
  auto invalid = nix.invalid_paths({r->outputs.at("out")});
  ASSERT_TRUE(invalid.has_value());
  EXPECT_TRUE(invalid->empty());
}

TEST_F(NixCli, AFailingBuilderIsAFailedResultWithNixsSummary) {
  auto d = drv("broken", "echo about-to-fail; exit 3");
  auto r = nix.build({.drv_path = d});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->outcome, BuildResult::Outcome::kFailed);
  EXPECT_EQ(r->error, "error: builder for '" + d + "' failed with exit code 3");
}

TEST_F(NixCli, NixsOwnTimeLimitsEndABuildAsTimedOut) {
  // A builder that prints nothing and never ends (the shell has no sleep).
  auto d = drv("quiet", "while :; do :; done");
  auto r = nix.build({.drv_path = d, .max_silent = std::chrono::seconds(1), .timeout = std::chrono::seconds(30)});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->outcome, BuildResult::Outcome::kTimedOut);
  EXPECT_THAT(r->error, HasSubstr("timed out after 1 seconds of silence"));
}

TEST_F(NixCli, BuildsObeyTheRemoteBuilderSettings) {
  // No local builds and no remote builder: nix itself refuses, which shows
  // the settings reach it (a real remote builder needs an ssh host).
  CliNixRunner remote_only(runner, {.builders = "", .max_jobs = 0});
  auto r = remote_only.build({.drv_path = drv("remote-only", "echo x > $out"), .timeout = std::chrono::minutes(1)});
  // Not the derivation's fault: an infrastructure error (retried, never
  // cached as the derivation's failure).
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kTransient);
  EXPECT_THAT(r.error().message, HasSubstr("max-jobs"));
}

// Trouble of the machine, not of the derivation, is an error (the builder
// retries it a bounded number of times), never a failed build.
TEST_F(NixCli, InfrastructureTroubleIsAnErrorNotAFailedBuild) {
  // A feature this machine does not offer.
  std::string expr = "(derivation { name = \"needs-feature\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; "
                     "requiredSystemFeatures = [ \"flurry-test-feature\" ]; args = [ \"-c\" " +
                     text::nix_string_literal("echo " + nonce + " > $out") + " ]; }).drvPath";
  auto i = runner.run({.argv = {"nix", "eval", "--raw", "--impure", "--expr", expr}, .timeout = std::chrono::minutes(1)});
  ASSERT_TRUE(i && i->ok()) << (i ? i->err : i.error().message);
  auto featured = nix.build({.drv_path = text::trim(i->out), .timeout = std::chrono::minutes(1)});
  ASSERT_FALSE(featured.has_value());
  EXPECT_EQ(featured.error().code, ErrorCode::kTransient);
  EXPECT_THAT(featured.error().message, HasSubstr("with features {flurry-test-feature} is required to build"));

  // A derivation this store does not hold.
  auto missing = nix.build({.drv_path = "/nix/store/" + std::string(32, 'a') + "-missing.drv", .timeout = std::chrono::minutes(1)});
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error().message, HasSubstr("is not a valid store path"));

  // The nix daemon is unreachable.
  auto d = drv("daemon", "echo x > $out");
  setenv("NIX_REMOTE", ("unix://" + tmp.file("no-daemon.sock")).c_str(), 1);
  auto unreachable = nix.build({.drv_path = d, .timeout = std::chrono::minutes(1)});
  unsetenv("NIX_REMOTE");
  ASSERT_FALSE(unreachable.has_value());
  EXPECT_EQ(unreachable.error().code, ErrorCode::kTransient);
  EXPECT_THAT(unreachable.error().message, HasSubstr("cannot connect to socket"));
}

TEST_F(NixCli, ACancelledBuildIsCancelled) {
  auto d = drv("endless", "while :; do :; done");
  std::atomic<bool> cancel{true};
  auto r = nix.build({.drv_path = d, .timeout = std::chrono::seconds(30), .cancel = &cancel});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->outcome, BuildResult::Outcome::kCancelled);
}

TEST_F(NixCli, GraphShowDerivationRealiseAndCopy) {
  auto leaf = drv("leaf", "echo leaf > $out");
  // The same leaf, referred to by a dependent: the leaf's drv is its input.
  auto r = runner.run({.argv = {"nix", "eval", "--raw", "--impure", "--expr",
                                "let leaf = derivation { name = \"leaf\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; args = [ \"-c\" " +
                                    text::nix_string_literal("echo " + nonce + " >/dev/null; echo leaf > $out") +
                                    " ]; }; in (derivation { name = \"top\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; "
                                    "requiredSystemFeatures = [ \"big-parallel\" ]; "
                                    "args = [ \"-c\" \"echo ${leaf} > $out\" ]; }).drvPath"},
                       .timeout = std::chrono::minutes(1)});
  ASSERT_TRUE(r && r->ok()) << (r ? r->err : r.error().message);
  auto top = text::trim(r->out);

  auto graph = nix.derivation_graph({top});
  ASSERT_TRUE(graph.has_value()) << graph.error().message;
  ASSERT_EQ(graph->size(), 2u);
  EXPECT_EQ(graph->at(top).inputs, std::vector<std::string>{leaf});
  EXPECT_TRUE(graph->at(leaf).inputs.empty());
  EXPECT_EQ(graph->at(top).required_features, std::vector<std::string>{"big-parallel"});
  EXPECT_TRUE(graph->at(leaf).required_features.empty());

  auto d = nix.show_derivation(top);
  ASSERT_TRUE(d.has_value()) << d.error().message;
  EXPECT_EQ(d->path, top);
  EXPECT_EQ(d->builder, "/bin/sh");
  EXPECT_EQ(d->system, "x86_64-linux");
  EXPECT_EQ(d->input_drvs, std::vector<std::string>{leaf});
  ASSERT_EQ(d->args.size(), 2u);
  EXPECT_EQ(d->args[0], "-c");
  EXPECT_EQ(d->env.at("name"), "top");
  auto out = d->outputs.at("out");

  auto before = nix.invalid_paths({out});
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(*before, std::vector<std::string>{out});
  ASSERT_TRUE(nix.realise({top}).has_value());
  EXPECT_TRUE(nix.invalid_paths({out})->empty());

  auto cache = "file://" + tmp.file("cache");
  auto copied = nix.copy_to(cache, {out});
  ASSERT_TRUE(copied.has_value()) << copied.error().message;
  EXPECT_TRUE(std::filesystem::exists(tmp.file("cache/nix-cache-info")));
  auto hash = std::filesystem::path(out).filename().string().substr(0, 32);
  EXPECT_TRUE(std::filesystem::exists(tmp.file("cache/" + hash + ".narinfo")));
  // The cache holds `out` (and its closure), not a path never copied.
  auto other_out = nix.show_derivation(drv("never-copied", "echo x > $out"))->outputs.at("out");
  auto held = nix.cached_paths(cache, {out, other_out});
  ASSERT_TRUE(held.has_value()) << held.error().message;
  EXPECT_EQ(*held, std::vector<std::string>{out});
  // nix makes an empty file:// cache where none was: it holds nothing.
  auto empty = nix.cached_paths("file://" + tmp.file("no-such-cache"), {out});
  ASSERT_TRUE(empty.has_value()) << empty.error().message;
  EXPECT_TRUE(empty->empty());
}

TEST_F(NixCli, RealiseFailureCarriesNixsText) {
  auto d = drv("nope", "exit 7");
  auto r = nix.realise({d});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kRejected);
  EXPECT_THAT(r.error().message, HasSubstr("failed with exit code 7"));
}

TEST_F(NixCli, EvalJsonAppliesAFunctionToAFlakeAttribute) {
  auto src = tmp.file("flake");
  PosixProcessRunner git;
  std::map<std::string, std::string> env = {{"GIT_AUTHOR_NAME", "t"}, {"GIT_AUTHOR_EMAIL", "t@t"}, {"GIT_COMMITTER_NAME", "t"},
                                            {"GIT_COMMITTER_EMAIL", "t@t"}};
  ASSERT_TRUE(git.run({.argv = {"git", "init", "-q", "-b", "main", src}})->ok());
  test::write_file(src + "/flake.nix", "{ outputs = { self }: { herculesCI = args: { onPush.default.outputs = { n = 1; }; }; }; }\n");
  ASSERT_TRUE(git.run({.argv = {"git", "-C", src, "add", "."}})->ok());
  ASSERT_TRUE(git.run({.argv = {"git", "-C", src, "commit", "-q", "-m", "x"}, .env = env})->ok());
  auto rev = text::trim(git.run({.argv = {"git", "-C", src, "rev-parse", "HEAD"}})->out);
  auto ref = "git+file://" + src + "?ref=main&rev=" + rev;
  auto j = nix.eval_json(ref, {"herculesCI"}, "f: builtins.attrNames (f {}).onPush", std::chrono::minutes(1));
  ASSERT_TRUE(j.has_value()) << j.error().message;
  EXPECT_EQ(*j, "[\"default\"]");
  auto missing = nix.eval_json(ref, {"nope"}, "x: x", std::chrono::minutes(1));
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kRejected);
  EXPECT_THAT(missing.error().message, HasSubstr("does not provide attribute"));
}
