#include "flurry/nix/cli_nix_runner.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "flurry/core/text.hpp"

namespace flurry::nix {
namespace {

using json = nlohmann::json;


// Every attribute at once, walking nested attribute sets (force-recurse,
// as buildbot-nix runs nix-eval-jobs for checks-style trees): a derivation
// becomes its info, a set { __flurry_nested = ...; }, anything that throws
// { error = true; }. abort, type errors and missing attributes are not
// caught by tryEval and end the whole process: then each top-level
// attribute is evaluated alone.
constexpr const char* kWalkExpr =
    "let walk = n: v: "
    "let kind = builtins.tryEval (if builtins.isAttrs v then (if (v.type or null) == \"derivation\" then 1 else 2) else 0); in "
    "if !kind.success || kind.value == 0 then { error = true; } "
    "else if kind.value == 2 then { __flurry_nested = builtins.mapAttrs walk v; } "
    "else " "let " "info = { drvPath = v.drvPath; name = v.name or n; system = v.system or \"\"; "
    "outputs = builtins.listToAttrs (map (o: { name = o; value = v.${o}.outPath; }) (v.outputs or [ \"out\" ])); }; "
    "r = builtins.tryEval (builtins.deepSeq info info); in if r.success then r.value else { error = true; }; in ";

std::string batch_apply() { return std::string("cs: ") + kWalkExpr + "builtins.mapAttrs walk cs"; }

// One attribute (possibly nested); its path reaches the expression only as
// string literals. Throws propagate as the process's error.
std::string single_apply(const std::vector<std::string>& path) {
  std::string get = "cs";
  for (const auto& p : path) get += ".${" + text::nix_string_literal(p) + "}";
  return "cs: let v = " + get + "; n = " + text::nix_string_literal(path.back()) + "; " +
         "info = { drvPath = v.drvPath; name = v.name or n; system = v.system or \"\"; "
         "outputs = builtins.listToAttrs (map (o: { name = o; value = v.${o}.outPath; }) (v.outputs or [ \"out\" ])); }; "
         "in if builtins.isAttrs v && (v.type or null) != \"derivation\" then { __flurry_nested = builtins.mapAttrs (n: _: null) v; } "
         "else builtins.deepSeq info info";
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

bool is_warning(const std::string& line) {
  if (!text::starts_with(line, "warning:") && !text::starts_with(line, "evaluation warning:")) return false;
  // Mirrors are bare and pinned to a rev; a dirty-tree note is noise.
  return !(text::starts_with(line, "warning: Git tree") && line.find("is dirty") != std::string::npos);
}

// Appends the warning lines of `err` to `out`, each once.
void collect_warnings(const std::string& err, std::vector<std::string>& out) {
  for (const auto& line : text::split(err, '\n')) {
    if (is_warning(line) && std::find(out.begin(), out.end(), line) == out.end()) out.push_back(line);
  }
}

std::string installable(const std::string& flake_ref, const std::vector<std::string>& attr_path) {
  return flake_ref + "#" + render_attr_path(attr_path);
}

std::string seconds(std::chrono::milliseconds d) {
  return std::to_string(std::max<long long>(1, (d.count() + 999) / 1000));
}

// Why a nix process failed, as a user should read it.
std::string failure_text(const ProcessResult& r, const std::string& what, std::chrono::milliseconds timeout) {
  if (r.timed_out) return what + " timed out after " + seconds(timeout) + "s";
  auto text = clean_nix_error(r.err);
  return text.empty() ? what + " failed: " + r.describe() : text;
}

// Splits a long list of store paths into batches that fit an argv
// (Linux allows about 2 MiB of arguments; 50,000 store paths exceed it).
std::vector<std::vector<std::string>> argv_batches(const std::vector<std::string>& items, std::size_t max_bytes = 128 * 1024) {
  std::vector<std::vector<std::string>> out;
  std::size_t bytes = max_bytes;
  for (const auto& item : items) {
    if (bytes + item.size() + 1 > max_bytes) {
      out.emplace_back();
      bytes = 0;
    }
    out.back().push_back(item);
    bytes += item.size() + 1;
  }
  return out;
}

}  // namespace

std::string clean_nix_error(const std::string& err) {
  auto lines = text::split(err, '\n');
  // nix's message starts at its first "error:" line; warnings and trace
  // output before it are not part of it.
  std::size_t first = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (text::starts_with(lines[i], "error:")) {
      first = i;
      break;
    }
  }
  std::string out;
  for (std::size_t i = first; i < lines.size(); ++i) {
    const auto& line = lines[i];
    if (text::starts_with(line, "(use '--show-trace'")) continue;
    if (text::starts_with(line, "warning: Git tree") && line.find("is dirty") != std::string::npos) continue;
    out += line + "\n";
  }
  // Only the end is trimmed: nix indents its source excerpts.
  while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  return out;
}

Result<ProcessResult> CliNixRunner::run(ProcessSpec spec) {
  auto r = runner_.run(spec);
  // nix that cannot be started is an infrastructure problem: retry elsewhere.
  if (!r) return fail(Error::transient("cannot run " + (spec.argv.empty() ? std::string("nix") : spec.argv[0]) + ": " + r.error().message));
  return r;
}

Result<EvalResult> CliNixRunner::eval_attrs(const EvalRequest& req) {
  EvalResult result;
  const auto target = installable(req.flake_ref, req.attr_path);
  const auto set_name = render_attr_path(req.attr_path);
  auto eval = [&](const std::string& apply) {
    std::vector<std::string> argv = {options_.nix, "eval", "--json"};
    if (req.show_trace) argv.push_back("--show-trace");
    argv.insert(argv.end(), {target, "--apply", apply});
    // 100,000 attributes print ~20 MiB of JSON: never cut it.
    return run(ProcessSpec{.argv = std::move(argv), .timeout = req.timeout, .max_capture = std::size_t{1} << 30});
  };

  std::map<std::vector<std::string>, AttrResult> by_path;  // relative path -> result
  std::vector<std::vector<std::string>> todo;                // evaluated alone
  // Flattens the walk's nested JSON; leaves that failed go to `todo`.
  std::function<void(const json&, std::vector<std::string>)> flatten = [&](const json& v, std::vector<std::string> rel) {
    if (v.is_object() && v.contains("__flurry_nested") && v["__flurry_nested"].is_object()) {
      for (const auto& [name, child] : v["__flurry_nested"].items()) {
        auto p = rel;
        p.push_back(name);
        flatten(child, p);
      }
      return;
    }
    AttrResult a;
    a.path = req.attr_path;
    a.path.insert(a.path.end(), rel.begin(), rel.end());
    if (fill_attr(v, a)) by_path[rel] = std::move(a);
    else todo.push_back(rel);
  };
  auto batch = eval(batch_apply());
  if (!batch) return fail(batch.error());
  collect_warnings(batch->err, result.warnings);
  if (batch->ok()) {
    json j = json::parse(batch->out, nullptr, false);
    if (!j.is_object()) return fail(Error::rejected("nix eval printed no attribute set for " + set_name));
    for (const auto& [name, v] : j.items()) flatten(v, {name});
  } else {
    // The set as a whole is bounded by the timeout: past it, the eval fails
    // rather than running every attribute into the same limit again.
    if (batch->timed_out) return fail(Error::rejected(failure_text(*batch, "evaluation of " + set_name, req.timeout)));
    // One attribute killed the whole evaluation (its partial JSON on stdout
    // is useless); list the names, then evaluate each on its own.
    auto names = eval("builtins.attrNames");
    if (!names) return fail(names.error());
    collect_warnings(names->err, result.warnings);
    if (!names->ok()) return fail(Error::rejected(failure_text(*names, "evaluation of " + set_name, req.timeout)));
    json j = json::parse(names->out, nullptr, false);
    if (!j.is_array()) return fail(Error::rejected("nix eval printed no attribute names for " + set_name));
    for (const auto& n : j) {
      if (n.is_string()) todo.push_back({n.get<std::string>()});
    }
  }

  // Per-attribute evaluation, options_.eval_parallelism at a time. A nested
  // set found this way is expanded into its children (depth-first).
  std::mutex mu;
  std::optional<Error> infra;
  auto worker = [&] {
    while (true) {
      std::vector<std::string> rel;
      {
        std::lock_guard lock(mu);
        if (todo.empty() || infra) return;
        rel = todo.back();
        todo.pop_back();
      }
      AttrResult a;
      a.path = req.attr_path;
      a.path.insert(a.path.end(), rel.begin(), rel.end());
      auto r = eval(single_apply(rel));
      std::lock_guard lock(mu);
      if (!r) {
        infra = r.error();
        return;
      }
      collect_warnings(r->err, result.warnings);
      json j = r->ok() ? json::parse(r->out, nullptr, false) : json();
      if (r->ok() && j.is_object() && j.contains("__flurry_nested") && j["__flurry_nested"].is_object()) {
        for (const auto& [name, _] : j["__flurry_nested"].items()) {
          auto child = rel;
          child.push_back(name);
          todo.push_back(child);
        }
        continue;
      }
      if (!(r->ok() && fill_attr(j, a))) {
        a.error = r->ok() ? "attribute " + render_attr_path(a.path) + " did not evaluate to a derivation"
                          : failure_text(*r, "evaluation of " + render_attr_path(a.path), req.timeout);
      }
      by_path[rel] = std::move(a);
    }
  };
  // Workers stop when the queue is empty; nested sets may refill it, so
  // run rounds until nothing is left.
  while (true) {
    std::size_t pending;
    {
      std::lock_guard lock(mu);
      pending = todo.size();
    }
    if (pending == 0 || infra) break;
    std::size_t n_threads = std::min<std::size_t>(pending, static_cast<std::size_t>(std::max(1, options_.eval_parallelism)));
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < n_threads; ++i) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
  }
  if (infra) return fail(*infra);
  for (auto& [_, a] : by_path) result.attrs.push_back(std::move(a));
  return result;
}

