#pragma once
// Pull-based repositories: plain git URLs polled on an interval, no forge
// needed (buildbot-nix's pullBased). A poll lists the remote's branches and,
// for each branch the branch rules select whose head moved since this
// poller last saw it, publishes the change event a push webhook would have
// made (kind "push", forge "git") to flurry.change.git. Pure logic over
// ports.
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "flurry/bus/bus.hpp"
#include "flurry/core/clock.hpp"
#include "flurry/core/config.hpp"
#include "flurry/git/git.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/repo/branch_rules.hpp"

namespace flurry::ingest {

// One [poll.<name>] table.
struct PolledRepo {
  std::string name;  // the repository in change events: forge "git", owner "poll", this name
  std::string url;   // clone URL, may carry credentials (never logged)
  std::string default_branch = "main";
  std::chrono::milliseconds interval{std::chrono::seconds(60)};
};

// Service-wide polling settings and the polled repositories.
struct PollConfig {
  std::vector<PolledRepo> repos;
  std::chrono::milliseconds jitter{std::chrono::seconds(10)};
  std::vector<std::string> allowed_url_schemes;
};

// Reads [poll.<name>] (url required; default_branch, default "main";
// interval, default [webhook-ingest] poll_interval, itself default 60s),
// [webhook-ingest] poll_jitter (default 10s) and allowed_url_schemes
// (default https, ssh, git). Throws ConfigError for a table without url,
// an unknown key, a bad or too short duration, a bad name or a URL
// CliGit would refuse.
PollConfig read_poll_config(const Config& config);

struct PollPorts {
  git::Git& git;
  bus::Bus& bus;
  Clock& clock;
};

// What one poll did, for the log line and metrics.
struct PollOutcome {
  // "changed" (published and nothing failed), "unchanged", "failed" (the
  // listing or some publish failed).
  std::string result = "unchanged";
  std::vector<std::string> published;  // change ids, in branch order
  std::vector<std::string> errors;     // without credentials
  // Heads not taken, newly seen this poll (each is reported once while it
  // stays): "<branch>: <why>".
  std::vector<std::string> skipped;
};

// The change id for `rev` at `branch` of the polled repository
// `repo_name`: "git:" + 32 hex digits hashed from the three. The same head
// always gets the same id, in every ingest instance and after restarts, so
// JetStream's msg-id dedupe and the evaluator's eval id per change make it
// one eval.
std::string poll_change_id(const std::string& repo_name, const std::string& branch, const std::string& rev);

// Polls one repository. Remembers, in memory, the head of each selected
// branch it published; the first poll after construction publishes every
// selected head (as buildbot-nix's pollAtLaunch). One caller at a time.
class Poller {
 public:
  Poller(PolledRepo repo, std::vector<repo::BranchRule> rules, PollPorts ports);

  // Lists the remote's branches and publishes a push for each branch
  // repo::branch_policy builds whose head differs from the last one
  // published (`before` = that head, "" the first time). A head is
  // remembered only once the bus stored its change, so a failed publish is
  // retried next poll; a branch gone from the remote is forgotten (and
  // published again if it comes back). A failed listing changes nothing.
  PollOutcome poll();

  const PolledRepo& repo() const { return repo_; }
  // The change a head of `branch` makes (exposed for tests).
  msg::ChangeEvent change_for(const std::string& branch, const std::string& rev, const std::string& before);

 private:
  PolledRepo repo_;
  std::vector<repo::BranchRule> rules_;
  PollPorts ports_;
  std::map<std::string, std::string> seen_;     // branch -> head published
  std::map<std::string, std::string> skipped_;  // branch -> why its head was last skipped
};

// A number in [0, 1), uniformly distributed.
using UnitRandom = std::function<double()>;

// How long to wait before the next poll of a repository: the first after
// a random delay in [0, jitter), each later one after `interval` plus a
// random delay in [0, jitter), so repositories and ingest instances do not
// poll in step. A non-positive jitter adds nothing.
std::chrono::milliseconds next_poll_delay(std::chrono::milliseconds interval, std::chrono::milliseconds jitter, bool first,
                                          const UnitRandom& random);

}  // namespace flurry::ingest
