#include "flurry/nix/cli_nix_runner.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "flurry/core/text.hpp"
#include "flurry/nix/nix_log.hpp"
#include "cli_eval.hpp"

namespace flurry::nix {
namespace {

using detail::failure_text;
using detail::seconds;

using json = nlohmann::json;


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

// requiredSystemFeatures of a derivation as `nix show-derivation` prints
// it: a space-separated string in its environment, or a list in the JSON
// of a derivation with structured attributes.
std::vector<std::string> required_features(const json& info) {
  std::vector<std::string> out;
  if (!info.contains("env") || !info["env"].is_object()) return out;
  const json& env = info["env"];
  if (env.contains("requiredSystemFeatures") && env["requiredSystemFeatures"].is_string()) {
    std::istringstream words(env["requiredSystemFeatures"].get<std::string>());
    for (std::string w; words >> w;) out.push_back(w);
  } else if (env.contains("__json") && env["__json"].is_string()) {
    json attrs = json::parse(env["__json"].get<std::string>(), nullptr, false);
    if (attrs.is_object() && attrs.contains("requiredSystemFeatures") && attrs["requiredSystemFeatures"].is_array()) {
      for (const auto& f : attrs["requiredSystemFeatures"]) {
        if (!f.is_string() || f.get<std::string>().empty()) continue;
        // Kept one per line in the state store: no whitespace or control characters.
        auto name = f.get<std::string>();
        for (char& c : name) {
          if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) c = '_';
        }
        out.push_back(std::move(name));
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// `text` with a store URL's credentials hidden, whether nix quotes the
// whole URL or only its part before the query ("?secret-key=...").
std::string hide_store_url(std::string text, const std::string& store_url) {
  if (store_url.empty()) return text;
  text = text::hide_url(std::move(text), store_url);
  return text::hide_url(std::move(text), store_url.substr(0, store_url.find('?')));
}

// A build's log: nix's internal-json stderr translated (nix_log.hpp) and
// streamed to `on_log` with its colours, and its end kept as plain text
// for reading nix's errors from.
class BuildLog {
 public:
  explicit BuildLog(std::function<void(std::string_view)> on_log)
      : on_log_(std::move(on_log)), translator_([this](std::string_view s) { keep(s); }) {}
  BuildLog(const BuildLog&) = delete;
  BuildLog& operator=(const BuildLog&) = delete;

  void feed(std::string_view chunk) { translator_.feed(chunk); }
  // Flushes the log; the text `nix build -L` would have printed to a pipe
  // (no escape sequences), at most its last kKeep bytes from a line start.
  std::string finish() {
    translator_.finish();
    if (tail_.size() > kKeep) cut(tail_.size() - kKeep);
    return strip_ansi(tail_);
  }

 private:
  static constexpr std::size_t kKeep = 256 * 1024;

  void keep(std::string_view s) {
    if (on_log_) on_log_(s);
    tail_.append(s);
    if (tail_.size() > 2 * kKeep) cut(tail_.size() - kKeep);
  }
  // Drops the first `n` bytes and the rest of the line they end in.
  void cut(std::size_t n) {
    auto nl = tail_.find('\n', n);
    tail_.erase(0, nl == std::string::npos ? tail_.size() : nl + 1);
  }

  std::function<void(std::string_view)> on_log_;
  NixLogTranslator translator_;
  std::string tail_;
};

// The derivation in nix's "builder for '<drv>' failed ..." line; "" if none.
std::string failed_builder(const std::string& summary) {
  const std::string lead = "builder for '";
  const auto at = summary.find(lead);
  if (at == std::string::npos) return "";
  const auto end = summary.find('\'', at + lead.size());
  if (end == std::string::npos) return "";
  auto drv = summary.substr(at + lead.size(), end - at - lead.size());
  return text::ends_with(drv, ".drv") ? drv : "";
}

}  // namespace

std::optional<std::string> infrastructure_failure(const ProcessResult& r) {
  // nix killed from outside (the kernel's OOM killer, an operator).
  if (r.term_signal != 0) return "nix " + r.describe();
  static const char* const kPatterns[] = {
      "cannot connect to socket",     // the nix daemon is down
      "cannot connect to daemon",
      "No space left on device",      // disk full
      "Disk quota exceeded",
      "unable to start any build",    // no local slots and no remote builder
      "is required to build",         // this machine lacks the system or features
      "is not a valid store path",    // the derivation is not in this builder's store
      "Cannot allocate memory",
      "Too many open files",
      "unable to fork",
      "Resource temporarily unavailable",
      "error: opening lock file",
      "error: cannot open connection to remote store",
      "error: failed to start SSH connection",
      "database disk image is malformed",
  };
  for (const auto& line : text::split(r.err, '\n')) {
    for (const char* p : kPatterns) {
      if (line.find(p) != std::string::npos) return text::trim(line);
    }
  }
  return std::nullopt;
}

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
  return detail::pool_eval(runner_, {options_.nix, options_.eval_workers, options_.eval_max_memory_mib}, req);
}

Result<DerivationGraph> CliNixRunner::derivation_graph(const std::vector<std::string>& drvs) {
  DerivationGraph graph;
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
      if (graph.count(drv) || !info.is_object()) continue;
      auto& d = graph[drv];
      if (info.contains("inputDrvs") && info["inputDrvs"].is_object()) {
        for (const auto& [in, _] : info["inputDrvs"].items()) d.inputs.push_back(in);
      }
      d.required_features = required_features(info);
    }
  }
  return graph;
}

Result<std::vector<std::string>> CliNixRunner::invalid_paths(const std::vector<std::string>& paths) {
  return invalid_in("", paths);
}

Result<std::vector<std::string>> CliNixRunner::cached_paths(const std::string& store_url, const std::vector<std::string>& paths) {
  auto invalid = invalid_in(store_url, paths);
  if (!invalid) return fail(invalid.error());
  std::set<std::string> missing(invalid->begin(), invalid->end());
  std::vector<std::string> out;
  for (const auto& p : paths) {
    if (!missing.count(p)) out.push_back(p);
  }
  return out;
}

Result<std::vector<std::string>> CliNixRunner::invalid_in(const std::string& store_url, const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& batch : argv_batches(paths)) {
    std::vector<std::string> argv = {options_.nix_store};
    if (!store_url.empty()) argv.insert(argv.end(), {"--store", store_url});
    argv.insert(argv.end(), {"--check-validity", "--print-invalid"});
    argv.insert(argv.end(), batch.begin(), batch.end());
    auto r = run({.argv = argv, .timeout = options_.query_timeout});
    if (!r) return fail(r.error());
    if (!r->ok()) {
      return fail(Error::transient(hide_store_url("nix-store --check-validity" + (store_url.empty() ? std::string() : " on " + store_url) +
                                                      " failed: " + failure_text(*r, "nix-store --check-validity", options_.query_timeout),
                                                  store_url)));
    }
    for (const auto& line : text::split(r->out, '\n')) {
      if (!line.empty()) out.push_back(line);
    }
  }
  return out;
}

