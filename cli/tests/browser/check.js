// Opens each report `kevents report` wrote in headless Chromium and checks it
// against expectations computed by the Rust test from `kevents analyze -o json`
// (cli/tests/report_browser.rs): no console error or network request, the
// number of incidents, per incident the number of object lanes, one root
// cause mark whose click shows the root cause's message, the lanes in order
// when the spec gives it (`lane_order`), a click on another
// event shows one of the incident's messages, keyboard moves between events.
// Usage: node check.js SPEC.json   (prints a JSON result, exit 1 on failure)
'use strict';
const fs = require('fs');
const path = require('path');
const { launch, watchedPage } = require('./browser');

async function checkReport(context, r, shots) {
  const failures = [];
  const fail = (m) => failures.push(`${r.name}: ${m}`);
  const { page, problems } = await watchedPage(context);
  await page.goto('file://' + path.resolve(r.path));
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  const incidents = await page.locator('section.incident').count();
  if (incidents !== r.incidents) fail(`${incidents} incidents shown, expected ${r.incidents}`);
  let checked = 0;
  for (const c of r.checks) {
    const sec = page.locator(`section.incident[data-id="${c.id}"]`);
    if ((await sec.count()) !== 1) { fail(`incident ${c.id} not shown`); continue; }
    if (!(await sec.locator('details').first().getAttribute('open') !== null)) await sec.locator('summary').first().click();
    await sec.locator('svg.tl').waitFor({ timeout: 10000 });
    const lanes = await sec.locator('g.lane[data-lane="object"]').count();
    if (lanes !== c.lanes) fail(`incident ${c.id}: ${lanes} object lanes, expected ${c.lanes}`);
    if (c.lane_order) {
      const order = await sec.locator('g.lane').evaluateAll((ls) => ls.map((l) => l.dataset.object));
      if (JSON.stringify(order) !== JSON.stringify(c.lane_order)) fail(`incident ${c.id}: lanes ${JSON.stringify(order)}, expected ${JSON.stringify(c.lane_order)}`);
    }
    const roots = sec.locator('g.mark.root');
    if ((await roots.count()) !== 1) { fail(`incident ${c.id}: ${await roots.count()} root cause marks`); continue; }
    if (!(await roots.first().locator('text.rootlbl').textContent()).includes('ROOT')) fail(`incident ${c.id}: the root mark has no ROOT label`);
    await roots.first().locator('path.shape').click();
    const msg = (await sec.locator('.detail .msg').first().textContent()) || '';
    if (msg !== c.root_message) fail(`incident ${c.id}: clicking the root cause shows ${JSON.stringify(msg)}, expected ${JSON.stringify(c.root_message)}`);
    if (!(await sec.locator('.detail h4').first().textContent()).includes('ROOT CAUSE')) fail(`incident ${c.id}: the detail does not say ROOT CAUSE`);
    const others = sec.locator('g.mark:not(.root):not(.agg)');
    const groups = sec.locator('g.mark.agg');
    if ((await others.count()) > 0) {
      await others.first().locator('path.shape').click();
      const m = (await sec.locator('.detail .msg').first().textContent()) || '';
      if (!c.messages.includes(m)) fail(`incident ${c.id}: clicking an event shows ${JSON.stringify(m)}, not one of its events' messages`);
    } else if ((await groups.count()) > 0) {
      // A mark standing for several events lists them with their messages.
      await groups.first().locator('path.shape').click();
      const items = await sec.locator('.detail .agglist li').allTextContents();
      if (!items.length || !items.every((t) => c.messages.some((m) => t.endsWith(m)))) fail(`incident ${c.id}: a grouped mark lists ${JSON.stringify(items.slice(0, 3))}`);
    }
    // Keyboard: the root mark is the tab stop; an arrow key moves to another event.
    if ((await sec.locator('g.mark').count()) > 1) {
      await roots.first().focus();
      const before = await sec.locator('.detail').innerHTML();
      let moved = false;
      for (const key of ['ArrowDown', 'ArrowUp', 'ArrowRight', 'ArrowLeft']) {
        await page.keyboard.press(key);
        moved = await page.evaluate(() => document.activeElement && document.activeElement.classList.contains('mark') && !document.activeElement.classList.contains('root'));
        if (moved) break;
      }
      const after = await sec.locator('.detail').innerHTML();
      if (!moved || before === after) fail(`incident ${c.id}: the arrow keys do not move to another event`);
    }
    checked++;
  }
  const shot = path.join(shots, `${r.name}.png`);
  await page.screenshot({ path: shot, fullPage: true });
  const first = page.locator('section.incident').first();
  let incidentShot = null;
  if ((await first.count()) > 0) {
    incidentShot = path.join(shots, `${r.name}-incident.png`);
    await first.screenshot({ path: incidentShot });
  }
  const ready = await page.evaluate(() => window.keventsReport);
  for (const p of problems) fail(p);
  await page.close();
  return { name: r.name, incidents, checked, ready_ms: ready.readyMs, screenshot: shot, incident_screenshot: incidentShot, failures };
}

(async () => {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  fs.mkdirSync(spec.screenshots, { recursive: true });
  const b = await launch();
  const results = [];
  try {
    for (const r of spec.reports) results.push(await checkReport(b.context, r, spec.screenshots));
  } finally {
    await b.close();
  }
  console.log(JSON.stringify(results, null, 1));
  process.exit(results.some((r) => r.failures.length) ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(2); });
