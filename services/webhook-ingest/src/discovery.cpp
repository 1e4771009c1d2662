#include "discovery.hpp"

#include <algorithm>
#include <set>

#include "flurry/core/text.hpp"

namespace flurry::ingest {
namespace {

constexpr std::chrono::milliseconds kMinInterval{std::chrono::minutes(1)};
constexpr std::chrono::milliseconds kRetryAfterFailure{std::chrono::minutes(5)};
// What is remembered of a managed hook outlives many refreshes; should it
// run out, the next refresh writes the hook once more.
constexpr int kHookMemoryTtlSeconds = 400 * 24 * 3600;

const std::set<std::string> kKeys = {"interval", "lease", "topic", "user_allowlist", "repo_allowlist", "webhook_base_url", "forges"};

bool has_control_or_space(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
}

std::string checked_base_url(const Config& config) {
  auto url = config.get_string("discovery.webhook_base_url", "");
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.empty()) return url;
  const bool scheme = text::starts_with(url, "https://") || text::starts_with(url, "http://");
  const auto host_at = url.find("//") + 2;
  if (!scheme || host_at >= url.size() || url[host_at] == '/' || has_control_or_space(url) || url.find_first_of("?#") != std::string::npos) {
    throw ConfigError("config: discovery.webhook_base_url must be an http:// or https:// URL without query (the URL forges reach "
                      "this ingest at)");
  }
  return url;
}

// "<id> <fingerprint>" as put_forge_ref keeps it.
std::optional<forge::ManagedHook> parse_memory(const std::optional<std::string>& stored) {
  if (!stored) return std::nullopt;
  auto space = stored->find(' ');
  if (space == std::string::npos || space == 0) return std::nullopt;
  forge::ManagedHook m;
  try {
    m.id = std::stoll(stored->substr(0, space));
  } catch (...) {
    return std::nullopt;
  }
  m.fingerprint = stored->substr(space + 1);
  return m;
}

}  // namespace

std::optional<DiscoveryConfig> read_discovery_config(const Config& config, const std::vector<DiscoverableForge>& available) {
  if (!config.has("discovery")) return std::nullopt;
  for (const auto& key : config.keys("discovery")) {
    if (!kKeys.count(key)) {
      throw ConfigError("config: discovery." + text::truncate_utf8(key, 100) +
                        " is not a setting (interval, lease, topic, user_allowlist, repo_allowlist, webhook_base_url, forges)");
    }
  }
  DiscoveryConfig dc;
  dc.interval = config.get_duration_ms("discovery.interval", dc.interval);
  if (dc.interval < kMinInterval) throw ConfigError("config: discovery.interval must be at least 1m");
  const auto lease = config.get_duration_ms("discovery.lease", dc.lease);
  if (lease < std::chrono::seconds(1)) throw ConfigError("config: discovery.lease must be at least 1s");
  dc.lease = std::chrono::duration_cast<std::chrono::seconds>(lease);
  dc.filter.topic = config.get_string("discovery.topic", dc.filter.topic);
  if (has_control_or_space(dc.filter.topic)) throw ConfigError("config: discovery.topic must be one topic, without spaces");
  dc.filter.user_allowlist = config.get_string_list("discovery.user_allowlist", {});
  dc.filter.repo_allowlist = config.get_string_list("discovery.repo_allowlist", {});
  for (const auto& r : dc.filter.repo_allowlist) {
    if (r.find('/') == std::string::npos) throw ConfigError("config: discovery.repo_allowlist names repositories as owner/name, not '" + r + "'");
  }
  dc.webhook_base_url = checked_base_url(config);

  auto find = [&](const std::string& name) {
    auto it = std::find_if(available.begin(), available.end(), [&](const DiscoverableForge& f) { return f.name == name; });
    return it == available.end() ? nullptr : &*it;
  };
  std::set<std::string> chosen;
  if (config.has("discovery.forges")) {
    for (const auto& name : config.get_string_list("discovery.forges", {})) {
      const auto* f = find(name);
      if (!f) {
        throw ConfigError("config: discovery.forges: " + text::truncate_utf8(name, 40) +
                          " cannot be discovered: it needs its [" + name + "] section (GitHub: as an App, app_id and private_key_file)");
      }
      if (f->has_repo_hooks && !dc.webhook_base_url.empty() && !f->has_webhook_secret) {
        throw ConfigError("config: discovery manages " + name + "'s webhooks, which needs webhook-ingest." + name + ".secret_file");
      }
      chosen.insert(name);
    }
  } else {
    for (const auto& f : available) {
      if (f.has_webhook_secret) chosen.insert(f.name);
    }
  }
  dc.forges.assign(chosen.begin(), chosen.end());
  return dc;
}

std::string hook_url(const std::string& base, const std::string& forge) {
  std::string url = base;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url + "/webhooks/" + forge;
}

std::string hook_memory_key(const std::string& forge, const std::string& full_name) { return "discovery-hook:" + forge + ":" + full_name; }

Discovery::Discovery(DiscoveryConfig config, std::map<std::string, DiscoveryTarget> targets, DiscoveryPorts ports)
    : config_(std::move(config)), targets_(std::move(targets)), ports_(ports) {}

bool Discovery::request(const std::string& forge) {
  if (std::find(config_.forges.begin(), config_.forges.end(), forge) == config_.forges.end()) return false;
  std::lock_guard lock(mu_);
  requested_[forge] = true;
  return true;
}

