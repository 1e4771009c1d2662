#include "catalog_contract.hpp"
#include "flurry/state/testing/memory_catalog.hpp"

namespace {
struct MemoryFactory {
  static std::unique_ptr<flurry::state::Catalog> make() { return std::make_unique<flurry::state::testing::MemoryCatalog>(); }
};
}  // namespace

namespace flurry::state::catalog_contract {
INSTANTIATE_TYPED_TEST_SUITE_P(Memory, CatalogContract, MemoryFactory);
}
