#pragma once
// A small bounded cache of answers that expire, for the access rules:
// a page listing 10,000 jobs of one repository asks the forge once per
// cache lifetime, not 10,000 times. Thread-safe.
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace flurry::web {

template <typename V>
class TtlCache {
 public:
  explicit TtlCache(std::size_t max_entries) : max_(max_entries == 0 ? 1 : max_entries) {}

  // The value put under `key`, while it has not expired at `now_ms`.
  std::optional<V> get(const std::string& key, std::int64_t now_ms) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    if (it->second.until_ms <= now_ms) {
      order_.erase(it->second.order);
      entries_.erase(it);
      return std::nullopt;
    }
    return it->second.value;
  }

  // Keeps `value` until `until_ms`; when full, the oldest entry makes room.
  void put(const std::string& key, V value, std::int64_t until_ms) {
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(key); it != entries_.end()) {
      order_.erase(it->second.order);
      entries_.erase(it);
    }
    while (entries_.size() >= max_) {
      entries_.erase(order_.front());
      order_.pop_front();
    }
    order_.push_back(key);
    entries_.emplace(key, Entry{std::move(value), until_ms, std::prev(order_.end())});
  }

  std::size_t size() const {
    std::lock_guard lock(mu_);
    return entries_.size();
  }

 private:
  struct Entry {
    V value;
    std::int64_t until_ms = 0;
    std::list<std::string>::iterator order;
  };
  const std::size_t max_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
  std::list<std::string> order_;  // keys, oldest first
};

}  // namespace flurry::web
