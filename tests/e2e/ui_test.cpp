// The web UI in a real browser: Debian's chromium, driven headless by
// playwright-core (the scripts in tests/browser), against the whole stack
// (nats-server, redis-server, nix, every service) with a fake GitHub that
// acts as a GitHub App posting check runs and signs users in (OAuth).
//
// This side pushes, waits for the pipeline, reads what the forge received
// and chooses whom the forge signs in; each phase then runs one node script
// that does what a person does in the browser and fails with what it saw.
// Screenshots of every page visited are kept in
// <build>/test-artifacts/ui/ (and the services' logs there when it fails).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "flurry/core/child.hpp"
#include "flurry/core/config.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/core/process.hpp"
#include "flurry/core/text.hpp"
#include "flurry/fakes/fake_forge.hpp"
#include "flurry/http/http.hpp"
#include "flurry/stack/stack.hpp"
#include "flurry/state/ids.hpp"
#include "flurry/test/jwt.hpp"
#include "flurry/test/servers.hpp"

namespace fs = std::filesystem;
using namespace flurry;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const std::string kSystem = "x86_64-linux";
const std::string kBrowserDir = std::string(FLURRY_SOURCE_DIR) + "/tests/browser";
const std::string kArtifacts = std::string(FLURRY_BINARY_DIR) + "/test-artifacts/ui";
const std::string kOwner = "octo";
const std::string kPublicRepo = "widgets";
const std::string kPrivateRepo = "secret-gears";
const std::string kClientId = "Iv1.flurry-ui-test";
const std::string kClientSecret = "ui-test-oauth-client-secret";
// What the failing check prints among 360 other lines, and what the
// attribute that does not evaluate throws.
const std::string kErrorLine = "error: widget exploded at line 42";
const std::string kEvalError = "widget configuration is missing (intentional evaluation error)";
const std::string kNoRev(40, '0');

std::string attr(const std::string& name) { return "checks." + kSystem + "." + name; }
std::string run_name(const std::string& name) { return "flurry/" + attr(name); }

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// The widgets flake: `ok` passes (until `ok_fails`, the push that breaks
// it); `fail` prints 300 lines, the error line, 60 more and fails;
// `dependent` needs `fail`; `broken` does not evaluate; `chatty` prints a
// green numbered line five times a second until the file `release` exists
// (the browser script makes it once it has watched the log grow), so the
// page is always opened while it builds however slow the machine is. Builders have no PATH: shell builtins and
// /bin/sleep only. The nonce keeps the shared store from answering with an
// earlier run's outputs.
std::string widgets_flake(const std::string& nonce, const std::string& release, bool ok_fails) {
  const std::string flake = R"NIX({
  outputs = { self }: let
    mk = name: script: derivation {
      inherit name;
      system = "SYSTEM";
      builder = "/bin/sh";
      args = [ "-c" ("# NONCE\n" + script) ];
    };
    fail = mk "fail" ''
      i=1; while [ $i -le 300 ]; do echo "compiling widget part $i of 300"; i=$((i+1)); done
      echo "ERRORLINE"
      i=1; while [ $i -le 60 ]; do echo "cleaning up part $i"; i=$((i+1)); done
      exit 1
    '';
  in {
    checks.SYSTEM = {
      ok = mk "ok" OKSCRIPT;
      inherit fail;
      dependent = mk "dependent" "cat ${fail} > $out";
      broken = throw "EVALERROR";
      chatty = mk "chatty" ''
        i=1
        while [ ! -e "RELEASE" ]; do
          printf '\033[32mstep %d\033[0m of the chatty build\n' $i
          /bin/sleep 0.2
          i=$((i+1))
          if [ $i -gt 3000 ]; then echo "never released"; exit 1; fi
        done
        echo "the chatty build was released"
        echo done > $out
      '';
    };
  };
}
)NIX";
  std::string s = replaced(flake, "SYSTEM", kSystem);
  s = replaced(s, "NONCE", nonce);
  s = replaced(s, "ERRORLINE", kErrorLine);
  s = replaced(s, "EVALERROR", kEvalError);
  s = replaced(s, "RELEASE", release);
  return replaced(s, "OKSCRIPT", ok_fails ? R"("echo 'ok is not ok any more'; exit 1")" : R"("echo ok > $out")");
}

