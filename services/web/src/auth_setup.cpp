#include "auth_setup.hpp"

#include "flurry/core/log.hpp"
#include "flurry/core/text.hpp"

namespace flurry::web {
namespace {

constexpr const char* kForges[] = {"github", "gitea", "gitlab"};

// A duration key that also takes days ("7d"), which Config's durations do not.
std::chrono::milliseconds duration_with_days(const Config& c, const std::string& key, std::chrono::milliseconds fallback) {
  if (c.has(key)) {
    try {
      auto s = c.get_string(key, "");
      if (text::ends_with(s, "d") && s.size() > 1 && s.size() <= 6 && s.find_first_not_of("0123456789") == s.size() - 1) {
        return std::chrono::hours(24 * std::stoll(s.substr(0, s.size() - 1)));
      }
    } catch (const ConfigError&) {
      // a number: milliseconds, as get_duration_ms reads it
    }
  }
  return c.get_duration_ms(key, fallback);
}

std::optional<bool> cookie_secure(const Config& c) {
  if (!c.has("web.cookie_secure")) return std::nullopt;
  try {
    return c.get_bool("web.cookie_secure", false);
  } catch (const ConfigError&) {
    if (c.get_string("web.cookie_secure", "") == "auto") return std::nullopt;
    throw ConfigError("web.cookie_secure must be true, false or \"auto\"");
  }
}

}  // namespace

AuthConfig auth_config(const Config& c, std::string api_token) {
  AuthConfig a;
  a.public_url = c.get_string("web.public_url", "");
  a.api_token = std::move(api_token);
  a.session_ttl = duration_with_days(c, "web.session_ttl", a.session_ttl);
  a.cookie_secure = cookie_secure(c);
  a.cache_ttl = duration_with_days(c, "web.access_cache_ttl", a.cache_ttl);
  a.error_cache_ttl = std::min(a.error_cache_ttl, a.cache_ttl);
  const auto max = c.get_int("web.access_cache_max", static_cast<std::int64_t>(a.cache_max));
  if (a.session_ttl < std::chrono::minutes(1)) throw ConfigError("web.session_ttl must be at least a minute");
  if (a.cache_ttl.count() < 0 || max < 1) throw ConfigError("web.access_cache_ttl must not be negative and web.access_cache_max at least 1");
  a.cache_max = static_cast<std::size_t>(max);
  return a;
}

AuthService::AuthService(const Config& c, std::string api_token, state::Sessions& sessions, http::Client& client, Clock& clock)
    : access_(c, client, clock) {
  AuthPorts ports{sessions, clock, {}, {}, {}};
  for (const std::string forge : kForges) {
    ports.visibility[forge] = access_.visibility(forge);
    ports.permissions[forge] = access_.permissions(forge);
    if (!ports.visibility[forge]) ports.visibility.erase(forge);
    if (!ports.permissions[forge]) ports.permissions.erase(forge);
    if (auto o = forge::oauth_options(c, forge, "web.oauth." + forge)) {
      oauth_[forge] = forge::make_oauth(client, std::move(*o));
      ports.sign_in[forge] = oauth_[forge].get();
    }
  }
  auto config = auth_config(c, std::move(api_token));
  if (!oauth_.empty()) {
    const auto url = text::to_lower(config.public_url);
    if (!text::starts_with(url, "https://") && !text::starts_with(url, "http://")) {
      throw ConfigError(
          "web.public_url (http:// or https://) is required for signing in: forges send users back to <public_url>/auth/<forge>/callback");
    }
  }
  auth_ = std::make_unique<Auth>(std::move(ports), std::move(config));
  for (const auto& forge : auth_->sign_in_forges()) log::info("web.sign_in", "signing in with " + forge, {{"forge", forge}});
}

void add_auth_routes(http::Server& server, Auth& auth) {
  auto handler = [&auth](const http::Request& req) { return auth.handle(req); };
  server.route("GET", "/api/session", handler);
  server.route("GET", "/auth/*", handler);
  server.route("POST", "/auth/*", handler);
}

}  // namespace flurry::web
