// End-to-end test of the dashboard in a real browser (Debian's chromium,
// driven by playwright-core) against a real plinth binary built from this
// checkout, with a real SMTP server (smtp-server) in this process.
// Run: cd ui && npm run e2e   (screenshots land in e2e/screenshots/)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';
import { SMTPServer } from 'smtp-server';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const shots = path.join(here, 'screenshots');
mkdirSync(shots, { recursive: true });

let proc, browser, page, base, installURL, smtp, smtpPort, dataDir, bin;
const mails = [];
const problems = []; // console errors and CSP violations

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// A valid 2x2 PNG, made here so the upload is a real image.
function png() {
  const crc = (buf) => {
    let c, crc = 0xffffffff;
    for (const b of buf) {
      c = (crc ^ b) & 0xff;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crc = (crc >>> 8) ^ c;
    }
    return (crc ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(2, 0); ihdr.writeUInt32BE(2, 4); ihdr[8] = 8; ihdr[9] = 2;
  const raw = Buffer.from([0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 0]);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

function decodeQP(s) {
  return s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
}

async function waitMail(to, timeout = 10000) {
  const start = Date.now();
  for (;;) {
    const i = mails.findIndex((m) => m.to.includes(to));
    if (i >= 0) return mails.splice(i, 1)[0];
    if (Date.now() - start > timeout) throw new Error('no mail to ' + to);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function shot(name) {
  await page.screenshot({ path: path.join(shots, name + '.png'), fullPage: false });
}

async function apiCall(method, p, body) {
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('plinth.superuser')).token);
  const res = await fetch(base + p, { method, headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

before(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'plinth-e2e-'));
  bin = path.join(dataDir, 'plinth');
  execFileSync('go', ['build', '-o', bin, './cmd/plinth'], { cwd: root, stdio: 'inherit' });

  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, cb) {
      let raw = '';
      stream.on('data', (d) => (raw += d));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address).join(','), raw: decodeQP(raw) });
        cb();
      });
    },
  });
  smtpPort = await freePort();
  await new Promise((r) => smtp.listen(smtpPort, '127.0.0.1', r));

  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  proc = spawn(bin, ['serve', '--http', `127.0.0.1:${port}`, '--dir', path.join(dataDir, 'data'), '--webhooks-allow-private', '--webhooks-retry-base', '300ms', '--changes-poll', '200ms'], { stdio: ['ignore', 'pipe', 'pipe'] });
  installURL = await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error('no install link printed:\n' + out)), 60000);
    const on = (d) => {
      out += d;
      const m = out.match(/url=(http:\/\/\S+\/_\/#\/install\/[0-9a-f]+)/);
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      }
    };
    proc.stdout.on('data', on);
    proc.stderr.on('data', on);
    proc.on('exit', (code) => reject(new Error('plinth exited ' + code + '\n' + out)));
  });

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: 'UTC', locale: 'en-US' });
  page = await ctx.newPage();
  page.setDefaultTimeout(10000);
  page.on('console', (m) => {
    // 4xx answers are part of the flows tested; the sandbox blocking the
    // template preview's script is the protection working.
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d|Blocked script execution in 'about:srcdoc'/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  // Any request leaving the served origin would break "no external requests".
  page.on('request', (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) problems.push('external request: ' + r.url());
  });
});

