#include "api.hpp"

#include <charconv>
#include <limits>

#include "api_codec.hpp"
#include "listing.hpp"
#include "live.hpp"

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

// The whole number `name` of the query; `fallback` when absent or not one.
std::size_t query_number(const std::string& query, const std::string& name, std::size_t fallback) {
  for (const auto& kv : text::split(query, '&')) {
    if (!text::starts_with(kv, name + "=")) continue;
    std::size_t n = 0;
    auto v = kv.substr(name.size() + 1);
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec == std::errc() && p == v.data() + v.size()) return n;
  }
  return fallback;
}

bool token_holder(const http::Request& req, const ApiConfig& config) {
  const std::string given = req.header("authorization");
  return !config.token.empty() && crypto::constant_time_equal(given, "Bearer " + config.token);
}

// A repository's evals may be read by the asker; else the answer to send
// (404: what may not be read is not there).
std::optional<http::Response> refuse_read(const http::Request& req, const msg::Repo& repo, ApiPorts ports, const std::string& what) {
  if (!ports.access.may_read) return std::nullopt;
  auto ok = ports.access.may_read(req, repo);
  if (!ok) return error(503, "cannot tell who may read this project: " + ok.error().message);
  if (!*ok) return error(404, "no " + what);
  return std::nullopt;
}

// Acting on a repository's evals: the API token, or whom Access allows.
std::optional<http::Response> refuse_act(const http::Request& req, const msg::Repo& repo, ApiPorts ports, const ApiConfig& config) {
  if (token_holder(req, config)) return std::nullopt;
  if (!ports.access.may_act) {
    if (config.token.empty()) return error(403, "no API token is configured (web.api_token_file)");
    return error(401, "a valid \"Authorization: Bearer <token>\" header is required");
  }
  auto ok = ports.access.may_act(req, repo);
  if (!ok && ok.error().code == ErrorCode::kRejected) return error(403, ok.error().message);
  if (!ok) return error(503, "cannot tell who may act on this project: " + ok.error().message);
  if (!*ok) return error(req.header("cookie").empty() ? 401 : 403, "sign in as someone who may write to " + repo.full_name());
  return std::nullopt;
}

// A job and its eval, both present and readable; else the answer to send.
struct JobAndEval {
  state::JobRecord job;
  state::EvalRecord eval;
};
Expected<JobAndEval, http::Response> load_job(const http::Request& req, const std::string& job_id, ApiPorts ports) {
  auto job = ports.state.get_job(job_id);
  if (!job) return unexpected(store_error(job.error()));
  if (!job->has_value()) return unexpected(error(404, "no job " + job_id));
  auto e = ports.state.get_eval((**job).eval_id);
  if (!e) return unexpected(store_error(e.error()));
  if (!e->has_value()) return unexpected(error(404, "no job " + job_id));
  if (auto refused = refuse_read(req, (**e).repo, ports, "job " + job_id)) return unexpected(*refused);
  return JobAndEval{**job, **e};
}

