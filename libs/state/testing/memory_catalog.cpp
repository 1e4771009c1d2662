#include "flurry/state/testing/memory_catalog.hpp"

#include <algorithm>

namespace flurry::state::testing {
namespace {

Error down_error() { return Error::transient("memory catalog: down (injected)"); }

// The page of `evals` (ascending) after `cursor`, newest first.
Result<EvalPage> page_of(const std::set<std::pair<std::int64_t, std::string>>& evals, const std::string& cursor, std::size_t limit) {
  limit = std::max<std::size_t>(1, limit);
  std::optional<EvalPosition> from;
  if (!cursor.empty()) {
    from = decode_cursor(cursor);
    if (!from) return fail(Error::rejected("not a cursor: " + cursor.substr(0, 40)));
  }
  EvalPage page;
  for (auto it = evals.rbegin(); it != evals.rend(); ++it) {
    if (from && !from->before(it->first, it->second)) continue;
    if (page.eval_ids.size() == limit) {
      page.next_cursor = encode_cursor({std::prev(it)->first, std::prev(it)->second});
      break;
    }
    page.eval_ids.push_back(it->second);
  }
  return page;
}

}  // namespace

Result<void> MemoryCatalog::file_eval(const EvalFiling& f) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  const ProjectKey pk{f.repo.forge, f.repo.owner, f.repo.name};
  auto& p = projects_[key_of(pk)];
  p.info.key = pk;
  if (f.created_ms >= p.info.last_activity_ms) {
    p.info.html_url = f.repo.html_url;
    p.info.default_branch = f.repo.default_branch;
    p.info.last_activity_ms = f.created_ms;
  }
  auto& r = p.refs[f.ref];
  // A newer eval (not this one filed again: a replay must not reopen a
  // closed pull request) becomes the ref's latest.
  if (f.created_ms > r.latest_ms || (f.created_ms == r.latest_ms && f.eval_id != r.info.latest_eval)) {
    r.info = {f.ref, f.kind, f.name, f.number, f.title, true, f.created_ms, f.eval_id};
    r.latest_ms = f.created_ms;
  }
  r.evals.insert({f.created_ms, f.eval_id});
  p.evals.insert({f.created_ms, f.eval_id});
  return {};
}

Result<void> MemoryCatalog::close_ref(const ProjectKey& project, const std::string& ref) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto p = projects_.find(key_of(project));
  if (p == projects_.end()) return {};
  auto r = p->second.refs.find(ref);
  if (r != p->second.refs.end()) r->second.info.open = false;
  return {};
}

Result<std::vector<CatalogProject>> MemoryCatalog::projects(std::size_t limit) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  std::vector<CatalogProject> out;
  for (const auto& [_, p] : projects_) out.push_back(p.info);
  // Newest activity first; ties by key, as Redis orders equal scores.
  std::sort(out.begin(), out.end(), [](const CatalogProject& a, const CatalogProject& b) {
    return a.last_activity_ms != b.last_activity_ms ? a.last_activity_ms > b.last_activity_ms
                                                    : std::tie(a.key.forge, a.key.owner, a.key.repo) > std::tie(b.key.forge, b.key.owner, b.key.repo);
  });
  if (out.size() > limit) out.resize(limit);
  return out;
}

Result<std::optional<CatalogProject>> MemoryCatalog::project(const ProjectKey& project) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto p = projects_.find(key_of(project));
  if (p == projects_.end()) return std::optional<CatalogProject>();
  return std::optional<CatalogProject>(p->second.info);
}

Result<std::vector<CatalogRef>> MemoryCatalog::refs(const ProjectKey& project, std::size_t limit) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  std::vector<CatalogRef> out;
  auto p = projects_.find(key_of(project));
  if (p == projects_.end()) return out;
  for (const auto& [_, r] : p->second.refs) out.push_back(r.info);
  std::sort(out.begin(), out.end(), [](const CatalogRef& a, const CatalogRef& b) {
    return a.last_activity_ms != b.last_activity_ms ? a.last_activity_ms > b.last_activity_ms : a.ref > b.ref;
  });
  if (out.size() > limit) out.resize(limit);
  return out;
}

Result<std::optional<CatalogRef>> MemoryCatalog::ref(const ProjectKey& project, const std::string& ref) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  auto p = projects_.find(key_of(project));
  if (p == projects_.end()) return std::optional<CatalogRef>();
  auto r = p->second.refs.find(ref);
  if (r == p->second.refs.end()) return std::optional<CatalogRef>();
  return std::optional<CatalogRef>(r->second.info);
}

Result<EvalPage> MemoryCatalog::evals(const ProjectKey& project, const std::string& ref, const std::string& cursor, std::size_t limit) {
  std::lock_guard lock(mu_);
  if (down_) return fail(down_error());
  static const std::set<std::pair<std::int64_t, std::string>> kNone;
  auto p = projects_.find(key_of(project));
  if (p == projects_.end()) return page_of(kNone, cursor, limit);
  if (ref.empty()) return page_of(p->second.evals, cursor, limit);
  auto r = p->second.refs.find(ref);
  return page_of(r == p->second.refs.end() ? kNone : r->second.evals, cursor, limit);
}

}  // namespace flurry::state::testing
