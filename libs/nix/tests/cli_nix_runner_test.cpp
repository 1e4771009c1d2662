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
#include <algorithm>
#include <cstdio>
#include <map>

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
// The flake output as an expression, never as an installable (which Nix 2.8
// would look up under packages.<system>. first).
const std::string kSetExpr = "builtins.foldl' (v: n: if builtins.isAttrs v && v ? ${n} then v.${n} else throw \"flake '" + kRef +
                             "' does not provide attribute 'checks.x86_64-linux'\") (builtins.getFlake \"" + kRef +
                             "\") [ \"checks\" \"x86_64-linux\" ]";

// The --apply argument of an eval call.
std::string apply_of(const Argv& a) {
  for (std::size_t i = 0; i + 1 < a.size(); ++i) {
    if (a[i] == "--apply") return a[i + 1];
  }
  return "";
}
auto is_range = [](const Argv& a) { return text::starts_with(apply_of(a), "cs: let s = cs;"); };
auto is_single = [](const std::string& name) {
  return [lit = text::nix_string_literal(name)](const Argv& a) {
    return text::starts_with(apply_of(a), "cs: let v = cs.${" + lit + "};");
  };
};

EvalRequest request() {
  EvalRequest req;
  req.flake_ref = kRef;
  req.attr_path = {"checks", "x86_64-linux"};
  req.timeout = std::chrono::seconds(42);
  req.attr_timeout = std::chrono::seconds(7);
  return req;
}

// Plays nix for the worker pool's range processes over a flat set of
// attributes: prints the traces real nix prints for the range expression
// (header, begin/done lines tagged with the token taken from the
// expression) and fails the way an attribute's behaviour says. Singles
// answer from `singles`.
class FakeNixEval final : public ProcessRunner {
 public:
  enum class Kind { kOk, kThrows, kKills, kMemory, kSilent };
  struct Attr {
    std::string name;
    Kind kind = Kind::kOk;
  };
  std::vector<Attr> attrs;  // sorted by name, as builtins.attrNames
  std::map<std::string, Result<ProcessResult>> singles;
  std::string set_error;  // when set, no range gets past listing
  std::string extra_trace;  // printed by every range before its header

  Result<ProcessResult> run(const ProcessSpec& spec) override {
    {
      std::lock_guard lock(mu);
      calls.push_back(spec);
      int now = ++running;
      max_running = std::max(max_running, now);
    }
    // Give a concurrent worker the chance to overlap.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto r = answer(spec);
    --running;
    return r;
  }
  std::vector<std::string> range_bounds() {  // "first..last" of each range call
    std::lock_guard lock(mu);
    std::vector<std::string> out;
    for (const auto& c : calls) {
      if (is_range(c.argv)) out.push_back(bound(apply_of(c.argv), "first") + ".." + bound(apply_of(c.argv), "last"));
    }
    return out;
  }
  std::vector<std::string> singles_run() {
    std::lock_guard lock(mu);
    std::vector<std::string> out;
    for (const auto& c : calls) {
      for (const auto& a : attrs) {
        if (is_single(a.name)(c.argv)) out.push_back(a.name);
      }
    }
    return out;
  }

  std::mutex mu;
  std::vector<ProcessSpec> calls;
  std::atomic<int> running{0};
  int max_running = 0;

