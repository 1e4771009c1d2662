#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "flurry/core/crypto.hpp"
#include "fixtures.hpp"
#include "webhook.hpp"

using namespace flurry;
using namespace flurry::ingest;

namespace {

const std::string kSecret = "gitea hook secret";

// Headers as Gitea sends them (it adds X-GitHub-* and X-Gogs-* copies too).
http::Request gitea_request(const std::string& body, const std::string& event, const std::string& delivery = "f0e1d2c3",
                            std::string signature = "") {
  http::Request r;
  r.method = "POST";
  r.path = "/webhooks/gitea";
  r.body = body;
  if (signature.empty()) signature = crypto::hmac_sha256_hex(kSecret, body);
  r.headers["x-gitea-signature"] = signature;
  r.headers["x-gitea-event"] = event;
  r.headers["x-gitea-event-type"] = event;
  r.headers["x-gitea-delivery"] = delivery;
  return r;
}

class GiteaEvents : public ::testing::Test, protected fixtures::IngestFixture {
 protected:
  WebhookOutcome send(const std::string& event, const std::string& name, const std::string& delivery = "f0e1d2c3") {
    return handle_webhook(gitea_dialect(), gitea_request(fixtures::fixture("gitea", name), event, delivery), kSecret, ports());
  }
};

}  // namespace

TEST_F(GiteaEvents, APushBecomesAChangeOfTheGiteaForge) {
  auto o = send("push", "push");
  EXPECT_EQ(o.response.status, 202) << o.response.body;
  auto msgs = bus.published("flurry.change.gitea");
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].msg_id, "gitea:f0e1d2c3");
  auto c = changes("gitea").at(0);
  EXPECT_EQ(c.kind, "push");
  EXPECT_EQ(c.repo.forge, "gitea");
  EXPECT_EQ(c.repo.owner, "flurry-org");
  EXPECT_EQ(c.repo.name, "hello");
  EXPECT_EQ(c.repo.clone_url, "https://gitea.example.org/flurry-org/hello.git");
  EXPECT_EQ(c.repo.default_branch, "main");
  EXPECT_EQ(c.branch, "main");
  EXPECT_EQ(c.rev, "c7d8e9f00112233445566778899aabbccddeeff0");
  EXPECT_EQ(c.sender, "dev");
}

TEST_F(GiteaEvents, TheSignatureIsTheBareHexHmacAndAGitHubStyleOneIsRefused) {
  auto body = fixtures::fixture("gitea", "push");
  EXPECT_EQ(handle_webhook(gitea_dialect(), gitea_request(body, "push", "d", std::string(64, '0')), kSecret, ports()).response.status, 401);
  EXPECT_EQ(handle_webhook(gitea_dialect(), gitea_request(body, "push", "d", "sha256=" + crypto::hmac_sha256_hex(kSecret, body)),
                           kSecret, ports())
                .response.status,
            401);
  auto unsigned_req = gitea_request(body, "push");
  unsigned_req.headers.erase("x-gitea-signature");
  EXPECT_EQ(handle_webhook(gitea_dialect(), unsigned_req, kSecret, ports()).response.status, 401);
  EXPECT_TRUE(bus.published().empty());
}

TEST_F(GiteaEvents, ForgejoHeadersAreAcceptedToo) {
  auto body = fixtures::fixture("gitea", "push");
  http::Request r;
  r.method = "POST";
  r.body = body;
  r.headers["x-forgejo-signature"] = crypto::hmac_sha256_hex(kSecret, body);
  r.headers["x-forgejo-event"] = "push";
  r.headers["x-forgejo-delivery"] = "fj-1";
  auto o = handle_webhook(gitea_dialect(), r, kSecret, ports());
  EXPECT_EQ(o.response.status, 202) << o.response.body;
  EXPECT_EQ(changes("gitea").at(0).id, "gitea:fj-1");
}

