// Redis adapter for the StateStore port. Records are plain hash fields
// (binary-safe: every byte of an attribute name or error text comes back as
// written); every change touching more than one key is one Lua script
// (lua_scripts.hpp). Key layout: libs/state/README.md.
#include "flurry/state/redis_store.hpp"

#include <algorithm>
#include <charconv>
#include <map>

#include "flurry/core/log.hpp"
#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"
#include "lua_scripts.hpp"
#include "redis_client.hpp"

namespace flurry::state {
namespace {

using msg::JobState;
using redis::Reply;

// Logs and status records outlive the builds they describe by this much.
constexpr int kLogTtlSeconds = 30 * 24 * 3600;
constexpr int kStatusTtlSeconds = 30 * 24 * 3600;
// Commands per pipelined batch when reading many records.
constexpr std::size_t kReadBatch = 1000;

// The scripts, each under the name its errors are reported with.
const std::string kAddJobsBody = lua::add_jobs_script();
const std::string kFinishJobBody = lua::finish_job_script();
const std::string kCancelEvalBody = lua::cancel_eval_script();
const std::string kSupersedeBody = lua::kSupersede;
const std::string kCreateEvalBody = lua::kCreateEval;
const std::string kStartJobBody = lua::kStartJob;
const std::string kFailEvalBody = lua::kFailEval;
const std::string kAppendLogBody = lua::kAppendLog;
const std::string kAdvanceStatusBody = lua::kAdvanceStatus;
const std::string kAddEvalWarningsBody = lua::kAddEvalWarnings;
const redis::Script kAddJobs{"add_jobs", kAddJobsBody};
const redis::Script kFinishJob{"finish_job", kFinishJobBody};
const redis::Script kCancelEval{"cancel_eval", kCancelEvalBody};
const redis::Script kSupersede{"supersede", kSupersedeBody};
const redis::Script kCreateEval{"create_eval", kCreateEvalBody};
const redis::Script kStartJob{"start_job", kStartJobBody};
const redis::Script kFailEval{"fail_eval", kFailEvalBody};
const redis::Script kAppendLog{"append_log", kAppendLogBody};
const redis::Script kAdvanceStatus{"advance_status", kAdvanceStatusBody};
const redis::Script kAddEvalWarnings{"add_eval_warnings", kAddEvalWarningsBody};
const redis::Script kClaimDrvBuild{"claim_drv_build", lua::kClaimDrvBuild};
const redis::Script kFinishDrvBuild{"finish_drv_build", lua::kFinishDrvBuild};
const std::string kSetProjectsBody = lua::kSetProjects;
const redis::Script kSetProjects{"set_projects", kSetProjectsBody};

constexpr std::string_view kOutputPrefix = "output:";

std::int64_t to_i64(std::string_view s) {
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

Error bad_reply(std::string_view what) { return Error::transient("redis: unexpected reply to " + std::string(what)); }

Result<std::vector<std::string>> string_list(const Reply& r, std::string_view what) {
  if (!r.is_array()) return fail(bad_reply(what));
  std::vector<std::string> out;
  out.reserve(r.elements.size());
  for (const auto& e : r.elements) {
    if (!e.is_string()) return fail(bad_reply(what));
    out.push_back(e.str);
  }
  return out;
}

JobRecord to_job(const Reply& hash);

// {ready ids, dependency_failed ids, eval_finished 0|1, eval state,
// cancelled ids, ended job hashes, {total, pending, failed, finished_ms}}
Result<Transition> parse_transition(const Reply& r, std::string_view what) {
  if (!r.is_array() || r.elements.size() != 7 || !r.elements[2].is_integer() || !r.elements[3].is_string() ||
      !r.elements[5].is_array() || !r.elements[6].is_array() || r.elements[6].elements.size() != 4) {
    return fail(bad_reply(what));
  }
  Transition t;
  auto ready = string_list(r.elements[0], what);
  if (!ready) return fail(ready.error());
  auto failed = string_list(r.elements[1], what);
  if (!failed) return fail(failed.error());
  auto cancelled = string_list(r.elements[4], what);
  if (!cancelled) return fail(cancelled.error());
  t.ready = std::move(*ready);
  t.dependency_failed = std::move(*failed);
  t.cancelled = std::move(*cancelled);
  t.eval_finished = r.elements[2].integer != 0;
  auto s = parse_eval_state(r.elements[3].str);
  if (!s) return fail(Error::transient("redis: " + std::string(what) + ": unknown eval state " + r.elements[3].str));
  t.eval_state = *s;
  for (const auto& hash : r.elements[5].elements) {
    if (!hash.is_array() || hash.elements.empty()) return fail(bad_reply(what));
    t.ended.push_back(to_job(hash));
  }
  const auto& c = r.elements[6].elements;
  for (const auto& n : c) {
    if (!n.is_integer()) return fail(bad_reply(what));
  }
  t.tally = {static_cast<int>(c[0].integer), static_cast<int>(c[1].integer), static_cast<int>(c[2].integer), c[3].integer};
  return t;
}

// Lists of names are stored newline-separated: system and feature names
// never contain one.
std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : "\n") + x;
  return out;
}

JobRecord to_job(const Reply& hash) {
  JobRecord j;
  for (std::size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
    const std::string& f = hash.elements[i].str;
    const std::string& v = hash.elements[i + 1].str;
    if (f.compare(0, kOutputPrefix.size(), kOutputPrefix) == 0) j.outputs[f.substr(kOutputPrefix.size())] = v;
    else if (f == "id") j.id = v;
    else if (f == "eval_id") j.eval_id = v;
    else if (f == "attr") j.attr = v;
    else if (f == "drv_path") j.drv_path = v;
    else if (f == "system") j.system = v;
    else if (f == "state") j.state = msg::parse_job_state(v).value_or(JobState::kQueued);
    else if (f == "error") j.error = v;
    else if (f == "cache_status") j.cache_status = v;
    else if (f == "name") j.name = v;
    else if (f == "features") j.features = v.empty() ? std::vector<std::string>{} : text::split(v, '\n');
    else if (f == "started_ms") j.started_ms = to_i64(v);
    else if (f == "finished_ms") j.finished_ms = to_i64(v);
    else if (f == "attempts") j.attempts = static_cast<int>(to_i64(v));
    else if (f == "deps_pending") j.deps_pending = static_cast<int>(to_i64(v));
  }
  return j;
}

EvalRecord to_eval(const Reply& hash) {
  EvalRecord e;
  for (std::size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
    const std::string& f = hash.elements[i].str;
    const std::string& v = hash.elements[i + 1].str;
    if (f == "id") e.id = v;
    else if (f == "change_id") e.change_id = v;
    else if (f == "repo_forge") e.repo.forge = v;
    else if (f == "repo_owner") e.repo.owner = v;
    else if (f == "repo_name") e.repo.name = v;
    else if (f == "repo_clone_url") e.repo.clone_url = v;
    else if (f == "repo_html_url") e.repo.html_url = v;
    else if (f == "repo_default_branch") e.repo.default_branch = v;
    else if (f == "repo_installation_id") e.repo.installation_id = to_i64(v);
    else if (f == "ref") e.ref = v;
    else if (f == "branch") e.branch = v;
    else if (f == "tag") e.tag = v;
    else if (f == "rev") e.rev = v;
    else if (f == "state") e.state = parse_eval_state(v).value_or(EvalState::kEvaluating);
    else if (f == "error") e.error = v;
    else if (f == "created_ms") e.created_ms = to_i64(v);
    else if (f == "finished_ms") e.finished_ms = to_i64(v);
    else if (f == "jobs_total") e.jobs_total = static_cast<int>(to_i64(v));
    else if (f == "jobs_pending") e.jobs_pending = static_cast<int>(to_i64(v));
    else if (f == "jobs_failed") e.jobs_failed = static_cast<int>(to_i64(v));
    else if (f == "cancelled") e.cancelled = v == "1";
    else if (f == "cancel_reason") e.cancel_reason = v;
    else if (f == "cancel_ends_as") e.cancel_ends_as = v == "failed" ? EvalState::kFailed : EvalState::kCancelled;
    else if (f == "change") e.change = v;
  }
  return e;
}

class RedisStore final : public StateStore {
 public:
  explicit RedisStore(const RedisOptions& o) : prefix_(o.prefix), client_(o) {}

