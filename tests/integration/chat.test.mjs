// chat.test.mjs - the chat contract (docs/PROTOCOL.md)
// against the real build/parley (or $PARLEY_BUILD_DIR/parley), driven by
// socket.io-client: every row of the contract's event tables, every error
// code with and without an ack, the precedence of errors, malformed payloads
// of every JSON type for every event, username and content rules, token
// mode, presence coalescing, clientId de-duplication, a store failure, and
// a SIGKILL + restart on the same data folder.
//
// Each describe block starts its own server(s) on a free port with a fresh
// data folder; stop() fails the test on a crash or a sanitizer report. No
// test sleeps: they wait for events, with bounded timeouts, and prove that
// something did NOT arrive by a later event on the same socket (a sentinel:
// one server, one connection, so delivery is in order).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { clientPool, collect, connected, emitAck, rawSocket, startServer, waitFor } from './lib/server.mjs';

const SANITIZED = /asan/.test(process.env.PARLEY_BUILD_DIR || '');
const T = (SANITIZED ? 15000 : 5000) * Math.max(1, Number(process.env.PARLEY_SLOW) || 1); // bound of every wait (PARLEY_SLOW: lib/server.mjs)
const WS = { transports: ['websocket'] };
const NOARG = Symbol('no argument');

// ---- helpers ----------------------------------------------------------------

function tmpDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'parley-chat-'));
}

async function parley(args = [], dataDir = tmpDir()) {
  const srv = await startServer({
    bin: 'parley',
    args: ['--data', dataDir, '--static', '/nonexistent', ...args],
    readyTimeoutMs: T,
  });
  srv.dataDir = dataDir;
  return srv;
}

let seq = 0;
/** A name no other test uses (short enough for the 32 code point rule). */
const uniq = (prefix) => `${prefix}${process.pid % 1000}n${++seq}`;

const argsOf = (payload) => (payload === NOARG ? [] : [payload]);

/** The first argument of the ack of `event`. */
async function ack(sock, event, payload = NOARG) {
  const [reply] = await emitAck(sock, event, argsOf(payload), T);
  return reply;
}

/** Emits `event` without a callback and resolves the chat:error it causes. */
async function chatError(sock, event, payload = NOARG) {
  const p = waitFor(sock, 'chat:error', T, { filter: (e) => e.event === event });
  sock.emit(event, ...argsOf(payload));
  const [e] = await p;
  return e;
}

function assertRefusal(reply, code, what = '') {
  assert.equal(reply?.ok, false, `${what}: expected a refusal, got ${JSON.stringify(reply)}`);
  assert.equal(reply.error, code, `${what}: ${JSON.stringify(reply)}`);
  assert.equal(typeof reply.message, 'string');
  assert.ok(reply.message.length > 0);
}

/** `event` with `payload` is refused with `code`, both with an ack and
 *  without one (then as chat:error {event, error, message}). */
async function expectError(sock, event, payload, code) {
  const what = `${event} ${typeof payload === 'symbol' ? '(none)' : JSON.stringify(payload)}`;
  assertRefusal(await ack(sock, event, payload), code, what);
  const e = await chatError(sock, event, payload);
  assert.deepEqual(Object.keys(e).sort(), ['error', 'event', 'message'], what);
  assert.equal(e.event, event, what);
  assert.equal(e.error, code, what);
  assert.ok(e.message.length > 0);
}

async function expectOk(sock, event, payload) {
  const reply = await ack(sock, event, payload);
  assert.equal(reply?.ok, true, `${event} ${JSON.stringify(payload)}: ${JSON.stringify(reply)}`);
  return reply;
}

/** A connected socket named `name` (ack checked). */
async function joined(pool, srv, name, opts = WS) {
  const s = await pool.connect(srv.url, opts, T);
  const reply = await expectOk(s, 'user:join', name);
  s.username = reply.user.username;
  s.userId = reply.user.id;
  s.token = reply.token;
  return s;
}

/** A store user id: rand_id's form (URL-safe base64, 20 characters). */
const USER_ID = /^[A-Za-z0-9_-]{20}$/;

const usersUpdate = (sock, pred) =>
  waitFor(sock, 'users:update', T, { filter: (list) => pred(list) }).then(([l]) => l);
const roomsUpdate = (sock, pred) =>
  waitFor(sock, 'rooms:update', T, { filter: (list) => pred(list) }).then(([l]) => l);
const hasUser = (name) => (list) => list.some((u) => u.username === name);
const roomCount = (list, name) => list.find((r) => r.name === name)?.users;

/** Next message:receive on sock matching pred (default: any). */
const received = (sock, pred = () => true) =>
  waitFor(sock, 'message:receive', T, { filter: (m) => pred(m) }).then(([m]) => m);

/** Runs SQL on a SQLite file with the sqlite3 shell or Python; false when
 *  neither is installed. */
function runSql(file, sql) {
  let r = spawnSync('sqlite3', [file, sql], { encoding: 'utf8' });
  if (r.error?.code === 'ENOENT') {
    r = spawnSync('python3', ['-c',
      'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()',
      file, sql], { encoding: 'utf8' });
    if (r.error?.code === 'ENOENT') return false;
  }
  if (r.status !== 0) throw new Error(`SQL failed: ${r.stderr}`);
  return true;
}

