// EvalJobsRunner against a stand-in nix-eval-jobs: a script that prints
// nix-eval-jobs' documented JSON lines and records its arguments.
#include "flurry/nix/eval_jobs_runner.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "flurry/core/config.hpp"
#include "flurry/nix/testing/fake_nix_runner.hpp"

using namespace flurry;
using namespace flurry::nix;

namespace {

// Writes an executable stand-in that prints `lines` on stdout, `err` on
// stderr, records "$@" one per line in <script>.args and exits `code`.
std::string stand_in(const std::string& name, const std::string& lines, const std::string& err = "", int code = 0) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path + ".out") << lines;
  std::ofstream(path + ".err") << err;
  std::ofstream(path) << "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > '" << path << ".args'\ncat '" << path
                      << ".out'\ncat '" << path << ".err' >&2\nexit " << code << "\n";
  ::chmod(path.c_str(), 0755);
  return path;
}

const char* kOutput = R"J({"attr":"ok","attrPath":["ok"],"drvPath":"/nix/store/aaa-ok.drv","name":"ok","system":"x86_64-linux","outputs":{"out":"/nix/store/bbb-ok"}}
{"attr":"\"a.b c\"","attrPath":["a.b c"],"drvPath":"/nix/store/ccc-w.drv","name":"w","system":"x86_64-linux","outputs":{"out":"/nix/store/ddd-w","dev":null}}
{"attr":"throws","attrPath":["throws"],"error":"error: intentional\n(use '--show-trace' to show detailed location information)"}
{"attr":"nested.deep","attrPath":["nested","deep"],"drvPath":"/nix/store/eee-d.drv","name":"d","system":"aarch64-linux","outputs":{"out":"/nix/store/fff-d"}}
)J";

}  // namespace

TEST(EvalJobs, JsonLinesBecomeExactAttributeResults) {
  PosixProcessRunner runner;
  nix::testing::FakeNixRunner rest;
  auto bin = stand_in("nej-ok", kOutput, "warning: something odd\n");
  EvalJobsRunner r(runner, rest, {.binary = bin, .workers = 3, .max_memory_mib = 1024});
  auto res = r.eval_attrs({"git+file:///m?ref=r&rev=x", {"checks", "x86_64-linux"}, true, std::chrono::seconds(30)});
  ASSERT_TRUE(res.has_value()) << res.error().message;
  ASSERT_EQ(res->attrs.size(), 4u);
  EXPECT_EQ(res->attrs[0].path, (std::vector<std::string>{"checks", "x86_64-linux", "ok"}));
  EXPECT_EQ(res->attrs[0].drv_path, "/nix/store/aaa-ok.drv");
  EXPECT_EQ(res->attrs[0].outputs.at("out"), "/nix/store/bbb-ok");
  EXPECT_EQ(res->attrs[1].path.back(), "a.b c");
  EXPECT_EQ(res->attrs[1].outputs.at("dev"), "");  // null: not known before building
  EXPECT_EQ(res->attrs[2].error, "error: intentional");
  EXPECT_EQ(res->attrs[3].path, (std::vector<std::string>{"checks", "x86_64-linux", "nested", "deep"}));
  EXPECT_EQ(res->attrs[3].system, "aarch64-linux");
  EXPECT_EQ(res->warnings, std::vector<std::string>{"warning: something odd"});
  auto args = read_file(bin + ".args").value_or("");
  EXPECT_NE(args.find("--workers\n3\n"), std::string::npos) << args;
  EXPECT_NE(args.find("--max-memory-size\n1024\n"), std::string::npos) << args;
  EXPECT_NE(args.find("--force-recurse\n"), std::string::npos) << args;
  EXPECT_NE(args.find("--show-trace\n"), std::string::npos) << args;
  EXPECT_NE(args.find("--flake\ngit+file:///m?ref=r&rev=x#checks.x86_64-linux\n"), std::string::npos) << args;
}

TEST(EvalJobs, AFlakeThatCannotBeEvaluatedIsRejectedWithItsError) {
  PosixProcessRunner runner;
  nix::testing::FakeNixRunner rest;
  auto bin = stand_in("nej-bad", "", "error: syntax error, unexpected '}'\n", 1);
  EvalJobsRunner r(runner, rest, {.binary = bin});
  auto res = r.eval_attrs({"git+file:///m", {"checks", "x86_64-linux"}, false, std::chrono::seconds(30)});
  ASSERT_FALSE(res.has_value());
  EXPECT_EQ(res.error().code, ErrorCode::kRejected);
  EXPECT_EQ(res.error().message, "error: syntax error, unexpected '}'");
}

TEST(EvalJobs, DyingHalfWayIsTransientNotAShortJobList) {
  PosixProcessRunner runner;
  nix::testing::FakeNixRunner rest;
  auto bin = stand_in("nej-died", R"({"attr":"ok","attrPath":["ok"],"drvPath":"/nix/store/a.drv","outputs":{"out":"/nix/store/o"}})"
                                  "\n",
                      "worker killed\n", 137);
  EvalJobsRunner r(runner, rest, {.binary = bin});
  auto res = r.eval_attrs({"git+file:///m", {"checks", "x86_64-linux"}, false, std::chrono::seconds(30)});
  ASSERT_FALSE(res.has_value());
  EXPECT_EQ(res.error().code, ErrorCode::kTransient);
}

TEST(EvalJobs, LinesStreamToTheConsumerAndRecurseForDerivationsCanBeHonoured) {
  PosixProcessRunner runner;
  nix::testing::FakeNixRunner rest;
  auto bin = stand_in("nej-stream", kOutput);
  EvalJobsRunner r(runner, rest, {.binary = bin});
  EvalRequest req{"git+file:///m", {"checks", "x86_64-linux"}, false, std::chrono::seconds(30)};
  req.force_recurse = false;
  std::vector<std::string> seen;
  req.on_attrs = [&](std::vector<AttrResult> attrs) -> Result<void> {
    for (const auto& a : attrs) seen.push_back(a.path.back());
    return {};
  };
  auto res = r.eval_attrs(req);
  ASSERT_TRUE(res.has_value()) << res.error().message;
  EXPECT_TRUE(res->attrs.empty());
  EXPECT_EQ(seen, (std::vector<std::string>{"ok", "a.b c", "throws", "deep"}));
  auto args = read_file(bin + ".args").value_or("");
  EXPECT_EQ(args.find("--force-recurse"), std::string::npos) << args;

  // A consumer that fails stops it with that error.
  req.on_attrs = [](std::vector<AttrResult>) -> Result<void> { return fail(Error::transient("store is down")); };
  auto stopped = r.eval_attrs(req);
  ASSERT_FALSE(stopped.has_value());
  EXPECT_EQ(stopped.error().message, "store is down");
}

TEST(EvalJobs, OtherCallsGoToTheWrappedRunner) {
  PosixProcessRunner runner;
  nix::testing::FakeNixRunner rest;
  rest.valid = {"/nix/store/x"};
  EvalJobsRunner r(runner, rest, {});
  EXPECT_TRUE(r.invalid_paths({"/nix/store/x", "/nix/store/y"})->size() == 1);
  EXPECT_TRUE(r.copy_to("file:///c", {"/nix/store/x"}).has_value());
  EXPECT_EQ(rest.copies.size(), 1u);
}

TEST(EvalJobs, FindOnPath) {
  EXPECT_TRUE(find_on_path("sh").has_value());
  EXPECT_FALSE(find_on_path("definitely-not-installed-xyz").has_value());
}