std::string private_flake(const std::string& nonce) {
  return R"({
  outputs = { self }: {
    checks.)" + kSystem + R"(.gears = derivation {
      name = "gears"; system = ")" + kSystem + R"("; builder = "/bin/sh";
      args = [ "-c" "# )" + nonce + R"(
echo 'the private gears turn'; echo ok > $out" ];
    };
  };
}
)";
}

class BrowserUi : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kBrowserDir + "/node_modules/playwright-core"))
        << "playwright-core is not installed: run `npm ci --prefix tests/browser` (./flurry test does)";
    const char* chromium = std::getenv("FLURRY_CHROMIUM");
    ASSERT_TRUE(fs::exists(chromium ? chromium : "/usr/bin/chromium")) << "chromium is not installed (./flurry test installs it)";
    fs::remove_all(kArtifacts);
    fs::create_directories(kArtifacts);

    const auto key = test::new_rsa_key_pair();
    forge.act_as_app("4242", key.public_pem, 99, kOwner);
    forge.add_repository(fakes::kGitHub, kOwner, kPublicRepo);
    forge.set_oauth_client(fakes::kGitHub, kClientId, kClientSecret);
    test::write_file(tmp.file("oauth-secret"), kClientSecret + "\n");
    fs::permissions(tmp.file("oauth-secret"), fs::perms::owner_read | fs::perms::owner_write);
    nonce = std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) + "-" + std::to_string(::getpid());

    // The web port is fixed before start (links carry it); should another
    // process take it first, start again on another.
    std::string why;
    for (int attempt = 1; attempt <= 3 && !stack_; ++attempt) {
      stack::StackOptions o;
      o.state_dir = tmp.file("state-" + std::to_string(attempt));
      o.bin_dir = FLURRY_BINARY_DIR;
      o.env["NIX_CONFIG"] = test::test_nix_config();
      o.forges["github"] = {forge.url(), "", "4242", key.private_pem, true};
      o.web_port = free_tcp_port();
      o.public_url = "http://127.0.0.1:" + std::to_string(o.web_port);
      o.extra_config = {"github.oauth_url=\"" + forge.url() + "\"", "web.oauth.github.client_id=\"" + kClientId + "\"",
                        "web.oauth.github.client_secret_file=\"" + tmp.file("oauth-secret") + "\"",
                        // feature branches are built too (the project page lists them)
                        "branches.features.match_glob=\"feature/*\""};
      auto s = std::make_unique<stack::Stack>(o);
      if (auto r = s->start(); !r) {
        why += "\nattempt " + std::to_string(attempt) + ": " + r.error().message;
        s->stop();
        continue;
      }
      stack_ = std::move(s);
      base = o.public_url;
    }
    ASSERT_TRUE(stack_) << "the stack did not start:" << why;
    token = text::trim(read_file(stack_->options().state_dir + "/secrets/api-token").value_or(""));
  }

  void TearDown() override {
    if (HasFailure() && stack_) {
      const auto logs = kArtifacts + "/logs";
      fs::create_directories(logs);
      std::error_code ec;
      fs::copy(stack_->options().state_dir + "/logs", logs, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
      std::cout << "services' logs copied to " << logs << "\n";
    }
    if (stack_) {
      EXPECT_TRUE(stack_->stop().empty());
    }
  }

  // --- git and webhooks ------------------------------------------------
  void git(const std::string& repo, std::vector<std::string> args) {
    args.insert(args.begin(), {"git", "-C", repo});
    auto r = default_process_runner().run({.argv = args,
                                           .env = {{"GIT_AUTHOR_NAME", "t"}, {"GIT_AUTHOR_EMAIL", "t@t"},
                                                   {"GIT_COMMITTER_NAME", "t"}, {"GIT_COMMITTER_EMAIL", "t@t"}}});
    ASSERT_TRUE(r && r->ok()) << (r ? r->err : r.error().message);
  }
  // Commits `files` on `branch` of `repo` (created from HEAD when new).
  std::string commit(const std::string& repo, const std::string& branch, const std::map<std::string, std::string>& files) {
    if (!fs::exists(repo + "/.git")) {
      fs::create_directories(repo);
      git(repo, {"init", "-q", "-b", "main"});
    }
    git(repo, {"checkout", "-q", "-B", branch});
    for (const auto& [name, content] : files) test::write_file(repo + "/" + name, content);
    git(repo, {"add", "-A"});
    git(repo, {"commit", "-q", "-m", "ui test: " + branch});
    return stack::commit_all(repo, branch).value_or("");
  }
  // The signed push webhook, as GitHub sends it to the App.
  void push(const std::string& repo_name, const std::string& repo, const std::string& branch, const std::string& before,
            const std::string& after, const std::string& delivery, bool is_private = false) {
    auto body = json::parse(stack::github_push_payload(kOwner, repo_name, "file://" + repo, branch, "main", before, after));
    body["repository"]["private"] = is_private;
    const auto text = body.dump();
    auto r = http::make_client()->send({.method = "POST",
                                        .url = stack_->webhook_url("github"),
                                        .headers = {{"Content-Type", "application/json"},
                                                    {"X-GitHub-Event", "push"},
                                                    {"X-GitHub-Delivery", delivery},
                                                    {"X-Hub-Signature-256", "sha256=" + crypto::hmac_sha256_hex(stack_->webhook_secret(), text)}},
                                        .body = text});
    ASSERT_TRUE(r.has_value()) << r.error().message;
    ASSERT_EQ(r->status, 202) << r->body;
  }

  // --- what the stack says ---------------------------------------------
  // GET on the web API with the API token (it reads private repositories
  // too); null when it does not answer 200.
  json api(const std::string& path) {
    auto r = http::make_client()->send({.url = base + path, .headers = {{"Authorization", "Bearer " + token}}});
    if (!r || r->status != 200) return nullptr;
    return json::parse(r->body, nullptr, false);
  }
  template <class Probe>
  bool eventually(Probe probe, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (probe()) return true;
      std::this_thread::sleep_for(250ms);
    }
    return probe();
  }
  // The jobs of an eval by attribute.
  std::map<std::string, json> jobs_of(const std::string& eval_id) {
    std::map<std::string, json> out;
    auto j = api("/api/evals/" + eval_id + "/jobs");
    const json& list = j.is_object() && j.contains("jobs") ? j["jobs"] : j;
    if (list.is_array()) {
      for (const auto& job : list) out[job.value("attr", "")] = job;
    }
    return out;
  }
  // Waits until the eval has ended and every check run of `rev` in `names`
  // is completed; answers the runs by name.
  std::map<std::string, fakes::CheckRun> wait_ended(const std::string& eval_id, const std::string& rev,
                                                    const std::vector<std::string>& names) {
    std::map<std::string, fakes::CheckRun> runs;
    const bool ended = eventually(
        [&] {
          auto e = api("/api/evals/" + eval_id);
          if (!e.is_object()) return false;
          const auto state = e.value("state", "");
          if (state != "succeeded" && state != "failed" && state != "cancelled") return false;
          runs.clear();
          for (const auto& r : forge.check_runs()) {
            if (r.head_sha == rev) runs[r.name] = r;
          }
          for (const auto& n : names) {
            if (!runs.count(n) || runs[n].status != "completed") return false;
          }
          return true;
        },
        240s);
    EXPECT_TRUE(ended) << "eval " << eval_id << " of " << rev << " did not end with completed check runs: "
                       << api("/api/evals/" + eval_id).dump();
    return runs;
  }

  // --- the browser ------------------------------------------------------
  // Runs tests/browser/<script>.mjs with base= and out= and `args`; its
  // steps are printed as it goes, its failure is the test's.
  void browse(const std::string& script, const std::map<std::string, std::string>& args) {
    std::vector<std::string> argv = {"node", kBrowserDir + "/" + script + ".mjs", "base=" + base, "out=" + kArtifacts};
    for (const auto& [k, v] : args) argv.push_back(k + "=" + v);
    std::mutex mu;
    auto echo = [&](std::string_view s) {
      std::lock_guard<std::mutex> lock(mu);
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
    };
    PosixProcessRunner runner;
    const auto started = std::chrono::steady_clock::now();
    auto r = runner.run({.argv = argv, .timeout = 300s, .on_stdout = echo, .on_stderr = echo});
    std::cout << "[ui] " << script << " took "
              << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
              << " ms (test at " << elapsed_s() << " s)" << std::endl;
    ASSERT_TRUE(r.has_value()) << "cannot run node: " << r.error().message;
    EXPECT_TRUE(r->ok()) << "tests/browser/" << script << ".mjs " << r->describe() << ":\n" << r->err;
  }

  long elapsed_s() const {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - began).count();
  }

  const std::chrono::steady_clock::time_point began = std::chrono::steady_clock::now();
  test::TempDir tmp{"flurry-ui"};
  fakes::FakeForge forge;
  std::unique_ptr<stack::Stack> stack_;
  std::string base;   // the web service, as status links name it
  std::string token;  // the API token
  std::string nonce;
};

}  // namespace

