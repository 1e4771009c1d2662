#include "flurry/core/log.hpp"

#include <gtest/gtest.h>

using namespace flurry;

TEST(Log, RedactsRegisteredSecretsIncludingJsonEscapedForms) {
  log::register_secret("s3cr3t-value");
  log::register_secret("with\"quote");
  EXPECT_EQ(log::redact("token=s3cr3t-value!"), "token=[redacted]!");
  EXPECT_EQ(log::redact(log::json_escape("x with\"quote y")), "x [redacted] y");
}

TEST(Log, LinesAreJsonWithEscapedFields) {
  testing::internal::CaptureStderr();
  log::init("test");
  log::info("unit.event", "hello \"world\"", {{"attr", "a\nb"}, {"n", 3}});
  auto line = testing::internal::GetCapturedStderr();
  EXPECT_NE(line.find("\"event\":\"unit.event\""), std::string::npos);
  EXPECT_NE(line.find("\"msg\":\"hello \\\"world\\\"\""), std::string::npos);
  EXPECT_NE(line.find("\"attr\":\"a\\nb\""), std::string::npos);
  EXPECT_NE(line.find("\"n\":3"), std::string::npos);
  EXPECT_EQ(line.back(), '\n');
}
