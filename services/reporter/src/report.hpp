#pragma once
// The reporter's handler: a status event becomes a forge API call, in order
// per context (an older status never overwrites a newer one).
#include <functional>
#include <string>

#include "flurry/bus/bus.hpp"
#include "flurry/forge/status_poster.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/state/store.hpp"

namespace flurry::reporter {

// The poster of a forge ("github", "gitea", "gitlab"); null when that forge
// is not configured.
using PosterFor = std::function<forge::StatusPoster*(const std::string& forge)>;

struct ReportPorts {
  state::StateStore& state;
  PosterFor posters;
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
