// CliNixRunner::eval_attrs (the evaluation worker pool) on real nix 2.8:
// every kind of attribute failure stays with its attribute, a flake that
// cannot be evaluated fails as a whole with nix's text, hostile names
// stay exact, recurseForDerivations is honoured or forced, the memory
// ceiling replaces workers, and results stream before the end.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>

#include "flurry/core/text.hpp"
#include "flurry/nix/cli_nix_runner.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using namespace flurry::nix;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

class EvalPool : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("NIX_CONFIG", test::test_nix_config().c_str(), 1);
    std::random_device rd;
    nonce = std::to_string(rd()) + std::to_string(rd());
  }

  // A git flake whose checks.x86_64-linux is `checks` (a Nix attrset body,
  // with `mk "name"` making a trivial derivation); returns its ref.
  std::string flake(const std::string& checks, const std::string& extra_file = "", const std::string& extra_content = "") {
    auto src = tmp.file("flake-" + std::to_string(++flakes));
    std::map<std::string, std::string> env = {{"GIT_AUTHOR_NAME", "t"}, {"GIT_AUTHOR_EMAIL", "t@t"}, {"GIT_COMMITTER_NAME", "t"},
                                              {"GIT_COMMITTER_EMAIL", "t@t"}};
    EXPECT_TRUE(runner.run({.argv = {"git", "init", "-q", "-b", "main", src}})->ok());
    test::write_file(src + "/flake.nix",
                     "{ outputs = { self }: let mk = name: derivation { inherit name; system = \"x86_64-linux\"; builder = \"/bin/sh\"; "
                     "args = [ \"-c\" \"echo " + nonce + " > $out\" ]; }; in { checks.x86_64-linux = {\n" + checks + "\n}; }; }\n");
    if (!extra_file.empty()) test::write_file(src + "/" + extra_file, extra_content);
    EXPECT_TRUE(runner.run({.argv = {"git", "-C", src, "add", "."}})->ok());
    EXPECT_TRUE(runner.run({.argv = {"git", "-C", src, "commit", "-q", "-m", "x"}, .env = env})->ok());
    auto rev = text::trim(runner.run({.argv = {"git", "-C", src, "rev-parse", "HEAD"}})->out);
    return "git+file://" + src + "?ref=main&rev=" + rev;
  }

  EvalRequest request(const std::string& ref) {
    EvalRequest r;
    r.flake_ref = ref;
    r.attr_path = {"checks", "x86_64-linux"};
    r.timeout = 5min;
    return r;
  }

  // Results by the last path component (or the rendered relative path for
  // nested ones).
  static std::map<std::string, AttrResult> by_name(const std::vector<AttrResult>& attrs) {
    std::map<std::string, AttrResult> out;
    for (const auto& a : attrs) {
      std::vector<std::string> rel(a.path.begin() + 2, a.path.end());
      out[render_attr_path(rel)] = a;
    }
    return out;
  }

  test::TempDir tmp{"flurry-eval-pool"};
  PosixProcessRunner runner;
  std::string nonce;
  int flakes = 0;
};

}  // namespace