after(async () => {
  await browser?.close();
  proc?.kill('SIGTERM');
  await new Promise((r) => (proc ? proc.on('exit', r) : r()));
  smtp?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('dashboard end to end', async (t) => {
  await t.test('install the first superuser from the printed link', async () => {
    assert.ok(installURL.startsWith(base + '/_/#/install/'), installURL);
    await page.goto(installURL);
    await page.getByLabel('Email').fill('admin@example.com');
    await page.getByLabel('Password', { exact: true }).fill('a-long-password');
    await page.getByLabel('Confirm password').fill('a-long-password');
    await shot('install');
    await page.getByRole('button', { name: 'Create superuser' }).click();
    await page.getByRole('link', { name: '+ New collection' }).waitFor();
    // The link is single-use.
    const again = await fetch(base + '/api/superusers/install', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: installURL.split('/').pop(), email: 'x@example.com', password: 'a-long-password' }) });
    assert.equal(again.status, 400);
  });

  await t.test('log out and log in again', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Email').fill('admin@example.com');
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('.alert').waitFor();
    await page.getByLabel('Password').fill('a-long-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('link', { name: '+ New collection' }).waitFor();
  });

  await t.test('create an auth collection', async () => {
    await page.goto(base + '/_/#/new-collection');
    await page.locator('input[name=name]').fill('members');
    await page.locator('select[name=type]').selectOption('auth');
    await page.locator('input[name=field-name-0]').fill('nickname');
    await page.locator('.status .ok').waitFor();
    await page.getByRole('button', { name: 'Create' }).first().click();
    await page.waitForURL(/#\/collections\/members$/);
  });

  await t.test('create a base collection with every field type and a rule, seeing an invalid rule inline', async () => {
    await page.goto(base + '/_/#/new-collection');
    await page.locator('input[name=name]').fill('posts');
    await page.locator('input[name=field-name-0]').fill('title');
    await page.locator('input[name=field-required-0]').check();
    const add = async (name, type, opts = async () => {}) => {
      await page.getByRole('button', { name: '+ Add field' }).click();
      const row = page.locator('fieldset.fieldrow').last();
      await row.locator('input[name^=field-name-]').fill(name);
      await row.locator('select[name^=field-type-]').selectOption(type);
      await opts(row);
    };
    await add('views', 'number', (r) => r.getByLabel('Integers only').check());
    await add('published', 'bool');
    await add('contact', 'email');
    await add('site', 'url');
    await add('when', 'date');
    await add('category', 'select', (r) => r.getByLabel('Values').fill('news, essay, note'));
    await add('tags', 'select', async (r) => { await r.getByLabel('Values').fill('go, web, db'); await r.getByLabel('Max select').fill('3'); });
    await add('meta', 'json');
    await add('author', 'relation', (r) => r.getByLabel('Target collection').selectOption({ label: 'members' }));
    await add('cover', 'file', async (r) => { await r.getByLabel('MIME types').fill('image/png'); await r.getByLabel('Thumb sizes').fill('64x64'); });
    await add('stamp', 'autodate');
    await page.locator('.status .ok').waitFor();

    // An invalid rule: the server's compiler error appears at the rule.
    await page.locator('input[name=listRule-locked]').uncheck();
    await page.locator('textarea[name=listRule]').fill('nope = 1');
    const err = page.locator('.rule.invalid .error');
    await err.waitFor();
    assert.match(await err.innerText(), /nope/);
    await page.locator('textarea[name=listRule]').scrollIntoViewIfNeeded();
    await shot('rule-error');
    // A syntax error shows where it is.
    await page.locator('textarea[name=listRule]').fill('title = "a" && (');
    await page.locator('.rule.invalid pre.errpos').waitFor();
    assert.match(await page.locator('.rule.invalid pre.errpos').innerText(), /\^$/);
    // Typing the start of a name offers completions; Enter inserts one.
    await page.locator('textarea[name=listRule]').fill('');
    await page.locator('textarea[name=listRule]').type('@request.au');
    await page.getByRole('option', { name: '@request.auth.id' }).waitFor();
    await page.locator('textarea[name=listRule]').press('Escape');
    await page.locator('textarea[name=listRule]').fill('');
    await page.locator('textarea[name=listRule]').type('tit');
    await page.getByRole('option', { name: 'title', exact: true }).waitFor();
    await page.locator('textarea[name=listRule]').press('Enter');
    assert.equal(await page.locator('textarea[name=listRule]').inputValue(), 'title');
    // Suggestion chips insert names too; the fixed rule validates.
    await page.locator('textarea[name=listRule]').fill('');
    await page.locator('.rule').first().getByRole('button', { name: 'title', exact: true }).click();
    await page.locator('textarea[name=listRule]').press('End');
    await page.locator('textarea[name=listRule]').type(' != ""');
    await page.locator('.status .ok').waitFor();
    assert.equal(await page.locator('.rule.invalid').count(), 0);
    assert.equal(await page.locator('textarea[name=listRule]').inputValue(), 'title != ""');
    await page.getByRole('button', { name: 'Create' }).first().click();
    await page.waitForURL(/#\/collections\/posts$/);
    const col = await apiCall('GET', '/api/collections/posts');
    assert.equal(col.body.listRule, 'title != ""');
    assert.deepEqual(col.body.fields.map((f) => f.type).filter((x, i, a) => a.indexOf(x) === i).sort(), ['autodate', 'bool', 'date', 'email', 'file', 'json', 'number', 'relation', 'select', 'text', 'url']);
  });

  await t.test('create a member record', async () => {
    await page.goto(base + '/_/#/collections/members');
    await page.getByRole('button', { name: '+ New record' }).click();
    await page.locator('#rec-email').fill('ana@example.com');
    await page.locator('#rec-password').fill('password123');
    await page.locator('#rec-nickname').fill('ana');
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await page.locator('td', { hasText: 'ana@example.com' }).waitFor();
  });

  await t.test('create records with a file upload and a relation, edit and delete', async () => {
    await page.goto(base + '/_/#/collections/posts');
    await page.locator('.live.on').waitFor();
    const create = async (title, views, full) => {
      await page.getByRole('button', { name: '+ New record' }).click();
      await page.locator('#rec-title').fill(title);
      await page.locator('#rec-views').fill(String(views));
      if (full) {
        await page.locator('input[name=rec-published]').check();
        await page.locator('#rec-contact').fill('team@example.com');
        await page.locator('#rec-site').fill('https://example.com/a');
        await page.locator('#rec-when').fill('2024-05-01T10:30');
        await page.locator('#rec-category').selectOption('essay');
        await page.locator('input[name=rec-tags-go]').check();
        await page.locator('input[name=rec-tags-db]').check();
        await page.locator('#rec-meta').fill('{"a": [1, 2], "b": "<script>alert(1)</script>"}');
        await page.locator('input[name=author-search]').click();
        await page.getByRole('option', { name: /ana/ }).click();
        await page.locator('#rec-cover').setInputFiles({ name: 'cover.png', mimeType: 'image/png', buffer: png() });
      }
      await page.getByRole('button', { name: 'Create', exact: true }).click();
      await page.locator('td[data-col=title]', { hasText: title }).first().waitFor();
    };
    await create('Alpha', 10, true);
    await create('Beta', 5);
    await create('Gamma', 20);
    const list = await apiCall('GET', '/api/collections/posts/records?filter=' + encodeURIComponent('title="Alpha"'));
    const alpha = list.body.items[0];
    assert.equal(alpha.published, true);
    assert.deepEqual(alpha.tags, ['go', 'db']);
    assert.equal(alpha.meta.b, '<script>alert(1)</script>');
    assert.match(alpha.cover, /^cover.*\.png$/);
    assert.ok(alpha.author, 'relation set');
    assert.match(alpha.when, /^2024-05-01 /);
    // The uploaded image shows as a thumbnail; the JSON shows as text.
    await page.locator(`tr[data-id="${alpha.id}"] img.thumb`).waitFor();
    assert.match(await page.locator(`tr[data-id="${alpha.id}"] td[data-col=meta]`).innerText(), /<script>/);

    // Keyboard: Enter on a row opens its drawer with focus inside, Escape closes it.
    await page.locator(`tr[data-id="${alpha.id}"]`).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    await page.waitForFunction(() => !!document.activeElement?.closest('[role=dialog]')); // focus moves into the drawer
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });

    // Edit.
    await page.locator(`tr[data-id="${alpha.id}"] td[data-col=title]`).click();
    await page.locator('#rec-title').fill('Alpha edited');
    await shot('record-drawer');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.locator('td[data-col=title]', { hasText: 'Alpha edited' }).waitFor();
    assert.equal((await apiCall('GET', `/api/collections/posts/records/${alpha.id}`)).body.title, 'Alpha edited');

    // Delete one record from its drawer.
    await page.locator('td[data-col=title]', { hasText: 'Beta' }).click();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('button', { name: 'Delete record' }).click();
    await page.locator('td[data-col=title]', { hasText: 'Beta' }).waitFor({ state: 'detached' });
  });

  await t.test('filter and sort', async () => {
    await page.locator('input[name=filter]').fill('views >= 15');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.locator('td[data-col=title]', { hasText: 'Alpha edited' }).waitFor({ state: 'detached' });
    assert.deepEqual(await page.locator('td[data-col=title]').allInnerTexts(), ['Gamma']);
    // A bad filter: the server's error shows inline.
    await page.locator('input[name=filter]').fill('nope >= 1');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.locator('.filterbar .error').waitFor();
    assert.match(await page.locator('.filterbar .error').innerText(), /nope/);
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.locator('td[data-col=title]', { hasText: 'Alpha edited' }).waitFor();
    await page.locator('button.sort[data-col=views]').click();
    await page.waitForFunction(() => [...document.querySelectorAll('td[data-col=title]')].map((e) => e.textContent).join() === 'Alpha edited,Gamma');
    await page.locator('button.sort[data-col=views]').click();
    await page.waitForFunction(() => [...document.querySelectorAll('td[data-col=title]')].map((e) => e.textContent).join() === 'Gamma,Alpha edited');
  });

  await t.test('a record created through the API appears live', async () => {
    const r = await apiCall('POST', '/api/collections/posts/records', { title: 'From the API', views: 99 });
    assert.equal(r.status, 200);
    await page.locator(`tr[data-id="${r.body.id}"]`).waitFor();
    await shot('records');
  });

  await t.test('bulk delete', async () => {
    const before = await page.locator('tbody tr[data-id]').count();
    await page.locator('tbody tr[data-id] input[type=checkbox]').first().check();
    await page.locator('tbody tr[data-id] input[type=checkbox]').nth(1).check();
    await page.getByRole('button', { name: 'Delete selected' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await page.waitForFunction((n) => document.querySelectorAll('tbody tr[data-id]').length === n, before - 2);
  });

  await t.test('column chooser', async () => {
    await page.locator('.colchooser summary').click();
    await page.locator('input[name=col-views]').uncheck();
    await page.locator('th button[data-col=views]').waitFor({ state: 'detached' });
    await page.locator('input[name=col-views]').check();
    await page.locator('th button[data-col=views]').waitFor();
    await page.locator('.colchooser summary').click();
  });

  await t.test('edit a collection after a preview of the change', async () => {
    await page.getByRole('button', { name: 'Edit collection' }).click();
    await page.locator('fieldset[data-field=site] input[name^=field-name-]').fill('website');
    await page.locator('fieldset[data-field=contact]').getByRole('button', { name: 'Remove' }).click();
    await page.locator('.status .ok').waitFor();
    await page.getByRole('button', { name: 'Save changes' }).first().click();
    const dlg = page.getByRole('dialog');
    const text = await dlg.innerText();
    assert.match(text, /Rename field site → website/);
    assert.match(text, /Remove field contact and all its values/);
    await shot('schema-diff');
    await dlg.getByRole('button', { name: 'Apply changes' }).click();
    await page.waitForURL(/#\/collections\/posts$/);
    const col = await apiCall('GET', '/api/collections/posts');
    const names = col.body.fields.map((f) => f.name);
    assert.ok(names.includes('website') && !names.includes('site') && !names.includes('contact'), names.join());
    const rec = await apiCall('GET', '/api/collections/posts/records?filter=' + encodeURIComponent('title="Alpha edited"'));
    assert.equal(rec.body.items[0].website, 'https://example.com/a', 'a renamed field keeps its data');
  });

  await t.test('a view collection: SQL, inferred fields, read-only records', async () => {
    await page.goto(base + '/_/#/new-collection');
    await page.locator('input[name=name]').fill('titles');
    await page.locator('select[name=type]').selectOption('view');
    await page.locator('textarea[name=viewQuery]').fill('SELECT id, title, views FROM posts WHERE');
    await page.locator('.invalid textarea[name=viewQuery], .status .error').first().waitFor();
    await page.locator('textarea[name=viewQuery]').fill('SELECT id, title, views FROM posts');
    await page.getByText(/Inferred fields: .*title \(text\).*views \(number\)/).waitFor();
    await page.locator('input[name=listRule-locked]').uncheck();
    await page.getByRole('button', { name: 'Create' }).first().click();
    await page.waitForURL(/#\/collections\/titles$/);
    await page.locator('td[data-col=title]', { hasText: 'Alpha edited' }).waitFor();
    assert.equal(await page.getByRole('button', { name: '+ New record' }).count(), 0, 'views are read-only');
  });

  await t.test('SMTP settings and a test email', async () => {
    await page.goto(base + '/_/#/settings');
    await page.getByRole('tab', { name: 'Mail (SMTP)' }).click();
    await page.locator('input[name=smtpHost]').fill('127.0.0.1');
    await page.locator('input[name=smtpPort]').fill(String(smtpPort));
    await page.locator('select[name=smtpTLS]').selectOption('none');
    await page.locator('input[name=senderAddress]').fill('dash@example.com');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Saved.').waitFor();
    await page.locator('input[name=testTo]').fill('ops@example.com');
    await page.getByRole('button', { name: 'Send test email' }).click();
    await page.getByText('Test email sent to ops@example.com.').waitFor();
    await shot('settings');
    const m = await waitMail('ops@example.com');
    assert.match(m.raw, /\[test\] Verify your/);
    // Template editor: a draft previewed before saving.
    await page.getByRole('tab', { name: 'Email templates' }).click();
    await page.locator('select[name=editTemplate]').selectOption('passwordReset');
    await page.locator('input[name=tmplSubject]').fill('Reset for {{.AppName}} <b>now</b>');
    await page.locator('#tmpl-html').fill('<p>Hello <i>{{.Email}}</i></p><script>parent.document.title="pwned"</script>');
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.getByText('Reset for Plinth <b>now</b>').waitFor(); // the subject is text, not markup
    await page.frameLocator('iframe[title="HTML preview"]').getByText('Hello someone@example.com').waitFor();
    assert.notEqual(await page.title(), 'pwned', 'the preview runs no script');
    await page.locator('input[name=tmplSubject]').fill('Reset {{.Nope}}');
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.locator('.alert').getByText(/Nope/).waitFor();
    await page.locator('input[name=tmplSubject]').fill('');
    assert.ok(m.raw.includes(base + '/_/#/auth/confirm-verification/test-token'), 'link to the served address');
    // What the server runs with, read-only, and a storage test.
    await page.getByRole('tab', { name: 'Server' }).click();
    await page.getByText('local disk in the data directory').waitFor();
    await page.getByRole('button', { name: 'Test storage connection' }).click();
    await page.getByText('Storage works').waitFor();
  });

  await t.test('an emailed verification link completes on the dashboard page', async () => {
    const r = await fetch(base + '/api/collections/members/request-verification', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email: 'ana@example.com' }) });
    assert.equal(r.status, 204);
    const m = await waitMail('ana@example.com');
    const link = m.raw.match(/(http:\/\/\S+\/_\/#\/auth\/confirm-verification\/[A-Za-z0-9_.\-]+)/)[1];
    const ctx2 = await browser.newContext(); // a fresh browser: no superuser session
    const p2 = await ctx2.newPage();
    await apiCall('PATCH', '/api/settings', { appName: 'Acme Notes' });
    await p2.goto(link);
    await p2.locator('.brand-name', { hasText: 'Acme Notes' }).waitFor(); // the app's name, fetched without signing in
    await p2.getByRole('button', { name: 'Verify' }).click();
    await p2.getByText('Your email is verified.').waitFor();
    await ctx2.close();
    const list = await apiCall('GET', '/api/collections/members/records');
    assert.equal(list.body.items[0].verified, true);
  });

  await t.test('a password reset sent from the record drawer completes on its page', async () => {
    await page.goto(base + '/_/#/collections/members');
    await page.locator('td', { hasText: 'ana@example.com' }).click();
    await page.getByRole('button', { name: 'Send password reset' }).click();
    await page.getByText('Password reset email queued for ana@example.com.').waitFor();
    await page.getByRole('button', { name: 'Impersonate' }).click();
    const imp = await page.getByLabel('Impersonation token').inputValue();
    const claims = JSON.parse(Buffer.from(imp.split('.')[1], 'base64url').toString());
    const ana = (await apiCall('GET', '/api/collections/members/records')).body.items[0];
    assert.equal(claims.id, ana.id, 'an impersonation token of that account');
    const ft = await fetch(base + '/api/files/token', { method: 'POST', headers: { Authorization: 'Bearer ' + imp } });
    assert.equal(ft.status, 200, 'the impersonation token is accepted');
    await page.keyboard.press('Escape');
    const m = await waitMail('ana@example.com');
    const link = m.raw.match(/(http:\/\/\S+\/_\/#\/auth\/confirm-password-reset\/[A-Za-z0-9_.\-]+)/)[1];
    const ctx2 = await browser.newContext();
    const p2 = await ctx2.newPage();
    await p2.goto(link);
    await p2.getByLabel('New password', { exact: true }).fill('brand-new-pass');
    await p2.getByLabel('Confirm new password').fill('other-pass');
    await p2.getByRole('button', { name: 'Confirm' }).click();
    await p2.locator('.error').first().waitFor(); // mismatch shown inline
    await p2.getByLabel('Confirm new password').fill('brand-new-pass');
    await p2.getByRole('button', { name: 'Confirm' }).click();
    await p2.getByText(/Your password was changed/).waitFor();
    await ctx2.close();
    const login = await fetch(base + '/api/collections/members/auth-with-password', { method: 'POST', headers: { 'Content-Type': 'application/json', 'User-Agent': 'e2e-phone' }, body: JSON.stringify({ identity: 'ana@example.com', password: 'brand-new-pass' }) });
    assert.equal(login.status, 200);
    const anaTok = (await login.json()).token;
    const authed = () => fetch(base + '/api/collections/members/sessions', { headers: { Authorization: 'Bearer ' + anaTok } });
    assert.equal((await authed()).status, 200);

    // The superuser sees the account's sessions and ends one.
    await page.locator('td', { hasText: 'ana@example.com' }).click();
    await page.getByRole('button', { name: 'Sessions', exact: true }).click();
    const row = page.locator('table.sessions tr[data-session]', { hasText: 'e2e-phone' });
    await row.waitFor();
    await row.getByRole('button', { name: 'Revoke' }).click();
    await page.getByText('Session ended.').waitFor();
    await row.waitFor({ state: 'detached' });
    assert.equal((await authed()).status, 401, 'the revoked session no longer authenticates');
    await page.keyboard.press('Escape');
  });

  await t.test('delete a collection after a confirm naming what is lost', async () => {
    await apiCall('POST', '/api/collections', { name: 'scratch', fields: [{ name: 'note', type: 'text' }] });
    await apiCall('POST', '/api/collections/scratch/records', { note: 'x' });
    await page.goto(base + '/_/#/collections/scratch/edit');
    await page.reload();
    await page.getByRole('button', { name: 'Delete collection' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.waitFor();
    const text = await dlg.innerText();
    assert.match(text, /scratch/);
    assert.match(text, /1 record/);
    assert.match(text, /note/);
    await dlg.getByRole('button', { name: 'Delete scratch' }).click();
    await page.waitForURL(/#\/collections$/);
    assert.equal((await apiCall('GET', '/api/collections/scratch')).status, 404);
  });

  await t.test('superuser login with MFA: password, then an emailed code', async () => {
    const r = await apiCall('PATCH', '/api/collections/_superusers', { authOptions: { mfa: { enabled: true }, otp: { enabled: true } } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Email').fill('admin@example.com');
    await page.getByLabel('Password').fill('a-long-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('One-time code').waitFor();
    const m = await waitMail('admin@example.com');
    const code = m.raw.match(/code is (\d+)/)[1];
    await page.getByLabel('One-time code').fill(code);
    await page.getByRole('button', { name: 'Verify code' }).click();
    await page.getByRole('link', { name: '+ New collection' }).waitFor();
  });

  await t.test('webhooks: register one, read its delivery log, retry a failed delivery', async () => {
    // A receiver on 127.0.0.1 that refuses until told otherwise.
    let accept = false;
    const got = [];
    const rcv = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (!accept) { res.writeHead(500); res.end('not yet'); return; }
        got.push(JSON.parse(body));
        res.writeHead(204); res.end();
      });
    });
    await new Promise((r) => rcv.listen(0, '127.0.0.1', r));
    try {
      await page.goto(base + '/_/#/webhooks');
      await page.getByRole('button', { name: '+ New webhook' }).click();
      await page.locator('input[name=webhook-url]').fill('ftp://nope');
      await page.locator('input[name=webhook-col-posts]').check();
      await page.getByRole('button', { name: 'Create webhook' }).click();
      await page.getByText('An absolute http or https URL').waitFor(); // the server's own error, inline
      await page.locator('input[name=webhook-url]').fill(`http://127.0.0.1:${rcv.address().port}/in`);
      await page.locator('input[name=webhook-action-delete]').uncheck();
      await page.getByRole('button', { name: 'Create webhook' }).click();
      const secret = await page.locator('code.secret').innerText();
      assert.match(secret, /^whsec_/);
      await page.getByRole('button', { name: 'Done' }).click();
      const hooks = await apiCall('GET', '/api/webhooks');
      assert.deepEqual(hooks.body.items[0].actions, ['create', 'update']);
      const rec = await apiCall('POST', '/api/collections/posts/records', { title: 'hooked', views: 1 });
      assert.equal(rec.status, 200, JSON.stringify(rec.body));
      await page.getByRole('button', { name: 'Deliveries' }).click();
      await page.locator('tr.delivery.pending td.err', { hasText: '500' }).waitFor({ timeout: 15000 });
      await shot('webhooks');
      accept = true;
      await page.getByRole('button', { name: 'Retry now' }).click();
      await page.locator('tr.delivery.delivered').waitFor({ timeout: 15000 });
      assert.equal(got.length, 1);
      assert.equal(got[0].record.title, 'hooked');
    } finally {
      rcv.close();
    }
  });

  await t.test('tablet width: pages fit without sideways scrolling', async () => {
    await page.setViewportSize({ width: 820, height: 1180 });
    try {
      for (const h of ['#/collections/posts', '#/collections/posts/edit', '#/settings', '#/webhooks']) {
        await page.goto(base + '/_/' + h);
        await page.locator('main.content h2, main.content table, main.content form').first().waitFor();
        const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(over <= 1, `${h} is ${over}px wider than a tablet screen`);
        if (h === '#/collections/posts') await shot('tablet-records');
      }
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });

  await t.test('collections list screenshot and no CSP violations or external requests', async () => {
    await page.goto(base + '/_/#/collections/posts/edit');
    await page.locator('.status .ok').waitFor();
    await shot('collection-editor');
    assert.deepEqual(problems, []);
  });
});
