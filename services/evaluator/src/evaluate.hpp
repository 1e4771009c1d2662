#pragma once
// The evaluator's handler: a change event becomes an eval with one job per
// attribute, dependency edges between jobs, and the first build requests.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "flurry/bus/bus.hpp"
#include "flurry/core/clock.hpp"
#include "flurry/git/git.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/nix/nix_runner.hpp"
#include "flurry/repo/branch_rules.hpp"
#include "flurry/state/catalog.hpp"
#include "flurry/state/store.hpp"
#include "trust.hpp"

namespace flurry::evaluator {

struct EvaluatorConfig {
  std::vector<std::string> systems = {"x86_64-linux"};
  // Systems some builder serves; a job for any other system ends
  // unsupported_system instead of waiting forever. Empty = `systems`.
  std::vector<std::string> build_systems;
  // The system features (requiredSystemFeatures) builders of
  // build_systems offer for certain. Builders announce theirs too; a job
  // that needs features no builder of its system offers ends
  // unsupported_system.
  std::vector<std::string> build_features;
  std::string attribute = "checks";  // evaluates <attribute>.<system> for each system
  std::string work_dir = "/var/lib/flurry/evaluator";  // mirrors under work_dir/repos/
  bool show_trace = false;
  std::string public_url;  // web base URL for status links; empty = none
  // Binary caches (store URLs) builders substitute from: a job whose
  // outputs they hold is "cached" rather than "notBuilt".
  std::vector<std::string> caches;
  // Failed-build cache default for projects whose config does not set
  // cache_failed_builds: a derivation that failed before ends
  // cached_failure instead of building again.
  bool cache_failed_builds = false;
  std::chrono::milliseconds eval_timeout{std::chrono::minutes(10)};  // one system's whole evaluation
  std::chrono::milliseconds attr_timeout{std::chrono::minutes(5)};   // one attribute of it
  // Walk every nested attribute set (checks-style trees); false: only sets
  // with recurseForDerivations = true.
  bool force_recurse = true;
  // Which pull requests wait for a maintainer's approval ([trust]).
  TrustConfig trust;
  // Which branch pushes build besides the default branch's ([branches.*]).
  std::vector<repo::BranchRule> branch_rules;
  // The consumer's max_deliver: on that delivery, infrastructure failures
  // fail the eval instead of asking for another try.
  int max_deliver = 5;
};

// Who may write to a repository of a forge; null (or no function): the
// forge's API is not configured.
using PermissionsFor = std::function<forge::Permissions*(const std::string& forge)>;

// The header git fetches a repository's URL with (a private repository's
// credentials), "" for none; null function: none ever.
using CloneAuthFor = std::function<Result<std::string>(const msg::Repo& repo, const std::string& url)>;

struct EvalPorts {
  bus::Bus& bus;
  state::StateStore& state;
  nix::NixRunner& nix;
  git::Git& git;
  Clock& clock;
  PermissionsFor permissions = {};
  CloneAuthFor clone_auth = {};
  // Where evals are filed for the web UI's listings; none: not filed.
  state::Catalog* catalog = nullptr;
};

// What happened, for the shell's logs and metrics.
struct EvalOutcome {
  bus::Disposition disposition;
  std::string eval_id;
  // "evaluated", "eval_failed", "replayed", "superseded", "cancelled",
  // "retry", "ignored" (a branch no rule selects, a re-run of nothing, an
  // approval that does not count, a repository project discovery did not
  // find), "closed" (a pull request's close
  // cancelled its eval), "awaiting_approval" (a pull request from a fork
  // waits for a maintainer) or "approved" (an approval with nothing
  // waiting)
  std::string result;
  std::string error;   // why the eval failed, or why it will be retried
  int jobs = 0;
  int eval_errors = 0;  // jobs that failed to evaluate
  int skipped = 0;      // jobs whose outputs were already built
  int ready = 0;        // build requests sent
  int batches = 0;      // batches of jobs recorded while evaluating
  std::vector<std::string> warnings;  // nix's evaluation warnings
};

// Handles one delivery of a change event. Safe to run again for the same
// change: the eval id derives from the change id, and an eval that already
// has its jobs is replayed (the same messages republished, deduplicated by
// msg id) rather than evaluated again. Acks only after every effect is
// stored and published.
EvalOutcome handle_change(const msg::ChangeEvent& change, std::uint64_t num_delivered, EvalPorts ports,
                          const EvaluatorConfig& config);

// Where the mirror of a repository lives under work_dir; every component
// comes from hostile input and is made file-name safe.
std::string mirror_dir(const std::string& work_dir, const msg::Repo& repo);

// Job ids by derivation, of the batches an eval has recorded so far.
using JobIndex = std::map<std::string, std::vector<std::string>>;

// What the stores hold of the evaluated outputs.
struct StoreFacts {
  std::set<std::string> invalid;  // output paths not valid in the local store
  std::set<std::string> cached;   // output paths a configured binary cache holds
  std::map<std::string, state::FailedBuild> failed;  // derivations that failed before (failed-build cache on)
};

// Who builds what: the configured systems and features, and the builders
// that announced themselves.
struct Builders {
  std::set<std::string> systems;   // configured (build_systems)
  std::set<std::string> features;  // offered for them (build_features)
  std::vector<state::BuilderInfo> announced;
  // Why no builder takes a job for `system` needing `features`; empty when
  // one does, or when nothing is known (no systems, no builders).
  std::string why_not(const std::string& system, const std::vector<std::string>& features) const;
};

// Pure planning: jobs from evaluated attributes. `graph` maps each .drv to
// its input .drvs. A job whose outputs are all valid locally is skipped
// (cache status "local"); one whose outputs a binary cache holds is
// "cached", any other "notBuilt". A job to build whose derivation is in
// `failed` ends cached_failure, naming the first failure. Job B
// depends on job A when A's derivation is in B's closure; only the nearest
// jobs are kept as edges (the search stops at a job's derivation). With
// `earlier`, jobs of earlier batches count too (an edge to one of them),
// and this batch's jobs are added to it. A job of a later batch is not
// waited for: building the earlier job builds that derivation anyway. Jobs
// carry their derivation's requiredSystemFeatures; one that no builder
// can take (system or features) ends unsupported_system.
std::vector<state::JobSpec> plan_jobs(const std::string& eval_id, const std::vector<nix::AttrResult>& attrs,
                                      const nix::DerivationGraph& graph, const StoreFacts& store,
                                      const Builders& builders = {}, JobIndex* earlier = nullptr);

}  // namespace flurry::evaluator
