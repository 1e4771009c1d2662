// What every browser script shares: Debian's chromium launched headless
// through playwright-core with a fresh profile (so each script starts signed
// out), arguments as key=value, screenshots, waits on conditions, and a
// failure that says which step failed and what the page showed.
//
// A script is `run(async (t) => { ... })`; t carries the page, the
// arguments and the helpers below. It exits 0 when every step held, 1 with
// the failing step's message on stderr otherwise (tests/e2e/ui_test.cpp
// shows that message).
import {chromium} from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Generous: the machine may be building or running other tests beside us.
export const TIMEOUT = 30_000;
const DESKTOP = {width: 1280, height: 900};
const PHONE = {width: 390, height: 844};

export function parseArgs(argv) {
  const args = {};
  for (const a of argv) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new Error(`arguments are key=value, not ${JSON.stringify(a)}`);
    args[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return args;
}

export class Failure extends Error {}

// Throws a Failure with `message` unless `condition` holds.
export function check(condition, message) {
  if (!condition) throw new Failure(message);
}

// Polls `probe` (sync or async) until it answers something truthy, and
// answers that; a Failure saying `what` (and what the probe last saw, from
// `describe`) once `timeout` has passed.
export async function eventually(what, probe, {timeout = TIMEOUT, interval = 200, describe = null} = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (e) {
      if (e instanceof Failure) throw e;
      last = e;
    }
    if (Date.now() > deadline) {
      const seen = describe ? await describe().catch((e) => `(${e.message})`) : last instanceof Error ? last.message : JSON.stringify(last);
      throw new Failure(`${what}: not within ${timeout / 1000} s (last seen: ${seen})`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

export function run(body) {
  const script = path.basename(process.argv[1], '.mjs');
  const args = parseArgs(process.argv.slice(2));
  const out = args.out || path.resolve('test-artifacts/ui');
  fs.mkdirSync(out, {recursive: true});
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'flurry-chromium-'));
  let context = null;
  let page = null;
  const pageErrors = [];
  let current = '(starting chromium)';

  const t = {
    args,
    base: args.base ? args.base.replace(/\/$/, '') : '',
    // Names what the script does next; a failure names the last step.
    step(name) {
      current = name;
      console.log(`${script}: ${name}`);
    },
    get page() {
      return page;
    },
    get context() {
      return context;
    },
    // A full-page screenshot at desktop width: <out>/<name>.png.
    async shot(name) {
      await settle(page);
      await page.screenshot({path: path.join(out, `${name}.png`), fullPage: true});
      console.log(`${script}: screenshot ${path.join(out, `${name}.png`)}`);
    },
    // The same page 390 px wide (a phone), then back to desktop width.
    async phoneShot(name) {
      await page.setViewportSize(PHONE);
      await settle(page);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      await page.screenshot({path: path.join(out, `${name}.png`), fullPage: true});
      console.log(`${script}: screenshot ${path.join(out, `${name}.png`)}`);
      await page.setViewportSize(DESKTOP);
      await settle(page);
      check(overflow <= 1, `at 390 px wide the page is ${overflow} px wider than the screen (it scrolls sideways)`);
    },
    // Text of the first element matching `selector` (trimmed), '' if none.
    async text(selector) {
      const l = page.locator(selector).first();
      return (await l.count()) ? (await l.innerText()).trim() : '';
    },
    // Waits until the page module finished drawing: <main> is no longer
    // aria-busy and has a heading. (Not "network idle": live pages keep
    // an event stream open.)
    async drawn() {
      await page.locator('#main[aria-busy="false"] h1').first().waitFor({state: 'visible', timeout: TIMEOUT});
    },
    // Marks the document, so that a later `sameDocument()` tells whether
    // the page was reloaded (or navigated by the browser) since.
    async mark() {
      await page.evaluate(() => {
        window.__flurryTestMark = true;
      });
    },
    async sameDocument() {
      return page.evaluate(() => window.__flurryTestMark === true);
    },
    // Signs in through the header's "Sign in with GitHub": the fake forge
    // signs in whoever the C++ side chose and sends the browser back here.
    async signIn(login) {
      const back = page.url();
      const link = page.locator('.auth a', {hasText: 'Sign in with GitHub'});
      await link.waitFor({timeout: TIMEOUT});
      await link.click();
      // Through /auth/github/login, the forge's authorize page and the
      // callback, back to a page whose header names the user.
      await page.locator('.auth .user').waitFor({timeout: TIMEOUT});
      const who = await t.text('.auth .user');
      check(who.includes(login), `after signing in the header names ${JSON.stringify(who)}, not ${login}`);
      check(page.url() === back, `signing in from ${back} came back to ${page.url()}, not to the page it started on`);
    },
  };

  const main = async () => {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.FLURRY_CHROMIUM || '/usr/bin/chromium',
      headless: true,
      viewport: DESKTOP,
      // Chromium as root needs --no-sandbox; the rest keeps it from
      // calling home (this machine's network refuses it) and from doing
      // first-run work.
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--no-first-run', '--disable-dev-shm-usage'],
      timeout: 60_000,
    });
    context.setDefaultTimeout(TIMEOUT);
    context.setDefaultNavigationTimeout(TIMEOUT);
    page = context.pages()[0] || (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) console.log(`${script}: console error on ${page.url()}: ${m.text()}`);
    });
    await body(t);
    check(pageErrors.length === 0, `the UI threw: ${pageErrors.join('; ')}`);
  };

  main().then(
    async () => {
      await context?.close();
      fs.rmSync(profile, {recursive: true, force: true});
      console.log(`${script}: ok`);
    },
    async (e) => {
      let where = '';
      try {
        if (page) {
          where = ` (page ${page.url()}; screenshot ${path.join(out, `FAILED-${script}.png`)})`;
          await page.screenshot({path: path.join(out, `FAILED-${script}.png`), fullPage: true});
          const mainText = (await page.locator('#main').innerText({timeout: 2000})).slice(0, 1500);
          where += `\nthe page said:\n${mainText}`;
        }
      } catch {
        // the failure itself is what matters
      }
      console.error(`${script}: FAILED at "${current}": ${e instanceof Failure ? e.message : e.stack || e}${where}`);
      if (pageErrors.length) console.error(`${script}: the UI threw: ${pageErrors.join('; ')}`);
      await context?.close().catch(() => {});
      fs.rmSync(profile, {recursive: true, force: true});
      process.exitCode = 1;
    },
  );
}

