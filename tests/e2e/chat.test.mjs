// End-to-end test of the web client against the real server.
//
// It starts `build/parley` (or $PARLEY_BUILD_DIR/parley, or $PARLEY_BIN)
// itself on a free port of 127.0.0.1 with a fresh data directory, serving web/dist (or $PARLEY_STATIC), waits for
// GET /healthz, drives two users in two separate headless Chromium
// profiles (Debian's /usr/bin/chromium or $CHROMIUM_BIN, never a
// downloaded browser) through the scenario, restarts the server on
// the same port and data directory, and stops it at the end, checking that
// it exited cleanly and printed no sanitizer report.
// With $PARLEY_URL it uses a server that is already running instead (the
// restart scenario is then skipped).
//
// Screenshots go to tests/artifacts/ (git-ignored). With
// UPDATE_DOCS_SCREENSHOT=1 the main chat screen is also written to
// docs/screenshot.png. Any console error on a page fails the run, except
// network errors while the server is deliberately down.
//
//   make deps-test all web && scripts/test.sh e2e

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ARTIFACTS = path.join(ROOT, 'tests', 'artifacts');
const DOCS_SCREENSHOT = path.join(ROOT, 'docs', 'screenshot.png');
const BIN = process.env.PARLEY_BIN || path.resolve(ROOT, process.env.PARLEY_BUILD_DIR || 'build', 'parley');
const STATIC = process.env.PARLEY_STATIC || path.join(ROOT, 'web', 'dist');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const EXTERNAL_URL = process.env.PARLEY_URL || null;
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };
const STEP_TIMEOUT = 15_000;

// ---------------------------------------------------------------------------
// server

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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class ParleyServer {
  constructor(bin, port, dataDir) {
    this.bin = bin;
    this.port = port;
    this.dataDir = dataDir;
    this.proc = null;
    this.log = '';
    /** How each run ended: { code, signal, stopped } (stopped: we sent SIGTERM). */
    this.exits = [];
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    const args = ['--host', '127.0.0.1', '--port', String(this.port), '--static', STATIC, '--data', this.dataDir];
    const proc = spawn(this.bin, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    const keep = (chunk) => {
      this.log = (this.log + chunk.toString()).slice(-64 * 1024);
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    let exited = null;
    proc.on('exit', (code, signal) => {
      exited = { code, signal, stopped: proc.stopping === true };
      this.exits.push(exited);
    });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`parley exited during start-up (${JSON.stringify(exited)}):\n${this.log}`);
      try {
        const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) });
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`parley did not answer GET /healthz within 20 s:\n${this.log}`);
  }

  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.stopping = true;
    proc.kill('SIGTERM');
    const timedOut = await Promise.race([gone.then(() => false), sleep(5000).then(() => true)]);
    if (timedOut) {
      proc.kill('SIGKILL');
      await gone;
    }
    this.proc = null;
  }
}

// ---------------------------------------------------------------------------
// browser

/** Console errors seen on any page; network noise is tolerated only during a planned outage. */
const consoleErrors = [];
let outage = false;
const NETWORK_NOISE = /ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|WebSocket connection to .* failed|Failed to load resource|net::ERR_/;

async function openUser(name) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), `parley-e2e-${name.toLowerCase()}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: DESKTOP,
    locale: 'en-US',
    colorScheme: 'light',
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    if (outage && NETWORK_NOISE.test(text)) return;
    consoleErrors.push(`[${name}] console.error: ${text}`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`[${name}] uncaught: ${err.message}`));
  return { name, profile, context, page };
}

async function closeUser(u) {
  if (!u) return;
  await u.context.close().catch(() => {});
  fs.rmSync(u.profile, { recursive: true, force: true });
}

/** Retries `check` until it stops throwing (an assertion that waits). */
async function eventually(check, timeout = STEP_TIMEOUT, what = 'condition') {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const err = new Error(`timed out after ${timeout} ms waiting for ${what}: ${last?.message ?? last}`);
      err.cause = last;
      throw err;
    }
    await sleep(100);
  }
}

async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

// Page helpers (selectors follow the accessible names, plus data-* hooks).
const nav = (page) => page.getByRole('navigation', { name: 'Conversations' });
const composer = (page) => page.locator('.composer textarea');
const status = (page) => page.locator('.status').getAttribute('data-status');
const roomRow = (page, room) => page.locator(`li[data-room="${room}"]`);
const dmRow = (page, peer) => page.locator(`li[data-peer="${peer}"]`);
/** A joined room in the conversation list (v2 server). */
const joinedRoom = (page, room) => page.locator(`ul.conversations li[data-room="${room}"]`);
const title = (page) => page.locator('#conversation-title').textContent();

/** The confirmed messages of the open conversation: [{id, from, own, text}]. */
function messages(page) {
  return page.$$eval('.conversation li.msg[data-id]', (els) =>
    els.map((el) => ({
      id: el.getAttribute('data-id'),
      own: el.getAttribute('data-own') === 'true',
      from: el.querySelector('.msg-from')?.textContent ?? '',
      text: el.querySelector('.msg-body')?.textContent ?? '',
    })),
  );
}
const texts = async (page) => (await messages(page)).map((m) => m.text);
const pendingCount = (page) => page.locator('.conversation li.msg.pending').count();

async function unread(page, row) {
  const badge = row.locator('.badge');
  return (await badge.count()) === 0 ? 0 : Number(await badge.getAttribute('data-unread'));
}

async function signIn(page, name) {
  await page.getByLabel('Username').fill(name);
  await page.getByRole('button', { name: 'Join', exact: true }).click();
}

async function send(page, text) {
  await composer(page).fill(text);
  await composer(page).press('Enter');
}

async function openRoom(page, room) {
  await roomRow(page, room).locator('.conv-button').click();
  await eventually(async () => assert.equal(await title(page), `# ${room}`), STEP_TIMEOUT, `room ${room} open`);
}

