// JSON codecs for bus messages. Decoding is strict: a wrong version, a
// missing required field or a field of the wrong type is a poison error,
// which the consumer dead-letters.
#include <nlohmann/json.hpp>

#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"
#include "flurry/messages/messages.hpp"

namespace flurry::msg {
namespace {

using json = nlohmann::json;

class Reader {
 public:
  Reader(const json& j, std::string_view type) : j_(j), type_(type) {}

  std::string str(const char* key, bool required = true) {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) {
      if (required) missing(key);
      return {};
    }
    if (!it->is_string()) {
      wrong(key, "a string");
      return {};
    }
    return it->get<std::string>();
  }
  std::int64_t i64(const char* key, bool required = true) {
    auto it = j_.find(key);
    if (it == j_.end()) {
      if (required) missing(key);
      return 0;
    }
    if (!it->is_number_integer()) {
      wrong(key, "an integer");
      return 0;
    }
    return it->get<std::int64_t>();
  }
  std::map<std::string, std::string> str_map(const char* key) {
    std::map<std::string, std::string> out;
    auto it = j_.find(key);
    if (it == j_.end()) return out;
    if (!it->is_object()) {
      wrong(key, "an object");
      return out;
    }
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string()) {
        wrong(key, "an object of strings");
        return out;
      }
      out[k] = v.get<std::string>();
    }
    return out;
  }
  bool boolean(const char* key, bool required = true) {
    auto it = j_.find(key);
    if (it == j_.end()) {
      if (required) missing(key);
      return false;
    }
    if (!it->is_boolean()) {
      wrong(key, "a boolean");
      return false;
    }
    return it->get<bool>();
  }
  std::vector<std::string> str_list(const char* key) {
    std::vector<std::string> out;
    auto it = j_.find(key);
    if (it == j_.end()) return out;
    if (!it->is_array()) {
      wrong(key, "an array of strings");
      return out;
    }
    for (const auto& v : *it) {
      if (!v.is_string()) {
        wrong(key, "an array of strings");
        return {};
      }
      out.push_back(v.get<std::string>());
    }
    return out;
  }
  const json& obj(const char* key) {
    auto it = j_.find(key);
    if (it == j_.end()) {
      missing(key);
      return kNull;
    }
    if (!it->is_object()) {
      wrong(key, "an object");
      return kNull;
    }
    return *it;
  }
  const std::string& error() const { return error_; }
  void set_error(std::string e) {
    if (error_.empty()) error_ = std::move(e);
  }

 private:
  void missing(const char* key) {
    if (error_.empty()) error_ = std::string(type_) + ": missing field '" + key + "'";
  }
  void wrong(const char* key, const char* what) {
    if (error_.empty()) error_ = std::string(type_) + ": field '" + key + "' must be " + what;
  }
  const json& j_;
  std::string_view type_;
  std::string error_;
  static inline const json kNull;
};

Result<json> parse(std::string_view text, std::string_view type) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(Error::poison(std::string(type) + ": not valid JSON"));
  if (!j.is_object()) return fail(Error::poison(std::string(type) + ": not a JSON object"));
  auto v = j.find("version");
  if (v == j.end() || !v->is_number_integer()) return fail(Error::poison(std::string(type) + ": missing version"));
  if (v->get<std::int64_t>() != kVersion) {
    return fail(Error::poison(std::string(type) + ": unsupported version " + v->dump()));
  }
  return j;
}

json repo_json(const Repo& r) {
  json j = {{"forge", r.forge},         {"owner", r.owner},       {"name", r.name},
            {"clone_url", r.clone_url}, {"html_url", r.html_url}, {"default_branch", r.default_branch}};
  if (r.installation_id > 0) j["installation_id"] = r.installation_id;
  return j;
}

