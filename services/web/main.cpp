// flurry-web: the JSON API over Redis (evals, jobs, live logs; rebuild and
// cancel with the API token).
#include "api.hpp"
#include "flurry/core/config.hpp"
#include "flurry/core/log.hpp"
#include "flurry/service/runtime.hpp"

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
    auto& state = rt.state();
    auto& bus = rt.bus();
    auto handler = [&state, &bus](const http::Request& req) { return web::handle_api(req, {state, bus, clock}, cfg); };
    rt.http().route("GET", "/api/*", handler);
    rt.http().route("POST", "/api/*", handler);
  });
}
