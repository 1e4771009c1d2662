#pragma once
// Webhook fixtures (tests/fixtures/webhooks/<forge>/<name>.json) and the
// requests a forge would send them in.
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "flurry/bus/testing/memory_bus.hpp"
#include "flurry/core/clock.hpp"
#include "webhook.hpp"

namespace flurry::ingest::fixtures {

inline std::string fixture(const std::string& forge, const std::string& name) {
  const std::string path = std::string(FLURRY_SOURCE_DIR) + "/tests/fixtures/webhooks/" + forge + "/" + name + ".json";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("no fixture " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A MemoryBus and a clock, and the change events published so far.
struct IngestFixture {
  bus::testing::MemoryBus bus;
  ManualClock clock{1000};
  IngestPorts ports() { return {bus, clock}; }
  std::vector<msg::ChangeEvent> changes(const std::string& forge) {
    std::vector<msg::ChangeEvent> out;
    for (const auto& m : bus.published("flurry.change." + forge)) {
      auto c = msg::decode_change_event(m.data);
      if (!c) throw std::runtime_error("undecodable change: " + c.error().message);
      out.push_back(*c);
    }
    return out;
  }
};

}  // namespace flurry::ingest::fixtures
