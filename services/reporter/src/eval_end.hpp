#pragma once
// What flurry/eval says once its eval has ended: how many jobs there were,
// how many did not succeed, and what changed since the eval it is compared
// with ("212 jobs, 3 not successful; 3 new failures, 1 fixed"), so the
// forge shows on the commit whether a push broke something.
#include <string>

#include "flurry/bus/bus.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/state/catalog.hpp"
#include "flurry/state/store.hpp"
#include "report.hpp"

namespace flurry::reporter {

struct EvalEndPorts {
  state::StateStore& state;
  state::Catalog& catalog;
  bus::Bus& bus;
};

// The final flurry/eval status of an eval that succeeded or failed after
// its jobs ran (a cancelled eval keeps the cancel's status, one that
// failed to evaluate its failure), ordered after every earlier flurry/eval
// status. Safe to repeat: the status carries the same id.
ReportOutcome handle_eval_end(const msg::EvalFinished& finished, std::uint64_t num_delivered, EvalEndPorts ports,
                              const std::string& public_url);

// The description: "<n> jobs[, <k> not successful][; <what changed>]".
std::string end_description(int jobs_total, int jobs_failed, const std::string& changed);

}  // namespace flurry::reporter
