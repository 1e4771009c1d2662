#include "poller.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "flurry/core/crypto.hpp"
#include "flurry/core/text.hpp"
#include "flurry/git/cli_git.hpp"
#include "flurry/messages/subjects.hpp"

namespace flurry::ingest {
namespace {

constexpr std::chrono::milliseconds kMinInterval{std::chrono::seconds(1)};
constexpr std::size_t kMaxBranchBytes = 255;

bool lower_sha1_hex(const std::string& s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Why a remote's branch name is not taken, or "" when it is. Git refuses
// such names itself; a hostile server need not.
std::string bad_branch_name(const std::string& branch) {
  if (branch.empty()) return "empty branch name";
  if (branch.size() > kMaxBranchBytes) return "branch name longer than " + std::to_string(kMaxBranchBytes) + " bytes";
  if (std::any_of(branch.begin(), branch.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
    return "branch name with control characters";
  }
  return "";
}

bool valid_repo_name(const std::string& name) {
  return !name.empty() && name.size() <= 100 && std::all_of(name.begin(), name.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '_' || c == '-';
         });
}

std::chrono::milliseconds duration_at_least(const Config& config, const std::string& key, std::chrono::milliseconds fallback,
                                            std::chrono::milliseconds minimum) {
  auto d = config.get_duration_ms(key, fallback);
  if (d < minimum) {
    throw ConfigError("config: " + key + " must be at least " + std::to_string(minimum.count()) + "ms");
  }
  return d;
}

}  // namespace

PollConfig read_poll_config(const Config& config) {
  PollConfig pc;
  pc.allowed_url_schemes = config.get_string_list("webhook-ingest.allowed_url_schemes", {"https", "ssh", "git"});
  pc.jitter = duration_at_least(config, "webhook-ingest.poll_jitter", std::chrono::seconds(10), std::chrono::milliseconds(0));
  const auto default_interval = duration_at_least(config, "webhook-ingest.poll_interval", std::chrono::seconds(60), kMinInterval);
  static const std::set<std::string> kKeys = {"url", "default_branch", "interval"};
  for (const auto& name : config.keys("poll")) {
    const std::string table = "poll." + name;
    if (!valid_repo_name(name)) {
      throw ConfigError("config: [poll." + text::truncate_utf8(name, 100) +
                        "]: repository names are letters, digits, '_' and '-' (at most 100)");
    }
    for (const auto& key : config.keys(table)) {
      if (!kKeys.count(key)) throw ConfigError("config: " + table + "." + key + " is not a setting (url, default_branch, interval)");
    }
    PolledRepo r;
    r.name = name;
    r.url = config.require_string(table + ".url");
    if (auto ok = git::check_clone_url(r.url, pc.allowed_url_schemes); !ok) {
      throw ConfigError("config: " + table + ".url: " + ok.error().message);
    }
    r.default_branch = config.get_string(table + ".default_branch", "main");
    if (!bad_branch_name(r.default_branch).empty()) throw ConfigError("config: " + table + ".default_branch must name a branch");
    r.interval = duration_at_least(config, table + ".interval", default_interval, kMinInterval);
    pc.repos.push_back(std::move(r));
  }
  return pc;
}

std::string poll_change_id(const std::string& repo_name, const std::string& branch, const std::string& rev) {
  // NUL cannot occur in any part, so distinct triples never hash the same input.
  std::string key = repo_name;
  key += '\0';
  key += branch;
  key += '\0';
  key += rev;
  return "git:" + crypto::sha256_hex(key).substr(0, 32);
}

Poller::Poller(PolledRepo repo, std::vector<repo::BranchRule> rules, PollPorts ports)
    : repo_(std::move(repo)), rules_(std::move(rules)), ports_(ports) {}

msg::ChangeEvent Poller::change_for(const std::string& branch, const std::string& rev, const std::string& before) {
  msg::ChangeEvent c;
  c.id = poll_change_id(repo_.name, branch, rev);
  c.kind = msg::kPush;
  c.repo = {.forge = "git",
            .owner = "poll",
            .name = repo_.name,
            .clone_url = repo_.url,
            .html_url = "",
            .default_branch = repo_.default_branch};
  c.ref = "refs/heads/" + branch;
  c.branch = branch;
  c.rev = rev;
  c.before = before;
  c.sender = "poller";
  c.received_at_ms = ports_.clock.now_ms();
  return c;
}

PollOutcome Poller::poll() {
  PollOutcome o;
  auto heads = ports_.git.remote_heads(repo_.url);
  if (!heads) {
    o.result = "failed";
    o.errors.push_back(heads.error().message);
    return o;
  }
  // Branches gone from the remote are forgotten.
  for (auto it = seen_.begin(); it != seen_.end();) {
    it = heads->count(it->first) ? std::next(it) : seen_.erase(it);
  }
  for (auto it = skipped_.begin(); it != skipped_.end();) {
    it = heads->count(it->first) ? std::next(it) : skipped_.erase(it);
  }
  for (const auto& [branch, rev] : *heads) {
    if (!repo::branch_policy(rules_, branch, repo_.default_branch).build) continue;
    std::string why = bad_branch_name(branch);
    if (why.empty() && !lower_sha1_hex(rev)) why = "head '" + text::truncate_utf8(rev, 80) + "' is not a lower-case 40-hex commit id";
    if (!why.empty()) {
      if (skipped_[branch] != why) o.skipped.push_back(text::truncate_utf8(branch, 80) + ": " + why);
      skipped_[branch] = why;
      continue;
    }
    skipped_.erase(branch);
    auto seen = seen_.find(branch);
    if (seen != seen_.end() && seen->second == rev) continue;
    const auto change = change_for(branch, rev, seen == seen_.end() ? "" : seen->second);
    auto published = ports_.bus.publish({subjects::change("git"), msg::encode(change), change.id});
    if (!published) {
      o.errors.push_back("cannot publish " + change.id + " (" + text::truncate_utf8(branch, 80) + "): " + published.error().message);
      continue;
    }
    seen_[branch] = rev;
    o.published.push_back(change.id);
  }
  o.result = !o.errors.empty() ? "failed" : !o.published.empty() ? "changed" : "unchanged";
  return o;
}

std::chrono::milliseconds next_poll_delay(std::chrono::milliseconds interval, std::chrono::milliseconds jitter, bool first,
                                          const UnitRandom& random) {
  std::chrono::milliseconds extra{0};
  if (jitter.count() > 0) {
    double u = random();
    if (!(u >= 0.0)) u = 0.0;  // also NaN
    if (u >= 1.0) u = std::nextafter(1.0, 0.0);
    extra = std::chrono::milliseconds(std::min<std::int64_t>(static_cast<std::int64_t>(std::floor(u * static_cast<double>(jitter.count()))),
                                                             jitter.count() - 1));
  }
  return (first ? std::chrono::milliseconds(0) : interval) + extra;
}

}  // namespace flurry::ingest
