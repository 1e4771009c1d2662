// Redis adapter for the StateStore port (hiredis 0.14, RESP2). Every
// multi-key change runs as one Lua script (lua_scripts.hpp).
#include "flurry/state/redis_store.hpp"

#include <hiredis.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

#include "flurry/core/log.hpp"
#include "lua_scripts.hpp"

namespace flurry::state {
namespace {

using json = nlohmann::json;
using msg::JobState;

// An owned copy of a hiredis reply.
struct Reply {
  int type = 0;
  std::string str;
  long long integer = 0;
  std::vector<Reply> elements;

  static Reply from(const redisReply* r) {
    Reply out;
    out.type = r->type;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR) {
      out.str.assign(r->str, r->len);
    }
    if (r->type == REDIS_REPLY_INTEGER) out.integer = r->integer;
    if (r->type == REDIS_REPLY_ARRAY) {
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(from(r->element[i]));
    }
    return out;
  }
  bool is_error() const { return type == REDIS_REPLY_ERROR; }
  bool is_nil() const { return type == REDIS_REPLY_NIL; }
  // HGETALL's flat array as a map.
  std::map<std::string, std::string> as_map() const {
    std::map<std::string, std::string> m;
    for (std::size_t i = 0; i + 1 < elements.size(); i += 2) m[elements[i].str] = elements[i + 1].str;
    return m;
  }
};

std::int64_t to_i64(const std::map<std::string, std::string>& m, const char* key) {
  auto it = m.find(key);
  if (it == m.end() || it->second.empty()) return 0;
  try {
    return std::stoll(it->second);
  } catch (...) {
    return 0;
  }
}
std::string get(const std::map<std::string, std::string>& m, const char* key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

std::vector<std::string> string_list(const json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;  // Lua's cjson encodes an empty list as {}
  for (const auto& v : j) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

Result<Transition> parse_transition(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(Error::transient("redis: bad transition JSON"));
  Transition t;
  t.ready = string_list(j.value("ready", json::array()));
  t.dependency_failed = string_list(j.value("dependency_failed", json::array()));
  t.eval_finished = j.value("eval_finished", false);
  t.eval_state = parse_eval_state(j.value("eval_state", "building")).value_or(EvalState::kBuilding);
  return t;
}

std::string repo_json(const msg::Repo& r) {
  return json{{"forge", r.forge}, {"owner", r.owner}, {"name", r.name}, {"clone_url", r.clone_url},
              {"html_url", r.html_url}, {"default_branch", r.default_branch}}
      .dump();
}
msg::Repo parse_repo(const std::string& text) {
  msg::Repo r;
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return r;
  r.forge = j.value("forge", "");
  r.owner = j.value("owner", "");
  r.name = j.value("name", "");
  r.clone_url = j.value("clone_url", "");
  r.html_url = j.value("html_url", "");
  r.default_branch = j.value("default_branch", "");
  return r;
}

class RedisStore final : public StateStore {
 public:
  explicit RedisStore(RedisOptions o) : options_(std::move(o)) {}
  ~RedisStore() override {
    for (auto* c : idle_) redisFree(c);
  }

  // Runs one command on a pooled connection. A NULL reply means the
  // connection is dead: it is dropped and the call fails as transient.
  Result<Reply> command(const std::vector<std::string>& args) {
    auto ctx = acquire();
    if (!ctx) return fail(ctx.error());
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* raw = static_cast<redisReply*>(redisCommandArgv(*ctx, static_cast<int>(args.size()), argv.data(), lens.data()));
    if (!raw) {
      std::string why = (*ctx)->errstr;
      redisFree(*ctx);
      return fail(Error::transient("redis: connection lost: " + why));
    }
    Reply r = Reply::from(raw);
    freeReplyObject(raw);
    release(*ctx);
    // The server answers but cannot serve yet (loading its AOF after a
    // restart, a script running too long): try again later.
    if (r.is_error() && (r.str.rfind("LOADING", 0) == 0 || r.str.rfind("BUSY", 0) == 0 || r.str.rfind("MASTERDOWN", 0) == 0)) {
      return fail(Error::transient("redis: " + r.str));
    }
    // Plain commands never answer errors when used right; scripts report
    // theirs to the caller.
    if (r.is_error() && args[0] != "EVALSHA") return fail(Error::transient("redis: " + args[0] + ": " + r.str));
    return r;
  }

  // EVALSHA with the script's cached sha; loads it (again) on NOSCRIPT.
  Result<Reply> script(const char* body, const std::vector<std::string>& keys, const std::vector<std::string>& args) {
    std::string sha;
    {
      std::lock_guard lock(mu_);
      sha = shas_[body];
    }
    auto run = [&](const std::string& s) {
      std::vector<std::string> argv = {"EVALSHA", s, std::to_string(keys.size())};
      argv.insert(argv.end(), keys.begin(), keys.end());
      argv.insert(argv.end(), args.begin(), args.end());
      return command(argv);
    };
    if (!sha.empty()) {
      auto r = run(sha);
      if (!r || !r->is_error() || r->str.rfind("NOSCRIPT", 0) != 0) return r;
    }
    auto loaded = command({"SCRIPT", "LOAD", body});
    if (!loaded) return loaded;
    if (loaded->is_error()) return fail(Error::transient("redis: SCRIPT LOAD failed: " + loaded->str));
    {
      std::lock_guard lock(mu_);
      shas_[body] = loaded->str;
    }
    return run(loaded->str);
  }

  Result<bool> create_eval(const EvalRecord& e) override {
    auto r = script(lua::kCreateEval, {eval_key(e.id)},
                    {"id", e.id, "change_id", e.change_id, "repo", repo_json(e.repo), "ref", e.ref, "branch", e.branch,
                     "tag", e.tag, "rev", e.rev, "state", "evaluating", "error", "", "created_ms",
                     std::to_string(e.created_ms), "finished_ms", "0", "jobs_total", "0", "jobs_pending", "0",
                     "jobs_failed", "0"});
    if (!r) return fail(r.error());
    if (r->is_error()) return fail(Error::transient("redis: create_eval: " + r->str));
    return r->integer == 1;
  }

  Result<std::optional<EvalRecord>> get_eval(const std::string& id) override {
    auto r = command({"HGETALL", eval_key(id)});
    if (!r) return fail(r.error());
    auto m = r->as_map();
    if (m.empty()) return std::optional<EvalRecord>();
    EvalRecord e;
    e.id = get(m, "id");
    e.change_id = get(m, "change_id");
    e.repo = parse_repo(get(m, "repo"));
    e.ref = get(m, "ref");
    e.branch = get(m, "branch");
    e.tag = get(m, "tag");
    e.rev = get(m, "rev");
    e.state = parse_eval_state(get(m, "state")).value_or(EvalState::kEvaluating);
    e.error = get(m, "error");
    e.created_ms = to_i64(m, "created_ms");
    e.finished_ms = to_i64(m, "finished_ms");
    e.jobs_total = static_cast<int>(to_i64(m, "jobs_total"));
    e.jobs_pending = static_cast<int>(to_i64(m, "jobs_pending"));
    e.jobs_failed = static_cast<int>(to_i64(m, "jobs_failed"));
    return std::optional<EvalRecord>(std::move(e));
  }

  Result<Transition> add_jobs(const std::string& eval_id, const std::vector<JobSpec>& jobs, std::int64_t now_ms) override {
    json arr = json::array();
    for (const auto& j : jobs) {
      arr.push_back({{"id", j.id}, {"attr", j.attr}, {"drv_path", j.drv_path}, {"system", j.system},
                     {"outputs", json(j.outputs).dump()}, {"state", msg::to_string(j.state)}, {"error", j.error},
                     {"deps", j.deps}});
    }
    std::string body = std::string(lua::kPrelude) + lua::kAddJobs;
    auto r = script(prelude_cached(body), {eval_key(eval_id)},
                    {options_.prefix, eval_id, arr.dump(-1, ' ', false, json::error_handler_t::replace), std::to_string(now_ms)});
    if (!r) return fail(r.error());
    if (r->is_error()) return script_error(r->str);
    return parse_transition(r->str);
  }

  Result<void> fail_eval(const std::string& eval_id, const std::string& error, std::int64_t now_ms) override {
    auto r = script(lua::kFailEval, {eval_key(eval_id)}, {error, std::to_string(now_ms)});
    if (!r) return fail(r.error());
    if (r->is_error()) {
      auto e = script_error(r->str);
      return fail(e.error());
    }
    return {};
  }

  Result<std::optional<JobRecord>> get_job(const std::string& id) override {
    auto r = command({"HGETALL", job_key(id)});
    if (!r) return fail(r.error());
    auto m = r->as_map();
    if (m.empty()) return std::optional<JobRecord>();
    return std::optional<JobRecord>(to_job(m));
  }

  Result<std::vector<JobRecord>> list_jobs(const std::string& eval_id) override {
    auto ids = command({"LRANGE", eval_key(eval_id) + ":jobs", "0", "-1"});
    if (!ids) return fail(ids.error());
    std::vector<JobRecord> out;
    out.reserve(ids->elements.size());
    for (const auto& id : ids->elements) {
      auto j = get_job(id.str);
      if (!j) return fail(j.error());
      if (j->has_value()) out.push_back(std::move(**j));
    }
    return out;
  }

  Result<JobState> start_job(const std::string& job_id, std::int64_t now_ms) override {
    auto r = script(lua::kStartJob, {job_key(job_id)}, {std::to_string(now_ms)});
    if (!r) return fail(r.error());
    if (r->is_error()) return script_error(r->str);
    auto s = msg::parse_job_state(r->str);
    if (!s) return fail(Error::transient("redis: job " + job_id + " has unknown state " + r->str));
    return *s;
  }

  Result<Transition> finish_job(const std::string& job_id, JobState state, const std::string& error, std::int64_t now_ms) override {
    if (!msg::is_terminal(state)) return fail(Error::poison("finish_job: state must be terminal"));
    std::string body = std::string(lua::kPrelude) + lua::kFinishJob;
    auto r = script(prelude_cached(body), {job_key(job_id)},
                    {options_.prefix, std::string(msg::to_string(state)), error, std::to_string(now_ms)});
    if (!r) return fail(r.error());
    if (r->is_error()) return script_error(r->str);
    return parse_transition(r->str);
  }

  Result<void> append_log(const std::string& job_id, const std::string& chunk, std::size_t cap) override {
    auto r = script(lua::kAppendLog, {key("log:" + job_id)}, {chunk, std::to_string(cap)});
    if (!r) return fail(r.error());
    if (r->is_error()) return fail(Error::transient("redis: append_log: " + r->str));
    return {};
  }

  Result<std::string> get_log(const std::string& job_id) override {
    auto r = command({"GET", key("log:" + job_id)});
    if (!r) return fail(r.error());
    return r->is_nil() ? std::string() : r->str;
  }

  Result<bool> claim_once(const std::string& k, int ttl_seconds) override {
    auto r = command({"SET", key("claim:" + k), "1", "NX", "EX", std::to_string(std::max(1, ttl_seconds))});
    if (!r) return fail(r.error());
    return !r->is_nil();
  }

  Result<bool> advance_status(const std::string& context_key, std::int64_t at_us) override {
    auto r = script(lua::kAdvanceStatus, {key("status:" + context_key)}, {std::to_string(at_us)});
    if (!r) return fail(r.error());
    if (r->is_error()) return fail(Error::transient("redis: advance_status: " + r->str));
    return r->integer == 1;
  }

  Result<void> put_effect(const EffectRecord& e) override {
    json j = {{"eval_id", e.eval_id}, {"name", e.name}, {"state", e.state}, {"log", e.log}, {"finished_ms", e.finished_ms}};
    auto r = command({"HSET", key("effects:" + e.eval_id), e.name, j.dump(-1, ' ', false, json::error_handler_t::replace)});
    if (!r) return fail(r.error());
    return {};
  }

  Result<std::vector<EffectRecord>> list_effects(const std::string& eval_id) override {
    auto r = command({"HGETALL", key("effects:" + eval_id)});
    if (!r) return fail(r.error());
    std::vector<EffectRecord> out;
    for (const auto& [name, text] : r->as_map()) {
      json j = json::parse(text, nullptr, false);
      if (!j.is_object()) continue;
      out.push_back({j.value("eval_id", ""), j.value("name", name), j.value("state", ""), j.value("log", ""),
                     j.value("finished_ms", std::int64_t{0})});
    }
    return out;
  }

  bool healthy() override {
    auto r = command({"PING"});
    return r && !r->is_error();
  }

 private:
  // Prelude scripts are built per call; keep one stable string per body so
  // the sha cache (keyed by pointer) hits.
  const char* prelude_cached(const std::string& body) {
    std::lock_guard lock(mu_);
    for (const auto& s : composed_) {
      if (*s == body) return s->c_str();
    }
    composed_.push_back(std::make_unique<std::string>(body));
    return composed_.back()->c_str();
  }

  template <typename T = Transition>
  Unexpected<Error> script_error(const std::string& text) {
    if (text.find("NOTFOUND") != std::string::npos) return fail(Error::not_found("redis: " + text));
    if (text.find("ENDED") != std::string::npos) return fail(Error::rejected("redis: " + text));
    return fail(Error::transient("redis: script failed: " + text));
  }

  JobRecord to_job(const std::map<std::string, std::string>& m) {
    JobRecord j;
    j.id = get(m, "id");
    j.eval_id = get(m, "eval_id");
    j.attr = get(m, "attr");
    j.drv_path = get(m, "drv_path");
    j.system = get(m, "system");
    json outs = json::parse(get(m, "outputs"), nullptr, false);
    if (outs.is_object()) {
      for (const auto& [k, v] : outs.items()) {
        if (v.is_string()) j.outputs[k] = v.get<std::string>();
      }
    }
    j.state = msg::parse_job_state(get(m, "state")).value_or(JobState::kQueued);
    j.error = get(m, "error");
    j.started_ms = to_i64(m, "started_ms");
    j.finished_ms = to_i64(m, "finished_ms");
    j.attempts = static_cast<int>(to_i64(m, "attempts"));
    return j;
  }

  Result<redisContext*> acquire() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        auto* c = idle_.back();
        idle_.pop_back();
        return c;
      }
    }
    timeval tv{static_cast<time_t>(options_.timeout.count() / 1000), static_cast<suseconds_t>((options_.timeout.count() % 1000) * 1000)};
    redisContext* c = redisConnectWithTimeout(options_.host.c_str(), options_.port, tv);
    if (!c || c->err) {
      std::string why = c ? c->errstr : "out of memory";
      if (c) redisFree(c);
      return fail(Error::transient("redis: cannot connect to " + options_.host + ":" + std::to_string(options_.port) + ": " + why));
    }
    redisSetTimeout(c, tv);
    if (!options_.password.empty()) {
      auto* r = static_cast<redisReply*>(redisCommand(c, "AUTH %b", options_.password.data(), options_.password.size()));
      bool ok = r && r->type != REDIS_REPLY_ERROR;
      if (r) freeReplyObject(r);
      if (!ok) {
        redisFree(c);
        return fail(Error::transient("redis: authentication failed"));
      }
    }
    return c;
  }

  void release(redisContext* c) {
    std::lock_guard lock(mu_);
    if (idle_.size() < 16) idle_.push_back(c);
    else redisFree(c);
  }

  std::string key(const std::string& rest) const { return options_.prefix + ":" + rest; }
  std::string eval_key(const std::string& id) const { return key("eval:" + id); }
  std::string job_key(const std::string& id) const { return key("job:" + id); }

  RedisOptions options_;
  std::mutex mu_;
  std::vector<redisContext*> idle_;
  std::map<const char*, std::string> shas_;
  std::vector<std::unique_ptr<std::string>> composed_;
};

}  // namespace

Result<std::unique_ptr<StateStore>> connect_redis(const RedisOptions& options) {
  auto store = std::make_unique<RedisStore>(options);
  auto r = store->command({"PING"});
  if (!r) return fail(r.error());
  if (r->is_error()) return fail(Error::transient("redis: PING failed: " + r->str));
  return std::unique_ptr<StateStore>(std::move(store));
}

}  // namespace flurry::state
