// A virtualised list of fixed-height rows: however many rows there are,
// only the visible ones (plus a margin) exist in the DOM. Rows do not wrap;
// long ones scroll sideways inside the box.
//
// const list = new VirtualList(viewport, {rowHeight, count, renderRow})
//   renderRow(i) answers the element of row i (called again whenever the
//   row comes into view or refresh() is called).
// Browsers cap an element's height (Firefox near 17.9 million px), so past
// kMaxHeight the scroll position maps onto rows by proportion.

const kMaxHeight = 8_000_000;
const kOverscan = 20;

export class VirtualList {
  constructor(viewport, {rowHeight, count = 0, renderRow, onScroll = () => {}}) {
    this.viewport = viewport;
    this.rowHeight = rowHeight;
    this.count = count;
    this.renderRow = renderRow;
    this.onScroll = onScroll;
    this.spacer = document.createElement('div');
    this.spacer.className = 'vlist-spacer';
    this.window = document.createElement('div');
    this.window.className = 'vlist-window';
    this.spacer.append(this.window);
    viewport.append(this.spacer);
    this.first = -1;
    this.last = -1;
    this.frame = 0;
    this.handler = () => this.schedule(true);
    viewport.addEventListener('scroll', this.handler, {passive: true});
    this.resizer = typeof ResizeObserver === 'undefined' ? null : new ResizeObserver(() => this.schedule(false));
    this.resizer?.observe(viewport);
    this.setCount(count);
  }

  destroy() {
    this.viewport.removeEventListener('scroll', this.handler);
    this.resizer?.disconnect();
    cancelAnimationFrame(this.frame);
  }

  get virtualHeight() {
    return this.count * this.rowHeight;
  }
  get realHeight() {
    return Math.min(this.virtualHeight, kMaxHeight);
  }
  // Virtual pixels per real pixel of scrolling (1 unless the list is huge).
  get ratio() {
    const view = this.viewport.clientHeight;
    const real = this.realHeight - view;
    return real > 0 && this.realHeight < this.virtualHeight ? (this.virtualHeight - view) / real : 1;
  }

  setCount(count) {
    this.count = count;
    this.spacer.style.height = `${this.realHeight}px`;
    this.render(true);
  }

  schedule(scrolled) {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render(false);
      if (scrolled) this.onScroll();
    });
  }

  // Redraws the visible rows (after their contents changed).
  refresh() {
    this.render(true);
  }

  atBottom() {
    const v = this.viewport;
    return v.scrollTop + v.clientHeight >= v.scrollHeight - this.rowHeight * 2;
  }

  scrollToBottom() {
    this.viewport.scrollTop = this.viewport.scrollHeight;
    this.render(false);
  }

  // Centres row i in the view; with onlyIfHidden, leaves a visible row
  // where it is.
  scrollToRow(i, {onlyIfHidden = false} = {}) {
    const v = this.viewport;
    const top = i * this.rowHeight;
    const viewTop = v.scrollTop * this.ratio;
    if (onlyIfHidden && top >= viewTop && top + this.rowHeight <= viewTop + v.clientHeight) return;
    const target = top - (v.clientHeight - this.rowHeight) / 2;
    v.scrollTop = Math.max(0, target / this.ratio);
    this.render(false);
  }

  visibleRange() {
    const v = this.viewport;
    const virtualTop = v.scrollTop * this.ratio;
    const first = Math.floor(virtualTop / this.rowHeight);
    return [first, Math.min(this.count, first + Math.ceil(v.clientHeight / this.rowHeight))];
  }

  render(force) {
    const v = this.viewport;
    const virtualTop = v.scrollTop * this.ratio;
    const top = Math.floor(virtualTop / this.rowHeight);
    const first = Math.max(0, top - kOverscan);
    const last = Math.min(this.count, top + Math.ceil((v.clientHeight || 600) / this.rowHeight) + kOverscan);
    // Where row `first` sits in real pixels.
    const offset = v.scrollTop - (virtualTop - first * this.rowHeight);
    this.window.style.transform = `translateY(${Math.max(0, offset)}px)`;
    if (!force && first === this.first && last === this.last) return;
    this.first = first;
    this.last = last;
    const rows = [];
    for (let i = first; i < last; i++) rows.push(this.renderRow(i));
    this.window.replaceChildren(...rows);
  }
}
