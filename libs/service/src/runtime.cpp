#include "flurry/service/runtime.hpp"

#include <algorithm>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>

#include "flurry/bus/nats_bus.hpp"
#include "flurry/core/log.hpp"
#include "flurry/service/flags.hpp"
#include "flurry/state/redis_store.hpp"

namespace flurry::service {
namespace {

std::string json_bool(bool b) { return b ? "true" : "false"; }

class RuntimeImpl final : public Runtime {
 public:
  RuntimeImpl(std::string name, Config config) : name_(std::move(name)), config_(std::move(config)) {}

  ~RuntimeImpl() override = default;

  const std::string& name() const override { return name_; }
  const Config& config() const override { return config_; }
  metrics::Registry& metrics() override { return metrics_; }
  http::Server& http() override { return *server_; }
  const std::atomic<bool>& stopping() const override { return stopping_; }

  void start_http() {
    auto listen = parse_listen(config_.require_string(name_ + ".listen"));
    http::ServerOptions o;
    o.address = listen.first;
    o.port = listen.second;
    o.max_body = static_cast<std::size_t>(config_.get_int(name_ + ".max_body_bytes", 25 * 1024 * 1024));
    o.timeout = config_.get_duration_ms("http.request_timeout", o.timeout);
    o.max_connections = static_cast<std::size_t>(std::max<std::int64_t>(1, config_.get_int("http.max_connections", 1024)));
    o.max_buffered = static_cast<std::size_t>(
        std::max<std::int64_t>(static_cast<std::int64_t>(o.max_body), config_.get_int("http.max_buffered_bytes", 256 * 1024 * 1024)));
    o.workers = static_cast<int>(std::clamp<std::int64_t>(config_.get_int("http.workers", 4), 1, 256));
    server_ = http::make_server(o);
    server_->route_health("GET", "/metrics", [this](const http::Request&) {
      return http::Response{200, metrics_.serialize(), "text/plain; version=0.0.4; charset=utf-8"};
    });
    server_->route_health("GET", "/healthz", [this](const http::Request&) { return health(); });
  }

  http::Response health() {
    std::vector<std::pair<std::string, std::function<bool()>>> checks;
    {
      std::lock_guard lock(mu_);
      checks = checks_;
    }
    bool ok = true;
    std::string body = "{\"service\":\"" + log::json_escape(name_) + "\",\"checks\":{";
    for (std::size_t i = 0; i < checks.size(); ++i) {
      bool c = false;
      try {
        c = checks[i].second();
      } catch (...) {
      }
      ok = ok && c;
      body += (i ? "," : "") + std::string("\"") + log::json_escape(checks[i].first) + "\":" + json_bool(c);
    }
    body += "},\"status\":\"" + std::string(ok ? "ok" : "unhealthy") + "\"}\n";
    return {ok ? 200 : 503, body, "application/json"};
  }

  bus::Bus& bus() override {
    std::lock_guard lock(connect_mu_);
    while (!bus_) {
      auto b = bus::connect_nats({.url = config_.get_string("nats.url", "nats://127.0.0.1:4222"),
                                  .name = "flurry-" + name_,
                                  .on_dead_letter = [this](const std::string& consumer) {
                                    metrics_.counter("dead_letters_total", "Messages given up on and kept in FLURRY_DEAD, by consumer.",
                                                     {{"consumer", consumer}})
                                        .Increment();
                                  }});
      if (b) {
        bus_ = std::move(*b);
        add_health_check("nats", [this] { return bus_->healthy(); });
        break;
      }
      log::warn("service.nats_unavailable", "cannot reach NATS; retrying", {{"error", b.error().message}});
      if (wait_stopping(std::chrono::seconds(2))) throw std::runtime_error("stopped before NATS was reachable");
    }
    return *bus_;
  }

  state::StateStore& state() override {
    std::lock_guard lock(connect_mu_);
    while (!state_) {
      auto s = state::connect_redis(state::redis_options(config_));
      if (s) {
        state_ = std::move(*s);
        add_health_check("redis", [this] { return state_->healthy(); });
        break;
      }
      log::warn("service.redis_unavailable", "cannot reach Redis; retrying", {{"error", s.error().message}});
      if (wait_stopping(std::chrono::seconds(2))) throw std::runtime_error("stopped before Redis was reachable");
    }
    return *state_;
  }

