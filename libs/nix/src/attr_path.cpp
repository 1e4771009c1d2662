#include <cctype>

#include "flurry/nix/nix_runner.hpp"

namespace flurry::nix {
namespace {
bool plain_identifier(const std::string& s) {
  if (s.empty()) return false;
  unsigned char c0 = static_cast<unsigned char>(s[0]);
  if (!(std::isalpha(c0) || c0 == '_')) return false;
  for (unsigned char c : s) {
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '\'')) return false;
  }
  return true;
}
}  // namespace

std::string render_attr_path(const std::vector<std::string>& path) {
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (i) out += '.';
    if (plain_identifier(path[i])) {
      out += path[i];
      continue;
    }
    out += '"';
    for (std::size_t k = 0; k < path[i].size(); ++k) {
      char c = path[i][k];
      if (c == '"' || c == '\\') out += '\\';
      if (c == '$' && k + 1 < path[i].size() && path[i][k + 1] == '{') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out;
}

}  // namespace flurry::nix