TEST_F(BrowserUi, StatusLinksLiveLogsEvalPagesSigningInAndPrivateProjectsWorkInChromium) {
  const auto widgets = tmp.file("widgets");
  const auto release = tmp.file("release-chatty");
  // Nix run as root builds as a nixbld user, who must see the file appear:
  // the test's directory (0700 from mkdtemp) becomes traversable.
  fs::permissions(tmp.path(), fs::perms::group_exec | fs::perms::others_exec, fs::perm_options::add);
  const std::vector<std::string> all = {"flurry/eval", run_name("ok"), run_name("fail"), run_name("dependent"), run_name("broken"),
                                        run_name("chatty")};

  // The first push.
  const auto rev1 = commit(widgets, "main", {{"flake.nix", widgets_flake(nonce, release, false)}});
  push(kPublicRepo, widgets, "main", kNoRev, rev1, "ui-push-1");
  const auto eval1 = state::eval_id_for_change("github:ui-push-1");

  {
    SCOPED_TRACE("live log: the chatty check, opened while it builds");
    std::string chatty;
    ASSERT_TRUE(eventually(
        [&] {
          auto jobs = jobs_of(eval1);
          if (!jobs.count(attr("chatty")) || jobs[attr("chatty")].value("state", "") != "building") return false;
          chatty = jobs[attr("chatty")].value("id", "");
          return true;
        },
        240s))
        << "the chatty check never started building: " << api("/api/evals/" + eval1 + "/jobs").dump();
    browse("live_log", {{"job", base + "/evals/" + eval1 + "/jobs/" + chatty},
                         {"needle", "step 1"},
                         {"release", release},
                         {"last", "the chatty build was released"}});
    test::write_file(release, "go\n");  // the script does so; this lets the build end should it have failed first
  }

  auto runs = wait_ended(eval1, rev1, all);
  {
    SCOPED_TRACE("status link: the failing check's details_url, as the forge received it");
    const auto link = runs[run_name("fail")].details_url;
    EXPECT_EQ(runs[run_name("fail")].conclusion, "failure");
    ASSERT_EQ(link.rfind(base + "/evals/" + eval1 + "/jobs/", 0), 0u) << link;
    browse("status_link", {{"url", link}, {"error", kErrorLine}});
  }
  {
    SCOPED_TRACE("keyboard and contrast");
    browse("keyboard", {{"eval", eval1}, {"failing", attr("fail")}, {"error", kErrorLine}});
  }
  {
    SCOPED_TRACE("eval page");
    const json expected = {{attr("ok"), "succeeded"},         {attr("fail"), "failed"},        {attr("dependent"), "dependency failed"},
                           {attr("broken"), "evaluation failed"}, {attr("chatty"), "succeeded"}};
    browse("eval_page", {{"eval", eval1},
                         {"jobs", expected.dump()},
                         {"dependent", attr("dependent")},
                         {"dependency", attr("fail")},
                         {"broken", attr("broken")},
                         {"eval_error", kEvalError},
                         {"longest", attr("chatty")}});
  }

  // The second push to main breaks `ok`.
  const auto rev2 = commit(widgets, "main", {{"flake.nix", widgets_flake(nonce, release, true)}});
  push(kPublicRepo, widgets, "main", rev1, rev2, "ui-push-2");
  const auto eval2 = state::eval_id_for_change("github:ui-push-2");
  runs = wait_ended(eval2, rev2, all);
  {
    SCOPED_TRACE("what changed");
    const auto& eval_run = runs["flurry/eval"];
    EXPECT_NE(eval_run.title.find("1 new failure"), std::string::npos) << eval_run.title << "\n" << eval_run.summary;
    EXPECT_NE(eval_run.summary.find("1 new failure"), std::string::npos) << eval_run.summary;
    EXPECT_EQ(runs[run_name("ok")].conclusion, "failure");
    browse("what_changed", {{"eval", eval2}, {"base_eval", eval1}, {"headline", "1 new failure"}, {"newly_failing", attr("ok")}});
  }

  // A second branch, so that the project has refs to list.
  const auto rev3 = commit(widgets, "feature/gears", {{"README", "gears\n"}});
  push(kPublicRepo, widgets, "feature/gears", kNoRev, rev3, "ui-push-3");
  wait_ended(state::eval_id_for_change("github:ui-push-3"), rev3, all);
  {
    SCOPED_TRACE("projects and project pages");
    browse("projects", {{"project", kOwner + "/" + kPublicRepo}, {"refs", "main,feature/gears"}, {"evals", "3"}});
  }

  {
    SCOPED_TRACE("acting: rebuild the failed job as nobody, a reader and a maintainer");
    const auto failed = jobs_of(eval2)[attr("fail")].value("id", "");
    ASSERT_FALSE(failed.empty());
    const auto job_url = base + "/evals/" + eval2 + "/jobs/" + failed;
    browse("acting", {{"as", "anonymous"}, {"job", job_url}});
    forge.set_permission(fakes::kGitHub, kOwner, kPublicRepo, "rita", "read");
    forge.sign_in_as(fakes::kGitHub, "rita", "Rita Reader");
    browse("acting", {{"as", "reader"}, {"job", job_url}, {"login", "rita"}});
    forge.set_permission(fakes::kGitHub, kOwner, kPublicRepo, "mona", "write");
    forge.sign_in_as(fakes::kGitHub, "mona", "Mona Maintainer");
    browse("acting", {{"as", "maintainer"}, {"job", job_url}, {"login", "mona"}, {"rev", rev2}});

    // Exactly one re-run of the commit was queued, and it runs.
    std::vector<json> reruns;
    EXPECT_TRUE(eventually(
        [&] {
          reruns.clear();
          auto page = api("/api/project/evals?forge=github&owner=" + kOwner + "&repo=" + kPublicRepo);
          if (!page.is_object()) return false;
          for (const auto& e : page["evals"]) {
            const bool rerun = e.contains("trigger") && e["trigger"].is_object() && e["trigger"].value("kind", "") == "rerun";
            if (e.value("rev", "") == rev2 && rerun) reruns.push_back(e);
          }
          return !reruns.empty();
        },
        60s));
    ASSERT_EQ(reruns.size(), 1u);
    EXPECT_EQ(reruns[0]["trigger"].value("sender", ""), "mona") << "the re-run is sent by whom pressed Rebuild";
    const auto rerun = reruns[0].value("id", "");
    EXPECT_TRUE(eventually(
        [&] {
          const auto s = api("/api/evals/" + rerun).value("state", "");
          return s == "succeeded" || s == "failed" || s == "cancelled";
        },
        240s))
        << api("/api/evals/" + rerun).dump();
  }

  {
    SCOPED_TRACE("a private repository");
    forge.add_repository(fakes::kGitHub, kOwner, kPrivateRepo);
    forge.set_private(fakes::kGitHub, kOwner, kPrivateRepo);
    const auto secret = tmp.file("secret");
    const auto rev = commit(secret, "main", {{"flake.nix", private_flake(nonce)}});
    push(kPrivateRepo, secret, "main", kNoRev, rev, "ui-push-private", true);
    const auto eval = state::eval_id_for_change("github:ui-push-private");
    wait_ended(eval, rev, {"flurry/eval", run_name("gears")});
    const auto job = jobs_of(eval)[attr("gears")].value("id", "");
    ASSERT_FALSE(job.empty());
    const std::map<std::string, std::string> args = {
        {"eval", eval}, {"job", job}, {"project", kOwner + "/" + kPrivateRepo}, {"public", kOwner + "/" + kPublicRepo}};
    auto as = [&](const std::string& who, const std::string& login) {
      auto a = args;
      a["as"] = who;
      if (!login.empty()) a["login"] = login;
      return a;
    };
    browse("private", as("anonymous", ""));
    forge.set_permission(fakes::kGitHub, kOwner, kPrivateRepo, "sam", "read");
    forge.sign_in_as(fakes::kGitHub, "sam", "Sam Insider");
    browse("private", as("member", "sam"));
  }
}