  state::Catalog& catalog() override {
    std::lock_guard lock(connect_mu_);
    while (!catalog_) {
      auto c = state::connect_redis_catalog(state::redis_options(config_));
      if (c) {
        catalog_ = std::move(*c);
        break;
      }
      log::warn("service.redis_unavailable", "cannot reach Redis; retrying", {{"error", c.error().message}});
      if (wait_stopping(std::chrono::seconds(2))) throw std::runtime_error("stopped before Redis was reachable");
    }
    return *catalog_;
  }

  void consume(bus::ConsumerSpec spec, bus::Handler handler) override {
    const int concurrency = spec.concurrency;
    const std::string name = spec.durable;
    consume_pool(name, [spec] { return std::vector<bus::ConsumerSpec>{spec}; }, concurrency, std::move(handler));
  }

  void consume_pool(std::string name, bus::ConsumerSource source, int concurrency, bus::Handler handler) override {
    auto wrapped = [this, handler](const bus::Delivery& d) {
      auto start = std::chrono::steady_clock::now();
      auto disp = handler(d);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const char* outcome = disp.kind == bus::Disposition::Kind::kAck ? "ack"
                            : disp.kind == bus::Disposition::Kind::kNak ? "nak"
                                                                         : "dead_letter";
      metrics_.counter("messages_total", "Messages handled, by consumer and outcome.", {{"consumer", d.consumer}, {"outcome", outcome}})
          .Increment();
      metrics_.histogram("message_duration_seconds", "Time spent handling one message.", {{"consumer", d.consumer}}).Observe(secs);
      return disp;
    };
    std::lock_guard lock(mu_);
    running_consumers_ += 1;
    consumers_.emplace_back([this, name, source, concurrency, wrapped] {
      while (!stopping_.load()) {
        auto r = bus().consume_pool(source, concurrency, wrapped, stopping_);
        if (r || stopping_.load()) break;
        log::warn("service.consume_failed", "consumer stopped; restarting", {{"consumer", name}, {"error", r.error().message}});
        wait_stopping(std::chrono::seconds(2));
      }
      std::lock_guard l(mu_);
      running_consumers_ -= 1;
      cv_.notify_all();
    });
  }

  void every(std::chrono::milliseconds interval, std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    running_consumers_ += 1;
    consumers_.emplace_back([this, interval, fn = std::move(fn)] {
      while (!wait_stopping(interval)) {
        try {
          fn();
        } catch (const std::exception& e) {
          log::warn("service.periodic_failed", e.what());
        }
      }
      std::lock_guard l(mu_);
      running_consumers_ -= 1;
      cv_.notify_all();
    });
  }

  void add_health_check(std::string name, std::function<bool()> check) override {
    std::lock_guard lock(mu_);
    checks_.emplace_back(std::move(name), std::move(check));
  }

  void on_shutdown(std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    shutdown_hooks_.push_back(std::move(fn));
  }

  // Returns true when stopping was requested during the wait.
  bool wait_stopping(std::chrono::milliseconds d) {
    std::unique_lock lock(stop_mu_);
    return stop_cv_.wait_for(lock, d, [this] { return stopping_.load(); });
  }

