#pragma once
// Flag and config parsing shared by every service (exposed for tests).
#include <string>
#include <utility>
#include <vector>

#include "flurry/core/config.hpp"

namespace flurry::service {

struct Flags {
  std::string config_path;
  std::vector<std::string> sets;  // "section.key=value"
  std::string log_level;
};

// The config file (if any) with every --set applied. Throws ConfigError.
Config load_config(const Flags& flags);
// "127.0.0.1:8080" -> {"127.0.0.1", 8080}. Throws ConfigError.
std::pair<std::string, int> parse_listen(const std::string& listen);

}  // namespace flurry::service
