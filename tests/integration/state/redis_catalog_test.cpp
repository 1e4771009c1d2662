// The Catalog contract on a real redis-server (one server per test
// process, a fresh key prefix per catalog).
#include <atomic>

#include "../../../libs/state/tests/catalog_contract.hpp"
#include "flurry/state/redis_store.hpp"
#include "flurry/test/servers.hpp"

namespace {

struct Shared {
  flurry::test::TempDir tmp{"flurry-redis-catalog"};
  flurry::test::RedisServer redis{tmp.file("redis")};
  std::atomic<int> next{0};
};
Shared& shared() {
  static Shared s;
  return s;
}

struct RedisCatalogFactory {
  static std::unique_ptr<flurry::state::Catalog> make() {
    flurry::state::RedisOptions o;
    o.port = shared().redis.port();
    o.prefix = "c" + std::to_string(shared().next++);
    auto c = flurry::state::connect_redis_catalog(o);
    EXPECT_TRUE(c.has_value()) << c.error().message;
    return c ? std::move(*c) : nullptr;
  }
};

}  // namespace

namespace flurry::state::catalog_contract {
INSTANTIATE_TYPED_TEST_SUITE_P(Redis, CatalogContract, RedisCatalogFactory);
}
