// The evaluator's handler on real git and real nix (Nix 2.8, local store),
// with the in-memory bus and store: a flake whose checks succeed, fail,
// depend on each other, throw, abort, mistype and carry a hostile name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>

#include "evaluate.hpp"
#include "flurry/bus/testing/memory_bus.hpp"
#include "flurry/core/text.hpp"
#include "flurry/git/cli_git.hpp"
#include "flurry/nix/cli_nix_runner.hpp"
#include "flurry/pipeline/publish.hpp"
#include "flurry/state/ids.hpp"
#include "flurry/state/testing/memory_store.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using msg::JobState;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

namespace {

std::string nonce() {
  std::random_device rd;
  return std::to_string(rd()) + "-" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
}

std::string run_ok(const std::vector<std::string>& argv) {
  PosixProcessRunner r;
  auto res = r.run({.argv = argv,
                    .env = {{"GIT_AUTHOR_NAME", "t"}, {"GIT_AUTHOR_EMAIL", "t@t"}, {"GIT_COMMITTER_NAME", "t"}, {"GIT_COMMITTER_EMAIL", "t@t"}},
                    .timeout = std::chrono::minutes(2)});
  EXPECT_TRUE(res && res->ok()) << (res ? res->err : res.error().message);
  return res ? text::trim(res->out) : "";
}

// Every check the brief names, plus a name with a dot and a space.
std::string checks_flake(const std::string& n) {
  return R"({
  outputs = { self }: let
    nonce = ")" + n + R"(";
    mk = name: script: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" script ]; };
  in {
    checks.x86_64-linux = rec {
      ok = mk "ok" "echo ${nonce} > $out";
      fail = mk "fail" "echo ${nonce}; exit 3";
      dep = mk "dep" "echo ${ok} > $out";
      depOnFail = mk "depOnFail" "echo ${fail} > $out";
      throws = throw "intentional evaluation error";
      aborts = abort "intentional abort";
      typeError = 1 + "x";
      "a.b c" = mk "abc" "echo ${nonce} abc > $out";
    };
  };
}
)";
}

class EvaluatorFlake : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("NIX_CONFIG", test::test_nix_config().c_str(), 1);
    src = tmp.file("src");
    run_ok({"git", "init", "-q", "-b", "main", src});
    cfg.work_dir = tmp.file("work");
    cfg.eval_timeout = std::chrono::minutes(2);
    cfg.max_deliver = 3;
    cfg.branch_rules = {{"every", "*", false, false}};  // tests push many branches
  }
  // Commits flake.nix on `branch`; returns the rev.
  std::string commit(const std::string& flake, const std::string& branch = "main") {
    if (branch != "main") run_ok({"git", "-C", src, "checkout", "-q", "-B", branch});
    test::write_file(src + "/flake.nix", flake);
    run_ok({"git", "-C", src, "add", "flake.nix"});
    run_ok({"git", "-C", src, "commit", "-q", "-m", "flake"});
    return run_ok({"git", "-C", src, "rev-parse", "HEAD"});
  }
  msg::ChangeEvent change_for(const std::string& rev, const std::string& branch, const std::string& delivery) {
    msg::ChangeEvent c;
    c.id = "github:" + delivery;
    c.kind = "push";
    c.repo = {"github", "octo", "hello", "file://" + src, "", "main"};
    c.ref = "refs/heads/" + branch;
    c.branch = branch;
    c.rev = rev;
    return c;
  }
  evaluator::EvalOutcome handle(const msg::ChangeEvent& c, git::Git& g) {
    return evaluator::handle_change(c, 1, {bus, store, nix, g, clock}, cfg);
  }
  std::string job_id(const msg::ChangeEvent& c, const std::string& attr) {
    return state::job_id_for(state::eval_id_for_change(c.id), attr);
  }
  state::JobRecord job(const msg::ChangeEvent& c, const std::string& attr) {
    auto j = store.get_job(job_id(c, attr));
    EXPECT_TRUE(j && j->has_value()) << attr;
    return j && j->has_value() ? **j : state::JobRecord{};
  }
  std::set<std::string> build_requests() {
    std::set<std::string> out;
    for (const auto& m : bus.published("flurry.build.")) out.insert(msg::decode_build_request(m.data)->job_id);
    return out;
  }

  test::TempDir tmp{"flurry-eval-it"};
  std::string src;
  PosixProcessRunner runner;
  git::CliGit git{runner, {.allowed_schemes = {"file"}}};
  nix::CliNixRunner nix{runner};
  bus::testing::MemoryBus bus;
  state::testing::MemoryStore store;
  SystemClock clock;
  evaluator::EvaluatorConfig cfg;
};

}  // namespace