  Result<void> ping() {
    auto r = client_.command({"PING"});
    if (!r) return fail(r.error());
    return {};
  }

  Result<bool> create_eval(const EvalRecord& e) override {
    auto r = client_.eval(kCreateEval, {eval_key(e.id)},
                          {"id", e.id, "change_id", e.change_id, "repo_forge", e.repo.forge, "repo_owner", e.repo.owner,
                           "repo_name", e.repo.name, "repo_clone_url", e.repo.clone_url, "repo_html_url",
                           e.repo.html_url, "repo_default_branch", e.repo.default_branch, "repo_installation_id",
                           std::to_string(e.repo.installation_id), "ref", e.ref, "branch",
                           e.branch, "tag", e.tag, "rev", e.rev, "state", std::string(to_string(EvalState::kEvaluating)),
                           "error", "", "created_ms", std::to_string(e.created_ms), "finished_ms", "0", "jobs_total",
                           "0", "jobs_pending", "0", "jobs_failed", "0", "change", e.change});
    if (!r) return fail(r.error());
    return r->integer == 1;
  }

  Result<std::optional<EvalRecord>> get_eval(const std::string& id) override {
    auto r = client_.pipeline({{"HGETALL", eval_key(id)}, {"LRANGE", key("eval-warnings:", id), "0", "-1"}});
    if (!r) return fail(r.error());
    if (r->size() != 2 || !(*r)[0].is_array()) return fail(bad_reply("HGETALL eval"));
    if ((*r)[0].elements.empty()) return std::optional<EvalRecord>();
    auto warnings = string_list((*r)[1], "LRANGE eval-warnings");
    if (!warnings) return fail(warnings.error());
    auto e = to_eval((*r)[0]);
    e.warnings = std::move(*warnings);
    return std::optional<EvalRecord>(std::move(e));
  }

