#include "flurry/core/config.hpp"

#include <gtest/gtest.h>

using namespace flurry;
using namespace std::chrono_literals;

TEST(Config, ReadsTypedValuesByDottedKey) {
  auto c = Config::from_string(R"(
[nats]
url = "nats://127.0.0.1:4222"
[builder]
slots = 4
keep_going = true
systems = ["x86_64-linux", "aarch64-linux"]
timeout = "90s"
)");
  EXPECT_EQ(c.get_string("nats.url", ""), "nats://127.0.0.1:4222");
  EXPECT_EQ(c.get_int("builder.slots", 1), 4);
  EXPECT_TRUE(c.get_bool("builder.keep_going", false));
  EXPECT_EQ(c.get_string_list("builder.systems", {}).size(), 2u);
  EXPECT_EQ(c.get_duration_ms("builder.timeout", 0ms), 90s);
  EXPECT_EQ(c.get_int("builder.missing", 7), 7);
}

TEST(Config, SetOverridesAndCreatesTables) {
  auto c = Config::from_string("[a]\nx = 1\n");
  c.set("a.x=5");
  c.set("b.c.name=hello world");
  c.set("b.flag=true");
  EXPECT_EQ(c.get_int("a.x", 0), 5);
  EXPECT_EQ(c.get_string("b.c.name", ""), "hello world");
  EXPECT_TRUE(c.get_bool("b.flag", false));
}

TEST(Config, WrongTypeAndBadSyntaxThrow) {
  auto c = Config::from_string("x = \"str\"\n");
  EXPECT_THROW(c.get_int("x", 0), ConfigError);
  EXPECT_THROW(Config::from_string("x = [unterminated"), ConfigError);
  EXPECT_THROW(c.require_string("nope"), ConfigError);
  EXPECT_THROW(c.set("novalue"), ConfigError);
}