// Lets layout, fonts and the virtual list's resize observer catch up
// before a screenshot: two animation frames and the fonts.
async function settle(page) {
  await page.evaluate(() => document.fonts.ready.then(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))));
}

// The rows of the eval page's jobs table: [{attr, state, details, href}].
export async function jobRows(page) {
  return page.locator('.jobs-table tbody tr').evaluateAll((rows) => rows.map((r) => ({
    attr: r.querySelector('td.attr a')?.textContent.trim() || '',
    href: r.querySelector('td.attr a')?.getAttribute('href') || '',
    state: r.querySelector('td .badge')?.textContent.replace(/^\S+\s+/, '').trim() || '',
    details: r.querySelector('td.details')?.innerText.trim() || '',
  })));
}

// The state label in the page's heading badge ("failed", "succeeded", ...).
export async function headingState(page) {
  const b = page.locator('#main h1 .badge').first();
  if (!(await b.count())) return '';
  return (await b.innerText()).replace(/^\S+\s+/, '').trim();
}

// The job page's log: how many lines its status line says it holds (null
// while it says something else), and whether it still follows the build.
export async function logStatus(page) {
  const l = page.locator('.log-status').first();
  const text = (await l.count()) ? (await l.innerText()).trim() : '';
  const m = /^([\d,]+) lines?/.exec(text);
  return {text, lines: m ? Number(m[1].replace(/,/g, '')) : null, following: text.includes('following the build live')};
}

// The log line (1-based number, as its anchor shows) whose text holds
// `text`, or with number `n`; null when it is not drawn (the log is
// virtualised: only rows near the visible ones exist). `inView`: its whole
// row lies inside the log's scroll box and inside the window.
export async function logLine(page, {text = null, n = null} = {}) {
  return page.evaluate(({text, n}) => {
    const box = document.querySelector('.log-viewport');
    if (!box) return null;
    const row = [...box.querySelectorAll('.log-line')].find((r) =>
      (text === null || r.querySelector('.lt').textContent.includes(text)) && (n === null || r.querySelector('.ln').textContent === String(n)));
    if (!row) return null;
    const a = box.getBoundingClientRect();
    const b = row.getBoundingClientRect();
    return {
      n: Number(row.querySelector('.ln').textContent),
      text: row.querySelector('.lt').textContent,
      classes: row.className,
      inView: b.top >= a.top - 1 && b.bottom <= a.bottom + 1 && b.top >= 0 && b.bottom <= window.innerHeight,
    };
  }, {text, n});
}
