#include <array>
#include <cctype>
#include <string_view>

#include "flurry/core/text.hpp"
#include "flurry/nix/nix_runner.hpp"

namespace flurry::nix {
namespace {

// Nix keywords cannot stand bare in an attribute path.
constexpr std::array<std::string_view, 10> kKeywords = {"if", "then", "else", "assert", "with",
                                                        "let", "in", "rec", "inherit", "or"};

bool plain_identifier(const std::string& s) {
  if (s.empty()) return false;
  unsigned char c0 = static_cast<unsigned char>(s[0]);
  if (!(std::isalpha(c0) || c0 == '_')) return false;
  for (unsigned char c : s) {
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '\'')) return false;
  }
  for (auto k : kKeywords) {
    if (s == k) return false;
  }
  return true;
}

}  // namespace

std::string render_attr_path(const std::vector<std::string>& path) {
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (i) out += '.';
    out += plain_identifier(path[i]) ? path[i] : text::nix_string_literal(path[i]);
  }
  return out;
}

}  // namespace flurry::nix
