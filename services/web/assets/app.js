// Flurry's web UI: one HTML shell for every page; this module picks the
// page from the path, draws the header, and keeps back/forward working
// through the History API. Pages live in js/pages/, each exporting
// render(main, params, ctx) and cleaning up when ctx.signal aborts.
import {h, replace} from './js/dom.js';
import {refreshTimes} from './js/format.js';
import {renderAuth} from './js/session.js';
import * as projectsPage from './js/pages/projects.js';
import * as projectPage from './js/pages/project.js';
import * as evalPage from './js/pages/eval.js';
import * as jobPage from './js/pages/job.js';
import * as notFoundPage from './js/pages/not_found.js';

const dec = (s) => decodeURIComponent(s);

// [pattern over location.pathname, page, params from the match]
const ROUTES = [
  [/^\/$/, projectsPage, () => ({})],
  [/^\/projects\/([^/]+)\/(.+)\/([^/]+)$/, projectPage, (m) => ({forge: dec(m[1]), owner: m[2].split('/').map(dec).join('/'), repo: dec(m[3])})],
  [/^\/evals\/([^/]+)$/, evalPage, (m) => ({evalId: dec(m[1])})],
  [/^\/evals\/([^/]+)\/effects$/, evalPage, (m) => ({evalId: dec(m[1]), focus: 'effects'})],
  [/^\/evals\/([^/]+)\/jobs\/([^/]+)$/, jobPage, (m) => ({evalId: dec(m[1]), jobId: dec(m[2])})],
];

function match(pathname) {
  for (const [re, page, params] of ROUTES) {
    const m = re.exec(pathname);
    if (!m) continue;
    try {
      if (m.slice(1).some((s) => s === '' || s.split('/').includes(''))) return null;
      return {page, params: params(m)};
    } catch {
      return null; // malformed %-escapes
    }
  }
  return null;
}

const main = document.getElementById('main');
const header = document.getElementById('site-header');
const crumbs = h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'});
const auth = h('div', {class: 'auth'});
replace(header, h('a', {class: 'brand', href: '/'}, h('img', {src: '/assets/favicon.svg', alt: '', width: '22', height: '22'}), 'Flurry'), crumbs, auth);

// Breadcrumb items: [{label, href}], the last one the current page.
function setCrumbs(items) {
  const list = h('ol');
  items.forEach((item, i) => {
    const last = i === items.length - 1;
    list.append(h('li', null, last || !item.href ? h('span', {'aria-current': last ? 'page' : null, title: item.title || null}, item.label)
      : h('a', {href: item.href, title: item.title || null}, item.label)));
  });
  replace(crumbs, list);
}

let controller = null;
let rendered = ''; // path and query of the page on screen

async function render({focus = false} = {}) {
  rendered = location.pathname + location.search;
  controller?.abort();
  controller = new AbortController();
  const signal = controller.signal;
  const found = match(location.pathname);
  const ctx = {
    signal,
    navigate,
    setCrumbs,
    setTitle: (t) => {
      document.title = t ? `${t} · Flurry` : 'Flurry';
    },
    // For pages that keep their own state in the query (filters): no new
    // history entry.
    setQuery: (params) => {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
      const s = q.toString();
      history.replaceState(history.state, '', `${location.pathname}${s ? `?${s}` : ''}${location.hash}`);
      rendered = location.pathname + location.search;
    },
  };
  ctx.setCrumbs([]);
  ctx.setTitle('');
  replace(main, h('p', {class: 'loading muted'}, 'Loading…'));
  // Busy until the page is drawn (screen readers wait; so do the tests).
  main.setAttribute('aria-busy', 'true');
  try {
    if (found) await found.page.render(main, found.params, ctx);
    else await notFoundPage.render(main, {}, ctx);
  } catch (e) {
    if (e.name === 'AbortError' || signal.aborted) return;
    replace(main, h('h1', null, 'Something went wrong'), h('p', {class: 'note note-error', role: 'alert'}, String(e.message || e)),
      h('p', null, h('a', {href: location.href}, 'Reload the page')));
    console.error(e);
  }
  if (!signal.aborted) main.setAttribute('aria-busy', 'false');
  if (focus && !signal.aborted) main.focus({preventScroll: true});
}

function navigate(url, {replace: replaceEntry = false} = {}) {
  const u = new URL(url, location.href);
  if (replaceEntry) history.replaceState(null, '', u);
  else history.pushState(null, '', u);
  if (!u.hash) window.scrollTo(0, 0);
  render({focus: true});
}

// Same-origin links to the UI's own pages navigate in place; everything
// else (the API, downloads, the forge, sign-in) is left to the browser.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a[href]');
  if (!a || a.hasAttribute('download') || (a.target && a.target !== '_self')) return;
  const u = new URL(a.href, location.href);
  if (u.origin !== location.origin || !match(u.pathname)) return;
  if (u.pathname === location.pathname && u.search === location.search && u.hash) return; // an anchor on this page
  e.preventDefault();
  navigate(u.href);
});

// Back/forward across pages redraws; across anchors of one page (#L12) the
// page's own hashchange handler moves.
window.addEventListener('popstate', () => {
  if (location.pathname + location.search !== rendered) render({focus: true});
});
setInterval(() => refreshTimes(), 30_000);

renderAuth(auth);
render();
