// /evals/<eval>/jobs/<job>: the job's facts, why it failed (nix's message,
// the failed dependency), its log (live while it builds), and rebuild.
// GET /api/jobs/<job>, /api/evals/<eval> (for the header), the log
// endpoints (log_view.js); POST /api/jobs/<job>/rebuild.
import {api} from '../api.js';
import {h, note, replace} from '../dom.js';
import {badge, count, duration, elapsed, FAILING, paths, TERMINAL_JOB, timeEl} from '../format.js';
import {logView} from '../log_view.js';
import {actionButton, session} from '../session.js';
import {evalCrumbs} from './eval.js';
import * as notFound from './not_found.js';

const CACHE_STATUS = {
  local: 'Already in the store: nothing to build',
  cached: 'In a binary cache: substituted, not built',
  notBuilt: 'Not cached: built',
};

function facts(job) {
  const running = job.state === 'building';
  const took = elapsed(job.started_ms, job.finished_ms);
  const outputs = job.outputs && typeof job.outputs === 'object' ? Object.entries(job.outputs) : [];
  const rows = [
    ['Attribute', h('code', null, job.attr)],
    ['System', job.system || ''],
    job.features && job.features.length ? ['Features', job.features.join(', ')] : null,
    ['Derivation', job.drv_path ? h('code', {class: 'path'}, job.drv_path) : h('span', {class: 'muted'}, 'none')],
    ['Outputs', outputs.length ? h('ul', {class: 'plain'}, outputs.map(([n, p]) => h('li', null, h('span', {class: 'muted'}, `${n}: `), h('code', {class: 'path'}, p))))
      : h('span', {class: 'muted'}, 'none')],
    ['Cache', job.cache_status ? CACHE_STATUS[job.cache_status] || job.cache_status : h('span', {class: 'muted'}, '–')],
    ['Attempts', String(job.attempts ?? 0)],
    ['Started', timeEl(job.started_ms)],
    ['Finished', running ? h('span', {class: 'muted'}, 'still building') : timeEl(job.finished_ms)],
    took === null ? null : ['Duration', `${duration(took)}${running ? ' so far' : ''}`],
  ].filter(Boolean);
  return h('dl', {class: 'facts'}, rows.map(([k, v]) => h('div', null, h('dt', null, k), h('dd', null, v))));
}

function why(job) {
  const evalId = job.eval_id;
  if (job.state === 'dependency_failed') {
    const d = job.dependency;
    return h('div', {class: 'note note-error'}, 'This job was not built because its dependency ',
      d && d.job_id ? h('a', {href: paths.job(evalId, d.job_id)}, d.attr) : h('code', null, d ? d.attr : '?'),
      ' failed. Fix that one first.', d ? null : h('div', {class: 'small'}, job.error));
  }
  if (job.state === 'eval_failed') return [h('h2', null, 'Evaluation error'), h('pre', {class: 'nix-error'}, job.error || 'evaluation failed (no message)')];
  if (job.state === 'cached_failure') {
    return note(`${job.error || 'This derivation failed in an earlier build'}: it was not built again. Rebuild it to try once more.`, 'warn');
  }
  if (FAILING.has(job.state) || job.state === 'cancelled') return job.error ? note(job.error, job.state === 'cancelled' ? 'warn' : 'error') : null;
  return null;
}

export async function render(main, {evalId, jobId}, ctx) {
  const {signal} = ctx;
  let job;
  const evalP = api.eval(evalId, {signal}).catch(() => null);
  try {
    job = await api.job(jobId, {signal});
  } catch (e) {
    if (e.status === 404) {
      const s = await session();
      return notFound.render(main, {message: `There is no job ${jobId}${s.available && !s.user ? ', or it belongs to a private project: sign in to see it' : ''}.`}, ctx);
    }
    throw e;
  }
  const ev = await evalP;
  if (signal.aborted) return;
  ctx.setTitle(`${job.attr} · ${badgeText(job.state)}`);
  ctx.setCrumbs(ev ? [...evalCrumbs(ev, false), {label: job.attr}] : [{label: 'Projects', href: '/'}, {label: 'eval', href: paths.eval(evalId)}, {label: job.attr}]);

  const title = h('h1', null);
  const factsBox = h('div', {class: 'summary'});
  const whyBox = h('div');
  const actions = h('div', {class: 'actions'});
  const mismatch = job.eval_id && job.eval_id !== evalId
    ? note(`This job belongs to another eval: `, 'warn') : null;
  if (mismatch) mismatch.append(h('a', {href: paths.job(job.eval_id, job.id)}, 'open it there'));

  const draw = async () => {
    replace(title, badge(job.state, 'badge-large'), ' ', h('span', {class: 'attr-title'}, job.attr));
    replace(factsBox, facts(job));
    replace(whyBox, why(job));
    ctx.setTitle(`${job.attr} · ${badgeText(job.state)}`);
    if (FAILING.has(job.state)) {
      replace(actions, await actionButton({
        label: 'Rebuild',
        verb: 'rebuild',
        run: async (csrf) => {
          await api.rebuild(job.id, csrf);
          return 'Queued: its change is evaluated again; the new eval appears on the project page.';
        },
      }));
    } else {
      replace(actions);
    }
  };

  let refetching = null;
  const onState = (state, {refetch = false} = {}) => {
    if (state === job.state && !refetch) return;
    job = {...job, state};
    draw();
    // Times, attempts and errors come with the job record.
    refetching ??= api.job(jobId, {signal}).then((j) => {
      job = j;
      draw();
    }).catch(() => {}).finally(() => {
      refetching = null;
    });
  };

  replace(main, mismatch, h('div', {class: 'page-head'}, title), factsBox, actions, whyBox,
    ev ? h('p', {class: 'muted small'}, 'Part of ', h('a', {href: paths.eval(evalId)}, `the eval's ${count(ev.jobs_total || 0, 'job')}`),
      ev.jobs_failed ? `, ${ev.jobs_failed} not successful` : '', '.') : null,
    logView({jobId, state: job.state, signal, onState}));
  await draw();

  const tick = setInterval(() => {
    if (TERMINAL_JOB.has(job.state)) clearInterval(tick);
    else if (job.state === 'building') replace(factsBox, facts(job));
  }, 5000);
  signal.addEventListener('abort', () => clearInterval(tick));
}

function badgeText(state) {
  return state.replace(/_/g, ' ');
}
