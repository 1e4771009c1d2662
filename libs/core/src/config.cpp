#include "flurry/core/config.hpp"

#include <fstream>
#include <sstream>
#include <toml++/toml.h>

#include "flurry/core/log.hpp"

namespace flurry {

struct Config::Impl {
  toml::table root;

  const toml::node* find(const std::string& key) const {
    return root.at_path(key).node();
  }
};

Config::Config() : impl_(std::make_unique<Impl>()) {}
Config::~Config() = default;
Config::Config(Config&&) noexcept = default;
Config& Config::operator=(Config&&) noexcept = default;

Config Config::from_string(const std::string& text) {
  Config c;
  try {
    c.impl_->root = toml::parse(text);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << "config: " << e.description() << " at line " << e.source().begin.line;
    throw ConfigError(os.str());
  }
  return c;
}

Config Config::from_file(const std::string& path) {
  auto text = read_file(path);
  if (!text) throw ConfigError("config: cannot read " + path);
  try {
    return from_string(*text);
  } catch (const ConfigError& e) {
    throw ConfigError(std::string(e.what()) + " in " + path);
  }
}

void Config::set(const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) throw ConfigError("config: --set wants key=value, got '" + assignment + "'");
  std::string key = assignment.substr(0, eq);
  std::string value = assignment.substr(eq + 1);
  // Parse `v = <value>` as TOML; fall back to a plain string.
  std::optional<toml::table> parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
  }
  toml::table* table = &impl_->root;
  std::string_view rest = key;
  while (true) {
    auto dot = rest.find('.');
    if (dot == std::string_view::npos) break;
    std::string part(rest.substr(0, dot));
    rest = rest.substr(dot + 1);
    auto* child = table->get(part);
    if (!child) {
      table->insert(part, toml::table{});
      child = table->get(part);
    }
    if (!child->is_table()) throw ConfigError("config: " + key + ": " + part + " is not a table");
    table = child->as_table();
  }
  std::string leaf(rest);
  if (parsed && parsed->get("v")) {
    parsed->get("v")->visit([&](auto& x) { table->insert_or_assign(leaf, std::move(x)); });
  } else {
    table->insert_or_assign(leaf, value);
  }
}

bool Config::has(const std::string& key) const { return impl_->find(key) != nullptr; }

std::string Config::get_string(const std::string& key, const std::string& fallback) const {
  const auto* n = impl_->find(key);
  if (!n) return fallback;
  if (auto s = n->value<std::string>()) return *s;
  throw ConfigError("config: " + key + " must be a string");
}

std::string Config::require_string(const std::string& key) const {
  if (!has(key)) throw ConfigError("config: " + key + " is required");
  return get_string(key, "");
}

std::int64_t Config::get_int(const std::string& key, std::int64_t fallback) const {
  const auto* n = impl_->find(key);
  if (!n) return fallback;
  if (n->is_integer()) return n->as_integer()->get();
  throw ConfigError("config: " + key + " must be an integer");
}

bool Config::get_bool(const std::string& key, bool fallback) const {
  const auto* n = impl_->find(key);
  if (!n) return fallback;
  if (n->is_boolean()) return n->as_boolean()->get();
  throw ConfigError("config: " + key + " must be true or false");
}

std::vector<std::string> Config::get_string_list(const std::string& key, std::vector<std::string> fallback) const {
  const auto* n = impl_->find(key);
  if (!n) return fallback;
  const auto* arr = n->as_array();
  if (!arr) throw ConfigError("config: " + key + " must be an array of strings");
  std::vector<std::string> out;
  for (const auto& el : *arr) {
    auto s = el.value<std::string>();
    if (!s) throw ConfigError("config: " + key + " must be an array of strings");
    out.push_back(*s);
  }
  return out;
}

std::chrono::milliseconds Config::get_duration_ms(const std::string& key, std::chrono::milliseconds fallback) const {
  const auto* n = impl_->find(key);
  if (!n) return fallback;
  if (n->is_integer()) return std::chrono::milliseconds(n->as_integer()->get());
  if (auto s = n->value<std::string>()) {
    // "250ms", "30s", "5m", "2h"
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(*s, &used);
    } catch (...) {
      throw ConfigError("config: " + key + " must be a duration like 30s");
    }
    std::string unit = s->substr(used);
    if (unit == "ms") return std::chrono::milliseconds(v);
    if (unit == "s" || unit.empty()) return std::chrono::seconds(v);
    if (unit == "m") return std::chrono::minutes(v);
    if (unit == "h") return std::chrono::hours(v);
  }
  throw ConfigError("config: " + key + " must be a duration like 30s (or milliseconds)");
}

std::vector<std::string> Config::keys(const std::string& table) const {
  const auto* n = impl_->find(table);
  std::vector<std::string> out;
  if (!n || !n->is_table()) return out;
  for (const auto& [k, v] : *n->as_table()) out.emplace_back(k.str());
  return out;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::string read_secret_file(const std::string& path) {
  auto text = read_file(path);
  if (!text) throw ConfigError("cannot read secret file " + path);
  while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) text->pop_back();
  if (text->empty()) throw ConfigError("secret file " + path + " is empty");
  log::register_secret(*text);
  return *text;
}

}  // namespace flurry
