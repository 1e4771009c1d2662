#include "flurry/nix/eval_jobs_runner.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "flurry/core/text.hpp"
#include "cli_eval.hpp"
#include "flurry/nix/cli_nix_runner.hpp"

namespace flurry::nix {
namespace {
using json = nlohmann::json;
}  // namespace

std::optional<std::string> find_on_path(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return name;
    return std::nullopt;
  }
  const char* path = std::getenv("PATH");
  for (const auto& dir : text::split(path ? path : "", ':')) {
    if (dir.empty()) continue;
    auto candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

std::optional<AttrResult> parse_eval_jobs_line(const std::string& line, const std::vector<std::string>& prefix) {
  if (line.empty()) return std::nullopt;
  json j = json::parse(line, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  AttrResult a;
  a.path = prefix;
  // attrPath keeps names with dots exact; "attr" is the dotted fallback.
  if (j.contains("attrPath") && j["attrPath"].is_array()) {
    for (const auto& p : j["attrPath"]) {
      if (p.is_string()) a.path.push_back(p.get<std::string>());
    }
  } else if (j.contains("attr") && j["attr"].is_string()) {
    a.path.push_back(j["attr"].get<std::string>());
  } else {
    return std::nullopt;
  }
  if (j.contains("error") && j["error"].is_string()) {
    a.error = clean_nix_error(j["error"].get<std::string>());
    if (a.error.empty()) a.error = "evaluation failed";
  } else if (j.contains("drvPath") && j["drvPath"].is_string()) {
    a.drv_path = j["drvPath"].get<std::string>();
    a.name = j.value("name", "");
    a.system = j.value("system", "");
    if (j.contains("outputs") && j["outputs"].is_object()) {
      for (const auto& [k, v] : j["outputs"].items()) {
        // Content-addressed or impure outputs have no path yet.
        a.outputs[k] = v.is_string() ? v.get<std::string>() : std::string();
      }
    }
  } else {
    a.error = "nix-eval-jobs reported neither a derivation nor an error";
  }
  return a;
}

EvalResult parse_eval_jobs_output(const std::string& output, const std::vector<std::string>& prefix) {
  EvalResult out;
  for (const auto& line : text::split(output, '\n')) {
    if (auto a = parse_eval_jobs_line(line, prefix)) out.attrs.push_back(std::move(*a));
  }
  return out;
}

Result<EvalResult> EvalJobsRunner::eval_attrs(const EvalRequest& req) {
  std::vector<std::string> argv = {options_.binary, "--workers", std::to_string(std::max(1, options_.workers)),
                                   "--max-memory-size", std::to_string(std::max(64, options_.max_memory_mib)),
                                   "--option", "eval-cache", "false"};
  if (req.force_recurse) argv.push_back("--force-recurse");
  if (req.show_trace) argv.push_back("--show-trace");
  argv.insert(argv.end(), {"--flake", req.flake_ref + "#" + render_attr_path(req.attr_path)});

  // Its JSON lines are read as they arrive and handed to on_attrs per chunk
  // (streaming), or kept.
  EvalResult result;
  std::size_t seen = 0;
  std::string partial;
  std::atomic<bool> cancel{false};
  std::optional<Error> consumer_error;
  auto on_stdout = [&](std::string_view chunk) {
    partial.append(chunk);
    std::vector<AttrResult> batch;
    std::size_t start = 0;
    for (std::size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (auto a = parse_eval_jobs_line(partial.substr(start, nl - start), req.attr_path)) batch.push_back(std::move(*a));
    }
    partial.erase(0, start);
    seen += batch.size();
    if (batch.empty() || cancel) return;
    if (!req.on_attrs) {
      for (auto& a : batch) result.attrs.push_back(std::move(a));
    } else if (auto r = req.on_attrs(std::move(batch)); !r) {
      consumer_error = r.error();
      cancel = true;
    }
  };
  ProcessSpec spec{.argv = argv, .timeout = req.timeout, .max_capture = 4 * 1024 * 1024, .on_stdout = on_stdout, .cancel = &cancel};
  auto r = runner_.run(spec);
  if (!r) return fail(Error::transient(r.error().message));
  on_stdout("\n");
  if (consumer_error) return fail(*consumer_error);
  if (r->timed_out) {
    return fail(Error::rejected("evaluation of " + render_attr_path(req.attr_path) + " timed out after " + detail::seconds(req.timeout) + "s"));
  }
  for (const auto& line : text::split(r->err, '\n')) {
    if (detail::is_warning(line) && std::find(result.warnings.begin(), result.warnings.end(), line) == result.warnings.end()) {
      result.warnings.push_back(line);
    }
  }
  if (!r->ok() && seen == 0) {
    auto err = clean_nix_error(r->err);
    return fail(Error::rejected(err.empty() ? "nix-eval-jobs " + r->describe() : err));
  }
  if (!r->ok()) {
    // It died part way (e.g. a worker was killed): what was evaluated stands,
    // but the set is incomplete; say so rather than lose attributes silently.
    return fail(Error::transient("nix-eval-jobs " + r->describe() + " after " + std::to_string(seen) +
                                 " attributes: " + clean_nix_error(r->err)));
  }
  return result;
}

}  // namespace flurry::nix