 private:
  static std::string bound(const std::string& apply, const std::string& which) {
    auto at = apply.find("; " + which + " = ");
    auto from = at + which.size() + 5;
    return apply.substr(from, apply.find(';', from) - from);
  }
  // "builtins.div (len * k) P" or a number.
  long long eval_bound(const std::string& e) const {
    long long len = static_cast<long long>(attrs.size());
    if (e == "len") return len;
    long long k = 0, p = 1;
    if (std::sscanf(e.c_str(), "builtins.div (len * %lld) %lld", &k, &p) == 2) return len * k / p;
    return std::stoll(e);
  }
  Result<ProcessResult> answer(const ProcessSpec& spec) {
    for (const auto& [name, result] : singles) {
      if (is_single(name)(spec.argv)) {
        if (result && spec.on_stderr) spec.on_stderr(result->err);
        return result;
      }
    }
    if (!is_range(spec.argv)) {
      ADD_FAILURE() << "unexpected command: " << apply_of(spec.argv);
      return exited(127, "", "unexpected");
    }
    const auto apply = apply_of(spec.argv);
    auto t = apply.find("builtins.trace (\"flurry-");
    EXPECT_NE(t, std::string::npos);
    const auto token = apply.substr(t + 17, apply.find('"', t + 17) - (t + 17));
    ProcessResult r = exited(0, "null");
    auto say = [&](const std::string& line) {
      r.err += line + "\n";
      if (spec.on_stderr) spec.on_stderr(line + "\n");
    };
    if (!extra_trace.empty()) say(extra_trace);
    if (!set_error.empty()) {
      say(set_error);
      r.exit_code = 1;
      r.out.clear();
      return r;
    }
    const long long first = eval_bound(bound(apply, "first")), last = eval_bound(bound(apply, "last"));
    say("trace: " + token + nlohmann::json({{"h", {attrs.size(), first, last}}}).dump());
    for (long long i = first; i < last; ++i) {
      const auto& a = attrs[static_cast<std::size_t>(i)];
      say("trace: " + token + nlohmann::json({{"b", i}, {"n", a.name}}).dump());
      nlohmann::json done = {{"d", i}, {"n", a.name}};
      switch (a.kind) {
        case Kind::kOk:
          done["r"] = {{"drvPath", "/nix/store/" + a.name + ".drv"}, {"name", a.name}, {"system", "x86_64-linux"},
                       {"outputs", {{"out", "/nix/store/" + a.name}}}};
          break;
        case Kind::kThrows:
          done["r"] = {{"error", true}};
          break;
        case Kind::kKills:
          say("error: evaluation aborted with the following error message: '" + a.name + "'");
          r.exit_code = 1;
          r.out.clear();
          return r;
        case Kind::kMemory:
          r.memory_exceeded = true;
          r.term_signal = 9;
          r.out.clear();
          return r;
        case Kind::kSilent:
          r.silent_too_long = true;
          r.term_signal = 9;
          r.out.clear();
          return r;
      }
      say("trace: " + token + done.dump());
    }
    return r;
  }
};

std::map<std::string, AttrResult> by_name(const std::vector<AttrResult>& attrs) {
  std::map<std::string, AttrResult> out;
  for (const auto& a : attrs) out[a.path.back()] = a;
  return out;
}

using K = FakeNixEval::Kind;

}  // namespace

TEST(CliNixEval, WorkersShareOutTheSetAndEveryAttributeIsMapped) {
  FakeNixEval n;
  n.attrs = {{"a"}, {"b"}, {"c"}, {"d"}, {"e"}};
  CliNixRunner nix(n, {.eval_workers = 2, .eval_max_memory_mib = 300});
  auto res = nix.eval_attrs(request());
  ASSERT_TRUE(res.has_value()) << res.error().message;
  // Each worker took a share, its bounds computed by nix from the name count.
  EXPECT_THAT(n.range_bounds(), ::testing::UnorderedElementsAre("builtins.div (len * 0) 2..builtins.div (len * 1) 2",
                                                                "builtins.div (len * 1) 2..builtins.div (len * 2) 2"));
  ASSERT_EQ(res->attrs.size(), 5u);
  EXPECT_EQ(res->attrs[0].path, (Argv{"checks", "x86_64-linux", "a"}));  // sorted by path
  EXPECT_EQ(res->attrs[4].drv_path, "/nix/store/e.drv");
  EXPECT_EQ(res->attrs[4].outputs.at("out"), "/nix/store/e");
  EXPECT_EQ(res->processes, 2);
  for (const auto& c : n.calls) {
    EXPECT_THAT(Argv(c.argv.begin(), c.argv.begin() + 9),
                ElementsAre("nix", "eval", "--json", "--option", "eval-cache", "false", "--expr", kSetExpr, "--apply"));
    // Raw derivations have no `outputs`; the expression defaults to ["out"].
    EXPECT_THAT(apply_of(c.argv), HasSubstr("(v.outputs or [ \"out\" ])"));
    EXPECT_LE(c.timeout, std::chrono::seconds(42));
    EXPECT_GT(c.timeout, std::chrono::seconds(30));
    EXPECT_EQ(c.silence_timeout, std::chrono::seconds(7));
    EXPECT_EQ(c.max_rss_bytes, std::size_t{300} << 20);
  }
}

