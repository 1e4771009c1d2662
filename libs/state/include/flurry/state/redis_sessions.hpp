#pragma once
// Redis adapter for the Sessions port (target flurry_state_redis). Keys,
// under the configured prefix, are documented in libs/state/README.md:
//   P:session:<sha256 of id>      hash, TTL = the session's
//   P:oauth-state:<sha256 of s>   string, TTL = the state's (taken with GETDEL)
// The access token is stored AES-256-GCM encrypted under a key derived
// from the session id, which only the user's cookie holds: a dump of Redis
// reveals neither session ids nor users' forge tokens.
#include <memory>

#include "flurry/state/redis_store.hpp"
#include "flurry/state/sessions.hpp"

namespace flurry::state {

// Connects on first use, and again after a lost connection (calls fail as
// transient errors meanwhile). Needs Redis 6.2 or later (GETDEL). Safe to
// use from many threads.
std::unique_ptr<Sessions> make_redis_sessions(const RedisOptions& options);

}  // namespace flurry::state