TEST_F(EvalPool, EachKindOfAttributeFailureFailsOnlyThatAttributeWithNixsText) {
  auto ref = flake(R"(
    ok = mk "ok";
    throws = throw "intentional throw";
    aborts = abort "intentional abort";
    asserts = assert 1 == 2; mk "asserts";
    typeError = 1 + "a";
    infinite = let x = x + 1; in x;
    missing = self.nope;
    notADrv = 5;
    zlast = mk "zlast";
  )");
  CliNixRunner nix(runner, {.eval_workers = 2});
  auto r = nix.eval_attrs(request(ref));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  auto got = by_name(r->attrs);
  ASSERT_EQ(got.size(), 9u);
  EXPECT_TRUE(got["ok"].ok());
  EXPECT_THAT(got["ok"].drv_path, StartsWith("/nix/store/"));
  EXPECT_EQ(got["ok"].name, "ok");
  EXPECT_EQ(got["ok"].system, "x86_64-linux");
  EXPECT_THAT(got["ok"].outputs.at("out"), StartsWith("/nix/store/"));
  EXPECT_TRUE(got["zlast"].ok());
  EXPECT_EQ(got["throws"].error, "error: intentional throw");
  EXPECT_EQ(got["aborts"].error, "error: evaluation aborted with the following error message: 'intentional abort'");
  EXPECT_THAT(got["asserts"].error, HasSubstr("assertion '(1 == 2)' failed"));
  EXPECT_THAT(got["typeError"].error, HasSubstr("cannot add a string to an integer"));
  EXPECT_THAT(got["infinite"].error, HasSubstr("infinite recursion encountered"));
  EXPECT_THAT(got["missing"].error, HasSubstr("attribute 'nope' missing"));
  EXPECT_FALSE(got["notADrv"].ok());
  for (const auto& [name, a] : got) EXPECT_THAT(a.error, ::testing::Not(HasSubstr("flurry-"))) << name;  // no marker leaks
}

TEST_F(EvalPool, HostileNamesAndNestedSetsKeepTheirExactPaths) {
  auto ref = flake(R"(
    "with.dot" = mk "dot";
    "with \"quote\"" = mk "quote";
    "with space" = mk "space";
    "ünïcode ✓" = mk "unicode";
    "${"$"}{injected}" = mk "dollar";
    nested = { inner = mk "inner"; deeper = { bad = abort "deep abort"; "good.one" = mk "good"; }; };
  )");
  CliNixRunner nix(runner, {.eval_workers = 2});
  auto r = nix.eval_attrs(request(ref));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  std::map<std::vector<std::string>, AttrResult> got;
  for (const auto& a : r->attrs) got[a.path] = a;
  const std::vector<std::string> p = {"checks", "x86_64-linux"};
  auto at = [&](std::vector<std::string> rel) {
    auto full = p;
    full.insert(full.end(), rel.begin(), rel.end());
    return got.count(full) ? got[full] : AttrResult{};
  };
  EXPECT_EQ(got.size(), 8u);
  EXPECT_TRUE(at({"with.dot"}).ok());
  EXPECT_TRUE(at({"with \"quote\""}).ok());
  EXPECT_TRUE(at({"with space"}).ok());
  EXPECT_TRUE(at({"ünïcode ✓"}).ok());
  EXPECT_TRUE(at({"${injected}"}).ok());
  EXPECT_EQ(at({"${injected}"}).name, "dollar");
  EXPECT_TRUE(at({"nested", "inner"}).ok());
  EXPECT_TRUE(at({"nested", "deeper", "good.one"}).ok());
  EXPECT_THAT(at({"nested", "deeper", "bad"}).error, HasSubstr("deep abort"));
  EXPECT_EQ(render_attr_path(at({"nested", "deeper", "good.one"}).path), "checks.x86_64-linux.nested.deeper.\"good.one\"");
}

TEST_F(EvalPool, RecurseForDerivationsIsHonouredUnlessForced) {
  auto ref = flake(R"(
    top = mk "top";
    plain = { x = mk "x"; };
    marked = { recurseForDerivations = true; y = mk "y"; };
  )");
  CliNixRunner nix(runner, {.eval_workers = 1});
  auto forced = nix.eval_attrs(request(ref));
  ASSERT_TRUE(forced.has_value()) << forced.error().message;
  auto f = by_name(forced->attrs);
  EXPECT_EQ(f.size(), 3u);
  EXPECT_TRUE(f["plain.x"].ok());
  EXPECT_TRUE(f["marked.y"].ok());
  EXPECT_TRUE(f["top"].ok());

  auto req = request(ref);
  req.force_recurse = false;
  auto honoured = nix.eval_attrs(req);
  ASSERT_TRUE(honoured.has_value()) << honoured.error().message;
  auto h = by_name(honoured->attrs);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_TRUE(h["top"].ok());
  EXPECT_TRUE(h["marked.y"].ok());
  EXPECT_FALSE(h.count("plain.x"));
}

