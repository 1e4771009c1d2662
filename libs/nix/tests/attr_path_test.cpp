#include <gtest/gtest.h>

#include "flurry/nix/nix_runner.hpp"

using namespace flurry::nix;

TEST(AttrPath, PlainNamesStayBareOthersAreQuotedAndEscaped) {
  EXPECT_EQ(render_attr_path({"checks", "x86_64-linux", "ok"}), "checks.x86_64-linux.ok");
  EXPECT_EQ(render_attr_path({"checks", "x86_64-linux", "a.b c"}), "checks.x86_64-linux.\"a.b c\"");
  EXPECT_EQ(render_attr_path({"q\"${x}\\"}), "\"q\\\"\\${x}\\\\\"");
  EXPECT_EQ(render_attr_path({"1abc"}), "\"1abc\"");
  EXPECT_EQ(render_attr_path({""}), "\"\"");
  EXPECT_EQ(render_attr_path({"it's-ok_1"}), "it's-ok_1");
}

TEST(AttrPath, KeywordsAndControlCharactersAreQuotedOnOneLine) {
  EXPECT_EQ(render_attr_path({"checks", "if"}), "checks.\"if\"");
  EXPECT_EQ(render_attr_path({"a\nb"}), "\"a\\nb\"");
  EXPECT_EQ(render_attr_path({"\xC3\xA9t\xC3\xA9"}), "\"\xC3\xA9t\xC3\xA9\"");
}

TEST(AttrPath, DistinctPathsRenderDistinctly) {
  EXPECT_NE(render_attr_path({"a.b", "c"}), render_attr_path({"a", "b.c"}));
  EXPECT_NE(render_attr_path({"a.b"}), render_attr_path({"a", "b"}));
}
