// "/": every project with its default branch's latest state and last
// activity, filtered as you type. GET /api/projects.
import {api} from '../api.js';
import {external, h, note, replace, safeUrl} from '../dom.js';
import {badge, count, paths, refName, timeEl} from '../format.js';
import {forgeName} from '../session.js';

export async function render(main, _params, ctx) {
  ctx.setTitle('Projects');
  ctx.setCrumbs([{label: 'Projects'}]);
  let projects;
  try {
    projects = (await api.projects({signal: ctx.signal})).projects || [];
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    replace(main, h('h1', null, 'Projects'),
      note(e.status === 404 ? 'The project list is not available on this server yet. Commit statuses link straight to their evals and jobs.'
        : `The project list could not be loaded: ${e.message}`, e.status === 404 ? 'info' : 'error'));
    return;
  }

  const q = new URLSearchParams(location.search).get('q') || '';
  const filter = h('input', {type: 'search', class: 'input', placeholder: 'Filter projects', 'aria-label': 'Filter projects', value: q,
    autocomplete: 'off', spellcheck: 'false'});
  const summary = h('p', {class: 'muted small', 'aria-live': 'polite'});
  const body = h('tbody');
  const rows = projects.map((p) => ({
    key: `${p.forge}/${p.owner}/${p.repo}`.toLowerCase(),
    el: h('tr', null,
      h('td', {'data-label': 'Project'},
        h('a', {href: paths.project(p.forge, p.owner, p.repo), class: 'strong'}, `${p.owner}/${p.repo}`), ' ',
        h('span', {class: 'muted small'}, forgeName(p.forge)), p.private ? h('span', {class: 'tag'}, 'private') : null),
      h('td', {'data-label': 'Default branch'},
        p.latest ? h('a', {href: paths.eval(p.latest.id), class: 'badge-link', title: `latest eval of ${p.default_branch || 'the default branch'}`},
          badge(p.latest.state)) : h('span', {class: 'muted'}, 'no eval yet'),
        ' ', h('span', {class: 'muted small'}, p.default_branch || (p.latest ? refName(p.latest.ref) : ''))),
      h('td', {'data-label': 'Last activity'}, timeEl(p.last_activity_ms)),
      h('td', {'data-label': 'Forge', class: 'small'}, safeUrl(p.html_url) ? external(p.html_url, 'on ', forgeName(p.forge)) : null)),
  }));
  const apply = () => {
    const needle = filter.value.trim().toLowerCase();
    let shown = 0;
    const keep = [];
    for (const r of rows) {
      if (needle && !r.key.includes(needle)) continue;
      shown++;
      if (keep.length < 500) keep.push(r.el);
    }
    replace(body, keep);
    summary.textContent = !rows.length ? '' : needle ? `${shown} of ${count(rows.length, 'project')} match` : count(rows.length, 'project');
    ctx.setQuery({q: filter.value});
  };
  filter.addEventListener('input', apply);

  replace(main,
    h('div', {class: 'page-head'}, h('h1', null, 'Projects')),
    rows.length ? [h('div', {class: 'toolbar'}, filter), summary,
      h('div', {class: 'table-box'}, h('table', {class: 'table projects-table'},
        h('thead', null, h('tr', null, h('th', {scope: 'col'}, 'Project'), h('th', {scope: 'col'}, 'Default branch'),
          h('th', {scope: 'col'}, 'Last activity'), h('th', {scope: 'col'}, h('span', {class: 'visually-hidden'}, 'Forge')))),
        body))]
      : note('No projects yet: they appear here after their first webhook or poll.'));
  apply();
}
