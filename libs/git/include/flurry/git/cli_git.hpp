#pragma once
// The Git port over the git CLI: a bare mirror per project, fetches with
// protocol restrictions, no prompts, no shell.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "flurry/core/process.hpp"
#include "flurry/git/git.hpp"

namespace flurry::git {

struct CliGitOptions {
  // Clone URL schemes accepted ("https", "ssh", "git", "http", "file").
  // scp-like "user@host:path" counts as "ssh". Remote helpers ("ext::...")
  // and URLs starting with '-' are never accepted.
  std::vector<std::string> allowed_schemes = {"https", "ssh", "git"};
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};  // per git command
  // When set and it becomes true, a running git command is killed (and
  // fails as transient): e.g. the service's stop flag, so a hung remote
  // cannot hold up shutdown.
  const std::atomic<bool>* cancel = nullptr;
};

class CliGit final : public Git {
 public:
  explicit CliGit(ProcessRunner& runner, CliGitOptions options = {}) : runner_(runner), options_(std::move(options)) {}
  // Fetches `req.ref` into refs/flurry/<ref without "refs/"> and, if the
  // commit is still missing, the commit itself; pins it as
  // refs/flurry/<rev>. Commits already in the mirror need no network.
  Result<std::string> fetch(const FetchRequest& req) override;
  Result<std::string> fetch_branch_head(const std::string& url, const std::string& branch, const std::string& mirror_dir,
                                        const std::string& auth_header) override;
  Result<Merge> merge(const std::string& mirror_dir, const std::string& base_rev, const std::string& head_rev) override;
  Result<std::optional<std::string>> read_file(const std::string& mirror_dir, const std::string& rev, const std::string& path,
                                               std::size_t max_bytes = 1024 * 1024) override;
  Result<std::map<std::string, std::string>> remote_heads(const std::string& url) override;

 private:
  Result<void> check_url(const std::string& url) const;
  Result<ProcessResult> git(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {});
  std::mutex& mirror_lock(const std::string& mirror);
  ProcessRunner& runner_;
  CliGitOptions options_;
  std::mutex locks_mu_;
  std::map<std::string, std::unique_ptr<std::mutex>> locks_;
};

// The git config that sends `header` to the host of `url` only
// (http.<scheme>://<host>/.extraHeader), as GIT_CONFIG_* environment
// variables, which no other user can read (unlike argv); empty for
// non-HTTP URLs or no header.
std::map<std::string, std::string> auth_env(const std::string& url, const std::string& header);

// The scheme of a clone URL ("https", "file", "ssh" for scp-like), or ""
// when it has none or names a remote helper.
std::string url_scheme(const std::string& url);

// Whether CliGit with these allowed schemes accepts `url` (rejected error
// saying why otherwise), for checking configured URLs at start-up.
Result<void> check_clone_url(const std::string& url, const std::vector<std::string>& allowed_schemes);

// The URL as it may appear in logs and errors: user and password replaced.
std::string display_url(const std::string& url);

}  // namespace flurry::git
