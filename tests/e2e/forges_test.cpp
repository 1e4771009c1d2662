// End to end, per forge: a webhook shaped like the forge's own (fixtures in
// tests/fixtures/webhooks), signed the forge's way, through the whole
// stack (real NATS, Redis, nix, git), to the final statuses the fake forge
// received through that forge's status API.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "flurry/core/crypto.hpp"
#include "flurry/core/process.hpp"
#include "flurry/core/text.hpp"
#include "flurry/fakes/fake_forge.hpp"
#include "flurry/http/http.hpp"
#include "flurry/stack/stack.hpp"
#include "flurry/state/ids.hpp"
#include "flurry/state/redis_store.hpp"
#include "flurry/test/jwt.hpp"
#include "flurry/test/servers.hpp"

namespace fs = std::filesystem;
using namespace flurry;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const std::string kSystem = "x86_64-linux";
std::string ctx(const std::string& attr) { return "flurry/checks." + kSystem + "." + attr; }

json fixture(const std::string& forge, const std::string& name) {
  auto text = read_file(std::string(FLURRY_SOURCE_DIR) + "/tests/fixtures/webhooks/" + forge + "/" + name + ".json");
  EXPECT_TRUE(text.has_value()) << forge << "/" << name;
  return json::parse(text.value_or("{}"));
}

class ForgeFlows : public ::testing::Test {
 protected:
  void SetUp() override {
    forge.set_token("gitea", "gitea-token-e2e");
    forge.set_token("gitlab", "gitlab-token-e2e");
    stack::StackOptions o;
    o.state_dir = tmp.file("state");
    o.bin_dir = FLURRY_BINARY_DIR;
    o.forges["github"] = {forge.url(), "github-token-e2e"};
    o.forges["gitea"] = {forge.url(), "gitea-token-e2e"};
    o.forges["gitlab"] = {forge.url(), "gitlab-token-e2e"};
    o.env["NIX_CONFIG"] = test::test_nix_config();
    setenv("NIX_CONFIG", o.env["NIX_CONFIG"].c_str(), 1);
    adjust(o);
    stack_ = std::make_unique<stack::Stack>(o);
    auto r = stack_->start();
    ASSERT_TRUE(r.has_value()) << r.error().message;
    auto s = state::connect_redis({.host = "127.0.0.1", .port = stack_->redis_port()});
    ASSERT_TRUE(s.has_value()) << s.error().message;
    store = std::move(*s);
    repo = tmp.file("repo");
    nonce = std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    git({"init", "-q", "-b", "main", repo});
  }
  // For fixtures that run the stack otherwise.
  virtual void adjust(stack::StackOptions&) {}

