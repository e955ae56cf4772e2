// End-to-end tests of the web client's contract v2 part 1 (issue #13):
// guest identities kept across reloads and tabs by the resume token, the
// conversation list with unread counts and previews, read state shared by a
// user's tabs, private messages to users who are offline, and sign-out.
//
// They need a server that speaks contract v2 (resume token in the
// user:join ack, CONNECT auth by that token, conversations:list, read:mark
// and read:update, message:private to offline users), which the server in
// this tree does (V2_MISSING false: nothing is skipped).
//
// Like chat.test.mjs it starts build/parley (or $PARLEY_BIN) on a free port
// with a fresh data directory, or uses $PARLEY_URL, and drives headless
// Chromium profiles (Debian's /usr/bin/chromium or $CHROMIUM_BIN). The
// server and the browsers are started by the first test that runs, so a
// run where everything is skipped starts nothing.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

/** Why these tests do not run yet (false once the server speaks contract v2). */
const V2_MISSING = false;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.PARLEY_BIN || path.resolve(ROOT, process.env.PARLEY_BUILD_DIR || 'build', 'parley');
const STATIC = process.env.PARLEY_STATIC || path.join(ROOT, 'web', 'dist');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'];
const STEP_TIMEOUT = 15_000;
const IDENTITY_KEY = 'parley.identity';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function eventually(check, what, timeout = STEP_TIMEOUT) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${e?.message ?? e}`);
    }
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------
// the server and the browsers, started on first use

const env = { proc: null, dataDir: null, url: process.env.PARLEY_URL || null, log: '', contexts: [] };
const consoleErrors = [];

async function setup() {
  if (env.url) return env.url;
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: build it with make (or set PARLEY_BIN / PARLEY_URL)`);
  assert.ok(fs.existsSync(path.join(STATIC, 'index.html')), `${STATIC}/index.html is missing: run make web`);
  env.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-e2e-v2-'));
  const port = await freePort();
  const args = ['--host', '127.0.0.1', '--port', String(port), '--static', STATIC, '--data', env.dataDir];
  env.proc = spawn(BIN, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (c) => {
    env.log = (env.log + c.toString()).slice(-64 * 1024);
  };
  env.proc.stdout.on('data', keep);
  env.proc.stderr.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  await eventually(async () => {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
    assert.equal(res.status, 200);
  }, 'GET /healthz', 20_000);
  env.url = url;
  return url;
}

