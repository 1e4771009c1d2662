// The evaluation worker pool behind CliNixRunner::eval_attrs.
//
// `workers` nix processes share out the attribute set: each evaluates a
// range of its sorted attribute names and reports every attribute as it
// finishes, through `builtins.trace` lines tagged with a per-evaluation
// random token (so the flake's own traces cannot pass for results). A
// process that dies (abort, type error, infinite recursion), passes the
// memory ceiling or stays silent past the attribute timeout loses only
// the attribute it was on: the one after its last reported attribute is
// evaluated alone for nix's exact error, and the rest of its range goes
// to a fresh process. Results are streamed to the caller as they arrive.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "cli_eval.hpp"

#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"
#include "flurry/nix/cli_nix_runner.hpp"

namespace flurry::nix::detail {

std::vector<std::string> flake_output_expr(const std::string& flake_ref, const std::vector<std::string>& attr_path) {
  std::string path = "[";
  for (const auto& p : attr_path) path += " " + text::nix_string_literal(p);
  path += " ]";
  const auto missing = text::nix_string_literal("flake '" + flake_ref + "' does not provide attribute '" + render_attr_path(attr_path) + "'");
  return {"--expr", "builtins.foldl' (v: n: if builtins.isAttrs v && v ? ${n} then v.${n} else throw " + missing + ") (builtins.getFlake " +
                        text::nix_string_literal(flake_ref) + ") " + path};
}

std::string seconds(std::chrono::milliseconds d) { return std::to_string(std::max<long long>(1, (d.count() + 999) / 1000)); }

std::string failure_text(const ProcessResult& r, const std::string& what, std::chrono::milliseconds timeout) {
  if (r.timed_out || r.silent_too_long) return what + " timed out after " + seconds(timeout) + "s";
  auto text = clean_nix_error(r.err);
  return text.empty() ? what + " failed: " + r.describe() : text;
}

bool is_warning(const std::string& line) {
  if (!text::starts_with(line, "warning:") && !text::starts_with(line, "evaluation warning:")) return false;
  // Mirrors are bare and pinned to a rev; a dirty-tree note is noise.
  if (text::starts_with(line, "warning: Git tree") && line.find("is dirty") != std::string::npos) return false;
  // Workers writing .drv files at once make nix retry its store database
  // ("warning: error: SQLite database '...' is busy"): about the machine,
  // not the flake.
  return !(line.find("SQLite database") != std::string::npos && line.find("is busy") != std::string::npos);
}

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// A derivation's job fields; `v` the value, `n` its attribute name. A raw
// `derivation` has no `outputs`.
constexpr const char* kInfo =
    "info = { drvPath = v.drvPath; name = v.name or n; system = v.system or \"\"; "
    "outputs = builtins.listToAttrs (map (o: { name = o; value = v.${o}.outPath; }) (v.outputs or [ \"out\" ])); };";

// Whether to descend into the non-derivation attribute set `v`.
std::string descend(bool force_recurse) { return force_recurse ? "true" : "((v.recurseForDerivations or false) == true)"; }

// walk n v: a derivation becomes its info, a set to descend into
// { __flurry_nested = ...; }, a set not to descend into null (skipped),
// anything that throws or is not a set { error = true; } (evaluated again
// alone for nix's message). abort, type errors and infinite recursion
// escape tryEval and end the process.
std::string walk_expr(bool force_recurse) {
  return std::string("walk = n: v: let kind = builtins.tryEval (if builtins.isAttrs v then (if (v.type or null) == \"derivation\" then 1 else if ") +
         descend(force_recurse) +
         " then 2 else 3) else 0); in "
         "if !kind.success || kind.value == 0 then { error = true; } "
         "else if kind.value == 3 then null "
         "else if kind.value == 2 then { __flurry_nested = builtins.mapAttrs walk (builtins.removeAttrs v [ \"recurseForDerivations\" ]); } "
         "else let " + kInfo + " r = builtins.tryEval (builtins.deepSeq info info); in if r.success then r.value else { error = true; };";
}

// The set at `rel` below the evaluated attribute set; every name reaches
// the expression only as a string literal.
std::string select(const std::vector<std::string>& rel) {
  std::string s = "cs";
  for (const auto& p : rel) s += ".${" + text::nix_string_literal(p) + "}";
  return s;
}

// Evaluates names [first, last) of the set at `rel` (expressions over its
// name count `len`), printing a header, then a begin and a done line per
// attribute, as traces "<token>{json}". Its value is null.
std::string range_apply(const std::vector<std::string>& rel, const std::string& first, const std::string& last,
                        const std::string& token, bool force_recurse) {
  return "cs: let s = " + select(rel) + "; names = builtins.filter (x: x != \"recurseForDerivations\") (builtins.attrNames s); len = builtins.length names; first = " + first +
         "; last = " + last + "; " + walk_expr(force_recurse) + " line = x: builtins.trace (" + text::nix_string_literal(token) +
         " + builtins.toJSON x) null; "
         "one = i: let n = builtins.elemAt names i; in builtins.seq (line { b = i; inherit n; }) (line { d = i; inherit n; r = walk n s.${n}; }); "
         "in builtins.seq (line { h = [ len first last ]; }) "
         "(builtins.foldl' (acc: i: builtins.seq (one i) acc) null (builtins.genList (x: first + x) (last - first)))";
}

// One attribute alone, without tryEval, so that its failure is the
// process's error with nix's own text. A set to descend into prints
// { __flurry_nested = true; }, one to skip null.
std::string single_apply(const std::vector<std::string>& rel, bool force_recurse) {
  return "cs: let v = " + select(rel) + "; n = " + text::nix_string_literal(rel.back()) + "; " + kInfo +
         " in if builtins.isAttrs v && (v.type or null) != \"derivation\" then (if " + descend(force_recurse) +
         " then { __flurry_nested = true; } else null) else builtins.deepSeq info info";
}

bool fill_attr(const json& j, AttrResult& a) {
  if (!j.is_object() || !j.contains("drvPath") || !j["drvPath"].is_string()) return false;
  a.drv_path = j["drvPath"].get<std::string>();
  if (j.contains("name") && j["name"].is_string()) a.name = j["name"].get<std::string>();
  if (j.contains("system") && j["system"].is_string()) a.system = j["system"].get<std::string>();
  if (j.contains("outputs") && j["outputs"].is_object()) {
    for (const auto& [k, v] : j["outputs"].items()) {
      if (v.is_string()) a.outputs[k] = v.get<std::string>();
    }
  }
  return true;
}

std::string random_token() { return "flurry-" + crypto::random_hex(16) + ":"; }

class Pool {
 public:
  Pool(ProcessRunner& runner, const PoolOptions& options, const EvalRequest& req)
      : runner_(runner), options_(options), req_(req), token_(random_token()), deadline_(Clock::now() + req.timeout) {}

