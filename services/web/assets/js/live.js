// Live updates: server-sent events, or polling every 2 s where the event
// stream does not work (an older proxy, or a server without it).
//
// follow({url, events: {name: handler(data)}, poll, resync, signal})
//   url()          the stream's URL, asked again for each (re)connection
//   events         handlers for named events, data JSON-decoded; "end"
//                  stops everything
//   poll()         one polling round; answers true once there is nothing
//                  more to wait for
//   resync()       called after a reconnect: events sent while away are lost
// Stops when `signal` aborts.

const POLL_MS = 2000;

export function follow({url, events, poll, resync = () => {}, signal}) {
  let source = null;
  let stopped = false;
  let timer = 0;

  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    if (source) source.close();
    source = null;
  };
  signal?.addEventListener('abort', stop);

  const startPolling = () => {
    const round = async () => {
      if (stopped) return;
      let done = false;
      try {
        done = await poll();
      } catch (e) {
        if (e.name === 'AbortError') return;
        // a failed round is retried on the next tick
      }
      if (done) stop();
      else if (!stopped) timer = setTimeout(round, POLL_MS);
    };
    round();
  };

  const connect = (reconnecting) => {
    if (stopped) return;
    if (typeof EventSource === 'undefined') return startPolling();
    let worked = false;
    const es = new EventSource(url());
    source = es;
    es.onopen = () => {
      worked = true;
      if (reconnecting) resync();
    };
    for (const [name, handler] of Object.entries(events)) {
      es.addEventListener(name, (ev) => {
        worked = true;
        let data = null;
        try {
          data = ev.data ? JSON.parse(ev.data) : null;
        } catch {
          return;
        }
        handler(data);
        if (name === 'end') stop();
      });
    }
    if (!events.end) es.addEventListener('end', stop);
    es.onerror = () => {
      es.close();
      if (stopped) return;
      source = null;
      // A stream that never opened (404, wrong type, a proxy in the way)
      // will not start working: poll instead. One that broke reconnects.
      if (!worked) startPolling();
      else timer = setTimeout(() => connect(true), POLL_MS);
    };
  };

  connect(false);
  return stop;
}