http::Response get_log(const JobAndEval& at, const std::string& tail, const std::string& query, ApiPorts ports) {
  http::Response r;
  r.headers["X-Flurry-Job-State"] = std::string(msg::to_string(at.job.state));
  if (tail == "log/raw") {
    auto log = ports.state.get_log(at.job.id);
    if (!log) return store_error(log.error());
    r.headers["X-Flurry-Log-Size"] = std::to_string(log->size());
    r.body = std::move(*log);
    r.headers["Content-Disposition"] = "attachment; filename=\"" + text::safe_file_name(at.job.attr.empty() ? at.job.id : at.job.attr) + ".log\"";
    return r;
  }
  // Only the piece asked for is read: a page of a 50 MB log reads 256 KiB.
  std::size_t from = query_number(query, "offset", 0);
  const std::size_t limit = query_number(query, "limit", std::numeric_limits<std::size_t>::max() / 2);
  auto slice = ports.state.read_log(at.job.id, from, limit);
  if (!slice) return store_error(slice.error());
  if (from > slice->size) {  // the stored tail was cut since: start over
    from = 0;
    slice = ports.state.read_log(at.job.id, 0, limit);
    if (!slice) return store_error(slice.error());
  }
  r.headers["X-Flurry-Log-Size"] = std::to_string(slice->size);
  r.headers["X-Flurry-Log-Offset"] = std::to_string(from + slice->bytes.size());
  r.body = std::move(slice->bytes);
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

// A failed job built again, as GitHub's Re-run button does it: a re-run
// change (its cached failure is cleared, the change that made its eval is
// evaluated anew). One re-run per job and ten seconds: a double click is
// one re-run.
http::Response rerun_job(const JobAndEval& at, ApiPorts ports) {
  if (!msg::is_terminal(at.job.state) || msg::is_success(at.job.state)) {
    return error(409, "job " + at.job.id + " is " + std::string(msg::to_string(at.job.state)) + ": only a job that failed is rebuilt");
  }
  msg::ChangeEvent c;
  c.id = at.eval.repo.forge + ":web-rerun-" +
         crypto::sha256_hex(at.job.id + "\n" + std::to_string(ports.clock.now_ms() / 10000)).substr(0, 32);
  c.kind = msg::kRerun;
  c.repo = at.eval.repo;
  c.ref = at.eval.ref;
  c.branch = at.eval.branch;
  c.tag = at.eval.tag;
  c.rev = at.eval.rev;
  c.received_at_ms = ports.clock.now_ms();
  c.sender = ports.access.actor;  // who pressed it; the API token: the original change's sender
  c.rerun.job_id = at.job.id;
  if (auto r = ports.bus.publish({subjects::change(c.repo.forge), msg::encode(c), c.id}); !r) {
    return error(503, "cannot queue the rebuild: " + r.error().message);
  }
  return answer(202, encode_approved(c.id));
}

// Safe to repeat: the store answers a repeated cancel with the first one's
// transition, and the messages it republishes carry the same ids.
http::Response cancel(const std::string& eval_id, const http::Request& req, ApiPorts ports, const ApiConfig& config) {
  auto body = decode_cancel(req.body);
  if (!body) return error(400, body.error().message);
  auto e = ports.state.get_eval(eval_id);
  if (!e) return store_error(e.error());
  if (!e->has_value()) return error(404, "no eval " + eval_id);
  if (auto refused = refuse_read(req, (**e).repo, ports, "eval " + eval_id)) return *refused;
  if (auto refused = refuse_act(req, (**e).repo, ports, config)) return *refused;
  auto t = pipeline::cancel_and_publish({ports.bus, ports.state}, eval_id, body->reason, ports.clock.now_ms(), {}, {config.public_url});
  if (!t) return error(503, "cannot cancel: " + t.error().message);
  return answer(200, encode_cancelled(eval_id, t->cancelled.size(), t->eval_state));
}

// Approves a pull request: the approval goes to the evaluator as a change
// event (kind approve), which evaluates what waited for it. The change id
// derives from the request, so a client's retry is one approval.
http::Response approve(const http::Request& req, ApiPorts ports, const ApiConfig& config) {
  auto body = decode_approve(req.body);
  if (!body) return error(400, body.error().message);
  msg::ChangeEvent c;
  c.repo.forge = body->forge;
  c.repo.owner = body->owner;
  c.repo.name = body->repo;
  if (auto refused = refuse_act(req, c.repo, ports, config)) return *refused;
  c.id = body->forge + ":api-approve-" +
         crypto::sha256_hex(body->owner + "\n" + body->repo + "\n" + std::to_string(body->number) + "\n" + body->by).substr(0, 32);
  c.kind = msg::kApprove;
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

http::Response get(const http::Request& req, ApiPorts ports) {
  if (ports.catalog) {
    auto read = [&](const msg::Repo& repo) -> Result<bool> { return ports.access.may_read ? ports.access.may_read(req, repo) : true; };
    if (auto listed = handle_listing(req, {ports.state, *ports.catalog}, read, ports.access.is_public)) return *listed;
  }
  std::string id, tail;
  if (split_id(req.path, "/api/evals/", id, tail) && (tail.empty() || tail == "jobs" || tail == "events")) {
    auto e = ports.state.get_eval(id);
    if (!e) return store_error(e.error());
    if (!e->has_value()) return error(404, "no eval " + id);
    if (auto refused = refuse_read(req, (**e).repo, ports, "eval " + id)) return *refused;
    if (tail.empty()) return answer(200, encode_eval(**e));
    if (tail == "events") return eval_events(ports.state, **e);
    auto jobs = ports.state.list_jobs(id);
    if (!jobs) return store_error(jobs.error());
    return answer(200, encode_jobs(*jobs));
  }
  if (split_id(req.path, "/api/jobs/", id, tail) && (tail.empty() || tail == "log" || tail == "log/raw" || tail == "log/events")) {
    auto at = load_job(req, id, ports);
    if (!at) return at.error();
    if (tail.empty()) return answer(200, encode_job(at->job));
    if (tail == "log/events") return log_events(ports.state, at->job, query_number(req.query, "offset", 0));
    return get_log(*at, tail, req.query, ports);
  }
  return error(404, "no such resource");
}

http::Response post(const http::Request& req, ApiPorts ports, const ApiConfig& config) {
  std::string id, tail;
  if (req.path == "/api/rebuild") {
    // Any derivation: for the API token's holder only.
    if (config.token.empty()) return error(403, "no API token is configured (web.api_token_file)");
    if (!token_holder(req, config)) return error(401, "a valid \"Authorization: Bearer <token>\" header is required");
    return rebuild(req, ports);
  }
  if (req.path == "/api/approve") return approve(req, ports, config);
  if (split_id(req.path, "/api/evals/", id, tail) && tail == "cancel") return cancel(id, req, ports, config);
  if (split_id(req.path, "/api/jobs/", id, tail) && tail == "rebuild") {
    auto at = load_job(req, id, ports);
    if (!at) return at.error();
    if (auto refused = refuse_act(req, at->eval.repo, ports, config)) return *refused;
    return rerun_job(*at, ports);
  }
  return error(404, "no such resource");
}

}  // namespace

http::Response handle_api(const http::Request& req, ApiPorts ports, const ApiConfig& config) {
  if (req.method == "GET") return get(req, ports);
  if (req.method == "POST") return post(req, ports, config);
  return error(405, "method not allowed");
}

}  // namespace flurry::web
