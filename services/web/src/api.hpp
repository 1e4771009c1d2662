#pragma once
// The web service's JSON API over the state store: evals, jobs and their
// live logs for anyone who can reach it; rebuild (clearing the failed-build
// cache) and cancel for callers with the API token.
#include <string>

#include "flurry/bus/bus.hpp"
#include "flurry/core/clock.hpp"
#include "flurry/http/http.hpp"
#include "flurry/pipeline/publish.hpp"
#include "flurry/state/store.hpp"

namespace flurry::web {

struct ApiConfig {
  // Bearer token for POST endpoints; empty: they answer 403.
  std::string token;
  std::string public_url;  // status links
};

struct ApiPorts {
  state::StateStore& state;
  bus::Bus& bus;
  Clock& clock;
};

// Routes (ids are Flurry's eval and job ids; responses are JSON unless
// said otherwise; errors are {"error": "..."}):
//   GET  /api/evals/<eval>          the eval record
//   GET  /api/evals/<eval>/jobs     its jobs, in evaluation order
//   GET  /api/jobs/<job>            one job
//   GET  /api/jobs/<job>/log?offset=N
//        text/plain: the stored log from byte N on (while it builds, too);
//        X-Flurry-Log-Offset says where to ask next, X-Flurry-Job-State
//        the job's state (follow until it is terminal). The store keeps a
//        log's tail: an offset past its end starts over at 0.
//   POST /api/rebuild               {"drv_paths": [...]}: clears their cached failures
//   POST /api/evals/<eval>/cancel   {"reason": "..."} (optional): cancels the eval
http::Response handle_api(const http::Request& req, ApiPorts ports, const ApiConfig& config);

}  // namespace flurry::web
