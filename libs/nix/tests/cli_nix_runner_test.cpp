// CliNixRunner over a scripted process runner: the argv it builds and how it
// reads nix's JSON and stderr. tests/integration/evaluator runs it on real nix.
#include "flurry/nix/cli_nix_runner.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "flurry/core/text.hpp"

using namespace flurry;
using namespace flurry::nix;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

using Argv = std::vector<std::string>;

ProcessResult exited(int code, std::string out, std::string err = "") {
  ProcessResult r;
  r.exit_code = code;
  r.out = std::move(out);
  r.err = std::move(err);
  return r;
}

// Answers each call with the first rule whose predicate matches its argv,
// and records every call.
class ScriptedRunner final : public ProcessRunner {
 public:
  void on(std::function<bool(const Argv&)> match, Result<ProcessResult> result) {
    std::lock_guard lock(mu_);
    rules_.push_back({std::move(match), std::move(result)});
  }
  Result<ProcessResult> run(const ProcessSpec& spec) override {
    std::unique_lock lock(mu_);
    calls.push_back(spec);
    for (const auto& rule : rules_) {
      if (!rule.match(spec.argv)) continue;
      auto r = rule.result;
      lock.unlock();
      if (r && spec.on_stderr && !r->err.empty()) spec.on_stderr(r->err);
      return r;
    }
    ADD_FAILURE() << "unexpected command: " << text::trim([&] {
      std::string s;
      for (const auto& a : spec.argv) s += a + " ";
      return s;
    }());
    return exited(127, "", "unexpected");
  }
  std::vector<Argv> argvs() {
    std::lock_guard lock(mu_);
    std::vector<Argv> out;
    for (const auto& c : calls) out.push_back(c.argv);
    return out;
  }
  std::vector<ProcessSpec> calls;

 private:
  struct Rule {
    std::function<bool(const Argv&)> match;
    Result<ProcessResult> result;
  };
  std::mutex mu_;
  std::vector<Rule> rules_;
};

const std::string kRef = "git+file:///m.git?ref=refs/flurry/aa&rev=aa";
const std::string kSet = kRef + "#checks.x86_64-linux";

// The --apply argument of an eval call.
std::string apply_of(const Argv& a) {
  for (std::size_t i = 0; i + 1 < a.size(); ++i) {
    if (a[i] == "--apply") return a[i + 1];
  }
  return "";
}
auto is_batch = [](const Argv& a) { return text::starts_with(apply_of(a), "cs: let walk"); };
auto is_names = [](const Argv& a) { return apply_of(a) == "builtins.attrNames"; };
auto is_single = [](const std::string& name) {
  return [lit = text::nix_string_literal(name)](const Argv& a) {
    return text::starts_with(apply_of(a), "cs: let v = cs.${" + lit + "};");
  };
};

const char* kOkJson = R"({"drvPath":"/nix/store/aaa-ok.drv","name":"ok","system":"x86_64-linux","outputs":{"out":"/nix/store/bbb-ok"}})";

EvalRequest request() {
  EvalRequest req;
  req.flake_ref = kRef;
  req.attr_path = {"checks", "x86_64-linux"};
  req.timeout = std::chrono::seconds(42);
  return req;
}

}  // namespace

TEST(CliNixEval, OneBatchEvaluationMapsEveryAttribute) {
  ScriptedRunner r;
  r.on(is_batch, exited(0, std::string(R"({"ok":)") + kOkJson +
                               R"(,"multi":{"drvPath":"/nix/store/c-m.drv","name":"m","system":"x86_64-linux","outputs":{"dev":"/nix/store/d-m-dev","out":"/nix/store/e-m"}}})"));
  CliNixRunner nix(r);
  auto res = nix.eval_attrs(request());
  ASSERT_TRUE(res.has_value()) << res.error().message;
  ASSERT_EQ(r.calls.size(), 1u);
  const auto& argv = r.calls[0].argv;
  ASSERT_EQ(argv.size(), 6u);
  EXPECT_THAT(Argv(argv.begin(), argv.begin() + 5), ElementsAre("nix", "eval", "--json", kSet, "--apply"));
  // Raw derivations have no `outputs`; the expression defaults to ["out"].
  EXPECT_THAT(argv[5], HasSubstr("(v.outputs or [ \"out\" ])"));
  EXPECT_THAT(argv[5], HasSubstr("builtins.tryEval"));
  EXPECT_EQ(r.calls[0].timeout, std::chrono::seconds(42));
  // 100,000 attributes print ~20 MiB of JSON; capture must not cut it.
  EXPECT_GE(r.calls[0].max_capture, std::size_t{256} << 20);
  ASSERT_EQ(res->attrs.size(), 2u);
  const auto& m = res->attrs[0];  // sorted by name
  EXPECT_EQ(m.path, (Argv{"checks", "x86_64-linux", "multi"}));
  EXPECT_EQ(m.drv_path, "/nix/store/c-m.drv");
  EXPECT_EQ(m.outputs, (std::map<std::string, std::string>{{"dev", "/nix/store/d-m-dev"}, {"out", "/nix/store/e-m"}}));
  const auto& ok = res->attrs[1];
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.name, "ok");
  EXPECT_EQ(ok.system, "x86_64-linux");
  EXPECT_EQ(ok.outputs.at("out"), "/nix/store/bbb-ok");
}