  Result<Transition> add_jobs(const std::string& eval_id, const std::vector<JobSpec>& jobs, std::int64_t now_ms,
                              bool complete) override {
    std::vector<std::string> args;
    std::size_t n = 5;
    for (const auto& j : jobs) n += 11 + 2 * j.outputs.size() + j.deps.size();
    args.reserve(n);
    args.push_back(prefix_);
    args.push_back(eval_id);
    args.push_back(std::to_string(now_ms));
    args.push_back(complete ? "1" : "0");
    args.push_back(std::to_string(jobs.size()));
    for (const auto& j : jobs) {
      args.push_back(j.id);
      args.push_back(j.attr);
      args.push_back(j.drv_path);
      args.push_back(j.system);
      args.emplace_back(msg::to_string(j.state));
      args.push_back(j.error);
      args.push_back(j.cache_status);
      args.push_back(j.name);
      args.push_back(join(j.features));
      args.push_back(std::to_string(j.outputs.size()));
      for (const auto& [name, path] : j.outputs) {
        args.push_back(name);
        args.push_back(path);
      }
      args.push_back(std::to_string(j.deps.size()));
      args.insert(args.end(), j.deps.begin(), j.deps.end());
    }
    auto r = client_.eval(kAddJobs, {eval_key(eval_id), key("eval-jobs:", eval_id)}, args);
    if (!r) return fail(r.error());
    return parse_transition(*r, "add_jobs");
  }

  Result<void> add_eval_warnings(const std::string& eval_id, const std::vector<std::string>& warnings) override {
    std::vector<std::string> args;
    args.reserve(1 + warnings.size());
    args.push_back(std::to_string(kMaxWarnings));
    for (const auto& w : warnings) args.push_back(w.substr(0, kMaxWarningBytes));
    auto r = client_.eval(kAddEvalWarnings, {eval_key(eval_id), key("eval-warnings:", eval_id)}, args);
    if (!r) return fail(r.error());
    return {};
  }

  Result<EvalRecord> fail_eval(const std::string& eval_id, const std::string& error, std::int64_t now_ms) override {
    auto r = client_.eval(kFailEval, {eval_key(eval_id)}, {error, std::to_string(now_ms)});
    if (!r) return fail(r.error());
    if (!r->is_array() || r->elements.empty()) return fail(bad_reply("fail_eval"));
    return to_eval(*r);
  }

  Result<std::string> supersede(const std::string& ref_key, const std::string& eval_id, std::int64_t received_ms) override {
    // The ref key is attacker-controlled and unbounded: store it hashed.
    auto r = client_.eval(kSupersede, {key("ref-head:", crypto::sha256_hex(ref_key))}, {eval_id, std::to_string(received_ms)});
    if (!r) return fail(r.error());
    if (!r->is_string()) return fail(bad_reply("supersede"));
    return r->str;
  }

