#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <functional>

#include "flurry/bus/testing/memory_bus.hpp"
#include "flurry/core/crypto.hpp"
#include "fixtures.hpp"
#include "webhook.hpp"

using namespace flurry;
using namespace flurry::ingest;

namespace {

const std::string kSecret = "It's a Secret to Everybody";
const std::string kRev = "0123456789abcdef0123456789abcdef01234567";

std::string push_body(const std::string& ref = "refs/heads/main", const std::string& after = kRev, bool deleted = false) {
  nlohmann::json j = {{"ref", ref},
                      {"before", std::string(40, '0')},
                      {"after", after},
                      {"deleted", deleted},
                      {"repository",
                       {{"name", "hello"},
                        {"owner", {{"login", "octo"}}},
                        {"clone_url", "https://github.com/octo/hello.git"},
                        {"html_url", "https://github.com/octo/hello"},
                        {"default_branch", "main"}}},
                      {"sender", {{"login", "octocat"}}}};
  return j.dump();
}

http::Request request(const std::string& body, const std::string& event = "push", const std::string& delivery = "d-1",
                      std::string signature = "") {
  http::Request r;
  r.method = "POST";
  r.path = "/webhooks/github";
  r.body = body;
  if (signature.empty()) signature = "sha256=" + crypto::hmac_sha256_hex(kSecret, body);
  r.headers["x-hub-signature-256"] = signature;
  if (!event.empty()) r.headers["x-github-event"] = event;
  if (!delivery.empty()) r.headers["x-github-delivery"] = delivery;
  return r;
}

class Ingest : public ::testing::Test {
 protected:
  WebhookOutcome handle(const http::Request& r) { return handle_webhook(github_dialect(), r, kSecret, {bus, clock}); }
  bus::testing::MemoryBus bus;
  ManualClock clock{1000};
};

}  // namespace

TEST_F(Ingest, SignedPushIsPublishedAsAChangeEvent) {
  auto o = handle(request(push_body()));
  EXPECT_EQ(o.response.status, 202);
  EXPECT_EQ(o.result, "accepted");
  auto msgs = bus.published("flurry.change.github");
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].msg_id, "github:d-1");
  auto c = msg::decode_change_event(msgs[0].data);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->id, "github:d-1");
  EXPECT_EQ(c->kind, "push");
  EXPECT_EQ(c->repo.forge, "github");
  EXPECT_EQ(c->repo.owner, "octo");
  EXPECT_EQ(c->repo.name, "hello");
  EXPECT_EQ(c->repo.clone_url, "https://github.com/octo/hello.git");
  EXPECT_EQ(c->repo.default_branch, "main");
  EXPECT_EQ(c->ref, "refs/heads/main");
  EXPECT_EQ(c->branch, "main");
  EXPECT_EQ(c->tag, "");
  EXPECT_EQ(c->rev, kRev);
  EXPECT_EQ(c->sender, "octocat");
  EXPECT_EQ(c->received_at_ms, 1000);
}

TEST_F(Ingest, TagPushCarriesTheTag) {
  auto o = handle(request(push_body("refs/tags/v1.0")));
  EXPECT_EQ(o.response.status, 202);
  auto c = msg::decode_change_event(bus.published("flurry.change.github").at(0).data);
  EXPECT_EQ(c->tag, "v1.0");
  EXPECT_EQ(c->branch, "");
}

TEST_F(Ingest, MissingOrWrongSignatureIs401AndNothingIsPublished) {
  auto body = push_body();
  EXPECT_EQ(handle(request(body, "push", "d", "sha256=" + std::string(64, '0'))).response.status, 401);
  auto unsigned_req = request(body);
  unsigned_req.headers.erase("x-hub-signature-256");
  EXPECT_EQ(handle(unsigned_req).response.status, 401);
  // Signed with another secret.
  EXPECT_EQ(handle(request(body, "push", "d", "sha256=" + crypto::hmac_sha256_hex("other", body))).response.status, 401);
  // A valid signature over different bytes.
  EXPECT_EQ(handle(request(body + " ", "push", "d", "sha256=" + crypto::hmac_sha256_hex(kSecret, body))).response.status, 401);
  EXPECT_TRUE(bus.published().empty());
}