TEST_F(EvaluatorFlake, EveryCheckBecomesAJobWithExactStatesDependenciesAndErrors) {
  const std::string branch = "feat/\xC3\xBCnicode-$(touch${IFS}pwned);x";
  auto rev = commit(checks_flake(nonce()), branch);
  auto change = change_for(rev, branch, "d1");
  auto o = handle(change, git);
  ASSERT_EQ(o.result, "evaluated") << o.error;
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  EXPECT_EQ(o.jobs, 8);
  EXPECT_EQ(o.eval_errors, 3);

  auto jobs = *store.list_jobs(state::eval_id_for_change(change.id));
  std::map<std::string, state::JobRecord> by_attr;
  for (const auto& j : jobs) by_attr[j.attr] = j;
  const std::string p = "checks.x86_64-linux.";
  const std::string abc = p + "\"a.b c\"";
  std::set<std::string> attrs;
  for (const auto& [a, _] : by_attr) attrs.insert(a);
  EXPECT_EQ(attrs, (std::set<std::string>{p + "ok", p + "fail", p + "dep", p + "depOnFail", p + "throws", p + "aborts", p + "typeError", abc}));

  for (const auto& a : {p + "ok", p + "fail", p + "dep", p + "depOnFail", abc}) {
    const auto& j = by_attr[a];
    EXPECT_EQ(j.state, JobState::kQueued) << a;
    EXPECT_THAT(j.drv_path, StartsWith("/nix/store/")) << a;
    EXPECT_EQ(j.system, "x86_64-linux") << a;
    ASSERT_EQ(j.outputs.size(), 1u) << a;
    EXPECT_THAT(j.outputs.at("out"), StartsWith("/nix/store/")) << a;
    EXPECT_EQ(j.id, job_id(change, a));
  }
  EXPECT_THAT(by_attr[abc].drv_path, HasSubstr("-abc.drv"));

  for (const auto& a : {p + "throws", p + "aborts", p + "typeError"}) {
    EXPECT_EQ(by_attr[a].state, JobState::kEvalFailed) << a;
    EXPECT_TRUE(by_attr[a].drv_path.empty()) << a;
    EXPECT_EQ(by_attr[a].system, "x86_64-linux") << a;
    EXPECT_THAT(by_attr[a].error, Not(HasSubstr("--show-trace"))) << a;
  }
  EXPECT_EQ(by_attr[p + "throws"].error, "error: intentional evaluation error");
  EXPECT_EQ(by_attr[p + "aborts"].error, "error: evaluation aborted with the following error message: 'intentional abort'");
  const auto& type_error = by_attr[p + "typeError"].error;
  EXPECT_THAT(type_error, StartsWith("error: cannot add a string to an integer\n"));
  EXPECT_THAT(type_error, HasSubstr("-source/flake.nix:13:23:"));
  EXPECT_THAT(type_error, HasSubstr("typeError = 1 + \"x\";"));

  // Ready now: what depends on no other job; dep waits for ok, depOnFail for fail.
  EXPECT_EQ(build_requests(), (std::set<std::string>{job_id(change, p + "ok"), job_id(change, p + "fail"), job_id(change, abc)}));
  auto t = *store.finish_job(job_id(change, p + "ok"), JobState::kSucceeded, "", 1);
  EXPECT_EQ(t.ready, std::vector<std::string>{job_id(change, p + "dep")});
  auto t2 = *store.finish_job(job_id(change, p + "fail"), JobState::kFailed, "exit 3", 2);
  EXPECT_EQ(t2.dependency_failed, std::vector<std::string>{job_id(change, p + "depOnFail")});
  // What the builder publishes for those two results.
  const auto eid = state::eval_id_for_change(change.id);
  ASSERT_TRUE(pipeline::publish_transition({bus, store}, eid, t, {}).has_value());
  ASSERT_TRUE(pipeline::publish_transition({bus, store}, eid, t2, {}).has_value());

  std::map<std::string, msg::StatusEvent> last;
  for (const auto& m : bus.published("flurry.status.github")) {
    auto s = *msg::decode_status_event(m.data);
    last[s.context] = s;
  }
  EXPECT_EQ(last["flurry/eval"].state, msg::StatusState::kSuccess);
  EXPECT_EQ(last["flurry/eval"].description, "8 jobs, 3 failed to evaluate");
  EXPECT_EQ(last["flurry/" + abc].state, msg::StatusState::kPending);
  EXPECT_EQ(last["flurry/" + p + "aborts"].state, msg::StatusState::kFailure);

  // The commit was pinned in the project's mirror; the branch name ran nothing.
  auto mirror = cfg.work_dir + "/repos/github/octo/hello.git";
  EXPECT_EQ(run_ok({"git", "-C", mirror, "rev-parse", "refs/flurry/" + rev}), rev);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::current_path() / "pwned"));
  EXPECT_FALSE(std::filesystem::exists(mirror + "/pwned"));

  // A redelivery evaluates nothing and publishes nothing the evaluator and
  // builder did not publish already.
  auto published = bus.published().size();
  auto again = evaluator::handle_change(change, 2, {bus, store, nix, git, clock}, cfg);
  EXPECT_EQ(again.result, "replayed");
  EXPECT_EQ(bus.published().size(), published);
}