Result<std::map<std::string, std::vector<std::string>>> CliNixRunner::derivation_graph(const std::vector<std::string>& drvs) {
  std::map<std::string, std::vector<std::string>> graph;
  // In argv-sized batches; a batch skips what earlier closures already hold.
  for (const auto& batch : argv_batches(drvs)) {
    std::vector<std::string> argv = {options_.nix, "show-derivation", "-r"};
    for (const auto& d : batch) {
      if (!graph.count(d)) argv.push_back(d);
    }
    if (argv.size() == 3) continue;
    auto r = run({.argv = argv, .timeout = options_.query_timeout, .max_capture = std::size_t{1} << 30});
    if (!r) return fail(r.error());
    if (!r->ok()) return fail(Error::transient("nix show-derivation failed: " + failure_text(*r, "nix show-derivation", options_.query_timeout)));
    json j = json::parse(r->out, nullptr, false);
    if (!j.is_object()) return fail(Error::transient("nix show-derivation printed no object"));
    for (const auto& [drv, info] : j.items()) {
      auto& inputs = graph[drv];
      if (!inputs.empty()) continue;
      if (info.contains("inputDrvs") && info["inputDrvs"].is_object()) {
        for (const auto& [in, _] : info["inputDrvs"].items()) inputs.push_back(in);
      }
    }
  }
  return graph;
}

