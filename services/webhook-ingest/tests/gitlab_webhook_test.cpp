#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "flurry/core/crypto.hpp"
#include "fixtures.hpp"
#include "webhook.hpp"

using namespace flurry;
using namespace flurry::ingest;

namespace {

const std::string kToken = "gitlab-secret-token";

http::Request gitlab_request(const std::string& body, const std::string& event, const std::string& uuid = "9cbb1cb0-1f3c-4b1e",
                             const std::string& token = kToken) {
  http::Request r;
  r.method = "POST";
  r.path = "/webhooks/gitlab";
  r.body = body;
  if (!token.empty()) r.headers["x-gitlab-token"] = token;
  r.headers["x-gitlab-event"] = event;
  if (!uuid.empty()) r.headers["x-gitlab-event-uuid"] = uuid;
  return r;
}

class GitLabEvents : public ::testing::Test, protected fixtures::IngestFixture {
 protected:
  WebhookOutcome send(const std::string& event, const std::string& name, const std::string& uuid = "9cbb1cb0-1f3c-4b1e") {
    return handle_webhook(gitlab_dialect(), gitlab_request(fixtures::fixture("gitlab", name), event, uuid), kToken, ports());
  }
};

}  // namespace

TEST_F(GitLabEvents, APushInANestedGroupNamesTheNamespaceAsOwner) {
  auto o = send("Push Hook", "push");
  EXPECT_EQ(o.response.status, 202) << o.response.body;
  auto c = changes("gitlab").at(0);
  EXPECT_EQ(c.id, "gitlab:9cbb1cb0-1f3c-4b1e");
  EXPECT_EQ(c.repo.forge, "gitlab");
  EXPECT_EQ(c.repo.owner, "infra/nix");
  EXPECT_EQ(c.repo.name, "hello");
  EXPECT_EQ(c.repo.clone_url, "https://gitlab.example.org/infra/nix/hello.git");
  EXPECT_EQ(c.repo.html_url, "https://gitlab.example.org/infra/nix/hello");
  EXPECT_EQ(c.repo.default_branch, "main");
  EXPECT_EQ(c.branch, "main");
  EXPECT_EQ(c.rev, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
  EXPECT_EQ(c.sender, "jsmith");
}

TEST_F(GitLabEvents, TagPushesAndDeletedBranches) {
  EXPECT_EQ(send("Tag Push Hook", "tag_push", "t").response.status, 202);
  EXPECT_EQ(changes("gitlab").at(0).tag, "v1.0.0");
  EXPECT_EQ(send("Push Hook", "push_deleted", "d").result, "ignored");
  EXPECT_EQ(changes("gitlab").size(), 1u);
}

TEST_F(GitLabEvents, TheTokenMustMatch) {
  auto body = fixtures::fixture("gitlab", "push");
  EXPECT_EQ(handle_webhook(gitlab_dialect(), gitlab_request(body, "Push Hook", "u", "wrong"), kToken, ports()).response.status, 401);
  EXPECT_EQ(handle_webhook(gitlab_dialect(), gitlab_request(body, "Push Hook", "u", ""), kToken, ports()).response.status, 401);
  EXPECT_EQ(handle_webhook(gitlab_dialect(), gitlab_request(body, "Push Hook", "u", kToken + "x"), kToken, ports()).response.status, 401);
  EXPECT_TRUE(bus.published().empty());
}

TEST_F(GitLabEvents, WithoutAnEventUuidTheSameBodyIsStillOneChange) {
  auto body = fixtures::fixture("gitlab", "push");
  EXPECT_EQ(handle_webhook(gitlab_dialect(), gitlab_request(body, "Push Hook", ""), kToken, ports()).response.status, 202);
  EXPECT_EQ(handle_webhook(gitlab_dialect(), gitlab_request(body, "Push Hook", ""), kToken, ports()).response.status, 202);
  ASSERT_EQ(bus.published("flurry.change.gitlab").size(), 1u);
  EXPECT_EQ(changes("gitlab").at(0).id, "gitlab:body-" + crypto::sha256_hex(body));
}

TEST_F(GitLabEvents, MergeRequestsOpenUpdateAndClose) {
  EXPECT_EQ(send("Merge Request Hook", "merge_request_open", "m1").response.status, 202);
  EXPECT_EQ(send("Merge Request Hook", "merge_request_update", "m2").response.status, 202);
  EXPECT_EQ(send("Merge Request Hook", "merge_request_close", "m3").response.status, 202);
  EXPECT_EQ(send("Merge Request Hook", "merge_request_merge", "m4").response.status, 202);
  auto c = changes("gitlab");
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0].kind, "pull_request");
  EXPECT_EQ(c[0].ref, "refs/merge-requests/7/head");
  EXPECT_EQ(c[0].rev, "b1c3b5a7d9e1f3a5c7e9b1d3f5a7c9e1b3d5f7a9");
  EXPECT_EQ(c[0].repo.owner, "infra/nix");  // the target project
  EXPECT_EQ(c[0].pull_request.number, 7);
  EXPECT_EQ(c[0].pull_request.base_branch, "main");
  EXPECT_EQ(c[0].pull_request.head_branch, "ms-viewport");
  EXPECT_EQ(c[0].pull_request.head_clone_url, "https://gitlab.example.org/contributor/hello.git");
  EXPECT_TRUE(c[0].pull_request.from_fork);
  EXPECT_EQ(c[0].pull_request.author, "contributor");
  EXPECT_EQ(c[0].pull_request.labels, std::vector<std::string>{"API"});
  EXPECT_EQ(c[1].kind, "pull_request");
  EXPECT_EQ(c[1].rev, "c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b6c8d0");
  EXPECT_EQ(c[2].kind, "pull_request_closed");
  EXPECT_EQ(c[3].kind, "pull_request_closed");
}