TEST_F(EvaluatorFlake, OutputsAlreadyInTheStoreAreSkipped) {
  auto rev = commit(checks_flake(nonce()));
  auto first = change_for(rev, "main", "d1");
  ASSERT_EQ(handle(first, git).result, "evaluated");
  auto ok = job(first, "checks.x86_64-linux.ok");
  auto built = nix.build({.drv_path = ok.drv_path, .timeout = std::chrono::minutes(1)});
  ASSERT_TRUE(built.has_value()) << built.error().message;
  ASSERT_EQ(built->outcome, nix::BuildResult::Outcome::kSucceeded) << built->error;
  EXPECT_EQ(built->outputs, ok.outputs);

  // Another change for the same commit (e.g. a second branch).
  auto second = change_for(rev, "main", "d2");
  ASSERT_EQ(handle(second, git).result, "evaluated");
  EXPECT_EQ(job(second, "checks.x86_64-linux.ok").state, JobState::kSkipped);
  EXPECT_EQ(job(second, "checks.x86_64-linux.dep").state, JobState::kQueued);
  // dep's only dependency is already built: it may build at once.
  EXPECT_TRUE(build_requests().count(job_id(second, "checks.x86_64-linux.dep")));
}

// requiredSystemFeatures route a job to builders that offer them, or end
// it unsupported_system when none does.
TEST_F(EvaluatorFlake, RequiredSystemFeaturesChooseTheQueueOrEndTheJobUnsupported) {
  auto rev = commit(R"({
  outputs = { self }: let
    mk = name: features: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" "echo )" + nonce() + R"( > $out" ]; requiredSystemFeatures = features; };
  in {
    checks.x86_64-linux = { big = mk "big" [ "big-parallel" ]; vm = mk "vm" [ "nixos-test" "kvm" ]; plain = mk "plain" [ ]; };
  };
}
)");
  cfg.build_systems = {"x86_64-linux"};
  cfg.build_features = {"big-parallel"};
  auto c = change_for(rev, "main", "d1");
  ASSERT_EQ(handle(c, git).result, "evaluated");
  auto big = job(c, "checks.x86_64-linux.big");
  EXPECT_EQ(big.state, JobState::kQueued);
  EXPECT_EQ(big.features, std::vector<std::string>{"big-parallel"});
  auto vm = job(c, "checks.x86_64-linux.vm");
  EXPECT_EQ(vm.state, JobState::kUnsupportedSystem);
  EXPECT_EQ(vm.error, "No builder for x86_64-linux offers the system features it requires (kvm, nixos-test)");
  EXPECT_EQ(job(c, "checks.x86_64-linux.plain").state, JobState::kQueued);
  std::map<std::string, std::string> subject_of;  // job id -> subject
  for (const auto& m : bus.published("flurry.build.")) subject_of[msg::decode_build_request(m.data)->job_id] = m.subject;
  EXPECT_EQ(subject_of[big.id], "flurry.build.x86_64-linux.big-parallel");
  EXPECT_EQ(subject_of[job_id(c, "checks.x86_64-linux.plain")], "flurry.build.x86_64-linux");
  EXPECT_FALSE(subject_of.count(vm.id));

  // A builder that announces kvm and nixos-test takes the VM test.
  ASSERT_TRUE(store.register_builder({"vmhost:1", {"x86_64-linux"}, {"kvm", "nixos-test"}, 1, 0, clock.now_ms()}, 60000).has_value());
  auto again = change_for(rev, "main", "d2");
  ASSERT_EQ(handle(again, git).result, "evaluated");
  EXPECT_EQ(job(again, "checks.x86_64-linux.vm").state, JobState::kQueued);
  bool routed = false;
  for (const auto& m : bus.published("flurry.build.x86_64-linux.kvm+nixos-test")) {
    routed = routed || msg::decode_build_request(m.data)->job_id == job_id(again, "checks.x86_64-linux.vm");
  }
  EXPECT_TRUE(routed);
}