TEST(CliNixEval, AttributeThatThrowsIsEvaluatedAloneForNixsExactError) {
  FakeNixEval n;
  n.attrs = {{"ok"}, {"throws", K::kThrows}};
  n.singles.emplace("throws", exited(1, "", "error: intentional evaluation error\n(use '--show-trace' to show detailed location information)\n"));
  CliNixRunner nix(n, {.eval_workers = 1});
  auto res = nix.eval_attrs(request());
  ASSERT_TRUE(res.has_value()) << res.error().message;
  auto by = by_name(res->attrs);
  ASSERT_EQ(by.size(), 2u);
  EXPECT_TRUE(by["ok"].ok());
  EXPECT_EQ(by["throws"].error, "error: intentional evaluation error");
  EXPECT_TRUE(by["throws"].drv_path.empty());
  EXPECT_EQ(n.singles_run(), std::vector<std::string>{"throws"});  // ok was not evaluated again
}

TEST(CliNixEval, AProcessThatDiesLosesOnlyTheAttributeItWasOnWhoseNameStaysALiteral) {
  const std::string hostile = "a.b c \"${builtins.abort \"x\"}\" \\ \xC3\xA9";
  FakeNixEval n;
  n.attrs = {{"a"}, {hostile, K::kKills}, {"c"}, {"d"}};
  n.singles.emplace(hostile, exited(1, "", "warning: unknown setting 'x'\nwarning: error: SQLite database '/nix/var/nix/db/db.sqlite' is busy\n"
                                          "error: evaluation aborted with the following error message: 'boom'\n"
                                          "(use '--show-trace' to show detailed location information)\n"));
  CliNixRunner nix(n, {.eval_workers = 1});
  auto res = nix.eval_attrs(request());
  ASSERT_TRUE(res.has_value()) << res.error().message;
  auto by = by_name(res->attrs);
  ASSERT_EQ(by.size(), 4u);
  EXPECT_TRUE(by["a"].ok());
  EXPECT_TRUE(by["c"].ok());
  EXPECT_TRUE(by["d"].ok());
  EXPECT_EQ(by[hostile].error, "error: evaluation aborted with the following error message: 'boom'");
  EXPECT_EQ(by[hostile].path, (Argv{"checks", "x86_64-linux", hostile}));
  // The first process reached `hostile`; the rest of its range went to a
  // fresh process starting after it; only `hostile` ran alone.
  EXPECT_EQ(n.range_bounds(), (std::vector<std::string>{"builtins.div (len * 0) 1..builtins.div (len * 1) 1", "2..4"}));
  EXPECT_EQ(n.singles_run(), std::vector<std::string>{hostile});
  for (const auto& c : n.calls) {
    if (is_single(hostile)(c.argv)) {
      EXPECT_EQ(apply_of(c.argv).find("cs: let v = cs.${" + text::nix_string_literal(hostile) + "}; n = " +
                                      text::nix_string_literal(hostile) + ";"),
                0u);
    }
  }
  EXPECT_THAT(res->warnings, ElementsAre("warning: unknown setting 'x'"));
}

TEST(CliNixEval, ASetThatCannotBeEvaluatedIsRejectedWithNixsText) {
  FakeNixEval n;
  n.attrs = {{"a"}};
  n.set_error = "error: syntax error, unexpected '}'\n\n       at /nix/store/x-source/flake.nix:3:1:\n(use '--show-trace' to show detailed location information)";
  CliNixRunner nix(n, {.eval_workers = 2});
  auto res = nix.eval_attrs(request());
  ASSERT_FALSE(res.has_value());
  EXPECT_EQ(res.error().code, ErrorCode::kRejected);
  EXPECT_EQ(res.error().message, "error: syntax error, unexpected '}'\n\n       at /nix/store/x-source/flake.nix:3:1:");
}

