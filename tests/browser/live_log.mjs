// A job's log while it builds: lines arrive without a reload, ANSI colours
// are drawn as colours (no escape bytes on screen), search finds lines and
// steps between them; then the build is let go (it prints until the file
// `release` exists) and the page ends showing the job succeeded, still
// without a reload.
//
//   node live_log.mjs base=URL out=DIR job=<job page URL> needle=<text of several lines>
//                     release=<file the build waits for> last=<text of the last line>
import fs from 'node:fs';
import {check, eventually, headingState, logLine, logStatus, run} from './lib.mjs';

const BUILD_TIMEOUT = 120_000;

run(async (t) => {
  const {page, args} = t;
  check(args.job && args.needle && args.release && args.last, 'needs job=, needle=, release= and last=');

  t.step(`open the building job ${args.job}`);
  await page.goto(args.job);
  await t.drawn();
  await t.mark();
  const state = await headingState(page);
  check(state === 'building', `the job is ${JSON.stringify(state)} when opened; the test opens it while it builds`);

  t.step('lines arrive without a reload');
  const first = await eventually('the live log shows lines', async () => {
    const s = await logStatus(page);
    return s.following && s.lines >= 2 ? s.lines : 0;
  }, {describe: async () => (await logStatus(page)).text});
  const second = await eventually(`the line count grows past ${first}`, async () => {
    const s = await logStatus(page);
    return s.lines > first ? s.lines : 0;
  }, {timeout: 60_000, describe: async () => (await logStatus(page)).text});
  console.log(`live_log: ${first} lines, then ${second}`);
  check(await t.sameDocument(), 'the page was reloaded while the log grew');
  // Following: the newest line is on screen.
  await eventually(`line ${second} is drawn in view`, async () => (await logLine(page, {n: second}))?.inView,
    {describe: async () => JSON.stringify(await logLine(page, {n: second}))});

  t.step('ANSI colours are drawn, escapes are not shown');
  const coloured = page.locator('.log-viewport .log-line .lt span.a-f2').first();
  await coloured.waitFor();
  check((await coloured.innerText()).includes(args.needle.split(' ')[0]), `the green span says ${JSON.stringify(await coloured.innerText())}`);
  const color = await coloured.evaluate((e) => getComputedStyle(e).color);
  const plain = await page.locator('.log-viewport .log-line .ln').first().evaluate((e) => getComputedStyle(e.parentElement).color);
  check(color !== plain, `the green span has the log's plain colour ${color}`);
  const shown = await page.locator('.log-viewport').innerText();
  check(!shown.includes('\x1b') && !/\[\d+(;\d+)*m/.test(shown), `escape sequences are shown as text: ${JSON.stringify(shown.slice(0, 200))}`);
  await t.shot('02-live-log-building');

  t.step(`search for "${args.needle}" and step between matches`);
  const search = page.getByRole('searchbox', {name: 'Search the log'});
  await search.fill(args.needle);
  const info = async () => {
    const m = /^(\d+) of ([\d,]+) matching lines?$/.exec((await t.text('.log-search .match-info')));
    return m ? {at: Number(m[1]), of: Number(m[2].replace(/,/g, ''))} : null;
  };
  const current = async () => page.locator('.log-line.is-current').evaluateAll((rows) => rows.map((r) => ({
    n: Number(r.querySelector('.ln').textContent), text: r.querySelector('.lt').textContent, mark: r.querySelector('mark')?.textContent || '',
  })));
  const found = await eventually('the search finds matches', async () => {
    const i = await info();
    return i && i.at >= 1 && i.of >= 2 ? i : null;
  }, {describe: () => t.text('.log-search .match-info')});
  const at1 = await eventually('the current match is drawn', async () => ((await current()).length === 1 ? (await current())[0] : null));
  check(at1.text.toLowerCase().includes(args.needle.toLowerCase()) && at1.mark.toLowerCase() === args.needle.toLowerCase(),
    `the current match, line ${at1.n}, reads ${JSON.stringify(at1.text)} with ${JSON.stringify(at1.mark)} marked`);
  await page.getByRole('button', {name: /^Next match/}).click();
  const next = await eventually('"next" moves to another match', async () => {
    const i = await info();
    const c = await current();
    return i && i.at !== found.at && c.length === 1 && c[0].n !== at1.n ? {i, c: c[0]} : null;
  }, {describe: async () => `${await t.text('.log-search .match-info')} ${JSON.stringify(await current())}`});
  check(next.c.text.toLowerCase().includes(args.needle.toLowerCase()), `"next" went to line ${next.c.n}: ${JSON.stringify(next.c.text)}`);
  await page.getByRole('button', {name: /^Previous match/}).click();
  await eventually('"previous" moves back', async () => {
    const i = await info();
    const c = await current();
    return i && i.at === found.at && c.length === 1 && c[0].n === at1.n;
  }, {describe: async () => `${await t.text('.log-search .match-info')} ${JSON.stringify(await current())}`});
  console.log(`live_log: "${args.needle}": match ${found.at} of ${found.of} is line ${at1.n}, the next line ${next.c.n}`);

  t.step('the build is let go; the job ends and the page says so without a reload');
  fs.writeFileSync(args.release, 'go\n');
  await eventually('the heading says succeeded', async () => (await headingState(page)) === 'succeeded',
    {timeout: BUILD_TIMEOUT, describe: () => headingState(page)});
  const done = await eventually('the log stops following', async () => {
    const s = await logStatus(page);
    return s.lines !== null && !s.following ? s : null;
  }, {describe: async () => (await logStatus(page)).text});
  check(await t.sameDocument(), 'the page was reloaded before the job ended');
  // Every line arrived: the last one is found.
  await search.fill(args.last);
  await eventually(`the last line "${args.last}" is found`, async () => /^1 of 1 matching line$/.test(await t.text('.log-search .match-info')),
    {describe: () => t.text('.log-search .match-info')});
  check(await page.getByRole('button', {name: 'Rebuild'}).count() === 0, 'a succeeded job offers a rebuild');
  console.log(`live_log: ended with ${done.text}`);
  await search.fill('');
  await t.shot('02-live-log-succeeded');
  await t.phoneShot('02-live-log-succeeded-phone');
});
