// /evals/<eval>: what was built, why, and what changed since the last
// eval of the same branch; the jobs (filterable, sortable, paged);
// effects; cancel. Follows the eval live until it ends.
// GET /api/evals/<eval>, /jobs, /compare, /effects, /events;
// POST /api/evals/<eval>/cancel.
import {api} from '../api.js';
import {parse} from '../ansi.js';
import {external, h, note, replace} from '../dom.js';
import {badge, count, duration, elapsed, paths, refName, shortRev, TERMINAL_EVAL, timeEl} from '../format.js';
import {JobsTable} from '../jobs_table.js';
import {follow} from '../live.js';
import {forgeName, session, signInHint} from '../session.js';
import {triggerText} from './project.js';
import * as notFound from './not_found.js';

const MAX_LIST = 100;
const MAX_EFFECT_LINES = 5000;

function projectPath(e) {
  return paths.project(e.repo.forge, e.repo.owner, e.repo.name);
}

export function evalCrumbs(e, last = true) {
  const repo = e.repo || {};
  const name = `${repo.owner}/${repo.name}`;
  return [
    {label: 'Projects', href: '/'},
    {label: name, href: projectPath(e)},
    {label: refName(e.ref), href: paths.project(repo.forge, repo.owner, repo.name, e.ref), title: e.ref},
    {label: `eval ${shortRev(e.rev) || e.id}`, href: last ? null : paths.eval(e.id), title: e.id},
  ];
}

function refLabel(e) {
  const pr = e.trigger && e.trigger.pull_request;
  if (pr) {
    return [h('span', {class: 'strong'}, `#${pr.number}`), pr.title ? ` ${pr.title}` : '',
      pr.head_branch ? h('span', {class: 'muted small'}, ` (${pr.head_branch} → ${pr.base_branch || '?'})`) : null];
  }
  return h('span', {title: e.ref}, refName(e.ref));
}

function summary(e) {
  const repo = e.repo || {};
  const running = !TERMINAL_EVAL.has(e.state);
  const took = elapsed(e.created_ms, e.finished_ms);
  const links = e.links || {};
  const rows = [
    ['Repository', [h('a', {href: projectPath(e)}, `${repo.owner}/${repo.name}`), links.repo ? [' · ', external(links.repo, `on ${forgeName(repo.forge)}`)] : null]],
    ['Ref', refLabel(e)],
    ['Commit', links.commit ? external(links.commit, h('code', {title: e.rev}, shortRev(e.rev))) : h('code', {title: e.rev}, shortRev(e.rev))],
    ['Triggered by', triggerText(e) || h('span', {class: 'muted'}, 'unknown')],
    ['Created', timeEl(e.created_ms)],
    ['Finished', running ? h('span', {class: 'muted'}, 'still running') : timeEl(e.finished_ms)],
    ['Duration', took === null ? '' : `${duration(took)}${running ? ' so far' : ''}`],
    ['Jobs', `${count(e.jobs_total || 0, 'job')}${e.jobs_pending ? `, ${e.jobs_pending} pending` : ''}${e.jobs_failed ? `, ${e.jobs_failed} not successful` : ''}`],
  ];
  return [
    h('dl', {class: 'facts'}, rows.map(([k, v]) => h('div', null, h('dt', null, k), h('dd', null, v)))),
    e.cancelled ? note(`Cancelled${e.cancel_reason ? `: ${e.cancel_reason}` : ''}`, 'warn') : null,
    e.error ? [h('h2', null, 'Evaluation error'), h('pre', {class: 'nix-error'}, e.error)] : null,
    Array.isArray(e.warnings) && e.warnings.length
      ? h('div', {class: 'note note-warn'}, h('strong', null, count(e.warnings.length, 'warning')), h('ul', null, e.warnings.map((w) => h('li', null, h('pre', {class: 'warning-text'}, w)))))
      : null,
  ];
}

function changeList(evalId, baseId, items, {showBase = false} = {}) {
  const shown = items.slice(0, MAX_LIST);
  return h('ul', {class: 'changes'},
    shown.map((c) => {
      const jobLink = c.job_id ? h('a', {href: paths.job(evalId, c.job_id)}, c.attr) : c.base_job_id && baseId
        ? h('a', {href: paths.job(baseId, c.base_job_id)}, c.attr) : h('code', null, c.attr);
      return h('li', null, c.state ? badge(c.state) : c.base_state ? badge(c.base_state, 'is-base') : null, ' ', jobLink,
        showBase && c.base_state ? h('span', {class: 'muted small'}, ` (was ${c.base_state.replace(/_/g, ' ')})`) : null);
    }),
    items.length > shown.length ? h('li', {class: 'muted'}, `… and ${items.length - shown.length} more (see the jobs below)`) : null);
}

