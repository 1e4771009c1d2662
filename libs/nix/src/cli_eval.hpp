#pragma once
// Private to flurry_nix_cli: the evaluation worker pool behind
// CliNixRunner::eval_attrs, and helpers both files use.
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "flurry/core/process.hpp"
#include "flurry/nix/nix_runner.hpp"

namespace flurry::nix::detail {

struct PoolOptions {
  std::string nix = "nix";
  int workers = 2;
  std::size_t max_memory_mib = 0;  // per process; 0 = no ceiling
};

// Evaluates req.attr_path's attributes with `workers` nix processes at a
// time (see libs/nix/README.md, "Evaluation worker pool").
Result<EvalResult> pool_eval(ProcessRunner& runner, const PoolOptions& options, const EvalRequest& req);

// `nix eval` arguments for the flake output at `attr_path` exactly:
// {"--expr", <expression>}. Not an installable: Nix 2.8 looks `ref#a.b` up
// as packages.<system>.a.b and legacyPackages.<system>.a.b first (a flake
// could shadow its checks, and a large legacyPackages would be evaluated
// by every process). A missing attribute fails with "flake '<ref>' does
// not provide attribute '<path>'", as an installable would.
std::vector<std::string> flake_output_expr(const std::string& flake_ref, const std::vector<std::string>& attr_path);
// Whole seconds, rounded up, at least 1.
std::string seconds(std::chrono::milliseconds d);
// Why a nix process failed, as a user should read it.
std::string failure_text(const ProcessResult& r, const std::string& what, std::chrono::milliseconds timeout);
// A "warning:" / "evaluation warning:" line worth showing (not the
// dirty-tree note, nor nix retrying a busy store database).
bool is_warning(const std::string& line);

}  // namespace flurry::nix::detail