  void TearDown() override {
    if (stack_) {
      EXPECT_TRUE(stack_->stop().empty());
    }
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
  // A flake with checks `ok`, and `fail` when asked; extra checks come from
  // extra.nix when it exists (so two branches can add checks and merge).
  std::string flake(bool failing) {
    return R"({
  outputs = { self }: let
    mk = name: script: derivation { inherit name; system = ")" + kSystem + R"("; builder = "/bin/sh"; args = [ "-c" ("# )" + nonce + R"(
" + script) ]; };
    extra = if builtins.pathExists ./extra.nix then import ./extra.nix mk else {};
  in { checks.)" + kSystem + R"( = { ok = mk "ok" "echo ok > $out"; } // extra)" + (failing ? R"( // { fail = mk "fail" "exit 3"; })" : "") +
           R"(; };
}
)";
  }

  int post(const std::string& forge_name, std::map<std::string, std::string> headers, const std::string& body) {
    headers["Content-Type"] = "application/json";
    auto r = http::make_client()->send({.method = "POST", .url = stack_->webhook_url(forge_name), .headers = headers, .body = body});
    EXPECT_TRUE(r.has_value());
    if (r) {
      EXPECT_EQ(r->status / 100, 2) << r->body;
    }
    return r ? r->status : 0;
  }
  int github_event(const std::string& event, const std::string& delivery, const json& body) {
    auto text = body.dump();
    return post("github", {{"X-GitHub-Event", event}, {"X-GitHub-Delivery", delivery},
                           {"X-Hub-Signature-256", "sha256=" + crypto::hmac_sha256_hex(stack_->webhook_secret(), text)}},
                text);
  }
  int gitea_event(const std::string& event, const std::string& delivery, const json& body) {
    auto text = body.dump();
    return post("gitea", {{"X-Gitea-Event", event}, {"X-Gitea-Delivery", delivery},
                          {"X-Gitea-Signature", crypto::hmac_sha256_hex(stack_->webhook_secret(), text)}},
                text);
  }
  int gitlab_event(const std::string& event, const std::string& uuid, const json& body) {
    return post("gitlab", {{"X-Gitlab-Event", event}, {"X-Gitlab-Event-UUID", uuid}, {"X-Gitlab-Token", stack_->webhook_secret()}},
                body.dump());
  }

  // Waits until the eval of `change_id` ended and each of `contexts` holds a
  // final (not pending) status for `sha` on `forge_name`.
  std::map<std::string, fakes::PostedStatus> wait_for(const std::string& forge_name, const std::string& sha,
                                                      const std::vector<std::string>& contexts, const std::string& change_id) {
    const auto eval_id = state::eval_id_for_change(change_id);
    const auto deadline = std::chrono::steady_clock::now() + 180s;
    std::optional<std::chrono::steady_clock::time_point> ended_at;
    while (std::chrono::steady_clock::now() < deadline) {
      auto finals = forge.final_statuses(sha, forge_name);
      bool done = true;
      for (const auto& c : contexts) done = done && finals.count(c) && finals[c].state != "pending";
      auto e = store->get_eval(eval_id);
      const bool ended = e && e->has_value() && (*e)->state != state::EvalState::kEvaluating && (*e)->state != state::EvalState::kBuilding;
      if (ended && !ended_at) ended_at = std::chrono::steady_clock::now();
      // Once ended, statuses still on their way get a few seconds (and late,
      // wrong ones a chance to show up).
      if (ended_at && std::chrono::steady_clock::now() - *ended_at > (done ? 1500ms : 10s)) {
        if (!done) ADD_FAILURE() << "the eval ended without final " << forge_name << " statuses for every context";
        return forge.final_statuses(sha, forge_name);
      }
      auto dead = stack_->dead_children();
      if (!dead.empty()) {
        ADD_FAILURE() << dead[0] << " died; see " << stack_->log_path(dead[0]);
        break;
      }
      std::this_thread::sleep_for(200ms);
    }
    ADD_FAILURE() << "timed out waiting for " << forge_name << " statuses of " << sha;
    return forge.final_statuses(sha, forge_name);
  }

  test::TempDir tmp{"flurry-e2e-forges"};
  fakes::FakeForge forge;
  std::unique_ptr<stack::Stack> stack_;
  std::unique_ptr<state::StateStore> store;
  std::string repo, nonce;
};

}  // namespace

TEST_F(ForgeFlows, GitHubPullRequestFromAForkIsBuiltMergedOntoItsBaseAndClosingItCancels) {
  forge.set_permission("github", "octo-org", "hello-world", "outsider", "write");  // trusted: see PullRequestTrust
  commit("main", {{"flake.nix", flake(false)}});
  const auto head = commit("topic", {{"extra.nix", "mk: { fromPr = mk \"from-pr\" \"echo pr > $out\"; }\n"}});
  const auto base = commit("main", {{"README", "base moved on\n"}});
  git({"-C", repo, "update-ref", "refs/pull/42/head", head});
  auto body = fixture("github", "pull_request_opened");
  body["repository"]["clone_url"] = "file://" + repo;
  body["pull_request"]["base"]["repo"]["clone_url"] = "file://" + repo;
  body["pull_request"]["head"]["sha"] = head;
  body["pull_request"]["base"]["sha"] = base;
  github_event("pull_request", "pr-open", body);
  auto s = wait_for("github", head, {"flurry/eval", ctx("ok"), ctx("fromPr")}, "github:pr-open");
  EXPECT_EQ(s["flurry/eval"].state, "success") << s["flurry/eval"].description;
  EXPECT_EQ(s[ctx("ok")].state, "success");
  EXPECT_EQ(s[ctx("fromPr")].state, "success");
  EXPECT_EQ(s[ctx("ok")].owner, "octo-org");
  EXPECT_EQ(s[ctx("ok")].repo, "hello-world");
  // Nothing was posted for the merge commit or the base.
  EXPECT_TRUE(forge.final_statuses(base).empty());

  // New commits that fail, then the pull request is closed while they build.
  const auto head2 = commit("topic", {{"flake.nix", flake(true)}, {"extra.nix", "mk: { slow = mk \"slow\" \"/bin/sleep 60; echo > $out\"; }\n"}});
  git({"-C", repo, "update-ref", "refs/pull/42/head", head2});
  auto sync = fixture("github", "pull_request_synchronize");
  sync["repository"]["clone_url"] = "file://" + repo;
  sync["pull_request"]["head"]["sha"] = head2;
  sync["pull_request"]["base"]["sha"] = base;
  github_event("pull_request", "pr-sync", sync);
  const auto eval2 = state::eval_id_for_change("github:pr-sync");
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto e = store->get_eval(eval2);
    if (e && e->has_value() && (*e)->state == state::EvalState::kBuilding) break;
    std::this_thread::sleep_for(100ms);
  }

  auto closed = fixture("github", "pull_request_closed");
  closed["repository"]["clone_url"] = "file://" + repo;
  closed["pull_request"]["head"]["sha"] = head2;
  github_event("pull_request", "pr-close", closed);
  auto s2 = wait_for("github", head2, {"flurry/eval", ctx("slow")}, "github:pr-sync");
  EXPECT_EQ((*store->get_eval(eval2))->state, state::EvalState::kCancelled);
  EXPECT_EQ(s2[ctx("slow")].state, "error");
  EXPECT_NE(s2[ctx("slow")].description.find("pull request #42 was closed"), std::string::npos) << s2[ctx("slow")].description;
}

TEST_F(ForgeFlows, GiteaPushAndPullRequestEndAsGiteaCommitStatuses) {
  const auto rev = commit("main", {{"flake.nix", flake(true)}});
  auto push = fixture("gitea", "push");
  push["after"] = rev;
  push["repository"]["clone_url"] = "file://" + repo;
  gitea_event("push", "gitea-push-1", push);
  auto s = wait_for("gitea", rev, {"flurry/eval", ctx("ok"), ctx("fail")}, "gitea:gitea-push-1");
  EXPECT_EQ(s["flurry/eval"].state, "success");
  EXPECT_EQ(s[ctx("ok")].state, "success");
  EXPECT_EQ(s[ctx("fail")].state, "failure");
  EXPECT_EQ(s[ctx("ok")].owner, "flurry-org");
  EXPECT_EQ(s[ctx("ok")].repo, "hello");
  // Every call carried Gitea's token header.
  for (const auto& call : forge.calls()) {
    if (call.forge == "gitea") {
      EXPECT_EQ(call.headers.at("authorization"), "token gitea-token-e2e") << call.path;
    }
  }

  forge.set_permission("gitea", "flurry-org", "hello", "visitor", "write");
  const auto head = commit("add-check", {{"extra.nix", "mk: { added = mk \"added\" \"echo > $out\"; }\n"}});
  git({"-C", repo, "update-ref", "refs/pull/5/head", head});
  auto pr = fixture("gitea", "pull_request_opened");
  pr["repository"]["clone_url"] = "file://" + repo;
  pr["pull_request"]["head"]["sha"] = head;
  pr["pull_request"]["base"]["sha"] = rev;
  gitea_event("pull_request", "gitea-pr-1", pr);
  auto p = wait_for("gitea", head, {"flurry/eval", ctx("added")}, "gitea:gitea-pr-1");
  EXPECT_EQ(p["flurry/eval"].state, "success");
  EXPECT_EQ(p[ctx("added")].state, "success");
}

TEST_F(ForgeFlows, GitLabPushAndMergeRequestEndAsGitLabCommitStatuses) {
  const auto rev = commit("main", {{"flake.nix", flake(true)}});
  auto push = fixture("gitlab", "push");
  push["after"] = rev;
  push["checkout_sha"] = rev;
  push["project"]["git_http_url"] = "file://" + repo;
  gitlab_event("Push Hook", "gl-push-1", push);
  auto s = wait_for("gitlab", rev, {"flurry/eval", ctx("ok"), ctx("fail")}, "gitlab:gl-push-1");
  EXPECT_EQ(s["flurry/eval"].state, "success");
  EXPECT_EQ(s[ctx("ok")].state, "success");
  EXPECT_EQ(s[ctx("fail")].state, "failed");  // GitLab's word
  EXPECT_EQ(s[ctx("ok")].owner, "infra/nix");
  EXPECT_EQ(s[ctx("ok")].repo, "hello");
  // Each context was pending (queued) before it ended.
  bool pending_seen = false;
  for (const auto& st : forge.statuses()) pending_seen = pending_seen || (st.forge == "gitlab" && st.state == "pending");
  EXPECT_TRUE(pending_seen);

  forge.add_repository("gitlab", "infra/nix", "hello");
  forge.set_permission("gitlab", "infra/nix", "hello", "contributor", "30");
  const auto head = commit("ms-viewport", {{"extra.nix", "mk: { fromMr = mk \"from-mr\" \"echo > $out\"; }\n"}});
  git({"-C", repo, "update-ref", "refs/merge-requests/7/head", head});
  auto mr = fixture("gitlab", "merge_request_open");
  mr["project"]["git_http_url"] = "file://" + repo;
  mr["object_attributes"]["last_commit"]["id"] = head;
  gitlab_event("Merge Request Hook", "gl-mr-1", mr);
  auto m = wait_for("gitlab", head, {"flurry/eval", ctx("fromMr")}, "gitlab:gl-mr-1");
  EXPECT_EQ(m["flurry/eval"].state, "success") << m["flurry/eval"].description;
  EXPECT_EQ(m[ctx("fromMr")].state, "success");
}

TEST_F(ForgeFlows, AForgeThatFailsRateLimitsAndAnswersSlowlyStillEndsWithTheRightStatuses) {
  // Gitea's status API: two 502s, a secondary-rate-limit 403 asking for a
  // second's wait, then two slow answers.
  forge.fail_next(2, 502, "bad gateway", {}, "/api/v1/");
  forge.fail_next(1, 403, R"({"message":"You have exceeded a secondary rate limit."})", {{"retry-after", "1"}}, "/api/v1/");
  forge.delay_next(2, 1500ms, "/api/v1/");
  const auto rev = commit("main", {{"flake.nix", flake(true)}});
  auto push = fixture("gitea", "push");
  push["after"] = rev;
  push["repository"]["clone_url"] = "file://" + repo;
  gitea_event("push", "flaky-forge", push);
  auto s = wait_for("gitea", rev, {"flurry/eval", ctx("ok"), ctx("fail")}, "gitea:flaky-forge");
  EXPECT_EQ(s["flurry/eval"].state, "success");
  EXPECT_EQ(s[ctx("ok")].state, "success");
  EXPECT_EQ(s[ctx("fail")].state, "failure");
  int refused = 0;
  for (const auto& call : forge.calls()) refused += call.forge == "gitea" && (call.status == 502 || call.status == 403);
  EXPECT_EQ(refused, 3);
}

TEST_F(ForgeFlows, PullRequestTrustAForksPullRequestWaitsUntilAMaintainerApprovesIt) {
  forge.set_permission("github", "octo-org", "hello-world", "mona", "write");
  commit("main", {{"flake.nix", flake(false)}});
  const auto head = commit("topic", {{"extra.nix", "mk: { fromPr = mk \"from-pr\" \"echo pr > $out\"; }\n"}});
  const auto base = commit("main", {{"README", "base\n"}});
  git({"-C", repo, "update-ref", "refs/pull/42/head", head});
  auto body = fixture("github", "pull_request_opened");  // by "outsider", from a fork
  body["repository"]["clone_url"] = "file://" + repo;
  body["pull_request"]["head"]["sha"] = head;
  body["pull_request"]["base"]["sha"] = base;
  github_event("pull_request", "untrusted-open", body);
  // Only a pending flurry/eval saying why; nothing evaluated.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (forge.final_statuses(head).empty() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(100ms);
  std::this_thread::sleep_for(2s);
  auto waiting = forge.final_statuses(head);
  ASSERT_EQ(waiting.size(), 1u);
  EXPECT_EQ(waiting["flurry/eval"].state, "pending");
  EXPECT_NE(waiting["flurry/eval"].description.find("Waiting for approval"), std::string::npos) << waiting["flurry/eval"].description;
  EXPECT_FALSE(store->get_eval(state::eval_id_for_change("github:untrusted-open"))->has_value());

  // The author approving their own pull request does nothing.
  auto own = fixture("github", "issue_comment_approve");
  own["repository"]["clone_url"] = "file://" + repo;
  own["comment"]["user"]["login"] = "outsider";
  own["comment"]["author_association"] = "CONTRIBUTOR";
  github_event("issue_comment", "self-approval", own);
  std::this_thread::sleep_for(2s);
  EXPECT_FALSE(store->get_eval(state::eval_id_for_change("github:self-approval"))->has_value());

  // A maintainer's "/flurry approve" runs it.
  auto approve = fixture("github", "issue_comment_approve");  // by "mona"
  approve["repository"]["clone_url"] = "file://" + repo;
  github_event("issue_comment", "approval", approve);
  auto s = wait_for("github", head, {"flurry/eval", ctx("ok"), ctx("fromPr")}, "github:approval");
  EXPECT_EQ(s["flurry/eval"].state, "success") << s["flurry/eval"].description;
  EXPECT_EQ(s[ctx("fromPr")].state, "success");
}

namespace {
// As a GitHub App posting check runs, with the failed-build cache on.
class ChecksFlow : public ForgeFlows {
 protected:
  void adjust(stack::StackOptions& o) override {
    auto key = test::new_rsa_key_pair();
    forge.act_as_app("4242", key.public_pem, 99);
    o.forges["github"] = {forge.url(), "", "4242", key.private_pem, true};
    o.extra_config.push_back("evaluator.cache_failed_builds=true");
  }
  std::map<std::string, fakes::CheckRun> runs_of(const std::string& sha) {
    std::map<std::string, fakes::CheckRun> out;
    for (const auto& r : forge.check_runs()) {
      if (r.head_sha == sha) out[r.name] = r;
    }
    return out;
  }
  // Waits until every run in `names` of `sha` is completed after `updates`
  // updates of the runs were seen.
  std::map<std::string, fakes::CheckRun> wait_completed(const std::string& sha, const std::vector<std::string>& names,
                                                        std::size_t after_history = 0) {
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto runs = runs_of(sha);
      bool done = forge.check_run_history().size() > after_history;
      for (const auto& n : names) done = done && runs.count(n) && runs[n].status == "completed";
      if (done) {
        std::this_thread::sleep_for(1500ms);
        return runs_of(sha);
      }
      std::this_thread::sleep_for(200ms);
    }
    ADD_FAILURE() << "check runs of " << sha << " did not complete";
    return runs_of(sha);
  }
};
}  // namespace