function compareBox(evalId, c) {
  const base = c.base;
  const lists = {
    newly_failing: c.newly_failing || [], fixed: c.fixed || [], still_failing: c.still_failing || [], new: c.new || [], removed: c.removed || [],
  };
  const parts = [];
  if (lists.newly_failing.length) parts.push(count(lists.newly_failing.length, 'new failure'));
  if (lists.fixed.length) parts.push(`${lists.fixed.length} fixed`);
  if (lists.still_failing.length) parts.push(`${lists.still_failing.length} still failing`);
  if (lists.new.length) parts.push(count(lists.new.length, 'new attribute'));
  if (lists.removed.length) parts.push(`${lists.removed.length} removed`);
  const headline = !base ? 'Nothing to compare with: no earlier eval of this branch (or of the pull request\'s base).'
    : parts.length ? parts.join(', ') : 'Same results as before.';
  const baseId = base ? base.id : '';
  const section = (key, title, hint, open = true) => lists[key].length
    ? h('details', {class: `change-group change-${key}`, open},
      h('summary', null, h('strong', null, title), ' ', h('span', {class: 'muted small'}, `(${lists[key].length}) ${hint}`)),
      changeList(evalId, baseId, lists[key], {showBase: key !== 'new'}))
    : null;
  return [
    h('p', {class: `headline ${lists.newly_failing.length ? 'is-bad' : ''}`}, headline),
    base ? h('p', {class: 'muted small'}, 'Compared with ', h('a', {href: paths.eval(base.id)}, `eval of ${refName(base.ref)} at ${shortRev(base.rev)}`),
      ' (', timeEl(base.created_ms), '), ', badge(base.state)) : null,
    section('newly_failing', 'Newly failing', 'passed before: likely this change'),
    section('fixed', 'Fixed', 'failed before, pass now'),
    section('still_failing', 'Still failing', 'failed before too', lists.still_failing.length <= 10),
    section('new', 'New attributes', 'not in the earlier eval', lists.new.length <= 10),
    section('removed', 'Removed', 'only in the earlier eval', false),
  ];
}

function effectLog(text) {
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const shown = lines.slice(-MAX_EFFECT_LINES);
  let style = null;
  const out = h('pre', {class: 'effect-log ansi'});
  for (const line of shown) {
    const {segments, end} = parse(line, style);
    style = end;
    for (const s of segments) out.append(s.cls ? h('span', {class: s.cls}, s.text) : s.text);
    out.append('\n');
  }
  return [lines.length > shown.length ? note(`The last ${MAX_EFFECT_LINES} of ${lines.length} lines.`) : null, out];
}

function effectsBox(effects) {
  if (!effects.length) return note('This eval ran no effects (they run after a green default-branch push).');
  return h('ul', {class: 'effects'}, effects.map((fx) => h('li', null,
    h('div', {class: 'effect-head'}, badge(fx.state), ' ', h('strong', null, fx.name), ' ', fx.finished_ms ? timeEl(fx.finished_ms) : null),
    fx.log ? h('details', {open: fx.state === 'failed'}, h('summary', null, 'Log'), effectLog(fx.log)) : null)));
}

async function cancelControls(evalId) {
  const s = await session();
  if (!s.available) return null;
  if (!s.user) {
    return h('div', {class: 'actions'}, h('button', {type: 'button', class: 'btn', disabled: true}, 'Cancel eval'),
      h('span', {class: 'muted small'}, ` ${signInHint(s, 'cancel')}`));
  }
  const reason = h('input', {type: 'text', class: 'input', placeholder: 'Reason (optional)', 'aria-label': 'Reason for cancelling', maxlength: '200'});
  const btn = h('button', {type: 'submit', class: 'btn btn-danger'}, 'Cancel eval');
  const status = h('span', {class: 'action-status', role: 'status'});
  const form = h('form', {class: 'actions'}, reason, btn, status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!window.confirm('Cancel this eval? Queued jobs end cancelled and running builds stop.')) return;
    btn.disabled = true;
    status.className = 'action-status';
    status.textContent = 'Cancelling…';
    try {
      const r = await api.cancel(evalId, reason.value.trim() || `cancelled from the web UI by ${s.user.login}`, s.csrf);
      status.textContent = `Cancelled ${count(r.cancelled_jobs || 0, 'job')}.`;
      status.classList.add('ok');
    } catch (err) {
      status.textContent = err.status === 401 ? `Sign in first: ${err.message}` : err.status === 403 ? `Not allowed: ${err.message}` : err.message;
      status.classList.add('error');
      btn.disabled = false;
    }
  });
  return form;
}