TEST_F(GiteaEvents, PullRequestsOpenSynchronizeAndClose) {
  EXPECT_EQ(send("pull_request", "pull_request_opened", "p1").response.status, 202);
  EXPECT_EQ(send("pull_request", "pull_request_synchronized", "p2").response.status, 202);
  EXPECT_EQ(send("pull_request", "pull_request_closed", "p3").response.status, 202);
  auto ignored = send("pull_request", "pull_request_assigned", "p4");
  EXPECT_EQ(ignored.result, "ignored");
  auto c = changes("gitea");
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].kind, "pull_request");
  EXPECT_EQ(c[0].ref, "refs/pull/5/head");
  EXPECT_EQ(c[0].rev, "5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081");
  EXPECT_EQ(c[0].pull_request.number, 5);
  EXPECT_EQ(c[0].pull_request.base_branch, "main");
  EXPECT_EQ(c[0].pull_request.base_rev, "c7d8e9f00112233445566778899aabbccddeeff0");
  EXPECT_EQ(c[0].pull_request.head_clone_url, "https://gitea.example.org/visitor/hello.git");
  EXPECT_TRUE(c[0].pull_request.from_fork);
  EXPECT_EQ(c[0].pull_request.author, "visitor");
  EXPECT_EQ(c[0].pull_request.labels, std::vector<std::string>{"enhancement"});
  EXPECT_EQ(c[1].kind, "pull_request");
  EXPECT_EQ(c[1].rev, "6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192");
  EXPECT_EQ(c[2].kind, "pull_request_closed");
}

TEST_F(GiteaEvents, DeletedBranchesAndOtherEventsAreIgnored) {
  EXPECT_EQ(send("push", "push_deleted").result, "ignored");
  auto o = handle_webhook(gitea_dialect(), gitea_request("{}", "issues"), kSecret, ports());
  EXPECT_EQ(o.response.status, 202);
  EXPECT_EQ(o.result, "ignored");
  EXPECT_TRUE(bus.published().empty());
}

TEST_F(GiteaEvents, MalformedPayloadsAre400) {
  auto j = nlohmann::json::parse(fixtures::fixture("gitea", "push"));
  j["repository"].erase("clone_url");
  auto o = handle_webhook(gitea_dialect(), gitea_request(j.dump(), "push"), kSecret, ports());
  EXPECT_EQ(o.response.status, 400);
  EXPECT_NE(o.response.body.find("repository.clone_url"), std::string::npos);
  EXPECT_EQ(handle_webhook(gitea_dialect(), gitea_request("{\"ref\":", "push"), kSecret, ports()).response.status, 400);
  EXPECT_TRUE(bus.published().empty());
}

TEST_F(GiteaEvents, AnApproveCommentApprovesAndALabelAsksAgain) {
  EXPECT_EQ(send("issue_comment", "issue_comment_approve", "c1").response.status, 202);
  EXPECT_EQ(send("pull_request", "pull_request_label_updated", "l1").response.status, 202);
  auto c = changes("gitea");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].kind, "approve");
  EXPECT_EQ(c[0].pull_request.number, 5);
  EXPECT_EQ(c[0].approval.by, "lead");
  EXPECT_EQ(c[0].ref, "refs/pull/5/head");
  EXPECT_EQ(c[1].kind, "pull_request");
}

TEST_F(GiteaEvents, AMistypedFieldReadLastIs400NamingIt) {
  auto j = nlohmann::json::parse(fixtures::fixture("gitea", "push"));
  j["before"] = 7;
  auto o = handle_webhook(gitea_dialect(), gitea_request(j.dump(), "push"), kSecret, ports());
  EXPECT_EQ(o.response.status, 400);
  EXPECT_NE(o.response.body.find("before"), std::string::npos) << o.response.body;
  auto k = nlohmann::json::parse(fixtures::fixture("gitea", "push"));
  k["sender"]["login"] = 1;
  EXPECT_EQ(handle_webhook(gitea_dialect(), gitea_request(k.dump(), "push", "other"), kSecret, ports()).response.status, 400);
  EXPECT_TRUE(bus.published().empty());
}