  Result<std::string> ref_head(const std::string& ref_key) override {
    auto r = client_.command({"HGET", key("ref-head:", crypto::sha256_hex(ref_key)), "eval"});
    if (!r) return fail(r.error());
    return r->is_nil() ? std::string() : r->str;
  }

  Result<void> put_forge_ref(const std::string& k, const std::string& value, int ttl_seconds) override {
    auto r = client_.command({"SET", key("forge-ref:", crypto::sha256_hex(k)), value, "EX", std::to_string(std::max(1, ttl_seconds))});
    if (!r) return fail(r.error());
    return {};
  }

  Result<std::optional<std::string>> get_forge_ref(const std::string& k) override {
    auto r = client_.command({"GET", key("forge-ref:", crypto::sha256_hex(k))});
    if (!r) return fail(r.error());
    if (r->is_nil()) return std::optional<std::string>();
    return std::optional<std::string>(r->str);
  }

  // One set per forge plus a marker that discovery ran, replaced together
  // by one script.
  Result<void> set_projects(const std::string& forge, const std::vector<std::string>& full_names) override {
    auto r = client_.eval(kSetProjects, {key("projects:", forge), key("projects-known:", forge)}, full_names);
    if (!r) return fail(r.error());
    return {};
  }

  Result<std::optional<bool>> is_project(const std::string& forge, const std::string& full_name) override {
    auto r = client_.pipeline({{"EXISTS", key("projects-known:", forge)}, {"SISMEMBER", key("projects:", forge), full_name}});
    if (!r) return fail(r.error());
    if (r->size() != 2 || !(*r)[0].is_integer() || !(*r)[1].is_integer()) return fail(bad_reply("is_project"));
    if ((*r)[0].integer == 0) return std::optional<bool>();
    return std::optional<bool>((*r)[1].integer == 1);
  }

  Result<std::vector<std::string>> list_projects(const std::string& forge) override {
    auto r = client_.command({"SMEMBERS", key("projects:", forge)});
    if (!r) return fail(r.error());
    auto names = string_list(*r, "SMEMBERS projects");
    if (!names) return fail(names.error());
    std::sort(names->begin(), names->end());
    return names;
  }

  Result<Transition> cancel_eval(const std::string& eval_id, const std::string& reason, std::int64_t now_ms,
                                 EvalState ends_as = EvalState::kCancelled) override {
    auto r = client_.eval(kCancelEval, {eval_key(eval_id), key("eval-jobs:", eval_id), key("eval-cancel:", eval_id)},
                          {prefix_, reason, std::to_string(now_ms), ends_as == EvalState::kFailed ? "failed" : "cancelled"});
    if (!r) return fail(r.error());
    return parse_transition(*r, "cancel_eval");
  }

  Result<std::optional<JobRecord>> get_job(const std::string& id) override {
    auto r = client_.command({"HGETALL", job_key(id)});
    if (!r) return fail(r.error());
    if (!r->is_array()) return fail(bad_reply("HGETALL job"));
    if (r->elements.empty()) return std::optional<JobRecord>();
    return std::optional<JobRecord>(to_job(*r));
  }

  Result<std::vector<JobRecord>> list_jobs(const std::string& eval_id) override {
    auto r = client_.command({"LRANGE", key("eval-jobs:", eval_id), "0", "-1"});
    if (!r) return fail(r.error());
    auto ids = string_list(*r, "LRANGE eval-jobs");
    if (!ids) return fail(ids.error());
    std::vector<JobRecord> out;
    out.reserve(ids->size());
    for (std::size_t start = 0; start < ids->size(); start += kReadBatch) {
      std::vector<std::vector<std::string>> batch;
      for (std::size_t i = start; i < std::min(ids->size(), start + kReadBatch); ++i) {
        batch.push_back({"HGETALL", job_key((*ids)[i])});
      }
      auto replies = client_.pipeline(batch);
      if (!replies) return fail(replies.error());
      for (const auto& h : *replies) {
        if (h.is_array() && !h.elements.empty()) out.push_back(to_job(h));
      }
    }
    return out;
  }

  Result<JobState> start_job(const std::string& job_id, std::int64_t now_ms) override {
    auto r = client_.eval(kStartJob, {job_key(job_id)}, {std::to_string(now_ms)});
    if (!r) return fail(r.error());
    auto s = msg::parse_job_state(r->str);
    if (!s) return fail(Error::transient("redis: job " + job_id + " is in unknown state " + r->str));
    return *s;
  }

