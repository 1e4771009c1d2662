#include "api_codec.hpp"

#include <nlohmann/json.hpp>

#include "flurry/core/text.hpp"

namespace flurry::web {
namespace {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json repo_json(const msg::Repo& r) {
  // Not the clone URL: it may carry credentials.
  return {{"forge", r.forge}, {"owner", r.owner}, {"name", r.name}, {"html_url", r.html_url}, {"default_branch", r.default_branch}};
}

json job_json(const state::JobRecord& j) {
  return {{"id", j.id},
          {"eval_id", j.eval_id},
          {"attr", j.attr},
          {"name", j.name},
          {"system", j.system},
          {"features", j.features},
          {"drv_path", j.drv_path},
          {"outputs", j.outputs},
          {"state", std::string(msg::to_string(j.state))},
          {"error", j.error},
          {"cache_status", j.cache_status},
          {"started_ms", j.started_ms},
          {"finished_ms", j.finished_ms},
          {"attempts", j.attempts}};
}

bool is_drv_path(const std::string& s) {
  return text::starts_with(s, "/nix/store/") && text::ends_with(s, ".drv") && s.find("/..") == std::string::npos;
}

}  // namespace

Result<RebuildRequest> decode_rebuild(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("drv_paths") || !j["drv_paths"].is_array()) {
    return fail(Error::rejected("expected {\"drv_paths\": [\"/nix/store/...drv\", ...]}"));
  }
  if (j["drv_paths"].size() > kMaxRebuild) return fail(Error::rejected("at most " + std::to_string(kMaxRebuild) + " derivations at once"));
  RebuildRequest r;
  for (const auto& d : j["drv_paths"]) {
    if (!d.is_string() || !is_drv_path(d.get<std::string>())) return fail(Error::rejected("drv_paths must be .drv store paths"));
    r.drv_paths.push_back(d.get<std::string>());
  }
  return r;
}

Result<CancelRequest> decode_cancel(const std::string& body) {
  CancelRequest r;
  if (text::trim(body).empty()) return r;
  json j = json::parse(body, nullptr, false);
  if (!j.is_object() || (j.contains("reason") && !j["reason"].is_string())) {
    return fail(Error::rejected("expected {\"reason\": \"...\"} or no body"));
  }
  if (j.contains("reason") && !text::trim(j["reason"].get<std::string>()).empty()) {
    r.reason = text::truncate_utf8(text::trim(j["reason"].get<std::string>()), 200);
  }
  return r;
}

Result<ApproveRequest> decode_approve(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  const auto usage = Error::rejected(R"(expected {"forge": "github|gitea|gitlab", "owner": "...", "repo": "...", "number": 12, "by": "..."})");
  if (!j.is_object()) return fail(usage);
  ApproveRequest r;
  for (auto [key, out] : {std::pair{"forge", &r.forge}, std::pair{"owner", &r.owner}, std::pair{"repo", &r.repo}}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string() || it->get<std::string>().empty() || it->get<std::string>().size() > 300) return fail(usage);
    *out = it->get<std::string>();
  }
  if (r.forge != "github" && r.forge != "gitea" && r.forge != "gitlab") return fail(Error::rejected("forge must be github, gitea or gitlab"));
  auto n = j.find("number");
  if (n == j.end() || !n->is_number_integer() || n->get<std::int64_t>() <= 0 || n->get<std::int64_t>() > 1'000'000'000) {
    return fail(Error::rejected("number must be the pull request's number"));
  }
  r.number = static_cast<int>(n->get<std::int64_t>());
  if (auto by = j.find("by"); by != j.end()) {
    if (!by->is_string()) return fail(usage);
    if (!text::trim(by->get<std::string>()).empty()) r.by = text::truncate_utf8(text::trim(by->get<std::string>()), 100);
  }
  return r;
}

std::string encode_approved(const std::string& change_id) { return dump({{"approved", true}, {"change_id", change_id}}); }

std::string encode_eval(const state::EvalRecord& e) {
  return dump({{"id", e.id},
               {"repo", repo_json(e.repo)},
               {"ref", e.ref},
               {"branch", e.branch},
               {"tag", e.tag},
               {"rev", e.rev},
               {"state", std::string(state::to_string(e.state))},
               {"error", e.error},
               {"warnings", e.warnings},
               {"jobs_total", e.jobs_total},
               {"jobs_pending", e.jobs_pending},
               {"jobs_failed", e.jobs_failed},
               {"created_ms", e.created_ms},
               {"finished_ms", e.finished_ms},
               {"cancelled", e.cancelled},
               {"cancel_reason", e.cancel_reason}});
}

std::string encode_jobs(const std::vector<state::JobRecord>& jobs) {
  json out = json::array();
  for (const auto& j : jobs) out.push_back(job_json(j));
  return dump(out);
}

std::string encode_job(const state::JobRecord& j) { return dump(job_json(j)); }

std::string encode_rebuilt(const std::vector<std::string>& cleared, const std::vector<std::string>& not_cached) {
  return dump({{"cleared", cleared}, {"not_cached", not_cached}});
}

std::string encode_cancelled(const std::string& eval_id, std::size_t cancelled_jobs, state::EvalState eval_state) {
  return dump({{"eval_id", eval_id}, {"cancelled_jobs", cancelled_jobs}, {"eval_state", std::string(state::to_string(eval_state))}});
}

std::string encode_error(const std::string& message) { return dump({{"error", message}}); }

}  // namespace flurry::web
