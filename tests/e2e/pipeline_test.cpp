// End to end: real nats-server, redis-server, nix and git, the service
// binaries, and a fake GitHub API. A signed push webhook for a local
// repository must become the exact set of commit statuses, binary-cache
// entries and effect runs a user expects.
#include <gtest/gtest.h>

#include <algorithm>

#include <filesystem>
#include <thread>

#include "flurry/core/config.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/core/process.hpp"
#include "flurry/core/log.hpp"
#include "flurry/fakes/fake_forge.hpp"
#include "flurry/core/text.hpp"
#include "flurry/http/http.hpp"
#include "flurry/stack/stack.hpp"
#include "flurry/state/ids.hpp"
#include "flurry/state/redis_store.hpp"
#include "flurry/test/servers.hpp"

namespace fs = std::filesystem;
using namespace flurry;
using namespace std::chrono_literals;

namespace {

const std::string kToken = "ghs_e2eTokenThatMustNeverBeLogged123";
const std::string kEffectSecret = "effect-secret-value-9f8e7d";
const std::string kSystem = "x86_64-linux";

std::string ctx(const std::string& attr) { return "flurry/checks." + kSystem + "." + attr; }

// The test flake. `nonce` keeps outputs fresh across runs (the store persists).
std::string flake(const std::string& nonce, bool with_failures) {
  std::string checks = R"(
      ok = mk "ok" "echo building ok; echo ok > $out";
      dep = mk "dep" "echo ${ok} > $out";
)";
  if (with_failures) {
    checks += R"(
      fail = mk "fail" "echo about to fail; exit 3";
      depOnFail = mk "dep-on-fail" "echo ${fail} > $out";
      throws = throw "intentional evaluation error";
)";
  }
  return R"({
  outputs = { self }:
    let
      mk = name: script: derivation {
        inherit name;
        system = ")" + kSystem + R"(";
        builder = "/bin/sh";
        args = [ "-c" ("# )" + nonce + R"(
" + script) ];
      };
    in {
      checks.)" + kSystem + R"( = rec {)" + checks + R"(      };
      herculesCI = args: {
        onPush.default.outputs.effects.deploy = mk "deploy" ''
          echo "effect-ran rev=${args.primaryRepo.rev}"
          found=no
          while IFS= read -r line || [ -n "$line" ]; do
            case "$line" in *deploy-key*) found=yes ;; esac
          done < "$HERCULES_CI_SECRETS_JSON"
          if [ "$found" = yes ]; then echo "secret present"; else echo "secret missing"; exit 1; fi
          echo done > $out
        '';
      };
    };
}
)";
}

class Pipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    stack::StackOptions o;
    o.state_dir = tmp.file("state");
    o.bin_dir = FLURRY_BINARY_DIR;
    o.forges["github"] = {github.url(), kToken};
    o.extra_config.push_back("branches.features.match_glob=\"feature*\"");
    o.log_level = "debug";
    o.env["NIX_CONFIG"] = test::test_nix_config();
    o.effect_secrets["github:octo/*"] = R"({"deploy-key": {"data": {"key": ")" + kEffectSecret + R"("}}})";
    setenv("NIX_CONFIG", o.env["NIX_CONFIG"].c_str(), 1);
    stack_ = std::make_unique<stack::Stack>(o);
    auto r = stack_->start();
    ASSERT_TRUE(r.has_value()) << r.error().message;
    auto s = state::connect_redis({.host = "127.0.0.1", .port = stack_->redis_port()});
    ASSERT_TRUE(s.has_value()) << s.error().message;
    store = std::move(*s);
    repo = tmp.file("repo");
    nonce = std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  }

  void TearDown() override {
    if (!stack_) return;
    auto unclean = stack_->stop();
    EXPECT_TRUE(unclean.empty()) << "services that did not stop cleanly on SIGTERM: " << unclean.size() << " "
                                 << (unclean.empty() ? "" : unclean[0]);
  }

  // Commits `flake_text` on `branch` and sends the signed push webhook.
  std::string push(const std::string& flake_text, const std::string& branch, const std::string& delivery) {
    test::write_file(repo + "/flake.nix", flake_text);
    PosixProcessRunner git;
    if (!fs::exists(repo + "/.git")) {
      EXPECT_TRUE(git.run({.argv = {"git", "init", "-q", "-b", "main", repo}})->ok());
    }
    EXPECT_TRUE(git.run({.argv = {"git", "-C", repo, "checkout", "-q", "-B", branch}})->ok());
    auto rev = stack::commit_all(repo, "push " + delivery);
    EXPECT_TRUE(rev.has_value());
    auto body = stack::github_push_payload("octo", "hello", "file://" + repo, branch, "main", std::string(40, '0'), *rev);
    auto resp = http::make_client()->send(
        {.method = "POST",
         .url = stack_->webhook_url(),
         .headers = {{"Content-Type", "application/json"},
                     {"X-GitHub-Event", "push"},
                     {"X-GitHub-Delivery", delivery},
                     {"X-Hub-Signature-256", "sha256=" + crypto::hmac_sha256_hex(stack_->webhook_secret(), body)}},
         .body = body});
    EXPECT_TRUE(resp.has_value());
    if (resp) {
      EXPECT_EQ(resp->status / 100, 2) << resp->body;
    }
    return *rev;
  }

  // Waits until the eval of `delivery` ended and `contexts` all hold a
  // non-pending final status for `sha`.
  std::map<std::string, fakes::PostedStatus> wait_for(const std::string& sha, const std::vector<std::string>& contexts,
                                                      const std::string& delivery) {
    auto eval_id = state::eval_id_for_change("github:" + delivery);
    auto deadline = std::chrono::steady_clock::now() + 240s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto finals = github.final_statuses(sha);
      bool done = true;
      for (const auto& c : contexts) done = done && finals.count(c) && finals[c].state != "pending";
      auto e = store->get_eval(eval_id);
      bool ended = e && e->has_value() &&
                   ((*e)->state == state::EvalState::kSucceeded || (*e)->state == state::EvalState::kFailed);
      if (done && ended) {
        std::this_thread::sleep_for(1500ms);  // let late, wrong statuses show up too
        return github.final_statuses(sha);
      }
      auto dead = stack_->dead_children();
      if (!dead.empty()) {
        ADD_FAILURE() << dead[0] << " died; see " << stack_->log_path(dead[0]);
        break;
      }
      std::this_thread::sleep_for(200ms);
    }
    ADD_FAILURE() << "timed out waiting for statuses of " << sha;
    return github.final_statuses(sha);
  }

  std::string out_path(const std::string& delivery, const std::string& attr) {
    auto eval_id = state::eval_id_for_change("github:" + delivery);
    auto job = store->get_job(state::job_id_for(eval_id, "checks." + kSystem + "." + attr));
    if (!job || !job->has_value() || !(*job)->outputs.count("out")) return "";
    return (*job)->outputs.at("out");
  }

  bool in_cache(const std::string& store_path) {
    auto base = fs::path(store_path).filename().string();
    return fs::exists(stack_->cache_dir() + "/" + base.substr(0, 32) + ".narinfo");
  }

  test::TempDir tmp{"flurry-e2e"};
  fakes::FakeForge github;
  std::unique_ptr<stack::Stack> stack_;
  std::unique_ptr<state::StateStore> store;
  std::string repo;
  std::string nonce;
};

}  // namespace

