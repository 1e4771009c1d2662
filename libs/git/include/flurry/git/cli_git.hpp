#pragma once
// The Git port over the git CLI: a bare mirror per project, fetches with
// protocol restrictions, no prompts, no shell.
#include <string>
#include <vector>

#include "flurry/core/process.hpp"
#include "flurry/git/git.hpp"

namespace flurry::git {

struct CliGitOptions {
  // Clone URL schemes accepted ("https", "ssh", "git", "file", "http").
  // scp-like "user@host:path" counts as "ssh".
  std::vector<std::string> allowed_schemes = {"https", "ssh", "git"};
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
};

class CliGit final : public Git {
 public:
  explicit CliGit(ProcessRunner& runner, CliGitOptions options = {}) : runner_(runner), options_(std::move(options)) {}
  Result<std::string> fetch(const FetchRequest& req) override;

 private:
  Result<ProcessResult> git(const std::vector<std::string>& args);
  ProcessRunner& runner_;
  CliGitOptions options_;
};

// The scheme of a clone URL ("https", "file", "ssh" for scp-like), or "".
std::string url_scheme(const std::string& url);

}  // namespace flurry::git
