// "What changed" on the eval of a push that broke a check that passed
// before: the headline counts the new failure, the check is listed as newly
// failing (linking its job), and the comparison names the earlier eval.
//
//   node what_changed.mjs base=URL out=DIR eval=<eval id> base_eval=<eval id> headline=<text> newly_failing=<attr>
import {check, eventually, run} from './lib.mjs';

run(async (t) => {
  const {page, args} = t;
  check(args.eval && args.base_eval && args.headline && args.newly_failing, 'missing arguments');
  t.step(`open /evals/${args.eval}`);
  await page.goto(`${t.base}/evals/${encodeURIComponent(args.eval)}`);
  await t.drawn();

  t.step(`the headline says "${args.headline}"`);
  const headline = page.locator('.what-changed .headline');
  await eventually('the comparison is drawn', async () => (await headline.count()) > 0);
  const said = (await headline.innerText()).trim();
  check(said.includes(args.headline), `"What changed" says ${JSON.stringify(said)}`);
  check(await headline.evaluate((e) => e.classList.contains('is-bad')), 'a new failure is not shown as bad news');

  t.step('the newly failing check is listed and links to its job');
  const group = page.locator('.change-newly_failing');
  check(await group.count() === 1, 'there is no "Newly failing" list');
  const items = await group.locator('li').evaluateAll((lis) => lis.map((li) => ({text: li.innerText.trim(), href: li.querySelector('a')?.getAttribute('href') || ''})));
  check(items.length === 1 && items[0].text.includes(args.newly_failing), `"Newly failing" lists ${JSON.stringify(items)}`);
  check(items[0].text.includes('was succeeded'), `the newly failing check does not say it passed before: ${JSON.stringify(items[0].text)}`);
  check(items[0].href.startsWith(`/evals/${encodeURIComponent(args.eval)}/jobs/`), `it links to ${items[0].href}`);

  t.step('the comparison names the earlier eval');
  const baseLink = page.locator('.what-changed a', {hasText: /^eval of /});
  check(await baseLink.getAttribute('href') === `/evals/${encodeURIComponent(args.base_eval)}`,
    `"Compared with" links ${await baseLink.getAttribute('href')}, not the earlier eval ${args.base_eval}`);
  await t.shot('04-what-changed-eval');
  await t.phoneShot('04-what-changed-eval-phone');

  t.step('the newly failing job\'s page');
  await group.locator('a').first().click();
  await page.waitForURL((u) => u.pathname === items[0].href);
  await t.drawn();
  await eventually('the job page shows the check', async () => (await t.text('#main h1 .attr-title')) === args.newly_failing);
  await t.shot('04-what-changed-newly-failing-job');
});
