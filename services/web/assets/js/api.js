// The JSON API, as the pages use it. Every call answers data or throws an
// ApiError carrying the HTTP status and the server's {"error": "..."}.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
  // 404 from an endpoint this server may not have yet, or for something
  // that does not exist (or that the user may not see).
  get notFound() {
    return this.status === 404;
  }
}

const enc = encodeURIComponent;

async function failure(r) {
  let message = '';
  try {
    const body = await r.json();
    if (body && typeof body.error === 'string') message = body.error;
  } catch {
    // not JSON: the status says enough
  }
  return new ApiError(r.status, message || `${r.status} ${r.statusText || 'error'}`);
}

export async function getJson(path, {signal} = {}) {
  let r;
  try {
    r = await fetch(path, {headers: {Accept: 'application/json'}, credentials: 'same-origin', signal});
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'the server cannot be reached');
  }
  if (!r.ok) throw await failure(r);
  return r.json();
}

export async function postJson(path, body, csrf) {
  let r;
  try {
    r = await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', Accept: 'application/json', 'X-Flurry-CSRF': csrf || ''},
      body: JSON.stringify(body ?? {}),
    });
  } catch {
    throw new ApiError(0, 'the server cannot be reached');
  }
  if (!r.ok) throw await failure(r);
  const text = await r.text();
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return {};
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const api = {
  session: (o) => getJson('/api/session', o),
  projects: (o) => getJson('/api/projects', o),
  project: (forge, owner, repo, o) => getJson(`/api/project${query({forge, owner, repo})}`, o),
  projectEvals: ({forge, owner, repo, ref, cursor, limit}, o) =>
    getJson(`/api/project/evals${query({forge, owner, repo, ref: ref || '', cursor, limit})}`, o),
  eval: (id, o) => getJson(`/api/evals/${enc(id)}`, o),
  jobs: (id, o) => getJson(`/api/evals/${enc(id)}/jobs`, o),
  compare: (id, o) => getJson(`/api/evals/${enc(id)}/compare`, o),
  effects: (id, o) => getJson(`/api/evals/${enc(id)}/effects`, o),
  job: (id, o) => getJson(`/api/jobs/${enc(id)}`, o),
  evalEvents: (id) => `/api/evals/${enc(id)}/events`,
  logEvents: (id, offset) => `/api/jobs/${enc(id)}/log/events?offset=${offset}`,
  rawLog: (id) => `/api/jobs/${enc(id)}/log/raw`,
  rebuild: (jobId, csrf) => postJson(`/api/jobs/${enc(jobId)}/rebuild`, {}, csrf),
  cancel: (evalId, reason, csrf) => postJson(`/api/evals/${enc(evalId)}/cancel`, {reason}, csrf),
  approve: (body, csrf) => postJson('/api/approve', body, csrf),
  logout: (csrf) => postJson('/auth/logout', {}, csrf),
};

// One piece of a job's log: bytes from `offset` on, at most `limit`.
// Answers the raw bytes (decoded by the caller, which may cut a character
// between pieces), where to go on, the whole log's size (null when the
// server does not say) and the job's state.
export async function fetchLog(jobId, offset, limit, {signal} = {}) {
  let r;
  try {
    r = await fetch(`/api/jobs/${enc(jobId)}/log?offset=${offset}${limit ? `&limit=${limit}` : ''}`, {credentials: 'same-origin', signal});
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'the server cannot be reached');
  }
  if (!r.ok) throw await failure(r);
  const data = new Uint8Array(await r.arrayBuffer());
  const next = Number(r.headers.get('X-Flurry-Log-Offset'));
  const size = r.headers.get('X-Flurry-Log-Size');
  return {
    data,
    next: Number.isFinite(next) && r.headers.has('X-Flurry-Log-Offset') ? next : offset + data.length,
    size: size === null ? null : Number(size),
    state: r.headers.get('X-Flurry-Job-State') || '',
  };
}
