#include "api_codec.hpp"

#include <nlohmann/json.hpp>

#include "flurry/core/text.hpp"
#include "flurry/state/ids.hpp"

namespace flurry::web {
namespace {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json repo_json(const msg::Repo& r) {
  // Not the clone URL: it may carry credentials.
  return {{"forge", r.forge}, {"owner", r.owner}, {"name", r.name}, {"html_url", r.html_url}, {"default_branch", r.default_branch}};
}

// The forge's page of a commit, from the repository's web URL; "" when
// there is none (or it is no http(s) URL: never a link to anything else).
std::string commit_url(const msg::Repo& r, const std::string& rev) {
  if (!(text::starts_with(r.html_url, "https://") || text::starts_with(r.html_url, "http://")) || rev.empty()) return "";
  return r.html_url + (r.forge == "gitlab" ? "/-/commit/" : "/commit/") + rev;
}

json eval_json(const state::EvalRecord& e) {
  json trigger = {{"kind", ""}, {"sender", ""}, {"pull_request", nullptr}};
  if (auto c = msg::decode_change_event(e.change)) {
    const bool rerun = c->kind == msg::kRerun || !c->rerun.job_id.empty() || !c->rerun.eval_id.empty();
    trigger["kind"] = rerun ? std::string(msg::kRerun) : c->kind;
    if (rerun) trigger["rerun"] = {{"job_id", c->rerun.job_id}, {"eval_id", c->rerun.eval_id}};
    trigger["sender"] = c->sender;
    if (c->is_pull_request()) {
      trigger["pull_request"] = {{"number", c->pull_request.number},
                                 {"title", c->pull_request.title},
                                 {"head_branch", c->pull_request.head_branch},
                                 {"base_branch", c->pull_request.base_branch}};
    }
  }
  const bool web = text::starts_with(e.repo.html_url, "https://") || text::starts_with(e.repo.html_url, "http://");
  return {{"id", e.id},
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
          {"cancel_reason", e.cancel_reason},
          {"trigger", trigger},
          {"links", {{"commit", commit_url(e.repo, e.rev)}, {"repo", web ? e.repo.html_url : ""}}}};
}

json project_json(const ProjectView& p) {
  const auto& c = p.project;
  const bool web = text::starts_with(c.html_url, "https://") || text::starts_with(c.html_url, "http://");
  return {{"forge", c.key.forge},
          {"owner", c.key.owner},
          {"repo", c.key.repo},
          {"html_url", web ? c.html_url : ""},
          {"default_branch", c.default_branch},
          {"private", p.is_private},
          {"last_activity_ms", c.last_activity_ms},
          {"latest", p.latest ? eval_json(*p.latest) : json(nullptr)}};
}

// The job whose failure ended `j` ("dependency <attr> failed"): same eval,
// that attribute.
json dependency_json(const state::JobRecord& j) {
  if (j.state != msg::JobState::kDependencyFailed) return nullptr;
  const std::string prefix = "dependency ", suffix = " failed";
  if (!text::starts_with(j.error, prefix) || !text::ends_with(j.error, suffix) || j.error.size() <= prefix.size() + suffix.size()) {
    return nullptr;
  }
  const auto attr = j.error.substr(prefix.size(), j.error.size() - prefix.size() - suffix.size());
  return {{"attr", attr}, {"job_id", state::job_id_for(j.eval_id, attr)}};
}

json job_json(const state::JobRecord& j) {
  return {{"id", j.id},
          {"dependency", dependency_json(j)},
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

std::string encode_eval(const state::EvalRecord& e) { return dump(eval_json(e)); }

std::string encode_jobs(const std::vector<state::JobRecord>& jobs) {
  json out = json::array();
  for (const auto& j : jobs) out.push_back(job_json(j));
  return dump(out);
}

std::string encode_job(const state::JobRecord& j) { return dump(job_json(j)); }

std::string encode_projects(const std::vector<ProjectView>& projects) {
  json list = json::array();
  for (const auto& p : projects) list.push_back(project_json(p));
  return dump({{"projects", list}});
}

std::string encode_project(const ProjectView& project, const std::vector<RefView>& refs) {
  json list = json::array();
  for (const auto& r : refs) {
    list.push_back({{"ref", r.ref.ref},
                    {"kind", r.ref.kind},
                    {"name", r.ref.name},
                    {"number", r.ref.number},
                    {"title", r.ref.title},
                    {"open", r.ref.open},
                    {"last_activity_ms", r.ref.last_activity_ms},
                    {"latest", r.latest ? eval_json(*r.latest) : json(nullptr)}});
  }
  return dump({{"project", project_json(project)}, {"refs", list}});
}

std::string encode_eval_page(const std::vector<state::EvalRecord>& evals, const std::string& next_cursor) {
  json list = json::array();
  for (const auto& e : evals) list.push_back(eval_json(e));
  return dump({{"evals", list}, {"next_cursor", next_cursor.empty() ? json(nullptr) : json(next_cursor)}});
}

std::string encode_comparison(const history::Comparison& c) {
  auto changes = [](const std::vector<history::Change>& v) {
    json out = json::array();
    for (const auto& ch : v) {
      out.push_back({{"attr", ch.attr},
                     {"job_id", ch.job_id},
                     {"state", ch.job_id.empty() ? "" : std::string(msg::to_string(ch.state))},
                     {"base_job_id", ch.base_job_id},
                     {"base_state", ch.base_job_id.empty() ? "" : std::string(msg::to_string(ch.base_state))}});
    }
    return out;
  };
  return dump({{"base", c.base ? eval_json(*c.base) : json(nullptr)},
               {"newly_failing", changes(c.newly_failing)},
               {"fixed", changes(c.fixed)},
               {"still_failing", changes(c.still_failing)},
               {"new", changes(c.added)},
               {"removed", changes(c.removed)},
               {"summary", history::summary(c)}});
}

std::string encode_effects(const std::vector<state::EffectRecord>& effects) {
  json list = json::array();
  for (const auto& e : effects) {
    list.push_back({{"name", e.name}, {"state", e.state}, {"finished_ms", e.finished_ms}, {"log", e.log}});
  }
  return dump({{"effects", list}});
}

std::string encode_rebuilt(const std::vector<std::string>& cleared, const std::vector<std::string>& not_cached) {
  return dump({{"cleared", cleared}, {"not_cached", not_cached}});
}

std::string encode_cancelled(const std::string& eval_id, std::size_t cancelled_jobs, state::EvalState eval_state) {
  return dump({{"eval_id", eval_id}, {"cancelled_jobs", cancelled_jobs}, {"eval_state", std::string(state::to_string(eval_state))}});
}

std::string encode_error(const std::string& message) { return dump({{"error", message}}); }

std::string encode_log_chunk(std::size_t offset, const std::string& bytes) {
  // The text as UTF-8 (invalid bytes replaced), and where the next piece
  // starts in the stored bytes.
  return dump({{"offset", offset}, {"next", offset + bytes.size()}, {"text", bytes}});
}

std::string encode_job_state(msg::JobState state) { return dump({{"state", std::string(msg::to_string(state))}}); }

}  // namespace flurry::web
