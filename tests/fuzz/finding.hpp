#pragma once
// A fuzz target's own checks: a broken property is a finding like a crash,
// so it aborts (libFuzzer then saves the input as a crash artifact).
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace flurry::fuzz {

[[noreturn]] inline void finding(std::string_view what, std::string_view detail = {}) {
  std::fprintf(stderr, "FUZZ FINDING: %.*s\n%.*s\n", static_cast<int>(what.size()), what.data(), static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

}  // namespace flurry::fuzz