TEST(CliNixEval, AttributeThatThrowsIsEvaluatedAloneForNixsExactError) {
  ScriptedRunner r;
  r.on(is_batch, exited(0, std::string(R"({"ok":)") + kOkJson + R"(,"throws":{"error":true}})"));
  r.on(is_single("throws"), exited(1, "", "error: intentional evaluation error\n(use '--show-trace' to show detailed location information)\n"));
  CliNixRunner nix(r);
  auto res = nix.eval_attrs(request());
  ASSERT_TRUE(res.has_value()) << res.error().message;
  ASSERT_EQ(res->attrs.size(), 2u);
  EXPECT_TRUE(res->attrs[0].ok());
  EXPECT_EQ(res->attrs[1].path.back(), "throws");
  EXPECT_EQ(res->attrs[1].error, "error: intentional evaluation error");
  EXPECT_TRUE(res->attrs[1].drv_path.empty());
  EXPECT_EQ(r.calls.size(), 2u);  // ok was not evaluated again
}

TEST(CliNixEval, WhenOneAttributeKillsTheBatchEachIsEvaluatedAloneWithItsNameAsALiteral) {
  const std::string hostile = "a.b c \"${builtins.abort \"x\"}\" \\ \xC3\xA9";
  ScriptedRunner r;
  r.on(is_batch, exited(1, R"({"ok":{"drvPath":)", "error: evaluation aborted with the following error message: 'boom'\n"));
  r.on(is_names, exited(0, nlohmann::json(Argv{"aborts", "ok", hostile}).dump()));
  r.on(is_single("aborts"), exited(1, "", "warning: unknown setting 'x'\nerror: evaluation aborted with the following error message: 'boom'\n(use '--show-trace' to show detailed location information)\n"));
  r.on(is_single("ok"), exited(0, kOkJson));
  r.on(is_single(hostile), exited(0, R"({"drvPath":"/nix/store/h-x.drv","name":"x","system":"x86_64-linux","outputs":{"out":"/nix/store/h-x"}})"));
  CliNixRunner nix(r);
  auto res = nix.eval_attrs(request());
  ASSERT_TRUE(res.has_value()) << res.error().message;
  ASSERT_EQ(res->attrs.size(), 3u);
  std::map<std::string, AttrResult> by;
  for (const auto& a : res->attrs) by[a.path.back()] = a;
  EXPECT_EQ(by["aborts"].error, "error: evaluation aborted with the following error message: 'boom'");
  EXPECT_TRUE(by["ok"].ok());
  EXPECT_EQ(by[hostile].drv_path, "/nix/store/h-x.drv");
  EXPECT_EQ(by[hostile].path, (Argv{"checks", "x86_64-linux", hostile}));
  EXPECT_EQ(r.calls.size(), 5u);
  // The name only ever appears inside the string literal, never as code.
  for (const auto& argv : r.argvs()) {
    if (is_single(hostile)(argv)) {
      EXPECT_EQ(apply_of(argv).find("cs: let v = cs.${" + text::nix_string_literal(hostile) + "}; n = " +
                                    text::nix_string_literal(hostile) + ";"),
                0u);
    }
  }
  EXPECT_THAT(res->warnings, ElementsAre("warning: unknown setting 'x'"));
}

TEST(CliNixEval, ASetThatCannotBeEvaluatedIsRejectedWithNixsText) {
  ScriptedRunner r;
  const std::string err =
      "error: syntax error, unexpected '}'\n\n       at /nix/store/x-source/flake.nix:3:1:\n(use '--show-trace' to show detailed location information)\n";
  r.on(is_batch, exited(1, "", err));
  r.on(is_names, exited(1, "", err));
  CliNixRunner nix(r);
  auto res = nix.eval_attrs(request());
  ASSERT_FALSE(res.has_value());
  EXPECT_EQ(res.error().code, ErrorCode::kRejected);
  EXPECT_EQ(res.error().message, "error: syntax error, unexpected '}'\n\n       at /nix/store/x-source/flake.nix:3:1:");
}