TEST_F(ChecksFlow, EachAttributeIsACheckRunWithItsLogAndTheReRunButtonBuildsAFailureAgain) {
  // `flaky` fails the first time it is built and succeeds the second.
  // Builds run as nix's build users: the marker's directory is theirs too.
  const auto marker_dir = tmp.file("markers");
  fs::create_directories(marker_dir);
  fs::permissions(tmp.path(), fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec);
  fs::permissions(marker_dir, fs::perms::all);
  const auto marker = marker_dir + "/flaky-ran";
  auto flaky_flake = flake(false);
  const auto rev = commit("main", {{"flake.nix", flaky_flake}, {"extra.nix", "mk: { flaky = mk \"flaky\" ''\n"
      "  if [ -e " + marker + " ]; then echo second > $out; else echo first-attempt-fails; : > " + marker + "; exit 7; fi\n''; }\n"}});
  auto push = fixture("github", "push");
  push["after"] = rev;
  push["repository"]["clone_url"] = "file://" + repo;
  github_event("push", "checks-push", push);
  auto runs = wait_completed(rev, {"flurry/eval", ctx("ok"), ctx("flaky")});
  EXPECT_EQ(runs["flurry/eval"].conclusion, "success");
  EXPECT_EQ(runs[ctx("ok")].conclusion, "success");
  EXPECT_EQ(runs[ctx("flaky")].conclusion, "failure");
  EXPECT_NE(runs[ctx("flaky")].text.find("first-attempt-fails"), std::string::npos) << runs[ctx("flaky")].text;
  EXPECT_EQ(runs[ctx("flaky")].external_id.rfind("job:", 0), 0u);
  // Check runs only: no commit statuses.
  EXPECT_TRUE(forge.statuses().empty());

  // The Re-run button of the failed run.
  auto rerun = fixture("github", "check_run_rerequested");
  rerun["repository"]["clone_url"] = "file://" + repo;
  rerun["check_run"]["head_sha"] = rev;
  rerun["check_run"]["name"] = ctx("flaky");
  rerun["check_run"]["external_id"] = runs[ctx("flaky")].external_id;
  rerun["check_run"]["check_suite"]["head_sha"] = rev;
  const auto seen = forge.check_run_history().size();
  github_event("check_run", "checks-rerun", rerun);
  auto again = wait_completed(rev, {ctx("flaky")}, seen);
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (again[ctx("flaky")].conclusion != "success" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
    again = runs_of(rev);
  }
  // Built again (not a cached failure), in the same check run.
  EXPECT_EQ(again[ctx("flaky")].conclusion, "success");
  EXPECT_EQ(again[ctx("flaky")].id, runs[ctx("flaky")].id);
  auto e = store->get_eval(state::eval_id_for_change("github:checks-rerun"));
  ASSERT_TRUE(e && e->has_value());
  EXPECT_EQ((*e)->rev, rev);
}

