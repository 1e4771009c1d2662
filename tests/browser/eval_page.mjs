// An eval's page: every check with its state, the dependency_failed row
// naming and linking the failure that ended it, nix's message for the
// attribute that did not evaluate, filtering by state and text, sorting;
// then back and forward between the eval and a job page (History API, no
// reloads) and a deep link to a log line.
//
//   node eval_page.mjs base=URL out=DIR eval=<eval id> jobs=<JSON {attr: state label}>
//        dependent=<attr> dependency=<attr> broken=<attr> eval_error=<text> longest=<attr>
import {check, eventually, headingState, jobRows, logLine, logStatus, run} from './lib.mjs';

run(async (t) => {
  const {page, args} = t;
  const expected = JSON.parse(args.jobs || '{}');
  const attrs = Object.keys(expected);
  check(args.eval && attrs.length && args.dependent && args.dependency && args.broken && args.eval_error && args.longest, 'missing arguments');
  const evalPath = `/evals/${encodeURIComponent(args.eval)}`;
  const rowsNow = () => jobRows(page);
  const shownAttrs = async () => (await rowsNow()).map((r) => r.attr);
  const path = () => page.evaluate(() => location.pathname + location.search + location.hash);

  t.step(`open ${evalPath}`);
  await page.goto(t.base + evalPath);
  await t.drawn();
  await t.mark();

  t.step('every check is listed with its state');
  const rows = await eventually('the jobs table lists every check in its state', async () => {
    const r = await rowsNow();
    return r.length === attrs.length && attrs.every((a) => r.some((x) => x.attr === a && x.state === expected[a])) ? r : null;
  }, {describe: async () => JSON.stringify((await rowsNow()).map((r) => `${r.attr}: ${r.state}`))});
  check((await t.text('.jobs > p.muted')) === `${attrs.length} of ${attrs.length} jobs`, `the table says ${JSON.stringify(await t.text('.jobs > p.muted'))}`);
  const byAttr = Object.fromEntries(rows.map((r) => [r.attr, r]));
  console.log(`eval_page: eval is ${await headingState(page)}; ${rows.map((r) => `${r.attr} ${r.state}`).join(', ')}`);

  t.step('the dependency_failed row names and links the failed dependency');
  const dep = byAttr[args.dependent];
  check(dep.details === `Its dependency ${args.dependency} failed`, `the ${args.dependent} row says ${JSON.stringify(dep.details)}`);
  const depLink = page.locator('.jobs-table tbody tr', {has: page.locator('td.attr a', {hasText: args.dependent})}).locator('td.details a');
  check(await depLink.getAttribute('href') === byAttr[args.dependency].href,
    `its link goes to ${await depLink.getAttribute('href')}, not to ${args.dependency}'s job page ${byAttr[args.dependency].href}`);

  t.step('the attribute that did not evaluate shows nix\'s message');
  check(byAttr[args.broken].details.includes(args.eval_error), `the ${args.broken} row says ${JSON.stringify(byAttr[args.broken].details)}`);
  check(/error/.test(byAttr[args.broken].details), `the ${args.broken} row's message is not nix's: ${JSON.stringify(byAttr[args.broken].details)}`);

  t.step('sorting: failures first by default, then by attribute, then longest first');
  const rank = ['failed', 'evaluation failed', 'dependency failed', 'succeeded'];
  const states = (await rowsNow()).map((r) => r.state);
  check(states.every((s, i) => i === 0 || rank.indexOf(states[i - 1]) <= rank.indexOf(s)), `default order is not failures first: ${states}`);
  check(states[0] === 'failed', `the first row is ${states[0]}`);
  const sort = page.getByRole('combobox', {name: 'Sort jobs'});
  await sort.selectOption('name');
  const alphabetical = [...attrs].sort();
  await eventually('sorted by attribute', async () => JSON.stringify(await shownAttrs()) === JSON.stringify(alphabetical),
    {describe: async () => JSON.stringify(await shownAttrs())});
  check((await path()).includes('sort=name'), `the address does not keep the sort: ${await path()}`);
  await sort.selectOption('duration');
  await eventually(`${args.longest} first when sorted by duration`, async () => (await shownAttrs())[0] === args.longest,
    {describe: async () => JSON.stringify(await shownAttrs())});
  await sort.selectOption('state');

  t.step('filtering by state');
  const chip = (label) => page.locator('.chips button').filter({hasText: new RegExp(`^${label}\\s+\\d+$`)});
  await chip('failed').click();
  await eventually('only the failed job is shown', async () => JSON.stringify(await shownAttrs()) === JSON.stringify([args.dependency]),
    {describe: async () => JSON.stringify(await shownAttrs())});
  check(await chip('failed').getAttribute('aria-pressed') === 'true', 'the "failed" chip is not pressed');
  check((await path()).includes('state=failed'), `the address does not keep the filter: ${await path()}`);
  await t.shot('03-eval-filtered-failed');
  await chip('Failing').click();
  const failing = attrs.filter((a) => ['failed', 'dependency failed', 'evaluation failed'].includes(expected[a]));
  await eventually('the failing jobs are shown', async () => JSON.stringify((await shownAttrs()).sort()) === JSON.stringify(failing.sort()),
    {describe: async () => JSON.stringify(await shownAttrs())});
  await chip('All').click();
  await eventually('all jobs again', async () => (await rowsNow()).length === attrs.length);

  t.step('filtering by text');
  const filter = page.getByRole('searchbox', {name: 'Filter jobs by attribute'});
  const one = args.longest.split('.').pop();
  await filter.fill(one);
  await eventually(`only ${args.longest} matches "${one}"`, async () => JSON.stringify(await shownAttrs()) === JSON.stringify([args.longest]),
    {describe: async () => JSON.stringify(await shownAttrs())});
  check((await path()).includes(`q=${one}`), `the address does not keep the text filter: ${await path()}`);
  await filter.fill('no-such-attribute');
  await eventually('nothing matches', async () => (await t.text('.jobs > p.muted')) === 'No job matches the filter.');
  await filter.fill('');
  await eventually('all jobs again', async () => (await rowsNow()).length === attrs.length);
  check(await t.sameDocument(), 'filtering reloaded the page');

  t.step('a filtered address opens filtered');
  await page.goto(`${t.base}${evalPath}?state=failed`);
  await t.drawn();
  await eventually('only the failed job is shown', async () => JSON.stringify(await shownAttrs()) === JSON.stringify([args.dependency]),
    {describe: async () => JSON.stringify(await shownAttrs())});
  await chip('failed').click();
  await eventually('all jobs again', async () => (await rowsNow()).length === attrs.length);
  await t.mark();
  await t.shot('03-eval-page');
  await t.phoneShot('03-eval-page-phone');

  t.step('follow the dependency link to the failed job, then back and forward');
  await depLink.click();
  await page.waitForURL((u) => u.pathname === byAttr[args.dependency].href);
  await t.drawn();
  await eventually('the job page shows the failed dependency', async () => (await headingState(page)) === 'failed' &&
    (await t.text('#main h1 .attr-title')) === args.dependency, {describe: () => t.text('#main h1')});
  check(await t.sameDocument(), 'following a link reloaded the page instead of drawing it in place');
  await page.goBack();
  await page.waitForURL((u) => u.pathname === evalPath);
  await eventually('back on the eval page, its jobs are listed', async () => (await rowsNow()).length === attrs.length);
  check(await t.sameDocument(), '"back" reloaded the page');
  await page.goForward();
  await page.waitForURL((u) => u.pathname === byAttr[args.dependency].href);
  await eventually('forward on the job page again', async () => (await t.text('#main h1 .attr-title')) === args.dependency,
    {describe: () => t.text('#main h1')});
  check(await t.sameDocument(), '"forward" reloaded the page');
  // The job page's breadcrumb leads back to the eval.
  await page.locator('.crumbs a', {hasText: /^eval /}).click();
  await page.waitForURL((u) => u.pathname === evalPath);
  await eventually('the breadcrumb leads to the eval page', async () => (await rowsNow()).length === attrs.length);

  t.step('a deep link to line 5 of the failed job\'s log');
  const jobUrl = `${t.base}${byAttr[args.dependency].href}`;
  await page.goto(`${jobUrl}#L5`);
  await t.drawn();
  await eventually('the log is loaded', async () => (await logStatus(page)).lines > 5, {describe: async () => (await logStatus(page)).text});
  const l5 = await eventually('line 5 is highlighted and in view', async () => {
    const l = await logLine(page, {n: 5});
    return l && l.inView && l.classes.includes('is-target') ? l : null;
  }, {describe: async () => JSON.stringify(await logLine(page, {n: 5}))});
  const lines = (await logStatus(page)).lines;
  const lastLine = await logLine(page, {n: lines});
  check(!lastLine || !lastLine.inView, 'the deep link did not move the log away from its end (the last line is in view)');
  console.log(`eval_page: #L5 shows ${JSON.stringify(l5.text)}`);
  t.step('clicking a line number anchors it; back returns to line 5');
  await t.mark();
  await page.locator('.log-line .ln', {hasText: /^12$/}).click();
  await eventually('line 12 is the target', async () => (await page.evaluate(() => location.hash)) === '#L12' &&
    (await logLine(page, {n: 12}))?.classes.includes('is-target'));
  await page.goBack();
  await eventually('back to #L5', async () => (await page.evaluate(() => location.hash)) === '#L5' &&
    (await logLine(page, {n: 5}))?.classes.includes('is-target'), {describe: async () => JSON.stringify(await logLine(page, {n: 5}))});
  check(await t.sameDocument(), 'moving between line anchors reloaded the page');
  await t.shot('03-job-deep-link-L5');
  await t.phoneShot('03-job-deep-link-L5-phone');
});
