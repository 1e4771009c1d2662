#pragma once
#include <chrono>
#include <cstdint>

namespace flurry {

// Time as a port, so tests can drive it.
class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock milliseconds since the Unix epoch (recorded in state).
  virtual std::int64_t now_ms() = 0;
  // Wall-clock microseconds since the Unix epoch (orders status events).
  virtual std::int64_t now_us() = 0;
};

class SystemClock final : public Clock {
 public:
  std::int64_t now_ms() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
  std::int64_t now_us() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
};

// A clock tests set by hand.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t start_ms = 1'700'000'000'000) : us_(start_ms * 1000) {}
  std::int64_t now_ms() override { return us_ / 1000; }
  std::int64_t now_us() override { return ++us_; }  // strictly increasing
  void advance_ms(std::int64_t ms) { us_ += ms * 1000; }

 private:
  std::int64_t us_;
};

}  // namespace flurry