  Result<EvalResult> run();

 private:
  // A range of the set at `rel` (first/last are Nix expressions over its
  // name count `len`), or one attribute alone.
  struct Unit {
    std::vector<std::string> rel;
    bool single = false;
    std::string first, last;
    int stalls = 0;  // earlier processes on this range that died before reaching an attribute
  };
  // What one range process reported so far.
  struct Progress {
    std::string partial;  // an incomplete stderr line
    bool header = false;
    long long first = 0, last = 0;
    long long next = 0;  // the first attribute not done
    long long begun = -1;
    std::string begun_name;
  };

  void worker();
  void deliverer();
  void run_range(const Unit& u);
  void run_single(const Unit& u);
  void feed(Progress& p, std::string_view chunk, const std::vector<std::string>& rel);
  void line(Progress& p, const std::string& l, const std::vector<std::string>& rel);
  // Flattens a walk result at `rel`: leaves to emit, failures to evaluate alone.
  void flatten(const json& v, std::vector<std::string> rel, std::vector<AttrResult>& out, std::vector<Unit>& singles);
  void emit(std::vector<AttrResult> attrs);
  void add_units(std::vector<Unit> units);
  void account(const ProcessResult& r);
  void warn(const std::string& err_text);
  // The set as a whole cannot be evaluated (or the deadline passed).
  void fail_set(const std::string& text) { stop(Error::rejected(text)); }
  void stop(Error e);
  ProcessSpec spec(std::string apply, std::chrono::milliseconds timeout);
  std::vector<std::string> full(const std::vector<std::string>& rel) const {
    auto p = req_.attr_path;
    p.insert(p.end(), rel.begin(), rel.end());
    return p;
  }
  std::chrono::milliseconds remaining() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
  }
  std::string set_name() const { return render_attr_path(req_.attr_path); }
  std::string memory_text(const std::vector<std::string>& path) const {
    return "evaluation of " + render_attr_path(path) + " exceeded the memory ceiling of " + std::to_string(options_.max_memory_mib) +
           " MiB";
  }

