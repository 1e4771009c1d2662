// Who is signed in (GET /api/session), the header's sign-in/out, and the
// buttons of actions that need a signed-in user with write permission.
import {api} from './api.js';
import {h, replace, safeUrl} from './dom.js';

const SIGNED_OUT = {user: null, csrf: '', sign_in: [], token_auth: false};
let current = null;

// The session, asked once per page load; {available: false} while the
// server has no /api/session (then no actions are offered).
export function session() {
  current ??= api.session().then(
    (s) => ({...SIGNED_OUT, ...s, sign_in: Array.isArray(s.sign_in) ? s.sign_in : [], available: true}),
    () => ({...SIGNED_OUT, available: false}),
  );
  return current;
}

// Why an action's button is disabled for someone not signed in.
export function signInHint(s, verb) {
  return s.sign_in.length ? `Sign in to ${verb}.` : `Signing in is not set up on this server, so nobody can ${verb} here.`;
}

const FORGE_NAMES = {github: 'GitHub', gitea: 'Gitea', gitlab: 'GitLab'};
export function forgeName(forge) {
  return FORGE_NAMES[forge] || forge;
}

// The header's right-hand side: "Sign in with GitHub" links, or the user
// and a sign-out button.
export async function renderAuth(box) {
  const s = await session();
  if (!s.available) return replace(box);
  if (s.user) {
    const who = s.user.name ? `${s.user.name} (${s.user.login})` : s.user.login;
    const out = h('button', {type: 'button', class: 'btn btn-quiet'}, 'Sign out');
    out.addEventListener('click', async () => {
      out.disabled = true;
      try {
        await api.logout(s.csrf);
      } catch {
        // signed out or not: the reload shows which
      }
      location.reload();
    });
    return replace(box, h('span', {class: 'user', title: `signed in through ${forgeName(s.user.forge)}`}, who), out);
  }
  // Signing in comes back to the page it started from (`next`), read when
  // the link is followed: the page may have moved on since it was drawn.
  const here = () => `?next=${encodeURIComponent(location.pathname + location.search + location.hash)}`;
  const links = s.sign_in
    .map((p) => ({href: safeUrl(p.url), forge: p.forge}))
    .filter((p) => p.href)
    .map((p) => {
      const a = h('a', {class: 'btn btn-quiet', href: p.href + here()}, `Sign in with ${forgeName(p.forge)}`);
      const refresh = () => a.setAttribute('href', p.href + here());
      a.addEventListener('mousedown', refresh);
      a.addEventListener('focus', refresh);
      a.addEventListener('click', refresh);
      return a;
    });
  return replace(box, ...links);
}

// An action button: enabled for a signed-in user, disabled with "Sign in to
// <verb>" otherwise, absent when the server has no sessions. `run` gets
// the CSRF token and answers the text to show on success; errors (401,
// 403, ...) show the server's message.
export async function actionButton({label, verb, run, confirmText = null, danger = false}) {
  const s = await session();
  const box = h('span', {class: 'action'});
  if (!s.available) return box;
  const status = h('span', {class: 'action-status', role: 'status', 'aria-live': 'polite'});
  if (!s.user) {
    const btn = h('button', {type: 'button', class: 'btn', disabled: true}, label);
    return replace(box, btn, h('span', {class: 'muted small'}, ` ${signInHint(s, verb)}`));
  }
  const btn = h('button', {type: 'button', class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`}, label);
  btn.addEventListener('click', async () => {
    if (confirmText && !window.confirm(confirmText)) return;
    btn.disabled = true;
    status.className = 'action-status';
    status.textContent = 'Working…';
    try {
      status.textContent = (await run(s.csrf)) || 'Done.';
      status.classList.add('ok');
    } catch (e) {
      status.textContent = e.status === 401 ? `Sign in first: ${e.message}` : e.status === 403 ? `Not allowed: ${e.message}` : e.message;
      status.classList.add('error');
      btn.disabled = false;
    }
  });
  return replace(box, btn, ' ', status);
}