Result<std::vector<std::string>> CliNixRunner::invalid_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& batch : argv_batches(paths)) {
    std::vector<std::string> argv = {options_.nix_store, "--check-validity", "--print-invalid"};
    argv.insert(argv.end(), batch.begin(), batch.end());
    auto r = run({.argv = argv, .timeout = options_.query_timeout});
    if (!r) return fail(r.error());
    if (!r->ok()) return fail(Error::transient("nix-store --check-validity failed: " + failure_text(*r, "nix-store --check-validity", options_.query_timeout)));
    for (const auto& line : text::split(r->out, '\n')) {
      if (!line.empty()) out.push_back(line);
    }
  }
  return out;
}

Result<BuildResult> CliNixRunner::build(const BuildRequest& req) {
  // Nix 2.8 builds every output of a .drv path given as an installable.
  std::vector<std::string> argv = {options_.nix, "build", "--no-link", "--json", "-L"};
  if (req.max_silent.count() > 0) argv.insert(argv.end(), {"--max-silent-time", seconds(req.max_silent)});
  if (req.timeout.count() > 0) argv.insert(argv.end(), {"--timeout", seconds(req.timeout)});
  argv.push_back(req.drv_path);
  ProcessSpec spec{.argv = argv, .on_stderr = req.on_log, .cancel = req.cancel};
  // Backstops in case nix itself hangs: a little past nix's own limits.
  if (req.timeout.count() > 0) spec.timeout = req.timeout + options_.build_grace;
  if (req.max_silent.count() > 0) spec.silence_timeout = req.max_silent + options_.build_grace;
  spec.max_capture = 256 * 1024;
  auto r = run(spec);
  if (!r) return fail(r.error());
  BuildResult b;
  if (r->ok()) {
    b.outcome = BuildResult::Outcome::kSucceeded;
    json j = json::parse(r->out, nullptr, false);
    if (j.is_array() && !j.empty() && j[0].is_object() && j[0].contains("outputs") && j[0]["outputs"].is_object()) {
      for (const auto& [k, v] : j[0]["outputs"].items()) {
        if (v.is_string()) b.outputs[k] = v.get<std::string>();
      }
    }
    if (b.outputs.empty()) {  // no usable --json: read the outputs from the derivation
      auto d = show_derivation(req.drv_path);
      if (!d) return fail(Error::transient("built " + req.drv_path + " but cannot read its outputs: " + d.error().message));
      b.outputs = d->outputs;
    }
    return b;
  }
  if (r->cancelled) {
    b.outcome = BuildResult::Outcome::kCancelled;
    b.error = "cancelled";
    return b;
  }
  // nix's own limits end with "timed out after N seconds[ of silence]".
  bool timed_out = r->timed_out || r->silent_too_long || r->err.find("timed out after") != std::string::npos;
  b.outcome = timed_out ? BuildResult::Outcome::kTimedOut : BuildResult::Outcome::kFailed;
  // nix's summary: the "error: builder for ... failed" or "timed out" line.
  std::string summary;
  for (const auto& line : text::split(r->err, '\n')) {
    if (text::starts_with(line, "error:")) {
      summary = line;
      if (line.find("builder for") != std::string::npos || line.find("timed out") != std::string::npos) break;
    }
  }
  // Without -L nix appends "; last N log lines:"; the lines are in the log.
  if (!summary.empty() && summary.back() == ';') summary.pop_back();
  if (summary.empty()) {
    summary = r->timed_out ? "build timed out after " + seconds(spec.timeout) + "s"
              : r->silent_too_long ? "build silent for more than " + seconds(spec.silence_timeout) + "s"
                                   : "nix build " + r->describe();
  }
  b.error = summary;
  return b;
}