Repo read_repo(Reader& outer, const char* key) {
  Repo r;
  if (!outer.error().empty()) return r;
  const json& j = outer.obj(key);
  if (!outer.error().empty()) return r;
  Reader in(j, key);
  r.forge = in.str("forge");
  r.owner = in.str("owner");
  r.name = in.str("name");
  r.clone_url = in.str("clone_url");
  r.html_url = in.str("html_url", false);
  r.default_branch = in.str("default_branch", false);
  r.installation_id = in.i64("installation_id", false);
  if (in.error().empty() && r.installation_id < 0) in.set_error(std::string(key) + ".installation_id is negative");
  if (!in.error().empty()) outer.set_error(in.error());
  return r;
}

template <typename T>
Result<T> finish(const Reader& r, T value) {
  if (!r.error().empty()) return fail(Error::poison(r.error()));
  return value;
}

}  // namespace

std::string encode(const ChangeEvent& e) {
  json j = {{"version", kVersion}, {"id", e.id},         {"kind", e.kind},     {"repo", repo_json(e.repo)},
            {"ref", e.ref},        {"branch", e.branch}, {"tag", e.tag},       {"rev", e.rev},
            {"before", e.before},  {"sender", e.sender}, {"received_at_ms", e.received_at_ms}};
  if (e.is_pull_request()) {
    const auto& p = e.pull_request;
    j["pull_request"] = {{"number", p.number},
                         {"base_branch", p.base_branch},
                         {"base_rev", p.base_rev},
                         {"head_branch", p.head_branch},
                         {"head_clone_url", p.head_clone_url},
                         {"from_fork", p.from_fork},
                         {"author", p.author},
                         {"author_association", p.author_association},
                         {"title", p.title},
                         {"labels", p.labels}};
  }
  // A re-run's own event, and the change a re-run evaluates again (which
  // keeps what it re-runs, so its eval says it was one).
  if (e.kind == kRerun || !e.rerun.job_id.empty() || !e.rerun.eval_id.empty()) {
    j["rerun"] = {{"job_id", e.rerun.job_id}, {"eval_id", e.rerun.eval_id}};
  }
  if (e.kind == kApprove) j["approval"] = {{"by", e.approval.by}, {"association", e.approval.association}};
  // Names and titles come from forges and need not be valid UTF-8.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode(const BuildRequest& b) {
  json j = {{"version", kVersion}, {"eval_id", b.eval_id}, {"job_id", b.job_id},
            {"attr", b.attr},      {"drv_path", b.drv_path}, {"system", b.system}, {"store_url", b.store_url}};
  if (!b.repo.forge.empty()) j["repo"] = repo_json(b.repo);
  if (!b.rev.empty()) j["rev"] = b.rev;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode(const JobFinished& f) {
  json j = {{"version", kVersion}, {"eval_id", f.eval_id}, {"job_id", f.job_id}, {"attr", f.attr},
            {"drv_path", f.drv_path}, {"system", f.system}, {"state", to_string(f.state)},
            {"outputs", f.outputs}, {"store_url", f.store_url}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode(const EvalFinished& f) {
  json j = {{"version", kVersion}, {"eval_id", f.eval_id}, {"state", f.state}, {"repo", repo_json(f.repo)},
            {"ref", f.ref}, {"branch", f.branch}, {"tag", f.tag}, {"rev", f.rev},
            {"jobs_total", f.jobs_total}, {"jobs_failed", f.jobs_failed}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode(const StatusEvent& s) {
  json j = {{"version", kVersion}, {"eval_id", s.eval_id}, {"repo", repo_json(s.repo)}, {"rev", s.rev},
            {"context", s.context}, {"state", to_string(s.state)}, {"description", s.description},
            {"target_url", s.target_url}, {"at_us", s.at_us}};
  if (!s.job_id.empty()) j["job_id"] = s.job_id;
  if (!s.job_state.empty()) j["job_state"] = s.job_state;
  if (!s.details.empty()) j["details"] = s.details;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode(const DeadLetter& d) {
  json j = {{"version", kVersion}, {"consumer", d.consumer}, {"subject", d.subject}, {"reason", d.reason},
            {"deliveries", d.deliveries}};
  // The original bytes are kept exactly: as text when they are UTF-8,
  // else base64 (JSON strings cannot carry arbitrary bytes).
  if (text::valid_utf8(d.data)) {
    j["data"] = d.data;
  } else {
    j["data_base64"] = crypto::base64(d.data);
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<ChangeEvent> decode_change_event(std::string_view text) {
  auto j = parse(text, "change_event");
  if (!j) return fail(j.error());
  Reader r(*j, "change_event");
  ChangeEvent e;
  e.id = r.str("id");
  e.kind = r.str("kind");
  e.repo = read_repo(r, "repo");
  e.ref = r.str("ref");
  e.branch = r.str("branch", false);
  e.tag = r.str("tag", false);
  e.rev = r.str("rev");
  e.before = r.str("before", false);
  e.sender = r.str("sender", false);
  e.received_at_ms = r.i64("received_at_ms", false);
  if (!r.error().empty()) return finish(r, std::move(e));
  // An approval need not name the head it approves.
  if (!text::is_sha1_hex(e.rev) && !(e.kind == kApprove && e.rev.empty())) {
    return fail(Error::poison("change_event: rev is not a 40-hex sha"));
  }
  if (e.kind != kPush && e.kind != kPullRequest && e.kind != kPullRequestClosed && e.kind != kRerun && e.kind != kApprove) {
    return fail(Error::poison("change_event: unknown kind '" + text::truncate_utf8(e.kind, 40) + "'"));
  }
  if (j->contains("rerun")) {
    const json& rj = r.obj("rerun");
    Reader rr(rj, "rerun");
    e.rerun.job_id = rr.str("job_id", false);
    e.rerun.eval_id = rr.str("eval_id", false);
    if (!rr.error().empty()) return fail(Error::poison("change_event: " + rr.error()));
  }
  if (e.kind == kRerun) return finish(r, std::move(e));
  if (e.kind != kPush) {
    if (!j->contains("pull_request")) return fail(Error::poison("change_event: " + e.kind + " without pull_request"));
    const json& pj = r.obj("pull_request");
    Reader p(pj, "pull_request");
    auto& pr = e.pull_request;
    pr.number = static_cast<int>(p.i64("number"));
    pr.base_branch = p.str("base_branch", e.kind != kApprove);  // a comment does not say
    pr.base_rev = p.str("base_rev", false);
    pr.head_branch = p.str("head_branch", false);
    pr.head_clone_url = p.str("head_clone_url", false);
    pr.from_fork = p.boolean("from_fork", false);
    pr.author = p.str("author", false);
    pr.author_association = p.str("author_association", false);
    pr.title = p.str("title", false);
    pr.labels = p.str_list("labels");
    if (!p.error().empty()) return fail(Error::poison("change_event: " + p.error()));
    if (pr.number <= 0) return fail(Error::poison("change_event: pull_request.number must be positive"));
    if (e.kind == kApprove) {
      const json& aj = r.obj("approval");
      Reader a(aj, "approval");
      e.approval.by = a.str("by");
      e.approval.association = a.str("association", false);
      if (!a.error().empty()) return fail(Error::poison("change_event: " + a.error()));
    }
    if (!pr.base_rev.empty() && !text::is_sha1_hex(pr.base_rev)) {
      return fail(Error::poison("change_event: pull_request.base_rev is not a 40-hex sha"));
    }
  }
  return finish(r, std::move(e));
}

Result<BuildRequest> decode_build_request(std::string_view text) {
  auto j = parse(text, "build_request");
  if (!j) return fail(j.error());
  Reader r(*j, "build_request");
  BuildRequest b;
  b.eval_id = r.str("eval_id");
  b.job_id = r.str("job_id");
  b.attr = r.str("attr");
  b.drv_path = r.str("drv_path");
  b.system = r.str("system");
  b.store_url = r.str("store_url", false);
  if (j->contains("repo")) b.repo = read_repo(r, "repo");
  b.rev = r.str("rev", false);
  return finish(r, std::move(b));
}

Result<JobFinished> decode_job_finished(std::string_view text) {
  auto j = parse(text, "job_finished");
  if (!j) return fail(j.error());
  Reader r(*j, "job_finished");
  JobFinished f;
  f.eval_id = r.str("eval_id");
  f.job_id = r.str("job_id");
  f.attr = r.str("attr");
  f.drv_path = r.str("drv_path", false);
  f.system = r.str("system", false);
  auto state = r.str("state");
  f.outputs = r.str_map("outputs");
  f.store_url = r.str("store_url", false);
  if (r.error().empty()) {
    auto s = parse_job_state(state);
    if (!s) return fail(Error::poison("job_finished: unknown state '" + state + "'"));
    f.state = *s;
  }
  return finish(r, std::move(f));
}

Result<EvalFinished> decode_eval_finished(std::string_view text) {
  auto j = parse(text, "eval_finished");
  if (!j) return fail(j.error());
  Reader r(*j, "eval_finished");
  EvalFinished f;
  f.eval_id = r.str("eval_id");
  f.state = r.str("state");
  f.repo = read_repo(r, "repo");
  f.ref = r.str("ref");
  f.branch = r.str("branch", false);
  f.tag = r.str("tag", false);
  f.rev = r.str("rev");
  f.jobs_total = static_cast<int>(r.i64("jobs_total", false));
  f.jobs_failed = static_cast<int>(r.i64("jobs_failed", false));
  return finish(r, std::move(f));
}

Result<StatusEvent> decode_status_event(std::string_view text) {
  auto j = parse(text, "status_event");
  if (!j) return fail(j.error());
  Reader r(*j, "status_event");
  StatusEvent s;
  s.eval_id = r.str("eval_id", false);
  s.repo = read_repo(r, "repo");
  s.rev = r.str("rev");
  s.context = r.str("context");
  auto state = r.str("state");
  s.description = r.str("description", false);
  s.target_url = r.str("target_url", false);
  s.at_us = r.i64("at_us", false);
  s.job_id = r.str("job_id", false);
  s.job_state = r.str("job_state", false);
  s.details = r.str("details", false);
  if (r.error().empty() && s.details.size() > kMaxStatusDetails) {
    return fail(Error::poison("status_event: details longer than " + std::to_string(kMaxStatusDetails) + " bytes"));
  }
  if (r.error().empty() && !s.job_state.empty() && !parse_job_state(s.job_state)) {
    return fail(Error::poison("status_event: unknown job_state '" + text::truncate_utf8(s.job_state, 40) + "'"));
  }
  if (r.error().empty()) {
    auto st = parse_status_state(state);
    if (!st) return fail(Error::poison("status_event: unknown state '" + state + "'"));
    s.state = *st;
  }
  return finish(r, std::move(s));
}

Result<DeadLetter> decode_dead_letter(std::string_view text) {
  auto j = parse(text, "dead_letter");
  if (!j) return fail(j.error());
  Reader r(*j, "dead_letter");
  DeadLetter d;
  d.consumer = r.str("consumer");
  d.subject = r.str("subject");
  d.reason = r.str("reason");
  d.deliveries = static_cast<std::uint64_t>(r.i64("deliveries", false));
  d.data = r.str("data", false);
  if (j->contains("data_base64")) {
    auto bytes = crypto::unbase64(r.str("data_base64", false));
    if (!bytes) return fail(Error::poison("dead_letter: data_base64 is not base64"));
    d.data = std::move(*bytes);
  }
  return finish(r, std::move(d));
}

bool is_approve_command(std::string_view comment) {
  for (const auto& line : text::split(comment, '\n')) {
    if (text::to_lower(text::trim(line)) == kApproveCommand) return true;
  }
  return false;
}

}  // namespace flurry::msg
