#include <gtest/gtest.h>

#include "flurry/nix/cli_nix_runner.hpp"

using namespace flurry::nix;

TEST(AttrPath, PlainNamesStayBareOthersAreQuotedAndEscaped) {
  EXPECT_EQ(render_attr_path({"checks", "x86_64-linux", "ok"}), "checks.x86_64-linux.ok");
  EXPECT_EQ(render_attr_path({"checks", "x86_64-linux", "a.b c"}), "checks.x86_64-linux.\"a.b c\"");
  EXPECT_EQ(render_attr_path({"q\"${x}\\"}), "\"q\\\"\\${x}\\\\\"");
  EXPECT_EQ(render_attr_path({"1abc"}), "\"1abc\"");
  EXPECT_EQ(render_attr_path({""}), "\"\"");
}

TEST(NixErrors, HintsAndDirtyTreeWarningsAreDropped) {
  EXPECT_EQ(clean_nix_error("warning: Git tree '/x' is dirty\nerror: boom\n(use '--show-trace' to show detailed location information)\n"),
            "error: boom");
}
