#pragma once
// Project discovery: which repositories of each forge are projects (a
// topic plus allow-lists, buildbot-nix's rule), kept in the state store's
// project registry for the evaluator to gate changes on; and, for Gitea
// and GitLab, the webhook each project needs to reach this ingest,
// created when missing and updated when its URL or secret changed. Runs
// at start, every interval, and when a forge says the repositories the
// account reaches changed. Pure logic over ports: the forge clients, the
// state store, a clock.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "flurry/core/clock.hpp"
#include "flurry/core/config.hpp"
#include "flurry/forge/discovery.hpp"
#include "flurry/state/store.hpp"

namespace flurry::ingest {

// [discovery]
struct DiscoveryConfig {
  std::chrono::milliseconds interval{std::chrono::hours(12)};
  // At most one refresh of a forge starts per lease window (of this
  // length) across all ingest instances: the first to claim the window.
  std::chrono::seconds lease{60};
  forge::RepoFilter filter{"build-with-flurry", {}, {}};
  // The URL forges reach this ingest at; hooks go to <it>/webhooks/<forge>.
  // Empty: only the project list is kept, no hooks are managed.
  std::string webhook_base_url;
  std::vector<std::string> forges;  // sorted
};

// A forge this ingest could discover.
struct DiscoverableForge {
  std::string name;
  bool has_repo_hooks = false;      // Gitea, GitLab
  bool has_webhook_secret = false;  // webhook-ingest.<forge>.secret_file is set
};

// Reads [discovery]; nullopt when the table is absent. Keys: interval
// (default "12h", at least 1m), lease (default "60s", at least 1s),
// topic (default "build-with-flurry"; "" = every repository),
// user_allowlist, repo_allowlist (string lists), webhook_base_url (http or
// https, no query), forges (default: every forge in `available` whose
// webhooks this ingest takes). Throws ConfigError for an unknown key, a
// bad value, a listed forge that is not available, or hooks wanted for a
// forge without a webhook secret.
std::optional<DiscoveryConfig> read_discovery_config(const Config& config, const std::vector<DiscoverableForge>& available);

// Where Flurry's hook on a project of `forge` delivers.
std::string hook_url(const std::string& webhook_base_url, const std::string& forge);

// What one refresh of one forge did, for the log line and metrics.
struct RefreshOutcome {
  std::string forge;
  std::string trigger;  // "start", "interval", "webhook"
  // "ok"; "partial" (the project list was stored, but some repositories
  // or hooks could not be handled: see errors); "failed" (nothing was
  // stored); "busy" (another instance holds the lease).
  std::string result;
  int projects = 0;
  int hooks_created = 0;
  int hooks_updated = 0;
  int hooks_unchanged = 0;
  std::vector<std::string> errors;  // "<what>: <why>", never a token or secret
  std::vector<std::string> hooks_written;  // "<owner/name>: created|updated (<why>)"
};

// What Discovery needs of a forge: its listing and hooks, and the secret
// its webhooks are signed with ("" when this ingest has none).
struct DiscoveryTarget {
  forge::ProjectSource* source = nullptr;
  std::string webhook_secret;
};

struct DiscoveryPorts {
  state::StateStore& state;
  Clock& clock;
  const std::atomic<bool>* stop = nullptr;  // set: a refresh ends early (shutdown)
};

// The key under which a managed hook's id and fingerprint are kept
// (StateStore forge refs).
std::string hook_memory_key(const std::string& forge, const std::string& full_name);

class Discovery {
 public:
  // `targets` must hold every forge of config.forges.
  Discovery(DiscoveryConfig config, std::map<std::string, DiscoveryTarget> targets, DiscoveryPorts ports);

  // Asks for a refresh of `forge` at the next tick; false when `forge` is
  // not discovered. Thread-safe.
  bool request(const std::string& forge);
  // Refreshes every forge that is due: not yet refreshed by this process,
  // its interval passed (after a failure: at most 5 minutes), or
  // request()ed. When another instance holds the lease, a requested
  // refresh waits for the next tick after it ran out; a due one counts as
  // done by that instance. One caller at a time.
  std::vector<RefreshOutcome> tick();
  // One refresh of `forge` now, under the lease: list, store the list
  // (replacing the forge's whole list), then sync each project's hook. A
  // listing failure stores nothing; a refused repository or hook (403,
  // 404) is skipped and named; a forge or store that does not answer ends
  // the hook syncs of that refresh.
  RefreshOutcome refresh(const std::string& forge);

  const DiscoveryConfig& config() const { return config_; }

 private:
  Result<forge::HookDecision> sync_hook(const forge::DiscoveredRepo& repo, forge::ProjectSource& source, const forge::HookSpec& spec);
  bool stopping() const { return ports_.stop && ports_.stop->load(); }

  DiscoveryConfig config_;
  std::map<std::string, DiscoveryTarget> targets_;
  DiscoveryPorts ports_;
  std::mutex mu_;                                  // guards requested_
  std::map<std::string, bool> requested_;          // forge -> asked for by a webhook
  std::map<std::string, std::int64_t> due_ms_;     // forge -> next periodic refresh; absent: at once (start)
};

}  // namespace flurry::ingest
