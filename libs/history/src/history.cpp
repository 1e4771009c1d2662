#include "flurry/history/history.hpp"

#include <map>

#include "flurry/messages/messages.hpp"

namespace flurry::history {
namespace {

// How many older evals of a ref are read to find a finished one: evals
// cancelled by newer pushes can stand in between.
constexpr std::size_t kPage = 20;
constexpr int kMaxPages = 10;

bool finished(state::EvalState s) { return s == state::EvalState::kSucceeded || s == state::EvalState::kFailed; }

// The newest finished eval of `ref` older than `before` ("" = any), other
// than `skip`.
Result<std::optional<state::EvalRecord>> newest_finished(Ports ports, const state::ProjectKey& project, const std::string& ref,
                                                         std::string cursor, const std::string& skip) {
  for (int page = 0; page < kMaxPages; ++page) {
    auto ids = ports.catalog.evals(project, ref, cursor, kPage);
    if (!ids) return fail(ids.error());
    for (const auto& id : ids->eval_ids) {
      if (id == skip) continue;
      auto e = ports.state.get_eval(id);
      if (!e) return fail(e.error());
      if (e->has_value() && finished((**e).state)) return *e;
    }
    if (ids->next_cursor.empty()) break;
    cursor = ids->next_cursor;
  }
  return std::optional<state::EvalRecord>();
}

bool failing(msg::JobState s) { return msg::is_terminal(s) && !msg::is_success(s); }

}  // namespace

Result<std::optional<state::EvalRecord>> base_of(Ports ports, const state::EvalRecord& eval) {
  const state::ProjectKey project{eval.repo.forge, eval.repo.owner, eval.repo.name};
  auto change = msg::decode_change_event(eval.change);
  if (change && change->is_pull_request() && !change->pull_request.base_branch.empty()) {
    return newest_finished(ports, project, "refs/heads/" + change->pull_request.base_branch, "", eval.id);
  }
  // Older than this eval in its ref's listing.
  return newest_finished(ports, project, eval.ref, state::encode_cursor({eval.created_ms, eval.id}), eval.id);
}

Result<Comparison> compare(Ports ports, const state::EvalRecord& eval) {
  Comparison c;
  auto base = base_of(ports, eval);
  if (!base) return fail(base.error());
  c.base = std::move(*base);
  auto now = ports.state.list_jobs(eval.id);
  if (!now) return fail(now.error());
  std::map<std::string, const state::JobRecord*> before;
  std::vector<state::JobRecord> base_jobs;
  if (c.base) {
    auto b = ports.state.list_jobs(c.base->id);
    if (!b) return fail(b.error());
    base_jobs = std::move(*b);
    for (const auto& j : base_jobs) before[j.attr] = &j;
  }
  std::map<std::string, const state::JobRecord*> after;
  for (const auto& j : *now) after[j.attr] = &j;
  for (const auto& [attr, j] : after) {
    auto it = before.find(attr);
    if (it == before.end()) {
      c.added.push_back({attr, j->id, j->state, "", msg::JobState::kQueued});
      continue;
    }
    const Change change{attr, j->id, j->state, it->second->id, it->second->state};
    const bool was = failing(it->second->state), is = failing(j->state);
    if (is && was) c.still_failing.push_back(change);
    else if (is && msg::is_success(it->second->state)) c.newly_failing.push_back(change);
    else if (was && msg::is_success(j->state)) c.fixed.push_back(change);
  }
  for (const auto& [attr, j] : before) {
    if (!after.count(attr)) c.removed.push_back({attr, "", msg::JobState::kQueued, j->id, j->state});
  }
  return c;
}

std::string summary(const Comparison& c) {
  if (!c.base) return {};
  std::string out;
  auto add = [&](std::size_t n, const char* one, const char* many) {
    if (n == 0) return;
    out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + (n == 1 ? one : many);
  };
  add(c.newly_failing.size(), "new failure", "new failures");
  add(c.fixed.size(), "fixed", "fixed");
  return out;
}

}  // namespace flurry::history
