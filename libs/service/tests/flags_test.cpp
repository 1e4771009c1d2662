#include <gtest/gtest.h>

#include <fstream>

#include "flurry/service/flags.hpp"

using namespace flurry;
using namespace flurry::service;

TEST(Flags, SetOverridesTheConfigFile) {
  std::string path = ::testing::TempDir() + "/flurry-flags.toml";
  std::ofstream(path) << "[builder]\nslots = 2\nlisten = \"127.0.0.1:1\"\n";
  auto c = load_config({path, {"builder.slots=8", "nats.url=nats://x:1"}, ""});
  EXPECT_EQ(c.get_int("builder.slots", 0), 8);
  EXPECT_EQ(c.get_string("builder.listen", ""), "127.0.0.1:1");
  EXPECT_EQ(c.get_string("nats.url", ""), "nats://x:1");
}

TEST(Flags, MissingConfigFileIsAConfigError) {
  EXPECT_THROW(load_config({"/nonexistent/flurry.toml", {}, ""}), ConfigError);
}

TEST(Flags, ListenAddressesAreValidated) {
  EXPECT_EQ(parse_listen("127.0.0.1:8080"), (std::pair<std::string, int>{"127.0.0.1", 8080}));
  EXPECT_THROW(parse_listen("8080"), ConfigError);
  EXPECT_THROW(parse_listen("127.0.0.1:99999"), ConfigError);
  EXPECT_THROW(parse_listen("127.0.0.1:http"), ConfigError);
}
