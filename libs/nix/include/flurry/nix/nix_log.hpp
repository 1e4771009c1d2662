#pragma once
// nix's stderr in `--log-format internal-json` turned back into the text
// `nix build -L` prints, with the builders' ANSI escape sequences kept
// (writing to a pipe, nix's plain log formats strip them).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace flurry::nix {

class NixLogTranslator {
 public:
  using Sink = std::function<void(std::string_view)>;
  static constexpr std::size_t kMaxLine = std::size_t{1} << 20;

  // `sink` receives the text, at most one call per feed() / finish().
  // A partial line longer than `max_line` is passed on as it is instead of
  // being buffered.
  explicit NixLogTranslator(Sink sink, std::size_t max_line = kMaxLine) : sink_(std::move(sink)), max_line_(max_line) {}

  // Any piece of nix's stderr; lines may span calls. Builders' lines come
  // out as "NAME> line" (NAME the derivation's name without its version,
  // as nix shows it), build starts as "building '<drv>'...", nix's
  // messages as they are; activity bookkeeping is dropped. Lines that are
  // not nix's JSON, or that this cannot read, are passed on unchanged.
  // Never throws on any input.
  void feed(std::string_view chunk);
  // The unterminated last line, if any: call once nix has exited.
  void finish();

 private:
  void translate(std::string_view line, std::string& out);

  Sink sink_;
  std::size_t max_line_;
  std::string partial_;
  // Part of an overlong line was passed on: the rest up to its newline follows it.
  bool overlong_ = false;
  std::map<std::uint64_t, std::string> names_;  // build activity id -> derivation name
};

// `s` without ANSI escape sequences (CSI "ESC [ ... final", OSC
// "ESC ] ... BEL|ESC \", other "ESC x" pairs): what nix prints to a pipe.
std::string strip_ansi(std::string_view s);

}  // namespace flurry::nix
