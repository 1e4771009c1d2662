#pragma once
// The message bus port. Production: JetStream (nats_bus.hpp). Tests:
// MemoryBus (testing/memory_bus.hpp).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "flurry/core/error.hpp"

namespace flurry::bus {

struct OutMessage {
  std::string subject;
  std::string data;
  // JetStream dedupes messages with the same id within its duplicate
  // window, which makes republishing after a crash harmless. Empty = none.
  std::string msg_id;
};

// One delivery of a stored message to a consumer.
struct Delivery {
  std::string subject;
  std::string data;
  std::uint64_t num_delivered = 1;  // 1 on first delivery
  std::uint64_t stream_seq = 0;
  std::string consumer;  // the durable that delivered it
  // Tells the server the handler is still working (extends the ack wait).
  std::function<void()> in_progress = [] {};
};

// What to do with a delivery once the handler returns.
struct Disposition {
  enum class Kind { kAck, kNak, kDeadLetter };
  Kind kind = Kind::kAck;
  std::chrono::milliseconds delay{0};  // for kNak: redeliver after this
  std::string reason;                  // for kNak / kDeadLetter

  static Disposition ack() { return {}; }
  static Disposition nak(std::string why, std::chrono::milliseconds delay = std::chrono::seconds(1)) {
    return {Kind::kNak, delay, std::move(why)};
  }
  static Disposition dead_letter(std::string why) { return {Kind::kDeadLetter, {}, std::move(why)}; }
};

// Maps a failure to its disposition: transient -> nak with backoff that
// grows with the delivery count; poison -> dead-letter; rejected and
// not-found -> ack (the handler already reported it).
Disposition disposition_for(const Error& e, std::uint64_t num_delivered);
// For work that is not done yet whatever the error says: like
// disposition_for, but never an ack (a rejected or not-found error naks).
Disposition retry_later(const Error& e, std::uint64_t num_delivered);

using Handler = std::function<Disposition(const Delivery&)>;

struct ConsumerSpec {
  std::string stream;          // e.g. subjects::kBuildsStream
  std::string durable;         // shared by all instances of a service
  std::string filter_subject;  // e.g. "flurry.build.x86_64-linux"
  int max_deliver = 5;         // after this many naks the message is dead-lettered
  std::chrono::milliseconds ack_wait{30000};
  int concurrency = 1;         // messages handled at once by this process
};

// Deliveries a consumer allows beyond its handler's own last attempt, for
// handlers that count their attempts (builder, evaluator) and end the work
// themselves on the last one. Deliveries that find Redis or NATS away end
// in a nak and must not use the attempts up; with disposition_for's
// backoff (1 s doubling to a minute) these span about eight minutes.
inline constexpr int kOutageDeliveries = 10;

// The consumers a pool drains now; asked again before every fetch.
using ConsumerSource = std::function<std::vector<ConsumerSpec>()>;

// What a consumer has not finished yet.
struct QueueDepth {
  std::uint64_t waiting = 0;    // stored, not yet delivered
  std::uint64_t in_flight = 0;  // delivered, not yet acknowledged
};

class Bus {
 public:
  virtual ~Bus() = default;
  // Returns once the stream has stored the message (or found it a
  // duplicate). An error means it was not stored: the caller must not
  // acknowledge whatever caused the publish.
  virtual Result<void> publish(const OutMessage& msg) = 0;
  // Delivers messages to `handler` until `stop` becomes true, then returns
  // after in-flight handlers finish. A delivery whose handler naks after
  // `max_deliver` deliveries, or dead-letters, is published to
  // subjects::dead(durable) as a msg::DeadLetter and then terminated.
  virtual Result<void> consume(const ConsumerSpec& spec, Handler handler, const std::atomic<bool>& stop) = 0;
  // Like consume, for the consumers `source` lists, drained by one pool of
  // `concurrency` handlers (their own concurrency is ignored): no more than
  // `concurrency` messages are handled at once, whichever consumers they
  // come from, and every listed consumer gets its turn. The list may change
  // while it runs (a builder's queues per set of system features).
  // Test doubles need not support it.
  virtual Result<void> consume_pool(ConsumerSource, int, Handler, const std::atomic<bool>&) {
    return fail(Error::transient("pooled consumers are not available"));
  }
  // The subjects under `filter` with messages stored in `stream` (for a
  // work queue: taken or not, not yet acknowledged).
  virtual Result<std::vector<std::string>> stored_subjects(const std::string& stream, const std::string& filter) {
    return fail(Error::transient("stored subjects are not available for " + stream + " " + filter));
  }
  // True while connected to the server.
  virtual bool healthy() = 0;
  // The backlog of the consumer `spec` names (created if missing, as
  // consume would). Test doubles need not support it.
  virtual Result<QueueDepth> queue_depth(const ConsumerSpec& spec) {
    return fail(Error::transient("queue depth is not available for " + spec.durable));
  }
};

}  // namespace flurry::bus
