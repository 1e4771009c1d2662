#include "api.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"

namespace flurry::web {
namespace {

using json = nlohmann::json;

// Ids are made by Flurry (hex and dashes); anything longer is not one.
constexpr std::size_t kMaxId = 200;
constexpr std::size_t kMaxRebuild = 1000;

http::Response answer(int status, const json& body) {
  http::Response r;
  r.status = status;
  r.content_type = "application/json";
  // Hostile bytes in stored names must not make the answer invalid JSON.
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}
http::Response error(int status, const std::string& why) { return answer(status, {{"error", why}}); }

http::Response store_error(const Error& e) { return error(503, "state store unavailable: " + e.message); }

json repo_json(const msg::Repo& r) {
  return {{"forge", r.forge}, {"owner", r.owner}, {"name", r.name}, {"html_url", r.html_url}, {"default_branch", r.default_branch}};
}

json eval_json(const state::EvalRecord& e) {
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
          {"cancel_reason", e.cancel_reason}};
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

// "<id>" or "<id>/<tail>" after `prefix`; false when the rest is no id.
bool split_id(const std::string& path, const std::string& prefix, std::string& id, std::string& tail) {
  if (!text::starts_with(path, prefix)) return false;
  auto rest = path.substr(prefix.size());
  auto slash = rest.find('/');
  id = rest.substr(0, slash);
  tail = slash == std::string::npos ? "" : rest.substr(slash + 1);
  return !id.empty() && id.size() <= kMaxId;
}

std::size_t query_offset(const std::string& query) {
  for (const auto& kv : text::split(query, '&')) {
    if (!text::starts_with(kv, "offset=")) continue;
    std::size_t n = 0;
    auto v = kv.substr(7);
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec == std::errc() && p == v.data() + v.size()) return n;
  }
  return 0;
}

bool authorized(const http::Request& req, const ApiConfig& config) {
  const std::string given = req.header("authorization");
  return !config.token.empty() && crypto::constant_time_equal(given, "Bearer " + config.token);
}

http::Response get_log(const std::string& job_id, const std::string& query, ApiPorts ports) {
  auto job = ports.state.get_job(job_id);
  if (!job) return store_error(job.error());
  if (!job->has_value()) return error(404, "no job " + job_id);
  auto log = ports.state.get_log(job_id);
  if (!log) return store_error(log.error());
  std::size_t from = query_offset(query);
  if (from > log->size()) from = 0;  // the stored tail was cut since: start over
  http::Response r;
  r.body = log->substr(from);
  r.headers["X-Flurry-Log-Offset"] = std::to_string(log->size());
  r.headers["X-Flurry-Job-State"] = std::string(msg::to_string((**job).state));
  return r;
}

http::Response rebuild(const http::Request& req, ApiPorts ports) {
  json body = json::parse(req.body, nullptr, false);
  if (!body.is_object() || !body.contains("drv_paths") || !body["drv_paths"].is_array()) {
    return error(400, "expected {\"drv_paths\": [\"/nix/store/...drv\", ...]}");
  }
  if (body["drv_paths"].size() > kMaxRebuild) return error(400, "at most " + std::to_string(kMaxRebuild) + " derivations at once");
  json cleared = json::array(), not_cached = json::array();
  for (const auto& d : body["drv_paths"]) {
    if (!d.is_string() || !text::starts_with(d.get<std::string>(), "/nix/store/") || !text::ends_with(d.get<std::string>(), ".drv")) {
      return error(400, "drv_paths must be .drv store paths");
    }
  }
  for (const auto& d : body["drv_paths"]) {
    auto c = ports.state.clear_failed_build(d.get<std::string>());
    if (!c) return store_error(c.error());
    (*c ? cleared : not_cached).push_back(d);
  }
  return answer(200, {{"cleared", cleared}, {"not_cached", not_cached}});
}

http::Response cancel(const std::string& eval_id, const http::Request& req, ApiPorts ports, const ApiConfig& config) {
  std::string reason = "cancelled through the API";
  if (!text::trim(req.body).empty()) {
    json body = json::parse(req.body, nullptr, false);
    if (!body.is_object() || (body.contains("reason") && !body["reason"].is_string())) {
      return error(400, "expected {\"reason\": \"...\"} or no body");
    }
    if (body.contains("reason") && !text::trim(body["reason"].get<std::string>()).empty()) {
      reason = text::truncate_utf8(text::trim(body["reason"].get<std::string>()), 200);
    }
  }
  auto e = ports.state.get_eval(eval_id);
  if (!e) return store_error(e.error());
  if (!e->has_value()) return error(404, "no eval " + eval_id);
  auto t = pipeline::cancel_and_publish({ports.bus, ports.state}, eval_id, reason, ports.clock.now_ms(), {}, {config.public_url});
  if (!t) return error(503, "cannot cancel: " + t.error().message);
  return answer(200, {{"eval_id", eval_id},
                      {"cancelled_jobs", t->cancelled.size()},
                      {"eval_state", std::string(state::to_string(t->eval_state))}});
}

}  // namespace

http::Response handle_api(const http::Request& req, ApiPorts ports, const ApiConfig& config) {
  std::string id, tail;
  if (req.method == "GET") {
    if (split_id(req.path, "/api/evals/", id, tail)) {
      if (tail.empty()) {
        auto e = ports.state.get_eval(id);
        if (!e) return store_error(e.error());
        if (!e->has_value()) return error(404, "no eval " + id);
        return answer(200, eval_json(**e));
      }
      if (tail == "jobs") {
        auto e = ports.state.get_eval(id);
        if (!e) return store_error(e.error());
        if (!e->has_value()) return error(404, "no eval " + id);
        auto jobs = ports.state.list_jobs(id);
        if (!jobs) return store_error(jobs.error());
        json out = json::array();
        for (const auto& j : *jobs) out.push_back(job_json(j));
        return answer(200, out);
      }
    }
    if (split_id(req.path, "/api/jobs/", id, tail)) {
      if (tail.empty()) {
        auto j = ports.state.get_job(id);
        if (!j) return store_error(j.error());
        if (!j->has_value()) return error(404, "no job " + id);
        return answer(200, job_json(**j));
      }
      if (tail == "log") return get_log(id, req.query, ports);
    }
    return error(404, "no such resource");
  }
  if (req.method == "POST") {
    const bool is_rebuild = req.path == "/api/rebuild";
    const bool is_cancel = split_id(req.path, "/api/evals/", id, tail) && tail == "cancel";
    if (!is_rebuild && !is_cancel) return error(404, "no such resource");
    if (config.token.empty()) return error(403, "no API token is configured (web.api_token_file)");
    if (!authorized(req, config)) return error(401, "a valid \"Authorization: Bearer <token>\" header is required");
    return is_rebuild ? rebuild(req, ports) : cancel(id, req, ports, config);
  }
  return error(405, "method not allowed");
}

}  // namespace flurry::web