TEST_F(EvaluatorFlake, AFlakeWithASyntaxErrorFailsTheEvalWithNixsMessage) {
  auto rev = commit("{\n  outputs = { self }: {\n    checks = ;\n  };\n}\n");
  auto change = change_for(rev, "main", "bad");
  auto o = handle(change, git);
  EXPECT_EQ(o.result, "eval_failed");
  EXPECT_EQ(o.disposition.kind, bus::Disposition::Kind::kAck);
  auto e = **store.get_eval(state::eval_id_for_change(change.id));
  EXPECT_EQ(e.state, state::EvalState::kFailed);
  EXPECT_THAT(e.error, StartsWith("error: syntax error, unexpected ';'\n"));
  EXPECT_THAT(e.error, HasSubstr("-source/flake.nix:3:14:"));
  EXPECT_THAT(e.error, Not(HasSubstr("--show-trace")));
  EXPECT_TRUE(store.list_jobs(e.id)->empty());
  auto statuses = bus.published("flurry.status.github");
  ASSERT_FALSE(statuses.empty());
  auto s = *msg::decode_status_event(statuses.back().data);
  EXPECT_EQ(s.context, "flurry/eval");
  EXPECT_EQ(s.state, msg::StatusState::kFailure);
  EXPECT_EQ(s.description, "error: syntax error, unexpected ';'");
  ASSERT_EQ(bus.published("flurry.eval.finished").size(), 1u);
  EXPECT_EQ(msg::decode_eval_finished(bus.published("flurry.eval.finished")[0].data)->state, "failed");
}

TEST_F(EvaluatorFlake, AFlakeWithoutChecksForTheSystemFailsTheEval) {
  auto rev = commit("{ outputs = { self }: { packages.x86_64-linux = {}; }; }\n");
  auto change = change_for(rev, "main", "nochecks");
  EXPECT_EQ(handle(change, git).result, "eval_failed");
  auto e = **store.get_eval(state::eval_id_for_change(change.id));
  EXPECT_THAT(e.error, HasSubstr("does not provide attribute"));
  EXPECT_THAT(e.error, HasSubstr("'checks.x86_64-linux'"));
}

TEST_F(EvaluatorFlake, ACloneUrlWithADisallowedSchemeFailsTheEvalWithoutFetching) {
  auto rev = commit(checks_flake(nonce()));
  git::CliGit https_only(runner, {.allowed_schemes = {"https"}});
  auto change = change_for(rev, "main", "scheme");
  auto o = handle(change, https_only);
  EXPECT_EQ(o.result, "eval_failed");
  auto e = **store.get_eval(state::eval_id_for_change(change.id));
  EXPECT_THAT(e.error, HasSubstr("clone URL scheme 'file' is not allowed"));
  EXPECT_FALSE(std::filesystem::exists(cfg.work_dir + "/repos/github/octo/hello.git"));
}

