#include "flurry/repo/branch_rules.hpp"

#include <fnmatch.h>

namespace flurry::repo {

BranchPolicy branch_policy(const std::vector<BranchRule>& rules, const std::string& branch, const std::string& default_branch) {
  BranchPolicy p;
  if (!default_branch.empty() && branch == default_branch) return {true, true, true, "default branch"};
  // Nothing can be told from an unknown default branch: build rather than
  // drop the push unseen.
  if (default_branch.empty()) return {true, false, false, "the default branch is unknown"};
  for (const auto& r : rules) {
    if (::fnmatch(r.match_glob.c_str(), branch.c_str(), 0) != 0) continue;
    if (!p.build) p.why = "rule " + r.name;
    p.build = true;
    p.register_gcroots = p.register_gcroots || r.register_gcroots;
    p.update_outputs = p.update_outputs || r.update_outputs;
  }
  if (!p.build) p.why = "no branch rule matches";
  return p;
}

std::vector<BranchRule> read_branch_rules(const Config& c) {
  std::vector<BranchRule> out;
  for (const auto& name : c.keys("branches")) {
    const auto prefix = "branches." + name + ".";
    BranchRule r;
    r.name = name;
    r.match_glob = c.get_string(prefix + "match_glob", "");
    if (r.match_glob.empty()) throw ConfigError(prefix + "match_glob is required (a glob such as \"release-*\")");
    r.register_gcroots = c.get_bool(prefix + "register_gcroots", r.register_gcroots);
    r.update_outputs = c.get_bool(prefix + "update_outputs", r.update_outputs);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace flurry::repo
