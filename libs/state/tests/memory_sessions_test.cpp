// The Sessions contract on the in-memory fake, its time moved by hand.
#include "flurry/state/testing/memory_sessions.hpp"
#include "sessions_contract.hpp"

namespace {
struct MemorySessionsFactory {
  static flurry::state::contract::SessionsRig make() {
    auto clock = std::make_shared<flurry::ManualClock>();
    flurry::state::contract::SessionsRig rig;
    rig.owner = clock;
    rig.sessions = std::make_unique<flurry::state::testing::MemorySessions>(*clock);
    rig.pass = [clock](std::chrono::milliseconds d) { clock->advance_ms(d.count()); };
    return rig;
  }
};
}  // namespace

namespace flurry::state::contract {
INSTANTIATE_TYPED_TEST_SUITE_P(Memory, SessionsContract, MemorySessionsFactory);
}