TEST(CliNixEval, ShowTraceIsPassedToEveryEvaluation) {
  FakeNixEval n;
  n.attrs = {{"t", K::kThrows}};
  n.singles.emplace("t", exited(1, "", "error: t\n\n       … while evaluating the attribute 't'\n"));
  CliNixRunner nix(n, {.eval_workers = 1});
  auto req = request();
  req.show_trace = true;
  auto res = nix.eval_attrs(req);
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->attrs[0].error, "error: t\n\n       … while evaluating the attribute 't'");
  ASSERT_EQ(n.calls.size(), 2u);
  for (const auto& c : n.calls) EXPECT_EQ(c.argv[6], "--show-trace");
}

TEST(CliNixEval, TheDeadlineFailsTheSetAndASilentAttributeTimesOutAlone) {
  ProcessResult timed_out = exited(-1, "", "");
  timed_out.timed_out = true;
  {
    FakeNixEval n;
    n.attrs = {{"a"}};
    n.singles.emplace("a", timed_out);  // unused: the range itself times out below
    class Timing final : public ProcessRunner {
     public:
      Result<ProcessResult> run(const ProcessSpec&) override {
        ProcessResult r;
        r.timed_out = true;
        return r;
      }
    } t;
    CliNixRunner nix(t, {.eval_workers = 2});
    auto res = nix.eval_attrs(request());
    ASSERT_FALSE(res.has_value());
    EXPECT_EQ(res.error().code, ErrorCode::kRejected);
    EXPECT_EQ(res.error().message, "evaluation of checks.x86_64-linux timed out after 42s");
  }
  FakeNixEval n;
  n.attrs = {{"a"}, {"loop", K::kSilent}, {"z"}};
  CliNixRunner nix(n, {.eval_workers = 1});
  auto res = nix.eval_attrs(request());
  ASSERT_TRUE(res.has_value()) << res.error().message;
  auto by = by_name(res->attrs);
  EXPECT_TRUE(by["a"].ok());
  EXPECT_TRUE(by["z"].ok());
  EXPECT_EQ(by["loop"].error, "evaluation of checks.x86_64-linux.loop timed out after 7s");
  EXPECT_TRUE(n.singles_run().empty());  // not run into the same limit again
}

TEST(CliNixEval, PastTheMemoryCeilingTheAttributeRunsAloneInAFreshProcess) {
  ProcessResult too_big = exited(-1, "", "");
  too_big.memory_exceeded = true;
  too_big.term_signal = 9;
  FakeNixEval n;
  n.attrs = {{"a"}, {"fits", K::kMemory}, {"hog", K::kMemory}, {"z"}};
  n.singles.emplace("fits", exited(0, R"({"drvPath":"/nix/store/fits.drv","name":"fits","system":"x86_64-linux","outputs":{"out":"/nix/store/fits"}})"));
  n.singles.emplace("hog", too_big);
  CliNixRunner nix(n, {.eval_workers = 1, .eval_max_memory_mib = 512});
  auto res = nix.eval_attrs(request());
  ASSERT_TRUE(res.has_value()) << res.error().message;
  auto by = by_name(res->attrs);
  ASSERT_EQ(by.size(), 4u);
  EXPECT_TRUE(by["fits"].ok());  // the shared worker was full, alone it fits
  EXPECT_EQ(by["hog"].error, "evaluation of checks.x86_64-linux.hog exceeded the memory ceiling of 512 MiB");
  EXPECT_TRUE(by["z"].ok());
  EXPECT_EQ(res->memory_restarts, 3);
}

