#pragma once
// The shell every service's main.cpp runs in: flags and config, logging,
// metrics, the HTTP server with /metrics and /healthz, the bus and state
// connections, consumers, and a clean stop on SIGTERM/SIGINT.
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "flurry/bus/bus.hpp"
#include "flurry/core/config.hpp"
#include "flurry/http/http.hpp"
#include "flurry/metrics/metrics.hpp"
#include "flurry/state/catalog.hpp"
#include "flurry/state/store.hpp"

namespace flurry::service {

class Runtime {
 public:
  virtual ~Runtime() = default;
  virtual const std::string& name() const = 0;
  virtual const Config& config() const = 0;
  virtual metrics::Registry& metrics() = 0;
  // Listens on config "<name>.listen" ("127.0.0.1:port"); already serves
  // GET /metrics and GET /healthz. Add routes before body() returns.
  virtual http::Server& http() = 0;
  // Connected on first use from config "nats.url"; streams ensured.
  virtual bus::Bus& bus() = 0;
  // Connected on first use from config "redis.host"/"redis.port".
  virtual state::StateStore& state() = 0;
  // The listing indexes (state::Catalog) on the same Redis, connected on
  // first use.
  virtual state::Catalog& catalog() = 0;
  // True once SIGTERM/SIGINT arrived.
  virtual const std::atomic<bool>& stopping() const = 0;
  // Starts consuming in the background until shutdown. Counts deliveries by
  // outcome (flurry_messages_total{consumer,outcome}) and handler time
  // (flurry_message_duration_seconds{consumer}).
  virtual void consume(bus::ConsumerSpec spec, bus::Handler handler) = 0;
  // The same for consumers drained by one pool of `concurrency` handlers
  // (bus::Bus::consume_pool); `name` labels its log lines.
  virtual void consume_pool(std::string name, bus::ConsumerSource source, int concurrency, bus::Handler handler) = 0;
  // /healthz answers 503 while any check returns false.
  virtual void add_health_check(std::string name, std::function<bool()> check) = 0;
  // Called after the signal, before consumers are joined (e.g. to stop a
  // poller thread).
  virtual void on_shutdown(std::function<void()> fn) = 0;
  // Runs `fn` every `interval` on a background thread until shutdown (e.g.
  // to refresh gauges); an exception it throws is logged, not fatal.
  virtual void every(std::chrono::milliseconds interval, std::function<void()> fn) = 0;
};

// Parses flags (--config FILE, --set key=value..., --log-level L), sets up
// the runtime, calls `body` to wire the service, starts HTTP, then waits for
// SIGTERM/SIGINT and stops: no new deliveries, in-flight handlers finish
// (bounded by "<name>.shutdown_timeout", default 30s), HTTP closes.
// Returns the process exit code: 0 after a clean stop, 2 on bad config or
// flags (message on stderr), 1 if start-up failed.
int run(const std::string& name, int argc, char** argv, const std::function<void(Runtime&)>& body);

}  // namespace flurry::service
