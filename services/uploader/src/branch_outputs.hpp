#pragma once
// What a branch keeps of its successful jobs, by the branch rules
// (libs/repo branch_rules.hpp): gcroots, so nix's garbage collector keeps
// the outputs, and outputs files naming them, for whoever deploys from
// them (as buildbot-nix's outputsPath). Paths are
// <dir>/<forge>/<owner>/<repo>/<branch>/<attr>, every component
// percent-encoded like a URL path segment (distinct names stay distinct and
// none can climb out of <dir>: '/' and a leading '.' are encoded); an output other
// than "out" gets "<attr>-<output>". Each is replaced atomically (a
// symlink or file renamed into place), so readers never see half of one.
#include <string>
#include <vector>

#include "flurry/core/error.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/repo/branch_rules.hpp"
#include "flurry/state/store.hpp"

namespace flurry::uploader {

struct BranchOutputsConfig {
  std::string gcroots_dir;  // symlinks to the outputs; empty = none
  std::string outputs_dir;  // files holding the output paths; empty = none
  std::vector<repo::BranchRule> rules;
};

struct BranchOutputsResult {
  int gcroots = 0;  // links written
  int outputs = 0;  // files written
  std::string why;  // when nothing was wanted: the policy's reason
};

// The path under `dir` for one output of a job of `eval`.
std::string branch_output_path(const std::string& dir, const state::EvalRecord& eval, const std::string& attr,
                               const std::string& output);

// Writes the gcroots and outputs files a successful job of a branch push
// gets by the rules. Tags and pull requests get none. Safe to repeat.
Result<BranchOutputsResult> keep_branch_outputs(const msg::JobFinished& job, const state::EvalRecord& eval,
                                                const BranchOutputsConfig& config);

}  // namespace flurry::uploader