const SECRET = 'test-secret-Ω';
function jwt(payload, secret = SECRET, header = { alg: 'HS256', typ: 'JWT' }) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${enc(header)}.${enc(payload)}`;
  const sig = crypto.createHmac('sha256', secret).update(body).digest('base64url');
  return `${body}.${sig}`;
}
const nowS = () => Math.floor(Date.now() / 1000);

// ---- anonymous mode ---------------------------------------------------------

describe('anonymous mode', () => {
  let srv;
  const pool = clientPool();
  before(async () => { srv = await parley(['--rate-limit', '0']); });
  after(async () => { pool.closeAll(); await srv.stop(); });

  test('user:join names the connection: ack {ok, user:{id, username}}, users:update to all', async () => {
    const watcher = await pool.connect(srv.url, WS, T); // unnamed connections get it too
    const name = uniq('Alice');
    const seen = usersUpdate(watcher, hasUser(name));
    const a = await pool.connect(srv.url, WS, T);
    const self = usersUpdate(a, hasUser(name)); // the joiner sees itself as well
    const reply = await ack(a, 'user:join', name);
    assert.equal(reply.ok, true);
    assert.deepEqual(Object.keys(reply.user).sort(), ['id', 'username']);
    assert.equal(reply.user.username, name);
    assert.match(reply.user.id, USER_ID);
    assert.equal(typeof reply.token, 'string'); // guest mode: a resume token
    assert.ok(reply.token.length > 0);
    const list = await seen;
    const entry = list.find((u) => u.username === name);
    assert.deepEqual(entry, { id: reply.user.id, username: name, isActive: true });
    assert.deepEqual(await self, list);
  });

  test('a name stays owned after its user leaves (any case); its token brings the same user back', async () => {
    const name = uniq('Stable');
    const a = await pool.connect(srv.url, WS, T);
    const first = await expectOk(a, 'user:join', name);
    a.disconnect(); // v1 freed the name here; v2 keeps it for its owner
    const b = await pool.connect(srv.url, WS, T);
    await expectError(b, 'user:join', name.toUpperCase(), 'username_taken');
    const back = await pool.connect(srv.url, { ...WS, auth: { token: first.token } }, T);
    const again = await expectOk(back, 'user:join', name); // attached already: the same name
    assert.equal(again.user.id, first.user.id);
    assert.equal(again.user.username, name);
  });

  test('username rules: trimmed, NFC shown, NFKC case-folded uniqueness, Cc/Cf and length refused', async () => {
    const base = uniq('Bob');
    const a = await pool.connect(srv.url, WS, T);
    // Unicode white space trimmed at both ends (tab, ideographic space, NBSP).
    const r1 = await expectOk(a, 'user:join', `\t\u3000 ${base}\u00a0 `);
    assert.equal(r1.user.username, base);
    const b = await pool.connect(srv.url, WS, T);
    const fullwidth = [...base].map((ch) => String.fromCodePoint(ch.codePointAt(0) + 0xfee0)).join('');
    for (const same of [base.toUpperCase(), base.toLowerCase(), fullwidth, ` ${base} `]) {
      await expectError(b, 'user:join', same, 'username_taken');
    }
    for (const bad of ['', '   ', '\u3000', `a\u200bb${seq}`, `\u202e${base}x`, `a\u0007b${seq}`,
      `x\u00ady${seq}`, `a\u0000b${seq}`, `z\u2066${seq}`, 'x'.repeat(33), '😀'.repeat(33)]) {
      await expectError(b, 'user:join', bad, 'invalid_username');
    }
    // 32 code points (astral characters count once) are fine; shown as NFC.
    const long = uniq('L');
    const name32 = long + 'é'.repeat(32 - long.length);
    assert.equal([...name32].length, 32);
    const decomposed = name32.normalize('NFD');
    const r2 = await expectOk(b, 'user:join', decomposed);
    assert.equal(r2.user.username, name32);
    const c = await pool.connect(srv.url, WS, T);
    await expectError(c, 'user:join', name32, 'username_taken');
    const emoji = await expectOk(c, 'user:join', '😀'.repeat(31) + String(seq % 10));
    assert.equal([...emoji.user.username].length, 32);
  });

  test('joining again renames; the old name is free at once, re-joining the same name is fine', async () => {
    const watcher = await pool.connect(srv.url, WS, T);
    const oldName = uniq('Old');
    const newName = uniq('New');
    const a = await joined(pool, srv, oldName);
    const renamed = usersUpdate(watcher, (l) => hasUser(newName)(l) && !hasUser(oldName)(l));
    const r = await expectOk(a, 'user:join', newName);
    assert.equal(r.user.username, newName);
    await renamed;
    const b = await pool.connect(srv.url, WS, T);
    await expectOk(b, 'user:join', oldName);
    // Same name again (another case): accepted, shown as typed now.
    const again = await expectOk(a, 'user:join', newName.toUpperCase());
    assert.equal(again.user.username, newName.toUpperCase());
  });

  test('every event but user:join and rooms:list needs a name: not_joined', async () => {
    const s = await pool.connect(srv.url, WS, T);
    const owner = await joined(pool, srv, uniq('Owner'));
    const room = uniq('nj');
    await expectOk(owner, 'room:create', room);
    await expectError(s, 'room:create', room, 'not_joined');
    await expectError(s, 'room:join', room, 'not_joined');
    await expectError(s, 'room:leave', room, 'not_joined');
    await expectError(s, 'message:room', { room, content: 'hi' }, 'not_joined');
    await expectError(s, 'message:private', { to: owner.username, content: 'hi' }, 'not_joined');
    await expectError(s, 'history:fetch', { room }, 'not_joined');
    await expectError(s, 'history:fetch', { with: owner.username }, 'not_joined');
    await expectError(s, 'typing', { room, isTyping: true }, 'not_joined');
    await expectError(s, 'typing', { to: owner.username, isTyping: true }, 'not_joined');
    const list = await expectOk(s, 'rooms:list');
    assert.ok(list.rooms.some((r) => r.name === room));
  });

  test('room:create: idempotent create-or-join, first display name, rooms:update to all, room:history, ack', async () => {
    const a = await joined(pool, srv, uniq('Ann'));
    const b = await joined(pool, srv, uniq('Ben'));
    const watcher = await pool.connect(srv.url, WS, T);
    const room = uniq('General');
    const listed = roomsUpdate(watcher, (l) => roomCount(l, room) === 1);
    const history = waitFor(a, 'room:history', T);
    const r = await ack(a, 'room:create', room);
    assert.deepEqual(r, { ok: true, room: { name: room, users: 1 } });
    assert.deepEqual((await history)[0], { room, messages: [], hasMore: false });
    await listed;
    // Another case, another creator: the same room, shown as first created.
    const listed2 = roomsUpdate(watcher, (l) => roomCount(l, room) === 2);
    const history2 = waitFor(b, 'room:history', T);
    const r2 = await ack(b, 'room:create', room.toUpperCase());
    assert.deepEqual(r2, { ok: true, room: { name: room, users: 2 } });
    assert.equal((await history2)[0].room, room);
    const list = await listed2;
    assert.equal(list.filter((x) => x.name.toLowerCase() === room.toLowerCase()).length, 1);
    for (const entry of list) assert.deepEqual(Object.keys(entry).sort(), ['name', 'users']);
    // Creating it again while in it changes nothing.
    const r3 = await ack(a, 'room:create', ` ${room} `);
    assert.deepEqual(r3, { ok: true, room: { name: room, users: 2 } });
    await expectError(a, 'room:create', '', 'invalid_room');
    await expectError(a, 'room:create', 'x'.repeat(65), 'invalid_room');
    await expectError(a, 'room:create', `a\u200bb`, 'invalid_room');
    const r64 = await expectOk(a, 'room:create', uniq('R') + 'ü'.repeat(40));
    assert.ok([...r64.room.name].length <= 64);
  });

  test('room:join: room_not_found, room:history with the last messages, counts', async () => {
    const a = await joined(pool, srv, uniq('Cat'));
    const b = await joined(pool, srv, uniq('Dan'));
    const room = uniq('Lobby');
    await expectError(b, 'room:join', room, 'room_not_found');
    await expectOk(a, 'room:create', room);
    const sent = [];
    for (let i = 0; i < 55; i++) {
      sent.push(await expectOk(a, 'message:room', { room, content: `m${i}` }));
    }
    const history = waitFor(b, 'room:history', T);
    const r = await ack(b, 'room:join', room.toLowerCase());
    assert.deepEqual(r, { ok: true, room: { name: room, users: 2 } });
    const [h] = await history;
    assert.equal(h.room, room);
    assert.equal(h.hasMore, true);
    assert.equal(h.messages.length, 50);
    assert.deepEqual(h.messages.map((m) => m.content), sent.slice(5).map((_, i) => `m${i + 5}`));
    assert.deepEqual(h.messages.at(-1), {
      id: sent[54].id, type: 'room', room, from: a.username, content: 'm54', timestamp: sent[54].timestamp,
    });
    // Joining again is harmless.
    assert.deepEqual(await ack(b, 'room:join', room), { ok: true, room: { name: room, users: 2 } });
  });

  test('room:leave: {ok}, rooms:update count drops, no more messages, not_in_room / room_not_found', async () => {
    const a = await joined(pool, srv, uniq('Eve'));
    const b = await joined(pool, srv, uniq('Fay'));
    const room = uniq('Leave');
    await expectOk(a, 'room:create', room);
    const two = roomsUpdate(a, (l) => roomCount(l, room) === 2);
    await expectOk(b, 'room:join', room);
    await two; // lists arrive in order: a later count of 1 is after the leave
    const dropped = roomsUpdate(a, (l) => roomCount(l, room) === 1);
    assert.deepEqual(await ack(b, 'room:leave', room), { ok: true });
    await dropped;
    await expectError(b, 'room:leave', room, 'not_in_room');
    await expectError(b, 'room:leave', uniq('nowhere'), 'room_not_found');
    await expectError(b, 'message:room', { room, content: 'x' }, 'not_in_room');
    // b no longer gets the room's messages: its next one is from elsewhere.
    const other = uniq('Other');
    await expectOk(b, 'room:create', other);
    await expectOk(a, 'room:join', other);
    const next = received(b);
    await expectOk(a, 'message:room', { room, content: 'not for b' });
    await expectOk(a, 'message:room', { room: other, content: 'for b' });
    assert.equal((await next).content, 'for b');
  });

  test('message:room: stored, then message:receive to every member (sender too), spoofed from ignored', async () => {
    const a = await joined(pool, srv, uniq('Gus'));
    const b = await joined(pool, srv, uniq('Hal'));
    const c = await joined(pool, srv, uniq('Ida')); // not a member
    const room = uniq('Talk');
    const side = uniq('Side');
    await expectOk(a, 'room:create', room);
    await expectOk(b, 'room:join', room);
    await expectOk(c, 'room:create', side);
    await expectOk(a, 'room:join', side);
    const toA = received(a);
    const toB = received(b);
    const toC = received(c);
    const reply = await ack(a, 'message:room', {
      room: room.toUpperCase(), content: 'héllo 👋', from: 'mallory', id: 'x', timestamp: 1, type: 'private', extra: [1],
    });
    assert.deepEqual(Object.keys(reply).sort(), ['id', 'ok', 'timestamp']);
    assert.equal(typeof reply.id, 'string');
    assert.ok(Math.abs(reply.timestamp - Date.now()) < 60000);
    const expected = { id: reply.id, type: 'room', room, from: a.username, content: 'héllo 👋', timestamp: reply.timestamp };
    assert.deepEqual(await toA, expected);
    assert.deepEqual(await toB, expected);
    // c (not a member) gets the next message, sent to a room it is in.
    await expectOk(a, 'message:room', { room: side, content: 'side' });
    assert.equal((await toC).content, 'side');
    await expectError(c, 'message:room', { room, content: 'x' }, 'not_in_room');
    await expectError(c, 'message:room', { room: uniq('none'), content: 'x' }, 'room_not_found');
  });

  test('message:private: to every connection of `to` and of the sender, once; user_not_found', async () => {
    const a = await joined(pool, srv, uniq('Jo'));
    const b = await joined(pool, srv, uniq('Kim'));
    const c = await joined(pool, srv, uniq('Lou'));
    const toA = collect(a, 'message:receive');
    const toB = received(b);
    const toC = received(c);
    const reply = await ack(a, 'message:private', { to: b.username.toLowerCase(), content: 'psst', from: c.username });
    assert.equal(reply.ok, true);
    const expected = { id: reply.id, type: 'private', to: b.username, from: a.username, content: 'psst', timestamp: reply.timestamp };
    assert.deepEqual(await toB, expected);
    await toA.until(1, T);
    assert.deepEqual(toA.items[0], expected);
    // c is not part of it: its first message is the next one, sent to it.
    await expectOk(a, 'message:private', { to: c.username, content: 'for c' });
    assert.equal((await toC).content, 'for c');
    await toA.until(2, T);
    assert.equal(toA.items.length, 2); // the sender got each of its messages once
    await expectError(a, 'message:private', { to: uniq('ghost'), content: 'x' }, 'user_not_found');
    // An offline user still owns its name: the message is stored for it.
    const goneName = uniq('Gone');
    const present = usersUpdate(a, hasUser(goneName));
    const gone = await joined(pool, srv, goneName);
    await present; // then a later list without it is the state after it left
    const absent = usersUpdate(a, (l) => !hasUser(goneName)(l));
    gone.disconnect();
    await absent;
    const offline = await expectOk(a, 'message:private', { to: goneName, content: 'while away' });
    const back = await pool.connect(srv.url, { ...WS, auth: { token: gone.token } }, T);
    const h = await expectOk(back, 'history:fetch', { with: a.username });
    assert.deepEqual(h.messages.map((m) => [m.id, m.from, m.to, m.content]),
      [[offline.id, a.username, goneName, 'while away']]);
    // To oneself: delivered once.
    const self = collect(a, 'message:receive');
    const r = await expectOk(a, 'message:private', { to: a.username, content: 'note to self' });
    await self.until(1, T);
    await expectOk(a, 'message:private', { to: b.username, content: 'sentinel' });
    await self.until(2, T);
    assert.deepEqual(self.items.map((m) => m.content), ['note to self', 'sentinel']);
    assert.equal(self.items[0].id, r.id);
  });

  test('history:fetch: pages oldest..newest, limit, before, hasMore, {with}, errors', async () => {
    const a = await joined(pool, srv, uniq('Max'));
    const b = await joined(pool, srv, uniq('Ned'));
    const room = uniq('Hist');
    await expectOk(a, 'room:create', room);
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await expectOk(a, 'message:room', { room, content: `h${i}` })).id);
    const all = await expectOk(a, 'history:fetch', { room });
    assert.deepEqual(Object.keys(all).sort(), ['hasMore', 'messages', 'ok']);
    assert.equal(all.hasMore, false);
    assert.deepEqual(all.messages.map((m) => m.id), ids);
    assert.deepEqual(all.messages.map((m) => m.content), ['h0', 'h1', 'h2', 'h3', 'h4']);
    for (const m of all.messages) {
      assert.deepEqual(Object.keys(m).sort(), ['content', 'from', 'id', 'room', 'timestamp', 'type']);
      assert.equal(m.type, 'room');
      assert.equal(m.room, room);
      assert.equal(m.from, a.username);
    }
    const p1 = await expectOk(a, 'history:fetch', { room, limit: 2 });
    assert.deepEqual([p1.messages.map((m) => m.content), p1.hasMore], [['h3', 'h4'], true]);
    const p2 = await expectOk(a, 'history:fetch', { room, limit: 2, before: p1.messages[0].id });
    assert.deepEqual([p2.messages.map((m) => m.content), p2.hasMore], [['h1', 'h2'], true]);
    const p3 = await expectOk(a, 'history:fetch', { room, limit: 2, before: p2.messages[0].id });
    assert.deepEqual([p3.messages.map((m) => m.content), p3.hasMore], [['h0'], false]);
    const p4 = await expectOk(a, 'history:fetch', { room, limit: 100, before: ids[0] });
    assert.deepEqual([p4.messages, p4.hasMore], [[], false]);
    // Membership and existence.
    await expectError(b, 'history:fetch', { room }, 'not_in_room');
    await expectError(b, 'history:fetch', { room: uniq('none') }, 'room_not_found');
    await expectError(b, 'history:fetch', { room: '' }, 'invalid_room');
    // Bad before / limit.
    for (const before of ['garbage', '-1', '99999999999', ids[0] + 'x', '1.5']) {
      await expectError(a, 'history:fetch', { room, before }, 'invalid_payload');
    }
    for (const limit of [0, 101, -1, 1.5, '5', true, [], {}]) {
      await expectError(a, 'history:fetch', { room, limit }, 'invalid_payload');
    }
    // Private conversations, whichever side asks and however the name is written.
    const r1 = await expectOk(a, 'message:private', { to: b.username, content: 'p1' });
    const r2 = await expectOk(b, 'message:private', { to: a.username, content: 'p2' });
    const ha = await expectOk(a, 'history:fetch', { with: b.username.toUpperCase() });
    const hb = await expectOk(b, 'history:fetch', { with: a.username });
    assert.deepEqual(ha, hb);
    assert.deepEqual(ha.messages, [
      { id: r1.id, type: 'private', to: b.username, from: a.username, content: 'p1', timestamp: r1.timestamp },
      { id: r2.id, type: 'private', to: a.username, from: b.username, content: 'p2', timestamp: r2.timestamp },
    ]);
    const hp = await expectOk(a, 'history:fetch', { with: b.username, before: r2.id, limit: 1 });
    assert.deepEqual(hp.messages.map((m) => m.id), [r1.id]);
    // A room id is not an id of this conversation.
    await expectError(a, 'history:fetch', { with: b.username, before: ids[4] }, 'invalid_payload');
    // Someone never seen: an empty conversation, not an error.
    assert.deepEqual(await ack(a, 'history:fetch', { with: uniq('never') }), { ok: true, messages: [], hasMore: false });
    await expectError(a, 'history:fetch', { with: '\u200b' }, 'invalid_username');
  });

  test('typing: to the room\'s other members or to `to`, never to the sender', async () => {
    const a = await joined(pool, srv, uniq('Ola'));
    const b = await joined(pool, srv, uniq('Pat'));
    const room = uniq('Typing');
    await expectOk(a, 'room:create', room);
    await expectOk(b, 'room:join', room);
    const aTyping = collect(a, 'typing');
    const toB = waitFor(b, 'typing', T);
    assert.deepEqual(await ack(a, 'typing', { room, isTyping: true, from: 'mallory' }), { ok: true });
    assert.deepEqual((await toB)[0], { room, from: a.username, isTyping: true });
    const toA = waitFor(a, 'typing', T);
    await expectOk(b, 'typing', { room, isTyping: false });
    assert.deepEqual((await toA)[0], { room, from: b.username, isTyping: false });
    assert.equal(aTyping.items.length, 1); // only b's: a never got its own
    const toB2 = waitFor(b, 'typing', T);
    await expectOk(a, 'typing', { to: b.username, isTyping: true });
    assert.deepEqual((await toB2)[0], { from: a.username, isTyping: true });
    const c = await joined(pool, srv, uniq('Quin'));
    await expectError(c, 'typing', { room, isTyping: true }, 'not_in_room');
    await expectError(c, 'typing', { room: uniq('none'), isTyping: true }, 'room_not_found');
    await expectError(c, 'typing', { room: '', isTyping: true }, 'invalid_room');
    await expectError(c, 'typing', { to: uniq('ghost'), isTyping: true }, 'user_not_found');
    await expectError(c, 'typing', { to: '', isTyping: true }, 'invalid_username');
  });

  test('content: 1..4000 code points of any Unicode but C0 controls (tab and newline allowed)', async () => {
    const a = await joined(pool, srv, uniq('Ray'));
    const room = uniq('Content');
    await expectOk(a, 'room:create', room);
    for (const content of ['あ'.repeat(4000), '😀'.repeat(4000), 'tab\there\nnewline', '\u007f\u0085\u200b\u202e', 'x']) {
      const got = received(a);
      await expectOk(a, 'message:room', { room, content });
      assert.equal((await got).content, content);
    }
    for (const content of ['あ'.repeat(4001), '😀'.repeat(4001), 'x'.repeat(5000)]) {
      await expectError(a, 'message:room', { room, content }, 'content_too_long');
    }
    // U+0000 is a C0 control: refused, not cut short at the NUL.
    for (const content of ['', 'a\u0000b', '\u0000', 'cr\r', 'bell\u0007', 'esc\u001b', 'ok\u0000' + 'x'.repeat(5000)]) {
      await expectError(a, 'message:room', { room, content }, 'invalid_payload');
    }
  });

  test('clientId: a retry is neither stored nor delivered again, and acks the first id/timestamp', async () => {
    const a = await joined(pool, srv, uniq('Sam'));
    const b = await joined(pool, srv, uniq('Tia'));
    const room = uniq('Dedupe');
    await expectOk(a, 'room:create', room);
    await expectOk(b, 'room:join', room);
    const toB = collect(b, 'message:receive');
    const clientId = `cid-${seq}-\u00e9`;
    const first = await expectOk(a, 'message:room', { room, content: 'once', clientId });
    const retry = await expectOk(a, 'message:room', { room, content: 'once', clientId });
    assert.deepEqual(retry, first);
    // Across rooms and conversations, per sending user.
    const elsewhere = await expectOk(a, 'message:private', { to: b.username, content: 'once?', clientId });
    assert.deepEqual(elsewhere, first);
    await expectOk(a, 'message:room', { room, content: 'after' });
    await toB.until(2, T);
    assert.deepEqual(toB.items.map((m) => m.content), ['once', 'after']);
    const h = await expectOk(b, 'history:fetch', { room });
    assert.deepEqual(h.messages.map((m) => m.content), ['once', 'after']);
    assert.deepEqual((await expectOk(b, 'history:fetch', { with: a.username })).messages, []);
    // Another user's identical clientId is its own.
    const other = await expectOk(b, 'message:room', { room, content: 'b once', clientId });
    assert.notEqual(other.id, first.id);
    // clientId: 1..64 code points, any character.
    await expectOk(a, 'message:room', { room, content: 'x', clientId: '😀'.repeat(64) });
    await expectOk(a, 'message:room', { room, content: 'y', clientId: 'a\u0000b' });
    await expectError(a, 'message:room', { room, content: 'z', clientId: '😀'.repeat(65) }, 'invalid_payload');
    await expectError(a, 'message:room', { room, content: 'z', clientId: '' }, 'invalid_payload');
  });

  test('errors come in the contract\'s order of precedence', async () => {
    const anon = await pool.connect(srv.url, WS, T);
    const a = await joined(pool, srv, uniq('Uma'));
    const room = uniq('Prec');
    await expectOk(a, 'room:create', room);
    const long = 'x'.repeat(4001);
    // invalid_payload before not_joined
    await expectError(anon, 'message:room', { room, content: '' }, 'invalid_payload');
    await expectError(anon, 'message:room', { room: 5, content: 'x' }, 'invalid_payload');
    await expectError(anon, 'message:private', { to: a.username, content: 'a\u0001' }, 'invalid_payload');
    await expectError(anon, 'history:fetch', { room, limit: 0 }, 'invalid_payload');
    await expectError(anon, 'typing', { room }, 'invalid_payload');
    await expectError(anon, 'room:join', 42, 'invalid_payload');
    // not_joined before the field rules
    await expectError(anon, 'room:create', '', 'not_joined');
    await expectError(anon, 'message:room', { room: '', content: long }, 'not_joined');
    await expectError(anon, 'message:private', { to: '', content: long }, 'not_joined');
    // field rules: invalid_room before content_too_long, both before existence
    await expectError(a, 'message:room', { room: '', content: long }, 'invalid_room');
    await expectError(a, 'message:room', { room: uniq('none'), content: long }, 'content_too_long');
    await expectError(a, 'message:private', { to: '\u200b', content: long }, 'invalid_username');
    await expectError(a, 'message:private', { to: uniq('ghost'), content: long }, 'content_too_long');
    // existence before membership
    await expectError(a, 'room:leave', uniq('none'), 'room_not_found');
    const b = await joined(pool, srv, uniq('Vic'));
    await expectError(b, 'message:room', { room, content: 'x' }, 'not_in_room');
    await expectError(b, 'message:room', { room, content: long }, 'content_too_long');
  });

  test('malformed payloads of every JSON type, for every event: invalid_payload, nothing breaks', async () => {
    const a = await joined(pool, srv, uniq('Wes'));
    const b = await joined(pool, srv, uniq('Xia'));
    const room = uniq('Bad');
    await expectOk(a, 'room:create', room);
    await expectOk(b, 'room:join', room);
    const any = [NOARG, null, 42, -1.5, true, false, [], ['x'], [room], Buffer.from('bin')];
    const bin = Buffer.from('x');
    const cases = {
      'user:join': [...any, {}, { username: 'x' }],
      'room:create': [...any, {}, { name: room }],
      'room:join': [...any, {}, { name: room }],
      'room:leave': [...any, {}, { name: room }],
      'message:room': [...any, 'text', {}, { room }, { content: 'x' }, { room: 5, content: 'x' },
        { room: null, content: 'x' }, { room: {}, content: 'x' }, { room, content: 5 },
        { room, content: null }, { room, content: ['x'] }, { room, content: { t: 'x' } },
        { room, content: bin }, { room, content: '' }, { room, content: 'x', clientId: 5 },
        { room, content: 'x', clientId: '' }, { room, content: 'x', clientId: [] }],
      'message:private': [...any, 'text', {}, { to: b.username }, { content: 'x' },
        { to: 5, content: 'x' }, { to: null, content: 'x' }, { to: [b.username], content: 'x' },
        { to: b.username, content: 7 }, { to: b.username, content: false },
        { to: b.username, content: '' }, { to: b.username, content: 'x', clientId: {} }],
      'history:fetch': [...any, 'text', {}, { room: 5 }, { with: 5 }, { room, with: b.username },
        { room: [room] }, { room, limit: 0 }, { room, limit: '5' }, { room, limit: 2.5 },
        { room, limit: null, before: 5 }, { room, before: '' }, { room, before: {} }, { room, before: true }],
      typing: [...any, 'text', {}, { room }, { room, isTyping: 'yes' }, { room, isTyping: 1 },
        { room, isTyping: null }, { to: b.username }, { room, to: b.username, isTyping: true },
        { room: 5, isTyping: true }, { to: false, isTyping: true }, { isTyping: true }],
    };
    for (const [event, payloads] of Object.entries(cases)) {
      for (const p of payloads) await expectError(a, event, p, 'invalid_payload');
    }
    // rooms:list takes no payload and ignores any.
    for (const p of any) assert.equal((await ack(a, 'rooms:list', p)).ok, true);
    // Unknown fields are fine; optional fields may be null.
    const got = received(b);
    await expectOk(a, 'message:room', { room, content: 'still fine', clientId: null, extra: { deep: [1] } });
    assert.equal((await got).content, 'still fine');
    await expectOk(a, 'history:fetch', { room, before: null, limit: null, extra: 1 });
    await expectOk(a, 'typing', { room, isTyping: true, to: null });
    // Unknown events are ignored (no reply, no chat:error): the next error seen is ours.
    const errors = collect(a, 'chat:error');
    a.emit('no:such:event', { x: 1 });
    a.emit('message', 'hello');
    const e = await chatError(a, 'room:join', 5);
    assert.equal(e.error, 'invalid_payload');
    assert.equal(errors.items.length, 1);
  });

  test('chat:error only when there is no callback', async () => {
    const a = await joined(pool, srv, uniq('Yan'));
    const errors = collect(a, 'chat:error');
    assertRefusal(await ack(a, 'room:join', uniq('none')), 'room_not_found');
    assertRefusal(await ack(a, 'user:join', ''), 'invalid_username');
    const e = await chatError(a, 'room:leave', uniq('none'));
    assert.equal(e.error, 'room_not_found');
    assert.deepEqual(errors.items.map((x) => x.event), ['room:leave']);
    // Successes without a callback send nothing back.
    const room = uniq('Quiet');
    a.emit('room:create', room);
    await waitFor(a, 'room:history', T);
    const e2 = await chatError(a, 'typing', 1);
    assert.equal(e2.event, 'typing');
    assert.deepEqual(errors.items.map((x) => x.event), ['room:leave', 'typing']);
  });

  test('disconnect: the user goes offline (users:update) and room counts drop (rooms:update)', async () => {
    const watcher = await joined(pool, srv, uniq('Zed'));
    const aName = uniq('Abe');
    const room = uniq('Bye');
    const before2 = roomsUpdate(watcher, (l) => roomCount(l, room) === 2);
    const present = usersUpdate(watcher, hasUser(aName));
    const a = await joined(pool, srv, aName);
    await expectOk(a, 'room:create', room);
    await expectOk(watcher, 'room:join', room);
    await present;
    await before2;
    const usersGone = usersUpdate(watcher, (l) => hasUser(watcher.username)(l) && !hasUser(a.username)(l));
    const countDropped = roomsUpdate(watcher, (l) => roomCount(l, room) === 1);
    a.disconnect();
    await usersGone;
    await countDropped;
  });

  test('long-polling clients get the same service', async () => {
    const opts = { transports: ['polling'] };
    const a = await joined(pool, srv, uniq('Poll'), opts);
    const b = await joined(pool, srv, uniq('Ws'));
    const room = uniq('Mixed');
    await expectOk(a, 'room:create', room);
    await expectOk(b, 'room:join', room);
    const got = received(a);
    const r = await expectOk(b, 'message:room', { room, content: 'over polling' });
    assert.equal((await got).id, r.id);
  });
});

// ---- one room list for one requester -----------------------------------------

describe('rooms:list', () => {
  let srv;
  const pool = clientPool();
  before(async () => { srv = await parley(['--rate-limit', '0']); });
  after(async () => { pool.closeAll(); await srv.stop(); });

  test('rooms:update to the requester only, ack {ok, rooms}', async () => {
    const x = await pool.connect(srv.url, WS, T);
    const y = await pool.connect(srv.url, WS, T);
    const z = await joined(pool, srv, 'Zoe');
    const settledX = roomsUpdate(x, (l) => roomCount(l, 'Alpha') === 1 && roomCount(l, 'Beta') === 1);
    const settledY = roomsUpdate(y, (l) => roomCount(l, 'Alpha') === 1 && roomCount(l, 'Beta') === 1);
    await expectOk(z, 'room:create', 'Alpha');
    await expectOk(z, 'room:create', 'Beta');
    await settledX;
    await settledY; // nothing more is pending
    const yUpdates = collect(y, 'rooms:update');
    const xUpdate = waitFor(x, 'rooms:update', T);
    const r = await ack(x, 'rooms:list'); // unnamed: allowed
    assert.deepEqual(r, { ok: true, rooms: [{ name: 'Alpha', users: 1 }, { name: 'Beta', users: 1 }] });
    assert.deepEqual((await xUpdate)[0], r.rooms);
    const ry = await ack(y, 'rooms:list');
    assert.deepEqual(ry, r);
    assert.equal(yUpdates.items.length, 1); // its own, not x's
  });
});

// ---- content limit, configured -----------------------------------------------

describe('--max-content', () => {
  let srv;
  const pool = clientPool();
  before(async () => { srv = await parley(['--rate-limit', '0', '--max-content', '10']); });
  after(async () => { pool.closeAll(); await srv.stop(); });

  test('multibyte content at exactly the limit passes, one code point more is content_too_long', async () => {
    const a = await joined(pool, srv, 'Multi');
    const b = await joined(pool, srv, 'Byte');
    await expectOk(a, 'room:create', 'm');
    await expectOk(b, 'room:join', 'm');
    const ok = ['😀'.repeat(10), 'é'.repeat(10), 'e\u0301'.repeat(5), '𝄞あé😀\tx\n€ß字'];
    for (const content of ok) {
      assert.equal([...content].length, 10);
      const got = received(b);
      await expectOk(a, 'message:room', { room: 'm', content });
      assert.equal((await got).content, content);
      const gotP = received(b);
      await expectOk(a, 'message:private', { to: 'byte', content });
      assert.equal((await gotP).content, content);
    }
    for (const content of ok.map((c) => c + 'x').concat(['e\u0301'.repeat(5) + '\u0301'])) {
      assert.equal([...content].length, 11);
      await expectError(a, 'message:room', { room: 'm', content }, 'content_too_long');
      await expectError(a, 'message:private', { to: 'Byte', content }, 'content_too_long');
    }
  });
});

// ---- rate limit -----------------------------------------------------------------

describe('rate limit', () => {
  let srv;
  const pool = clientPool();
  // 0.01 event/s: no token comes back during the test.
  before(async () => { srv = await parley(['--rate-limit', '0.01', '--rate-burst', '5']); });
  after(async () => { pool.closeAll(); await srv.stop(); });

  test('a bucket per connection over all events: rate_limited, with and without ack', async () => {
    const a = await pool.connect(srv.url, WS, T);
    await expectOk(a, 'user:join', 'Rate'); // 1
    await expectOk(a, 'rooms:list'); // 2
    await expectOk(a, 'room:create', 'r'); // 3
    assertRefusal(await ack(a, 'room:join', 'nope'), 'room_not_found'); // 4: refused events count too
    await expectOk(a, 'typing', { room: 'r', isTyping: true }); // 5
    await expectError(a, 'message:room', { room: 'r', content: 'x' }, 'rate_limited');
    await expectError(a, 'rooms:list', NOARG, 'rate_limited');
    // rate_limited comes before invalid_payload and not_joined
    await expectError(a, 'message:room', 42, 'rate_limited');
    // Another connection has its own bucket.
    const b = await pool.connect(srv.url, WS, T);
    await expectOk(b, 'user:join', 'Other');
  });

  test('unknown events are ignored but count against the limit', async () => {
    const a = await pool.connect(srv.url, WS, T);
    for (let i = 0; i < 5; i++) a.emit('not:in:contract', i);
    await expectError(a, 'rooms:list', NOARG, 'rate_limited');
    const b = await pool.connect(srv.url, WS, T);
    for (let i = 0; i < 4; i++) b.emit('not:in:contract', i);
    await expectOk(b, 'rooms:list');
    await expectError(b, 'user:join', 'x', 'rate_limited');
  });
});

describe('rate limit 0', () => {
  let srv;
  const pool = clientPool();
  before(async () => { srv = await parley(['--rate-limit', '0', '--rate-burst', '1']); });
  after(async () => { pool.closeAll(); await srv.stop(); });

  test('disables limiting', async () => {
    const a = await pool.connect(srv.url, WS, T);
    const replies = await Promise.all(Array.from({ length: 200 }, () => ack(a, 'rooms:list')));
    assert.ok(replies.every((r) => r.ok === true));
  });
});

// ---- token mode -----------------------------------------------------------------

describe('token mode', () => {
  let srv;
  const pool = clientPool();
  before(async () => { srv = await parley(['--rate-limit', '0', '--auth-secret', SECRET]); });
  after(async () => { pool.closeAll(); await srv.stop(); });

  const withToken = (sub, extra = {}) => ({ ...WS, auth: { token: jwt({ sub, exp: nowS() + 3600, ...extra }) } });

  async function refused(opts) {
    const s = pool.open(srv.url, opts);
    const [err] = await waitFor(s, 'connect_error', T);
    assert.equal(err.message, 'unauthorized');
    assert.equal(s.connected, false);
  }

  test('missing, bad, expired or foreign tokens: CONNECT_ERROR {message:"unauthorized"}', async () => {
    await refused(WS);
    await refused({ ...WS, auth: {} });
    await refused({ ...WS, auth: { token: 5 } });
    await refused({ ...WS, auth: { token: 'not.a.token' } });
    await refused({ ...WS, auth: { token: jwt({ sub: 'Mallory' }, 'wrong-secret') } });
    await refused({ ...WS, auth: { token: jwt({ sub: 'Mallory', exp: nowS() - 10 }) } });
    await refused({ ...WS, auth: { token: jwt({ sub: 'Mallory', nbf: nowS() + 3600 }) } });
    await refused({ ...WS, auth: { token: jwt({ sub: 'Mallory' }, SECRET, { alg: 'none' }) } });
    await refused({ ...WS, auth: { token: jwt({ exp: nowS() + 60 }) } });
    await refused({ ...WS, auth: { token: jwt({ sub: 'a\u200bb' }) } });
    // Well signed but over 4096 bytes: refused before it is parsed.
    await refused({ ...WS, auth: { token: jwt({ sub: 'Mallory', pad: 'x'.repeat(4200) }) } });
    // A good one, for comparison, on the same server.
    const s = await pool.connect(srv.url, withToken('Fine'), T);
    assert.equal(s.connected, true);
  });

  test('named at connect: no user:join needed; user:join only with its own name (else forbidden)', async () => {
    const watcher = await pool.connect(srv.url, withToken('Watcher'), T);
    const seen = usersUpdate(watcher, hasUser('Carol'));
    const a = await pool.connect(srv.url, withToken('Carol'), T);
    await seen;
    const r = await expectOk(a, 'room:create', 'tokens');
    assert.equal(r.room.users, 1);
    await expectError(a, 'user:join', 'Dave', 'forbidden');
    await expectError(a, 'user:join', 'x\u0000', 'invalid_username');
    await expectError(a, 'user:join', 5, 'invalid_payload');
    const ok = await expectOk(a, 'user:join', ' carol ');
    assert.match(ok.user.id, USER_ID);
    assert.equal(ok.token, undefined); // token mode issues no resume token
    // Spoofed from: ignored.
    const got = received(a);
    await expectOk(a, 'message:room', { room: 'tokens', content: 'hi', from: 'Dave' });
    assert.equal((await got).from, ok.user.username);
  });

  test('several connections per user: one users:update entry, all get its private messages, typing skips them all', async () => {
    const tab1 = await pool.connect(srv.url, withToken('Erin'), T);
    const tab2 = await pool.connect(srv.url, withToken('erin'), T);
    // Listen before the connect completes: the list may come in the same read.
    const frank = pool.open(srv.url, withToken('Frank'));
    const listed = usersUpdate(frank, (l) => hasUser('Erin')(l) && hasUser('Frank')(l));
    await connected(frank, T);
    const list = await listed;
    assert.equal(list.filter((u) => u.username.toLowerCase() === 'erin').length, 1);
    // Private message to Erin: both tabs; Frank's own connection too.
    const t1 = received(tab1);
    const t2 = received(tab2);
    const f = received(frank);
    const r = await expectOk(frank, 'message:private', { to: 'ERIN', content: 'to all tabs' });
    for (const m of [await t1, await t2, await f]) {
      assert.deepEqual(m, { id: r.id, type: 'private', to: 'Erin', from: 'Frank', content: 'to all tabs', timestamp: r.timestamp });
    }
    // Sent from one tab: the other tab gets it too.
    const other = received(tab2);
    await expectOk(tab1, 'message:private', { to: 'Frank', content: 'from tab1' });
    assert.equal((await other).content, 'from tab1');
    // Membership per user (v2): tab2 is in the room as soon as tab1 has
    // created it; joining again changes nothing. Counts are connections.
    const both = roomsUpdate(frank, (l) => roomCount(l, 'tabs') === 2);
    await expectOk(tab1, 'room:create', 'tabs');
    await both;
    await expectOk(tab2, 'room:join', 'tabs');
    const three = roomsUpdate(frank, (l) => roomCount(l, 'tabs') === 3);
    await expectOk(frank, 'room:join', 'tabs');
    await three;
    // Typing from tab1 reaches Frank but never tab2 (same user).
    const tab2Typing = collect(tab2, 'typing');
    const toFrank = waitFor(frank, 'typing', T);
    await expectOk(tab1, 'typing', { room: 'tabs', isTyping: true });
    assert.deepEqual((await toFrank)[0], { room: 'tabs', from: 'Erin', isTyping: true });
    const toTab2 = waitFor(tab2, 'typing', T);
    await expectOk(frank, 'typing', { to: 'Erin', isTyping: false });
    assert.deepEqual((await toTab2)[0], { from: 'Frank', isTyping: false });
    assert.equal(tab2Typing.items.length, 1); // Frank's only
    // One tab closing keeps the user online; the last one takes it offline.
    const fewer = roomsUpdate(frank, (l) => roomCount(l, 'tabs') === 2);
    tab1.disconnect();
    await fewer;
    await expectOk(frank, 'message:private', { to: 'Erin', content: 'still there' });
    const offline = usersUpdate(frank, (l) => !hasUser('Erin')(l));
    tab2.disconnect();
    await offline;
    // Offline, still a user (token mode: for ever): stored for it.
    await expectOk(frank, 'message:private', { to: 'Erin', content: 'gone' });
    const erin = await pool.connect(srv.url, withToken('Erin'), T);
    const h = await expectOk(erin, 'history:fetch', { with: 'Frank', limit: 1 });
    assert.deepEqual(h.messages.map((m) => [m.from, m.content]), [['Frank', 'gone']]);
    await expectError(frank, 'message:private', { to: 'Nobody', content: 'x' }, 'user_not_found');
  });
});

// ---- presence coalescing ---------------------------------------------------------

describe('presence coalescing', () => {
  let srv;
  const pool = clientPool();
  before(async () => { srv = await parley(['--rate-limit', '0', '--presence-delay', '30']); });
  after(async () => { pool.closeAll(); await srv.stop(); });

  test('200 joins in a burst: far fewer than 200 users:update each, the last one lists all 200', async (t) => {
    const N = 200;
    const clients = await Promise.all(Array.from({ length: N }, () => pool.connect(srv.url, WS, T)));
    const logs = clients.map((s) => collect(s, 'users:update'));
    const done = clients.map((s) => usersUpdate(s, (l) => l.length === N));
    const t0 = Date.now();
    clients.forEach((s, i) => s.emit('user:join', `burst${i}`));
    await Promise.all(done);
    const elapsed = Date.now() - t0;
    const counts = logs.map((l) => l.items.length);
    const max = Math.max(...counts);
    t.diagnostic(`${N} joins in ${elapsed} ms: at most ${max} users:update per client`);
    // At most one list per 30 ms window (plus the first, sent at once).
    assert.ok(max <= Math.ceil(elapsed / 30) + 2, `max ${max} lists in ${elapsed} ms`);
    assert.ok(max <= N / 4, `a client got ${max} users:update for ${N} joins`);
    for (const l of logs) {
      const last = l.items.at(-1);
      assert.equal(last.length, N);
      assert.equal(new Set(last.map((u) => u.id)).size, N);
    }
    // Leaving in a burst: the final state goes out too.
    const stay = clients.slice(0, N / 2);
    const settled = stay.map((s) => usersUpdate(s, (l) => l.length === N / 2));
    clients.slice(N / 2).forEach((s) => s.disconnect());
    const lists = await Promise.all(settled);
    assert.deepEqual(lists[0].map((u) => u.username).sort(),
      Array.from({ length: N / 2 }, (_, i) => `burst${i}`).sort());
  });
});

// ---- slow consumers -----------------------------------------------------------------

describe('slow consumers', () => {
  let srv;
  const pool = clientPool();
  before(async () => { srv = await parley(['--rate-limit', '0', '--max-output', '65536']); });
  after(async () => { pool.closeAll(); await srv.stop(); });

  /** A raw WebSocket client named `name`, the count-th member of `room`
   *  (created when missing), that stops reading. */
  async function stalled(watcher, name, room, count) {
    const raw = await rawSocket(srv.url, { namespace: '/', timeoutMs: T });
    const counted = roomsUpdate(watcher, (l) => roomCount(l, room) === count);
    const present = usersUpdate(watcher, hasUser(name));
    raw.ws.send(`42${JSON.stringify(['user:join', name])}`);
    raw.ws.send(`42${JSON.stringify(['room:create', room])}`);
    await present;
    await counted;
    raw.ws._socket.pause(); // from now on its output piles up in the server
    return raw;
  }

  test('a connection cut off while it receives, or while its own event runs, harms nobody else', async () => {
    const watcher = await joined(pool, srv, 'Watcher');
    await expectOk(watcher, 'room:create', 'flood');
    const content = 'x'.repeat(4000);

    // A reader that stalls is cut off by the sends of someone else.
    const reader = await stalled(watcher, 'SlowReader', 'flood', 2);
    let gone = false;
    const readerGone = usersUpdate(watcher, (l) => !hasUser('SlowReader')(l)).then(() => { gone = true; });
    const deadline = Date.now() + T;
    while (!gone && Date.now() < deadline) {
      const batch = [];
      // Few at a time: all output of one loop turn is queued at once, and
      // the watcher must stay under --max-output itself.
      for (let i = 0; i < 8; i++) batch.push(ack(watcher, 'message:room', { room: 'flood', content }));
      await Promise.all(batch);
    }
    await readerGone;
    reader.ws.terminate();

    // A sender that stalls is cut off by the echo of its own messages (in a
    // room of its own: the watcher would be cut off by that flood too).
    const sender = await stalled(watcher, 'SlowSender', 'echo', 1);
    gone = false;
    const senderGone = usersUpdate(watcher, (l) => !hasUser('SlowSender')(l)).then(() => { gone = true; });
    const emptied = roomsUpdate(watcher, (l) => roomCount(l, 'flood') === 1 && roomCount(l, 'echo') === 0);
    const frame = (id) => `42${id}${JSON.stringify(['message:room', { room: 'echo', content }])}`;
    for (let id = 0; !gone && Date.now() < deadline + T && sender.ws.readyState === sender.ws.OPEN; id++) {
      sender.ws.send(frame(id));
      if (id % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    }
    await senderGone;
    sender.ws.terminate();

    await emptied;
    const got = received(watcher, (m) => m.content === 'still here');
    await expectOk(watcher, 'message:room', { room: 'flood', content: 'still here' });
    await got;
  });
});

// ---- order of one connection's events -------------------------------------------
// The store completes asynchronously: a connection's events that arrive while
// one of them waits for it are queued and run in order, so what a client sends
// back to back takes effect, is answered and is delivered in the order sent.

describe('order of a connection\'s events', () => {
  let srv;
  const pool = clientPool();
  before(async () => { srv = await parley(['--rate-limit', '0']); });
  after(async () => { pool.closeAll(); await srv.stop(); });

  test('200 messages sent back to back: acked, delivered and stored in order', async () => {
    const N = 200;
    const a = await joined(pool, srv, uniq('Fast'));
    const b = await joined(pool, srv, uniq('Watch'));
    const room = uniq('Order');
    await expectOk(a, 'room:create', room);
    await expectOk(b, 'room:join', room);
    const toA = collect(a, 'message:receive');
    const toB = collect(b, 'message:receive');
    const acks = [];
    const all = [];
    for (let i = 0; i < N; i++) {
      all.push(ack(a, 'message:room', { room, content: `m${i}` }).then((r) => { acks.push([i, r]); return r; }));
    }
    const replies = await Promise.all(all);
    replies.forEach((r, i) => assert.equal(r.ok, true, `message ${i}: ${JSON.stringify(r)}`));
    assert.deepEqual(acks.map(([i]) => i), Array.from({ length: N }, (_, i) => i)); // acks in order
    const want = Array.from({ length: N }, (_, i) => `m${i}`);
    await toB.until(N, T);
    await toA.until(N, T);
    assert.deepEqual(toB.items.map((m) => m.content), want);
    assert.deepEqual(toA.items.map((m) => m.content), want);
    assert.deepEqual(toB.items.map((m) => m.id), replies.map((r) => r.id));
    // Stored in the same order: the history, oldest first, is the sending order.
    const newer = await expectOk(b, 'history:fetch', { room, limit: 100 });
    const older = await expectOk(b, 'history:fetch', { room, limit: 100, before: newer.messages[0].id });
    assert.deepEqual([...older.messages, ...newer.messages].map((m) => m.content), want);
    assert.equal(older.hasMore, false);
  });

  test('an event that depends on the one before it waits for it: create, then send at once', async () => {
    const a = await joined(pool, srv, uniq('Eager'));
    const room = uniq('Fresh');
    const history = waitFor(a, 'room:history', T);
    const created = ack(a, 'room:create', room);
    const sent = ack(a, 'message:room', { room, content: 'right after' });
    const left = ack(a, 'room:leave', room);
    const refused = ack(a, 'message:room', { room, content: 'after leaving' });
    assert.equal((await created).ok, true);
    assert.deepEqual((await history)[0].messages, []); // the message came after the join
    assert.equal((await sent).ok, true);
    assert.equal((await left).ok, true);
    assertRefusal(await refused, 'not_in_room');
    // And a rename followed by a message is sent under the new name.
    const other = await joined(pool, srv, uniq('Peer'));
    const got = received(other);
    const newName = uniq('Renamed');
    a.emit('user:join', newName);
    a.emit('message:private', { to: other.username, content: 'who am I' });
    assert.equal((await got).from, newName);
  });

  test('messages sent right before a disconnect are still stored and delivered', async () => {
    const watcher = await joined(pool, srv, uniq('Stay'));
    const room = uniq('Last');
    await expectOk(watcher, 'room:create', room);
    const quitterName = uniq('Quit');
    const present = usersUpdate(watcher, hasUser(quitterName));
    const quitter = await joined(pool, srv, quitterName);
    await expectOk(quitter, 'room:join', room);
    await present;
    const N = 20;
    const got = collect(watcher, 'message:receive');
    const gone = usersUpdate(watcher, (l) => !hasUser(quitterName)(l));
    for (let i = 0; i < N; i++) quitter.emit('message:room', { room, content: `bye${i}` });
    quitter.disconnect();
    await got.until(N, T);
    const want = Array.from({ length: N }, (_, i) => `bye${i}`);
    assert.deepEqual(got.items.map((m) => m.content), want);
    const h = await expectOk(watcher, 'history:fetch', { room });
    assert.deepEqual(h.messages.map((m) => m.content), want);
    await gone; // and the quitter is offline afterwards
  });
});

// ---- store failure ---------------------------------------------------------------

describe('store failure', () => {
  let srv;
  const pool = clientPool();
  before(async () => { srv = await parley(['--rate-limit', '0']); });
  after(async () => { pool.closeAll(); await srv.stop(); });

  test('a store error is `internal`, with and without ack; the rest keeps working', async (t) => {
    const a = await joined(pool, srv, 'Store');
    await expectOk(a, 'room:create', 'fragile');
    // Break clientId storage behind the server's back.
    if (!runSql(path.join(srv.dataDir, 'parley.db'), 'DROP TABLE dedupe;')) {
      t.skip('neither sqlite3 nor python3 is installed');
      return;
    }
    await expectError(a, 'message:room', { room: 'fragile', content: 'x', clientId: 'c1' }, 'internal');
    const got = received(a);
    const r = await expectOk(a, 'message:room', { room: 'fragile', content: 'no clientId' });
    assert.equal((await got).id, r.id);
    const h = await expectOk(a, 'history:fetch', { room: 'fragile' });
    assert.deepEqual(h.messages.map((m) => m.content), ['no clientId']);
  });
});

// ---- durability -------------------------------------------------------------------

describe('restart', () => {
  const pool = clientPool();
  after(() => pool.closeAll());

  test('SIGKILL, then a new server on the same --data: rooms and history are there', async () => {
    const dir = tmpDir();
    const first = await parley(['--rate-limit', '0'], dir);
    const a = await joined(pool, first, 'Keeper');
    const b = await joined(pool, first, 'Reader');
    await expectOk(a, 'room:create', 'Durable');
    await expectOk(a, 'room:create', 'Second');
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await expectOk(a, 'message:room', { room: 'durable', content: `d${i}` }));
    const priv = await expectOk(a, 'message:private', { to: 'reader', content: 'secret' });
    const retried = await expectOk(a, 'message:room', { room: 'durable', content: 'retry', clientId: 'k1' });
    process.kill(first.pid, 'SIGKILL');
    const { signal } = await first.exited;
    assert.equal(signal, 'SIGKILL');

    const second = await parley(['--rate-limit', '0'], dir);
    try {
      // Users survive too: 'Keeper' is owned, and its token (the store's key) still works.
      await expectError(await pool.connect(second.url, WS, T), 'user:join', 'Keeper', 'username_taken');
      const c = await pool.connect(second.url, { ...WS, auth: { token: a.token } }, T);
      assert.equal((await expectOk(c, 'user:join', 'Keeper')).user.id, a.userId);
      // Keeper is a member of both (v2: membership is the user's), in them
      // from its first packet on.
      const list = await expectOk(c, 'rooms:list');
      assert.deepEqual(list.rooms, [{ name: 'Durable', users: 1 }, { name: 'Second', users: 1 }]);
      const history = waitFor(c, 'room:history', T);
      await expectOk(c, 'room:join', 'DURABLE');
      const [h] = await history;
      assert.deepEqual(h.messages.map((m) => [m.id, m.content, m.timestamp]),
        [...sent.map((s, i) => [s.id, `d${i}`, s.timestamp]), [retried.id, 'retry', retried.timestamp]]);
      const p = await expectOk(c, 'history:fetch', { with: 'Reader' });
      assert.deepEqual(p.messages.map((m) => [m.id, m.content, m.from, m.to]), [[priv.id, 'secret', 'Keeper', 'Reader']]);
      // clientIds survive too: the retry after the restart is recognised.
      assert.deepEqual(await expectOk(c, 'message:room', { room: 'Durable', content: 'retry', clientId: 'k1' }), retried);
      const later = await expectOk(c, 'message:room', { room: 'Durable', content: 'new' });
      const h2 = await expectOk(c, 'history:fetch', { room: 'Durable', limit: 2 });
      assert.deepEqual(h2.messages.map((m) => m.id), [retried.id, later.id]);
    } finally {
      pool.closeAll();
      await second.stop();
    }
  });
});

// ---- guest identities (contract v2) --------------------------------------------

describe('guest identities (v2)', () => {
  let srv;
  const pool = clientPool();
  before(async () => { srv = await parley(['--rate-limit', '0']); });
  after(async () => { pool.closeAll(); await srv.stop(); });

  // The hole v1 left open: a name was free as soon as its holder left, and
  // private history was keyed by names.
  test('regression: a name belongs to its user while it is away; nobody else reads its conversations', async () => {
    const alice = await joined(pool, srv, 'alice');
    const bob = await joined(pool, srv, 'bob');
    await expectOk(alice, 'message:private', { to: 'bob', content: 'my secret: 1234' });
    const gone = usersUpdate(bob, (l) => !hasUser('alice')(l));
    alice.disconnect();
    await gone;
    const mallory = await pool.connect(srv.url, WS, T);
    await expectError(mallory, 'user:join', 'alice', 'username_taken');
    await expectError(mallory, 'user:join', 'ALICE', 'username_taken');
    await expectError(mallory, 'history:fetch', { with: 'bob' }, 'not_joined');
    await expectOk(mallory, 'user:join', 'mallory');
    const h = await expectOk(mallory, 'history:fetch', { with: 'bob' });
    assert.deepEqual(h.messages, []);
    // bob still has it, and so has alice when she comes back with her token.
    const hb = await expectOk(bob, 'history:fetch', { with: 'alice' });
    assert.deepEqual(hb.messages.map((m) => m.content), ['my secret: 1234']);
    const back = await pool.connect(srv.url, { ...WS, auth: { token: alice.token } }, T);
    const ha = await expectOk(back, 'history:fetch', { with: 'bob' });
    assert.deepEqual(ha.messages.map((m) => m.content), ['my secret: 1234']);
  });

  test('a token reconnect is attached at once: same id, no user:join, listed in users:update', async () => {
    const name = uniq('Tok');
    const a = await joined(pool, srv, name);
    const watcher = await joined(pool, srv, uniq('W'));
    const listedAgain = usersUpdate(watcher, (l) => l.some((u) => u.id === a.userId && u.username === name));
    const b = await pool.connect(srv.url, { ...WS, auth: { token: a.token } }, T);
    await listedAgain;
    // Named from its first packet: a message goes out under its name.
    await expectOk(b, 'room:create', uniq('tr'));
    const toW = received(watcher);
    const r = await expectOk(b, 'message:private', { to: watcher.username, content: 'hello again' });
    assert.deepEqual(await toW, { id: r.id, type: 'private', to: watcher.username, from: name, content: 'hello again', timestamp: r.timestamp });
    // Two connections, one user: one entry.
    const list = await expectOk(watcher, 'rooms:list'); // a round trip, then the latest users:update
    assert.ok(list.ok);
    a.disconnect();
    const still = usersUpdate(watcher, (l) => l.filter((u) => u.id === a.userId).length === 1);
    await still;
  });

  test('forged, garbled, oversized or foreign tokens: CONNECT_ERROR unauthorized; an empty one is none', async () => {
    const a = await joined(pool, srv, uniq('Real'));
    const refused = async (token) => {
      const s = pool.open(srv.url, { ...WS, auth: { token } });
      const [err] = await waitFor(s, 'connect_error', T);
      assert.equal(err.message, 'unauthorized', JSON.stringify(token).slice(0, 80));
      assert.equal(s.connected, false);
    };
    const [p1, id, sig] = a.token.split('.');
    const flip = (c) => (c === 'A' ? 'B' : 'A');
    await refused(`${p1}.${id}.${flip(sig[0])}${sig.slice(1)}`); // forged signature
    await refused(`${p1}.${flip(id[0])}${id.slice(1)}.${sig}`); // someone else's id
    await refused('garbage');
    await refused(5);
    await refused(a.token + 'x');
    await refused('p1.' + 'A'.repeat(5000)); // over 4096 bytes: not even parsed
    // A token of a user that does not exist (signed with another server's key).
    const other = await parley(['--rate-limit', '0']);
    try {
      const o = await joined(pool, other, uniq('Elsewhere'));
      await refused(o.token);
    } finally {
      await other.stop();
    }
    // An empty token is no token: an unnamed connection.
    const s = await pool.connect(srv.url, { ...WS, auth: { token: '' } }, T);
    await expectError(s, 'room:create', uniq('x'), 'not_joined');
  });

  test('clients that leave while their token CONNECT waits for the store harm nothing', async () => {
    const a = await joined(pool, srv, uniq('Pend'));
    // Any list from now on (the connects below change presence) lists a once.
    const listed = usersUpdate(a, (l) => l.some((u) => u.id === a.userId));
    // The CONNECT and the close frame go out back to back: the server often
    // reads both before the store answers (the CONNECT is pending, then its
    // client is gone: sio_connect_finish says so and the chat forgets it).
    // A leak or a use after free shows in the sanitizer build's exit check.
    for (let i = 0; i < 10; i++) {
      const { ws } = await rawSocket(srv.url);
      const closed = waitFor(ws, 'close', T);
      ws.send(`40${JSON.stringify({ token: a.token })}`);
      ws.close();
      await closed;
    }
    const b = await pool.connect(srv.url, { ...WS, auth: { token: a.token } }, T);
    const room = uniq('after');
    await expectOk(b, 'room:create', room);
    // a, on its first connection, is in the room too; the user is listed once.
    await expectOk(a, 'message:room', { room, content: 'still one user' });
    const list = await listed;
    assert.equal(list.filter((u) => u.id === a.userId).length, 1);
  });

  test('rename: same id, the old name free at once, every connection of the user renamed', async () => {
    const oldName = uniq('Before');
    const newName = uniq('After');
    const a = await joined(pool, srv, oldName);
    const tab2 = await pool.connect(srv.url, { ...WS, auth: { token: a.token } }, T);
    const peer = await joined(pool, srv, uniq('Peer'));
    const r = await expectOk(a, 'user:join', newName);
    assert.equal(r.user.id, a.userId);
    assert.equal(r.user.username, newName);
    await usersUpdate(peer, (l) => l.some((u) => u.id === a.userId && u.username === newName) && !hasUser(oldName)(l));
    // The other tab speaks under the new name.
    const got = received(peer);
    await expectOk(tab2, 'message:private', { to: peer.username, content: 'renamed?' });
    assert.equal((await got).from, newName);
    // Its conversations follow it: the peer finds them under the new name.
    const h = await expectOk(peer, 'history:fetch', { with: newName });
    assert.deepEqual(h.messages.map((m) => m.content), ['renamed?']);
    await expectError(peer, 'message:private', { to: oldName, content: 'x' }, 'user_not_found');
    const c = await pool.connect(srv.url, WS, T);
    const taken = await expectOk(c, 'user:join', oldName);
    assert.notEqual(taken.user.id, a.userId);
    await expectError(c, 'user:join', newName, 'username_taken');
  });
});

describe('guest lifetime (v2)', () => {
  let srv;
  const pool = clientPool();
  const TTL = 1500;
  before(async () => { srv = await parley(['--rate-limit', '0', '--guest-ttl', String(TTL)]); });
  after(async () => { pool.closeAll(); await srv.stop(); });

  test('a connected guest does not expire; one away for --guest-ttl does, and the next owner is a new user', async () => {
    const old = await joined(pool, srv, 'Ephemeral');
    const bob = await joined(pool, srv, uniq('Bob'));
    await expectOk(old, 'message:private', { to: bob.username, content: 'old secret' });
    // Connected for longer than the lifetime: still its name (touched).
    const started = Date.now();
    const probe = await pool.connect(srv.url, WS, T);
    while (Date.now() - started < TTL * 2) {
      await expectError(probe, 'user:join', 'Ephemeral', 'username_taken');
      await new Promise((r) => setTimeout(r, 200)); // pacing the probes, not waiting for an event
    }
    old.disconnect();
    await expectError(probe, 'user:join', 'Ephemeral', 'username_taken'); // away, not yet expired
    // Away longer than the lifetime: the name is free; its token is dead.
    let fresh;
    const deadline = Date.now() + TTL * 4 + T;
    for (;;) {
      const reply = await ack(probe, 'user:join', 'Ephemeral');
      if (reply.ok) { fresh = reply; break; }
      assert.equal(reply.error, 'username_taken');
      assert.ok(Date.now() < deadline, 'the name never expired');
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.notEqual(fresh.user.id, old.userId);
    const h = await expectOk(probe, 'history:fetch', { with: bob.username });
    assert.deepEqual(h.messages, []);
    const s = pool.open(srv.url, { ...WS, auth: { token: old.token } });
    assert.equal((await waitFor(s, 'connect_error', T))[0].message, 'unauthorized');
  });
});

// ---- per-user membership and read state (contract v2) ------------------------------

describe('membership and read state (v2)', () => {
  let srv;
  const pool = clientPool();
  before(async () => { srv = await parley(['--rate-limit', '0']); });
  after(async () => { pool.closeAll(); await srv.stop(); });

  test('membership is the user\'s: every connection follows a join and a leave; a token connection is in its rooms at once', async () => {
    const a = await joined(pool, srv, uniq('Mem'));
    const tab2 = await pool.connect(srv.url, { ...WS, auth: { token: a.token } }, T);
    const b = await joined(pool, srv, uniq('Other'));
    const room = uniq('mroom');
    await expectOk(a, 'room:create', room);
    await expectOk(b, 'room:join', room);
    // tab2 never joined: it gets the room's messages all the same.
    const got = received(tab2, (m) => m.room === room);
    const sent = await expectOk(b, 'message:room', { room, content: 'to every tab' });
    assert.equal((await got).id, sent.id);
    await expectOk(tab2, 'message:room', { room, content: 'from tab2' });
    // A new connection of the user is in the room from its first packet.
    const tab3 = await pool.connect(srv.url, { ...WS, auth: { token: a.token } }, T);
    await expectOk(tab3, 'message:room', { room, content: 'first packet' });
    // Leaving on one tab: all of them are out.
    await expectOk(tab3, 'room:leave', room);
    await expectError(a, 'message:room', { room, content: 'x' }, 'not_in_room');
    await expectError(tab2, 'message:room', { room, content: 'x' }, 'not_in_room');
    const tab4 = await pool.connect(srv.url, { ...WS, auth: { token: a.token } }, T);
    await expectError(tab4, 'message:room', { room, content: 'x' }, 'not_in_room');
  });

  test('read:mark: {ok, unread}, message_not_found, read:update to the other connections only when it moves', async () => {
    const a = await joined(pool, srv, uniq('Rd'));
    const tab2 = await pool.connect(srv.url, { ...WS, auth: { token: a.token } }, T);
    const b = await joined(pool, srv, uniq('Wr'));
    const room = uniq('rroom');
    await expectOk(b, 'room:create', room);
    const m1 = await expectOk(b, 'message:room', { room, content: 'before a joined' });
    await expectOk(a, 'room:join', room); // joining marks it read
    const m2 = await expectOk(b, 'message:room', { room, content: 'one' });
    const m3 = await expectOk(b, 'message:room', { room, content: 'two' });
    const mine = collect(a, 'read:update');
    const other = waitFor(tab2, 'read:update', T);
    const r = await expectOk(a, 'read:mark', { room, id: m2.id });
    assert.equal(r.unread, 1);
    assert.deepEqual((await other)[0], { room, lastReadId: m2.id, unread: 1 });
    // An older id changes nothing and sends nothing.
    const again = await expectOk(a, 'read:mark', { room, id: m1.id });
    assert.equal(again.unread, 1);
    const tab2Updates = collect(tab2, 'read:update');
    const r3 = await expectOk(tab2, 'read:mark', { room, id: m3.id });
    assert.equal(r3.unread, 0);
    await mine.until(1, T);
    assert.deepEqual(mine.items[0], { room, lastReadId: m3.id, unread: 0 });
    await expectOk(tab2, 'rooms:list'); // a round trip: anything for tab2 came before
    assert.deepEqual(tab2Updates.items, [], 'never to the connection that marked');
    assert.equal(mine.items.length, 1); // a's only one: tab2's mark; its own and the no-op sent none
    // Errors: an id of another conversation, not a member, shapes.
    const elsewhere = uniq('else');
    await expectOk(b, 'room:create', elsewhere);
    const foreign = await expectOk(b, 'message:room', { room: elsewhere, content: 'x' });
    await expectError(a, 'read:mark', { room, id: foreign.id }, 'message_not_found');
    await expectError(a, 'read:mark', { room, id: '999999' }, 'message_not_found');
    await expectError(a, 'read:mark', { room: elsewhere, id: foreign.id }, 'not_in_room');
    await expectError(a, 'read:mark', { room, id: 5 }, 'invalid_payload');
    await expectError(a, 'read:mark', { room, with: b.username, id: m2.id }, 'invalid_payload');
    const anon = await pool.connect(srv.url, WS, T);
    await expectError(anon, 'read:mark', { room, id: m2.id }, 'not_joined');
    // Private: {with, id}.
    const p = await expectOk(b, 'message:private', { to: a.username, content: 'dm' });
    const rp = await expectOk(a, 'read:mark', { with: b.username.toUpperCase(), id: p.id });
    assert.equal(rp.unread, 0);
    await expectError(a, 'read:mark', { with: uniq('nobody'), id: p.id }, 'user_not_found');
  });

  test('conversations:list: rooms and private conversations with unread and lastMessage, most recent first', async () => {
    const a = await joined(pool, srv, uniq('Lst'));
    const b = await joined(pool, srv, uniq('Pal'));
    const r1 = uniq('older');
    const r2 = uniq('quiet');
    await expectOk(b, 'room:create', r1);
    await expectOk(a, 'room:join', r1);
    await expectOk(a, 'room:create', r2); // activity: its join time
    // Later activity, on a clock with millisecond steps: sent again until
    // its timestamp is after what came before (same machine, same clock).
    const sends = { room: 0, private: 0 };
    const after = async (t, kind, send) => {
      for (;;) {
        const r = await send();
        sends[kind]++;
        if (r.timestamp > t) return r;
      }
    };
    const m1 = await after(Date.now(), 'room', () => expectOk(b, 'message:room', { room: r1, content: 'in the room' }));
    const p = await after(m1.timestamp, 'private', () => expectOk(b, 'message:private', { to: a.username, content: 'private one' }));
    const list = await expectOk(a, 'conversations:list');
    assert.deepEqual(list.conversations.map((c) => c.type === 'room' ? `room:${c.room}` : `private:${c.with}`),
      [`private:${b.username}`, `room:${r1}`, `room:${r2}`]);
    const [dm, older, quiet] = list.conversations;
    assert.deepEqual(dm, { type: 'private', with: b.username, unread: sends.private,
      lastMessage: { id: p.id, type: 'private', to: a.username, from: b.username, content: 'private one', timestamp: p.timestamp } });
    // a created r2 (its owner); b created r1, a joined it (a member)
    assert.deepEqual(quiet, { type: 'room', room: r2, role: 'owner', unread: 0, lastMessage: null });
    assert.deepEqual(older, { type: 'room', room: r1, role: 'member', unread: sends.room,
      lastMessage: { id: m1.id, type: 'room', room: r1, from: b.username, content: 'in the room', timestamp: m1.timestamp } });
    const anon = await pool.connect(srv.url, WS, T);
    await expectError(anon, 'conversations:list', NOARG, 'not_joined');
  });
});
