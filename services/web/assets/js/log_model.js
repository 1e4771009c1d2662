// A build log held as lines: the plain text of each (escapes removed, for
// search and display), the raw text of the lines that carry escapes, and
// the ANSI style each line starts with where it is not the default. Fed
// with bytes (pieces of the stored log, which may cut a UTF-8 character)
// or text (live events); the last line stays open until its newline comes.
import {endStyle, hasEscapes, strip} from './ansi.js';

export class LogModel {
  constructor() {
    this.reset();
  }

  reset() {
    this.lines = [];
    this.raw = new Map();
    this.starts = new Map();
    this.carry = null; // style after the last complete line
    this.open = ''; // the unfinished last line's raw text
    this.decoder = new TextDecoder('utf-8');
  }

  get length() {
    return this.lines.length;
  }

  appendBytes(bytes, {final = false} = {}) {
    this.appendText(this.decoder.decode(bytes, {stream: !final}));
  }

  // Ends a piece of bytes: a character cut at its end is given up.
  flush() {
    const rest = this.decoder.decode();
    if (rest) this.appendText(rest);
  }

  appendText(text) {
    if (!text) return;
    if (this.open) this.dropLast();
    const parts = (this.open + text).split('\n');
    this.open = parts.pop();
    for (const p of parts) this.push(p, true);
    if (this.open) this.push(this.open, false);
  }

  dropLast() {
    const i = this.lines.length - 1;
    this.lines.pop();
    this.raw.delete(i);
    this.starts.delete(i);
  }

  push(rawLine, complete) {
    let line = rawLine;
    // A carriage return redraws the line in a terminal: keep what was
    // drawn last.
    if (line.includes('\r')) {
      line = line.replace(/\r+$/, '');
      const cr = line.lastIndexOf('\r');
      if (cr >= 0) line = line.slice(cr + 1);
    }
    const i = this.lines.length;
    if (this.carry) this.starts.set(i, this.carry);
    if (hasEscapes(line)) {
      this.raw.set(i, line);
      this.lines.push(strip(line));
      if (complete) this.carry = endStyle(line, this.carry);
    } else {
      this.lines.push(line);
    }
  }

  // The first line that looks like the failure: "error:" first, else a
  // word "error" or "failed"; -1 if none.
  firstError() {
    const lines = this.lines;
    for (let i = 0; i < lines.length; i++) if (/\berror:/i.test(lines[i])) return i;
    for (let i = 0; i < lines.length; i++) if (/\berror\b|failed/i.test(lines[i])) return i;
    return -1;
  }

  // Indices of lines from `from` on whose text holds `needle`, ignoring
  // case.
  search(needle, from = 0, out = []) {
    const re = new RegExp(needle.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
    const lines = this.lines;
    for (let i = from; i < lines.length; i++) if (re.test(lines[i])) out.push(i);
    return out;
  }
}

export function utf8Length(text) {
  return new TextEncoder().encode(text).length;
}
