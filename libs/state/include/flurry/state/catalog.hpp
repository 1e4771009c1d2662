#pragma once
// The catalog port: what the web UI lists, filed as evals are made.
// Projects by last activity, each project's refs (branches, tags, pull
// requests) with their latest eval, and each ref's evals newest first,
// paged by cursor. Kept in indexes, so that listing never scans evals:
// answers cost the same with 10,000 evals as with 10.
//
// Production: Redis (connect_redis_catalog, one Lua script per filing).
// Tests: MemoryCatalog (testing/memory_catalog.hpp). Both pass
// tests/catalog_contract.hpp.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flurry/core/error.hpp"
#include "flurry/messages/messages.hpp"

namespace flurry::state {

// A project: one repository of one forge.
struct ProjectKey {
  std::string forge, owner, repo;
  bool operator==(const ProjectKey&) const = default;
};

struct CatalogProject {
  ProjectKey key;
  std::string html_url;
  std::string default_branch;
  std::int64_t last_activity_ms = 0;  // the newest eval filed under it
  bool operator==(const CatalogProject&) const = default;
};

// A ref as the UI lists it.
struct CatalogRef {
  std::string ref;   // "refs/heads/main", "refs/tags/v1", "refs/pull/12/head"
  std::string kind;  // "branch", "tag" or "pull_request"
  std::string name;  // "main", "v1", "#12"
  int number = 0;    // the pull request's
  std::string title;  // the pull request's, as its newest eval saw it
  bool open = true;   // false once a pull request was closed or merged
  std::int64_t last_activity_ms = 0;
  std::string latest_eval;  // the newest eval of this ref
  bool operator==(const CatalogRef&) const = default;
};

// What one eval is filed under.
struct EvalFiling {
  std::string eval_id;
  msg::Repo repo;
  std::string ref;
  std::string kind;  // see CatalogRef
  std::string name;
  int number = 0;
  std::string title;
  std::int64_t created_ms = 0;
};

// The filing of an eval of `change` (its kind, name and number from the
// change's ref and pull request).
EvalFiling filing_of(const std::string& eval_id, const msg::ChangeEvent& change, std::int64_t created_ms);

struct EvalPage {
  std::vector<std::string> eval_ids;  // newest first
  std::string next_cursor;            // "" when there are no older ones
};

// Cursors name the last eval a page showed: its creation time and id
// (evals order by both, newest first). Every catalog makes and reads them
// the same way.
struct EvalPosition {
  std::int64_t created_ms = 0;
  std::string eval_id;
  // True when `other` comes after this one (is older) in a listing.
  bool before(std::int64_t other_ms, const std::string& other_id) const {
    return other_ms < created_ms || (other_ms == created_ms && other_id < eval_id);
  }
};
std::string encode_cursor(const EvalPosition& at);
// nullopt for text no catalog made (a hostile query).
std::optional<EvalPosition> decode_cursor(const std::string& cursor);

class Catalog {
 public:
  virtual ~Catalog() = default;
  // Files an eval under its project and ref; the project's and the ref's
  // activity and the ref's latest eval move to it unless a newer one was
  // filed. Safe to repeat.
  virtual Result<void> file_eval(const EvalFiling& filing) = 0;
  // A pull request was closed or merged: its ref is no longer open (a new
  // eval of it opens it again). No-op for a ref never filed.
  virtual Result<void> close_ref(const ProjectKey& project, const std::string& ref) = 0;

  // Projects, newest activity first; at most `limit`.
  virtual Result<std::vector<CatalogProject>> projects(std::size_t limit) = 0;
  virtual Result<std::optional<CatalogProject>> project(const ProjectKey& project) = 0;
  // A project's refs, newest activity first; at most `limit`.
  virtual Result<std::vector<CatalogRef>> refs(const ProjectKey& project, std::size_t limit) = 0;
  virtual Result<std::optional<CatalogRef>> ref(const ProjectKey& project, const std::string& ref) = 0;
  // The evals of one ref (or, with ref "", of every ref of the project),
  // newest first, `limit` at a time from `cursor` ("" = the newest). A
  // cursor stays valid while evals are filed: it never repeats or skips one.
  // kRejected for a cursor this catalog did not make.
  virtual Result<EvalPage> evals(const ProjectKey& project, const std::string& ref, const std::string& cursor, std::size_t limit) = 0;
};

}  // namespace flurry::state