  ProcessRunner& runner_;
  const PoolOptions& options_;
  const EvalRequest& req_;
  const std::string token_;
  const Clock::time_point deadline_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Unit> units_;
  int active_ = 0;
  bool workers_done_ = false;
  std::atomic<bool> stop_{false};
  std::optional<Error> error_;
  std::vector<AttrResult> pending_;  // to hand to on_attrs
  EvalResult result_;
};

Result<EvalResult> Pool::run() {
  const int workers = std::max(1, options_.workers);
  // Part k of `workers` of the set's names; the process computes the
  // bounds from the name count, so no listing pass is needed first.
  for (int k = 0; k < workers; ++k) {
    const auto p = std::to_string(workers);
    units_.push_back({{}, false, "builtins.div (len * " + std::to_string(k) + ") " + p,
                      "builtins.div (len * " + std::to_string(k + 1) + ") " + p, 0});
  }
  std::thread delivery;
  if (req_.on_attrs) delivery = std::thread([this] { deliverer(); });
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) threads.emplace_back([this] { worker(); });
  for (auto& t : threads) t.join();
  {
    std::lock_guard lock(mu_);
    workers_done_ = true;
  }
  cv_.notify_all();
  if (delivery.joinable()) delivery.join();
  if (error_) return fail(*error_);
  std::sort(result_.attrs.begin(), result_.attrs.end(), [](const AttrResult& a, const AttrResult& b) { return a.path < b.path; });
  return std::move(result_);
}

void Pool::stop(Error e) {
  {
    std::lock_guard lock(mu_);
    if (!error_) error_ = std::move(e);
  }
  stop_ = true;  // running processes are cancelled
  cv_.notify_all();
}

void Pool::worker() {
  while (true) {
    Unit u;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !units_.empty() || active_ == 0; });
      if (stop_ || units_.empty()) return;
      u = std::move(units_.front());
      units_.pop_front();
      ++active_;
    }
    if (remaining().count() <= 0) {
      fail_set("evaluation of " + set_name() + " timed out after " + seconds(req_.timeout) + "s");
    } else if (u.single) {
      run_single(u);
    } else {
      run_range(u);
    }
    {
      std::lock_guard lock(mu_);
      --active_;
    }
    cv_.notify_all();
  }
}

// Hands results to on_attrs one call at a time: the first as soon as
// there is one, then at growing intervals (stream_interval, doubling up to
// stream_interval_max), each taking everything that arrived meanwhile. So
// builds start early, and a long evaluation makes few large batches: the
// caller's per-batch store queries stay a small share of the machine.
void Pool::deliverer() {
  auto last = Clock::time_point::min();
  auto interval = req_.stream_interval;
  while (true) {
    std::vector<AttrResult> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !pending_.empty() || workers_done_; });
      if (last != Clock::time_point::min()) {
        cv_.wait_until(lock, last + interval, [&] { return workers_done_; });
        interval = std::min(interval * 2, std::max(req_.stream_interval, req_.stream_interval_max));
      }
      if (pending_.empty()) return;
      batch.swap(pending_);
    }
    last = Clock::now();
    if (stop_) continue;  // the evaluation failed: nothing more is handed over
    if (auto r = req_.on_attrs(std::move(batch)); !r) stop(r.error());
  }
}

void Pool::emit(std::vector<AttrResult> attrs) {
  if (attrs.empty()) return;
  {
    std::lock_guard lock(mu_);
    auto& to = req_.on_attrs ? pending_ : result_.attrs;
    for (auto& a : attrs) to.push_back(std::move(a));
  }
  cv_.notify_all();
}