TEST_F(Ingest, MalformedOrTruncatedJsonIs400) {
  auto body = push_body();
  for (const std::string& bad : {body.substr(0, body.size() / 2), std::string("not json"), std::string("[1,2]"), std::string("")}) {
    auto o = handle(request(bad));
    EXPECT_EQ(o.response.status, 400) << bad;
  }
  EXPECT_TRUE(bus.published().empty());
}

TEST_F(Ingest, MissingOrMistypedFieldsAre400NamingTheField) {
  auto j = nlohmann::json::parse(push_body());
  j["repository"].erase("clone_url");
  auto o = handle(request(j.dump()));
  EXPECT_EQ(o.response.status, 400);
  EXPECT_NE(o.response.body.find("repository.clone_url"), std::string::npos);
  auto k = nlohmann::json::parse(push_body());
  k["after"] = 12;
  EXPECT_EQ(handle(request(k.dump())).response.status, 400);
  EXPECT_EQ(handle(request(push_body("refs/heads/main", "abc"))).response.status, 400);
}

TEST_F(Ingest, DeletedPushIsIgnored) {
  auto o = handle(request(push_body("refs/heads/gone", std::string(40, '0'), true)));
  EXPECT_EQ(o.response.status, 202);
  EXPECT_EQ(o.result, "ignored");
  EXPECT_TRUE(bus.published().empty());
}

TEST_F(Ingest, PingIs200AndUnknownEventsAre202WithoutPublishing) {
  EXPECT_EQ(handle(request("{\"zen\":\"hi\"}", "ping")).response.status, 200);
  auto o = handle(request("{}", "watch"));
  EXPECT_EQ(o.response.status, 202);
  EXPECT_EQ(o.result, "ignored");
  EXPECT_TRUE(bus.published().empty());
}

TEST_F(Ingest, MissingEventOrDeliveryHeaderIs400) {
  EXPECT_EQ(handle(request(push_body(), "")).response.status, 400);
  EXPECT_EQ(handle(request(push_body(), "push", "")).response.status, 400);
  EXPECT_EQ(handle(request(push_body(), "push", "bad delivery\nid")).response.status, 400);
}

TEST_F(Ingest, BusFailureIs503SoTheForgeRetries) {
  bus.fail_next_publishes(1);
  auto o = handle(request(push_body()));
  EXPECT_EQ(o.response.status, 503);
  EXPECT_EQ(o.result, "unavailable");
  // The retry succeeds.
  EXPECT_EQ(handle(request(push_body())).response.status, 202);
}

TEST_F(Ingest, RedeliveredWebhookIsPublishedOnce) {
  EXPECT_EQ(handle(request(push_body(), "push", "same")).response.status, 202);
  EXPECT_EQ(handle(request(push_body(), "push", "same")).response.status, 202);
  EXPECT_EQ(bus.published().size(), 1u);
}

TEST_F(Ingest, HostileBranchNamesAreKeptExactly) {
  std::string branch = "feat/\xC3\xA9t\xC3\xA9 $(rm -rf /); `x` \"q\" ..";
  auto o = handle(request(push_body("refs/heads/" + branch)));
  ASSERT_EQ(o.response.status, 202);
  auto c = msg::decode_change_event(bus.published().at(0).data);
  EXPECT_EQ(c->branch, branch);
}

// Fixtures shaped like GitHub's documented payloads.
class GitHubEvents : public ::testing::Test, protected fixtures::IngestFixture {
 protected:
  WebhookOutcome send(const std::string& event, const std::string& name, const std::string& delivery = "gh-1") {
    return handle_webhook(github_dialect(), request(fixtures::fixture("github", name), event, delivery), kSecret, ports());
  }
};

