#include "flurry/nix/nix_log.hpp"

#include <nlohmann/json.hpp>
#include <optional>

#include "flurry/core/text.hpp"

namespace flurry::nix {
namespace {

using json = nlohmann::json;
using Names = std::map<std::uint64_t, std::string>;

constexpr std::string_view kJsonPrefix = "@nix ";
// nix's ActivityType and ResultType numbers (src/libutil/logging.hh).
constexpr std::uint64_t kActBuild = 105;
constexpr std::uint64_t kActPostBuildHook = 110;
constexpr std::uint64_t kActBuildWaiting = 111;
constexpr std::uint64_t kResBuildLogLine = 101;
constexpr std::uint64_t kResPostBuildLogLine = 107;
// nix's default verbosity (lvlInfo): what it prints without -v.
constexpr std::uint64_t kShownLevel = 3;
// Activities end with "stop"; a stream that never stops them must not
// grow the table without end (lines past it lose their prefix).
constexpr std::size_t kMaxActivities = 65536;

const std::string* string_at(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? nullptr : it->get_ptr<const std::string*>();
}

std::optional<std::uint64_t> unsigned_at(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<std::uint64_t>();
}

// fields[0] as a string, if it is one.
const std::string* first_field(const json& j) {
  auto it = j.find("fields");
  if (it == j.end() || !it->is_array() || it->empty()) return nullptr;
  return (*it)[0].get_ptr<const std::string*>();
}

// Printed at nix's default verbosity; no level counts as shown.
bool shown(const json& j) {
  auto it = j.find("level");
  return it == j.end() || !it->is_number_unsigned() || it->get<std::uint64_t>() <= kShownLevel;
}

// The name nix prefixes a derivation's log lines with: the .drv path's
// name without ".drv" and without its version (DrvName: it ends at the
// first '-' that is followed by a non-letter), "hello" for hello-2.12.
std::string drv_log_name(std::string_view drv_path) {
  auto base = drv_path.substr(drv_path.rfind('/') + 1);
  auto dash = base.find('-');
  auto name = dash == std::string_view::npos ? std::string_view() : base.substr(dash + 1);
  if (text::ends_with(name, ".drv")) name.remove_suffix(4);
  for (std::size_t i = 0; i + 1 < name.size(); ++i) {
    char next = name[i + 1];
    bool letter = (next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z');
    if (name[i] == '-' && !letter) return std::string(name.substr(0, i));
  }
  return std::string(name);
}

// Trailing whitespace removed, as nix does to build log lines.
std::string_view chomp(std::string_view s) {
  auto end = s.find_last_not_of(" \n\r\t");
  return end == std::string_view::npos ? std::string_view() : s.substr(0, end + 1);
}

bool on_start(const json& j, Names& names, std::string& out) {
  auto id = unsigned_at(j, "id");
  auto type = unsigned_at(j, "type");
  const auto* text = string_at(j, "text");
  if (!id || !type || !text) return false;
  const auto* drv = first_field(j);
  if (drv && (*type == kActBuild || *type == kActPostBuildHook) && names.size() < kMaxActivities) {
    names[*id] = drv_log_name(*drv);
  }
  if (!text->empty() && *type != kActBuildWaiting && shown(j)) out.append(*text).append("...\n");
  return true;
}

bool on_result(const json& j, const Names& names, std::string& out) {
  auto id = unsigned_at(j, "id");
  auto type = unsigned_at(j, "type");
  if (!id || !type) return false;
  if (*type != kResBuildLogLine && *type != kResPostBuildLogLine) return true;
  const auto* line = first_field(j);
  if (!line) return false;
  if (auto it = names.find(*id); it != names.end()) {
    out.append(it->second).append(*type == kResPostBuildLogLine ? " (post)> " : "> ");
  }
  out.append(chomp(*line)).append("\n");
  return true;
}

bool on_msg(const json& j, std::string& out) {
  const auto* msg = string_at(j, "msg");
  if (!msg) return false;
  if (shown(j)) out.append(*msg).append("\n");
  return true;
}

// Whether `j` was understood (what it says, if anything, is in `out`).
bool interpret(const json& j, Names& names, std::string& out) {
  const auto* action = string_at(j, "action");
  if (!action) return false;
  if (*action == "start") return on_start(j, names, out);
  if (*action == "result") return on_result(j, names, out);
  if (*action == "msg") return on_msg(j, out);
  if (*action == "stop") {
    if (auto id = unsigned_at(j, "id")) names.erase(*id);
  }
  // stop, and anything later nix versions add: bookkeeping, not log text.
  return true;
}

}  // namespace

void NixLogTranslator::feed(std::string_view chunk) {
  std::string out;
  while (!chunk.empty()) {
    auto nl = chunk.find('\n');
    std::size_t taken = nl == std::string_view::npos ? chunk.size() : nl + 1;
    if (overlong_) {
      out.append(chunk.substr(0, taken));
      overlong_ = nl == std::string_view::npos;
    } else if (nl == std::string_view::npos) {
      partial_.append(chunk);
      if (partial_.size() > max_line_) {
        out.append(partial_);
        partial_.clear();
        overlong_ = true;
      }
    } else if (partial_.empty()) {
      translate(chunk.substr(0, nl), out);
    } else {
      partial_.append(chunk.substr(0, nl));
      translate(partial_, out);
      partial_.clear();
    }
    chunk.remove_prefix(taken);
  }
  if (!out.empty()) sink_(out);
}

void NixLogTranslator::finish() {
  overlong_ = false;
  if (partial_.empty()) return;
  std::string out;
  if (text::starts_with(partial_, kJsonPrefix)) {
    translate(partial_, out);
  } else {
    out = std::move(partial_);
  }
  partial_.clear();
  if (!out.empty()) sink_(out);
}

void NixLogTranslator::translate(std::string_view line, std::string& out) {
  if (text::starts_with(line, kJsonPrefix)) {
    auto body = line.substr(kJsonPrefix.size());
    json j = json::parse(body.begin(), body.end(), nullptr, false);
    std::string said;
    bool understood = false;
    try {
      understood = j.is_object() && interpret(j, names_, said);
    } catch (const json::exception&) {
      // A type the checks missed: treated like any line this cannot read.
    }
    if (understood) {
      out.append(said);
      return;
    }
  }
  out.append(line).append("\n");
}

std::string strip_ansi(std::string_view s) {
  constexpr char kEsc = '\x1b';
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  auto in = [&](char lo, char hi) { return i < s.size() && s[i] >= lo && s[i] <= hi; };
  while (i < s.size()) {
    if (s[i] != kEsc) {
      out.push_back(s[i++]);
      continue;
    }
    ++i;
    if (in('[', '[')) {  // CSI: parameters, intermediates, one final byte
      ++i;
      while (in(0x30, 0x3f)) ++i;
      while (in(0x20, 0x2f)) ++i;
      if (in(0x40, 0x7e)) ++i;
    } else if (in(']', ']')) {  // OSC (hyperlinks, titles): to BEL or ESC '\' (not past the line)
      while (i < s.size() && s[i] != '\a' && s[i] != '\n' && !(s[i] == kEsc && i + 1 < s.size() && s[i + 1] == '\\')) ++i;
      if (in('\a', '\a')) ++i;
      else if (in(kEsc, kEsc)) i += 2;
    } else if (in(0x20, 0x7e)) {  // two-byte sequences
      ++i;
    }
  }
  return out;
}

}  // namespace flurry::nix
