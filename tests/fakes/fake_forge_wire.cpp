#include "fake_forge_wire.hpp"

#include <algorithm>
#include <charconv>

#include "flurry/core/text.hpp"

namespace flurry::fakes::detail {

std::optional<std::vector<std::string>> segments_after(std::string_view path, std::string_view prefix) {
  if (!text::starts_with(path, prefix)) return std::nullopt;
  auto rest = path.substr(prefix.size());
  if (!rest.empty() && rest.front() != '/') return std::nullopt;  // "/api/v10" is not under "/api/v1"
  std::vector<std::string> out;
  for (auto& s : text::split(rest, '/')) {
    if (!s.empty()) out.push_back(std::move(s));
  }
  return out;
}

std::optional<std::vector<std::string>> match(const std::vector<std::string>& segments,
                                              std::initializer_list<std::string_view> pattern) {
  if (segments.size() != pattern.size()) return std::nullopt;
  std::vector<std::string> captures;
  auto it = segments.begin();
  for (auto p : pattern) {
    if (p == "*") captures.push_back(*it);
    else if (*it != p) return std::nullopt;
    ++it;
  }
  return captures;
}

std::string percent_decode(std::string_view s, bool form) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else if (form && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  if (query.empty()) return out;
  for (const auto& pair : text::split(query, '&')) {
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    out[key] = eq == std::string::npos ? "" : percent_decode(std::string_view(pair).substr(eq + 1), true);
  }
  return out;
}

nlohmann::json body_params(const http::Request& req) {
  auto type = text::to_lower(req.header("content-type"));
  if (type.find("application/x-www-form-urlencoded") != std::string::npos) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : parse_query(req.body)) out[k] = v;
    return out;
  }
  if (text::trim(req.body).empty()) return nlohmann::json::object();
  auto j = nlohmann::json::parse(req.body, nullptr, false);
  if (!j.is_object()) return nlohmann::json(nlohmann::json::value_t::discarded);
  return j;
}

std::string text_of(const nlohmann::json& params, const std::string& key) {
  if (!params.is_object()) return {};
  auto it = params.find(key);
  if (it == params.end() || it->is_null() || it->is_object() || it->is_array()) return {};
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

bool flag_of(const nlohmann::json& params, const std::string& key, bool fallback) {
  if (!params.is_object()) return fallback;
  auto it = params.find(key);
  if (it == params.end()) return fallback;
  if (it->is_boolean()) return it->get<bool>();
  auto s = text_of(params, key);
  if (s == "true" || s == "1") return true;
  if (s == "false" || s == "0") return false;
  return fallback;
}

std::vector<std::string> strings_of(const nlohmann::json& params, const std::string& key) {
  std::vector<std::string> out;
  if (!params.is_object() || !params.contains(key) || !params[key].is_array()) return out;
  for (const auto& e : params[key]) {
    if (e.is_string()) out.push_back(e.get<std::string>());
  }
  return out;
}

std::optional<std::int64_t> to_int(std::string_view s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::size_t code_points(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool is_one_of(const std::string& s, std::initializer_list<std::string_view> allowed) {
  return std::find(allowed.begin(), allowed.end(), s) != allowed.end();
}

Page page_of(std::size_t total, const std::map<std::string, std::string>& query, const std::string& size_key,
             int default_size, int max_size) {
  auto number = [&](const std::string& key, int fallback) {
    auto it = query.find(key);
    auto v = it == query.end() ? std::nullopt : to_int(it->second);
    return v && *v > 0 ? static_cast<int>(std::min<std::int64_t>(*v, 1'000'000)) : fallback;
  };
  Page p;
  p.page = number("page", 1);
  p.size = std::min(number(size_key, default_size), max_size);
  p.pages = static_cast<int>((total + p.size - 1) / p.size);
  p.begin = std::min(total, static_cast<std::size_t>(p.page - 1) * p.size);
  p.end = std::min(total, p.begin + p.size);
  return p;
}

std::string link_header(const std::string& url_without_query, const std::string& size_key, const Page& page) {
  if (page.page >= page.pages) return {};
  auto at = [&](int n) {
    return "<" + url_without_query + "?page=" + std::to_string(n) + "&" + size_key + "=" + std::to_string(page.size) + ">";
  };
  return at(page.page + 1) + "; rel=\"next\", " + at(page.pages) + "; rel=\"last\"";
}

http::Response json_answer(int status, const nlohmann::json& body, std::map<std::string, std::string> headers) {
  http::Response r{status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json"};
  r.headers = std::move(headers);
  return r;
}

http::Response message_answer(int status, const std::string& message) {
  return json_answer(status, {{"message", message}});
}

std::string authorization_token(const http::Request& req) {
  auto auth = req.header("authorization");
  for (std::string_view scheme : {"Bearer ", "bearer ", "token ", "Token "}) {
    if (text::starts_with(auth, scheme)) return text::trim(auth.substr(scheme.size()));
  }
  return {};
}

}  // namespace flurry::fakes::detail
