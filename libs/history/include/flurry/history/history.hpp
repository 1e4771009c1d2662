#pragma once
// An eval's place in its history: the eval it is compared with, and what
// changed between the two (Hydra's eval comparison, per attribute). Reads
// the state store and the catalog; changes nothing. Used by the web UI's
// API and by the reporter, which says on flurry/eval what changed.
#include <optional>
#include <string>
#include <vector>

#include "flurry/core/error.hpp"
#include "flurry/state/catalog.hpp"
#include "flurry/state/store.hpp"

namespace flurry::history {

struct Ports {
  state::StateStore& state;
  state::Catalog& catalog;
};

// The eval `eval` is compared with: for a pull request, the newest
// finished eval of its base branch; otherwise the newest finished eval of
// the same ref created before it. nullopt when there is none.
Result<std::optional<state::EvalRecord>> base_of(Ports ports, const state::EvalRecord& eval);

// One attribute's two sides; ids empty where a side has no job.
struct Change {
  std::string attr;
  std::string job_id;
  msg::JobState state = msg::JobState::kQueued;
  std::string base_job_id;
  msg::JobState base_state = msg::JobState::kQueued;
  bool operator==(const Change&) const = default;
};

struct Comparison {
  std::optional<state::EvalRecord> base;
  std::vector<Change> newly_failing;  // not successful now, successful in the base
  std::vector<Change> fixed;          // successful now, not successful in the base
  std::vector<Change> still_failing;  // not successful in both
  std::vector<Change> added;          // no job of that attribute in the base (any state)
  std::vector<Change> removed;        // in the base only
  // Attributes still queued or building on either side are in no list
  // but `added`/`removed`: they have not changed yet.
};

// Compares `eval` with its base, attribute by attribute, in attribute
// order. Without a base everything is `added`.
Result<Comparison> compare(Ports ports, const state::EvalRecord& eval);

// "3 new failures, 1 fixed" (empty when nothing changed or there is no
// base): what flurry/eval's description adds at the eval's end.
std::string summary(const Comparison& c);

}  // namespace flurry::history
