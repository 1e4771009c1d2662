#include "flurry/repo/repo_config.hpp"

#include <gtest/gtest.h>

using namespace flurry;
using namespace flurry::repo;

TEST(RepoConfig, ReadsBuildbotNixKeys) {
  auto c = parse_repo_config("buildbot-nix.toml", R"(
attribute = "ci.checks"
flake_dir = "./nix/"
lock_file = "nix/flake.lock"
effects_on_pull_requests = true
effects_branches = ["release-*", "main"]
)");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->file, "buildbot-nix.toml");
  EXPECT_EQ(c->attribute, (std::vector<std::string>{"ci", "checks"}));
  EXPECT_EQ(c->flake_dir, "nix");
  EXPECT_EQ(c->lock_file, "nix/flake.lock");
  EXPECT_TRUE(c->effects_on_pull_requests);
  EXPECT_EQ(c->effects_branches, (std::vector<std::string>{"release-*", "main"}));
}

TEST(RepoConfig, EmptyFileMeansDefaults) {
  auto c = parse_repo_config("flurry.toml", "");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->attribute, std::vector<std::string>{"checks"});
  EXPECT_EQ(c->flake_dir, ".");
  EXPECT_EQ(c->lock_file, "flake.lock");
  EXPECT_FALSE(c->effects_on_pull_requests);
}

TEST(RepoConfig, ErrorsNameTheFileAndTheOffendingKey) {
  struct Case {
    std::string text, key;
  } cases[] = {{"attribute = 3", "attribute"},
               {"attribute = \"checks.${x}\"", "attribute"},
               {"flake_dir = \"../outside\"", "flake_dir"},
               {"flake_dir = \"/etc\"", "flake_dir"},
               {"flake_dir = \"a?dir=b\"", "flake_dir"},
               {"lock_file = \"../x.lock\"", "lock_file"},
               {"effects_on_pull_requests = \"yes\"", "effects_on_pull_requests"},
               {"effects_branches = \"main\"", "effects_branches"}};
  for (const auto& c : cases) {
    auto r = parse_repo_config("flurry.toml", c.text);
    ASSERT_FALSE(r.has_value()) << c.text;
    EXPECT_EQ(r.error().code, ErrorCode::kRejected);
    EXPECT_EQ(r.error().message.rfind("flurry.toml: " + c.key, 0), 0u) << r.error().message;
  }
  auto syntax = parse_repo_config("nixbot.toml", "attribute = [");
  ASSERT_FALSE(syntax.has_value());
  EXPECT_NE(syntax.error().message.find("nixbot.toml"), std::string::npos);
  EXPECT_NE(syntax.error().message.find("line 1"), std::string::npos);
}

TEST(RepoConfig, UnknownKeysAreWarningsNotErrors) {
  auto c = parse_repo_config("nixbot.toml", "future_key = 1\n");
  ASSERT_TRUE(c.has_value());
  ASSERT_EQ(c->warnings.size(), 1u);
  EXPECT_NE(c->warnings[0].find("future_key"), std::string::npos);
}

TEST(RepoConfig, BranchGlobsMatchLikeFnmatch) {
  EXPECT_TRUE(branch_matches("release-1.2", {"main", "release-*"}));
  EXPECT_TRUE(branch_matches("staging", {"staging"}));
  EXPECT_FALSE(branch_matches("feature/x", {"release-*"}));
  EXPECT_FALSE(branch_matches("main", {}));
}

TEST(RepoConfig, CacheFailedBuildsIsOptional) {
  EXPECT_FALSE(parse_repo_config("flurry.toml", "")->cache_failed_builds.has_value());
  EXPECT_EQ(parse_repo_config("flurry.toml", "cache_failed_builds = true\n")->cache_failed_builds, std::optional<bool>(true));
  auto bad = parse_repo_config("flurry.toml", "cache_failed_builds = \"yes\"\n");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("cache_failed_builds"), std::string::npos);
}

TEST(RepoConfig, PullRequestRefsAreRecognised) {
  EXPECT_TRUE(is_pull_request_ref("refs/pull/7/head"));
  EXPECT_TRUE(is_pull_request_ref("refs/pull/7/merge"));
  EXPECT_TRUE(is_pull_request_ref("refs/merge-requests/12/head"));
  EXPECT_FALSE(is_pull_request_ref("refs/heads/pull/7/head"));
  EXPECT_FALSE(is_pull_request_ref("refs/pull/x/head"));
  EXPECT_FALSE(is_pull_request_ref("refs/pull//head"));
  EXPECT_FALSE(is_pull_request_ref("refs/tags/v1"));
}
