// The projects list and a project's page: the repository with its latest
// eval, its branches with theirs, and its eval history, filtered by ref.
//
//   node projects.mjs base=URL out=DIR project=<owner/repo> refs=<branch,branch,...> evals=<how many evals at least>
import {check, eventually, run} from './lib.mjs';

run(async (t) => {
  const {page, args} = t;
  const refs = (args.refs || '').split(',').filter(Boolean);
  check(args.project && refs.length && args.evals, 'needs project=, refs= and evals=');
  const [owner, repo] = args.project.split('/');

  t.step('the projects list');
  await page.goto(`${t.base}/`);
  await t.drawn();
  const row = page.locator('.projects-table tbody tr', {has: page.locator(`a:text-is("${args.project}")`)});
  await row.waitFor();
  const badge = (await row.locator('.badge').first().innerText()).trim();
  check(/failed|succeeded/.test(badge), `the project's latest eval shows ${JSON.stringify(badge)}`);
  check((await row.innerText()).includes('GitHub'), `the project row does not name its forge: ${await row.innerText()}`);
  await t.shot('05-projects');
  await t.mark();

  t.step(`open ${args.project}`);
  await row.locator(`a:text-is("${args.project}")`).click();
  await page.waitForURL((u) => u.pathname === `/projects/github/${owner}/${repo}`);
  await t.drawn();
  check((await t.text('#main h1')) === args.project, `the heading says ${await t.text('#main h1')}`);
  check(await t.sameDocument(), 'opening the project reloaded the page');

  t.step('its branches with their latest evals');
  const refRows = () => page.locator('.refs-table tbody tr').evaluateAll((rs) => rs.map((r) => ({
    ref: r.querySelector('td.ref a')?.textContent.trim() || '', latest: r.querySelector('.badge')?.textContent.trim() || '',
  })));
  const shownRefs = await eventually('every branch is listed with an eval', async () => {
    const r = await refRows();
    return refs.every((name) => r.some((x) => x.ref === name && x.latest)) ? r : null;
  }, {describe: async () => JSON.stringify(await refRows())});
  check(shownRefs[0].ref === 'main', `the default branch is not listed first: ${JSON.stringify(shownRefs)}`);
  const evalRows = () => page.locator('.evals-table tbody tr').count();
  await eventually(`at least ${args.evals} evals are listed`, async () => (await evalRows()) >= Number(args.evals),
    {describe: async () => String(await evalRows())});
  await t.shot('05-project');
  await t.phoneShot('05-project-phone');

  t.step('the eval history of one branch');
  const all = await evalRows();
  await page.getByRole('combobox', {name: 'Show the evals of'}).selectOption({label: refs[1]});
  await eventually(`only evals of ${refs[1]} are listed`, async () => {
    const r = await page.locator('.evals-table tbody tr td.ref').evaluateAll((cells) => cells.map((c) => c.textContent.trim()));
    return r.length > 0 && r.length < all && r.every((x) => x.startsWith(refs[1]));
  });
  check((await page.evaluate(() => location.search)).includes('ref='), 'the address does not keep the ref');
  await t.shot('05-project-one-branch');
});
