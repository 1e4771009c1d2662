#pragma once
// The effects-runner's handler: after a successful default-branch eval,
// evaluates the flake's `herculesCI` output the way hercules-ci-effects
// flakes expect and runs each effect's builder in a bubblewrap sandbox
// with the repository's secrets.
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "flurry/bus/bus.hpp"
#include "flurry/core/clock.hpp"
#include "flurry/core/process.hpp"
#include "flurry/git/git.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/nix/nix_runner.hpp"
#include "flurry/state/store.hpp"

namespace flurry::effects {

struct EffectsConfig {
  std::string work_dir = "/var/lib/flurry/effects";
  bool sandbox = true;
  std::string bwrap = "bwrap";
  std::vector<std::string> extra_sandbox_paths;  // bound read-only when they exist
  std::chrono::milliseconds timeout{std::chrono::minutes(30)};
  std::map<std::string, std::string> secrets;  // "github:owner/repo" or "github:owner/*" -> JSON file
  std::string public_url;
  std::size_t log_cap_bytes = 1024 * 1024;
};

struct EffectsPorts {
  state::StateStore& state;
  bus::Bus& bus;
  nix::NixRunner& nix;
  git::Git& git;
  ProcessRunner& processes;
  Clock& clock;
  // The header git fetches a (private) repository's URL with; "" or no
  // function: none.
  std::function<Result<std::string>(const msg::Repo&, const std::string& url)> clone_auth = {};
};

struct EffectsOutcome {
  bus::Disposition disposition;
  std::string result;  // not_allowed, none, succeeded, failed, replayed, retry
  int effects = 0;
  int failed = 0;
};

// Effects run only for a successful eval of a branch push: to the default
// branch, or to a branch matching `extra_branches` (the default branch's
// effects_branches globs); or of a pull request's ref when `pull_requests`
// (the default branch's effects_on_pull_requests). Never for tags.
bool effects_allowed(const msg::EvalFinished& eval, const std::vector<std::string>& extra_branches = {},
                     bool pull_requests = false);

// The `--apply` expression listing onPush effects as {job: {effect: drvPath}}
// for `herculesCI` called with `args_json` (embedded as a Nix string, never
// spliced as code).
std::string list_effects_expression(const std::string& args_json);
// hercules-ci-effects' argument set: primaryRepo and the same keys at top level.
std::string herculesci_args_json(const msg::EvalFinished& eval);

// The secrets file for a repository: exact "forge:owner/repo" wins over
// "forge:owner/*"; empty if none.
std::string secrets_file_for(const EffectsConfig& cfg, const msg::Repo& repo);

// bubblewrap argv running `drv`'s builder with its environment, outputs
// redirected under `build_dir`, secrets at /run/secrets.json.
std::vector<std::string> sandbox_argv(const EffectsConfig& cfg, const nix::Derivation& drv, const std::string& build_dir,
                                      const std::string& secrets_path);

EffectsOutcome handle_eval_finished(const msg::EvalFinished& eval, std::uint64_t num_delivered, EffectsPorts ports,
                                    const EffectsConfig& cfg);

}  // namespace flurry::effects