TEST(CliNixEval, TracesWithoutThisEvaluationsTokenAreIgnored) {
  FakeNixEval n;
  n.attrs = {{"a"}};
  // The flake's own trace imitating a result line.
  n.extra_trace = R"(trace: flurry-00000000000000000000000000000000:{"d":0,"n":"evil","r":{"drvPath":"/nix/store/evil.drv"}})";
  CliNixRunner nix(n, {.eval_workers = 1});
  auto res = nix.eval_attrs(request());
  ASSERT_TRUE(res.has_value());
  ASSERT_EQ(res->attrs.size(), 1u);
  EXPECT_EQ(res->attrs[0].drv_path, "/nix/store/a.drv");
}

TEST(CliNixEval, RecurseForDerivationsDecidesWhenNotForced) {
  FakeNixEval n;
  n.attrs = {{"a"}};
  CliNixRunner nix(n, {.eval_workers = 1});
  auto req = request();
  ASSERT_TRUE(nix.eval_attrs(req).has_value());
  req.force_recurse = false;
  ASSERT_TRUE(nix.eval_attrs(req).has_value());
  ASSERT_EQ(n.calls.size(), 2u);
  EXPECT_THAT(apply_of(n.calls[0].argv), ::testing::Not(HasSubstr("v.recurseForDerivations or false")));
  EXPECT_THAT(apply_of(n.calls[1].argv), HasSubstr("((v.recurseForDerivations or false) == true)"));
}

TEST(CliNixEval, ResultsStreamToTheConsumer) {
  FakeNixEval n;
  n.attrs = {{"a"}, {"b"}, {"c"}};
  CliNixRunner nix(n, {.eval_workers = 1});
  auto req = request();
  std::vector<std::string> seen;
  req.on_attrs = [&](std::vector<AttrResult> attrs) -> Result<void> {
    for (const auto& a : attrs) seen.push_back(a.path.back());
    return {};
  };
  auto res = nix.eval_attrs(req);
  ASSERT_TRUE(res.has_value());
  EXPECT_TRUE(res->attrs.empty());
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c"}));
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

TEST(CliNixEval, AtMostTheConfiguredNumberOfWorkersRunAtOnce) {
  FakeNixEval n;
  for (int i = 0; i < 8; ++i) {
    n.attrs.push_back({"k" + std::to_string(i), K::kThrows});
    n.singles.emplace("k" + std::to_string(i), exited(1, "", "error: x"));
  }
  CliNixRunner nix(n, {.eval_workers = 3});
  auto res = nix.eval_attrs(request());
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->attrs.size(), 8u);
  EXPECT_EQ(n.calls.size(), 11u);  // 3 ranges, 8 singles
  EXPECT_LE(n.max_running, 3);
  EXPECT_GE(n.max_running, 2);
}

TEST(CliNixBuild, FullDiskOrAKilledNixIsInfrastructureAndABuilderFailureIsNot) {
  ProcessResult full;
  full.exit_code = 1;
  full.err = "building '/nix/store/x.drv'...\nerror: writing to file: No space left on device\n";
  EXPECT_EQ(infrastructure_failure(full), "error: writing to file: No space left on device");
  ProcessResult killed;
  killed.term_signal = 9;
  EXPECT_THAT(infrastructure_failure(killed).value_or(""), HasSubstr("signal 9"));
  ProcessResult failed;
  failed.exit_code = 1;
  failed.err = "x> make: *** [all] Error 2\nerror: builder for '/nix/store/x.drv' failed with exit code 2;\n";
  EXPECT_EQ(infrastructure_failure(failed), std::nullopt);

  ScriptedRunner r;
  r.on([](const Argv& a) { return a[1] == "build"; }, exited(1, "", "error: cannot connect to daemon at '/nix/var/nix/daemon-socket/socket'\n"));
  CliNixRunner nix(r);
  auto b = nix.build({.drv_path = "/nix/store/x.drv"});
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code, ErrorCode::kTransient);
  EXPECT_THAT(b.error().message, HasSubstr("nix could not build /nix/store/x.drv: error: cannot connect to daemon"));
}

