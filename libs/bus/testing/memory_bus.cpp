#include "flurry/bus/testing/memory_bus.hpp"

#include <algorithm>

#include "flurry/messages/messages.hpp"
#include "flurry/messages/subjects.hpp"

namespace flurry::bus::testing {

bool subject_matches(const std::string& filter, const std::string& subject) {
  if (!filter.empty() && filter.back() == '>') return subject.rfind(filter.substr(0, filter.size() - 1), 0) == 0;
  return filter == subject;
}

Result<void> MemoryBus::consume(const ConsumerSpec& spec, Handler handler, const std::atomic<bool>& stop) {
  for (std::size_t i = 0;; ++i) {
    OutMessage m;
    {
      std::lock_guard lock(mu_);
      if (i >= messages_.size() || stop.load()) break;
      if (!subject_matches(spec.filter_subject, messages_[i].subject)) continue;
      if (!consumed_.insert({spec.durable, i}).second) continue;
      m = messages_[i];
    }
    for (std::uint64_t n = 1;; ++n) {
      Delivery d{m.subject, m.data, n, i + 1};
      d.consumer = spec.durable;
      auto disp = handler(d);
      if (disp.kind == Disposition::Kind::kAck) break;
      if (disp.kind == Disposition::Kind::kDeadLetter || n >= static_cast<std::uint64_t>(spec.max_deliver)) {
        msg::DeadLetter dl{spec.durable, m.subject, disp.reason, n, m.data};
        auto r = publish({subjects::dead(spec.durable), msg::encode(dl), ""});
        if (!r) return r;
        break;
      }
    }
  }
  return {};
}

Result<void> MemoryBus::consume_pool(ConsumerSource source, int, Handler handler, const std::atomic<bool>& stop) {
  for (const auto& spec : source()) {
    if (auto r = consume(spec, handler, stop); !r) return r;
  }
  return {};
}

Result<std::vector<std::string>> MemoryBus::stored_subjects(const std::string&, const std::string& filter) {
  std::lock_guard lock(mu_);
  std::set<std::string> out;
  for (std::size_t i = 0; i < messages_.size(); ++i) {
    const auto& subject = messages_[i].subject;
    if (!subject_matches(filter, subject)) continue;
    bool taken = std::any_of(consumed_.begin(), consumed_.end(), [&](const auto& c) { return c.second == i; });
    if (!taken) out.insert(subject);
  }
  return std::vector<std::string>(out.begin(), out.end());
}

}  // namespace flurry::bus::testing
