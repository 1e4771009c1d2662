// Rebuilding a failed job from its page, as three people:
//   as=anonymous   the button is disabled and says to sign in; the API
//                  refuses a rebuild without a session (401)
//   as=reader      signs in through the forge (who may only read): the
//                  rebuild is refused with a clear message (403)
//   as=maintainer  signs in (who may write): the rebuild is queued, the UI
//                  says so, and a new eval of the commit appears
// The C++ side chose whom the fake forge signs in.
//
//   node acting.mjs base=URL out=DIR as=<who> job=<job page URL> [login=<forge login>] [rev=<commit>]
import {check, eventually, headingState, run} from './lib.mjs';

run(async (t) => {
  const {page, args} = t;
  check(args.job && ['anonymous', 'reader', 'maintainer'].includes(args.as), 'needs job= and as=anonymous|reader|maintainer');
  const jobPath = new URL(args.job).pathname;
  const jobId = decodeURIComponent(jobPath.split('/').pop());
  const shot = `06-acting-${args.as}`;

  t.step(`open ${jobPath}`);
  await page.goto(args.job);
  await t.drawn();
  await eventually('the job is failed', async () => (await headingState(page)) === 'failed', {describe: () => headingState(page)});
  const rebuild = page.getByRole('button', {name: 'Rebuild'});
  const status = page.locator('.actions .action-status');

  if (args.as === 'anonymous') {
    t.step('the rebuild button is disabled and says to sign in');
    await rebuild.waitFor();
    check(await rebuild.isDisabled(), 'an anonymous visitor can press "Rebuild"');
    check((await t.text('.actions')).includes('Sign in to rebuild.'), `the actions say ${JSON.stringify(await t.text('.actions'))}`);
    check(await page.locator('.auth a', {hasText: 'Sign in with GitHub'}).count() === 1, 'the header offers no sign-in');
    t.step('the API refuses a rebuild without a session');
    const answer = await page.evaluate(async (id) => {
      const r = await fetch(`/api/jobs/${encodeURIComponent(id)}/rebuild`, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'});
      return {status: r.status, body: await r.text()};
    }, jobId);
    check(answer.status === 401, `POST /api/jobs/${jobId}/rebuild without a session answered ${answer.status} ${answer.body}`);
    console.log(`acting: anonymous rebuild: ${answer.status} ${answer.body.trim()}`);
    await t.shot(shot);
    return;
  }

  t.step(`sign in as ${args.login}`);
  check(args.login, 'needs login=');
  await t.signIn(args.login);
  await t.drawn();
  await rebuild.waitFor();
  check(await rebuild.isEnabled(), 'a signed-in user cannot press "Rebuild"');
  check(await page.locator('.auth button', {hasText: 'Sign out'}).count() === 1, 'the header offers no sign-out');

  t.step('press "Rebuild"');
  await rebuild.click();
  const said = await eventually('the UI answers the rebuild', async () => {
    const text = (await status.count()) ? (await status.innerText()).trim() : '';
    return text && text !== 'Working…' ? text : '';
  });
  const tone = await status.getAttribute('class');
  console.log(`acting: ${args.as} pressed Rebuild: ${said}`);

  if (args.as === 'reader') {
    check(/\berror\b/.test(tone), `the refusal is not shown as an error (class ${tone})`);
    check(said.startsWith('Not allowed:'), `a reader's rebuild says ${JSON.stringify(said)}, not that it is not allowed`);
    check(/write|permission/i.test(said) && said.includes(args.login), `the refusal does not say why: ${JSON.stringify(said)}`);
    check(await rebuild.isEnabled(), 'the button stays disabled after a refusal');
    await t.shot(shot);
    return;
  }

  check(/\bok\b/.test(tone), `the rebuild is not shown as done (class ${tone}): ${said}`);
  check(said.startsWith('Queued'), `a maintainer's rebuild says ${JSON.stringify(said)}`);
  await t.shot(shot);

  t.step('a new eval of the commit appears on the project page');
  check(args.rev, 'needs rev=');
  await page.locator('.crumbs a').nth(1).click();
  await page.waitForURL((u) => u.pathname.startsWith('/projects/'));
  await t.drawn();
  // A re-run of the commit, sent by whom pressed Rebuild.
  const reruns = () => page.locator('.evals-table tbody tr').evaluateAll((rows, {rev, login}) => rows.filter((r) =>
    r.querySelector('td[data-label="Trigger"]')?.textContent === `re-run by ${login}` &&
    rev.startsWith(r.querySelector('td[data-label="Commit"]')?.textContent.trim() || '-')).length, {rev: args.rev, login: args.login});
  await eventually('the re-run is listed', async () => {
    if (await reruns()) return true;
    await page.reload();
    await t.drawn();
    return (await reruns()) > 0;
  }, {timeout: 60_000, interval: 1000});
  await t.shot(`${shot}-rerun-listed`);
});
