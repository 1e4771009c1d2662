#include "auth_http.hpp"

#include "flurry/core/text.hpp"

namespace flurry::web {

std::string cookie_value(std::string_view header, std::string_view name) {
  for (const auto& part : text::split(header, ';')) {
    auto pair = text::trim(part);
    auto eq = pair.find('=');
    if (eq != std::string::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
  }
  return "";
}

std::string set_cookie(const CookieSpec& c) {
  std::string out = c.name + "=" + c.value + "; HttpOnly; SameSite=Lax; Path=" + c.path + "; Max-Age=" + std::to_string(c.max_age.count());
  if (c.secure) out += "; Secure";
  return out;
}

std::string local_path(const std::string& next) {
  if (next.empty() || next.size() > 2048 || next[0] != '/' || text::starts_with(next, "//")) return "/";
  for (unsigned char c : next) {
    if (c <= 0x20 || c == 0x7f || c == '\\') return "/";
  }
  return next;
}

bool plausible_session_id(std::string_view id) {
  if (id.size() != 64) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace flurry::web
