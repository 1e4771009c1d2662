#include "flurry/state/testing/memory_store.hpp"
#include "state_contract.hpp"

namespace {
struct MemoryFactory {
  static std::unique_ptr<flurry::state::StateStore> make() {
    return std::make_unique<flurry::state::testing::MemoryStore>();
  }
};
}  // namespace

namespace flurry::state::contract {
INSTANTIATE_TYPED_TEST_SUITE_P(Memory, StateContract, MemoryFactory);
}
