// The `flurry` command's maintenance subcommands against a real
// redis-server: `rebuild` clears the failed-build cache, `log` prints (and
// follows) a job's build log from any host.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

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

TEST(Log, PrintsAJobsLogAndFollowsItUntilTheJobEnds) {
  test::TempDir tmp("flurry-log");
  test::RedisServer redis(tmp.file("redis"));
  auto store = state::connect_redis({.host = "127.0.0.1", .port = redis.port()});
  ASSERT_TRUE(store.has_value()) << store.error().message;
  state::EvalRecord e;
  e.id = "e1";
  e.repo = {"github", "octo", "hello", "file:///x", "", "main"};
  e.rev = std::string(40, 'a');
  ASSERT_TRUE(*(*store)->create_eval(e));
  state::JobSpec j;
  j.id = "j1";
  j.attr = "checks.x86_64-linux.hello";
  j.drv_path = "/nix/store/hello.drv";
  j.system = "x86_64-linux";
  ASSERT_TRUE((*store)->add_jobs("e1", {j}, 1).has_value());
  ASSERT_EQ(*(*store)->start_job("j1", 2), msg::JobState::kBuilding);
  ASSERT_TRUE((*store)->append_log("j1", "hello> step 1\n", 1 << 20).has_value());
  test::write_file(tmp.file("flurry.toml"), "[redis]\nport = " + std::to_string(redis.port()) + "\n");
  const std::string flurry = std::string(FLURRY_BINARY_DIR) + "/tools/flurry/flurry";
  PosixProcessRunner runner;

  // While it builds: what is there so far.
  auto now = runner.run({.argv = {flurry, "log", "--config", tmp.file("flurry.toml"), "j1"}, .timeout = std::chrono::seconds(30)});
  ASSERT_TRUE(now.has_value());
  EXPECT_EQ(now->exit_code, 0) << now->err;
  EXPECT_EQ(now->out, "hello> step 1\n");

  // Following: more output, then the job ends and the command with it.
  Result<ProcessResult> followed = fail(Error::transient("not run"));
  std::thread follower([&] {
    followed = runner.run({.argv = {flurry, "log", "--follow", "--config", tmp.file("flurry.toml"), "j1"}, .timeout = std::chrono::seconds(60)});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE((*store)->append_log("j1", "hello> step 2\n", 1 << 20).has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE((*store)->finish_job("j1", msg::JobState::kSucceeded, "", 3).has_value());
  follower.join();
  ASSERT_TRUE(followed.has_value()) << followed.error().message;
  EXPECT_FALSE(followed->timed_out);
  EXPECT_EQ(followed->exit_code, 0) << followed->err;
  EXPECT_EQ(followed->out, "hello> step 1\nhello> step 2\n");

  auto missing = runner.run({.argv = {flurry, "log", "--config", tmp.file("flurry.toml"), "nope"}, .timeout = std::chrono::seconds(30)});
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->exit_code, 1);
  EXPECT_THAT(missing->out + missing->err, HasSubstr("no job nope"));
}
