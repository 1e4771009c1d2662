// The UI by keyboard alone, and readable: from an eval page, the first Tab
// offers "Skip to content"; Tab reaches the failing job's link with a
// visible focus ring and Enter opens its page (focus moves to the page's
// content); there Tab reaches the log's search box and "Jump to first
// error", which Enter presses. Every text drawn on the eval and job pages
// (state badges, muted text, links, the log and its ANSI colours) has a
// contrast of at least 4.5:1 against its background (WCAG AA).
//
//   node keyboard.mjs base=URL out=DIR eval=<eval id> failing=<attr of a failed job> error=<its error line>
import {check, eventually, logLine, run} from './lib.mjs';

// The contrast of every visible text node's element against the first
// opaque background behind it: [{text, ratio, fg, bg}] below `min`.
async function lowContrast(page, min) {
  return page.evaluate((min) => {
    const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const c = [r, g, b].map((v) => {
        v /= 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length >= 3 && (c.length < 4 || c[3] === 1)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const low = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!n.textContent.trim() || !el || !el.getClientRects().length) continue;
      const style = getComputedStyle(el);
      if (style.visibility === 'hidden' || Number(style.opacity) === 0 || el.closest('.visually-hidden, .skip-link, [hidden]')) continue;
      // A dimmed span (ANSI "dim") is drawn at its opacity over its background.
      const fg = rgb(style.color).slice(0, 3);
      const bg = background(el);
      const a = el.closest('.a-dim') ? Number(getComputedStyle(el.closest('.a-dim')).opacity) : 1;
      const seen = fg.map((c, i) => c * a + bg[i] * (1 - a));
      const [l1, l2] = [lum(seen), lum(bg)].sort((x, y) => y - x);
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      if (ratio < min) low.push({text: n.textContent.trim().slice(0, 40), ratio: ratio.toFixed(2), fg: style.color, bg: `rgb(${bg})`});
    }
    return low;
  }, min);
}

run(async (t) => {
  const {page, args} = t;
  check(args.eval && args.failing && args.error, 'needs eval=, failing= and error=');
  const focused = () => page.evaluate(() => {
    const e = document.activeElement;
    return e ? {tag: e.tagName, text: (e.textContent || e.getAttribute('aria-label') || '').trim().slice(0, 80),
      label: e.getAttribute('aria-label') || '', outline: getComputedStyle(e).outlineStyle} : null;
  });
  // Presses Tab until `want` holds for the focused element (at most `max` times).
  const tabTo = async (what, want, max = 80) => {
    for (let i = 0; i < max; i++) {
      await page.keyboard.press('Tab');
      const f = await focused();
      if (f && want(f)) return f;
    }
    throw new Error(`${what} is not reached by ${max} presses of Tab (last focused: ${JSON.stringify(await focused())})`);
  };

  t.step('the eval page: the first Tab offers "Skip to content"');
  await page.goto(`${t.base}/evals/${encodeURIComponent(args.eval)}`);
  await t.drawn();
  await page.locator('.jobs-table tbody tr').first().waitFor();
  await page.keyboard.press('Tab');
  const first = await focused();
  check(first && first.text === 'Skip to content', `the first Tab focuses ${JSON.stringify(first)}`);

  t.step('every text on the eval page is readable (4.5:1)');
  const evalLow = await lowContrast(page, 4.5);
  check(evalLow.length === 0, `low contrast on the eval page: ${JSON.stringify(evalLow.slice(0, 5))}`);

  t.step(`Tab to ${args.failing}'s link; its focus is visible; Enter opens the job`);
  const link = await tabTo(`${args.failing}'s link`, (f) => f.tag === 'A' && f.text === args.failing);
  check(link.outline !== 'none', `the focused link shows no focus ring (outline ${link.outline})`);
  await t.shot('08-keyboard-focus-on-failing-job');
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname.includes('/jobs/'));
  await t.drawn();
  const onMain = await page.evaluate(() => document.activeElement && document.activeElement.id === 'main');
  check(onMain, 'after the job page opened, focus is not on its content');

  t.step('the job page: Tab to the log search, then to "Jump to first error", and Enter');
  await page.locator('.log-viewport .log-line').first().waitFor();
  await tabTo('the log search box', (f) => f.tag === 'INPUT' && f.label === 'Search the log');
  await tabTo('"Jump to first error"', (f) => f.tag === 'BUTTON' && f.text === 'Jump to first error');
  await page.keyboard.press('Enter');
  await eventually('the error line is in view', async () => (await logLine(page, {text: args.error}))?.inView,
    {describe: async () => JSON.stringify(await logLine(page, {text: args.error}))});

  t.step('every text on the job page, log and colours included, is readable (4.5:1)');
  const jobLow = await lowContrast(page, 4.5);
  check(jobLow.length === 0, `low contrast on the job page: ${JSON.stringify(jobLow.slice(0, 5))}`);
  await t.shot('08-keyboard-jumped-to-error');
});
