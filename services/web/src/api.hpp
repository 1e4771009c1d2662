#pragma once
// The web service's JSON API over the state store: evals, jobs and their
// live logs for anyone who can reach it; rebuild (clearing the failed-build
// cache) and cancel for callers with the API token.
#include <functional>
#include <string>

#include "flurry/bus/bus.hpp"
#include "flurry/core/clock.hpp"
#include "flurry/http/http.hpp"
#include "flurry/pipeline/publish.hpp"
#include "flurry/state/catalog.hpp"
#include "flurry/state/store.hpp"

namespace flurry::web {

struct ApiConfig {
  // Bearer token for POST endpoints; empty: they answer 403.
  std::string token;
  std::string public_url;  // status links
};

// Who may read a repository's evals, jobs and logs, and who may act on
// them (rebuild, cancel, approve), per request. Unset: anyone reads, and
// only the API token acts.
struct Access {
  std::function<Result<bool>(const http::Request&, const msg::Repo&)> may_read;
  std::function<Result<bool>(const http::Request&, const msg::Repo&)> may_act;
  // Whether everyone may read it (listings mark the others private).
  std::function<Result<bool>(const msg::Repo&)> is_public;
  // Who asks, as the forge names them ("" for the API token or nobody):
  // the sender of what they start (a re-run).
  std::string actor;
};

struct ApiPorts {
  state::StateStore& state;
  bus::Bus& bus;
  Clock& clock;
  state::Catalog* catalog = nullptr;  // the listings; none: they answer 404
  Access access = {};
};

// Routes (ids are Flurry's eval and job ids; responses are JSON unless
// said otherwise; errors are {"error": "..."}):
//   GET  /api/evals/<eval>          the eval record
//   GET  /api/evals/<eval>/jobs     its jobs, in evaluation order
//   GET  /api/jobs/<job>            one job
//   GET  /api/jobs/<job>/log?offset=N&limit=M
//        text/plain: the stored log from byte N on, at most M bytes (while
//        it builds, too); X-Flurry-Log-Offset says where to ask next,
//        X-Flurry-Log-Size the whole stored log's size, X-Flurry-Job-State
//        the job's state (follow until it is terminal). The store keeps a
//        log's tail: an offset past its end starts over at 0.
//   GET  /api/jobs/<job>/log/raw    the whole stored log, as a download
//   GET  /api/projects, /api/project?forge&owner&repo,
//        /api/project/evals?forge&owner&repo&ref&cursor&limit,
//        /api/evals/<eval>/compare, /api/evals/<eval>/effects: listing.hpp
//   POST /api/rebuild               {"drv_paths": [...]}: clears their cached failures (API token only)
//   POST /api/jobs/<job>/rebuild    clears the job's cached failure and evaluates its change again (a re-run)
//   POST /api/evals/<eval>/cancel   {"reason": "..."} (optional): cancels the eval
//   POST /api/approve               approves a pull request (see api_codec.hpp)
// Reading answers 404 for what the asker may not read; acting 401/403.
http::Response handle_api(const http::Request& req, ApiPorts ports, const ApiConfig& config);

}  // namespace flurry::web