TEST(CliNixEval, ShowTraceIsPassedToEveryEvaluation) {
  ScriptedRunner r;
  r.on(is_batch, exited(0, R"({"t":{"error":true}})"));
  r.on(is_single("t"), exited(1, "", "error: t\n\n       … while evaluating the attribute 't'\n"));
  CliNixRunner nix(r);
  auto req = request();
  req.show_trace = true;
  auto res = nix.eval_attrs(req);
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->attrs[0].error, "error: t\n\n       … while evaluating the attribute 't'");
  for (const auto& argv : r.argvs()) EXPECT_EQ(argv[3], "--show-trace");
}

TEST(CliNixEval, ATimedOutBatchFailsTheSetAndATimedOutAttributeFailsOnlyItself) {
  ProcessResult timed_out = exited(-1, "", "");
  timed_out.timed_out = true;
  {
    ScriptedRunner r;
    r.on(is_batch, timed_out);
    CliNixRunner nix(r);
    auto res = nix.eval_attrs(request());
    ASSERT_FALSE(res.has_value());
    EXPECT_EQ(res.error().code, ErrorCode::kRejected);
    EXPECT_EQ(res.error().message, "evaluation of checks.x86_64-linux timed out after 42s");
  }
  ScriptedRunner r;
  r.on(is_batch, exited(0, R"({"loop":{"error":true}})"));
  r.on(is_single("loop"), timed_out);
  CliNixRunner nix(r);
  auto res = nix.eval_attrs(request());
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->attrs[0].error, "evaluation of checks.x86_64-linux.loop timed out after 42s");
}

TEST(CliNixEval, NixThatCannotBeStartedIsTransient) {
  ScriptedRunner r;
  r.on([](const Argv&) { return true; }, fail(Error::transient("execvp nix: No such file or directory")));
  CliNixRunner nix(r);
  auto res = nix.eval_attrs(request());
  ASSERT_FALSE(res.has_value());
  EXPECT_EQ(res.error().code, ErrorCode::kTransient);
  EXPECT_THAT(res.error().message, HasSubstr("No such file"));
  auto b = nix.build({.drv_path = "/nix/store/x.drv"});
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code, ErrorCode::kTransient);
}

TEST(CliNixEval, PerAttributeEvaluationsRunAtMostTwoAtATime) {
  class Counting final : public ProcessRunner {
   public:
    Result<ProcessResult> run(const ProcessSpec& spec) override {
      if (is_batch(spec.argv)) return exited(1, "", "error: abort");
      if (is_names(spec.argv)) return exited(0, R"(["a","b","c","d","e"])");
      int now = ++running;
      int seen = max_seen.load();
      while (now > seen && !max_seen.compare_exchange_weak(seen, now)) {
      }
      // Give a concurrent worker the chance to overlap.
      for (int i = 0; i < 100 && running.load() < 2; ++i) std::this_thread::yield();
      --running;
      return exited(1, "", "error: x");
    }
    std::atomic<int> running{0}, max_seen{0};
  } counting;
  CliNixRunner nix(counting);
  auto res = nix.eval_attrs(request());
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->attrs.size(), 5u);
  EXPECT_LE(counting.max_seen.load(), 2);
}

TEST(CliNixGraph, ReadsInputDrvsOfTheWholeClosure) {
  ScriptedRunner r;
  r.on([](const Argv& a) { return a[1] == "show-derivation"; },
       exited(0, R"({"/nix/store/d-dep.drv":{"inputDrvs":{"/nix/store/o-ok.drv":["out"]},"outputs":{"out":{"path":"/nix/store/x"}}},
                    "/nix/store/o-ok.drv":{"inputDrvs":{},"outputs":{"out":{"path":"/nix/store/y"}}}})"));
  CliNixRunner nix(r);
  auto g = nix.derivation_graph({"/nix/store/d-dep.drv"});
  ASSERT_TRUE(g.has_value());
  EXPECT_THAT(r.calls[0].argv, ElementsAre("nix", "show-derivation", "-r", "/nix/store/d-dep.drv"));
  EXPECT_EQ(g->at("/nix/store/d-dep.drv"), Argv{"/nix/store/o-ok.drv"});
  EXPECT_TRUE(g->at("/nix/store/o-ok.drv").empty());
  EXPECT_TRUE(nix.derivation_graph({})->empty());
  EXPECT_EQ(r.calls.size(), 1u);  // nothing asked for, nothing run
}

