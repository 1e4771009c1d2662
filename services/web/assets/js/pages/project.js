// /projects/<forge>/<owner...>/<repo>: branches, tags and open pull
// requests with their latest evals, and the eval history below, paged by
// cursor and filtered by ref (?ref= keeps the filter in the address).
// GET /api/project, GET /api/project/evals, POST /api/approve.
import {api} from '../api.js';
import {external, h, note, replace} from '../dom.js';
import {badge, count, duration, elapsed, paths, refName, shortRev, timeEl} from '../format.js';
import {actionButton, forgeName} from '../session.js';

const PAGE = 30;
const KINDS = [['branch', 'Branches'], ['pull_request', 'Open pull requests'], ['tag', 'Tags']];

export function triggerText(e) {
  const t = e.trigger || {};
  const who = t.sender ? ` by ${t.sender}` : '';
  switch (t.kind) {
    case 'push': return `push${who}`;
    case 'pull_request': return `pull request${who}`;
    case 'rerun': return `re-run${who}`;
    case 'approve': return `approval${who}`;
    default: return t.kind ? `${t.kind}${who}` : '';
  }
}

function refRow(project, r) {
  const label = r.kind === 'pull_request' ? [h('span', {class: 'strong'}, r.name || `#${r.number}`), r.title ? ` ${r.title}` : '']
    : h('span', {class: 'strong'}, r.name || refName(r.ref));
  const latest = r.latest;
  let approve = null;
  if (r.kind === 'pull_request' && !latest && r.number) {
    approve = h('div', {class: 'small'}, 'Waiting for approval? ');
    actionButton({label: 'Approve and build', verb: 'approve', run: async (csrf) => {
      await api.approve({forge: project.forge, owner: project.owner, repo: project.repo, number: r.number}, csrf);
      return 'Approved: the pull request is evaluated next.';
    }}).then((b) => approve.append(b));
  }
  return h('tr', null,
    h('td', {'data-label': 'Ref', class: 'ref'}, h('a', {href: paths.project(project.forge, project.owner, project.repo, r.ref), title: `history of ${r.ref}`}, label), approve),
    h('td', {'data-label': 'Latest'}, latest ? h('a', {href: paths.eval(latest.id), class: 'badge-link'}, badge(latest.state)) : h('span', {class: 'muted'}, 'no eval')),
    h('td', {'data-label': 'Commit', class: 'mono small'}, latest ? shortRev(latest.rev) : ''),
    h('td', {'data-label': 'Last activity'}, timeEl(r.last_activity_ms)));
}

function evalRow(e) {
  const d = e.finished_ms ? elapsed(e.created_ms, e.finished_ms) : null;
  const pr = e.trigger && e.trigger.pull_request;
  return h('tr', null,
    h('td', {'data-label': 'State'}, h('a', {href: paths.eval(e.id), class: 'badge-link'}, badge(e.state))),
    h('td', {'data-label': 'Ref', class: 'ref'}, refName(e.ref), pr && pr.title ? h('span', {class: 'muted small'}, ` ${pr.title}`) : null),
    h('td', {'data-label': 'Commit', class: 'mono small'}, h('a', {href: paths.eval(e.id)}, shortRev(e.rev))),
    h('td', {'data-label': 'Trigger', class: 'small'}, triggerText(e)),
    h('td', {'data-label': 'Jobs', class: 'small'}, e.jobs_total ? `${e.jobs_total.toLocaleString()}${e.jobs_failed ? ` (${e.jobs_failed.toLocaleString()} not ok)` : ''}` : ''),
    h('td', {'data-label': 'Started'}, timeEl(e.created_ms)),
    h('td', {'data-label': 'Took', class: 'num small'}, d === null ? '' : duration(d)));
}

