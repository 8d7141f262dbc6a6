// Launching Debian's Chromium for the report tests and benchmark: never a
// downloaded browser (playwright-core has none), no network, a fresh profile.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const EXECUTABLE = process.env.KEVENTS_CHROMIUM || '/usr/bin/chromium';

async function launch() {
  if (!fs.existsSync(EXECUTABLE)) {
    throw new Error(`${EXECUTABLE} not found: install Debian's chromium (scripts/install-deps --only apt)`);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'kevents-chromium-'));
  // A fresh --user-data-dir: playwright passes the profile directory itself.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: EXECUTABLE,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

// A page that records console errors, uncaught exceptions and any request
// that is not the report file itself (the report must need no network).
async function watchedPage(context) {
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => { if (!r.url().startsWith('file://')) problems.push(`network request: ${r.url()}`); });
  return { page, problems };
}

module.exports = { launch, watchedPage };