// Issue 14, through the whole stack as a GitHub App: a build shows "in
// progress" from its start, an attribute that fails to evaluate carries
// nix's whole message in its run, and a webhook that names the App's
// installation saves the installation look-up.
TEST_F(ChecksFlow, BuildsShowInProgressAndAnEvaluationErrorShowsNixsWholeMessage) {
  const auto rev = commit("main", {{"flake.nix", flake(false)},
                                   {"extra.nix", "mk: { slowish = mk \"slowish\" \"/bin/sleep 2; echo > $out\";\n"
                                                 "      broken = throw \"intentional evaluation error for issue 14\"; }\n"}});
  auto push = fixture("github", "push");
  push["after"] = rev;
  push["repository"]["clone_url"] = "file://" + repo;
  push["installation"] = {{"id", 99}};
  github_event("push", "checks-progress", push);
  auto runs = wait_completed(rev, {"flurry/eval", ctx("ok"), ctx("slowish"), ctx("broken")});
  EXPECT_EQ(runs[ctx("slowish")].conclusion, "success");
  EXPECT_EQ(runs[ctx("broken")].conclusion, "failure");
  const auto& text = runs[ctx("broken")].text;
  EXPECT_NE(text.find("Evaluation error:"), std::string::npos) << text;
  EXPECT_NE(text.find("intentional evaluation error for issue 14"), std::string::npos) << text;

  std::vector<std::string> states;
  for (const auto& r : forge.check_run_history()) {
    if (r.name != ctx("slowish")) continue;
    states.push_back(r.status);
    if (r.status == "in_progress") {
      EXPECT_FALSE(r.started_at.empty());
    }
  }
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states.front(), "queued");
  EXPECT_NE(std::find(states.begin(), states.end(), "in_progress"), states.end());
  EXPECT_EQ(states.back(), "completed");
  for (const auto& call : forge.calls()) {
    EXPECT_FALSE(text::ends_with(call.path, "/installation")) << call.method << " " << call.path;
    EXPECT_EQ(call.status / 100, 2) << call.method << " " << call.path << " answered " << call.status << ": " << call.body.substr(0, 300);
  }
}
