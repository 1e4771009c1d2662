// `flurry rebuild`: clears the failed-build cache for derivations in the
// Redis the services' configuration names.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "flurry/core/process.hpp"
#include "flurry/state/redis_store.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using ::testing::HasSubstr;

TEST(Rebuild, ClearsCachedFailuresSoTheNextEvaluationBuildsThem) {
  test::TempDir tmp("flurry-rebuild");
  test::RedisServer redis(tmp.file("redis"));
  state::RedisOptions o;
  o.port = redis.port();
  o.prefix = "flurry";
  auto store = state::connect_redis(o);
  ASSERT_TRUE(store.has_value()) << store.error().message;
  const std::string drv = "/nix/store/aaaa-broken.drv";
  ASSERT_TRUE((*store)->record_failed_build(drv, {"j1", "e1", "checks.x86_64-linux.broken", "exit 1", 1}).has_value());
  test::write_file(tmp.file("flurry.toml"), "[redis]\nhost = \"127.0.0.1\"\nport = " + std::to_string(redis.port()) + "\n");

  PosixProcessRunner runner;
  const std::string flurry = std::string(FLURRY_BINARY_DIR) + "/tools/flurry/flurry";
  auto r = runner.run({.argv = {flurry, "rebuild", "--config", tmp.file("flurry.toml"), drv, "/nix/store/bbbb-fine.drv"},
                       .timeout = std::chrono::seconds(30)});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->exit_code, 0) << r->out << r->err;
  EXPECT_THAT(r->out + r->err, HasSubstr(drv + ": cached failure cleared"));
  EXPECT_THAT(r->out + r->err, HasSubstr("/nix/store/bbbb-fine.drv: no cached failure"));
  EXPECT_TRUE((*store)->failed_builds({drv})->empty());

  // A configuration that does not parse is refused with exit code 2.
  test::write_file(tmp.file("bad.toml"), "[redis\n");
  auto bad = runner.run({.argv = {flurry, "rebuild", "--config", tmp.file("bad.toml"), drv}, .timeout = std::chrono::seconds(30)});
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->exit_code, 2);
}
