// flurry-web: the JSON API over Redis (evals, jobs, live logs; rebuild and
// cancel with the API token).
#include "access.hpp"
#include "api.hpp"
#include "badges.hpp"
#include "auth_setup.hpp"
#include "pages.hpp"
#include "flurry/core/config.hpp"
#include "flurry/core/log.hpp"
#include "flurry/service/runtime.hpp"
#include "flurry/state/redis_sessions.hpp"

using namespace flurry;

int main(int argc, char** argv) {
  return service::run("web", argc, argv, [](service::Runtime& rt) {
    static SystemClock clock;
    const auto& c = rt.config();
    static web::ApiConfig cfg;
    cfg.public_url = c.get_string("web.public_url", "");
    if (auto file = c.get_string("web.api_token_file", ""); !file.empty()) {
      cfg.token = read_secret_file(file);  // registered for redaction
      if (cfg.token.size() < 16) throw ConfigError("web.api_token_file: the token must be at least 16 characters");
    } else {
      log::warn("web.no_token", "web.api_token_file is not set: rebuild and cancel are refused");
    }
    // Signing in and the access rules; before /api/*, as it serves GET /api/session.
    static auto auth_client = http::make_client();
    static auto sessions = state::make_redis_sessions(state::redis_options(c));
    static web::AuthService auth(c, cfg.token, *sessions, *auth_client, clock);
    web::add_auth_routes(rt.http(), auth.auth());
    auto& state = rt.state();
    auto& bus = rt.bus();
    auto& catalog = rt.catalog();
    auto handler = [&state, &bus, &catalog](const http::Request& req) {
      return web::handle_api(req, {state, bus, clock, &catalog, web::access_of(auth.auth(), req)}, cfg);
    };
    rt.http().route("GET", "/api/*", handler);
    rt.http().route("POST", "/api/*", handler);
    rt.http().route("GET", "/badge/*", [&state, &catalog](const http::Request& req) {
      auto access = web::access_of(auth.auth(), req);
      auto read = [&](const msg::Repo& repo) { return access.may_read(req, repo); };
      return web::handle_badge(req, {state, catalog}, read).value_or(http::Response{404, "no such badge\n"});
    });
    web::register_pages(rt.http(), c.get_string("web.assets_dir", web::default_assets_dir()));
  });
}
