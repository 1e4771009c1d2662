// The Redis Sessions adapter against a real redis-server: the Sessions
// contract (real waits for TTLs), then what only Redis shows: what a dump
// of the database reveals, and a session whose stored token was altered.
#include <gtest/gtest.h>
#include <hiredis.h>

#include <atomic>
#include <thread>

#include "flurry/core/crypto.hpp"
#include "flurry/state/redis_sessions.hpp"
#include "flurry/test/servers.hpp"
#include "sessions_contract.hpp"

using namespace flurry;
using namespace flurry::state;

namespace {

// One server per test process (ctest runs each test in its own); each
// store gets a fresh key prefix.
struct Shared {
  test::TempDir tmp{"flurry-redis-sessions"};
  test::RedisServer redis{tmp.file("redis")};
  std::atomic<int> next{0};
};
Shared& shared() {
  static Shared s;
  return s;
}

RedisOptions options() {
  RedisOptions o;
  o.port = shared().redis.port();
  o.prefix = "s" + std::to_string(shared().next++);
  return o;
}

struct RedisSessionsFactory {
  static contract::SessionsRig make() {
    contract::SessionsRig rig;
    rig.sessions = make_redis_sessions(options());
    rig.pass = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
    return rig;
  }
};

// Every key under `prefix` and every string its values hold (hash fields
// and values, strings), as a dump of the database would show them.
std::string dump(const std::string& prefix) {
  redisContext* c = redisConnect("127.0.0.1", shared().redis.port());
  std::string out;
  auto* keys = static_cast<redisReply*>(redisCommand(c, "KEYS %s", (prefix + ":*").c_str()));
  for (std::size_t i = 0; keys && i < keys->elements; ++i) {
    std::string key(keys->element[i]->str, keys->element[i]->len);
    out += key + "\n";
    auto* type = static_cast<redisReply*>(redisCommand(c, "TYPE %b", key.data(), key.size()));
    const bool hash = std::string(type->str) == "hash";
    freeReplyObject(type);
    auto* v = static_cast<redisReply*>(redisCommand(c, hash ? "HGETALL %b" : "GET %b", key.data(), key.size()));
    if (v->type == REDIS_REPLY_STRING) out += std::string(v->str, v->len) + "\n";
    for (std::size_t j = 0; j < v->elements; ++j) out += std::string(v->element[j]->str, v->element[j]->len) + "\n";
    freeReplyObject(v);
  }
  if (keys) freeReplyObject(keys);
  redisFree(c);
  return out;
}

Session session() {
  Session s;
  s.id = crypto::random_hex(32);
  s.forge = "gitlab";
  s.login = "alice";
  s.access_token = "glpat-" + crypto::random_hex(20);
  s.csrf = crypto::random_hex(32);
  s.created_ms = 1;
  s.expires_ms = 2;
  return s;
}

}  // namespace

namespace flurry::state::contract {
INSTANTIATE_TYPED_TEST_SUITE_P(Redis, SessionsContract, RedisSessionsFactory);
}

TEST(RedisSessions, ADumpShowsNeitherSessionIdsNorAccessTokensNorStates) {
  auto o = options();
  auto sessions = make_redis_sessions(o);
  const auto s = session();
  ASSERT_TRUE(sessions->create(s, std::chrono::hours(1)).has_value());
  const std::string state = crypto::random_hex(32);
  ASSERT_TRUE(sessions->put_state(state, "gitlab\n/", std::chrono::minutes(10)).has_value());
  const auto d = dump(o.prefix);
  EXPECT_NE(d.find(o.prefix + ":session:" + crypto::sha256_hex(s.id)), std::string::npos) << d;
  EXPECT_NE(d.find(o.prefix + ":oauth-state:" + crypto::sha256_hex(state)), std::string::npos) << d;
  EXPECT_NE(d.find("alice"), std::string::npos) << d;
  EXPECT_EQ(d.find(s.id), std::string::npos) << d;
  EXPECT_EQ(d.find(s.access_token), std::string::npos) << d;
  EXPECT_EQ(d.find(state), std::string::npos) << d;
  EXPECT_EQ((*sessions->find(s.id))->access_token, s.access_token);
}

TEST(RedisSessions, KeysCarryTheirTtl) {
  auto o = options();
  auto sessions = make_redis_sessions(o);
  const auto s = session();
  ASSERT_TRUE(sessions->create(s, std::chrono::hours(2)).has_value());
  ASSERT_TRUE(sessions->put_state("st", "x", std::chrono::minutes(10)).has_value());
  redisContext* c = redisConnect("127.0.0.1", shared().redis.port());
  auto pttl = [&](const std::string& key) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "PTTL %b", key.data(), key.size()));
    long long v = r->integer;
    freeReplyObject(r);
    return v;
  };
  const auto session_ttl = pttl(o.prefix + ":session:" + crypto::sha256_hex(s.id));
  EXPECT_GT(session_ttl, 7'100'000);
  EXPECT_LE(session_ttl, 7'200'000);
  const auto state_ttl = pttl(o.prefix + ":oauth-state:" + crypto::sha256_hex("st"));
  EXPECT_GT(state_ttl, 590'000);
  EXPECT_LE(state_ttl, 600'000);
  redisFree(c);
}

// A session whose stored token does not open with its id (altered, or
// written under another id) counts as no session.
TEST(RedisSessions, AnAlteredTokenEndsTheSession) {
  auto o = options();
  auto sessions = make_redis_sessions(o);
  const auto s = session();
  ASSERT_TRUE(sessions->create(s, std::chrono::hours(1)).has_value());
  redisContext* c = redisConnect("127.0.0.1", shared().redis.port());
  const auto key = o.prefix + ":session:" + crypto::sha256_hex(s.id);
  auto* r = static_cast<redisReply*>(redisCommand(c, "HGET %b access_token", key.data(), key.size()));
  std::string sealed(r->str, r->len);
  freeReplyObject(r);
  sealed[sealed.size() / 2] = sealed[sealed.size() / 2] == 'A' ? 'B' : 'A';
  freeReplyObject(redisCommand(c, "HSET %b access_token %b", key.data(), key.size(), sealed.data(), sealed.size()));
  redisFree(c);
  auto found = sessions->find(s.id);
  ASSERT_TRUE(found.has_value()) << found.error().message;
  EXPECT_FALSE(found->has_value());
}

TEST(RedisSessions, WithoutAServerCallsFailAsTransient) {
  RedisOptions o;
  o.port = 1;  // nothing listens there
  o.timeout = std::chrono::milliseconds(500);
  auto sessions = make_redis_sessions(o);
  auto r = sessions->find(std::string(64, 'a'));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kTransient);
  auto t = sessions->take_state("x");
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().code, ErrorCode::kTransient);
}