export async function render(main, {forge, owner, repo}, ctx) {
  const name = `${owner}/${repo}`;
  ctx.setTitle(name);
  ctx.setCrumbs([{label: 'Projects', href: '/'}, {label: name}]);
  let data = null;
  let failure = null;
  try {
    data = await api.project(forge, owner, repo, {signal: ctx.signal});
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    failure = e;
  }
  const project = data?.project || {forge, owner, repo};
  const refs = Array.isArray(data?.refs) ? data.refs : [];
  let ref = new URLSearchParams(location.search).get('ref') || '';
  if (ref) ctx.setCrumbs([{label: 'Projects', href: '/'}, {label: name, href: paths.project(forge, owner, repo)}, {label: refName(ref), title: ref}]);

  const head = h('div', {class: 'page-head'},
    h('h1', null, name),
    h('p', {class: 'muted'}, forgeName(forge),
      project.default_branch ? ` · default branch ${project.default_branch}` : '',
      project.private ? h('span', {class: 'tag'}, 'private') : null,
      project.html_url ? [' · ', external(project.html_url, `open on ${forgeName(forge)}`)] : null));

  const refsBox = h('section', {'aria-labelledby': 'refs-heading'}, h('h2', {id: 'refs-heading'}, 'Branches, pull requests and tags'));
  if (failure) {
    refsBox.append(note(failure.status === 404 ? `No project ${name} is known here, or this server cannot list projects yet.`
      : `The project could not be loaded: ${failure.message}`, failure.status === 404 ? 'info' : 'error'));
  } else {
    for (const [kind, title] of KINDS) {
      const these = refs.filter((r) => r.kind === kind && (kind !== 'pull_request' || r.open !== false));
      if (kind === 'branch') these.sort((a, b) => (b.name === project.default_branch) - (a.name === project.default_branch));
      if (!these.length) continue;
      refsBox.append(h('h3', null, title, ' ', h('span', {class: 'muted small'}, `(${these.length})`)),
        h('div', {class: 'table-box'}, h('table', {class: 'table refs-table'},
          h('thead', null, h('tr', null, ['Ref', 'Latest eval', 'Commit', 'Last activity'].map((c) => h('th', {scope: 'col'}, c)))),
          h('tbody', null, these.map((r) => refRow(project, r))))));
    }
    if (!refs.length) refsBox.append(note('No branches, tags or pull requests have been built yet.'));
  }

  // History.
  const refSelect = h('select', {class: 'input', 'aria-label': 'Show the evals of'},
    h('option', {value: ''}, 'All refs'),
    refs.map((r) => h('option', {value: r.ref}, r.kind === 'pull_request' ? `${r.name} ${r.title || ''}`.trim() : r.name || refName(r.ref))));
  if (ref && !refs.some((r) => r.ref === ref)) refSelect.append(h('option', {value: ref}, refName(ref)));
  refSelect.value = ref;
  const body = h('tbody');
  const status = h('p', {class: 'muted small', 'aria-live': 'polite'});
  const older = h('button', {type: 'button', class: 'btn', hidden: true}, 'Older evals');
  const historyBox = h('section', {'aria-labelledby': 'history-heading'},
    h('div', {class: 'section-head'}, h('h2', {id: 'history-heading'}, 'Evals'), h('label', {class: 'sort'}, h('span', {class: 'muted small'}, 'Ref '), refSelect)),
    h('div', {class: 'table-box'}, h('table', {class: 'table evals-table'},
      h('thead', null, h('tr', null, ['State', 'Ref', 'Commit', 'Trigger', 'Jobs', 'Started', 'Took'].map((c) => h('th', {scope: 'col', class: c === 'Took' ? 'num' : null}, c)))),
      body)),
    status, older);

  let cursor = null;
  let loaded = 0;
  let generation = 0;
  const load = async (reset) => {
    const mine = reset ? ++generation : generation;
    if (reset) {
      cursor = null;
      loaded = 0;
      replace(body);
    }
    older.disabled = true;
    status.textContent = 'Loading…';
    try {
      const page = await api.projectEvals({forge, owner, repo, ref, cursor, limit: PAGE}, {signal: ctx.signal});
      if (mine !== generation) return;
      const evals = page.evals || [];
      body.append(...evals.map(evalRow));
      loaded += evals.length;
      cursor = page.next_cursor || null;
      older.hidden = !cursor;
      status.textContent = loaded ? `${count(loaded, 'eval')} shown${cursor ? '' : ' (all of them)'}` : ref ? `No evals of ${refName(ref)}.` : 'No evals yet.';
    } catch (e) {
      if (e.name === 'AbortError' || mine !== generation) return;
      status.textContent = e.status === 404 ? 'The eval history is not available on this server yet.' : `The evals could not be loaded: ${e.message}`;
      status.classList.add(e.status === 404 ? 'muted' : 'error');
    }
    older.disabled = false;
  };
  older.addEventListener('click', () => load(false));
  refSelect.addEventListener('change', () => {
    ref = refSelect.value;
    ctx.setQuery({ref});
    ctx.setCrumbs(ref ? [{label: 'Projects', href: '/'}, {label: name, href: paths.project(forge, owner, repo)}, {label: refName(ref), title: ref}]
      : [{label: 'Projects', href: '/'}, {label: name}]);
    load(true);
  });

  replace(main, head, refsBox, historyBox);
  await load(true);
}
