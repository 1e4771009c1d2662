#pragma once
// An in-memory Bus for unit tests: records publishes (deduping msg ids like
// JetStream), can be told to fail publishes, and can deliver stored
// messages to a consumer synchronously.
#include <deque>
#include <mutex>
#include <set>
#include <vector>

#include "flurry/bus/bus.hpp"

namespace flurry::bus::testing {

class MemoryBus final : public Bus {
 public:
  Result<void> publish(const OutMessage& msg) override {
    std::lock_guard lock(mu_);
    if (fail_publishes_ > 0) {
      --fail_publishes_;
      return fail(Error::transient("memory bus: publish failed (injected)"));
    }
    if (!msg.msg_id.empty() && !ids_.insert(msg.msg_id).second) return {};
    messages_.push_back(msg);
    return {};
  }

  // Delivers every stored message matching the filter (exact, or prefix
  // when it ends in ">") once, in order, then returns. Naked messages are
  // redelivered until max_deliver, then dead-lettered as the real bus does.
  Result<void> consume(const ConsumerSpec& spec, Handler handler, const std::atomic<bool>& stop) override;

  // Each listed consumer in turn, as consume does (synchronously).
  Result<void> consume_pool(ConsumerSource source, int concurrency, Handler handler, const std::atomic<bool>& stop) override;

  // Subjects of stored messages not yet acknowledged by any consumer whose
  // filter matches them.
  Result<std::vector<std::string>> stored_subjects(const std::string& stream, const std::string& filter) override;

  bool healthy() override { return true; }

  std::vector<OutMessage> published(const std::string& subject_prefix = "") const {
    std::lock_guard lock(mu_);
    std::vector<OutMessage> out;
    for (const auto& m : messages_) {
      if (m.subject.rfind(subject_prefix, 0) == 0) out.push_back(m);
    }
    return out;
  }
  void clear() {
    std::lock_guard lock(mu_);
    messages_.clear();
  }
  void fail_next_publishes(int n) {
    std::lock_guard lock(mu_);
    fail_publishes_ = n;
  }

 private:
  mutable std::mutex mu_;
  std::vector<OutMessage> messages_;
  std::set<std::string> ids_;
  int fail_publishes_ = 0;
  std::set<std::pair<std::string, std::size_t>> consumed_;  // (durable, index)
};

bool subject_matches(const std::string& filter, const std::string& subject);

}  // namespace flurry::bus::testing
