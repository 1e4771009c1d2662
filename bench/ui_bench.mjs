// The pages' half of bench/ui_bench.py: Debian's chromium, headless, through
// playwright-core (installed in tests/browser by ./flurry test). Each
// figure is measured in the page: milliseconds from the navigation's start
// (performance.now()) to the first animation frame in which the condition
// held, then to the first idle moment after it (a task run after the next
// frame: nothing was left blocking input). A fresh page per run; the
// first run of each is cold (nothing cached).
//
//   node bench/ui_bench.mjs base=URL big_eval=<eval id> big_jobs=<its jobs> log_job=<job id> log_mb=<its log's MiB> [runs=5]
import {chromium} from '../tests/browser/node_modules/playwright-core/index.mjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
const runs = Number(args.runs || 5);

// In the page: when `cond` first holds (checked every frame), and when the
// main thread is next free after that.
// (Functions, not strings: the UI's Content-Security-Policy forbids eval.)
async function drawnAndIdle(page, kind) {
  const drawn = await (await page.waitForFunction((kind) => {
    const main = document.querySelector('#main[aria-busy="false"]');
    const held = kind === 'heading' ? main && main.querySelector('h1')
      : kind === 'rows' ? main && document.querySelectorAll('.jobs-table tbody tr').length > 0
        : document.querySelectorAll('.log-viewport .log-line').length > 0;
    return held ? performance.now() : 0;
  }, kind, {polling: 'raf', timeout: 60_000})).jsonValue();
  const idle = await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(() => r(performance.now()), 0))));
  return {drawn, idle};
}

const scenarios = [
  {
    name: 'baseline: projects page (20 rows)',
    url: () => `${args.base}/`,
    until: 'heading',
  },
  {
    name: `eval page, ${Number(args.big_jobs || 10000).toLocaleString('en')} jobs`,
    url: () => `${args.base}/evals/${args.big_eval}`,
    until: 'rows',
    // Interactive: typing a filter narrows the 10,000 rows to one.
    after: async (page) => {
      const t0 = await page.evaluate(() => performance.now());
      const last = `pkg-${Number(args.big_jobs || 10000) - 1}`;  // the one attribute holding it
      await page.getByRole('searchbox', {name: 'Filter jobs by attribute'}).fill(last);
      const t1 = await (await page.waitForFunction((last) => {
        const rows = document.querySelectorAll('.jobs-table tbody tr');
        return rows.length === 1 && rows[0].textContent.includes(last) ? performance.now() : 0;
      }, last, {polling: 'raf', timeout: 60_000})).jsonValue();
      return {'filter typed → 1 row ms': t1 - t0};
    },
  },
  {
    name: `job page, ${args.log_mb || 50} MiB log`,
    url: () => `${args.base}/evals/${args.big_eval}/jobs/${args.log_job}`,
    until: 'log lines',
    after: async (page) => {
      const t0 = await page.evaluate(() => performance.now());
      const status = await (await page.waitForFunction(() => {
        const s = document.querySelector('.log-status')?.textContent || '';
        return /^[\d,]+ lines?/.test(s) ? s : '';
      }, null, {polling: 'raf', timeout: 120_000})).jsonValue();
      const t1 = await page.evaluate(() => performance.now());
      return {'then whole log counted ms': t1 - t0, status};
    },
  },
];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x) => (typeof x === 'number' ? x.toFixed(0).padStart(8) : String(x));

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'flurry-ui-bench-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.FLURRY_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: {width: 1280, height: 900},
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run', '--disable-dev-shm-usage'],
});
try {
  console.log(`${'page'.padEnd(38)} ${'cold drawn'.padStart(10)} ${'drawn p50'.padStart(10)} ${'idle p50'.padStart(9)} ` +
    `${'idle max'.padStart(9)} ${'vs baseline'.padStart(11)}  then`);
  let baseline = null;
  for (const s of scenarios) {
    const drawn = [], idle = [], extra = [];
    for (let i = 0; i < runs; i++) {
      const page = await context.newPage();
      await page.goto(s.url(), {waitUntil: 'commit'});
      const t = await drawnAndIdle(page, s.until);
      drawn.push(t.drawn);
      idle.push(t.idle);
      if (s.after) extra.push(await s.after(page));
      await page.close();
    }
    const p50 = median(idle);
    baseline = baseline || p50;
    const then = extra.length ? Object.keys(extra[0]).map((k) => {
      const v = extra.map((e) => e[k]);
      return `${k}: ${typeof v[0] === 'number' ? `p50 ${median(v).toFixed(0)}, max ${Math.max(...v).toFixed(0)}` : v[0]}`;
    }).join('; ') : '';
    console.log(`${s.name.padEnd(38)} ${fmt(drawn[0]).padStart(10)} ${fmt(median(drawn)).padStart(10)} ${fmt(p50).padStart(9)} ` +
      `${fmt(Math.max(...idle)).padStart(9)} ${(p50 / baseline).toFixed(1).padStart(10)}x  ${then}`);
  }
} finally {
  await context.close();
  fs.rmSync(profile, {recursive: true, force: true});
}
