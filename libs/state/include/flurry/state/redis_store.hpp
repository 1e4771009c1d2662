#pragma once
// Redis adapter for the StateStore port (hiredis, Lua scripts for every
// multi-key change). Keep <hiredis.h> out of this header. Keys are all
// under "<prefix>:" and documented in libs/state/README.md.
#include <chrono>
#include <memory>
#include <string>

#include "flurry/core/config.hpp"
#include "flurry/state/catalog.hpp"
#include "flurry/state/store.hpp"

namespace flurry::state {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;         // from a secret file; empty = none
  std::string prefix = "flurry";  // key namespace
  std::chrono::milliseconds timeout{5000};
};

// The options a configuration's [redis] section gives (host, port,
// prefix, password_file). Throws ConfigError (an unreadable password file).
RedisOptions redis_options(const Config& config);

// Connects; reconnects by itself after a lost connection (calls fail as
// transient errors meanwhile). Safe to use from many threads.
Result<std::unique_ptr<StateStore>> connect_redis(const RedisOptions& options);
// The Catalog port over the same Redis (its own connections).
Result<std::unique_ptr<Catalog>> connect_redis_catalog(const RedisOptions& options);

}  // namespace flurry::state