TEST(CliNixValidity, ListsTheInvalidPaths) {
  ScriptedRunner r;
  r.on([](const Argv& a) { return a[0] == "nix-store"; }, exited(0, "/nix/store/b\n"));
  CliNixRunner nix(r);
  auto inv = nix.invalid_paths({"/nix/store/a", "/nix/store/b"});
  ASSERT_TRUE(inv.has_value());
  EXPECT_THAT(r.calls[0].argv, ElementsAre("nix-store", "--check-validity", "--print-invalid", "/nix/store/a", "/nix/store/b"));
  EXPECT_EQ(*inv, Argv{"/nix/store/b"});
}

TEST(CliNixBuild, SucceedsStreamsTheLogAndReadsOutputs) {
  ScriptedRunner r;
  r.on([](const Argv& a) { return a[1] == "build"; },
       exited(0, R"([{"drvPath":"/nix/store/x.drv","outputs":{"out":"/nix/store/x-out"}}])", "x> hello\n"));
  CliNixRunner nix(r);
  std::string log;
  auto b = nix.build({.drv_path = "/nix/store/x.drv",
                      .max_silent = std::chrono::seconds(5),
                      .timeout = std::chrono::milliseconds(60500),
                      .on_log = [&](std::string_view s) { log += s; }});
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->outcome, BuildResult::Outcome::kSucceeded);
  EXPECT_EQ(b->outputs.at("out"), "/nix/store/x-out");
  EXPECT_EQ(log, "x> hello\n");
  EXPECT_THAT(r.calls[0].argv, ElementsAre("nix", "build", "--no-link", "--json", "-L", "--max-silent-time", "5", "--timeout", "61",
                                           "/nix/store/x.drv"));
  // The process-level backstops sit past nix's own limits.
  EXPECT_GT(r.calls[0].timeout, std::chrono::milliseconds(60500));
  EXPECT_GT(r.calls[0].silence_timeout, std::chrono::seconds(5));
}

TEST(CliNixBuild, WithoutJsonOutputsComeFromTheDerivation) {
  ScriptedRunner r;
  r.on([](const Argv& a) { return a[1] == "build"; }, exited(0, ""));
  r.on([](const Argv& a) { return a[1] == "show-derivation"; },
       exited(0, R"({"/nix/store/x.drv":{"outputs":{"out":{"path":"/nix/store/x-out"}},"inputDrvs":{},"inputSrcs":[],"builder":"/bin/sh","args":[],"env":{},"system":"x86_64-linux"}})"));
  CliNixRunner nix(r);
  auto b = nix.build({.drv_path = "/nix/store/x.drv"});
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->outputs.at("out"), "/nix/store/x-out");
  EXPECT_THAT(r.calls[0].argv, ElementsAre("nix", "build", "--no-link", "--json", "-L", "/nix/store/x.drv"));
  EXPECT_EQ(r.calls[0].timeout.count(), 0);
}

TEST(CliNixBuild, ClassifiesFailedTimedOutAndCancelled) {
  auto outcome = [](Result<ProcessResult> pr) {
    ScriptedRunner r;
    r.on([](const Argv&) { return true; }, std::move(pr));
    CliNixRunner nix(r);
    return *nix.build({.drv_path = "/nix/store/x.drv"});
  };
  auto failed = outcome(exited(1, "", "x> boom\nerror: builder for '/nix/store/x.drv' failed with exit code 3;\n       last 1 log lines:\n"));
  EXPECT_EQ(failed.outcome, BuildResult::Outcome::kFailed);
  EXPECT_EQ(failed.error, "error: builder for '/nix/store/x.drv' failed with exit code 3");
  auto nix_timeout = outcome(exited(1, "", "error: building of '/nix/store/x.drv!out' from .drv file timed out after 1 seconds of silence\n"));
  EXPECT_EQ(nix_timeout.outcome, BuildResult::Outcome::kTimedOut);
  EXPECT_THAT(nix_timeout.error, HasSubstr("timed out after 1 seconds of silence"));
  ProcessResult backstop = exited(-1, "", "x> tick\n");
  backstop.timed_out = true;
  EXPECT_EQ(outcome(backstop).outcome, BuildResult::Outcome::kTimedOut);
  ProcessResult silent = exited(-1, "", "");
  silent.silent_too_long = true;
  EXPECT_EQ(outcome(silent).outcome, BuildResult::Outcome::kTimedOut);
  ProcessResult cancelled = exited(-1, "", "");
  cancelled.cancelled = true;
  EXPECT_EQ(outcome(cancelled).outcome, BuildResult::Outcome::kCancelled);
}