TEST_F(EvaluatorFlake, RepositoryConfigPointsAtAFlakeInASubdirectoryAndAnotherAttribute) {
  // buildbot-nix.toml is honoured when there is no flurry.toml or nixbot.toml.
  test::write_file(src + "/buildbot-nix.toml", "flake_dir = \"ci\"\nattribute = \"hydraJobs\"\n");
  test::write_file(src + "/ci/flake.nix", "{ outputs = { self }: { hydraJobs.x86_64-linux.sub = derivation { name = \"sub-" + nonce() +
                                               "\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; args = [\"-c\" \"echo > $out\"]; }; }; }\n");
  run_ok({"git", "-C", src, "add", "."});
  auto rev = commit("{ outputs = _: { }; }\n");  // the root flake has no checks at all
  auto c = change_for(rev, "main", "cfg1");
  auto o = handle(c, git);
  ASSERT_EQ(o.result, "evaluated") << o.error;
  auto j = job(c, "hydraJobs.x86_64-linux.sub");
  EXPECT_EQ(j.state, JobState::kQueued);
  EXPECT_FALSE(j.drv_path.empty());
}

TEST_F(EvaluatorFlake, ABadRepositoryConfigFailsTheEvalNamingTheKey) {
  test::write_file(src + "/flurry.toml", "attribute = 42\n");
  run_ok({"git", "-C", src, "add", "."});
  auto rev = commit(checks_flake(nonce()));
  auto c = change_for(rev, "main", "cfg2");
  auto o = handle(c, git);
  EXPECT_EQ(o.result, "eval_failed");
  auto e = **store.get_eval(state::eval_id_for_change(c.id));
  EXPECT_EQ(e.error, "flurry.toml: attribute must be a string");
}

TEST_F(EvaluatorFlake, NestedSetsAreWalkedAndAnAbortDeepInsideFailsOnlyItsAttribute) {
  auto n = nonce();
  auto drv = [&](const std::string& name) {
    return "derivation { name = \"" + name + "-" + n + "\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; args = [\"-c\" \"echo > $out\"]; }";
  };
  auto flake = "{ outputs = { self }: { checks.x86_64-linux = {\n  top = " + drv("top") + ";\n  group = {\n    inner = " +
               drv("inner") + ";\n    \"x.y\" = " + drv("xy") + ";\n    deeper = { z = " + drv("z") +
               "; };\n  };\n  broken = { bad = abort \"deep abort\"; fine = " + drv("fine") + "; };\n}; }; }\n";
  auto rev = commit(flake);
  auto c = change_for(rev, "main", "nested");
  auto o = handle(c, git);
  ASSERT_EQ(o.result, "evaluated") << o.error;
  for (const auto& attr : {"checks.x86_64-linux.top", "checks.x86_64-linux.group.inner", "checks.x86_64-linux.group.\"x.y\"",
                           "checks.x86_64-linux.group.deeper.z", "checks.x86_64-linux.broken.fine"}) {
    EXPECT_EQ(job(c, attr).state, JobState::kQueued) << attr;
  }
  auto bad = job(c, "checks.x86_64-linux.broken.bad");
  EXPECT_EQ(bad.state, JobState::kEvalFailed);
  EXPECT_NE(bad.error.find("deep abort"), std::string::npos) << bad.error;
  EXPECT_EQ(store.list_jobs(state::eval_id_for_change(c.id))->size(), 6u);
}

// A bus that runs `on_publish` before passing each message on.
class WatchingBus final : public bus::Bus {
 public:
  WatchingBus(bus::Bus& inner, std::function<void(const bus::OutMessage&)> on_publish)
      : inner_(inner), on_publish_(std::move(on_publish)) {}
  Result<void> publish(const bus::OutMessage& m) override {
    on_publish_(m);
    return inner_.publish(m);
  }
  Result<void> consume(const bus::ConsumerSpec& s, bus::Handler h, const std::atomic<bool>& stop) override {
    return inner_.consume(s, h, stop);
  }
  bool healthy() override { return inner_.healthy(); }

 private:
  bus::Bus& inner_;
  std::function<void(const bus::OutMessage&)> on_publish_;
};

