#pragma once
// The HTTP details of signing in, as plain functions: cookies (read and
// written), query parameters, and which `next` targets are safe to
// redirect to.
#include <chrono>
#include <map>
#include <string>
#include <string_view>

namespace flurry::web {

// The session cookie (its value is the session id) and the cookie that
// binds a sign-in's OAuth state to the browser that started it.
inline constexpr const char* kSessionCookie = "flurry_session";
inline constexpr const char* kStateCookie = "flurry_oauth_state";

// The value of cookie `name` in a Cookie header ("a=1; b=2"); the first
// one when sent twice; "" when absent.
std::string cookie_value(std::string_view cookie_header, std::string_view name);

struct CookieSpec {
  std::string name, value, path = "/";
  std::chrono::seconds max_age{0};  // 0: delete the cookie
  bool secure = false;
};
// A Set-Cookie value: "<name>=<value>; HttpOnly; SameSite=Lax; Path=<path>;
// Max-Age=<s>" and "; Secure" when `secure`.
std::string set_cookie(const CookieSpec& spec);

// `next` when it is a path on this site ("/..." but not "//...", no
// backslash, no control characters or spaces, at most 2,048 bytes): the
// only redirect targets a sign-in accepts. "/" otherwise.
std::string local_path(const std::string& next);

// 64 lower-case hex digits: the only session ids worth asking the store about.
bool plausible_session_id(std::string_view id);

}  // namespace flurry::web
