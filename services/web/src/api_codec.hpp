#pragma once
// The web API's wire format: the request bodies it takes, decoded
// strictly into types, and the JSON it answers with. Handlers (api.cpp)
// never touch raw JSON.
#include <string>
#include <vector>

#include "flurry/core/error.hpp"
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

// Answers; bytes that are not UTF-8 (hostile names) are replaced, so the
// text is always valid JSON.
std::string encode_eval(const state::EvalRecord& e);
std::string encode_jobs(const std::vector<state::JobRecord>& jobs);
std::string encode_job(const state::JobRecord& j);
std::string encode_rebuilt(const std::vector<std::string>& cleared, const std::vector<std::string>& not_cached);
std::string encode_cancelled(const std::string& eval_id, std::size_t cancelled_jobs, state::EvalState eval_state);
std::string encode_error(const std::string& message);

}  // namespace flurry::web