TEST_F(EvalPool, ChecksAreTheFlakesOwnNotAPackageOfTheSameName) {
  // Nix 2.8 would look `ref#checks.x86_64-linux` up under
  // packages.x86_64-linux. first; the evaluator asks for the output itself.
  auto src = tmp.file("shadow");
  std::map<std::string, std::string> env = {{"GIT_AUTHOR_NAME", "t"}, {"GIT_AUTHOR_EMAIL", "t@t"}, {"GIT_COMMITTER_NAME", "t"},
                                            {"GIT_COMMITTER_EMAIL", "t@t"}};
  ASSERT_TRUE(runner.run({.argv = {"git", "init", "-q", "-b", "main", src}})->ok());
  test::write_file(src + "/flake.nix",
                   "{ outputs = { self }: let mk = name: derivation { inherit name; system = \"x86_64-linux\"; builder = \"/bin/sh\"; "
                   "args = [ \"-c\" \"echo " + nonce + " > $out\" ]; }; in {\n"
                   "  packages.x86_64-linux.checks.x86_64-linux.wrong = mk \"wrong\";\n"
                   "  legacyPackages.x86_64-linux = abort \"legacyPackages must not be evaluated\";\n"
                   "  checks.x86_64-linux.right = mk \"right\";\n}; }\n");
  ASSERT_TRUE(runner.run({.argv = {"git", "-C", src, "add", "."}})->ok());
  ASSERT_TRUE(runner.run({.argv = {"git", "-C", src, "commit", "-q", "-m", "x"}, .env = env})->ok());
  auto rev = text::trim(runner.run({.argv = {"git", "-C", src, "rev-parse", "HEAD"}})->out);
  CliNixRunner nix(runner, {.eval_workers = 1});
  auto r = nix.eval_attrs(request("git+file://" + src + "?ref=main&rev=" + rev));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  auto got = by_name(r->attrs);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got["right"].ok()) << got["right"].error;
}

TEST_F(EvalPool, AFlakeThatCannotBeEvaluatedFailsAsAWholeWithNixsText) {
  CliNixRunner nix(runner, {.eval_workers = 2});
  // Syntax error.
  auto bad = flake("ok = mk \"ok\"; broken = ;");
  auto r = nix.eval_attrs(request(bad));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kRejected);
  EXPECT_THAT(r.error().message, HasSubstr("syntax error"));
  // Missing output root.
  auto ok = flake("ok = mk \"ok\";");
  auto req = request(ok);
  req.attr_path = {"checks", "aarch64-darwin"};
  r = nix.eval_attrs(req);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kRejected);
  EXPECT_THAT(r.error().message, HasSubstr("does not provide attribute 'checks.aarch64-darwin'"));
  // Unreadable lock file.
  auto locked = flake("ok = mk \"ok\";", "flake.lock", "{ this is not json");
  r = nix.eval_attrs(request(locked));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kRejected);
  EXPECT_THAT(r.error().message, HasSubstr("error:"));
  EXPECT_THAT(r.error().message, ::testing::Not(HasSubstr("flurry-")));
}

TEST_F(EvalPool, AnAttributeThatEvaluatesTooLongTimesOutAlone) {
  // genericClosure over an endless key sequence never ends.
  auto ref = flake(R"(
    a = mk "a";
    forever = builtins.seq (builtins.length (builtins.genericClosure { startSet = [ { key = 0; } ]; operator = x: [ { key = x.key + 1; } ]; })) (mk "forever");
    z = mk "z";
  )");
  CliNixRunner nix(runner, {.eval_workers = 1, .eval_max_memory_mib = 0});
  auto req = request(ref);
  req.attr_timeout = 3s;
  auto r = nix.eval_attrs(req);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  auto got = by_name(r->attrs);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got["a"].ok());
  EXPECT_TRUE(got["z"].ok());
  EXPECT_EQ(got["forever"].error, "evaluation of checks.x86_64-linux.forever timed out after 3s");
}