  Result<Transition> finish_job(const std::string& job_id, JobState state, const std::string& error,
                                std::int64_t now_ms) override {
    if (!msg::is_terminal(state)) return fail(Error::poison("finish_job: state must be terminal"));
    auto r = client_.eval(kFinishJob, {job_key(job_id), key("job-transition:", job_id)},
                          {prefix_, std::string(msg::to_string(state)), error, std::to_string(now_ms)});
    if (!r) return fail(r.error());
    return parse_transition(*r, "finish_job");
  }

  Result<void> append_log(const std::string& job_id, const std::string& chunk, std::size_t cap) override {
    auto r = client_.eval(kAppendLog, {key("log:", job_id)},
                          {chunk, std::to_string(cap), std::to_string(kLogTtlSeconds)});
    if (!r) return fail(r.error());
    return {};
  }

  Result<LogSlice> read_log(const std::string& job_id, std::size_t offset, std::size_t max_bytes) override {
    LogSlice slice;
    if (max_bytes == 0) {
      auto n = client_.command({"STRLEN", key("log:", job_id)});
      if (!n) return fail(n.error());
      slice.size = static_cast<std::size_t>(n->integer);
      return slice;
    }
    // GETRANGE's end is inclusive; one MULTI-less pipeline: appends only grow
    // the log, so a size read with the bytes is never smaller than they show.
    auto r = client_.pipeline({{"GETRANGE", key("log:", job_id), std::to_string(offset), std::to_string(offset + max_bytes - 1)},
                               {"STRLEN", key("log:", job_id)}});
    if (!r) return fail(r.error());
    if (r->size() != 2 || !(*r)[1].is_integer()) return fail(bad_reply("read_log"));
    slice.bytes = (*r)[0].is_nil() ? std::string() : (*r)[0].str;
    slice.size = static_cast<std::size_t>((*r)[1].integer);
    return slice;
  }

  Result<std::string> get_log(const std::string& job_id) override {
    auto r = client_.command({"GET", key("log:", job_id)});
    if (!r) return fail(r.error());
    return r->is_nil() ? std::string() : r->str;
  }

  Result<bool> claim_once(const std::string& k, int ttl_seconds) override {
    auto r = client_.command({"SET", key("claim:", k), "1", "NX", "EX", std::to_string(std::max(1, ttl_seconds))});
    if (!r) return fail(r.error());
    return !r->is_nil();
  }

  Result<bool> advance_status(const std::string& context_key, std::int64_t at_us) override {
    auto r = client_.eval(kAdvanceStatus, {key("status:", context_key)},
                          {std::to_string(at_us), std::to_string(kStatusTtlSeconds)});
    if (!r) return fail(r.error());
    return r->integer == 1;
  }

  // One hash per failed derivation, created whole or not at all.
  Result<void> record_failed_build(const std::string& drv_path, const FailedBuild& f) override {
    auto r = client_.eval(kCreateEval, {key("failed-drv:", drv_path)},
                          {"job_id", f.job_id, "eval_id", f.eval_id, "attr", f.attr, "error", f.error, "at_ms", std::to_string(f.at_ms)});
    if (!r) return fail(r.error());
    return {};
  }

  Result<std::map<std::string, FailedBuild>> failed_builds(const std::vector<std::string>& drv_paths) override {
    std::map<std::string, FailedBuild> out;
    for (std::size_t start = 0; start < drv_paths.size(); start += kReadBatch) {
      std::vector<std::vector<std::string>> batch;
      const auto end = std::min(drv_paths.size(), start + kReadBatch);
      for (std::size_t i = start; i < end; ++i) batch.push_back({"HGETALL", key("failed-drv:", drv_paths[i])});
      auto replies = client_.pipeline(batch);
      if (!replies) return fail(replies.error());
      for (std::size_t i = start; i < end; ++i) {
        const auto& h = (*replies)[i - start];
        if (!h.is_array() || h.elements.empty()) continue;
        FailedBuild f;
        for (std::size_t k = 0; k + 1 < h.elements.size(); k += 2) {
          const auto& name = h.elements[k].str;
          const auto& v = h.elements[k + 1].str;
          if (name == "job_id") f.job_id = v;
          else if (name == "eval_id") f.eval_id = v;
          else if (name == "attr") f.attr = v;
          else if (name == "error") f.error = v;
          else if (name == "at_ms") f.at_ms = to_i64(v);
        }
        out.emplace(drv_paths[i], std::move(f));
      }
    }
    return out;
  }

