// ANSI escape sequences in build logs: SGR colours and bold become CSS
// classes, every other escape (cursor movement, titles, hyperlinks) and
// control character is dropped. The text that remains is the same for
// strip() and parse(), so search offsets found in one apply to the other.
//
// A style is null (the default) or {fg, bg, bold, dim, italic, underline}
// with fg/bg null or 0-15 (8-15: the bright colours). Styles carry from one
// line to the next as in a terminal; parse() takes the style a line starts
// with and answers the one it ends with.

// CSI ... final byte | OSC ... (BEL | ESC \ | end) | ESC + one byte | a lone
// ESC | other C0 controls except tab.
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -~]|\x1b|[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f]/g;

export function hasEscapes(line) {
  return line.includes('\x1b') || /[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f]/.test(line);
}

export function strip(line) {
  return line.replace(ESCAPES, '');
}

const DEFAULT = {fg: null, bg: null, bold: false, dim: false, italic: false, underline: false};

function isDefault(s) {
  return s.fg === null && s.bg === null && !s.bold && !s.dim && !s.italic && !s.underline;
}

// A 256-colour or RGB colour as the nearest of the 16 basic ones.
function from256(n) {
  if (n < 16) return n;
  if (n >= 232) return n < 244 ? 8 : 7;
  n -= 16;
  const r = Math.floor(n / 36), g = Math.floor(n / 6) % 6, b = n % 6;
  const base = (r > 2 ? 1 : 0) + (g > 2 ? 2 : 0) + (b > 2 ? 4 : 0);
  return Math.max(r, g, b) === 5 ? base + 8 : base;
}
function fromRgb(r, g, b) {
  const base = (r > 127 ? 1 : 0) + (g > 127 ? 2 : 0) + (b > 127 ? 4 : 0);
  return Math.max(r, g, b) > 200 ? base + 8 : base;
}

// Applies one SGR parameter string ("1;31", "38;5;208", "") to style s.
export function applySgr(s, params) {
  const st = {...(s || DEFAULT)};
  const groups = params === '' ? ['0'] : params.split(';');
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i];
    if (g.includes(':')) {
      // 38:5:n / 38:2::r:g:b (colon form): one extended colour
      const p = g.split(':').map((x) => Number(x || 0));
      const target = p[0] === 38 ? 'fg' : p[0] === 48 ? 'bg' : null;
      if (target && p[1] === 5) st[target] = from256(p[2] || 0);
      else if (target && p[1] === 2) {
        const rgb = p.length >= 6 ? p.slice(3, 6) : p.slice(2, 5);
        st[target] = fromRgb(rgb[0] || 0, rgb[1] || 0, rgb[2] || 0);
      }
      if (p[0] === 4) st.underline = p[1] !== 0;
      continue;
    }
    const n = g === '' ? 0 : Number(g);
    if (n === 0) Object.assign(st, DEFAULT);
    else if (n === 1) st.bold = true;
    else if (n === 2) st.dim = true;
    else if (n === 3) st.italic = true;
    else if (n === 4) st.underline = true;
    else if (n === 22) st.bold = st.dim = false;
    else if (n === 23) st.italic = false;
    else if (n === 24) st.underline = false;
    else if (n >= 30 && n <= 37) st.fg = n - 30;
    else if (n === 39) st.fg = null;
    else if (n >= 40 && n <= 47) st.bg = n - 40;
    else if (n === 49) st.bg = null;
    else if (n >= 90 && n <= 97) st.fg = n - 90 + 8;
    else if (n >= 100 && n <= 107) st.bg = n - 100 + 8;
    else if (n === 38 || n === 48) {
      const target = n === 38 ? 'fg' : 'bg';
      if (groups[i + 1] === '5') {
        st[target] = from256(Number(groups[i + 2] || 0));
        i += 2;
      } else if (groups[i + 1] === '2') {
        st[target] = fromRgb(Number(groups[i + 2] || 0), Number(groups[i + 3] || 0), Number(groups[i + 4] || 0));
        i += 4;
      }
    }
  }
  return isDefault(st) ? null : st;
}

export function styleClass(s) {
  if (!s) return '';
  const c = [];
  if (s.fg !== null) c.push(`a-f${s.fg}`);
  if (s.bg !== null) c.push(`a-b${s.bg}`);
  if (s.bold) c.push('a-bold');
  if (s.dim) c.push('a-dim');
  if (s.italic) c.push('a-it');
  if (s.underline) c.push('a-ul');
  return c.join(' ');
}

// Segments [{text, cls}] of one line and the style it ends with.
export function parse(line, start = null) {
  const segments = [];
  let style = start;
  let last = 0;
  const push = (text) => {
    if (!text) return;
    const cls = styleClass(style);
    const prev = segments[segments.length - 1];
    if (prev && prev.cls === cls) prev.text += text;
    else segments.push({text, cls});
  };
  ESCAPES.lastIndex = 0;
  for (let m; (m = ESCAPES.exec(line));) {
    push(line.slice(last, m.index));
    last = m.index + m[0].length;
    const seq = m[0];
    if (seq.length > 2 && seq[1] === '[' && seq.endsWith('m') && /^\x1b\[[0-9;:]*m$/.test(seq)) style = applySgr(style, seq.slice(2, -1));
  }
  push(line.slice(last));
  return {segments, end: style};
}

// Only the style a line ends with (cheaper than parse: no segments).
export function endStyle(line, start = null) {
  let style = start;
  const re = /\x1b\[([0-9;:]*)m/g;
  for (let m; (m = re.exec(line));) style = applySgr(style, m[1]);
  return style;
}
