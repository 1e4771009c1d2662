#pragma once
// Evaluation through nix-eval-jobs when it is installed: its worker pool
// bounds memory (--max-memory-size per worker, workers replaced past it)
// and walks nested attribute sets. Every other NixRunner call goes to the
// wrapped runner.
#include <optional>
#include <string>

#include "flurry/core/process.hpp"
#include "flurry/nix/nix_runner.hpp"

namespace flurry::nix {

struct EvalJobsOptions {
  std::string binary = "nix-eval-jobs";
  int workers = 2;
  int max_memory_mib = 2048;  // per worker
};

class EvalJobsRunner final : public NixRunner {
 public:
  EvalJobsRunner(ProcessRunner& runner, NixRunner& rest, EvalJobsOptions options)
      : runner_(runner), rest_(rest), options_(std::move(options)) {}

  // Runs nix-eval-jobs --flake <ref>#<path> (--force-recurse unless the
  // request honours recurseForDerivations) and maps its JSON lines (attr,
  // attrPath, drvPath, name, system, outputs, or error) to AttrResults,
  // streamed to on_attrs as they arrive when it is set.
  Result<EvalResult> eval_attrs(const EvalRequest& req) override;

  Result<DerivationGraph> derivation_graph(const std::vector<std::string>& drvs) override {
    return rest_.derivation_graph(drvs);
  }
  Result<std::vector<std::string>> invalid_paths(const std::vector<std::string>& paths) override { return rest_.invalid_paths(paths); }
  Result<std::vector<std::string>> cached_paths(const std::string& store_url, const std::vector<std::string>& paths) override {
    return rest_.cached_paths(store_url, paths);
  }
  Result<BuildResult> build(const BuildRequest& req) override { return rest_.build(req); }
  Result<void> copy_to(const std::string& store_url, const std::vector<std::string>& paths) override {
    return rest_.copy_to(store_url, paths);
  }
  Result<std::string> eval_json(const std::string& flake_ref, const std::vector<std::string>& attr_path, const std::string& apply,
                                std::chrono::milliseconds timeout) override {
    return rest_.eval_json(flake_ref, attr_path, apply, timeout);
  }
  Result<Derivation> show_derivation(const std::string& drv_path) override { return rest_.show_derivation(drv_path); }
  Result<void> realise(const std::vector<std::string>& drv_paths) override { return rest_.realise(drv_paths); }

 private:
  ProcessRunner& runner_;
  NixRunner& rest_;
  EvalJobsOptions options_;
};

// The full path of `name` on $PATH (or `name` itself when it contains a
// slash and exists), if there is one.
std::optional<std::string> find_on_path(const std::string& name);

// Parses nix-eval-jobs' output (one JSON object per line) into results
// under `prefix`; lines that are not JSON objects are skipped.
EvalResult parse_eval_jobs_output(const std::string& output, const std::vector<std::string>& prefix);
// One line of it; nothing for a line that is not a JSON object with a path.
std::optional<AttrResult> parse_eval_jobs_line(const std::string& line, const std::vector<std::string>& prefix);

}  // namespace flurry::nix
