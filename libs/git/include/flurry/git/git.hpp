#pragma once
// The git port: keeps a bare mirror per project and fetches revisions into
// it, and lists a remote's branches (for polled repositories). Production:
// CliGit (runs git through the process runner, with protocol
// restrictions). Tests use real git on local repositories.
#include <map>
#include <optional>
#include <string>

#include "flurry/core/error.hpp"

namespace flurry::git {

struct FetchRequest {
  std::string url;         // clone URL from the change event
  std::string ref;         // "refs/heads/main"; may be empty
  std::string rev;         // 40 hex digits; must exist after the fetch
  std::string mirror_dir;  // bare repository, created if missing
  // An HTTP header git sends to the URL's host (and only there), e.g.
  // "Authorization: Basic ...", for private repositories; never in argv
  // or a message. Empty: none.
  std::string auth_header;
};

// A merge commit made in a mirror.
struct Merge {
  std::string rev;        // the merge commit, 40 hex
  std::string flake_ref;  // as fetch() returns it, for the merge commit
};

class Git {
 public:
  virtual ~Git() = default;
  // Makes `rev` present in the mirror under refs/flurry/<rev> and returns a
  // flake reference for it ("git+file://<mirror>?ref=refs/flurry/<rev>&rev=<rev>").
  // Unreachable remote -> transient error; rev missing after fetch -> rejected.
  virtual Result<std::string> fetch(const FetchRequest& req) = 0;
  // Fetches the current head of `branch` from `url` into the mirror and
  // returns its commit id (e.g. to read the default branch's config).
  // `auth_header` as in FetchRequest.
  virtual Result<std::string> fetch_branch_head(const std::string& url, const std::string& branch, const std::string& mirror_dir,
                                                const std::string& auth_header) = 0;
  // Merges `head_rev` into `base_rev`, both already in the mirror, as a
  // forge's merge ref would (first parent base, second head), without a
  // work tree. The commit's author, committer and dates are fixed, so the
  // same two commits always make the same merge (a redelivered change
  // evaluates the same thing). Pinned like fetch(). A conflict is a
  // rejected error naming the conflicting files.
  virtual Result<Merge> merge(const std::string& mirror_dir, const std::string& base_rev, const std::string& head_rev) = 0;
  // The contents of `path` at commit `rev` in a mirror fetch() filled;
  // nullopt when the commit has no such file. At most `max_bytes` are read
  // (a larger file is an error).
  virtual Result<std::optional<std::string>> read_file(const std::string& mirror_dir, const std::string& rev,
                                                       const std::string& path, std::size_t max_bytes = 1024 * 1024) = 0;
  // The remote's branches and their heads, as `git ls-remote --heads`:
  // branch name (without "refs/heads/") -> commit id as the remote printed
  // it (callers check it is 40 hex). Branch names are the remote's, hence
  // hostile. Touches no mirror. Disallowed URL -> rejected; unreachable
  // remote -> transient.
  virtual Result<std::map<std::string, std::string>> remote_heads(const std::string& url) = 0;
};

}  // namespace flurry::git
