#pragma once
// Pull request trust: a pull request from a fork by someone who may not
// write to the repository runs nothing until a maintainer approves it.
// Evaluated at once when any holds:
//   - it is not from a fork (its branch was pushed by someone who may push),
//   - [trust] fork_pull_requests = "build" (every pull request is built,
//     as buildbot-nix does, trusting nix's sandbox),
//   - it carries the trust label (only those who may triage can label),
//   - its author may write to the repository (the forge's permission API;
//     without one, GitHub's author_association OWNER, MEMBER or
//     COLLABORATOR),
//   - it was approved: a "/flurry approve" comment by someone who may
//     write, or the web API.
// Effects and secrets are a separate gate (effects_on_pull_requests, read
// from the default branch).
#include <string>

#include "flurry/core/error.hpp"
#include "flurry/forge/permissions.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/state/store.hpp"

namespace flurry::evaluator {

struct TrustConfig {
  bool forks_need_approval = true;  // [trust] fork_pull_requests = "approve" (default) | "build"
  std::string label = "ok-to-test";
};

struct TrustDecision {
  bool trusted = false;
  std::string why;  // for logs and the waiting status
};

// One pull request of one project, for approvals and waiting changes.
std::string pull_request_key(const msg::ChangeEvent& c);

// Transient error when the forge or the store cannot be asked now.
Result<TrustDecision> decide_trust(const msg::ChangeEvent& c, const TrustConfig& cfg, forge::Permissions* permissions,
                                   state::StateStore& state);

// Whether `approval` of a pull request of `c.repo` counts: its author may
// write (the forge's API, else GitHub's association); "api" approvals come
// from the web API's token holder.
Result<bool> approval_counts(const msg::ChangeEvent& c, forge::Permissions* permissions);

// Approvals and the change waiting for one, kept in the store.
Result<void> record_approval(state::StateStore& state, const std::string& pr_key, const std::string& by);
Result<void> park_change(state::StateStore& state, const std::string& pr_key, const msg::ChangeEvent& c);
// The change parked last, if any. It stays: an approval delivered twice
// evaluates it under the same change id, so once.
Result<std::optional<msg::ChangeEvent>> parked_change(state::StateStore& state, const std::string& pr_key);

}  // namespace flurry::evaluator
