// Shared set-up of the contract v2 part 2 end-to-end tests
// (v2-messages.test.mjs, v2-rooms.test.mjs): the server, one browser
// profile per person, and page helpers that find things by role, label and
// the data-* hooks of the web components. Not a test file itself (node
// --test runs *.test.mjs only).
//
// Like v2-identity.test.mjs it starts build/parley (or $PARLEY_BIN) on a
// free port with a fresh data directory, or uses $PARLEY_URL, and drives
// headless Chromium ($CHROMIUM_BIN, default /usr/bin/chromium). Nothing
// starts until a test calls setup(), so a file whose tests are all skipped
// starts nothing.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.PARLEY_BIN || path.resolve(ROOT, process.env.PARLEY_BUILD_DIR || 'build', 'parley');
const STATIC = process.env.PARLEY_STATIC || path.join(ROOT, 'web', 'dist');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'];
export const STEP_TIMEOUT = 15_000;

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

/** Retries `check` until it passes or `timeout` ms have gone by. */
export async function eventually(check, what, timeout = STEP_TIMEOUT) {
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

const env = { proc: null, dataDir: null, url: process.env.PARLEY_URL || null, log: '', contexts: [] };
export const consoleErrors = [];

/** Starts the server once (unless $PARLEY_URL); returns its URL. */
export async function setup() {
  if (env.url) return env.url;
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: build it with make (or set PARLEY_BIN / PARLEY_URL)`);
  assert.ok(fs.existsSync(path.join(STATIC, 'index.html')), `${STATIC}/index.html is missing: run make web`);
  env.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-e2e-v2b-'));
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

/** One person: a browser profile of its own, with one tab on the app. */
export async function person(name) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), `parley-e2e-v2b-${name.toLowerCase()}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
    locale: 'en-US',
  });
  env.contexts.push({ context, profile });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(`[${name}] ${msg.text()}`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`[${name}] uncaught: ${err.message}`));
  await page.goto(env.url);
  await page.getByLabel('Username').fill(name);
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  await page.getByLabel('New message to').waitFor(); // the v2 sidebar
  return { name, page };
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

// ---- page helpers ----

export const title = (page) => page.locator('#conversation-title').textContent();
export const composer = (page) => page.locator('.composer textarea');
export const notice = (page) => page.locator('.notice[role="alert"]');

export async function send(page, text) {
  await composer(page).fill(text);
  await composer(page).press('Enter');
}

/** Creates (or joins) a room from the sidebar form and waits until it is open. */
export async function createRoom(page, name, { private: priv = false, topic = '' } = {}) {
  await page.getByPlaceholder('New room name').fill(name);
  if (priv) await page.getByLabel('Private (invitation only)').check();
  if (topic) await page.getByPlaceholder('Topic (optional)').fill(topic);
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await eventually(async () => assert.equal(await title(page), `# ${name}`), `# ${name} open`);
}

/** Joins a listed room from the rooms section and waits until it is open. */
export async function joinListed(page, name) {
  await page.locator(`li[data-room="${name}"] .conv-button`).click();
  await eventually(async () => assert.equal(await title(page), `# ${name}`), `# ${name} joined`);
}

/** The confirmed message of the open conversation whose body has `text`. */
export const message = (page, text) => page.locator('.conversation li.msg[data-id]').filter({ has: page.locator('.msg-body', { hasText: text }) });

export const bodies = (page) => page.$$eval('.conversation li.msg[data-id] .msg-body', (els) => els.map((e) => e.textContent));
