#pragma once
// An in-memory Sessions: the reference semantics for the Redis adapter
// (both pass libs/state/tests/sessions_contract.hpp). Entries expire by
// `clock`, so tests can move time on. Thread-safe.
#include <map>
#include <mutex>

#include "flurry/core/clock.hpp"
#include "flurry/state/sessions.hpp"

namespace flurry::state::testing {

class MemorySessions final : public Sessions {
 public:
  explicit MemorySessions(Clock& clock) : clock_(clock) {}
  Result<void> create(const Session& session, std::chrono::milliseconds ttl) override;
  Result<std::optional<Session>> find(const std::string& id) override;
  Result<void> remove(const std::string& id) override;
  Result<void> put_state(const std::string& state, const std::string& data, std::chrono::milliseconds ttl) override;
  Result<std::optional<std::string>> take_state(const std::string& state) override;

  // What is stored now, expired entries included (for tests).
  std::size_t session_count() const;
  std::size_t state_count() const;

 private:
  template <typename T>
  struct Entry {
    T value;
    std::int64_t until_ms = 0;
  };
  mutable std::mutex mu_;
  Clock& clock_;
  std::map<std::string, Entry<Session>> sessions_;
  std::map<std::string, Entry<std::string>> states_;
};

}  // namespace flurry::state::testing
