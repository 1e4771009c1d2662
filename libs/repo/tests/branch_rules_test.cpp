#include "flurry/repo/branch_rules.hpp"

#include <gtest/gtest.h>

using namespace flurry;
using namespace flurry::repo;

TEST(BranchRules, TheDefaultBranchAlwaysBuildsWithGcrootsAndOutputs) {
  auto p = branch_policy({}, "main", "main");
  EXPECT_TRUE(p.build);
  EXPECT_TRUE(p.register_gcroots);
  EXPECT_TRUE(p.update_outputs);
  EXPECT_FALSE(branch_policy({}, "feature", "main").build);
  EXPECT_EQ(branch_policy({}, "feature", "main").why, "no branch rule matches");
  auto unknown = branch_policy({}, "feature", "");
  EXPECT_TRUE(unknown.build);
  EXPECT_FALSE(unknown.register_gcroots);
  EXPECT_FALSE(unknown.update_outputs);
}

TEST(BranchRules, OtherBranchesBuildWhenARuleMatchesAndMatchingRulesAreOred) {
  std::vector<BranchRule> rules = {{"releases", "release-*", false, true}, {"staging", "staging*", true, false},
                                   {"all-release", "release-2*", true, false}};
  auto r = branch_policy(rules, "release-1.0", "main");
  EXPECT_TRUE(r.build);
  EXPECT_FALSE(r.register_gcroots);
  EXPECT_TRUE(r.update_outputs);
  EXPECT_EQ(r.why, "rule releases");
  auto both = branch_policy(rules, "release-25.05", "main");
  EXPECT_TRUE(both.register_gcroots);
  EXPECT_TRUE(both.update_outputs);
  EXPECT_TRUE(branch_policy({{"nested", "team/*", true, false}}, "team/a/b", "main").build);  // '*' spans '/'
  EXPECT_FALSE(branch_policy(rules, "feature/release-1", "main").build);
}

TEST(BranchRules, ReadFromBranchesTables) {
  auto c = Config::from_string("[branches.releases]\nmatch_glob = \"release-*\"\nupdate_outputs = true\n"
                               "[branches.staging]\nmatch_glob = \"staging\"\nregister_gcroots = false\n");
  auto rules = read_branch_rules(c);
  ASSERT_EQ(rules.size(), 2u);
  std::map<std::string, BranchRule> by_name;
  for (const auto& r : rules) by_name[r.name] = r;
  EXPECT_EQ(by_name["releases"].match_glob, "release-*");
  EXPECT_TRUE(by_name["releases"].register_gcroots);
  EXPECT_TRUE(by_name["releases"].update_outputs);
  EXPECT_FALSE(by_name["staging"].register_gcroots);
  EXPECT_FALSE(by_name["staging"].update_outputs);
  EXPECT_TRUE(read_branch_rules(Config::from_string("")).empty());
  EXPECT_THROW(read_branch_rules(Config::from_string("[branches.x]\nupdate_outputs = true\n")), ConfigError);
}
