// A private repository's pages and API:
//   as=anonymous  signed out, its eval and job pages say "not found" (and
//                 that it may be private), its API answers 404, and the
//                 projects list does not show it (the public one it shows)
//   as=member     signed in as someone who can read it on the forge, all
//                 of it shows
//
//   node private.mjs base=URL out=DIR as=<who> eval=<eval id> job=<job id> project=<owner/repo> public=<owner/repo> [login=<forge login>]
import {check, eventually, headingState, run} from './lib.mjs';

run(async (t) => {
  const {page, args} = t;
  check(args.eval && args.job && args.project && args.public && ['anonymous', 'member'].includes(args.as), 'missing arguments');
  const [owner, repo] = args.project.split('/');
  const evalPath = `/evals/${encodeURIComponent(args.eval)}`;
  const jobPath = `${evalPath}/jobs/${encodeURIComponent(args.job)}`;
  const projectPath = `/projects/github/${owner}/${repo}`;
  const listed = async () => page.locator('.projects-table tbody td[data-label="Project"] a').evaluateAll((as) => as.map((a) => a.textContent.trim()));
  const shot = `07-private-${args.as}`;

  if (args.as === 'anonymous') {
    for (const [what, p] of [['eval', evalPath], ['job', jobPath]]) {
      t.step(`the ${what} page of the private repository, signed out`);
      await page.goto(t.base + p);
      await t.drawn();
      check((await t.text('#main h1')) === 'Not found', `the ${what} page's heading is ${JSON.stringify(await t.text('#main h1'))}`);
      const said = await t.text('#main');
      check(said.includes('private project: sign in to see it'), `the ${what} page says ${JSON.stringify(said)}`);
      check(!said.includes(args.project), `the ${what} page names the private repository: ${JSON.stringify(said)}`);
      await t.shot(`${shot}-${what}`);
    }
    t.step('its API answers 404');
    const answers = await page.evaluate(async (paths) => Promise.all(paths.map(async (p) => {
      const r = await fetch(p);
      return {p, status: r.status, body: (await r.text()).slice(0, 200)};
    })), [`/api${evalPath}`, `/api${evalPath}/jobs`, `/api/jobs/${encodeURIComponent(args.job)}`, `/api/jobs/${encodeURIComponent(args.job)}/log?offset=0`,
      `/api/project?forge=github&owner=${owner}&repo=${repo}`, `/badge/github/${owner}/${repo}.svg`]);
    for (const a of answers) check(a.status === 404, `${a.p} answered ${a.status} ${a.body} signed out`);
    // (A job id begins with its eval's id: echoing the id asked for tells nothing.)
    const telling = answers.find((a) => a.body.includes(repo) || a.body.includes('gears turn'));
    check(!telling, `an answer tells of the private repository: ${telling && `${telling.p}: ${telling.body}`}`);

    t.step('the projects list shows the public project only');
    await page.goto(`${t.base}/`);
    await t.drawn();
    await eventually(`${args.public} is listed`, async () => (await listed()).includes(args.public), {describe: async () => JSON.stringify(await listed())});
    check(!(await listed()).includes(args.project), `the private ${args.project} is listed signed out: ${JSON.stringify(await listed())}`);
    await t.shot(`${shot}-projects`);
    t.step('its project page shows nothing');
    await page.goto(t.base + projectPath);
    await t.drawn();
    const said = await t.text('#main');
    check(said.includes(`No project ${args.project} is known here`), `the project page says ${JSON.stringify(said)}`);
    check(await page.locator('.refs-table').count() === 0, 'the private project page lists refs signed out');
    return;
  }

  t.step(`sign in as ${args.login} from the projects list`);
  check(args.login, 'needs login=');
  await page.goto(`${t.base}/`);
  await t.drawn();
  await t.signIn(args.login);
  await eventually(`${args.project} is listed`, async () => (await listed()).includes(args.project), {describe: async () => JSON.stringify(await listed())});
  const row = page.locator('.projects-table tbody tr', {has: page.locator(`a:text-is("${args.project}")`)});
  check((await row.innerText()).includes('private'), `the project is not marked private: ${await row.innerText()}`);
  await t.shot(`${shot}-projects`);

  t.step('its project page');
  await row.locator(`a:text-is("${args.project}")`).click();
  await page.waitForURL((u) => u.pathname === projectPath);
  await t.drawn();
  await page.locator('.refs-table td.ref a', {hasText: 'main'}).waitFor();
  await t.shot(`${shot}-project`);

  t.step('its eval page');
  await page.goto(t.base + evalPath);
  await t.drawn();
  await eventually('the eval page shows its job', async () => (await page.locator('.jobs-table tbody tr').count()) > 0);
  check((await t.text('#main h1')).includes(args.project), `the eval page's heading is ${JSON.stringify(await t.text('#main h1'))}`);
  await t.shot(`${shot}-eval`);

  t.step('its job page and log');
  await page.goto(t.base + jobPath);
  await t.drawn();
  await eventually('the job succeeded', async () => (await headingState(page)) === 'succeeded', {describe: () => headingState(page)});
  await eventually('its log is shown', async () => (await page.locator('.log-viewport .log-line').count()) > 0);
  await t.shot(`${shot}-job`);
});
