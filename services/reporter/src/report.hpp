#pragma once
// The reporter's handler: a status event becomes a forge API call, in order
// per context (an older status never overwrites a newer one).
#include <string>

#include "flurry/bus/bus.hpp"
#include "flurry/forge/github_status.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/state/store.hpp"

namespace flurry::reporter {

struct ReportPorts {
  state::StateStore& state;
  forge::GitHubStatusClient* github;  // null when no GitHub client is configured
};

struct ReportOutcome {
  bus::Disposition disposition;
  std::string result;  // posted, stale, skipped, rejected, retry
  std::string detail;
};

// The per-context ordering key: forge/owner/repo/sha/context.
std::string context_key(const msg::StatusEvent& s);

ReportOutcome handle_status(const msg::StatusEvent& status, std::uint64_t num_delivered, ReportPorts ports);

}  // namespace flurry::reporter
