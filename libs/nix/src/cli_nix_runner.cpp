#include "flurry/nix/cli_nix_runner.hpp"

#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "flurry/core/text.hpp"

namespace flurry::nix {
namespace {

using json = nlohmann::json;

// Evaluates one derivation-valued attribute `v` to what a job needs. deepSeq
// forces every field inside tryEval, so throw/assert in any of them is
// caught; abort and type errors still end the process (hence the
// per-attribute fallback).
constexpr const char* kInfoExpr =
    "let info = { drvPath = v.drvPath; name = v.name or n; system = v.system or \"\"; "
    "outputs = builtins.listToAttrs (map (o: { name = o; value = v.${o}.outPath; }) (v.outputs or [ \"out\" ])); }; in ";

std::string batch_apply() {
  return std::string("cs: builtins.mapAttrs (n: v: ") + kInfoExpr +
         "let r = builtins.tryEval (builtins.deepSeq info info); in if r.success then r.value else { error = true; }) cs";
}

std::string single_apply(const std::string& name) {
  std::string lit = text::nix_string_literal(name);
  return "cs: let n = " + lit + "; v = cs.${n}; in " + kInfoExpr + "builtins.deepSeq info info";
}

bool fill_attr(const json& j, AttrResult& a) {
  if (!j.is_object() || !j.contains("drvPath") || !j["drvPath"].is_string()) return false;
  a.drv_path = j["drvPath"].get<std::string>();
  a.name = j.value("name", "");
  a.system = j.value("system", "");
  if (j.contains("outputs") && j["outputs"].is_object()) {
    for (const auto& [k, v] : j["outputs"].items()) {
      if (v.is_string()) a.outputs[k] = v.get<std::string>();
    }
  }
  return true;
}

void collect_warnings(const std::string& err, std::vector<std::string>& out) {
  for (const auto& line : text::split(err, '\n')) {
    if ((text::starts_with(line, "warning:") || text::starts_with(line, "evaluation warning:")) &&
        line.find("is dirty") == std::string::npos) {
      out.push_back(line);
    }
  }
}

std::string installable(const std::string& flake_ref, const std::vector<std::string>& attr_path) {
  return flake_ref + "#" + render_attr_path(attr_path);
}

}  // namespace

std::string clean_nix_error(const std::string& err) {
  std::string out;
  for (const auto& line : text::split(err, '\n')) {
    if (text::starts_with(line, "(use '--show-trace'")) continue;
    if (text::starts_with(line, "warning: Git tree") && line.find("is dirty") != std::string::npos) continue;
    out += line + "\n";
  }
  return text::trim(out);
}

Result<ProcessResult> CliNixRunner::run(ProcessSpec spec) {
  auto r = runner_.run(spec);
  // nix that cannot be started is an infrastructure problem: retry elsewhere.
  if (!r) return fail(Error::transient(r.error().message));
  return r;
}

Result<EvalResult> CliNixRunner::eval_attrs(const EvalRequest& req) {
  EvalResult result;
  std::vector<std::string> base = {options_.nix, "eval", "--json"};
  if (req.show_trace) base.push_back("--show-trace");
  auto target = installable(req.flake_ref, req.attr_path);

  auto with = [&](std::vector<std::string> extra) {
    auto argv = base;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return ProcessSpec{.argv = argv, .timeout = req.timeout};
  };

  std::map<std::string, AttrResult> by_name;
  std::vector<std::string> todo;
  auto batch = run(with({target, "--apply", batch_apply()}));
  if (!batch) return fail(batch.error());
  collect_warnings(batch->err, result.warnings);
  if (batch->ok()) {
    json j = json::parse(batch->out, nullptr, false);
    if (!j.is_object()) return fail(Error::rejected("nix eval printed no attribute set for " + render_attr_path(req.attr_path)));
    for (const auto& [name, v] : j.items()) {
      AttrResult a;
      a.path = req.attr_path;
      a.path.push_back(name);
      if (fill_attr(v, a)) by_name[name] = std::move(a);
      else todo.push_back(name);
    }
  } else {
    if (batch->timed_out) return fail(Error::rejected("evaluation timed out"));
    // One attribute killed the whole evaluation; find the names, then
    // evaluate each on its own.
    auto names = run(with({target, "--apply", "builtins.attrNames"}));
    if (!names) return fail(names.error());
    if (!names->ok()) {
      return fail(Error::rejected(names->timed_out ? "evaluation timed out" : clean_nix_error(names->err)));
    }
    json j = json::parse(names->out, nullptr, false);
    if (!j.is_array()) return fail(Error::rejected("nix eval printed no attribute names"));
    for (const auto& n : j) {
      if (n.is_string()) todo.push_back(n.get<std::string>());
    }
  }

  // Per-attribute evaluation, a few at a time.
  std::mutex mu;
  std::size_t next = 0;
  std::optional<Error> infra;
  auto worker = [&] {
    while (true) {
      std::string name;
      {
        std::lock_guard lock(mu);
        if (next >= todo.size() || infra) return;
        name = todo[next++];
      }
      AttrResult a;
      a.path = req.attr_path;
      a.path.push_back(name);
      auto r = run(with({target, "--apply", single_apply(name)}));
      std::lock_guard lock(mu);
      if (!r) {
        infra = r.error();
        return;
      }
      collect_warnings(r->err, result.warnings);
      if (r->ok() && fill_attr(json::parse(r->out, nullptr, false), a)) {
        by_name[name] = std::move(a);
      } else {
        a.error = r->timed_out ? "evaluation timed out" : clean_nix_error(r->err);
        if (a.error.empty()) a.error = "attribute " + name + " did not evaluate to a derivation";
        by_name[name] = std::move(a);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, options_.eval_parallelism); ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (infra) return fail(*infra);
  for (auto& [_, a] : by_name) result.attrs.push_back(std::move(a));
  return result;
}

Result<std::map<std::string, std::vector<std::string>>> CliNixRunner::derivation_graph(const std::vector<std::string>& drvs) {
  std::map<std::string, std::vector<std::string>> graph;
  if (drvs.empty()) return graph;
  std::vector<std::string> argv = {options_.nix, "show-derivation", "-r"};
  argv.insert(argv.end(), drvs.begin(), drvs.end());
  auto r = run({.argv = argv, .timeout = std::chrono::minutes(10), .max_capture = 1024 * 1024 * 1024});
  if (!r) return fail(r.error());
  if (!r->ok()) return fail(Error::rejected("nix show-derivation failed: " + clean_nix_error(r->err)));
  json j = json::parse(r->out, nullptr, false);
  if (!j.is_object()) return fail(Error::rejected("nix show-derivation printed no object"));
  for (const auto& [drv, info] : j.items()) {
    auto& inputs = graph[drv];
    if (info.contains("inputDrvs") && info["inputDrvs"].is_object()) {
      for (const auto& [in, _] : info["inputDrvs"].items()) inputs.push_back(in);
    }
  }
  return graph;
}

Result<std::vector<std::string>> CliNixRunner::invalid_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  if (paths.empty()) return out;
  std::vector<std::string> argv = {options_.nix_store, "--check-validity", "--print-invalid"};
  argv.insert(argv.end(), paths.begin(), paths.end());
  auto r = run({.argv = argv, .timeout = std::chrono::minutes(2)});
  if (!r) return fail(r.error());
  if (!r->ok()) return fail(Error::transient("nix-store --check-validity failed: " + clean_nix_error(r->err)));
  for (const auto& line : text::split(r->out, '\n')) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

Result<BuildResult> CliNixRunner::build(const BuildRequest& req) {
  std::vector<std::string> argv = {options_.nix, "build", "--no-link", "--json", "-L"};
  if (req.max_silent.count() > 0) {
    argv.insert(argv.end(), {"--max-silent-time", std::to_string(std::max<long long>(1, req.max_silent.count() / 1000))});
  }
  if (req.timeout.count() > 0) {
    argv.insert(argv.end(), {"--timeout", std::to_string(std::max<long long>(1, req.timeout.count() / 1000))});
  }
  argv.push_back(req.drv_path);
  ProcessSpec spec{.argv = argv, .on_stderr = req.on_log, .cancel = req.cancel};
  // Backstops in case nix itself hangs: a little past nix's own limits.
  if (req.timeout.count() > 0) spec.timeout = req.timeout + std::chrono::seconds(30);
  if (req.max_silent.count() > 0) spec.silence_timeout = req.max_silent + std::chrono::seconds(30);
  spec.max_capture = 256 * 1024;
  auto r = run(spec);
  if (!r) return fail(r.error());
  BuildResult b;
  if (r->ok()) {
    b.outcome = BuildResult::Outcome::kSucceeded;
    json j = json::parse(r->out, nullptr, false);
    if (j.is_array() && !j.empty() && j[0].contains("outputs") && j[0]["outputs"].is_object()) {
      for (const auto& [k, v] : j[0]["outputs"].items()) {
        if (v.is_string()) b.outputs[k] = v.get<std::string>();
      }
    }
    return b;
  }
  if (r->cancelled) {
    b.outcome = BuildResult::Outcome::kCancelled;
    b.error = "cancelled";
    return b;
  }
  bool timed_out = r->timed_out || r->silent_too_long || r->err.find("timed out after") != std::string::npos ||
                   r->err.find("silent for") != std::string::npos;
  b.outcome = timed_out ? BuildResult::Outcome::kTimedOut : BuildResult::Outcome::kFailed;
  // nix's summary: the "error: builder for ... failed" line when present.
  std::string summary;
  for (const auto& line : text::split(r->err, '\n')) {
    if (text::starts_with(line, "error:")) {
      summary = line;
      if (line.find("builder for") != std::string::npos || line.find("timed out") != std::string::npos) break;
    }
  }
  if (summary.empty()) summary = "nix build " + r->describe();
  b.error = summary;
  return b;
}

Result<void> CliNixRunner::copy_to(const std::string& store_url, const std::vector<std::string>& paths) {
  if (paths.empty()) return {};
  std::vector<std::string> argv = {options_.nix, "copy", "--to", store_url};
  argv.insert(argv.end(), paths.begin(), paths.end());
  auto r = run({.argv = argv, .timeout = std::chrono::hours(1)});
  if (!r) return fail(r.error());
  if (!r->ok()) return fail(Error::transient("nix copy failed: " + clean_nix_error(r->err)));
  return {};
}

Result<std::string> CliNixRunner::eval_json(const std::string& flake_ref, const std::vector<std::string>& attr_path,
                                            const std::string& apply, std::chrono::milliseconds timeout) {
  auto r = run({.argv = {options_.nix, "eval", "--json", installable(flake_ref, attr_path), "--apply", apply}, .timeout = timeout});
  if (!r) return fail(r.error());
  if (!r->ok()) return fail(Error::rejected(r->timed_out ? "evaluation timed out" : clean_nix_error(r->err)));
  return r->out;
}

Result<Derivation> CliNixRunner::show_derivation(const std::string& drv_path) {
  auto r = run({.argv = {options_.nix, "show-derivation", drv_path}, .timeout = std::chrono::minutes(2)});
  if (!r) return fail(r.error());
  if (!r->ok()) return fail(Error::rejected("nix show-derivation failed: " + clean_nix_error(r->err)));
  json j = json::parse(r->out, nullptr, false);
  if (!j.is_object() || j.empty()) return fail(Error::rejected("nix show-derivation printed no derivation"));
  auto first = j.begin();
  const json& info = first.value();
  Derivation d;
  d.path = first.key();
  d.builder = info.value("builder", "");
  d.system = info.value("system", info.value("platform", ""));
  if (info.contains("args") && info["args"].is_array()) {
    for (const auto& a : info["args"]) d.args.push_back(a.get<std::string>());
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
    for (const auto& s : info["inputSrcs"]) d.input_srcs.push_back(s.get<std::string>());
  }
  if (info.contains("outputs") && info["outputs"].is_object()) {
    for (const auto& [k, v] : info["outputs"].items()) d.outputs[k] = v.value("path", "");
  }
  return d;
}

Result<void> CliNixRunner::realise(const std::vector<std::string>& drv_paths) {
  if (drv_paths.empty()) return {};
  std::vector<std::string> argv = {options_.nix_store, "--realise"};
  argv.insert(argv.end(), drv_paths.begin(), drv_paths.end());
  auto r = run({.argv = argv, .timeout = std::chrono::hours(1)});
  if (!r) return fail(r.error());
  if (!r->ok()) return fail(Error::rejected("nix-store --realise failed: " + clean_nix_error(r->err)));
  return {};
}

}  // namespace flurry::nix