  Result<bool> clear_failed_build(const std::string& drv_path) override {
    auto r = client_.command({"DEL", key("failed-drv:", drv_path)});
    if (!r) return fail(r.error());
    return r->integer > 0;
  }

  Result<bool> claim_drv_build(const std::string& drv, const std::string& job_id, std::int64_t now_ms, std::int64_t lease_ms) override {
    auto r = client_.eval(kClaimDrvBuild, {key("drv-build:", drv)},
                          {job_id, std::to_string(now_ms), std::to_string(std::max<std::int64_t>(1, lease_ms))});
    if (!r) return fail(r.error());
    return r->integer == 1;
  }

  Result<void> finish_drv_build(const std::string& drv, const std::string& job_id, const std::optional<DrvBuildResult>& result,
                                std::int64_t result_ttl_ms) override {
    std::vector<std::string> args = {job_id, result ? "1" : "0", std::to_string(std::max<std::int64_t>(1, result_ttl_ms))};
    if (result) {
      args.insert(args.end(), {std::string(msg::to_string(result->state)), result->error, result->job_id, result->attr,
                               std::to_string(result->at_ms)});
    }
    auto r = client_.eval(kFinishDrvBuild, {key("drv-build:", drv), key("drv-result:", drv)}, args);
    if (!r) return fail(r.error());
    return {};
  }

  Result<DrvBuildStatus> await_drv_build(const std::string& drv, const std::string& job_id, std::int64_t now_ms,
                                         std::int64_t lease_ms) override {
    auto r = client_.pipeline({{"ZADD", key("drv-waiters:", drv), std::to_string(now_ms + lease_ms), job_id},
                               {"PEXPIRE", key("drv-waiters:", drv), std::to_string(std::max<std::int64_t>(1, lease_ms))}});
    if (!r) return fail(r.error());
    return drv_build_status(drv, now_ms);
  }

  Result<DrvBuildStatus> drv_build_status(const std::string& drv, std::int64_t now_ms) override {
    auto r = client_.pipeline({{"HMGET", key("drv-build:", drv), "owner", "until"},
                               {"HGETALL", key("drv-result:", drv)},
                               {"ZCOUNT", key("drv-waiters:", drv), "(" + std::to_string(now_ms), "+inf"}});
    if (!r) return fail(r.error());
    DrvBuildStatus st;
    const auto& claim = (*r)[0];
    if (claim.is_array() && claim.elements.size() == 2 && !claim.elements[0].is_nil() && to_i64(claim.elements[1].str) > now_ms) {
      st.owner = claim.elements[0].str;
    }
    const auto& h = (*r)[1];
    if (h.is_array() && !h.elements.empty()) {
      DrvBuildResult res;
      for (std::size_t k = 0; k + 1 < h.elements.size(); k += 2) {
        const auto& f = h.elements[k].str;
        const auto& v = h.elements[k + 1].str;
        if (f == "state") res.state = msg::parse_job_state(v).value_or(JobState::kFailed);
        else if (f == "error") res.error = v;
        else if (f == "job_id") res.job_id = v;
        else if (f == "attr") res.attr = v;
        else if (f == "at_ms") res.at_ms = to_i64(v);
      }
      st.last = std::move(res);
    }
    st.waiters = static_cast<int>((*r)[2].integer);
    return st;
  }

  Result<void> register_builder(const BuilderInfo& b, std::int64_t ttl_ms) override {
    const auto until = std::to_string(b.seen_ms + ttl_ms);
    auto r = client_.pipeline({{"HSET", key("builder:", b.id), "id", b.id, "systems", join(b.systems), "features", join(b.features), "slots",
                                std::to_string(b.slots), "busy", std::to_string(b.busy), "seen_ms", std::to_string(b.seen_ms)},
                               {"PEXPIRE", key("builder:", b.id), std::to_string(std::max<std::int64_t>(1, ttl_ms))},
                               {"ZADD", key("builders", ""), until, b.id}});
    if (!r) return fail(r.error());
    return {};
  }

