// The eval page's jobs: filter chips by state (with counts), an attribute
// filter, sorting, and pages of 200 rows, all over the in-memory array, so
// an eval of 10,000 jobs never puts more than a page of rows in the DOM.
// Live updates replace jobs by id and redraw at most every 300 ms.
import {debounce, h, replace} from './dom.js';
import {badge, duration, elapsed, FAILING, paths, stateInfo, stateRank} from './format.js';

const PAGE = 200;
const collator = new Intl.Collator(undefined, {numeric: true});
// Jobs carry their place in attribute order (computed once: the collator
// is slow enough to matter at 10,000 jobs redrawn live).
const byAttr = (a, b) => a.order - b.order;

const SORTS = {
  state: ['Failures first', (a, b) => stateRank(a.state) - stateRank(b.state) || byAttr(a, b)],
  name: ['Attribute', byAttr],
  duration: ['Longest first', (a, b) => (jobDuration(b) ?? -1) - (jobDuration(a) ?? -1) || byAttr(a, b)],
};

// What the attribute filter looks in, lower-cased once.
function withKey(j) {
  return {...j, attr: String(j.attr || ''), filterKey: `${j.attr || ''} ${j.system || ''}`.toLowerCase(), order: j.order ?? 0};
}

function jobDuration(j) {
  return j.started_ms ? elapsed(j.started_ms, j.finished_ms) : null;
}

function details(evalId, j) {
  if (j.state === 'dependency_failed') {
    if (j.dependency && j.dependency.attr) {
      return h('span', null, 'Its dependency ',
        j.dependency.job_id ? h('a', {href: paths.job(evalId, j.dependency.job_id)}, j.dependency.attr) : h('code', null, j.dependency.attr),
        ' failed');
    }
    return j.error || 'A dependency failed';
  }
  if (j.state === 'eval_failed') return h('pre', {class: 'nix-error'}, j.error || 'evaluation failed (no message)');
  if (j.state === 'cached_failure') return h('span', null, j.error || 'Failed in an earlier build; rebuild it to try again.');
  if (j.state === 'skipped') return h('span', {class: 'muted'}, 'Outputs were already built');
  if (j.state === 'unsupported_system') return h('span', {class: 'muted'}, j.error || `No builder for ${j.system}`);
  return j.error ? h('span', null, j.error) : '';
}

export class JobsTable {
  // initial: {state, q, sort} (from the URL); onChange(view) when they change.
  constructor(evalId, jobs, {initial = {}, onChange = () => {}} = {}) {
    this.evalId = evalId;
    this.onChange = onChange;
    this.stateFilter = initial.state || '';
    this.text = initial.q || '';
    this.sort = SORTS[initial.sort] ? initial.sort : 'state';
    this.page = 0;
    this.timer = 0;
    this.setJobs(jobs, false);

    this.chips = h('div', {class: 'chips', role: 'group', 'aria-label': 'Show jobs by state'});
    this.filter = h('input', {type: 'search', class: 'input', placeholder: 'Filter by attribute', 'aria-label': 'Filter jobs by attribute',
      value: this.text, autocomplete: 'off', spellcheck: 'false'});
    this.filter.addEventListener('input', debounce(() => {
      this.text = this.filter.value;
      this.page = 0;
      this.changed();
    }, 120));
    const sortSelect = h('select', {class: 'input', 'aria-label': 'Sort jobs'},
      Object.entries(SORTS).map(([k, [label]]) => h('option', {value: k}, label)));
    sortSelect.value = this.sort;
    sortSelect.addEventListener('change', () => {
      this.sort = sortSelect.value;
      this.page = 0;
      this.changed();
    });
    this.summary = h('p', {class: 'muted small', 'aria-live': 'polite'});
    this.body = h('tbody');
    this.pager = h('nav', {class: 'pager', 'aria-label': 'Job pages'});
    this.el = h('div', {class: 'jobs'},
      this.chips,
      h('div', {class: 'toolbar'}, this.filter, h('label', {class: 'sort'}, h('span', {class: 'muted small'}, 'Sort '), sortSelect)),
      this.summary,
      h('div', {class: 'table-box'}, h('table', {class: 'table jobs-table'},
        h('thead', null, h('tr', null, h('th', {scope: 'col'}, 'State'), h('th', {scope: 'col'}, 'Attribute'),
          h('th', {scope: 'col'}, 'System'), h('th', {scope: 'col', class: 'num'}, 'Duration'), h('th', {scope: 'col'}, 'Details'))),
        this.body)),
      this.pager);
    this.render();
  }

  setJobs(jobs, draw = true) {
    this.jobs = Array.isArray(jobs) ? jobs.map(withKey) : [];
    this.index = new Map(this.jobs.map((j, i) => [j.id, i]));
    this.orderByAttr();
    if (draw) this.schedule();
  }

