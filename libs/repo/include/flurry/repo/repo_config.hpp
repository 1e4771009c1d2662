#pragma once
// Per-repository configuration, read from the pushed commit: flurry.toml,
// else nixbot.toml, else buildbot-nix.toml, with buildbot-nix's keys so
// repositories move over without edits.
#include <optional>
#include <string>
#include <vector>

#include "flurry/core/error.hpp"
#include "flurry/git/git.hpp"

namespace flurry::repo {

// Looked for in this order; the first one present is used.
inline const std::vector<std::string>& repo_config_files() {
  static const std::vector<std::string> kFiles = {"flurry.toml", "nixbot.toml", "buildbot-nix.toml"};
  return kFiles;
}

struct RepoConfig {
  std::string file;  // the file it came from; empty = defaults
  std::vector<std::string> attribute = {"checks"};  // attribute path evaluated per system
  std::string flake_dir = ".";                      // relative directory holding flake.nix
  std::string lock_file = "flake.lock";
  bool effects_on_pull_requests = false;
  std::vector<std::string> effects_branches;  // globs; read from the default branch only
  // Failed-build cache for this project; unset: the service's default.
  std::optional<bool> cache_failed_builds;
  std::vector<std::string> warnings;          // unknown keys and the like
};

// Parses one config file's text. A rejected error names the file and the
// offending key ("flurry.toml: flake_dir must be a relative path ...").
Result<RepoConfig> parse_repo_config(const std::string& file_name, const std::string& text);

// Reads the first config file present at `rev` in `mirror_dir` (defaults
// when there is none; `default_attribute` is the service-wide default).
Result<RepoConfig> load_repo_config(git::Git& git, const std::string& mirror_dir, const std::string& rev,
                                    const std::vector<std::string>& default_attribute);

// True if `branch` matches one of `globs` (fnmatch, as buildbot-nix).
bool branch_matches(const std::string& branch, const std::vector<std::string>& globs);

// True if `ref` is a pull or merge request's ref: "refs/pull/<n>/..."
// (GitHub, Gitea/Forgejo) or "refs/merge-requests/<n>/..." (GitLab).
bool is_pull_request_ref(const std::string& ref);

}  // namespace flurry::repo