  Result<std::vector<BuilderInfo>> list_builders(std::int64_t now_ms) override {
    auto ids = client_.pipeline({{"ZREMRANGEBYSCORE", key("builders", ""), "-inf", std::to_string(now_ms)},
                                 {"ZRANGE", key("builders", ""), "0", "-1"}});
    if (!ids) return fail(ids.error());
    auto list = string_list((*ids)[1], "ZRANGE builders");
    if (!list) return fail(list.error());
    std::vector<std::vector<std::string>> reads;
    for (const auto& id : *list) reads.push_back({"HGETALL", key("builder:", id)});
    std::vector<BuilderInfo> out;
    if (reads.empty()) return out;
    auto hashes = client_.pipeline(reads);
    if (!hashes) return fail(hashes.error());
    for (const auto& h : *hashes) {
      if (!h.is_array() || h.elements.empty()) continue;  // expired meanwhile
      BuilderInfo b;
      for (std::size_t k = 0; k + 1 < h.elements.size(); k += 2) {
        const auto& f = h.elements[k].str;
        const auto& v = h.elements[k + 1].str;
        if (f == "id") b.id = v;
        else if (f == "systems") b.systems = v.empty() ? std::vector<std::string>{} : text::split(v, '\n');
        else if (f == "features") b.features = v.empty() ? std::vector<std::string>{} : text::split(v, '\n');
        else if (f == "slots") b.slots = static_cast<int>(to_i64(v));
        else if (f == "busy") b.busy = static_cast<int>(to_i64(v));
        else if (f == "seen_ms") b.seen_ms = to_i64(v);
      }
      out.push_back(std::move(b));
    }
    std::sort(out.begin(), out.end(), [](const BuilderInfo& a, const BuilderInfo& b) { return a.id < b.id; });
    return out;
  }

  // One hash per eval; each effect is three fields "<what>:<name>", so any
  // name (dots, colons, any byte) round-trips and one HSET updates it whole.
  Result<void> put_effect(const EffectRecord& e) override {
    auto r = client_.command({"HSET", key("effects:", e.eval_id), "state:" + e.name, e.state, "log:" + e.name, e.log,
                              "finished_ms:" + e.name, std::to_string(e.finished_ms)});
    if (!r) return fail(r.error());
    return {};
  }

  Result<std::vector<EffectRecord>> list_effects(const std::string& eval_id) override {
    auto r = client_.command({"HGETALL", key("effects:", eval_id)});
    if (!r) return fail(r.error());
    if (!r->is_array()) return fail(bad_reply("HGETALL effects"));
    std::map<std::string, EffectRecord> by_name;
    for (std::size_t i = 0; i + 1 < r->elements.size(); i += 2) {
      const std::string& f = r->elements[i].str;
      const std::string& v = r->elements[i + 1].str;
      auto colon = f.find(':');
      if (colon == std::string::npos) continue;
      auto& e = by_name[f.substr(colon + 1)];
      std::string_view what(f.data(), colon);
      if (what == "state") e.state = v;
      else if (what == "log") e.log = v;
      else if (what == "finished_ms") e.finished_ms = to_i64(v);
    }
    std::vector<EffectRecord> out;
    out.reserve(by_name.size());
    for (auto& [name, e] : by_name) {
      e.eval_id = eval_id;
      e.name = name;
      out.push_back(std::move(e));
    }
    return out;
  }

  bool healthy() override {
    auto r = client_.command({"PING"});
    return r && r->is_string() && r->str == "PONG";
  }

 private:
  std::string key(std::string_view kind, const std::string& id) const { return prefix_ + ":" + std::string(kind) + id; }
  std::string eval_key(const std::string& id) const { return key("eval:", id); }
  std::string job_key(const std::string& id) const { return key("job:", id); }

  std::string prefix_;
  redis::Client client_;
};

}  // namespace

Result<std::unique_ptr<StateStore>> connect_redis(const RedisOptions& options) {
  if (!options.password.empty()) log::register_secret(options.password);
  auto store = std::make_unique<RedisStore>(options);
  auto ok = store->ping();
  if (!ok) return fail(ok.error());
  return std::unique_ptr<StateStore>(std::move(store));
}

RedisOptions redis_options(const Config& config) {
  RedisOptions o;
  o.host = config.get_string("redis.host", o.host);
  o.port = static_cast<int>(config.get_int("redis.port", o.port));
  o.prefix = config.get_string("redis.prefix", o.prefix);
  if (config.has("redis.password_file")) o.password = read_secret_file(config.get_string("redis.password_file", ""));
  return o;
}

}  // namespace flurry::state
