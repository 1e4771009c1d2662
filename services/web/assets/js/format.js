// Words, times and colours for what the API says: states, refs, durations,
// and the paths of the UI's own pages.
import {h} from './dom.js';

// Job, eval and effect states: label, tone (colour) and mark (so the
// state never depends on colour alone).
const STATES = {
  queued: ['queued', 'wait', '◌'],
  evaluating: ['evaluating', 'run', '◔'],
  building: ['building', 'run', '◔'],
  running: ['running', 'run', '◔'],
  succeeded: ['succeeded', 'ok', '✓'],
  skipped: ['already built', 'ok', '✓'],
  failed: ['failed', 'fail', '✗'],
  dependency_failed: ['dependency failed', 'fail', '✗'],
  cached_failure: ['failed before', 'fail', '✗'],
  timed_out: ['timed out', 'fail', '✗'],
  eval_failed: ['evaluation failed', 'fail', '✗'],
  cancelled: ['cancelled', 'neutral', '⊘'],
  unsupported_system: ['unsupported system', 'neutral', '–'],
};

export function stateInfo(state) {
  const [label, tone, mark] = STATES[state] || [state || 'unknown', 'neutral', '?'];
  return {label, tone, mark};
}

export const FAILING = new Set(['failed', 'dependency_failed', 'cached_failure', 'timed_out', 'eval_failed']);
export const TERMINAL_JOB = new Set([...FAILING, 'succeeded', 'skipped', 'cancelled', 'unsupported_system']);
export const TERMINAL_EVAL = new Set(['succeeded', 'failed', 'cancelled']);

// Failures first (the question is "why is my check red"), then what is
// still moving, then the rest.
const RANK = ['failed', 'timed_out', 'eval_failed', 'cached_failure', 'dependency_failed', 'building', 'queued', 'cancelled',
  'unsupported_system', 'succeeded', 'skipped'];
export function stateRank(state) {
  const i = RANK.indexOf(state);
  return i < 0 ? RANK.length : i;
}

export function badge(state, extraClass = '') {
  const {label, tone, mark} = stateInfo(state);
  return h('span', {class: `badge tone-${tone} ${extraClass}`.trim()}, h('span', {class: 'mark', 'aria-hidden': 'true'}, mark), ' ', label);
}

// "refs/heads/main" -> "main", "refs/pull/12/head" -> "#12".
export function refName(ref) {
  if (!ref) return '';
  let m;
  if ((m = /^refs\/heads\/(.+)$/.exec(ref))) return m[1];
  if ((m = /^refs\/tags\/(.+)$/.exec(ref))) return m[1];
  if ((m = /^refs\/pull\/(\d+)\/(head|merge)$/.exec(ref))) return `#${m[1]}`;
  if ((m = /^refs\/merge-requests\/(\d+)\/head$/.exec(ref))) return `!${m[1]}`;
  return ref;
}

export function shortRev(rev) {
  return rev ? rev.slice(0, 12) : '';
}

const rtf = typeof Intl !== 'undefined' && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(undefined, {numeric: 'auto'}) : null;

export function relativeTime(ms, now = Date.now()) {
  if (!ms) return '';
  const s = Math.round((ms - now) / 1000);
  const a = Math.abs(s);
  const [value, unit] = a < 45 ? [s, 'second'] : a < 2700 ? [Math.round(s / 60), 'minute'] : a < 64800 ? [Math.round(s / 3600), 'hour']
    : a < 2592000 ? [Math.round(s / 86400), 'day'] : a < 31536000 ? [Math.round(s / 2592000), 'month'] : [Math.round(s / 31536000), 'year'];
  if (unit === 'second' && a < 10) return 'just now';
  return rtf ? rtf.format(value, unit) : `${Math.abs(value)} ${unit}s ${value < 0 ? 'ago' : 'from now'}`;
}

export function absoluteTime(ms) {
  if (!ms) return '';
  return new Date(ms).toLocaleString(undefined, {year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit'});
}

// <time> showing "5 minutes ago", the exact time in its title; app.js
// refreshes every such element twice a minute.
export function timeEl(ms) {
  if (!ms) return h('span', {class: 'muted'}, '–');
  return h('time', {datetime: new Date(ms).toISOString(), title: absoluteTime(ms), class: 'rel', dataset: {ms: String(ms)}}, relativeTime(ms));
}

export function refreshTimes(root = document) {
  const now = Date.now();
  for (const t of root.querySelectorAll('time.rel')) t.textContent = relativeTime(Number(t.dataset.ms), now);
}

export function duration(ms) {
  if (ms === null || ms === undefined || ms < 0 || Number.isNaN(ms)) return '';
  if (ms < 1000) return '< 1 s';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const hr = Math.floor(m / 60);
  return `${hr} h ${m % 60} min`;
}

// How long something took, or has taken so far while it runs.
export function elapsed(startMs, endMs, now = Date.now()) {
  if (!startMs) return null;
  return (endMs || now) - startMs;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

export function count(n, one, many = `${one}s`) {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

// Paths of the UI's pages (each segment encoded; GitLab owners keep their
// slashes as separate segments).
const enc = encodeURIComponent;
export const paths = {
  home: () => '/',
  project: (forge, owner, repo, ref = '') =>
    `/projects/${enc(forge)}/${String(owner).split('/').map(enc).join('/')}/${enc(repo)}${ref ? `?ref=${enc(ref)}` : ''}`,
  eval: (id) => `/evals/${enc(id)}`,
  job: (evalId, jobId) => `/evals/${enc(evalId)}/jobs/${enc(jobId)}`,
};

export function projectLabel(owner, repo) {
  return `${owner}/${repo}`;
}