// nix quotes store URLs in its errors, with or without the query flurry
// adds: the runner's errors show neither's credentials.
TEST(CliNixStores, ErrorsNeverShowAStoreUrlsCredentials) {
  const std::string cache = "https://uploader:hunter22@cache.example/nix";
  ScriptedRunner r;
  r.on([](const Argv& a) { return a[1] == "copy"; },
       exited(1, "", "error: unable to download 'https://uploader:hunter22@cache.example/nix/nix-cache-info': HTTP error 503\n"));
  r.on([](const Argv& a) { return a[0] == "nix-store"; },
       exited(1, "", "error: cannot open connection to remote store '" + cache + "'\n"));
  CliNixRunner nix(r);
  auto copied = nix.copy_to(cache + "?secret-key=/keys/k.sec", {"/nix/store/x"});
  ASSERT_FALSE(copied.has_value());
  EXPECT_EQ(copied.error().message.find("hunter22"), std::string::npos) << copied.error().message;
  EXPECT_NE(copied.error().message.find("https://***@cache.example/nix/nix-cache-info"), std::string::npos) << copied.error().message;
  auto queried = nix.cached_paths(cache, {"/nix/store/x"});
  ASSERT_FALSE(queried.has_value());
  EXPECT_EQ(queried.error().message.find("hunter22"), std::string::npos) << queried.error().message;
  EXPECT_NE(queried.error().message.find("https://***@cache.example/nix"), std::string::npos) << queried.error().message;
}

TEST(CliNixConfig, SystemFeaturesComeFromNixsOwnSetting) {
  ScriptedRunner r;
  r.on([](const Argv& a) { return a[1] == "show-config"; },
       exited(0, R"({"system":{"value":"x86_64-linux"},"system-features":{"value":["benchmark","big-parallel","kvm"]}})"));
  CliNixRunner nix(r);
  auto f = nix.system_features();
  ASSERT_TRUE(f.has_value()) << f.error().message;
  EXPECT_EQ(*f, (Argv{"benchmark", "big-parallel", "kvm"}));
  EXPECT_THAT(r.calls[0].argv, ElementsAre("nix", "show-config", "--json"));

  ScriptedRunner broken;
  broken.on([](const Argv&) { return true; }, exited(0, "{}"));
  CliNixRunner without(broken);
  EXPECT_FALSE(without.system_features().has_value());
}

TEST(CliNixGraph, ReadsInputDrvsOfTheWholeClosure) {
  ScriptedRunner r;
  r.on([](const Argv& a) { return a[1] == "show-derivation"; },
       exited(0, R"({"/nix/store/d-dep.drv":{"inputDrvs":{"/nix/store/o-ok.drv":["out"]},"outputs":{"out":{"path":"/nix/store/x"}},
                                           "env":{"requiredSystemFeatures":" nixos-test  kvm kvm"}},
                    "/nix/store/o-ok.drv":{"inputDrvs":{},"outputs":{"out":{"path":"/nix/store/y"}},
                                          "env":{"__json":"{\"requiredSystemFeatures\":[\"big-parallel\",\"a b\"]}"}}})"));
  CliNixRunner nix(r);
  auto g = nix.derivation_graph({"/nix/store/d-dep.drv"});
  ASSERT_TRUE(g.has_value());
  EXPECT_THAT(r.calls[0].argv, ElementsAre("nix", "show-derivation", "-r", "/nix/store/d-dep.drv"));
  EXPECT_EQ(g->at("/nix/store/d-dep.drv").inputs, Argv{"/nix/store/o-ok.drv"});
  EXPECT_EQ(g->at("/nix/store/d-dep.drv").required_features, (Argv{"kvm", "nixos-test"}));
  EXPECT_TRUE(g->at("/nix/store/o-ok.drv").inputs.empty());
  // Structured attributes; a name with a space cannot break the store's one-per-line lists.
  EXPECT_EQ(g->at("/nix/store/o-ok.drv").required_features, (Argv{"a_b", "big-parallel"}));
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
  EXPECT_THAT(r.calls[0].argv, ElementsAre("nix", "build", "--no-link", "--json", "-L", "--log-format", "internal-json", "--max-silent-time",
                                           "5", "--timeout", "61", "/nix/store/x.drv"));
  // The process-level backstops sit past nix's own limits.
  EXPECT_GT(r.calls[0].timeout, std::chrono::milliseconds(60500));
  EXPECT_GT(r.calls[0].silence_timeout, std::chrono::seconds(5));
}

