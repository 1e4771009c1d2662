#pragma once
// An in-memory Catalog: the reference semantics for the Redis adapter.
// Both pass libs/state/tests/catalog_contract.hpp.
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <tuple>

#include "flurry/state/catalog.hpp"

namespace flurry::state::testing {

class MemoryCatalog final : public Catalog {
 public:
  Result<void> file_eval(const EvalFiling& filing) override;
  Result<void> close_ref(const ProjectKey& project, const std::string& ref) override;
  Result<std::vector<CatalogProject>> projects(std::size_t limit) override;
  Result<std::optional<CatalogProject>> project(const ProjectKey& project) override;
  Result<std::vector<CatalogRef>> refs(const ProjectKey& project, std::size_t limit) override;
  Result<std::optional<CatalogRef>> ref(const ProjectKey& project, const std::string& ref) override;
  Result<EvalPage> evals(const ProjectKey& project, const std::string& ref, const std::string& cursor, std::size_t limit) override;

  // Makes every call fail as a lost connection would.
  void set_down(bool down) { down_ = down; }

 private:
  using Key = std::tuple<std::string, std::string, std::string>;
  static Key key_of(const ProjectKey& p) { return {p.forge, p.owner, p.repo}; }
  struct Ref {
    CatalogRef info;
    std::int64_t latest_ms = -1;
    std::set<std::pair<std::int64_t, std::string>> evals;  // (created_ms, eval id)
  };
  struct Project {
    CatalogProject info;
    std::map<std::string, Ref> refs;
    std::set<std::pair<std::int64_t, std::string>> evals;
  };
  std::mutex mu_;
  std::atomic<bool> down_{false};
  std::map<Key, Project> projects_;
};

}  // namespace flurry::state::testing
