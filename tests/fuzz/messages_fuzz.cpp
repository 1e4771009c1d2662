// Every bus message decoder on arbitrary bytes. A decoder may refuse
// anything, but what it accepts must survive the trip a consumer makes of
// it: encode(decoded) decodes again, to the same value, and encodes to the
// same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "finding.hpp"
#include "flurry/messages/messages.hpp"

namespace {

using namespace flurry;

template <typename Decode>
void round_trip(std::string_view type, std::string_view input, Decode decode) {
  auto first = decode(input);
  if (!first) return;
  const std::string once = msg::encode(*first);
  auto second = decode(once);
  if (!second) {
    fuzz::finding(std::string(type) + ": its own encoding does not decode: " + second.error().message,
                  "input:   " + std::string(input) + "\nencoded: " + once);
  }
  if (!(*second == *first)) fuzz::finding(std::string(type) + ": decode(encode(x)) != x", "input:   " + std::string(input) + "\nencoded: " + once);
  const std::string twice = msg::encode(*second);
  if (twice != once) fuzz::finding(std::string(type) + ": encoding is not stable", "once:  " + once + "\ntwice: " + twice);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  round_trip("change_event", input, msg::decode_change_event);
  round_trip("build_request", input, msg::decode_build_request);
  round_trip("job_finished", input, msg::decode_job_finished);
  round_trip("eval_finished", input, msg::decode_eval_finished);
  round_trip("status_event", input, msg::decode_status_event);
  round_trip("dead_letter", input, msg::decode_dead_letter);
  return 0;
}