void Pool::add_units(std::vector<Unit> units) {
  if (units.empty()) return;
  {
    std::lock_guard lock(mu_);
    for (auto& u : units) units_.push_back(std::move(u));
  }
  cv_.notify_all();
}

void Pool::account(const ProcessResult& r) {
  std::lock_guard lock(mu_);
  ++result_.processes;
  result_.memory_restarts += r.memory_exceeded;
  result_.peak_process_rss_bytes = std::max(result_.peak_process_rss_bytes, r.peak_rss_bytes);
}

void Pool::warn(const std::string& err_text) {
  std::lock_guard lock(mu_);
  for (const auto& l : text::split(err_text, '\n')) {
    if (is_warning(l) && std::find(result_.warnings.begin(), result_.warnings.end(), l) == result_.warnings.end()) {
      result_.warnings.push_back(l);
    }
  }
}

ProcessSpec Pool::spec(std::string apply, std::chrono::milliseconds timeout) {
  // No eval cache: workers would only contend on its SQLite file.
  std::vector<std::string> argv = {options_.nix, "eval", "--json", "--option", "eval-cache", "false"};
  if (req_.show_trace) argv.push_back("--show-trace");
  auto target = flake_output_expr(req_.flake_ref, req_.attr_path);
  argv.insert(argv.end(), target.begin(), target.end());
  argv.insert(argv.end(), {"--apply", std::move(apply)});
  ProcessSpec s{.argv = std::move(argv), .timeout = timeout};
  // Results arrive through on_stderr; the capture keeps nix's error (the tail).
  s.max_capture = 4 * 1024 * 1024;
  s.cancel = &stop_;
  s.max_rss_bytes = options_.max_memory_mib << 20;
  return s;
}

void Pool::flatten(const json& v, std::vector<std::string> rel, std::vector<AttrResult>& out, std::vector<Unit>& singles) {
  if (v.is_null()) return;  // a set not to descend into
  if (v.is_object() && v.contains("__flurry_nested") && v["__flurry_nested"].is_object()) {
    for (const auto& [name, child] : v["__flurry_nested"].items()) {
      auto p = rel;
      p.push_back(name);
      flatten(child, std::move(p), out, singles);
    }
    return;
  }
  AttrResult a;
  a.path = full(rel);
  if (fill_attr(v, a)) out.push_back(std::move(a));
  else singles.push_back({std::move(rel), true, "", "", 0});
}

void Pool::line(Progress& p, const std::string& l, const std::vector<std::string>& rel) {
  const std::string prefix = "trace: " + token_;
  if (!text::starts_with(l, prefix)) {
    if (is_warning(l)) warn(l);
    return;
  }
  json j = json::parse(l.substr(prefix.size()), nullptr, false);
  if (!j.is_object()) return;
  if (j.contains("h") && j["h"].is_array() && j["h"].size() == 3 && j["h"][1].is_number_integer() &&
      j["h"][2].is_number_integer()) {
    p.header = true;
    p.first = j["h"][1].get<long long>();
    p.last = j["h"][2].get<long long>();
    p.next = p.first;
  } else if (j.contains("b") && j["b"].is_number_integer() && j.contains("n") && j["n"].is_string()) {
    p.begun = j["b"].get<long long>();
    p.begun_name = j["n"].get<std::string>();
  } else if (j.contains("d") && j["d"].is_number_integer() && j.contains("n") && j["n"].is_string() && j.contains("r")) {
    auto child = rel;
    child.push_back(j["n"].get<std::string>());
    std::vector<AttrResult> out;
    std::vector<Unit> singles;
    flatten(j["r"], std::move(child), out, singles);
    p.next = j["d"].get<long long>() + 1;
    emit(std::move(out));
    add_units(std::move(singles));
  }
}

void Pool::feed(Progress& p, std::string_view chunk, const std::vector<std::string>& rel) {
  p.partial.append(chunk);
  std::size_t start = 0;
  for (std::size_t nl; (nl = p.partial.find('\n', start)) != std::string::npos; start = nl + 1) {
    line(p, p.partial.substr(start, nl - start), rel);
  }
  p.partial.erase(0, start);
}

