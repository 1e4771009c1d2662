#pragma once
// The Nix port. Production: CliNixRunner (cli_nix_runner.hpp) runs the nix
// CLI through the process runner. Tests: FakeNixRunner
// (testing/fake_nix_runner.hpp).
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "flurry/core/error.hpp"

namespace flurry::nix {

// One attribute of the evaluated set.
struct AttrResult {
  std::vector<std::string> path;  // exact attribute path from the flake root, e.g. {"checks","x86_64-linux","a.b"}
  std::string drv_path;           // empty when error is set
  std::string name;               // derivation name
  std::string system;
  std::map<std::string, std::string> outputs;  // output name -> store path
  std::string error;              // nix's error text when the attribute failed to evaluate
  bool ok() const { return error.empty(); }
};

// A derivation as far as scheduling needs it.
struct DrvNode {
  std::vector<std::string> inputs;             // the .drv files it takes as inputs
  std::vector<std::string> required_features;  // its requiredSystemFeatures
  bool operator==(const DrvNode&) const = default;
};
using DerivationGraph = std::map<std::string, DrvNode>;

struct EvalRequest {
  std::string flake_ref;               // e.g. "git+file:///m.git?ref=...&rev=..."
  std::vector<std::string> attr_path;  // the set whose attributes become jobs, e.g. {"checks","x86_64-linux"}
  bool show_trace = false;
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};  // the whole evaluation
  // One attribute of the set (with everything below it); past it, that
  // attribute fails as timed out and the others go on.
  std::chrono::milliseconds attr_timeout{std::chrono::minutes(5)};
  // Descend into every nested attribute set (checks-style trees); false:
  // only into sets with `recurseForDerivations = true`, others are skipped.
  bool force_recurse = true;
  // Streaming: when set, results are handed over as they are evaluated
  // (one call at a time, never concurrently) and EvalResult::attrs stays
  // empty. An error it returns stops the evaluation and is returned.
  std::function<Result<void>(std::vector<AttrResult>)> on_attrs;
  // After the first batch (at once), batches are handed over at intervals
  // starting at stream_interval and doubling up to stream_interval_max.
  std::chrono::milliseconds stream_interval{std::chrono::seconds(1)};
  std::chrono::milliseconds stream_interval_max{std::chrono::seconds(8)};
};

struct EvalResult {
  std::vector<AttrResult> attrs;
  std::vector<std::string> warnings;  // "evaluation warning:" lines
  int processes = 0;                  // evaluator processes started
  int memory_restarts = 0;            // processes replaced for passing the memory ceiling
  std::size_t peak_process_rss_bytes = 0;  // the largest sampled process (0: not sampled)
};

struct BuildRequest {
  std::string drv_path;
  std::chrono::milliseconds max_silent{0};  // 0 = none
  std::chrono::milliseconds timeout{0};     // 0 = none
  std::function<void(std::string_view)> on_log;  // build output as it arrives
  const std::atomic<bool>* cancel = nullptr;
  std::function<void()> on_tick;  // about every 100 ms while nix runs (ProcessSpec::on_tick)
};

struct BuildResult {
  enum class Outcome { kSucceeded, kFailed, kTimedOut, kCancelled };
  Outcome outcome = Outcome::kFailed;
  std::map<std::string, std::string> outputs;
  std::string error;  // nix's summary line(s) when not succeeded
  // The derivation whose builder failed, as nix names it ("builder for
  // '<drv>' failed"): the one built or one it needs.
  std::string failed_drv;
};

// What effects-runner needs to run a derivation's builder itself.
struct Derivation {
  std::string path;
  std::string builder;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::vector<std::string> input_drvs;
  std::vector<std::string> input_srcs;
  std::map<std::string, std::string> outputs;
  std::string system;
};

class NixRunner {
 public:
  virtual ~NixRunner() = default;
  // Evaluates each attribute directly under req.attr_path to a derivation.
  // One attribute's failure (throw, abort, type error, ...) is that
  // attribute's error; an error value means the set itself could not be
  // evaluated (bad flake, missing attribute path), with nix's text.
  virtual Result<EvalResult> eval_attrs(const EvalRequest& req) = 0;
  // The derivation graph below `drvs`: every .drv in their closures with
  // the .drv files it takes as inputs and the system features it requires.
  virtual Result<DerivationGraph> derivation_graph(const std::vector<std::string>& drvs) = 0;
  // Which of `paths` are not valid in the local store.
  virtual Result<std::vector<std::string>> invalid_paths(const std::vector<std::string>& paths) = 0;
  // Which of `paths` the binary cache (or other store) at `store_url` holds.
  // Here and in copy_to, an error's text never shows the URL's credentials.
  virtual Result<std::vector<std::string>> cached_paths(const std::string& store_url, const std::vector<std::string>& paths) = 0;
  // Builds one derivation. Build failures are results, not errors; an error
  // value means nix could not be run at all (retry elsewhere).
  virtual Result<BuildResult> build(const BuildRequest& req) = 0;
  // Copies store paths (and their closures) to a store URL.
  virtual Result<void> copy_to(const std::string& store_url, const std::vector<std::string>& paths) = 0;
  // `nix eval --json <flake_ref>#<attr> --apply <apply>`; returns the JSON text.
  virtual Result<std::string> eval_json(const std::string& flake_ref, const std::vector<std::string>& attr_path,
                                        const std::string& apply, std::chrono::milliseconds timeout) = 0;
  virtual Result<Derivation> show_derivation(const std::string& drv_path) = 0;
  // Realises derivations (e.g. an effect's inputs); error text on failure.
  virtual Result<void> realise(const std::vector<std::string>& drv_paths) = 0;
};

// Renders an attribute path as Nix attribute-path syntax: components
// joined by '.', each one that is not a plain identifier (or is a keyword)
// written as a Nix string literal (text::nix_string_literal). One line,
// injective, and usable as an installable fragment for names without '"'
// or '\'. Job attribute strings and status contexts use this form.
std::string render_attr_path(const std::vector<std::string>& path);

}  // namespace flurry::nix
