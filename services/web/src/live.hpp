#pragma once
// Live updates by server-sent events (text/event-stream; through any
// reverse proxy, no WebSocket):
//   GET /api/evals/<eval>/events   `eval` (the eval) at once and whenever it
//       changes, `job` (a job) for each job whose state changed since the
//       stream began, `end` once the eval has ended (then the stream ends).
//   GET /api/jobs/<job>/log/events?offset=N   `log` ({"offset", "next",
//       "text"}: the log from `offset` up to `next`) as it grows, `reset`
//       when the store cut the log's head (read again from 0), `state`
//       ({"state"}) when the job's state changes, `end` once it is
//       terminal and every byte was sent.
// The store is polled once a second per stream (an eval of more than 2,000
// jobs has its jobs read every 5 s), so a viewer costs a few reads a
// second, and a stream holds no handler thread (http::Stream).
#include <memory>
#include <string>

#include "flurry/http/http.hpp"
#include "flurry/state/store.hpp"

namespace flurry::web {

// The streams; the caller checked that the asker may read them.
http::Response eval_events(state::StateStore& state, const state::EvalRecord& eval);
http::Response log_events(state::StateStore& state, const state::JobRecord& job, std::size_t offset);

}  // namespace flurry::web