TEST_F(GitHubEvents, APushFromTheDocumentedPayload) {
  EXPECT_EQ(send("push", "push").response.status, 202);
  auto c = changes("github").at(0);
  EXPECT_EQ(c.kind, "push");
  EXPECT_EQ(c.repo.owner, "octo-org");
  EXPECT_EQ(c.repo.name, "hello-world");
  EXPECT_EQ(c.repo.clone_url, "https://github.com/octo-org/hello-world.git");
  EXPECT_EQ(c.branch, "main");
  EXPECT_EQ(c.rev, "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c");
  EXPECT_EQ(c.before, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
  EXPECT_EQ(c.sender, "mona");
  EXPECT_FALSE(c.is_pull_request());
}

TEST_F(GitHubEvents, ATagPushAndADeletedBranch) {
  EXPECT_EQ(send("push", "push_tag", "t").response.status, 202);
  EXPECT_EQ(changes("github").at(0).tag, "v1.2.0");
  EXPECT_EQ(changes("github").at(0).before, "");  // a new tag has no previous commit
  auto deleted = send("push", "push_deleted", "d");
  EXPECT_EQ(deleted.result, "ignored");
  EXPECT_EQ(changes("github").size(), 1u);
}

TEST_F(GitHubEvents, AnOpenedPullRequestFromAForkIsEvaluatedAtItsHead) {
  auto o = send("pull_request", "pull_request_opened");
  EXPECT_EQ(o.response.status, 202) << o.response.body;
  auto c = changes("github").at(0);
  EXPECT_EQ(c.kind, "pull_request");
  EXPECT_EQ(c.id, "github:gh-1");
  EXPECT_EQ(c.ref, "refs/pull/42/head");
  EXPECT_EQ(c.rev, "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
  EXPECT_EQ(c.branch, "");
  EXPECT_EQ(c.repo.owner, "octo-org");  // the base repository
  EXPECT_EQ(c.repo.clone_url, "https://github.com/octo-org/hello-world.git");
  const auto& p = c.pull_request;
  EXPECT_EQ(p.number, 42);
  EXPECT_EQ(p.base_branch, "main");
  EXPECT_EQ(p.base_rev, "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c");
  EXPECT_EQ(p.head_branch, "fix-greeting");
  EXPECT_EQ(p.head_clone_url, "https://github.com/outsider/hello-world.git");
  EXPECT_TRUE(p.from_fork);
  EXPECT_EQ(p.author, "outsider");
  EXPECT_EQ(p.author_association, "FIRST_TIME_CONTRIBUTOR");
  EXPECT_EQ(p.title, "Fix the greeting");
  EXPECT_EQ(p.labels, std::vector<std::string>{"bug"});
}

TEST_F(GitHubEvents, NewCommitsOnAPullRequestAreANewChangeOfTheSameRef) {
  send("pull_request", "pull_request_opened", "a");
  send("pull_request", "pull_request_synchronize", "b");
  auto c = changes("github");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[1].kind, "pull_request");
  EXPECT_EQ(c[1].ref, c[0].ref);
  EXPECT_EQ(c[1].rev, "9f2c1c2b2a0d3e4f5a6b7c8d9e0f1a2b3c4d5e6f");
}

TEST_F(GitHubEvents, AClosedPullRequestCancelsAndOtherActionsAreIgnored) {
  EXPECT_EQ(send("pull_request", "pull_request_closed", "c").response.status, 202);
  EXPECT_EQ(changes("github").at(0).kind, "pull_request_closed");
  auto assigned = send("pull_request", "pull_request_assigned", "a");
  EXPECT_EQ(assigned.response.status, 202);
  EXPECT_EQ(assigned.result, "ignored");
  EXPECT_NE(assigned.detail.find("assigned"), std::string::npos);
  EXPECT_EQ(changes("github").size(), 1u);
  // A label may be the trust label: the evaluator is asked again.
  EXPECT_EQ(send("pull_request", "pull_request_labeled", "l").result, "accepted");
  auto c = changes("github");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[1].kind, "pull_request");
  EXPECT_EQ(c[1].pull_request.labels, (std::vector<std::string>{"bug", "ok-to-test"}));
}

