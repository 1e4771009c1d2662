#pragma once
// Service configuration: one TOML file plus `--set key=value` overrides.
// Keys are dotted paths ("nats.url", "builder.slots"). A missing required
// key or a value of the wrong type throws ConfigError at start-up: refusing
// to start on bad config is what exceptions are for.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace flurry {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Config {
 public:
  Config();
  ~Config();
  Config(Config&&) noexcept;
  Config& operator=(Config&&) noexcept;

  static Config from_file(const std::string& path);   // throws ConfigError
  static Config from_string(const std::string& toml);  // throws ConfigError
  // Applies "a.b.c=value"; value is read as TOML when it parses (numbers,
  // booleans, arrays, quoted strings), otherwise as a bare string.
  void set(const std::string& assignment);  // throws ConfigError

  bool has(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  std::string require_string(const std::string& key) const;
  std::int64_t get_int(const std::string& key, std::int64_t fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::vector<std::string> get_string_list(const std::string& key, std::vector<std::string> fallback) const;
  std::chrono::milliseconds get_duration_ms(const std::string& key, std::chrono::milliseconds fallback) const;
  // Keys directly under a table ("effects.secrets" -> its member names).
  std::vector<std::string> keys(const std::string& table) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads a secret from a file (trailing newlines trimmed) and registers it
// with the logger for redaction. Throws ConfigError if unreadable or empty.
std::string read_secret_file(const std::string& path);

// Whole file contents, or an error.
std::optional<std::string> read_file(const std::string& path);

}  // namespace flurry
