// The job page's log: loaded in pieces (the first 256 KiB at once, the rest
// in the background), followed live while the job builds, drawn as a
// virtualised list with ANSI colours, line-number anchors (#L123), search
// and a jump to the first error. A 50 MB log stays responsive: lines live
// in an array and only the visible ones are in the DOM.
import {api, fetchLog} from './api.js';
import {parse, styleClass} from './ansi.js';
import {debounce, h, replace} from './dom.js';
import {bytes, count, TERMINAL_JOB} from './format.js';
import {follow} from './live.js';
import {LogModel, utf8Length} from './log_model.js';
import {VirtualList} from './vlist.js';

const FIRST_PIECE = 256 * 1024;
const PIECE = 2 * 1024 * 1024;
const MAX_SHOWN_CHARS = 5000; // of one line; search still sees all of it

function lineFromHash() {
  const m = /^#L(\d+)$/.exec(location.hash);
  return m ? Number(m[1]) - 1 : -1;
}

// Spans for a line's segments, with <mark> over the ranges found by search.
function renderText(segments, ranges) {
  const out = [];
  let pos = 0;
  let budget = MAX_SHOWN_CHARS;
  for (const seg of segments) {
    if (budget <= 0) break;
    const text = seg.text.length > budget ? seg.text.slice(0, budget) : seg.text;
    budget -= text.length;
    const start = pos;
    const end = pos + text.length;
    pos += seg.text.length;
    const pieces = [];
    let at = start;
    for (const [a, b] of ranges) {
      if (b <= at || a >= end) continue;
      if (a > at) pieces.push(text.slice(at - start, a - start));
      pieces.push(h('mark', null, text.slice(Math.max(a, at) - start, Math.min(b, end) - start)));
      at = Math.min(b, end);
    }
    if (at < end) pieces.push(text.slice(at - start));
    out.push(seg.cls ? h('span', {class: seg.cls}, ...pieces) : pieces);
  }
  if (budget <= 0) out.push(h('span', {class: 'log-cut'}, ' … (line cut here; the raw log has all of it)'));
  return out;
}