TEST_F(GitHubEvents, APullRequestWithoutItsHeadShaIs400NamingTheField) {
  auto j = nlohmann::json::parse(fixtures::fixture("github", "pull_request_opened"));
  j["pull_request"]["head"].erase("sha");
  auto o = handle_webhook(github_dialect(), request(j.dump(), "pull_request"), kSecret, ports());
  EXPECT_EQ(o.response.status, 400);
  EXPECT_NE(o.response.body.find("pull_request.head.sha"), std::string::npos) << o.response.body;
  j = nlohmann::json::parse(fixtures::fixture("github", "pull_request_opened"));
  j["number"] = -3;
  EXPECT_EQ(handle_webhook(github_dialect(), request(j.dump(), "pull_request"), kSecret, ports()).response.status, 400);
  EXPECT_TRUE(bus.published().empty());
}

TEST_F(GitHubEvents, APullRequestFromADeletedForkIsStillEvaluatedFromTheBaseRepository) {
  auto j = nlohmann::json::parse(fixtures::fixture("github", "pull_request_synchronize"));
  j["pull_request"]["head"]["repo"] = nullptr;
  EXPECT_EQ(handle_webhook(github_dialect(), request(j.dump(), "pull_request"), kSecret, ports()).response.status, 202);
  auto c = changes("github").at(0);
  EXPECT_TRUE(c.pull_request.from_fork);
  EXPECT_EQ(c.pull_request.head_clone_url, "");
  EXPECT_EQ(c.ref, "refs/pull/42/head");
}

TEST_F(GitHubEvents, PingFromTheDocumentedPayload) {
  auto o = send("ping", "ping");
  EXPECT_EQ(o.response.status, 200);
  EXPECT_EQ(o.result, "ping");
  EXPECT_TRUE(bus.published().empty());
}

TEST_F(GitHubEvents, TheReRunButtonOfAJobsCheckRunAsksForThatJob) {
  EXPECT_EQ(send("check_run", "check_run_rerequested", "rr").response.status, 202);
  auto c = changes("github").at(0);
  EXPECT_EQ(c.kind, "rerun");
  EXPECT_EQ(c.rev, "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c");
  EXPECT_EQ(c.rerun.job_id, "e0123456789abcdef0123-0123456789abcdef");
  EXPECT_EQ(c.rerun.eval_id, "");
  EXPECT_EQ(c.ref, "refs/heads/main");
  EXPECT_EQ(c.sender, "mona");
}

TEST_F(GitHubEvents, ReRunningASuiteAsksForTheEvalOfItsRef) {
  EXPECT_EQ(send("check_suite", "check_suite_rerequested", "s1").response.status, 202);
  EXPECT_EQ(send("check_suite", "check_suite_rerequested_pull_request", "s2").response.status, 202);
  auto c = changes("github");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].kind, "rerun");
  EXPECT_EQ(c[0].ref, "refs/heads/main");
  EXPECT_TRUE(c[0].rerun.job_id.empty() && c[0].rerun.eval_id.empty());
  EXPECT_EQ(c[1].ref, "refs/pull/42/head");
}

TEST_F(GitHubEvents, OtherChecksActionsAndForeignCheckRunsNeedNothing) {
  auto j = nlohmann::json::parse(fixtures::fixture("github", "check_run_rerequested"));
  j["check_run"]["external_id"] = "someone-elses-ci-123";
  auto foreign = handle_webhook(github_dialect(), request(j.dump(), "check_run"), kSecret, ports());
  EXPECT_EQ(foreign.result, "ignored");
  j["action"] = "created";
  EXPECT_EQ(handle_webhook(github_dialect(), request(j.dump(), "check_run"), kSecret, ports()).result, "ignored");
  auto suite = nlohmann::json::parse(fixtures::fixture("github", "check_suite_rerequested"));
  suite["action"] = "requested";
  EXPECT_EQ(handle_webhook(github_dialect(), request(suite.dump(), "check_suite"), kSecret, ports()).result, "ignored");
  EXPECT_TRUE(bus.published().empty());
}

