#include <algorithm>

#include "flurry/bus/bus.hpp"

namespace flurry::bus {

Disposition disposition_for(const Error& e, std::uint64_t num_delivered) {
  switch (e.code) {
    case ErrorCode::kTransient: {
      // 1s, 2s, 4s, ... capped at a minute.
      auto shift = std::min<std::uint64_t>(num_delivered > 0 ? num_delivered - 1 : 0, 6);
      auto delay = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(1000LL << shift), std::chrono::minutes(1));
      return Disposition::nak(e.message, delay);
    }
    case ErrorCode::kPoison:
      return Disposition::dead_letter(e.message);
    case ErrorCode::kRejected:
    case ErrorCode::kNotFound:
      return Disposition::ack();
  }
  return Disposition::nak(e.message);
}

Disposition retry_later(const Error& e, std::uint64_t num_delivered) {
  auto d = disposition_for(e, num_delivered);
  if (d.kind == Disposition::Kind::kAck) d = Disposition::nak(e.message);
  return d;
}

}  // namespace flurry::bus