TEST_F(Pipeline, SignedPushBecomesPerAttributeStatusesCacheEntriesAndEffects) {
  // 1. A default-branch push with every kind of outcome.
  auto rev1 = push(flake(nonce, true), "main", "delivery-1");
  auto s1 = wait_for(rev1, {"flurry/eval", ctx("ok"), ctx("dep"), ctx("fail"), ctx("depOnFail"), ctx("throws")}, "delivery-1");
  EXPECT_EQ(s1["flurry/eval"].state, "success");
  EXPECT_EQ(s1[ctx("ok")].state, "success");
  EXPECT_EQ(s1[ctx("dep")].state, "success");
  EXPECT_EQ(s1[ctx("fail")].state, "failure");
  EXPECT_EQ(s1[ctx("depOnFail")].state, "failure");
  EXPECT_NE(s1[ctx("depOnFail")].description.find("checks." + kSystem + ".fail"), std::string::npos)
      << s1[ctx("depOnFail")].description;
  EXPECT_EQ(s1[ctx("throws")].state, "failure");
  EXPECT_NE(s1[ctx("throws")].description.find("intentional evaluation error"), std::string::npos)
      << s1[ctx("throws")].description;
  EXPECT_EQ(s1.size(), 6u) << "no effects status when builds failed";
  for (const auto& [c, st] : s1) {
    EXPECT_EQ(st.owner, "octo");
    EXPECT_EQ(st.repo, "hello");
  }
  // No context ever went back to pending after its result. (Pending comes
  // first when it is posted at all: a build that finishes within moments
  // of its job being recorded may reach the reporter first, and the older
  // pending is then rightly never posted.)
  std::map<std::string, std::vector<std::string>> sequence;
  for (const auto& st : github.statuses()) {
    if (st.sha == rev1) sequence[st.context].push_back(st.state);
  }
  for (const auto& [context, states] : sequence) {
    auto result = std::find_if(states.begin(), states.end(), [](const std::string& x) { return x != "pending"; });
    EXPECT_TRUE(std::find(result, states.end(), "pending") == states.end()) << context;
  }
  EXPECT_EQ(sequence["flurry/eval"].back(), "success");
  // The reporter authenticates with the token.
  auto calls = github.calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls[0].headers["authorization"], "Bearer " + kToken);
  // Outputs of the passing builds are in the signed binary cache; the failed one is not.
  auto ok_out = out_path("delivery-1", "ok");
  auto dep_out = out_path("delivery-1", "dep");
  ASSERT_FALSE(ok_out.empty());
  ASSERT_FALSE(dep_out.empty());
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!(in_cache(ok_out) && in_cache(dep_out)) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(in_cache(ok_out)) << ok_out;
  EXPECT_TRUE(in_cache(dep_out)) << dep_out;
  EXPECT_FALSE(in_cache(out_path("delivery-1", "fail")));
  auto narinfo = read_file(stack_->cache_dir() + "/" + fs::path(ok_out).filename().string().substr(0, 32) + ".narinfo");
  ASSERT_TRUE(narinfo.has_value());
  EXPECT_NE(narinfo->find("Sig: flurry-local-1:"), std::string::npos) << *narinfo;
  // The failed build's log was kept.
  auto eval1 = state::eval_id_for_change("github:delivery-1");
  auto fail_log = store->get_log(state::job_id_for(eval1, "checks." + kSystem + ".fail"));
  ASSERT_TRUE(fail_log.has_value());
  EXPECT_NE(fail_log->find("about to fail"), std::string::npos) << *fail_log;
  EXPECT_TRUE(store->list_effects(eval1)->empty());
  // The same through the web API, over HTTP: the eval, its jobs, the log;
  // rebuild only with the API token.
  {
    auto client = http::make_client();
    const auto api = stack_->service_url("web") + "/api";
    auto eval = client->send({.url = api + "/evals/" + eval1});
    ASSERT_TRUE(eval.has_value()) << eval.error().message;
    EXPECT_EQ(eval->status, 200) << eval->body;
    EXPECT_NE(eval->body.find("\"state\":\"failed\""), std::string::npos) << eval->body;
    auto log = client->send({.url = api + "/jobs/" + state::job_id_for(eval1, "checks." + kSystem + ".fail") + "/log"});
    ASSERT_TRUE(log.has_value());
    EXPECT_NE(log->body.find("about to fail"), std::string::npos) << log->body;
    EXPECT_EQ(log->header("x-flurry-job-state"), "failed");
    const std::string rebuild = R"({"drv_paths": ["/nix/store/00000000000000000000000000000000-x.drv"]})";
    EXPECT_EQ(client->send({.method = "POST", .url = api + "/rebuild", .body = rebuild})->status, 401);
    auto token = text::trim(read_file(stack_->options().state_dir + "/secrets/api-token").value_or(""));
    auto ok = client->send({.method = "POST", .url = api + "/rebuild", .headers = {{"Authorization", "Bearer " + token}}, .body = rebuild});
    ASSERT_TRUE(ok.has_value());
    EXPECT_EQ(ok->status, 200) << ok->body;
  }

  // 2. A default-branch push where everything passes: the effect runs.
  auto rev2 = push(flake(nonce, false), "main", "delivery-2");
  auto eval2 = state::eval_id_for_change("github:delivery-2");
  auto s2 = wait_for(rev2, {"flurry/eval", ctx("ok"), ctx("dep"), "flurry/effects"}, "delivery-2");
  EXPECT_EQ(s2["flurry/eval"].state, "success");
  EXPECT_EQ(s2[ctx("ok")].state, "success");
  EXPECT_EQ(s2["flurry/effects"].state, "success") << s2["flurry/effects"].description;
  auto effects = store->list_effects(eval2);
  ASSERT_TRUE(effects.has_value());
  ASSERT_EQ(effects->size(), 1u);
  EXPECT_EQ((*effects)[0].state, "succeeded") << (*effects)[0].log;
  EXPECT_NE((*effects)[0].log.find("effect-ran rev=" + rev2), std::string::npos) << (*effects)[0].log;
  EXPECT_NE((*effects)[0].log.find("secret present"), std::string::npos) << (*effects)[0].log;

  // The default branch keeps gcroots and outputs files of its outputs.
  const auto kept = stack_->options().state_dir;
  const auto ok2 = out_path("delivery-2", "ok");
  ASSERT_FALSE(ok2.empty());
  const auto under = "/github/octo/hello/main/checks." + kSystem + ".ok";
  EXPECT_EQ(read_file(kept + "/outputs" + under).value_or(""), ok2 + "\n");
  std::error_code ec;
  EXPECT_EQ(fs::read_symlink(kept + "/gcroots" + under, ec).string(), ok2);

  // 3. The same passing flake on another branch: built, but no effects.
  auto rev3 = push(flake(nonce, false) + "\n# feature\n", "feature", "delivery-3");
  auto s3 = wait_for(rev3, {"flurry/eval", ctx("ok"), ctx("dep")}, "delivery-3");
  EXPECT_EQ(s3["flurry/eval"].state, "success");
  EXPECT_EQ(s3[ctx("ok")].state, "success");
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(github.final_statuses(rev3).count("flurry/effects"), 0u);
  EXPECT_TRUE(store->list_effects(state::eval_id_for_change("github:delivery-3"))->empty());
  // Its rule (register_gcroots by default, no outputs files).
  const auto feature = "/github/octo/hello/feature/checks." + kSystem + ".ok";
  EXPECT_TRUE(fs::is_symlink(kept + "/gcroots" + feature));
  EXPECT_FALSE(fs::exists(kept + "/outputs" + feature));

  // No secret (forge token, effect secret, webhook secret, API token)
  // reached a log file, a status or any other forge call's body, a
  // service's metrics, the API's answers or a stored effect log.
  const auto api_token = text::trim(read_file(stack_->options().state_dir + "/secrets/api-token").value_or(""));
  ASSERT_FALSE(api_token.empty());
  const std::vector<std::string> secrets = {kToken, kEffectSecret, stack_->webhook_secret(), api_token};
  auto expect_no_secret = [&](const std::string& text, const std::string& where) {
    for (const auto& secret : secrets) EXPECT_EQ(text.find(secret), std::string::npos) << where << " shows a secret";
  };
  for (const auto& entry : fs::directory_iterator(stack_->options().state_dir + "/logs")) {
    expect_no_secret(read_file(entry.path().string()).value_or(""), entry.path().string());
  }
  for (const auto& st : github.statuses()) expect_no_secret(st.context + st.description + st.target_url, "status " + st.context);
  for (const auto& call : github.calls()) expect_no_secret(call.path + call.query + call.body, "forge call " + call.path);
  auto client = http::make_client();
  for (const auto& name : stack::service_names()) {
    auto m = client->send({.url = stack_->service_url(name) + "/metrics"});
    ASSERT_TRUE(m.has_value());
    expect_no_secret(m->body, name + " /metrics");
  }
  const auto api = stack_->service_url("web") + "/api";
  for (const auto& delivery : {"delivery-1", "delivery-2", "delivery-3"}) {
    const auto id = state::eval_id_for_change(std::string("github:") + delivery);
    for (const auto& path : {"/evals/" + id, "/evals/" + id + "/jobs"}) {
      auto r = client->send({.url = api + path});
      ASSERT_TRUE(r.has_value());
      EXPECT_EQ(r->status, 200) << path;
      expect_no_secret(r->body, "GET /api" + path);
    }
    auto jobs = store->list_jobs(id);
    ASSERT_TRUE(jobs.has_value());
    for (const auto& j : *jobs) {
      auto r = client->send({.url = api + "/jobs/" + j.id + "/log"});
      ASSERT_TRUE(r.has_value());
      expect_no_secret(r->body, "log of " + j.attr);
    }
    auto fx = store->list_effects(id);
    ASSERT_TRUE(fx.has_value());
    for (const auto& e : *fx) expect_no_secret(e.log, "effect log");
  }
}

TEST_F(Pipeline, BadSignatureIsRefusedAndNothingIsEvaluated) {
  auto body = stack::github_push_payload("octo", "hello", "file://" + repo, "main", "main", std::string(40, '0'), std::string(40, 'a'));
  auto resp = http::make_client()->send({.method = "POST",
                                         .url = stack_->webhook_url(),
                                         .headers = {{"X-GitHub-Event", "push"},
                                                     {"X-GitHub-Delivery", "bad-sig"},
                                                     {"X-Hub-Signature-256", "sha256=" + std::string(64, '0')}},
                                         .body = body});
  ASSERT_TRUE(resp.has_value());
  EXPECT_EQ(resp->status, 401);
  std::this_thread::sleep_for(1s);
  EXPECT_FALSE(store->get_eval(state::eval_id_for_change("github:bad-sig"))->has_value());
  EXPECT_TRUE(github.statuses().empty());
}
