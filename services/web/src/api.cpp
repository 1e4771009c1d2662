#include "api.hpp"

#include <charconv>

#include "api_codec.hpp"

#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"
#include "flurry/messages/subjects.hpp"

namespace flurry::web {
namespace {

// Ids are made by Flurry (hex and dashes); anything longer is not one.
constexpr std::size_t kMaxId = 200;

http::Response answer(int status, std::string json_body) {
  http::Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(json_body);
  return r;
}
http::Response error(int status, const std::string& why) { return answer(status, encode_error(why)); }
http::Response store_error(const Error& e) { return error(503, "state store unavailable: " + e.message); }

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

// Safe to repeat: clearing a cleared entry finds nothing.
http::Response rebuild(const http::Request& req, ApiPorts ports) {
  auto body = decode_rebuild(req.body);
  if (!body) return error(400, body.error().message);
  std::vector<std::string> cleared, not_cached;
  for (const auto& d : body->drv_paths) {
    auto c = ports.state.clear_failed_build(d);
    if (!c) return store_error(c.error());
    (*c ? cleared : not_cached).push_back(d);
  }
  return answer(200, encode_rebuilt(cleared, not_cached));
}

// Safe to repeat: the store answers a repeated cancel with the first one's
// transition, and the messages it republishes carry the same ids.
http::Response cancel(const std::string& eval_id, const http::Request& req, ApiPorts ports, const ApiConfig& config) {
  auto body = decode_cancel(req.body);
  if (!body) return error(400, body.error().message);
  auto e = ports.state.get_eval(eval_id);
  if (!e) return store_error(e.error());
  if (!e->has_value()) return error(404, "no eval " + eval_id);
  auto t = pipeline::cancel_and_publish({ports.bus, ports.state}, eval_id, body->reason, ports.clock.now_ms(), {}, {config.public_url});
  if (!t) return error(503, "cannot cancel: " + t.error().message);
  return answer(200, encode_cancelled(eval_id, t->cancelled.size(), t->eval_state));
}

// Approves a pull request: the approval goes to the evaluator as a change
// event (kind approve), which evaluates what waited for it. The change id
// derives from the request, so a client's retry is one approval.
http::Response approve(const http::Request& req, ApiPorts ports) {
  auto body = decode_approve(req.body);
  if (!body) return error(400, body.error().message);
  msg::ChangeEvent c;
  c.id = body->forge + ":api-approve-" +
         crypto::sha256_hex(body->owner + "\n" + body->repo + "\n" + std::to_string(body->number) + "\n" + body->by).substr(0, 32);
  c.kind = msg::kApprove;
  c.repo.forge = body->forge;
  c.repo.owner = body->owner;
  c.repo.name = body->repo;
  c.ref = (body->forge == "gitlab" ? "refs/merge-requests/" : "refs/pull/") + std::to_string(body->number) + "/head";
  c.sender = body->by;
  c.received_at_ms = ports.clock.now_ms();
  c.pull_request.number = body->number;
  c.approval = {body->by, "api"};  // the token holder may approve
  if (auto r = ports.bus.publish({subjects::change(body->forge), msg::encode(c), c.id}); !r) {
    return error(503, "cannot queue the approval: " + r.error().message);
  }
  return answer(202, encode_approved(c.id));
}

}  // namespace

http::Response handle_api(const http::Request& req, ApiPorts ports, const ApiConfig& config) {
  std::string id, tail;
  if (req.method == "GET") {
    if (split_id(req.path, "/api/evals/", id, tail) && (tail.empty() || tail == "jobs")) {
      auto e = ports.state.get_eval(id);
      if (!e) return store_error(e.error());
      if (!e->has_value()) return error(404, "no eval " + id);
      if (tail.empty()) return answer(200, encode_eval(**e));
      auto jobs = ports.state.list_jobs(id);
      if (!jobs) return store_error(jobs.error());
      return answer(200, encode_jobs(*jobs));
    }
    if (split_id(req.path, "/api/jobs/", id, tail)) {
      if (tail == "log") return get_log(id, req.query, ports);
      if (tail.empty()) {
        auto j = ports.state.get_job(id);
        if (!j) return store_error(j.error());
        if (!j->has_value()) return error(404, "no job " + id);
        return answer(200, encode_job(**j));
      }
    }
    return error(404, "no such resource");
  }
  if (req.method == "POST") {
    const bool is_rebuild = req.path == "/api/rebuild";
    const bool is_approve = req.path == "/api/approve";
    const bool is_cancel = split_id(req.path, "/api/evals/", id, tail) && tail == "cancel";
    if (!is_rebuild && !is_cancel && !is_approve) return error(404, "no such resource");
    if (config.token.empty()) return error(403, "no API token is configured (web.api_token_file)");
    if (!authorized(req, config)) return error(401, "a valid \"Authorization: Bearer <token>\" header is required");
    if (is_approve) return approve(req, ports);
    return is_rebuild ? rebuild(req, ports) : cancel(id, req, ports, config);
  }
  return error(405, "method not allowed");
}

}  // namespace flurry::web