TEST_F(EvalPool, TheMemoryCeilingReplacesWorkersAndFailsOnlyAnAttributeThatNeedsMoreAlone) {
  // Each `fat<i>` holds ~150 MiB of strings while it is evaluated and
  // fits under the ceiling alone (a worker they push past it is replaced,
  // and none of them fails). `hog` needs far more than the ceiling: it
  // passes it in the shared worker, then again alone, and fails.
  std::string checks = "hog = builtins.seq (builtins.length (builtins.genList (x: toString x) 20000000)) (mk \"hog\");\n";
  for (int i = 0; i < 6; ++i) {
    checks += "fat" + std::to_string(i) + " = builtins.seq (builtins.foldl' (a: b: a + builtins.stringLength b) 0 (builtins.genList (x: toString (x * " +
              std::to_string(i + 1) + ")) 500000)) (mk \"fat" + std::to_string(i) + "\");\n";
  }
  auto ref = flake(checks);
  CliNixRunner nix(runner, {.eval_workers = 1, .eval_max_memory_mib = 400});
  auto r = nix.eval_attrs(request(ref));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  auto got = by_name(r->attrs);
  ASSERT_EQ(got.size(), 7u);
  EXPECT_EQ(got["hog"].error, "evaluation of checks.x86_64-linux.hog exceeded the memory ceiling of 400 MiB");
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(got["fat" + std::to_string(i)].ok()) << got["fat" + std::to_string(i)].error;
  EXPECT_GE(r->memory_restarts, 2);  // hog in the shared worker, then alone
  EXPECT_GT(r->peak_process_rss_bytes, std::size_t{400} << 20);
}

TEST_F(EvalPool, ResultsAreHandedOverBeforeTheEvaluationEnds) {
  // `zslow` (last in name order) takes seconds; `a`..`c` are ready long
  // before it. One worker, so a single process evaluates them all.
  auto ref = flake(R"(
    a = mk "a"; b = mk "b"; c = mk "c";
    zslow = builtins.seq (builtins.foldl' (x: y: x + y) 0 (builtins.genList (x: x) 3000000)) (mk "zslow");
  )");
  CliNixRunner nix(runner, {.eval_workers = 1});
  std::mutex mu;
  std::vector<std::vector<std::string>> batches;
  auto req = request(ref);
  req.on_attrs = [&](std::vector<AttrResult> attrs) -> Result<void> {
    std::lock_guard lock(mu);
    batches.emplace_back();
    for (const auto& a : attrs) batches.back().push_back(a.path.back());
    return {};
  };
  auto r = nix.eval_attrs(req);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->attrs.empty());  // all went through on_attrs
  ASSERT_GE(batches.size(), 2u);
  // Only the first hand-over is promised before zslow is done: later ones
  // come at intervals, so b and c may wait for zslow on a loaded machine.
  EXPECT_THAT(batches.front(), ::testing::Not(::testing::Contains("zslow")));
  EXPECT_THAT(batches.back(), ::testing::Contains("zslow"));
  std::size_t total = 0;
  for (const auto& b : batches) total += b.size();
  EXPECT_EQ(total, 4u);
}

TEST_F(EvalPool, AnErrorFromTheConsumerStopsTheEvaluation) {
  auto ref = flake("a = mk \"a\"; b = mk \"b\";");
  CliNixRunner nix(runner, {.eval_workers = 1});
  auto req = request(ref);
  req.on_attrs = [&](std::vector<AttrResult>) -> Result<void> { return fail(Error::transient("store is down")); };
  auto r = nix.eval_attrs(req);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kTransient);
  EXPECT_EQ(r.error().message, "store is down");
}