export async function render(main, {evalId, focus}, ctx) {
  const {signal} = ctx;
  let ev;
  try {
    ev = await api.eval(evalId, {signal});
  } catch (e) {
    if (e.status === 404) {
      const s = await session();
      return notFound.render(main, {message: `There is no eval ${evalId}${s.available && !s.user ? ', or it belongs to a private project: sign in to see it' : ''}.`}, ctx);
    }
    throw e;
  }
  const repoName = `${ev.repo.owner}/${ev.repo.name}`;
  ctx.setTitle(`${repoName} ${refName(ev.ref)} ${shortRev(ev.rev)}`);
  ctx.setCrumbs(evalCrumbs(ev));

  const [jobsR, compareR, effectsR] = await Promise.allSettled([api.jobs(evalId, {signal}), api.compare(evalId, {signal}), api.effects(evalId, {signal})]);
  if (signal.aborted) return;

  const title = h('h1', null);
  const summaryBox = h('div', {class: 'summary'});
  const actionsBox = h('div');
  const drawSummary = () => {
    replace(title, badge(ev.state, 'badge-large'), ' ', repoName, ' ', h('span', {class: 'muted'}, refName(ev.ref)));
    replace(summaryBox, summary(ev));
  };
  const drawActions = async () => {
    replace(actionsBox, TERMINAL_EVAL.has(ev.state) ? null : await cancelControls(evalId));
  };

  const compareContent = h('div');
  const drawCompare = (r) => {
    if (r.status === 'fulfilled') replace(compareContent, compareBox(evalId, r.value));
    else replace(compareContent, note(r.reason.status === 404 ? 'The comparison with earlier evals is not available on this server yet.'
      : `The comparison could not be loaded: ${r.reason.message}`, r.reason.status === 404 ? 'info' : 'error'));
  };
  const effectsContent = h('div');
  const drawEffects = (r) => {
    if (r.status === 'fulfilled') replace(effectsContent, effectsBox(r.value.effects || []));
    else replace(effectsContent, note(r.reason.status === 404 ? 'Effects are not available on this server yet.' : `Effects could not be loaded: ${r.reason.message}`,
      r.reason.status === 404 ? 'info' : 'error'));
  };

  const params = new URLSearchParams(location.search);
  let table = null;
  let jobsContent;
  if (jobsR.status === 'fulfilled') {
    table = new JobsTable(evalId, jobsR.value, {initial: {state: params.get('state'), q: params.get('q'), sort: params.get('sort')},
      onChange: (v) => ctx.setQuery(v)});
    jobsContent = table.el;
  } else {
    jobsContent = note(`The jobs could not be loaded: ${jobsR.reason.message}`, 'error');
  }

  drawSummary();
  drawCompare(compareR);
  drawEffects(effectsR);
  replace(main,
    h('div', {class: 'page-head'}, title), summaryBox, actionsBox,
    h('section', {class: 'card what-changed', 'aria-labelledby': 'changed-heading'}, h('h2', {id: 'changed-heading'}, 'What changed'), compareContent),
    h('section', {'aria-labelledby': 'jobs-heading'}, h('h2', {id: 'jobs-heading'}, 'Jobs'), jobsContent),
    h('section', {'aria-labelledby': 'effects-heading'}, h('h2', {id: 'effects-heading'}, 'Effects'), effectsContent));
  await drawActions();
  // The flurry/effects status links to /evals/<eval>/effects.
  if (focus === 'effects') document.getElementById('effects-heading')?.scrollIntoView();

  if (TERMINAL_EVAL.has(ev.state)) return;

  // Live.
  const refreshJobs = async () => {
    if (!table) return;
    table.setJobs(await api.jobs(evalId, {signal}));
  };
  const ended = async () => {
    const [c, fx] = await Promise.allSettled([api.compare(evalId, {signal}), api.effects(evalId, {signal})]);
    if (signal.aborted) return;
    drawCompare(c);
    drawEffects(fx);
  };
  const sig = (e) => `${e.state}/${e.jobs_total}/${e.jobs_pending}/${e.jobs_failed}/${e.finished_ms}/${e.cancelled}`;
  const setEval = (next) => {
    if (!next || next.id !== evalId) return;
    const was = ev.state;
    ev = {...ev, ...next};
    drawSummary();
    if (TERMINAL_EVAL.has(ev.state) !== TERMINAL_EVAL.has(was)) drawActions();
  };
  follow({
    url: () => api.evalEvents(evalId),
    signal,
    events: {
      eval: setEval,
      job: (j) => table?.update(j),
      end: () => {
        refreshJobs().catch(() => {});
        ended().catch(() => {});
      },
    },
    resync: () => {
      refreshJobs().catch(() => {});
    },
    poll: async () => {
      const before = sig(ev);
      setEval(await api.eval(evalId, {signal}));
      if (sig(ev) !== before) await refreshJobs();
      if (!TERMINAL_EVAL.has(ev.state)) return false;
      await ended();
      return true;
    },
  });
  // Durations of a running eval grow.
  const tick = setInterval(() => {
    if (TERMINAL_EVAL.has(ev.state)) clearInterval(tick);
    else drawSummary();
  }, 10_000);
  signal.addEventListener('abort', () => clearInterval(tick));
}
