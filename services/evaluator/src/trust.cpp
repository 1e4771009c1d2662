#include "trust.hpp"

#include <algorithm>

namespace flurry::evaluator {
namespace {

constexpr int kApprovalSeconds = 180 * 24 * 3600;
constexpr int kParkedSeconds = 60 * 24 * 3600;

bool writer_association(const std::string& a) { return a == "OWNER" || a == "MEMBER" || a == "COLLABORATOR"; }

}  // namespace

std::string pull_request_key(const msg::ChangeEvent& c) {
  return c.repo.forge + "\n" + c.repo.owner + "\n" + c.repo.name + "\n" + std::to_string(c.pull_request.number);
}

Result<TrustDecision> decide_trust(const msg::ChangeEvent& c, const TrustConfig& cfg, forge::Permissions* permissions,
                                   state::StateStore& state) {
  const auto& pr = c.pull_request;
  if (!c.is_pull_request()) return TrustDecision{true, "not a pull request"};
  if (!pr.from_fork) return TrustDecision{true, "its branch is in the repository"};
  if (!cfg.forks_need_approval) return TrustDecision{true, "every pull request is built"};
  if (!cfg.label.empty() && std::find(pr.labels.begin(), pr.labels.end(), cfg.label) != pr.labels.end()) {
    return TrustDecision{true, "it carries the label " + cfg.label};
  }
  if (permissions && !pr.author.empty()) {
    auto w = permissions->can_write(c.repo.owner, c.repo.name, pr.author);
    if (!w && w.error().code == ErrorCode::kTransient) return fail(w.error());
    if (w && *w) return TrustDecision{true, pr.author + " may write to the repository"};
  } else if (!permissions && writer_association(pr.author_association)) {
    return TrustDecision{true, pr.author + " is the repository's " + pr.author_association};
  }
  auto approved = state.get_forge_ref("approved\n" + pull_request_key(c));
  if (!approved) return fail(approved.error());
  if (approved->has_value()) return TrustDecision{true, "approved by " + **approved};
  return TrustDecision{false, "a pull request from a fork by " + (pr.author.empty() ? std::string("someone") : pr.author) +
                                  ", who may not write to the repository"};
}

Result<bool> approval_counts(const msg::ChangeEvent& c, forge::Permissions* permissions) {
  if (c.approval.association == "api") return true;
  if (permissions) {
    auto w = permissions->can_write(c.repo.owner, c.repo.name, c.approval.by);
    if (!w && w.error().code == ErrorCode::kTransient) return fail(w.error());
    return w && *w;
  }
  return writer_association(c.approval.association);
}

Result<void> record_approval(state::StateStore& state, const std::string& pr_key, const std::string& by) {
  return state.put_forge_ref("approved\n" + pr_key, by, kApprovalSeconds);
}

Result<void> park_change(state::StateStore& state, const std::string& pr_key, const msg::ChangeEvent& c) {
  return state.put_forge_ref("awaiting\n" + pr_key, msg::encode(c), kParkedSeconds);
}

Result<std::optional<msg::ChangeEvent>> parked_change(state::StateStore& state, const std::string& pr_key) {
  auto parked = state.get_forge_ref("awaiting\n" + pr_key);
  if (!parked) return fail(parked.error());
  if (!parked->has_value()) return std::optional<msg::ChangeEvent>();
  auto c = msg::decode_change_event(**parked);
  if (!c) return std::optional<msg::ChangeEvent>();
  return std::optional<msg::ChangeEvent>(std::move(*c));
}

}  // namespace flurry::evaluator
