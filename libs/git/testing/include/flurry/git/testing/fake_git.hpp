#pragma once
// A scripted Git port for unit tests: fetch answers a pinned flake ref (or
// `error`), files are the same at every commit, branch heads come from
// `heads` (fetch_branch_head, and remote_heads for every URL, unless
// `remote_heads_error` is set).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "flurry/git/git.hpp"

namespace flurry::git::testing {

class FakeGit final : public Git {
 public:
  Result<std::string> fetch(const FetchRequest& req) override {
    requests.push_back(req);
    if (error) return fail(*error);
    return std::string("git+file:///mirror?ref=refs/flurry/" + req.rev + "&rev=" + req.rev);
  }
  Result<std::string> fetch_branch_head(const std::string&, const std::string& branch, const std::string&,
                                        const std::string& auth_header) override {
    branch_auth.push_back(auth_header);
    auto it = heads.find(branch);
    if (it == heads.end()) return fail(Error::transient("no branch " + branch));
    return it->second;
  }
  Result<Merge> merge(const std::string&, const std::string& base_rev, const std::string& head_rev) override {
    merges.emplace_back(base_rev, head_rev);
    if (merge_error) return fail(*merge_error);
    // A made-up but stable id for the pair.
    std::string rev = (base_rev.substr(0, 20) + head_rev.substr(0, 20));
    return Merge{rev, "git+file:///mirror?ref=refs/flurry/" + rev + "&rev=" + rev};
  }
  Result<std::optional<std::string>> read_file(const std::string&, const std::string&, const std::string& path,
                                               std::size_t) override {
    auto it = files.find(path);
    if (it == files.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  Result<std::map<std::string, std::string>> remote_heads(const std::string& url) override {
    listed.push_back(url);
    if (remote_heads_error) return fail(*remote_heads_error);
    return heads;
  }

  std::vector<FetchRequest> requests;        // what fetch was asked
  std::vector<std::string> branch_auth;       // the auth header of each fetch_branch_head
  std::optional<Error> error;                 // fetch fails with this when set
  std::vector<std::pair<std::string, std::string>> merges;  // (base, head) merge was asked for
  std::optional<Error> merge_error;                          // merge fails with this when set
  std::map<std::string, std::string> heads;  // branch -> rev
  std::vector<std::string> listed;           // URLs remote_heads was asked for
  std::optional<Error> remote_heads_error;   // remote_heads fails with this when set
  std::map<std::string, std::string> files;  // path -> contents at every commit
};

}  // namespace flurry::git::testing