TEST_F(GitHubEvents, AnApproveCommentOnAPullRequestApprovesItAndOtherCommentsNeedNothing) {
  EXPECT_EQ(send("issue_comment", "issue_comment_approve", "c1").response.status, 202);
  auto c = changes("github").at(0);
  EXPECT_EQ(c.kind, "approve");
  EXPECT_EQ(c.ref, "refs/pull/42/head");
  EXPECT_EQ(c.rev, "");
  EXPECT_EQ(c.pull_request.number, 42);
  EXPECT_EQ(c.approval.by, "mona");
  EXPECT_EQ(c.approval.association, "MEMBER");
  EXPECT_EQ(send("issue_comment", "issue_comment_on_issue", "c2").result, "ignored");
  auto j = nlohmann::json::parse(fixtures::fixture("github", "issue_comment_approve"));
  j["comment"]["body"] = "I would /flurry approve this later";
  EXPECT_EQ(handle_webhook(github_dialect(), request(j.dump(), "issue_comment", "c3"), kSecret, ports()).result, "ignored");
  j["comment"]["body"] = "/flurry approve";
  j["action"] = "edited";  // an edit cannot approve after the fact
  EXPECT_EQ(handle_webhook(github_dialect(), request(j.dump(), "issue_comment", "c4"), kSecret, ports()).result, "ignored");
  EXPECT_EQ(changes("github").size(), 1u);
}

// Issue 14: fields read as the change is made (deleted, before, sender)
// were read after the parser's check, so a wrong type passed as false or
// empty. Every field is checked: a wrong type is a 400 naming it.
TEST_F(GitHubEvents, EveryMistypedFieldIs400NamingItEvenOnesReadLast) {
  const std::vector<std::pair<std::string, std::function<void(nlohmann::json&)>>> cases = {
      {"deleted", [](nlohmann::json& j) { j["deleted"] = "true"; }},
      {"before", [](nlohmann::json& j) { j["before"] = 7; }},
      {"sender", [](nlohmann::json& j) { j["sender"] = "mona"; }},
      {"sender.login", [](nlohmann::json& j) { j["sender"]["login"] = 42; }},
  };
  for (const auto& [field, spoil] : cases) {
    auto j = nlohmann::json::parse(fixtures::fixture("github", "push"));
    spoil(j);
    auto o = handle_webhook(github_dialect(), request(j.dump(), "push", "gh-" + field), kSecret, ports());
    EXPECT_EQ(o.response.status, 400) << field;
    EXPECT_NE(o.response.body.find(field), std::string::npos) << field << ": " << o.response.body;
  }
  auto pr = nlohmann::json::parse(fixtures::fixture("github", "pull_request_opened"));
  pr["sender"]["login"] = false;
  auto o = handle_webhook(github_dialect(), request(pr.dump(), "pull_request", "gh-pr"), kSecret, ports());
  EXPECT_EQ(o.response.status, 400);
  EXPECT_NE(o.response.body.find("sender.login"), std::string::npos) << o.response.body;
  EXPECT_TRUE(bus.published().empty());
}

// Issue 14: a webhook delivered to a GitHub App names its installation;
// the change carries it so that tokens need no look-up.
TEST_F(GitHubEvents, TheInstallationAWebhookNamesTravelsWithTheRepository) {
  auto j = nlohmann::json::parse(fixtures::fixture("github", "push"));
  j["installation"] = {{"id", 12345678}, {"node_id", "MDIz"}};
  ASSERT_EQ(handle_webhook(github_dialect(), request(j.dump(), "push", "gh-app"), kSecret, ports()).response.status, 202);
  EXPECT_EQ(changes("github").at(0).repo.installation_id, 12345678);
  EXPECT_EQ(send("push", "push", "gh-plain").response.status, 202);
  EXPECT_EQ(changes("github").at(1).repo.installation_id, 0);
  j["installation"] = {{"id", "12345678"}};
  auto o = handle_webhook(github_dialect(), request(j.dump(), "push", "gh-bad"), kSecret, ports());
  EXPECT_EQ(o.response.status, 400);
  EXPECT_NE(o.response.body.find("installation.id"), std::string::npos) << o.response.body;
  auto pr = nlohmann::json::parse(fixtures::fixture("github", "pull_request_opened"));
  pr["installation"] = {{"id", 77}};
  ASSERT_EQ(handle_webhook(github_dialect(), request(pr.dump(), "pull_request", "gh-pr-app"), kSecret, ports()).response.status, 202);
  EXPECT_EQ(changes("github").back().repo.installation_id, 77);
}