async function waitConnected(page, timeout = 30_000) {
  await eventually(async () => assert.equal(await status(page), 'connected'), timeout, 'status connected');
}

function assertUnique(list, what) {
  const ids = list.map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length, `duplicate message ids in ${what}: ${ids.join(',')}`);
}

// ---------------------------------------------------------------------------
// the scenario (tests run in order and share the two users)

let server = null;
let dataDir = null;
let baseUrl = EXTERNAL_URL;
let alice = null;
let bob = null;

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing (Debian package chromium: make deps-test installs it)`);
  if (!EXTERNAL_URL) {
    assert.ok(fs.existsSync(BIN), `${BIN} is missing: build it with make (or set PARLEY_BIN / PARLEY_URL)`);
    assert.ok(fs.existsSync(path.join(STATIC, 'index.html')), `${STATIC}/index.html is missing: run make web`);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-e2e-data-'));
    server = new ParleyServer(BIN, await freePort(), dataDir);
    await server.start();
    baseUrl = server.url;
  }
  alice = await openUser('Alice');
  bob = await openUser('Bob');
});

after(async () => {
  await closeUser(alice);
  await closeUser(bob);
  if (server) {
    await server.stop();
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    fs.writeFileSync(path.join(ARTIFACTS, 'parley.log'), server.log);
  }
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test('sign in: a taken name is refused in place, then both users are online', async () => {
  await alice.page.goto(baseUrl);
  await alice.page.getByLabel('Username').waitFor();
  await waitConnected(alice.page);
  await shot(alice.page, '01-login');
  await signIn(alice.page, 'Alice');
  await nav(alice.page).waitFor();

  await bob.page.goto(baseUrl);
  await signIn(bob.page, 'alice'); // the same name, case-folded
  const error = bob.page.locator('.login [role="alert"]');
  await error.waitFor();
  assert.equal(await error.getAttribute('data-code'), 'username_taken');
  assert.notEqual((await error.textContent()).trim(), '');
  assert.equal(await bob.page.getByLabel('Username').getAttribute('aria-invalid'), 'true');
  await shot(bob.page, '02-login-taken');

  await signIn(bob.page, 'Bob');
  await nav(bob.page).waitFor();
  for (const [u, other] of [
    [alice, 'Bob'],
    [bob, 'Alice'],
  ]) {
    await u.page.locator(`li[data-user="${other}"]`).waitFor();
    assert.equal(await u.page.locator('.whoami-name').textContent(), `Signed in as ${u.name}`);
  }
});

test('rooms: create, join, live member counts', async () => {
  await alice.page.getByPlaceholder('New room name').fill('general');
  await alice.page.getByRole('button', { name: 'Create', exact: true }).click();
  await eventually(async () => assert.equal(await title(alice.page), '# general'), STEP_TIMEOUT, 'general open');
  // Focus moves to the message box when a conversation opens.
  assert.equal(await alice.page.evaluate(() => document.activeElement?.tagName), 'TEXTAREA');

  await eventually(
    async () => assert.equal(await roomRow(bob.page, 'general').locator('[data-members]').getAttribute('data-members'), '1'),
    STEP_TIMEOUT,
    'bob sees general with 1 member',
  );
  await openRoom(bob.page, 'general');
  // A v2 server (this one) lists joined rooms with the private chats, as
  // conversations (no member count there); the rooms list keeps only the
  // rooms one may still join.
  for (const u of [alice, bob]) {
    await eventually(
      async () => assert.equal(await joinedRoom(u.page, 'general').count(), 1),
      STEP_TIMEOUT,
      `${u.name} has general among its conversations`,
    );
  }
});

test('messages go both ways, own ones are marked, Shift+Enter makes a new line', async () => {
  await send(alice.page, 'Hello Bob! Welcome to Parley.');
  await eventually(async () => assert.deepEqual(await texts(bob.page), ['Hello Bob! Welcome to Parley.']), STEP_TIMEOUT, 'bob receives');

  await composer(bob.page).click();
  await bob.page.keyboard.type('Hi Alice, thanks!');
  await bob.page.keyboard.press('Shift+Enter');
  await bob.page.keyboard.type('Second line of the same message.');
  await bob.page.keyboard.press('Enter');
  const multi = 'Hi Alice, thanks!\nSecond line of the same message.';
  await eventually(async () => assert.deepEqual((await texts(alice.page)).at(-1), multi), STEP_TIMEOUT, 'alice receives');

  await send(alice.page, 'Shall we test the private chat next?');
  await eventually(async () => assert.equal((await texts(bob.page)).length, 3), STEP_TIMEOUT, 'bob has 3');

  const a = await messages(alice.page);
  const b = await messages(bob.page);
  assert.deepEqual(a.map((m) => m.own), [true, false, true]);
  assert.deepEqual(b.map((m) => m.own), [false, true, false]);
  assert.deepEqual(a.map((m) => m.id), b.map((m) => m.id), 'same messages, same order, for both');
  assertUnique(a, 'alice general');
  assert.equal(await pendingCount(alice.page), 0);
  // Timestamps are machine-readable and shown in the reader's locale.
  const dt = await alice.page.locator('.conversation li.msg time').first().getAttribute('datetime');
  assert.ok(!Number.isNaN(Date.parse(dt)));

  await shot(alice.page, '03-room-desktop');
  if (process.env.UPDATE_DOCS_SCREENSHOT === '1') {
    fs.mkdirSync(path.dirname(DOCS_SCREENSHOT), { recursive: true });
    await alice.page.screenshot({ path: DOCS_SCREENSHOT });
  }
});

test('content and names are text, never HTML; long words wrap', async () => {
  const evil = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold?</b>';
  const long = 'W'.repeat(400);
  await send(alice.page, evil);
  await send(alice.page, long);
  await eventually(async () => assert.deepEqual((await texts(bob.page)).slice(-2), [evil, long]), STEP_TIMEOUT, 'bob gets both');
  for (const u of [alice, bob]) {
    assert.equal(await u.page.evaluate(() => window.__xss), undefined);
    assert.equal(await u.page.locator('.messages img, .messages script, .messages b').count(), 0);
    const overflow = await u.page.$eval('.messages', (el) => el.scrollWidth - el.clientWidth);
    assert.ok(overflow <= 0, `${u.name}: the message list scrolls sideways by ${overflow}px`);
  }
});

test('private chat: unread badge, history on open, typing indicator', async () => {
  // Alice opens a private chat from the online list; Bob stays in the room.
  await alice.page.getByRole('button', { name: 'Chat privately with Bob' }).click();
  await eventually(async () => assert.equal(await title(alice.page), 'Bob'), STEP_TIMEOUT, 'dm open');
  await send(alice.page, 'psst, Bob: this one is private');

  const row = dmRow(bob.page, 'Alice');
  await eventually(async () => assert.equal(await unread(bob.page, row), 1), STEP_TIMEOUT, 'bob dm badge 1');
  await send(alice.page, 'and a second one');
  await eventually(async () => assert.equal(await unread(bob.page, row), 2), STEP_TIMEOUT, 'bob dm badge 2');
  assert.equal(await bob.page.title(), '(2) Parley');
  await shot(bob.page, '04-unread-badge');

  await row.locator('.conv-button').click();
  await eventually(
    async () => assert.deepEqual(await texts(bob.page), ['psst, Bob: this one is private', 'and a second one']),
    STEP_TIMEOUT,
    'bob sees the dm',
  );
  assert.equal(await unread(bob.page, row), 0);

  // Bob types without sending: Alice sees it; it goes away when he sends.
  await composer(bob.page).click();
  await bob.page.keyboard.type('I am typing slowly');
  const typing = alice.page.locator('.conversation .typing');
  await eventually(async () => assert.equal((await typing.textContent()).trim(), 'Bob is typing...'), STEP_TIMEOUT, 'typing shown');
  await shot(alice.page, '05-typing');
  await bob.page.keyboard.press('Enter');
  await eventually(async () => assert.equal((await typing.textContent()).trim(), ''), STEP_TIMEOUT, 'typing cleared');
  await eventually(async () => assert.equal((await texts(alice.page)).at(-1), 'I am typing slowly'), STEP_TIMEOUT, 'reply');

  // Room unread while Bob is in the private chat.
  await openRoom(alice.page, 'general');
  await send(alice.page, 'ping in the room');
  const general = roomRow(bob.page, 'general');
  await eventually(async () => assert.equal(await unread(bob.page, general), 1), STEP_TIMEOUT, 'bob room badge');
  await shot(bob.page, '06-private-chat');
  await openRoom(bob.page, 'general');
  assert.equal(await unread(bob.page, general), 0);
  await eventually(async () => assert.equal((await texts(bob.page)).at(-1), 'ping in the room'), STEP_TIMEOUT, 'room ping');
});

test('history: infinite scroll upward loads older pages without duplicates', async () => {
  const N = 56; // more than one page of 50
  await alice.page.getByPlaceholder('New room name').fill('archive');
  await alice.page.getByRole('button', { name: 'Create', exact: true }).click();
  await eventually(async () => assert.equal(await title(alice.page), '# archive'), STEP_TIMEOUT, 'archive open');
  for (let i = 1; i <= N; i++) {
    await send(alice.page, `archived message ${i}`);
    await sleep(120); // stay near the server's rate limit; the client retries if refused
  }
  const expected = Array.from({ length: N }, (_, i) => `archived message ${i + 1}`);
  await eventually(
    async () => {
      assert.equal(await pendingCount(alice.page), 0);
      assert.deepEqual(await texts(alice.page), expected);
    },
    60_000,
    'all archive messages stored',
  );

  await eventually(async () => assert.ok((await roomRow(bob.page, 'archive').count()) === 1), STEP_TIMEOUT, 'archive listed');
  await openRoom(bob.page, 'archive');
  await eventually(async () => assert.equal((await texts(bob.page)).at(-1), `archived message ${N}`), STEP_TIMEOUT, 'latest page');
  const firstPage = await texts(bob.page);
  assert.ok(firstPage.length < N, `the first page should not hold everything (${firstPage.length})`);
  assert.deepEqual(firstPage, expected.slice(N - firstPage.length));

  await eventually(
    async () => {
      await bob.page.$eval('.messages', (el) => {
        el.scrollTop = 0;
      });
      assert.deepEqual(await texts(bob.page), expected);
    },
    STEP_TIMEOUT,
    'older page loaded by scrolling up',
  );
  assertUnique(await messages(bob.page), 'bob archive');
  assert.equal(await bob.page.locator('.older').count(), 0, 'no more to load');
});

test('reload: the page signs back in and shows the history', async () => {
  await openRoom(bob.page, 'general');
  const before = await messages(bob.page);
  await bob.page.reload();
  await nav(bob.page).waitFor({ timeout: 20_000 });
  await waitConnected(bob.page);
  await eventually(async () => assert.equal(await title(bob.page), '# general'), STEP_TIMEOUT, 'general restored');
  await eventually(
    async () => assert.deepEqual((await messages(bob.page)).map((m) => m.id), before.map((m) => m.id)),
    STEP_TIMEOUT,
    'same history after reload',
  );
  assert.equal(await bob.page.locator('.whoami-name').textContent(), 'Signed in as Bob');
  // The private chat is still listed and its history comes back when opened.
  await dmRow(bob.page, 'Alice').locator('.conv-button').click();
  await eventually(
    async () => assert.deepEqual((await texts(bob.page)).slice(0, 2), ['psst, Bob: this one is private', 'and a second one']),
    STEP_TIMEOUT,
    'dm history after reload',
  );
  await shot(bob.page, '07-after-reload');
  await openRoom(bob.page, 'general');
  // Still a member after the reload (membership is the user's, v2).
  await eventually(
    async () => assert.equal(await joinedRoom(bob.page, 'general').count(), 1),
    STEP_TIMEOUT,
    'bob back in general',
  );
});

test('server restart: clients reconnect, a message typed offline is delivered once', async (t) => {
  if (!server) {
    t.skip('PARLEY_URL is set: the test cannot restart a server it did not start');
    return;
  }
  await openRoom(alice.page, 'general');
  const before = await messages(bob.page);

  outage = true;
  await server.stop();
  for (const u of [alice, bob]) {
    await eventually(async () => assert.notEqual(await status(u.page), 'connected'), STEP_TIMEOUT, `${u.name} sees the drop`);
  }
  await shot(alice.page, '08-reconnecting');

  await send(alice.page, 'typed while the server was down');
  const queued = alice.page.locator('.conversation li.msg.pending');
  await queued.waitFor();
  assert.equal((await queued.textContent()).includes('typed while the server was down'), true);

  await server.start();
  await waitConnected(alice.page);
  await waitConnected(bob.page);
  outage = false;

  for (const u of [alice, bob]) {
    await eventually(
      async () => {
        const list = await messages(u.page);
        assertUnique(list, `${u.name} after restart`);
        assert.deepEqual(
          list.map((m) => m.id),
          [...before.map((m) => m.id), list.at(-1).id],
          'history kept, one new message',
        );
        assert.equal(list.at(-1).text, 'typed while the server was down');
        assert.equal(await pendingCount(u.page), 0);
      },
      20_000,
      `${u.name} has the offline message once`,
    );
  }
  // Still a working chat both ways.
  await send(bob.page, 'back online');
  await eventually(async () => assert.equal((await texts(alice.page)).at(-1), 'back online'), STEP_TIMEOUT, 'after restart');
  await sleep(1500); // a late duplicate would show up here
  assertUnique(await messages(alice.page), 'alice general, settled');
  assert.equal((await texts(alice.page)).filter((x) => x === 'typed while the server was down').length, 1);
});

test('phone width (360 px) and dark mode', async () => {
  await bob.page.setViewportSize(PHONE);
  await eventually(async () => assert.equal(await title(bob.page), '# general'), STEP_TIMEOUT, 'conversation shown');
  const overflow = () => bob.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok((await overflow()) <= 0, 'no sideways scrolling in the conversation');
  assert.equal(await nav(bob.page).isVisible(), false, 'one pane at a time');
  await shot(bob.page, '09-phone-conversation');

  await bob.page.getByRole('button', { name: 'Back to conversations' }).click();
  await nav(bob.page).waitFor();
  assert.ok((await overflow()) <= 0, 'no sideways scrolling in the list');
  // Focus returns to the conversation we came from.
  assert.equal(
    await bob.page.evaluate(() => document.activeElement?.closest('li')?.getAttribute('data-room')),
    'general',
  );
  await shot(bob.page, '10-phone-list');
  await bob.page.setViewportSize(DESKTOP);

  const light = await alice.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await alice.page.emulateMedia({ colorScheme: 'dark' });
  const dark = await alice.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.notEqual(light, dark, 'the page follows the system colour scheme');
  await shot(alice.page, '11-dark');
  await alice.page.emulateMedia({ colorScheme: 'light' });
});

test('keyboard: a room can be opened and a message sent without the mouse', async () => {
  await alice.page.getByRole('button', { name: 'Chat privately with Bob' }).focus();
  await alice.page.keyboard.press('Enter');
  await eventually(async () => assert.equal(await title(alice.page), 'Bob'), STEP_TIMEOUT, 'dm by keyboard');
  assert.equal(await alice.page.evaluate(() => document.activeElement?.tagName), 'TEXTAREA');
  await alice.page.keyboard.type('sent with the keyboard only');
  await alice.page.keyboard.press('Enter');
  await dmRow(bob.page, 'Alice').waitFor();
  await eventually(async () => assert.equal(await unread(bob.page, dmRow(bob.page, 'Alice')), 1), STEP_TIMEOUT, 'kbd dm arrives');
});

test('no console errors on any page', () => {
  assert.deepEqual(consoleErrors, []);
});

// Lines a sanitizer prints when it finds something (ASan, LSan, UBSan).
const SANITIZER = /AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|ThreadSanitizer|runtime error:/;

test('the server stops cleanly and printed no sanitizer report', async (t) => {
  if (!server) {
    t.skip('PARLEY_URL is set: not our server');
    return;
  }
  await server.stop();
  const report = server.log.split('\n').find((line) => SANITIZER.test(line));
  assert.equal(report, undefined, `sanitizer report:\n${server.log}`);
  for (const e of server.exits) {
    assert.ok(e.stopped, `parley exited on its own: ${JSON.stringify(e)}\n${server.log}`);
    assert.ok(e.code === 0 || e.signal === 'SIGTERM', `parley did not exit cleanly: ${JSON.stringify(e)}\n${server.log}`);
  }
});
