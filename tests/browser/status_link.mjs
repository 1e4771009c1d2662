// A failing check's status link, opened as a developer opens it from the
// forge: the job page says "failed", the check's error line is in the log,
// and "Jump to first error" brings that line into view.
//
//   node status_link.mjs base=URL out=DIR url=<the check run's details_url> error=<the error line>
import {check, eventually, headingState, logLine, logStatus, run} from './lib.mjs';

run(async (t) => {
  const {page, args} = t;
  check(args.url && args.error, 'needs url= and error=');

  t.step(`open the status link ${args.url}`);
  await page.goto(args.url);
  await t.drawn();
  await eventually('the heading says failed', async () => (await headingState(page)) === 'failed', {describe: () => headingState(page)});
  check(page.url().startsWith(args.url), `the link went on to ${page.url()}`);

  t.step('the whole log loads');
  const loaded = await eventually('the log is loaded', async () => {
    const s = await logStatus(page);
    return s.lines !== null && !s.following ? s : null;
  }, {describe: async () => (await logStatus(page)).text});
  check(loaded.lines > 300, `the log has ${loaded.lines} lines; the failing check prints more than 300`);

  // A failed job's log opens at its end, where failures usually are; this
  // one's error line is sixty lines above it.
  t.step('the error line is not in view before the jump');
  const before = await logLine(page, {text: args.error});
  check(!before || !before.inView, `the error line is already in view (line ${before && before.n}): the jump would prove nothing`);
  await t.shot('01-status-link-job-failed');

  t.step('"Jump to first error" brings the error line into view');
  await page.getByRole('button', {name: 'Jump to first error'}).click();
  const line = await eventually('the error line is in view', async () => {
    const l = await logLine(page, {text: args.error});
    return l && l.inView ? l : null;
  }, {describe: async () => JSON.stringify(await logLine(page, {text: args.error}))});
  // nix prefixes each line with the derivation's name ("fail> ").
  check(line.text.trim().endsWith(args.error), `the line jumped to reads ${JSON.stringify(line.text)}`);
  check(line.classes.includes('is-target'), `the error line is not highlighted (classes: ${line.classes})`);
  const hash = await page.evaluate(() => location.hash);
  check(hash === `#L${line.n}`, `the address says ${hash}, not #L${line.n}`);
  console.log(`status_link: the error is line ${line.n} of ${loaded.lines}`);
  await t.shot('01-status-link-job-jumped-to-error');
  await t.phoneShot('01-status-link-job-phone');
});