/** A browser profile (its own localStorage): one person's browser. */
async function browser(name) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), `parley-e2e-v2-${name.toLowerCase()}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
    locale: 'en-US',
  });
  env.contexts.push({ context, profile });
  return { name, context, tab: () => openTab(context, name) };
}

async function openTab(context, name) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(`[${name}] ${msg.text()}`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`[${name}] uncaught: ${err.message}`));
  await page.goto(env.url);
  return page;
}

after(async () => {
  for (const { context, profile } of env.contexts) {
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  if (env.proc && env.proc.exitCode === null) {
    const gone = new Promise((r) => env.proc.once('exit', r));
    env.proc.kill('SIGTERM');
    await gone;
  }
  if (env.dataDir) fs.rmSync(env.dataDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// page helpers (accessible names and the data-* hooks of the components)

const list = (page) => page.getByRole('list', { name: 'Recent conversations' });
/** The v2 sidebar is shown (the list itself only once there is a conversation). */
const v2Sidebar = (page) => page.getByLabel('New message to').waitFor();
const row = (page, key) => list(page).locator(`li[data-conv="${key}"]`);
const title = (page) => page.locator('#conversation-title').textContent();
const composer = (page) => page.locator('.composer textarea');

/** The row's unread counter (0 without a badge), read in one step so a badge going away cannot stall it. */
async function unread(locator) {
  return locator.evaluate((el) => Number(el.querySelector('.badge')?.getAttribute('data-unread') ?? 0));
}

async function signIn(page, name) {
  await page.getByLabel('Username').fill(name);
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  await v2Sidebar(page);
}

async function send(page, text) {
  await composer(page).fill(text);
  await composer(page).press('Enter');
}

async function writeTo(page, name) {
  await page.getByLabel('New message to').fill(name);
  await page.getByRole('button', { name: 'Write', exact: true }).click();
  await eventually(async () => assert.equal(await title(page), name), `conversation with ${name} open`);
}

const texts = (page) => page.$$eval('.conversation li.msg[data-id] .msg-body', (els) => els.map((e) => e.textContent));

// ---------------------------------------------------------------------------
// the scenario (in order)

let alice = null;
let bob = null;

test('a guest keeps its identity across a reload and in a second tab', { skip: V2_MISSING }, async () => {
  await setup();
  alice = await browser('Alice');
  const page = await alice.tab();
  await signIn(page, 'Alice');
  const stored = JSON.parse(await page.evaluate((k) => localStorage.getItem(k), IDENTITY_KEY));
  assert.equal(stored.username, 'Alice');
  assert.ok(typeof stored.token === 'string' && stored.token.length > 0);

  await page.getByPlaceholder('New room name').fill('general');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await eventually(async () => assert.equal(await title(page), '# general'), 'general open');
  await send(page, 'first');

  await page.reload();
  await list(page).waitFor();
  assert.equal(await page.getByLabel('Username').count(), 0, 'no sign-in form after a reload');
  assert.equal(await page.locator('.whoami-name').textContent(), 'Signed in as Alice');
  await eventually(async () => assert.deepEqual(await texts(page), ['first']), 'history after reload');

  const second = await alice.tab();
  await list(second).waitFor();
  assert.equal(await second.locator('.whoami-name').textContent(), 'Signed in as Alice');
  await row(second, 'room:general').waitFor();
  await second.close();
});

test('a private message to a user who is offline waits in their conversation list', { skip: V2_MISSING }, async () => {
  const page = alice.context.pages().at(-1);
  await page.close(); // Alice is offline now
  bob = await browser('Bob');
  const b = await bob.tab();
  await signIn(b, 'Bob');
  await writeTo(b, 'Alice');
  await send(b, 'are you there, Alice?');
  await eventually(async () => assert.deepEqual(await texts(b), ['are you there, Alice?']), 'stored and shown');

  const a = await alice.tab();
  await list(a).waitFor();
  const dm = row(a, 'dm:bob');
  await eventually(async () => assert.equal(await unread(dm), 1), 'unread 1 for Bob');
  assert.match(await dm.textContent(), /are you there, Alice\?/);
  assert.equal(await list(a).locator('li').first().getAttribute('data-conv'), 'dm:bob', 'most recent first');
});

test('a name no user owns is refused when writing to it', { skip: V2_MISSING }, async () => {
  const b = bob.context.pages().at(-1);
  await writeTo(b, 'Nobody-at-all');
  await send(b, 'hello?');
  await eventually(
    async () => assert.equal(await b.locator('.msg.pending .field-error').textContent(), 'No user is called “Nobody-at-all”.'),
    'user_not_found shown',
  );
});

test('reading in one tab clears the badge in the other (read:update)', { skip: V2_MISSING }, async () => {
  const a1 = alice.context.pages().at(-1);
  const a2 = await alice.tab();
  await list(a2).waitFor();
  await eventually(async () => assert.equal(await unread(row(a2, 'dm:bob')), 1), 'second tab sees unread 1');
  await row(a1, 'dm:bob').locator('.conv-button').click();
  await eventually(async () => assert.deepEqual(await texts(a1), ['are you there, Alice?']), 'dm open');
  await eventually(async () => assert.equal(await unread(row(a2, 'dm:bob')), 0), 'badge cleared in the other tab');
  await a2.reload();
  await list(a2).waitFor();
  await sleep(1000);
  assert.equal(await unread(row(a2, 'dm:bob')), 0, 'the server kept the read state');
  await a2.close();
});

test('sign-out asks first, says the name stays reserved, and it does', { skip: V2_MISSING }, async () => {
  const a = alice.context.pages().at(-1);
  await a.getByRole('button', { name: 'Sign out' }).click();
  const panel = a.getByRole('group', { name: 'Sign out' });
  assert.match(await panel.textContent(), /stays yours for the guest lifetime/);
  await panel.getByRole('button', { name: 'Sign out' }).click();
  await a.getByLabel('Username').waitFor();
  assert.match(await a.locator('[data-farewell="kept"]').textContent(), /“Alice” stays reserved/);
  assert.equal(await a.evaluate((k) => localStorage.getItem(k), IDENTITY_KEY), null);
  await a.getByLabel('Username').fill('Alice');
  await a.getByRole('button', { name: 'Join', exact: true }).click();
  const error = a.locator('.login [role="alert"]');
  await error.waitFor();
  assert.equal(await error.getAttribute('data-code'), 'username_taken');
});

test('a token the server refuses is dropped and the form comes back with the name', { skip: V2_MISSING }, async () => {
  const a = alice.context.pages().at(-1);
  await a.evaluate((k) => localStorage.setItem(k, JSON.stringify({ id: 'x', username: 'Mallory', token: 'forged' })), IDENTITY_KEY);
  await a.reload();
  await a.getByLabel('Username').waitFor();
  assert.equal(await a.getByLabel('Username').inputValue(), 'Mallory');
  assert.equal(await a.locator('.login [role="alert"]').getAttribute('data-code'), 'session_expired');
  assert.equal(await a.evaluate((k) => localStorage.getItem(k), IDENTITY_KEY), null);
});

test('no console errors on any page', { skip: V2_MISSING }, () => {
  // The refused CONNECT of the forged token is the one expected network error.
  assert.deepEqual(consoleErrors.filter((e) => !/unauthorized|Failed to load resource/.test(e)), []);
});
