#pragma once
// Which pushes are built, as buildbot-nix's `branches` option: the default
// branch always builds (registering gcroots and updating outputs); other
// branches build only when a rule's glob matches them, each rule saying
// whether to register gcroots and update outputs (matching rules OR-ed).
// Tags and pull requests are not branches: they always build, with
// neither. Service-wide, in the [branches.<name>] tables:
//
//   [branches.releases]
//   match_glob = "release-*"      # fnmatch; '*' also matches '/'
//   register_gcroots = true       # the default
//   update_outputs = false        # the default
#include <string>
#include <vector>

#include "flurry/core/config.hpp"

namespace flurry::repo {

struct BranchRule {
  std::string name;
  std::string match_glob;
  bool register_gcroots = true;
  bool update_outputs = false;
};

struct BranchPolicy {
  bool build = false;
  bool register_gcroots = false;
  bool update_outputs = false;
  std::string why;  // "default branch", "rule releases", "no branch rule matches"
};

// The policy for a push to `branch` of a repository whose default branch
// is `default_branch` (empty, unknown: every branch builds, without
// gcroots or outputs).
BranchPolicy branch_policy(const std::vector<BranchRule>& rules, const std::string& branch, const std::string& default_branch);

// The [branches.*] tables; ConfigError for a rule without match_glob.
std::vector<BranchRule> read_branch_rules(const Config& config);

}  // namespace flurry::repo