  // Sets the stop flag: consumers stop fetching, waits for NATS/Redis end.
  void request_stop() {
    {
      std::lock_guard lock(stop_mu_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
  }

  // Stops consumers and HTTP. Returns false if in-flight work outlived the timeout.
  bool shutdown(std::chrono::milliseconds timeout) {
    request_stop();
    std::vector<std::function<void()>> hooks;
    {
      std::lock_guard lock(mu_);
      hooks = shutdown_hooks_;
    }
    for (auto& h : hooks) h();
    bool clean;
    {
      std::unique_lock lock(mu_);
      clean = cv_.wait_for(lock, timeout, [this] { return running_consumers_ == 0; });
    }
    if (clean) {
      for (auto& t : consumers_) t.join();
    } else {
      for (auto& t : consumers_) t.detach();
    }
    if (server_) server_->stop();
    return clean;
  }

  void start_server() { server_->start(); }

 private:
  std::string name_;
  Config config_;
  metrics::Registry metrics_;
  std::unique_ptr<http::Server> server_;
  std::mutex connect_mu_;
  std::unique_ptr<bus::Bus> bus_;
  std::unique_ptr<state::StateStore> state_;
  std::unique_ptr<state::Catalog> catalog_;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::mutex mu_;
  std::condition_variable cv_;
  int running_consumers_ = 0;
  std::vector<std::thread> consumers_;
  std::vector<std::pair<std::string, std::function<bool()>>> checks_;
  std::vector<std::function<void()>> shutdown_hooks_;
};

}  // namespace

std::pair<std::string, int> parse_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) throw ConfigError("listen address must be host:port, got '" + listen + "'");
  std::string host = listen.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (...) {
    port = -1;
  }
  if (port <= 0 || port > 65535) throw ConfigError("listen port out of range in '" + listen + "'");
  return {host, port};
}

Config load_config(const Flags& flags) {
  Config c = flags.config_path.empty() ? Config::from_string("") : Config::from_file(flags.config_path);
  for (const auto& s : flags.sets) c.set(s);
  return c;
}

int run(const std::string& name, int argc, char** argv, const std::function<void(Runtime&)>& body) {
  // Every thread started from here on inherits the blocked mask, so only
  // sigwait below sees SIGTERM/SIGINT.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Flags flags;
  CLI::App app{"flurry " + name};
  app.add_option("--config", flags.config_path, "TOML configuration file");
  app.add_option("--set", flags.sets, "override a key: section.key=value (repeatable)");
  app.add_option("--log-level", flags.log_level, "debug, info, warn or error");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  std::unique_ptr<RuntimeImpl> rt;
  try {
    Config config = load_config(flags);
    std::string level_name = flags.log_level.empty() ? config.get_string("log.level", "info") : flags.log_level;
    log::Level level;
    if (!log::parse_level(level_name, level)) throw ConfigError("unknown log level '" + level_name + "'");
    log::init(name, level);
    http::init_threads(static_cast<int>(config.get_int("http.threads", 2)));
    rt = std::make_unique<RuntimeImpl>(name, std::move(config));
    rt->start_http();
  } catch (const ConfigError& e) {
    std::cerr << "flurry-" << name << ": " << e.what() << "\n";
    return 2;
  }

  // SIGTERM may arrive while body() waits for NATS/Redis.
  std::atomic<bool> signalled{false};
  std::thread signal_waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    signalled = true;
    log::info("service.stopping", "signal received; stopping", {{"signal", sig}});
    rt->request_stop();  // the drain happens on the main thread below
  });

  try {
    body(*rt);
    rt->start_server();
  } catch (const ConfigError& e) {
    std::cerr << "flurry-" << name << ": " << e.what() << "\n";
    log::error("service.bad_config", e.what());
    ::kill(getpid(), SIGTERM);
    signal_waiter.join();
    rt->shutdown(std::chrono::seconds(5));
    return 2;
  } catch (const std::exception& e) {
    if (!signalled.load()) {
      log::error("service.start_failed", e.what());
      ::kill(getpid(), SIGTERM);
    }
    signal_waiter.join();
    rt->shutdown(std::chrono::seconds(5));
    return signalled.load() ? 0 : 1;
  }
  log::info("service.started", "ready", {{"listen", rt->config().get_string(name + ".listen", "")}});

  signal_waiter.join();
  auto timeout = rt->config().get_duration_ms(name + ".shutdown_timeout", std::chrono::seconds(30));
  bool clean = rt->shutdown(timeout);
  if (!clean) {
    log::error("service.shutdown_timeout", "in-flight work did not finish in time; it will be redelivered");
    std::_Exit(1);
  }
  log::info("service.stopped", "stopped cleanly");
  return 0;
}

}  // namespace flurry::service
