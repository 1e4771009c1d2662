#include "auth_http.hpp"

#include "flurry/core/text.hpp"

namespace flurry::web {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string form_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

}  // namespace

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

std::map<std::string, std::string> query_params(std::string_view query) {
  std::map<std::string, std::string> out;
  for (const auto& pair : text::split(query, '&')) {
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto key = form_decode(std::string_view(pair).substr(0, eq));
    out.emplace(key, eq == std::string::npos ? "" : form_decode(std::string_view(pair).substr(eq + 1)));
  }
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
