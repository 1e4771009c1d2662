#include "github_webhook.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "flurry/bus/testing/memory_bus.hpp"
#include "flurry/core/crypto.hpp"

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
  WebhookOutcome handle(const http::Request& r) { return handle_github_webhook(r, kSecret, {bus, clock}); }
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
