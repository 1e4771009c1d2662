#pragma once
// The options of a whole local stack for an end-to-end test: everything
// under `tmp`/state, the services of this build tree, the test nix
// configuration. Tests add forges, config lines or secrets as they need.
#include "flurry/stack/stack.hpp"
#include "flurry/test/servers.hpp"

namespace flurry::test {

inline stack::StackOptions local_stack_options(const TempDir& tmp) {
  stack::StackOptions o;
  o.state_dir = tmp.file("state");
  o.bin_dir = FLURRY_BINARY_DIR;
  o.env["NIX_CONFIG"] = test_nix_config();
  return o;
}

}  // namespace flurry::test
