#include "flurry/state/testing/memory_sessions.hpp"

#include <algorithm>

#include "flurry/core/log.hpp"

namespace flurry::state::testing {
namespace {
std::int64_t at_least_one(std::chrono::milliseconds ttl) { return std::max<std::int64_t>(1, ttl.count()); }
}  // namespace

Result<void> MemorySessions::create(const Session& session, std::chrono::milliseconds ttl) {
  if (session.id.empty()) return fail(Error::rejected("a session needs an id"));
  std::lock_guard lock(mu_);
  sessions_[session.id] = {session, clock_.now_ms() + at_least_one(ttl)};
  return {};
}

Result<std::optional<Session>> MemorySessions::find(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::optional<Session>();
  if (it->second.until_ms <= clock_.now_ms()) {
    sessions_.erase(it);
    return std::optional<Session>();
  }
  log::register_secret(it->second.value.access_token);
  return std::optional<Session>(it->second.value);
}

Result<void> MemorySessions::remove(const std::string& id) {
  std::lock_guard lock(mu_);
  sessions_.erase(id);
  return {};
}

Result<void> MemorySessions::put_state(const std::string& state, const std::string& data, std::chrono::milliseconds ttl) {
  std::lock_guard lock(mu_);
  states_[state] = {data, clock_.now_ms() + at_least_one(ttl)};
  return {};
}

Result<std::optional<std::string>> MemorySessions::take_state(const std::string& state) {
  std::lock_guard lock(mu_);
  auto it = states_.find(state);
  if (it == states_.end()) return std::optional<std::string>();
  auto entry = std::move(it->second);
  states_.erase(it);
  if (entry.until_ms <= clock_.now_ms()) return std::optional<std::string>();
  return std::optional<std::string>(std::move(entry.value));
}

std::size_t MemorySessions::session_count() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

std::size_t MemorySessions::state_count() const {
  std::lock_guard lock(mu_);
  return states_.size();
}

}  // namespace flurry::state::testing