void Pool::run_range(const Unit& u) {
  Progress p;
  auto s = spec(range_apply(u.rel, u.first, u.last, token_, req_.force_recurse), remaining());
  // Silence means one attribute ran past its time (every attribute
  // prints lines; listing the set prints the header).
  s.silence_timeout = req_.attr_timeout;
  s.on_stderr = [&](std::string_view chunk) { feed(p, chunk, u.rel); };
  auto r = runner_.run(s);
  if (!r) return stop(Error::transient("cannot run " + options_.nix + ": " + r.error().message));
  feed(p, "\n", u.rel);
  account(*r);
  if (stop_) return;
  const auto path = full(u.rel);
  if (r->ok()) {
    if (p.header && p.next >= p.last) return;
    return fail_set("nix eval of " + render_attr_path(path) + " ended without evaluating every attribute");
  }
  if (r->timed_out) return fail_set("evaluation of " + set_name() + " timed out after " + seconds(req_.timeout) + "s");
  if (!p.header) {
    // Not even the names could be listed: the set itself is broken.
    auto text = r->memory_exceeded ? memory_text(path) : failure_text(*r, "evaluation of " + render_attr_path(path), req_.attr_timeout);
    if (u.rel.empty()) return fail_set(text);
    AttrResult a;
    a.path = path;
    a.error = text;
    return emit({std::move(a)});
  }
  std::vector<Unit> next;
  long long from = p.next;
  if (p.begun == p.next) {
    // The attribute in progress: alone, for its own error (or, past the
    // memory ceiling, a fresh process's memory) ...
    auto rel = u.rel;
    rel.push_back(p.begun_name);
    if (r->silent_too_long) {
      AttrResult a;
      a.path = full(rel);
      a.error = "evaluation of " + render_attr_path(a.path) + " timed out after " + seconds(req_.attr_timeout) + "s";
      emit({std::move(a)});
    } else {
      next.push_back({std::move(rel), true, "", "", 0});
    }
    ++from;
  } else if (u.stalls >= 2) {
    return fail_set("evaluation of " + render_attr_path(path) + " keeps failing: " + failure_text(*r, "nix eval", req_.attr_timeout));
  }
  // ... and the rest of the range in a new process.
  if (from < p.last) {
    next.push_back({u.rel, false, std::to_string(from), std::to_string(p.last), p.begun == p.next ? 0 : u.stalls + 1});
  }
  add_units(std::move(next));
}

void Pool::run_single(const Unit& u) {
  const auto left = remaining();
  const bool deadline_binds = left < req_.attr_timeout;
  auto r = runner_.run(spec(single_apply(u.rel, req_.force_recurse), deadline_binds ? left : req_.attr_timeout));
  if (!r) return stop(Error::transient("cannot run " + options_.nix + ": " + r.error().message));
  account(*r);
  if (stop_) return;
  warn(r->err);
  if (r->timed_out && deadline_binds) {
    return fail_set("evaluation of " + set_name() + " timed out after " + seconds(req_.timeout) + "s");
  }
  AttrResult a;
  a.path = full(u.rel);
  if (r->ok()) {
    json j = json::parse(r->out, nullptr, false);
    if (j.is_null()) return;  // a set not to descend into
    if (j.is_object() && j.contains("__flurry_nested")) {
      return add_units({{u.rel, false, "0", "len", 0}});
    }
    if (fill_attr(j, a)) return emit({std::move(a)});
    a.error = "attribute " + render_attr_path(a.path) + " did not evaluate to a derivation";
  } else {
    a.error = r->memory_exceeded ? memory_text(a.path) : failure_text(*r, "evaluation of " + render_attr_path(a.path), req_.attr_timeout);
  }
  emit({std::move(a)});
}

}  // namespace

Result<EvalResult> pool_eval(ProcessRunner& runner, const PoolOptions& options, const EvalRequest& req) {
  return Pool(runner, options, req).run();
}

}  // namespace flurry::nix::detail