TEST(CliNixStore, CopyRealiseAndEvalJsonArgv) {
  ScriptedRunner r;
  r.on([](const Argv& a) { return a[1] == "copy"; }, exited(0, ""));
  r.on([](const Argv& a) { return a[1] == "--realise"; }, exited(100, "", "error: build of '/nix/store/a.drv' failed\n"));
  r.on([](const Argv& a) { return a[1] == "eval"; }, exited(0, "{\"x\":1}\n"));
  CliNixRunner nix(r);
  EXPECT_TRUE(nix.copy_to("file:///tmp/cache?compression=zstd", {"/nix/store/a", "/nix/store/b"}).has_value());
  EXPECT_THAT(r.calls[0].argv, ElementsAre("nix", "copy", "--to", "file:///tmp/cache?compression=zstd", "/nix/store/a", "/nix/store/b"));
  auto rl = nix.realise({"/nix/store/a.drv"});
  ASSERT_FALSE(rl.has_value());
  EXPECT_EQ(rl.error().code, ErrorCode::kRejected);
  EXPECT_THAT(rl.error().message, HasSubstr("error: build of '/nix/store/a.drv' failed"));
  EXPECT_THAT(r.calls[1].argv, ElementsAre("nix-store", "--realise", "/nix/store/a.drv"));
  auto j = nix.eval_json(kRef, {"herculesCI"}, "f: f {}", std::chrono::seconds(3));
  ASSERT_TRUE(j.has_value());
  EXPECT_EQ(*j, "{\"x\":1}");
  EXPECT_THAT(r.calls[2].argv, ElementsAre("nix", "eval", "--json", kRef + "#herculesCI", "--apply", "f: f {}"));
}

TEST(CliNixStore, ShowDerivationParsesEveryField) {
  ScriptedRunner r;
  r.on([](const Argv&) { return true; }, exited(0, R"({"/nix/store/e.drv":{
      "outputs":{"out":{"path":"/nix/store/e-out"}},
      "inputSrcs":["/nix/store/s-src"],
      "inputDrvs":{"/nix/store/i.drv":["out"]},
      "system":"x86_64-linux","builder":"/bin/sh","args":["-c","echo hi > $out"],
      "env":{"name":"e","out":"/nix/store/e-out"}}})"));
  CliNixRunner nix(r);
  auto d = nix.show_derivation("/nix/store/e.drv");
  ASSERT_TRUE(d.has_value());
  EXPECT_THAT(r.calls[0].argv, ElementsAre("nix", "show-derivation", "/nix/store/e.drv"));
  EXPECT_EQ(d->path, "/nix/store/e.drv");
  EXPECT_EQ(d->builder, "/bin/sh");
  EXPECT_EQ(d->args, (Argv{"-c", "echo hi > $out"}));
  EXPECT_EQ(d->env.at("name"), "e");
  EXPECT_EQ(d->input_drvs, Argv{"/nix/store/i.drv"});
  EXPECT_EQ(d->input_srcs, Argv{"/nix/store/s-src"});
  EXPECT_EQ(d->outputs.at("out"), "/nix/store/e-out");
  EXPECT_EQ(d->system, "x86_64-linux");
}

TEST(NixErrors, KeepsNixsMessageFromItsFirstErrorLineWithoutHints) {
  EXPECT_EQ(clean_nix_error("warning: Git tree '/x' is dirty\ntrace: hi\nerror: boom\n\n       at x:1:1:\n(use '--show-trace' to show detailed location information)\n"),
            "error: boom\n\n       at x:1:1:");
  EXPECT_EQ(clean_nix_error("something odd\n"), "something odd");
}

TEST(CliNixValidity, ManyPathsAreQueriedInArgvSizedBatches) {
  // 50,000 store paths are more than one argv can hold (E2BIG).
  ScriptedRunner r;
  r.on([](const Argv& a) { return a[0] == "nix-store"; }, exited(0, ""));
  CliNixRunner nix(r);
  Argv paths;
  for (int i = 0; i < 50000; ++i) paths.push_back("/nix/store/" + std::string(32, 'a') + "-check-" + std::to_string(i));
  auto inv = nix.invalid_paths(paths);
  ASSERT_TRUE(inv.has_value());
  ASSERT_GT(r.calls.size(), 1u);
  std::size_t total = 0;
  for (const auto& c : r.calls) {
    std::size_t bytes = 0;
    for (const auto& a : c.argv) bytes += a.size() + 1;
    EXPECT_LT(bytes, 256u * 1024);
    total += c.argv.size() - 3;
  }
  EXPECT_EQ(total, paths.size());
}