  // A job changed (live event).
  update(job) {
    if (!job || !job.id) return;
    const i = this.index.get(job.id);
    if (i === undefined) {
      this.index.set(job.id, this.jobs.length);
      this.jobs.push(withKey(job));
      this.orderByAttr();
    } else {
      this.jobs[i] = withKey({...this.jobs[i], ...job});
    }
    this.schedule();
  }

  orderByAttr() {
    [...this.jobs].sort((a, b) => collator.compare(a.attr, b.attr)).forEach((j, i) => {
      j.order = i;
    });
  }

  schedule() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = 0;
      this.render();
    }, 300);
  }

  changed() {
    this.onChange({state: this.stateFilter, q: this.text, sort: this.sort === 'state' ? '' : this.sort});
    this.render();
  }

  counts() {
    const c = new Map();
    for (const j of this.jobs) c.set(j.state, (c.get(j.state) || 0) + 1);
    return c;
  }

  matches(j) {
    if (this.stateFilter === 'failing' ? !FAILING.has(j.state) : this.stateFilter && j.state !== this.stateFilter) return false;
    if (this.needle && !j.filterKey.includes(this.needle)) return false;
    return true;
  }

  renderChips(counts) {
    const failing = [...counts].filter(([s]) => FAILING.has(s)).reduce((n, [, c]) => n + c, 0);
    const states = [...counts.keys()].sort((a, b) => stateRank(a) - stateRank(b));
    const chip = (value, label, n, tone) => {
      const pressed = this.stateFilter === value;
      const b = h('button', {type: 'button', class: `chip ${tone ? `tone-${tone}` : ''}`, 'aria-pressed': String(pressed)},
        label, ' ', h('span', {class: 'chip-count'}, n.toLocaleString()));
      b.addEventListener('click', () => {
        this.stateFilter = pressed ? '' : value;
        this.page = 0;
        this.changed();
        this.chips.querySelector('[aria-pressed="true"]')?.focus();
      });
      return b;
    };
    // Keep the chip with focus focused across the redraw.
    const focused = this.chips.contains(document.activeElement) ? [...this.chips.children].indexOf(document.activeElement) : -1;
    replace(this.chips,
      chip('', 'All', this.jobs.length, ''),
      failing && states.filter((s) => FAILING.has(s)).length > 1 ? chip('failing', 'Failing', failing, 'fail') : null,
      states.map((s) => chip(s, stateInfo(s).label, counts.get(s), stateInfo(s).tone)),
      this.stateFilter && !counts.has(this.stateFilter) && this.stateFilter !== 'failing' ? chip(this.stateFilter, stateInfo(this.stateFilter).label, 0, '') : null);
    if (focused >= 0) this.chips.children[Math.min(focused, this.chips.children.length - 1)]?.focus();
  }

  render() {
    this.needle = this.text.trim().toLowerCase();
    this.renderChips(this.counts());
    const shown = this.jobs.filter((j) => this.matches(j)).sort(SORTS[this.sort][1]);
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    this.page = Math.min(this.page, pages - 1);
    const from = this.page * PAGE;
    const rows = shown.slice(from, from + PAGE);
    replace(this.body, rows.map((j) => this.row(j)));
    if (!this.jobs.length) this.summary.textContent = 'This eval has no jobs (yet).';
    else if (!shown.length) this.summary.textContent = 'No job matches the filter.';
    else if (shown.length <= PAGE) this.summary.textContent = `${shown.length.toLocaleString()} of ${this.jobs.length.toLocaleString()} jobs`;
    else this.summary.textContent = `Jobs ${(from + 1).toLocaleString()}–${(from + rows.length).toLocaleString()} of ${shown.length.toLocaleString()} shown (${this.jobs.length.toLocaleString()} in all)`;
    this.renderPager(pages);
  }

  renderPager(pages) {
    if (pages <= 1) return replace(this.pager);
    const go = (p) => () => {
      this.page = p;
      this.render();
      this.summary.scrollIntoView({block: 'nearest'});
    };
    const prev = h('button', {type: 'button', class: 'btn btn-small', disabled: this.page === 0}, '← Previous 200');
    prev.addEventListener('click', go(this.page - 1));
    const next = h('button', {type: 'button', class: 'btn btn-small', disabled: this.page >= pages - 1}, 'Next 200 →');
    next.addEventListener('click', go(this.page + 1));
    replace(this.pager, prev, h('span', {class: 'muted small'}, ` Page ${this.page + 1} of ${pages} `), next);
  }

  row(j) {
    const d = jobDuration(j);
    return h('tr', {class: FAILING.has(j.state) ? 'is-failing' : null},
      h('td', {'data-label': 'State'}, badge(j.state)),
      h('td', {'data-label': 'Attribute', class: 'attr wide'}, h('a', {href: paths.job(this.evalId, j.id)}, j.attr || j.name || j.id)),
      h('td', {'data-label': 'System', class: 'muted system'}, j.system || ''),
      h('td', {'data-label': 'Duration', class: 'num'}, d === null ? '' : duration(d)),
      h('td', {'data-label': 'Details', class: 'details wide'}, details(this.evalId, j)));
  }
}