std::vector<RefreshOutcome> Discovery::tick() {
  std::vector<RefreshOutcome> out;
  for (const auto& forge : config_.forges) {
    if (stopping()) break;
    bool requested = false;
    {
      std::lock_guard lock(mu_);
      requested = std::exchange(requested_[forge], false);
    }
    const auto now = ports_.clock.now_ms();
    auto due = due_ms_.find(forge);
    const bool first = due == due_ms_.end();
    if (!requested && !first && now < due->second) continue;
    auto o = refresh(forge);
    o.trigger = requested ? "webhook" : first ? "start" : "interval";
    const auto after = ports_.clock.now_ms();
    if (o.result == "busy") {
      if (requested) {
        std::lock_guard lock(mu_);
        requested_[forge] = true;  // once the other instance's lease ran out
      } else {
        due_ms_[forge] = after + config_.interval.count();
      }
    } else if (o.result == "failed") {
      due_ms_[forge] = after + std::min(config_.interval, kRetryAfterFailure).count();
    } else {
      due_ms_[forge] = after + config_.interval.count();
    }
    out.push_back(std::move(o));
  }
  return out;
}

RefreshOutcome Discovery::refresh(const std::string& forge) {
  RefreshOutcome o;
  o.forge = forge;
  o.result = "failed";
  auto target = targets_.find(forge);
  if (target == targets_.end() || !target->second.source) {
    o.errors.push_back(forge + ": no forge client");
    return o;
  }
  auto& source = *target->second.source;
  // The lease: the first refresh of `forge` to start in this lease window,
  // in any instance, takes it. (claim_once cannot be given back, so each
  // window has a key of its own.)
  const auto lease_ms = std::max<std::int64_t>(1000, std::chrono::duration_cast<std::chrono::milliseconds>(config_.lease).count());
  const auto window = ports_.clock.now_ms() / lease_ms;
  auto claimed = ports_.state.claim_once("discovery:" + forge + ":" + std::to_string(window),
                                         static_cast<int>(2 * lease_ms / 1000));
  if (!claimed) {
    o.errors.push_back("state store: " + claimed.error().message);
    return o;
  }
  if (!*claimed) {
    o.result = "busy";
    return o;
  }
  auto listing = source.list_repos(config_.filter);
  if (!listing) {
    o.errors.push_back("listing: " + listing.error().message);
    return o;
  }
  std::vector<std::string> names;
  names.reserve(listing->repos.size());
  for (const auto& r : listing->repos) names.push_back(r.full_name());
  if (auto stored = ports_.state.set_projects(forge, names); !stored) {
    o.errors.push_back("state store: " + stored.error().message);
    return o;
  }
  o.projects = static_cast<int>(std::set<std::string>(names.begin(), names.end()).size());
  o.errors = listing->skipped;

  const auto& secret = target->second.webhook_secret;
  if (!config_.webhook_base_url.empty() && source.has_repo_hooks() && !secret.empty()) {
    const forge::HookSpec spec{hook_url(config_.webhook_base_url, forge), secret};
    for (std::size_t i = 0; i < listing->repos.size(); ++i) {
      const auto& repo = listing->repos[i];
      if (stopping()) {
        o.errors.push_back("stopped before the hooks of " + std::to_string(listing->repos.size() - i) + " projects");
        break;
      }
      auto r = sync_hook(repo, source, spec);
      if (r) {
        if (r->action == forge::HookAction::kNone) {
          ++o.hooks_unchanged;
          continue;
        }
        const bool created = r->action == forge::HookAction::kCreate;
        ++(created ? o.hooks_created : o.hooks_updated);
        o.hooks_written.push_back(repo.full_name() + ": " + (created ? "created" : "updated") + " (" + r->why + ")");
        continue;
      }
      o.errors.push_back(repo.full_name() + ": " + r.error().message);
      if (r.error().code == ErrorCode::kTransient) {
        // The forge or the store is down: the rest would fail alike.
        if (i + 1 < listing->repos.size()) {
          o.errors.push_back("hooks of " + std::to_string(listing->repos.size() - i - 1) + " more projects not synced");
        }
        break;
      }
    }
  }
  o.result = o.errors.empty() ? "ok" : "partial";
  return o;
}

Result<forge::HookDecision> Discovery::sync_hook(const forge::DiscoveredRepo& repo, forge::ProjectSource& source,
                                                   const forge::HookSpec& spec) {
  const auto key = hook_memory_key(source.forge(), repo.full_name());
  auto stored = ports_.state.get_forge_ref(key);
  if (!stored) return fail(Error::transient("state store: " + stored.error().message));
  auto hooks = source.list_hooks(repo);
  if (!hooks) return fail(hooks.error());
  const auto decision = forge::decide_hook(*hooks, spec, source.hook_events(), parse_memory(*stored));
  if (decision.action == forge::HookAction::kNone) return decision;
  std::int64_t id = decision.hook_id;
  if (decision.action == forge::HookAction::kCreate) {
    auto created = source.create_hook(repo, spec);
    if (!created) return fail(created.error());
    id = *created;
  } else if (auto updated = source.update_hook(repo, id, spec); !updated) {
    return fail(updated.error());
  }
  if (auto kept = ports_.state.put_forge_ref(key, std::to_string(id) + " " + forge::hook_fingerprint(spec), kHookMemoryTtlSeconds); !kept) {
    // Written but not remembered: the next refresh writes it once more.
    return fail(Error::transient("state store: " + kept.error().message));
  }
  return decision;
}

}  // namespace flurry::ingest
