#pragma once
// The web API's wire format: the request bodies it takes, decoded
// strictly into types, and the JSON it answers with. Handlers (api.cpp)
// never touch raw JSON.
#include <optional>
#include <string>
#include <vector>

#include "flurry/core/error.hpp"
#include "flurry/history/history.hpp"
#include "flurry/state/catalog.hpp"
#include "flurry/state/store.hpp"

namespace flurry::web {

// POST /api/rebuild: {"drv_paths": ["/nix/store/...drv", ...]} (at most kMaxRebuild).
inline constexpr std::size_t kMaxRebuild = 1000;
struct RebuildRequest {
  std::vector<std::string> drv_paths;
};
Result<RebuildRequest> decode_rebuild(const std::string& body);

// POST /api/evals/<eval>/cancel: {"reason": "..."} or no body.
struct CancelRequest {
  std::string reason = "cancelled through the API";
};
Result<CancelRequest> decode_cancel(const std::string& body);

// POST /api/approve: {"forge": "github", "owner": "o", "repo": "r",
// "number": 12, "by": "who"} approves a pull request from a fork (as a
// "/flurry approve" comment by a maintainer would); "by" is optional.
struct ApproveRequest {
  std::string forge, owner, repo;
  int number = 0;
  std::string by = "the API";
};
Result<ApproveRequest> decode_approve(const std::string& body);
std::string encode_approved(const std::string& change_id);

// What the listings show of a project and a ref: the catalog's entry and
// its latest eval (none when it is gone).
struct ProjectView {
  state::CatalogProject project;
  std::optional<state::EvalRecord> latest;  // the default branch's newest eval
  bool is_private = false;
};
struct RefView {
  state::CatalogRef ref;
  std::optional<state::EvalRecord> latest;
};

// Answers; bytes that are not UTF-8 (hostile names) are replaced, so the
// text is always valid JSON. An eval carries its trigger (the change that
// made it) and links to the forge (only http(s) URLs); a dependency_failed
// job names the job whose failure ended it.
std::string encode_eval(const state::EvalRecord& e);
std::string encode_jobs(const std::vector<state::JobRecord>& jobs);
std::string encode_job(const state::JobRecord& j);
std::string encode_rebuilt(const std::vector<std::string>& cleared, const std::vector<std::string>& not_cached);
std::string encode_cancelled(const std::string& eval_id, std::size_t cancelled_jobs, state::EvalState eval_state);
std::string encode_error(const std::string& message);
std::string encode_projects(const std::vector<ProjectView>& projects);
std::string encode_project(const ProjectView& project, const std::vector<RefView>& refs);
std::string encode_eval_page(const std::vector<state::EvalRecord>& evals, const std::string& next_cursor);
std::string encode_comparison(const history::Comparison& c);
std::string encode_effects(const std::vector<state::EffectRecord>& effects);
// Live updates (live.hpp): a piece of a log, from `offset`; a job's state.
std::string encode_log_chunk(std::size_t offset, const std::string& bytes);
std::string encode_job_state(msg::JobState state);

}  // namespace flurry::web
