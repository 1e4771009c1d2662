// CliGit against real git on local repositories.
#include "flurry/git/cli_git.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "flurry/core/text.hpp"
#include "flurry/test/servers.hpp"

using namespace flurry;
using namespace flurry::git;

namespace {
std::string sh(const std::vector<std::string>& argv) {
  PosixProcessRunner r;
  auto res = r.run({.argv = argv,
                    .env = {{"GIT_AUTHOR_NAME", "t"}, {"GIT_AUTHOR_EMAIL", "t@t"}, {"GIT_COMMITTER_NAME", "t"}, {"GIT_COMMITTER_EMAIL", "t@t"}}});
  EXPECT_TRUE(res && res->ok()) << (res ? res->err : res.error().message);
  return res ? text::trim(res->out) : "";
}
}  // namespace

class CliGitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src = tmp.file("src");
    sh({"git", "init", "-q", "-b", "main", src});
    test::write_file(src + "/flake.nix", "{ outputs = _: {}; }\n");
    sh({"git", "-C", src, "add", "."});
    sh({"git", "-C", src, "commit", "-q", "-m", "one"});
    rev = sh({"git", "-C", src, "rev-parse", "HEAD"});
  }
  test::TempDir tmp{"flurry-git"};
  PosixProcessRunner runner;
  std::string src, rev;
};

TEST_F(CliGitTest, FetchesARevisionIntoAMirrorAndReturnsAPinnedFlakeRef) {
  CliGit g(runner, {.allowed_schemes = {"file"}});
  auto mirror = tmp.file("mirrors/octo/hello.git");
  auto ref = g.fetch({"file://" + src, "refs/heads/main", rev, mirror});
  ASSERT_TRUE(ref.has_value()) << ref.error().message;
  EXPECT_EQ(*ref, "git+file://" + mirror + "?ref=refs/flurry/" + rev + "&rev=" + rev);
  EXPECT_EQ(sh({"git", "-C", mirror, "rev-parse", "refs/flurry/" + rev}), rev);
  // A second fetch of the same rev reuses the mirror.
  EXPECT_TRUE(g.fetch({"file://" + src, "refs/heads/main", rev, mirror}).has_value());
}

TEST_F(CliGitTest, HostileBranchNamesDoNotBreakTheFetch) {
  sh({"git", "-C", src, "checkout", "-q", "-b", "feat/$(id);x"});
  test::write_file(src + "/b.txt", "b\n");
  sh({"git", "-C", src, "add", "."});
  sh({"git", "-C", src, "commit", "-q", "-m", "two"});
  auto rev2 = sh({"git", "-C", src, "rev-parse", "HEAD"});
  CliGit g(runner, {.allowed_schemes = {"file"}});
  auto ref = g.fetch({"file://" + src, "refs/heads/feat/$(id);x", rev2, tmp.file("m.git")});
  ASSERT_TRUE(ref.has_value()) << ref.error().message;
  EXPECT_EQ(sh({"git", "-C", tmp.file("m.git"), "rev-parse", "refs/flurry/" + rev2}), rev2);
}

TEST_F(CliGitTest, DisallowedSchemesAndOptionLikeUrlsAreRejected) {
  CliGit g(runner, {.allowed_schemes = {"https"}});
  auto r = g.fetch({"file://" + src, "", rev, tmp.file("m.git")});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kRejected);
  EXPECT_FALSE(g.fetch({"--upload-pack=touch /tmp/x", "", rev, tmp.file("m.git")}).has_value());
  EXPECT_FALSE(g.fetch({"ext::sh -c touch% /tmp/pwned", "", rev, tmp.file("m.git")}).has_value());
  EXPECT_FALSE(g.fetch({"https://example.invalid/x.git", "", "abc", tmp.file("m.git")}).has_value());
}

TEST_F(CliGitTest, MissingRevisionIsAnError) {
  CliGit g(runner, {.allowed_schemes = {"file"}});
  auto r = g.fetch({"file://" + src, "refs/heads/main", std::string(40, 'e'), tmp.file("m.git")});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("not in"), std::string::npos);
}

TEST(UrlScheme, RecognisesUrlsAndScpSyntax) {
  EXPECT_EQ(url_scheme("https://github.com/o/r.git"), "https");
  EXPECT_EQ(url_scheme("git@github.com:o/r.git"), "ssh");
  EXPECT_EQ(url_scheme("file:///tmp/x"), "file");
  EXPECT_EQ(url_scheme("/tmp/x"), "");
  EXPECT_EQ(url_scheme("ext::sh -c x"), "");
}
