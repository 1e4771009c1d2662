#pragma once
// The evaluator's handler: a change event becomes an eval with one job per
// attribute, dependency edges between jobs, and the first build requests.
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "flurry/bus/bus.hpp"
#include "flurry/core/clock.hpp"
#include "flurry/git/git.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/nix/nix_runner.hpp"
#include "flurry/state/store.hpp"

namespace flurry::evaluator {

struct EvaluatorConfig {
  std::vector<std::string> systems = {"x86_64-linux"};
  std::string attribute = "checks";
  std::string work_dir = "/var/lib/flurry/evaluator";
  bool show_trace = false;
  std::string public_url;
  std::chrono::milliseconds eval_timeout{std::chrono::minutes(10)};
};

struct EvalPorts {
  bus::Bus& bus;
  state::StateStore& state;
  nix::NixRunner& nix;
  git::Git& git;
  Clock& clock;
};

struct Delivery {
  std::uint64_t num_delivered = 1;
  int max_deliver = 5;
  bool last() const { return num_delivered >= static_cast<std::uint64_t>(max_deliver); }
};

struct EvalOutcome {
  bus::Disposition disposition;
  std::string eval_id;
  std::string result;  // evaluated, eval_failed, replayed, retry
  int jobs = 0;
  int eval_errors = 0;
  std::vector<std::string> warnings;
};

// Safe to run again for the same change: the eval id derives from the
// change id, a finished evaluation is replayed (republished, deduplicated)
// rather than redone.
EvalOutcome handle_change(const msg::ChangeEvent& change, Delivery delivery, EvalPorts ports, const EvaluatorConfig& config);

// Where the mirror of a repository lives under work_dir; every component
// comes from hostile input and is made file-name safe.
std::string mirror_dir(const std::string& work_dir, const msg::Repo& repo);

// Pure planning: jobs from evaluated attributes. `graph` maps each .drv to
// its input .drvs; `invalid` lists output paths not yet in the store. Job B
// depends on job A when A's derivation is in B's closure; only the nearest
// jobs are kept as edges.
std::vector<state::JobSpec> plan_jobs(const std::string& eval_id, const std::vector<nix::AttrResult>& attrs,
                                      const std::map<std::string, std::vector<std::string>>& graph,
                                      const std::set<std::string>& invalid);

}  // namespace flurry::evaluator