// Options: jobId, state (the job's state when the page loaded), signal,
// onState(state) when the log stream reports a new state.
export function logView({jobId, state, signal, onState = () => {}}) {
  const model = new LogModel();
  let jobState = state;
  let offset = 0;
  let size = null;
  let loading = true;
  let stick = !TERMINAL_JOB.has(state) || (state !== 'succeeded' && state !== 'skipped');
  let highlighted = lineFromHash();
  let pendingTarget = highlighted;
  if (pendingTarget >= 0) stick = false;
  let needle = '';
  let matches = [];
  let current = -1;
  let scanned = 0;

  // Toolbar.
  const searchInput = h('input', {type: 'search', class: 'input', placeholder: 'Search the log', 'aria-label': 'Search the log',
    autocomplete: 'off', spellcheck: 'false'});
  const prevBtn = h('button', {type: 'button', class: 'btn btn-small', 'aria-label': 'Previous match (Shift+Enter)', title: 'Previous match (Shift+Enter)'}, '↑');
  const nextBtn = h('button', {type: 'button', class: 'btn btn-small', 'aria-label': 'Next match (Enter)', title: 'Next match (Enter)'}, '↓');
  const matchInfo = h('span', {class: 'match-info muted small', 'aria-live': 'polite'});
  const errorBtn = h('button', {type: 'button', class: 'btn btn-small'}, 'Jump to first error');
  const lineInput = h('input', {type: 'number', min: '1', class: 'input input-line', placeholder: 'Line', 'aria-label': 'Go to line'});
  const lineForm = h('form', {class: 'goto-line'}, lineInput, h('button', {type: 'submit', class: 'btn btn-small'}, 'Go'));
  const followBtn = h('button', {type: 'button', class: 'btn btn-small follow', hidden: true}, '↓ Follow');
  const raw = h('a', {class: 'btn btn-small', href: api.rawLog(jobId), download: ''}, 'Download raw log');
  const status = h('p', {class: 'log-status muted small', 'aria-live': 'polite'}, 'Loading the log…');

  const viewport = h('div', {class: 'log-viewport', tabindex: '0', role: 'region', 'aria-label': 'Build log (use the arrow keys to scroll)'});
  const empty = h('p', {class: 'log-empty muted', hidden: true});
  const box = h('section', {class: 'log', 'aria-labelledby': 'log-heading'},
    h('div', {class: 'log-head'}, h('h2', {id: 'log-heading'}, 'Log'), h('div', {class: 'log-actions'}, errorBtn, lineForm, raw)),
    h('div', {class: 'log-search', role: 'search'}, searchInput, prevBtn, nextBtn, matchInfo),
    status, empty, h('div', {class: 'log-frame'}, viewport, followBtn));

  const rowHeight = 20; // app.css: .log-line height
  const list = new VirtualList(viewport, {
    rowHeight,
    renderRow: (i) => renderRow(i),
    onScroll: () => {
      stick = list.atBottom();
      followBtn.hidden = stick || TERMINAL_JOB.has(jobState);
    },
  });
  signal.addEventListener('abort', () => list.destroy());

  function renderRow(i) {
    const start = model.starts.get(i) || null;
    const segments = model.raw.has(i) ? parse(model.raw.get(i), start).segments : [{text: model.lines[i], cls: styleClass(start)}];
    let ranges = [];
    if (needle) {
      const lower = model.lines[i].toLowerCase();
      for (let at = lower.indexOf(needle); at >= 0; at = lower.indexOf(needle, at + needle.length)) ranges.push([at, at + needle.length]);
    }
    let cls = 'log-line';
    if (i === highlighted) cls += ' is-target';
    if (ranges.length) cls += matches[current] === i ? ' is-current' : ' is-match';
    return h('div', {class: cls},
      h('a', {class: 'ln', href: `#L${i + 1}`, tabindex: '-1', 'aria-hidden': 'true'}, String(i + 1)),
      h('span', {class: 'lt'}, renderText(segments, ranges)));
  }

  function updateStatus() {
    const lines = count(model.length, 'line');
    if (loading && size) status.textContent = `Loading the log… ${bytes(offset)} of ${bytes(size)} (${lines} so far)`;
    else if (loading) status.textContent = 'Loading the log…';
    else if (!TERMINAL_JOB.has(jobState)) status.textContent = `${lines}; following the build live`;
    else status.textContent = `${lines} (${bytes(offset)})`;
    const nothing = !loading && model.length === 0;
    empty.hidden = !nothing;
    status.hidden = nothing;
    viewport.parentElement.hidden = nothing;
    if (nothing) {
      empty.textContent = jobState === 'queued' ? 'The build has not started yet: its log appears here as it runs.'
        : jobState === 'skipped' ? 'Nothing was built (its outputs were already there), so there is no log.'
          : jobState === 'eval_failed' ? 'The attribute did not evaluate, so nothing was built and there is no log.'
            : TERMINAL_JOB.has(jobState) ? 'This job wrote no log.' : 'No output yet.';
    }
    followBtn.hidden = stick || TERMINAL_JOB.has(jobState);
  }

  function grew(previousLength) {
    if (needle) {
      // The last line may have been open (and so changed): scan it again.
      const from = Math.max(0, Math.min(scanned, previousLength - 1));
      while (matches.length && matches[matches.length - 1] >= from) matches.pop();
      model.search(needle, from, matches);
      scanned = model.length;
      showMatchInfo();
    }
    list.setCount(model.length);
    if (pendingTarget >= 0 && pendingTarget < model.length) {
      goToLine(pendingTarget);
      pendingTarget = -1;
    } else if (stick) {
      list.scrollToBottom();
    }
    updateStatus();
  }

  function goToLine(i, onlyIfHidden = false) {
    highlighted = i;
    list.scrollToRow(i, {onlyIfHidden});
    list.refresh();
  }

  // Hash anchors: a click on a line number sets #L<n>; so may the user.
  const onHash = () => {
    const i = lineFromHash();
    if (i < 0) return;
    stick = false;
    if (i < model.length) goToLine(i, true);
    else pendingTarget = i;
  };
  window.addEventListener('hashchange', onHash);
  signal.addEventListener('abort', () => window.removeEventListener('hashchange', onHash));

  lineForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const n = Math.floor(Number(lineInput.value));
    if (n >= 1) location.hash = `#L${Math.min(n, Math.max(1, model.length))}`;
  });

  errorBtn.addEventListener('click', () => {
    const i = model.firstError();
    if (i < 0) {
      status.textContent = loading ? 'No error in what is loaded so far.' : 'No line says "error" or "failed".';
      return;
    }
    stick = false;
    history.replaceState(history.state, '', `#L${i + 1}`);
    goToLine(i);
  });

  followBtn.addEventListener('click', () => {
    stick = true;
    list.scrollToBottom();
    followBtn.hidden = true;
  });

  // Search.
  function showMatchInfo() {
    if (!needle) matchInfo.textContent = '';
    else if (!matches.length) matchInfo.textContent = loading ? 'No matches yet' : 'No matches';
    else matchInfo.textContent = `${current >= 0 ? current + 1 : 0} of ${count(matches.length, 'matching line')}`;
    prevBtn.disabled = nextBtn.disabled = matches.length === 0;
  }
  const runSearch = () => {
    needle = searchInput.value.toLowerCase();
    matches = needle ? model.search(needle) : [];
    scanned = model.length;
    current = -1;
    if (matches.length) step(1);
    else {
      showMatchInfo();
      list.refresh();
    }
  };
  function step(dir) {
    if (!matches.length) return;
    if (current < 0) {
      // Start from what is on screen.
      const [top] = list.visibleRange();
      current = dir > 0 ? matches.findIndex((m) => m >= top) : matches.findLastIndex((m) => m < top);
      if (current < 0) current = dir > 0 ? 0 : matches.length - 1;
    } else {
      current = (current + dir + matches.length) % matches.length;
    }
    stick = false;
    list.scrollToRow(matches[current], {onlyIfHidden: true});
    list.refresh();
    showMatchInfo();
  }
  searchInput.addEventListener('input', debounce(runSearch, 150));
  searchInput.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    if (needle !== searchInput.value.toLowerCase()) runSearch();
    else step(e.shiftKey ? -1 : 1);
  });
  prevBtn.addEventListener('click', () => step(-1));
  nextBtn.addEventListener('click', () => step(1));
  showMatchInfo();

  function takePiece(piece) {
    if (piece.next < offset) {
      // The store keeps a log's tail: it was cut since, start over.
      model.reset();
    }
    const before = model.length;
    model.appendBytes(piece.data);
    offset = piece.next;
    if (piece.size !== null) size = piece.size;
    if (piece.state && piece.state !== jobState) {
      jobState = piece.state;
      onState(jobState);
    }
    grew(before);
  }

  // Live: log events append, state events tell the page.
  let queue = Promise.resolve();
  function onLogEvent(d) {
    queue = queue.then(async () => {
      if (!d || typeof d.text !== 'string' || typeof d.offset !== 'number') return;
      if (d.offset > offset) {
        // Missed a piece (the stream began later than asked): fetch it.
        takePiece(await fetchLog(jobId, offset, d.offset - offset, {signal}));
        model.flush();
      }
      const before = model.length;
      if (d.offset === offset) {
        model.appendText(d.text);
        offset += utf8Length(d.text);
      } else if (d.offset < offset) {
        const all = new TextEncoder().encode(d.text);
        const skip = offset - d.offset;
        if (skip < all.length) {
          model.appendBytes(all.subarray(skip), {final: true});
          offset = d.offset + all.length;
        }
      }
      grew(before);
    }).catch(() => {});
  }

  function goLive() {
    if (TERMINAL_JOB.has(jobState)) return;
    follow({
      url: () => api.logEvents(jobId, offset),
      signal,
      events: {
        log: onLogEvent,
        state: (d) => {
          if (!d || typeof d.state !== 'string') return;
          jobState = d.state;
          onState(jobState);
          updateStatus();
        },
        end: () => {
          queue.then(() => {
            if (!TERMINAL_JOB.has(jobState)) onState(jobState, {refetch: true});
            updateStatus();
          });
        },
      },
      poll: async () => {
        const piece = await fetchLog(jobId, offset, PIECE, {signal});
        takePiece(piece);
        updateStatus();
        return TERMINAL_JOB.has(piece.state) && piece.next >= (piece.size ?? piece.next);
      },
    });
  }

  async function load() {
    try {
      takePiece(await fetchLog(jobId, 0, FIRST_PIECE, {signal}));
      while (size !== null && offset < size && !signal.aborted) {
        const piece = await fetchLog(jobId, offset, PIECE, {signal});
        if (piece.data.length === 0) break;
        takePiece(piece);
        // Let the page breathe between pieces.
        await new Promise((r) => setTimeout(r, 0));
      }
      model.flush();
      loading = false;
      grew(model.length);
      goLive();
    } catch (e) {
      if (e.name === 'AbortError') return;
      loading = false;
      updateStatus();
      empty.hidden = true;
      status.hidden = false;
      replace(status, e.status === 404 ? 'The log is not available.' : `The log could not be loaded: ${e.message}`);
      status.classList.add('error');
    }
  }
  load();
  return box;
}