TEST_F(EvaluatorFlake, BuildsAreRequestedWhileNixIsStillEvaluating) {
  // `zslow` sorts last and takes seconds to evaluate; `a` is ready at once.
  auto rev = commit(R"({
  outputs = { self }: let mk = name: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo )" +
                    nonce() + R"( > $out" ]; }; in {
    checks.x86_64-linux = {
      a = mk "a";
      zslow = builtins.seq (builtins.foldl' (x: y: x + y) 0 (builtins.genList (x: x) 3000000)) (mk "zslow");
    };
  };
}
)");
  auto change = change_for(rev, "main", "s1");
  std::optional<bool> slow_job_existed;  // when the first build request went out
  WatchingBus watching(bus, [&](const bus::OutMessage& m) {
    if (slow_job_existed || m.subject.rfind("flurry.build.", 0) != 0) return;
    auto j = store.get_job(job_id(change, "checks.x86_64-linux.zslow"));
    slow_job_existed = j && j->has_value();
  });
  auto o = evaluator::handle_change(change, 1, {watching, store, nix, git, clock}, cfg);
  ASSERT_EQ(o.result, "evaluated") << o.error;
  EXPECT_GE(o.batches, 2);
  ASSERT_TRUE(slow_job_existed.has_value());
  EXPECT_FALSE(*slow_job_existed);  // a's build was requested before zslow was evaluated
  EXPECT_EQ(build_requests(), (std::set<std::string>{job_id(change, "checks.x86_64-linux.a"), job_id(change, "checks.x86_64-linux.zslow")}));
}

TEST_F(EvaluatorFlake, APullRequestIsEvaluatedAsItsHeadMergedOntoTheBaseBranch) {
  const auto n = nonce();
  auto write = [&](const std::string& file, const std::string& text) {
    test::write_file(src + "/" + file, text);
    run_ok({"git", "-C", src, "add", file});
    run_ok({"git", "-C", src, "commit", "-q", "-m", file});
    return run_ok({"git", "-C", src, "rev-parse", "HEAD"});
  };
  // Checks come from one file per side, so the two sides merge cleanly.
  write("flake.nix", R"({
  outputs = { self }: let
    mk = name: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo )" + n + R"( > $out" ]; };
    from = f: if builtins.pathExists f then import f mk else {};
  in { checks.x86_64-linux = { always = mk "always"; } // from ./base.nix // from ./pr.nix; };
}
)");
  run_ok({"git", "-C", src, "checkout", "-q", "-b", "topic"});
  const auto head = write("pr.nix", "mk: { fromPr = mk \"from-pr\"; }\n");
  run_ok({"git", "-C", src, "checkout", "-q", "main"});
  const auto base = write("base.nix", "mk: { fromBase = mk \"from-base\"; }\n");
  run_ok({"git", "-C", src, "update-ref", "refs/pull/9/head", head});  // as the forge keeps it

  msg::ChangeEvent c = change_for(head, "main", "pr-9");
  c.kind = "pull_request";
  c.ref = "refs/pull/9/head";
  c.branch = "";
  c.pull_request.number = 9;
  c.pull_request.base_branch = "main";
  c.pull_request.base_rev = base;
  auto o = handle(c, git);
  ASSERT_EQ(o.result, "evaluated") << o.error;
  std::set<std::string> attrs;
  auto jobs = store.list_jobs(state::eval_id_for_change(c.id));
  ASSERT_TRUE(jobs.has_value());
  for (const auto& j : *jobs) attrs.insert(j.attr);
  EXPECT_EQ(attrs, (std::set<std::string>{"checks.x86_64-linux.always", "checks.x86_64-linux.fromBase", "checks.x86_64-linux.fromPr"}));
  for (const auto& m : bus.published("flurry.status.")) EXPECT_EQ(msg::decode_status_event(m.data)->rev, head);

  // The same pull request conflicting with its base fails its eval with the reason.
  run_ok({"git", "-C", src, "checkout", "-q", "topic"});
  const auto clash = write("base.nix", "mk: { other = mk \"other\"; }\n");
  run_ok({"git", "-C", src, "checkout", "-q", "main"});
  run_ok({"git", "-C", src, "update-ref", "refs/pull/9/head", clash});
  auto conflicting = c;
  conflicting.id = "github:pr-9-again";
  conflicting.rev = clash;
  auto f = handle(conflicting, git);
  EXPECT_EQ(f.result, "eval_failed");
  EXPECT_THAT(f.error, HasSubstr("cannot be merged into main"));
  EXPECT_THAT(f.error, HasSubstr("base.nix"));
}
