// The repository config parser (flurry.toml and its buildbot-nix
// spellings) on arbitrary text: it reads what a pushed commit holds. What
// it accepts keeps its promises: paths stay inside the repository and the
// attribute path is made of plain names.
#include <cstddef>
#include <cstdint>
#include <string>

#include "finding.hpp"
#include "flurry/core/text.hpp"
#include "flurry/repo/repo_config.hpp"

using namespace flurry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  auto config = repo::parse_repo_config("flurry.toml", input);
  if (!config) return 0;
  for (const auto* path : {&config->flake_dir, &config->lock_file}) {
    if (path->empty() || path->front() == '/') fuzz::finding("an accepted config path is empty or absolute", *path);
    for (const auto& part : text::split(*path, '/')) {
      if (part == "..") fuzz::finding("an accepted config path leaves the repository", *path);
    }
  }
  if (config->attribute.empty()) fuzz::finding("an accepted config has no attribute path");
  for (const auto& part : config->attribute) {
    if (part.empty()) fuzz::finding("an accepted attribute path has an empty component");
  }
  return 0;
}
