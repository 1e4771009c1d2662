#pragma once
// The builder's handler: one build request to a terminal job state, with
// the consequences (released dependents, failed dependents, eval end)
// published.
#include <chrono>
#include <string>
#include <vector>

#include "flurry/bus/bus.hpp"
#include "flurry/core/clock.hpp"
#include "flurry/messages/messages.hpp"
#include "flurry/nix/nix_runner.hpp"
#include "flurry/state/store.hpp"

namespace flurry::builder {

struct BuilderConfig {
  std::chrono::milliseconds max_silent{std::chrono::seconds(1200)};
  std::chrono::milliseconds timeout{std::chrono::seconds(10800)};
  std::size_t log_cap_bytes = 4 * 1024 * 1024;
  std::size_t log_flush_bytes = 64 * 1024;
  std::chrono::milliseconds log_flush_interval{1000};
  // How often a running build checks whether its eval was cancelled
  // (superseded or cancelled explicitly); a cancelled build is killed.
  std::chrono::milliseconds cancel_poll_interval{std::chrono::seconds(2)};
  // One build per derivation: a builder holds its claim on the derivation
  // for this long and renews it every cancel_poll_interval (a builder that
  // dies loses it after this); the result is kept for waiting jobs this long.
  std::chrono::milliseconds build_lease{std::chrono::seconds(60)};
  std::chrono::milliseconds shared_result_ttl{std::chrono::hours(1)};
  // A build's end that the state store cannot take (Redis restarting) is
  // offered again every store_retry_interval for up to store_retry_for
  // while the request is held (in-progress acks), rather than handed back
  // to the bus, whose redelivery would run the build again.
  std::chrono::milliseconds store_retry_for{std::chrono::minutes(2)};
  std::chrono::milliseconds store_retry_interval{std::chrono::milliseconds(500)};
  std::string public_url;
};

struct BuildPorts {
  state::StateStore& state;
  bus::Bus& bus;
  nix::NixRunner& nix;
  Clock& clock;
};

struct Delivery {
  std::uint64_t num_delivered = 1;
  int max_deliver = 3;
  bool last() const { return num_delivered >= static_cast<std::uint64_t>(max_deliver); }
};

struct BuildOutcome {
  bus::Disposition disposition;
  std::string result;  // the job's terminal state, or replayed, unknown_job, retry
  msg::JobState state = msg::JobState::kQueued;
  double seconds = 0;  // time nix spent building
  bool shared = false;  // the result came from another job's build of the same derivation
};

// The feature sets (tokens, sorted) whose queues a builder of `system`
// offering `offered` (subjects::feature_tokens) should drain, given the
// build subjects the stream holds requests on now. Subjects of other
// systems and the plain queue are not in it.
std::vector<std::vector<std::string>> feature_queues(const std::vector<std::string>& stored_subjects, const std::string& system,
                                                     const std::vector<std::string>& offered);

// Runs one build request to a terminal job state. Safe to call twice for
// the same request: a job that already ended is not built again, its stored
// transition is republished (deduplicated by msg id).
BuildOutcome handle_build_request(const msg::BuildRequest& req, Delivery delivery, BuildPorts ports, const BuilderConfig& config);

}  // namespace flurry::builder