TEST(CliNixBuild, RemoteBuildersGoToNixsOwnSettings) {
  ScriptedRunner r;
  r.on([](const Argv& a) { return a[1] == "build"; }, exited(0, R"([{"drvPath":"/nix/store/x.drv","outputs":{"out":"/nix/store/x-out"}}])"));
  CliNixRunner nix(r, {.builders = "ssh-ng://mac aarch64-darwin - 4", .max_jobs = 0});
  ASSERT_TRUE(nix.build({.drv_path = "/nix/store/x.drv"}).has_value());
  EXPECT_THAT(r.calls[0].argv, ElementsAre("nix", "build", "--no-link", "--json", "-L", "--log-format", "internal-json", "--builders",
                                           "ssh-ng://mac aarch64-darwin - 4",
                                           "--max-jobs", "0", "/nix/store/x.drv"));
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
  EXPECT_THAT(r.calls[0].argv, ElementsAre("nix", "build", "--no-link", "--json", "-L", "--log-format", "internal-json", "/nix/store/x.drv"));
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
  EXPECT_EQ(failed.failed_drv, "/nix/store/x.drv");
  // A dependency's builder failed inside this build: nix names that one.
  auto dep = outcome(exited(1, "", "error: builder for '/nix/store/dep.drv' failed with exit code 1\n"
                                   "error: 1 dependencies of derivation '/nix/store/x.drv' failed to build\n"));
  EXPECT_EQ(dep.failed_drv, "/nix/store/dep.drv");
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

// nix's internal-json stderr (what it writes with --log-format internal-json).
const std::string kJsonBuildLog =
    R"(@nix {"action":"start","fields":["/nix/store/00000000000000000000000000000000-x-1.0.drv","",1,1],"id":5,"level":3,)"
    R"("text":"building '/nix/store/00000000000000000000000000000000-x-1.0.drv'","type":105})" "\n"
    R"(@nix {"action":"result","fields":[0,1,1,0],"id":1,"type":105})" "\n"
    R"(@nix {"action":"result","fields":["\u001b[32mgreen\u001b[0m"],"id":5,"type":101})" "\n"
    R"(@nix {"action":"result","fields":["error: not nix's, the builder's"],"id":5,"type":101})" "\n"
    R"(@nix {"action":"stop","id":5})" "\n";

TEST(CliNixBuild, TheLogKeepsTheBuildersColoursAndTheSummaryHasNone) {
  ScriptedRunner r;
  r.on([](const Argv&) { return true; },
       exited(1, "",
              kJsonBuildLog + R"(@nix {"action":"msg","level":0,"msg":"\u001b[31;1merror:\u001b[0m builder for '\u001b[35;1m)"
                              R"(/nix/store/00000000000000000000000000000000-x-1.0.drv\u001b[0m' failed with exit code 3\u001b[0m"})"));
  CliNixRunner nix(r);
  std::string log;
  auto b = nix.build({.drv_path = "/nix/store/00000000000000000000000000000000-x-1.0.drv", .on_log = [&](std::string_view s) { log += s; }});
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(b->outcome, BuildResult::Outcome::kFailed);
  EXPECT_EQ(b->error, "error: builder for '/nix/store/00000000000000000000000000000000-x-1.0.drv' failed with exit code 3");
  EXPECT_EQ(log,
            "building '/nix/store/00000000000000000000000000000000-x-1.0.drv'...\n"
            "x> \x1b[32mgreen\x1b[0m\n"
            "x> error: not nix's, the builder's\n"
            "\x1b[31;1merror:\x1b[0m builder for '\x1b[35;1m/nix/store/00000000000000000000000000000000-x-1.0.drv\x1b[0m' "
            "failed with exit code 3\x1b[0m\n");  // translated, though nix left it unterminated
}

TEST(CliNixBuild, InfrastructureTroubleIsReadFromNixsJsonMessages) {
  ScriptedRunner r;
  r.on([](const Argv&) { return true; },
       exited(1, "",
              kJsonBuildLog + R"(@nix {"action":"msg","level":0,"msg":"\u001b[31;1merror:\u001b[0m writing to file: )"
                              R"(\u001b[35;1mNo space left on device\u001b[0m"})" "\n"));
  CliNixRunner nix(r);
  auto b = nix.build({.drv_path = "/nix/store/00000000000000000000000000000000-x-1.0.drv"});
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code, ErrorCode::kTransient);
  EXPECT_THAT(b.error().message, HasSubstr(": error: writing to file: No space left on device"));
}

TEST(CliNixBuild, NixsTimeLimitInAJsonMessageIsATimeout) {
  ScriptedRunner r;
  r.on([](const Argv&) { return true; },
       exited(1, "",
              kJsonBuildLog + R"(@nix {"action":"msg","level":0,"msg":"\u001b[31;1merror:\u001b[0m building of '\u001b[35;1m/nix/store/)"
                              R"(00000000000000000000000000000000-x-1.0.drv!out\u001b[0m' timed out after 1 seconds of silence"})" "\n"));
  CliNixRunner nix(r);
  auto b = nix.build({.drv_path = "/nix/store/00000000000000000000000000000000-x-1.0.drv"});
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(b->outcome, BuildResult::Outcome::kTimedOut);
  EXPECT_EQ(b->error, "error: building of '/nix/store/00000000000000000000000000000000-x-1.0.drv!out' timed out after 1 seconds of silence");
}

TEST(CliNixBuild, TheSummaryIsFoundAfterALongLog) {
  std::string err;
  for (int i = 0; i < 100000; ++i) {
    err += R"(@nix {"action":"result","fields":["error: line )" + std::to_string(i) + R"( of a chatty build"],"id":5,"type":101})" "\n";
  }
  ScriptedRunner r;
  r.on([](const Argv&) { return true; },
       exited(1, "", kJsonBuildLog + err + R"(@nix {"action":"msg","level":0,"msg":"error: builder for 'x' failed with exit code 1"})" "\n"));
  CliNixRunner nix(r);
  std::size_t logged = 0;
  auto b = nix.build({.drv_path = "/nix/store/00000000000000000000000000000000-x-1.0.drv", .on_log = [&](std::string_view s) { logged += s.size(); }});
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_GT(logged, std::size_t{3} << 20);  // all of it logged, far more than is kept for the summary
  EXPECT_EQ(b->error, "error: builder for 'x' failed with exit code 1");
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
  ASSERT_EQ(r.calls[2].argv.size(), 7u);
  EXPECT_THAT(r.calls[2].argv[4], HasSubstr("(builtins.getFlake \"" + kRef + "\") [ \"herculesCI\" ]"));
  EXPECT_THAT(Argv(r.calls[2].argv.begin(), r.calls[2].argv.begin() + 4), ElementsAre("nix", "eval", "--json", "--expr"));
  EXPECT_THAT(Argv(r.calls[2].argv.begin() + 5, r.calls[2].argv.end()), ElementsAre("--apply", "f: f {}"));
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

TEST(CliNixValidity, CachedPathsAskTheBinaryCacheForWhatItLacks) {
  ScriptedRunner r;
  r.on([](const Argv& a) { return a.size() > 2 && a[1] == "--store"; }, exited(0, "/nix/store/b\n"));
  CliNixRunner nix(r);
  auto held = nix.cached_paths("https://cache.example", {"/nix/store/a", "/nix/store/b"});
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(*held, std::vector<std::string>{"/nix/store/a"});
  EXPECT_THAT(r.calls[0].argv, ElementsAre("nix-store", "--store", "https://cache.example", "--check-validity", "--print-invalid",
                                           "/nix/store/a", "/nix/store/b"));
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
