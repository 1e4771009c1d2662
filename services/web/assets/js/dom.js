// Building DOM nodes without HTML parsing. Everything the API sends is
// attacker-controlled (attribute names, branch names, logs), so text only
// ever becomes text nodes, and URLs only ever reach href through safeUrl.

// The URL if it is http(s) (absolute), a same-origin path we built
// ("/evals/...") or an anchor on this page ("#L12"), otherwise null: never
// javascript:, data: or the like.
export function safeUrl(url) {
  if (typeof url !== 'string' || url === '') return null;
  if (url.startsWith('#')) return url;
  if (url.startsWith('/') && !url.startsWith('//') && !url.startsWith('/\\')) return url;
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}

// h('a', {href: '/x', class: 'y', onclick: f}, 'text', child, [more]):
// children are nodes or strings (as text); null/false are skipped.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = value;
      else if (key === 'href') {
        const href = safeUrl(value);
        if (href) el.setAttribute('href', href);
      } else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key === 'value' || key === 'checked' || key === 'disabled' || key === 'open') el[key] = value;
      else if (key === 'style') throw new Error('inline styles are refused by the page policy');
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

// A link to the forge (opens in this tab; rel guards the opener anyway),
// or plain text when the URL is not http(s).
export function external(url, ...children) {
  const href = safeUrl(url);
  if (!href || href.startsWith('/')) return h('span', null, ...children);
  return h('a', {href, rel: 'noopener noreferrer', class: 'external'}, ...children);
}

// A short note in place of a section whose data is not there.
export function note(text, kind = 'info') {
  return h('p', {class: `note note-${kind}`, role: kind === 'error' ? 'alert' : null}, text);
}

// Debounces fn by ms.
export function debounce(fn, ms) {
  let t = 0;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
