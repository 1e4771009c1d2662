#pragma once
// The NixRunner port over the nix CLI (Nix 2.8 and later), run through the
// process runner. nix inherits NIX_CONFIG and the rest of the environment.
#include <chrono>
#include <optional>
#include <string>

#include "flurry/core/process.hpp"
#include "flurry/nix/nix_runner.hpp"

namespace flurry::nix {

struct CliOptions {
  // Evaluation worker pool: nix processes at once, each sharing out the
  // attribute set, and each one's memory ceiling (replaced past it).
  int eval_workers = 2;
  std::size_t eval_max_memory_mib = 2048;  // 0 = no ceiling
  std::string nix = "nix";
  std::string nix_store = "nix-store";
  // Store queries (show-derivation, check-validity).
  std::chrono::milliseconds query_timeout{std::chrono::minutes(2)};
  // nix copy and nix-store --realise.
  std::chrono::milliseconds copy_timeout{std::chrono::hours(1)};
  // How far past nix's own --timeout / --max-silent-time the process-level
  // backstop kills a build whose nix does not stop by itself.
  std::chrono::milliseconds build_grace{std::chrono::seconds(30)};
  // Remote builds through Nix's own machinery: `builders` is Nix's
  // machine specification (e.g. "ssh-ng://mac aarch64-darwin - 4", or
  // "@/etc/nix/machines"), passed as `--builders`; `max_jobs` is nix's
  // --max-jobs (0: build only on remote builders). Unset: nix's own config.
  std::optional<std::string> builders;
  std::optional<int> max_jobs;
};

class CliNixRunner final : public NixRunner {
 public:
  explicit CliNixRunner(ProcessRunner& runner, CliOptions options = {}) : runner_(runner), options_(std::move(options)) {}

  Result<EvalResult> eval_attrs(const EvalRequest& req) override;
  Result<DerivationGraph> derivation_graph(const std::vector<std::string>& drvs) override;
  Result<std::vector<std::string>> invalid_paths(const std::vector<std::string>& paths) override;
  // nix-store --store <url> --check-validity --print-invalid: the rest.
  Result<std::vector<std::string>> cached_paths(const std::string& store_url, const std::vector<std::string>& paths) override;
  Result<BuildResult> build(const BuildRequest& req) override;
  Result<void> copy_to(const std::string& store_url, const std::vector<std::string>& paths) override;
  Result<std::string> eval_json(const std::string& flake_ref, const std::vector<std::string>& attr_path,
                                const std::string& apply, std::chrono::milliseconds timeout) override;
  Result<Derivation> show_derivation(const std::string& drv_path) override;
  Result<void> realise(const std::vector<std::string>& drv_paths) override;
  // The system features this host's nix offers (its `system-features`
  // setting, from `nix show-config --json`).
  Result<std::vector<std::string>> system_features();

 private:
  Result<ProcessResult> run(ProcessSpec spec);
  // Which of `paths` are not valid in the store at `store_url` ("": local).
  Result<std::vector<std::string>> invalid_in(const std::string& store_url, const std::vector<std::string>& paths);
  ProcessRunner& runner_;
  CliOptions options_;
};

// The line of a failed `nix build` that shows the machine or its setup, not
// the derivation, is at fault (daemon unreachable, disk full, no slot or
// feature to build it, nix killed by a signal); nullopt for a real build
// failure.
std::optional<std::string> infrastructure_failure(const ProcessResult& r);

// nix's error as a user should read it: from its first "error:" line on
// (warnings and trace output before it dropped), without the
// "(use '--show-trace' ...)" hint and dirty-tree warnings, end trimmed.
std::string clean_nix_error(const std::string& stderr_text);

}  // namespace flurry::nix
