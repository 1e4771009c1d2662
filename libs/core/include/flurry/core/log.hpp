#pragma once
// One structured log line per event: a JSON object on stderr with ts, level,
// service, event, msg and the caller's fields. Registered secret values are
// replaced by "[redacted]" wherever they appear in a line.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace flurry::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, std::int64_t v) : key(k), value(std::to_string(v)), raw(true) {}
  Field(std::string_view k, int v) : key(k), value(std::to_string(v)), raw(true) {}
  Field(std::string_view k, std::uint64_t v) : key(k), value(std::to_string(v)), raw(true) {}
  Field(std::string_view k, double v) : key(k), value(std::to_string(v)), raw(true) {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), raw(true) {}
  std::string_view key;
  std::string value;
  bool raw = false;  // emit unquoted (numbers, booleans)
};
using Fields = std::initializer_list<Field>;

// Process-wide setup; call once from main before logging.
void init(std::string service, Level min_level = Level::kInfo);
bool parse_level(std::string_view s, Level& out);
// Any later line containing `value` shows "[redacted]" instead. Values
// shorter than 4 characters are ignored (they would redact everything).
void register_secret(std::string value);
// Replaces registered secrets in `text`.
std::string redact(std::string text);

void write(Level level, std::string_view event, std::string_view msg, Fields fields);
inline void debug(std::string_view e, std::string_view m, Fields f = {}) { write(Level::kDebug, e, m, f); }
inline void info(std::string_view e, std::string_view m, Fields f = {}) { write(Level::kInfo, e, m, f); }
inline void warn(std::string_view e, std::string_view m, Fields f = {}) { write(Level::kWarn, e, m, f); }
inline void error(std::string_view e, std::string_view m, Fields f = {}) { write(Level::kError, e, m, f); }

// JSON string escaping, exposed for tests and for other line writers.
std::string json_escape(std::string_view s);

}  // namespace flurry::log
