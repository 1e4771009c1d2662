#include "flurry/core/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <vector>

#include "flurry/core/error.hpp"

namespace flurry {
std::string_view to_string(ErrorCode c) {
  switch (c) {
    case ErrorCode::kTransient: return "transient";
    case ErrorCode::kPoison: return "poison";
    case ErrorCode::kRejected: return "rejected";
    case ErrorCode::kNotFound: return "not_found";
  }
  return "unknown";
}
}  // namespace flurry

namespace flurry::log {
namespace {
struct State {
  std::mutex mu;
  std::string service = "flurry";
  Level min_level = Level::kInfo;
  std::vector<std::string> secrets;
};
State& state() {
  static State s;
  return s;
}
std::string_view level_name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}
std::string now_iso8601() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}
std::string redact_locked(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    for (auto pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos + 10)) {
      text.replace(pos, s.size(), "[redacted]");
    }
  }
  return text;
}
}  // namespace

void init(std::string service, Level min_level) {
  auto& s = state();
  std::lock_guard lock(s.mu);
  s.service = std::move(service);
  s.min_level = min_level;
}

bool parse_level(std::string_view v, Level& out) {
  if (v == "debug") out = Level::kDebug;
  else if (v == "info") out = Level::kInfo;
  else if (v == "warn") out = Level::kWarn;
  else if (v == "error") out = Level::kError;
  else return false;
  return true;
}

void register_secret(std::string value) {
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  if (value.size() < 4) return;
  auto& s = state();
  std::lock_guard lock(s.mu);
  // Lines are JSON, so a secret with quotes or backslashes appears escaped.
  for (std::string form : {value, json_escape(value)}) {
    bool known = false;
    for (const auto& existing : s.secrets) known = known || existing == form;
    if (!known) s.secrets.push_back(std::move(form));
  }
}

std::string redact(std::string text) {
  auto& s = state();
  std::lock_guard lock(s.mu);
  return redact_locked(std::move(text), s.secrets);
}

std::string json_escape(std::string_view in) {
  std::string out;
  out.reserve(in.size() + 2);
  for (unsigned char c : in) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);  // UTF-8 passes through unchanged
        }
    }
  }
  return out;
}

void write(Level level, std::string_view event, std::string_view msg, Fields fields) {
  auto& s = state();
  if (level < s.min_level) return;
  std::string line;
  line.reserve(160);
  line += "{\"ts\":\"" + now_iso8601() + "\",\"level\":\"";
  line += level_name(level);
  line += "\",\"service\":\"" + json_escape(s.service) + "\",\"event\":\"" + json_escape(event) +
          "\",\"msg\":\"" + json_escape(msg) + "\"";
  for (const auto& f : fields) {
    line += ",\"" + json_escape(f.key) + "\":";
    if (f.raw) line += f.value;
    else line += "\"" + json_escape(f.value) + "\"";
  }
  line += "}\n";
  std::lock_guard lock(s.mu);
  line = redact_locked(std::move(line), s.secrets);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace flurry::log