Result<BuildResult> CliNixRunner::build(const BuildRequest& req) {
  // Nix 2.8 builds every output of a .drv path given as an installable.
  // nix writing to a pipe strips the builders' colours from its plain log
  // formats; its internal-json log keeps them (BuildLog translates it).
  std::vector<std::string> argv = {options_.nix, "build", "--no-link", "--json", "-L", "--log-format", "internal-json"};
  if (req.max_silent.count() > 0) argv.insert(argv.end(), {"--max-silent-time", seconds(req.max_silent)});
  if (req.timeout.count() > 0) argv.insert(argv.end(), {"--timeout", seconds(req.timeout)});
  if (options_.builders) argv.insert(argv.end(), {"--builders", *options_.builders});
  if (options_.max_jobs) argv.insert(argv.end(), {"--max-jobs", std::to_string(*options_.max_jobs)});
  argv.push_back(req.drv_path);
  BuildLog log(req.on_log);
  ProcessSpec spec{.argv = argv, .on_stderr = [&log](std::string_view s) { log.feed(s); }, .cancel = req.cancel, .on_tick = req.on_tick};
  // Backstops in case nix itself hangs: a little past nix's own limits.
  if (req.timeout.count() > 0) spec.timeout = req.timeout + options_.build_grace;
  if (req.max_silent.count() > 0) spec.silence_timeout = req.max_silent + options_.build_grace;
  spec.max_capture = 256 * 1024;
  auto r = run(spec);
  if (!r) return fail(r.error());
  // Everything below reads nix's errors as it printed them before JSON.
  r->err = log.finish();
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
  // Trouble of this machine or its configuration, not of the derivation:
  // the caller tries again (elsewhere), and it is never remembered as the
  // derivation's failure.
  if (!timed_out) {
    if (auto why = infrastructure_failure(*r)) return fail(Error::transient("nix could not build " + req.drv_path + ": " + *why));
  }
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
  b.failed_drv = failed_builder(summary);
  return b;
}

Result<void> CliNixRunner::copy_to(const std::string& store_url, const std::vector<std::string>& paths) {
  if (paths.empty()) return {};
  std::vector<std::string> argv = {options_.nix, "copy", "--to", store_url};
  argv.insert(argv.end(), paths.begin(), paths.end());
  auto r = run({.argv = argv, .timeout = options_.copy_timeout});
  if (!r) return fail(r.error());
  if (!r->ok()) {
    return fail(Error::transient(hide_store_url("nix copy to " + store_url + " failed: " + failure_text(*r, "nix copy", options_.copy_timeout),
                                                store_url)));
  }
  return {};
}

Result<std::string> CliNixRunner::eval_json(const std::string& flake_ref, const std::vector<std::string>& attr_path,
                                            const std::string& apply, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {options_.nix, "eval", "--json"};
  auto target = detail::flake_output_expr(flake_ref, attr_path);
  argv.insert(argv.end(), target.begin(), target.end());
  argv.insert(argv.end(), {"--apply", apply});
  auto r = run({.argv = std::move(argv), .timeout = timeout});
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

Result<std::vector<std::string>> CliNixRunner::system_features() {
  auto r = run({.argv = {options_.nix, "show-config", "--json"}, .timeout = options_.query_timeout});
  if (!r) return fail(r.error());
  if (!r->ok()) return fail(Error::transient("nix show-config failed: " + failure_text(*r, "nix show-config", options_.query_timeout)));
  json j = json::parse(r->out, nullptr, false);
  if (!j.is_object() || !j.contains("system-features") || !j["system-features"].is_object() ||
      !j["system-features"].contains("value") || !j["system-features"]["value"].is_array()) {
    return fail(Error::transient("nix show-config printed no system-features"));
  }
  std::vector<std::string> out;
  for (const auto& f : j["system-features"]["value"]) {
    if (f.is_string()) out.push_back(f.get<std::string>());
  }
  return out;
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