TEST_F(GitLabEvents, MergeRequestChangesWithoutNewCommitsAreIgnored) {
  EXPECT_EQ(send("Merge Request Hook", "merge_request_update_title", "a").result, "ignored");
  EXPECT_EQ(send("Merge Request Hook", "merge_request_approved", "b").result, "ignored");
  EXPECT_EQ(send("Pipeline Hook", "push", "c").result, "ignored");
  EXPECT_TRUE(bus.published().empty());
}

TEST_F(GitLabEvents, MalformedProjectsAre400) {
  auto j = nlohmann::json::parse(fixtures::fixture("gitlab", "push"));
  j["project"]["path_with_namespace"] = "no-namespace";
  EXPECT_EQ(handle_webhook(gitlab_dialect(), gitlab_request(j.dump(), "Push Hook"), kToken, ports()).response.status, 400);
  j = nlohmann::json::parse(fixtures::fixture("gitlab", "merge_request_open"));
  j["object_attributes"].erase("last_commit");
  auto o = handle_webhook(gitlab_dialect(), gitlab_request(j.dump(), "Merge Request Hook"), kToken, ports());
  EXPECT_EQ(o.response.status, 400);
  EXPECT_NE(o.response.body.find("object_attributes.last_commit"), std::string::npos) << o.response.body;
  EXPECT_TRUE(bus.published().empty());
}

TEST_F(GitLabEvents, AnApproveNoteApprovesAndANewLabelAsksAgain) {
  EXPECT_EQ(send("Note Hook", "note_approve", "n1").response.status, 202);
  EXPECT_EQ(send("Merge Request Hook", "merge_request_update_labels", "n2").response.status, 202);
  auto c = changes("gitlab");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].kind, "approve");
  EXPECT_EQ(c[0].ref, "refs/merge-requests/7/head");
  EXPECT_EQ(c[0].pull_request.number, 7);
  EXPECT_EQ(c[0].approval.by, "lead");
  EXPECT_EQ(c[0].repo.owner, "infra/nix");
  EXPECT_EQ(c[1].kind, "pull_request");
  EXPECT_EQ(c[1].pull_request.labels, (std::vector<std::string>{"API", "ok-to-test"}));
  auto j = nlohmann::json::parse(fixtures::fixture("gitlab", "note_approve"));
  j["object_attributes"]["noteable_type"] = "Issue";
  EXPECT_EQ(handle_webhook(gitlab_dialect(), gitlab_request(j.dump(), "Note Hook", "n3"), kToken, ports()).result, "ignored");
}

TEST_F(GitLabEvents, AMistypedFieldReadLastIs400NamingIt) {
  auto j = nlohmann::json::parse(fixtures::fixture("gitlab", "push"));
  j["user_username"] = 12;
  auto o = handle_webhook(gitlab_dialect(), gitlab_request(j.dump(), "Push Hook"), kToken, ports());
  EXPECT_EQ(o.response.status, 400);
  EXPECT_NE(o.response.body.find("user_username"), std::string::npos) << o.response.body;
  EXPECT_TRUE(bus.published().empty());
}
