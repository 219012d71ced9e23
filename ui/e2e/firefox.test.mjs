// Firefox smoke test: the dashboard's main paths in Debian's firefox-esr,
// driven over WebDriver BiDi by puppeteer-core, against a real plinth
// binary. The full suite runs in Chromium (dashboard.test.mjs); this one
// checks that nothing Chromium-only slipped in. Skipped, saying so, when
// firefox-esr is not installed (.ci/run installs it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const firefox = process.env.FIREFOX || '/usr/bin/firefox-esr';
const skip = existsSync(firefox) ? false : 'firefox-esr is not installed (apt-get install firefox-esr)';

let proc, browser, page, base, dataDir;
const problems = [];

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function api(method, p, body, token) {
  const r = await fetch(base + p, { method, headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: token } : {}) }, body: body ? JSON.stringify(body) : undefined });
  return { status: r.status, body: await r.json().catch(() => ({})) };
}

before(async () => {
  if (skip) return;
  dataDir = mkdtempSync(path.join(tmpdir(), 'plinth-ff-'));
  const bin = path.join(dataDir, 'plinth');
  execFileSync('go', ['build', '-o', bin, './cmd/plinth'], { cwd: root, stdio: 'inherit' });
  const dir = path.join(dataDir, 'data');
  execFileSync(bin, ['superuser', 'upsert', '--dir', dir, 'admin@example.com', 'a-long-password']);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  proc = spawn(bin, ['serve', '--http', `127.0.0.1:${port}`, '--dir', dir], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    if ((await fetch(base + '/api/health').catch(() => null))?.ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await puppeteer.launch({ browser: 'firefox', executablePath: firefox, headless: true, userDataDir: path.join(dataDir, 'profile'),
    extraPrefsFirefox: { 'network.proxy.type': 0, 'app.update.enabled': false, 'browser.safebrowsing.malware.enabled': false, 'browser.safebrowsing.phishing.enabled': false } });
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(m.text());
  });
});

after(async () => {
  await browser?.close();
  proc?.kill();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('dashboard in Firefox: log in, create a collection, add a record, see it listed', { skip }, async () => {
  await page.goto(base + '/_/');
  await page.locator('input[type=email]').fill('admin@example.com');
  await page.locator('input[type=password]').fill('a-long-password');
  await page.locator('button[type=submit]').click();
  await page.locator('a.btn.primary').wait(); // "+ New collection": signed in
  const su = (await api('POST', '/api/superusers/auth-with-password', { identity: 'admin@example.com', password: 'a-long-password' })).body.token;
  const made = await api('POST', '/api/collections', { name: 'notes', listRule: '', fields: [{ name: 'title', type: 'text' }, { name: 'n', type: 'number' }] }, su);
  assert.equal(made.status, 200, JSON.stringify(made.body));
  await page.goto(base + '/_/#/collections/notes');
  await page.reload();
  await page.locator('::-p-text(+ New record)').click();
  await page.locator('#rec-title').fill('from firefox');
  await page.locator('#rec-n').fill('7');
  await page.locator('[role=dialog] button[type=submit]').click();
  await page.locator('td[data-col=title] ::-p-text(from firefox)').wait();
  const list = await api('GET', '/api/collections/notes/records', null, su);
  assert.equal(list.body.items[0].title, 'from firefox');
  assert.equal(list.body.items[0].n, 7);
  // The rule editor validates live here too.
  await page.goto(base + '/_/#/collections/notes/edit');
  await page.reload();
  await page.locator('textarea[name=listRule]').fill('nope = 1');
  await page.locator('.rule.invalid .error').wait();
  assert.deepEqual(problems, []);
});