Result<void> CliNixRunner::copy_to(const std::string& store_url, const std::vector<std::string>& paths) {
  if (paths.empty()) return {};
  std::vector<std::string> argv = {options_.nix, "copy", "--to", store_url};
  argv.insert(argv.end(), paths.begin(), paths.end());
  auto r = run({.argv = argv, .timeout = options_.copy_timeout});
  if (!r) return fail(r.error());
  if (!r->ok()) return fail(Error::transient("nix copy failed: " + failure_text(*r, "nix copy", options_.copy_timeout)));
  return {};
}

Result<std::string> CliNixRunner::eval_json(const std::string& flake_ref, const std::vector<std::string>& attr_path,
                                            const std::string& apply, std::chrono::milliseconds timeout) {
  auto r = run({.argv = {options_.nix, "eval", "--json", installable(flake_ref, attr_path), "--apply", apply}, .timeout = timeout});
  if (!r) return fail(r.error());
  if (!r->ok()) return fail(Error::rejected(failure_text(*r, "evaluation of " + render_attr_path(attr_path), timeout)));
  return text::trim(r->out);
}

Result<Derivation> CliNixRunner::show_derivation(const std::string& drv_path) {
  auto r = run({.argv = {options_.nix, "show-derivation", drv_path}, .timeout = options_.query_timeout});
  if (!r) return fail(r.error());
  if (!r->ok()) return fail(Error::rejected("nix show-derivation failed: " + failure_text(*r, "nix show-derivation", options_.query_timeout)));
  json j = json::parse(r->out, nullptr, false);
  if (!j.is_object() || j.empty() || !j.begin().value().is_object()) {
    return fail(Error::rejected("nix show-derivation printed no derivation for " + drv_path));
  }
  auto first = j.begin();
  const json& info = first.value();
  auto str = [](const json& o, const char* key) {
    return o.contains(key) && o[key].is_string() ? o[key].get<std::string>() : std::string();
  };
  Derivation d;
  d.path = first.key();
  d.builder = str(info, "builder");
  d.system = str(info, "system");
  if (d.system.empty()) d.system = str(info, "platform");
  if (info.contains("args") && info["args"].is_array()) {
    for (const auto& a : info["args"]) {
      if (a.is_string()) d.args.push_back(a.get<std::string>());
    }
  }
  if (info.contains("env") && info["env"].is_object()) {
    for (const auto& [k, v] : info["env"].items()) {
      if (v.is_string()) d.env[k] = v.get<std::string>();
    }
  }
  if (info.contains("inputDrvs") && info["inputDrvs"].is_object()) {
    for (const auto& [k, _] : info["inputDrvs"].items()) d.input_drvs.push_back(k);
  }
  if (info.contains("inputSrcs") && info["inputSrcs"].is_array()) {
    for (const auto& s : info["inputSrcs"]) {
      if (s.is_string()) d.input_srcs.push_back(s.get<std::string>());
    }
  }
  if (info.contains("outputs") && info["outputs"].is_object()) {
    for (const auto& [k, v] : info["outputs"].items()) d.outputs[k] = v.is_object() ? str(v, "path") : std::string();
  }
  return d;
}

Result<void> CliNixRunner::realise(const std::vector<std::string>& drv_paths) {
  if (drv_paths.empty()) return {};
  std::vector<std::string> argv = {options_.nix_store, "--realise"};
  argv.insert(argv.end(), drv_paths.begin(), drv_paths.end());
  auto r = run({.argv = argv, .timeout = options_.copy_timeout});
  if (!r) return fail(r.error());
  if (!r->ok()) return fail(Error::rejected("nix-store --realise failed: " + failure_text(*r, "nix-store --realise", options_.copy_timeout)));
  return {};
}

}  // namespace flurry::nix
