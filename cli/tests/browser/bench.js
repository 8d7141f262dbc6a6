// The report's load time in headless Chromium (scripts/bench-report runs it):
// each run opens the file in a new page and reads how long after navigation
// start the page was drawn (the renderer's last line sets
// window.keventsReport.readyMs = performance.now(): HTML parse, JSON parse,
// summary chart, incident list, patterns, the first three timelines), then
// times opening every one of the first 20 incidents' timelines.
// Usage: node bench.js REPORT.html [RUNS]   (prints JSON)
'use strict';
const path = require('path');
const { launch, watchedPage } = require('./browser');

(async () => {
  const file = path.resolve(process.argv[2]);
  const runs = Number(process.argv[3] || 5);
  const b = await launch();
  const ready = [], open20 = [];
  let facts = null;
  try {
    for (let i = 0; i < runs; i++) {
      const { page, problems } = await watchedPage(b.context);
      await page.goto('file://' + file, { timeout: 120000 });
      await page.waitForSelector('body[data-ready="1"]', { timeout: 120000 });
      facts = await page.evaluate(() => window.keventsReport);
      ready.push(facts.readyMs);
      open20.push(await page.evaluate(() => {
        const t = performance.now();
        const secs = Array.from(document.querySelectorAll('section.incident')).slice(0, 20);
        secs.forEach((s) => { s.querySelector('details').open = true; });
        // The toggle events fire asynchronously; each draws its timeline.
        return new Promise((res) => {
          const done = () => secs.every((s) => s.querySelector('svg.tl'));
          const poll = () => (done() ? res({ ms: performance.now() - t, drawn: document.querySelectorAll('svg.tl').length }) : setTimeout(poll, 0));
          poll();
        });
      }));
      if (problems.length) throw new Error(problems.join('\n'));
      await page.close();
    }
  } finally {
    await b.close();
  }
  const sorted = ready.slice().sort((a, b) => a - b);
  console.log(JSON.stringify({
    file, runs, events: facts.events, incidents: facts.incidents, patterns: facts.patterns, data_bytes: facts.dataBytes,
    ready_ms: { median: sorted[Math.floor(runs / 2)], min: sorted[0], max: sorted[runs - 1], all: ready.map(Math.round) },
    open_20_timelines_ms: open20.map((o) => Math.round(o.ms)), timelines_drawn: open20[0].drawn,
  }, null, 1));
})().catch((e) => { console.error(e); process.exit(1); });
