#pragma once
// The web service's sign-in state: user sessions (what a session cookie
// stands for) and the OAuth `state` values of sign-ins under way. A port of
// its own, apart from StateStore: only the web service uses it.
//
// Secrets: a session's id (the cookie's value), its access_token (the
// user's forge token) and its csrf token. None of them may reach a log
// line, an error message or a metric; the Redis adapter stores neither the
// id nor the access token readably (keys are hashes of the id, the token is
// encrypted with a key derived from the id).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "flurry/core/error.hpp"

namespace flurry::state {

struct Session {
  std::string id;  // 64 lower-case hex digits (32 random bytes); secret
  std::string forge;           // "github", "gitea", "gitlab"
  std::string login;           // the forge's user name
  std::string name;            // display name (the login when the forge has none)
  std::string forge_user_id;   // the forge's numeric user id, as text
  std::string access_token;    // the user's OAuth access token; secret
  std::string csrf;            // random; sent back in X-Flurry-CSRF; secret
  std::int64_t created_ms = 0;
  std::int64_t expires_ms = 0;
  bool operator==(const Session&) const = default;
};

class Sessions {
 public:
  virtual ~Sessions() = default;

  // Stores `session` under session.id for `ttl` (at least 1 ms); an
  // existing session with that id is replaced. kRejected for an empty id.
  virtual Result<void> create(const Session& session, std::chrono::milliseconds ttl) = 0;
  // The session, as created, while its ttl runs; nullopt when there is
  // none (never created, removed, expired, or unreadable).
  virtual Result<std::optional<Session>> find(const std::string& id) = 0;
  // Ends a session; removing one that does not exist is no error.
  virtual Result<void> remove(const std::string& id) = 0;

  // Remembers `data` under an OAuth `state` for `ttl` (at least 1 ms).
  virtual Result<void> put_state(const std::string& state, const std::string& data, std::chrono::milliseconds ttl) = 0;
  // The data put under `state`, and forgets it in the same step: of any
  // number of concurrent calls for one state, exactly one gets the data.
  // nullopt when unknown, taken before, or expired.
  virtual Result<std::optional<std::string>> take_state(const std::string& state) = 0;
};

}  // namespace flurry::state
