// tests/cluster/shared.test.mjs - the chat contract across two backends
// sharing a Redis Cluster (docs/PROTOCOL.md, "with several
// backends behind a load balancer, every event behaves the same whichever
// backend each client is on"). Clients connect directly to backend1 and
// backend2 (WebSocket) and through NGINX, with long-polling only and with
// WebSocket, from client addresses that NGINX's hash puts on a known
// backend, so that each check crosses from one backend to the other.
//
//   node --test tests/cluster/shared.test.mjs      (from the repository root)
//
// One cluster for the file (lib.mjs: free ports, temporary CLUSTER_DIR,
// cluster-down.sh at the end; KEEP_CLUSTER_DIR=1 keeps the logs). The
// anonymous-mode tests run first; the token-mode ones restart both
// backends with PARLEY_AUTH_SECRET (one user, several connections on
// several backends). No test sleeps: they wait for events or for the last
// users:update / rooms:update of a socket to satisfy a condition, with
// bounds. That something did NOT arrive is shown by a round trip on the same
// connection (an ack the server writes after anything it wrote before)
// once every connection that should get it has it.

import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  Cluster, HAS_REDIS, T, ack, collect, eventually, hasUser, jwt, lacksUser, names, ok, refused, roomCount,
  roundTrip, uniq, until, waitFor,
} from './lib.mjs';

const SECRET = 'cluster-secret-\u03a9-0123456789abcdef0123456789';

/** Each of `expected` is listed exactly once, and no name twice. */
const listsOnce = (expected) => (list) => {
  const n = names(list);
  return new Set(n).size === n.length && expected.every((e) => n.includes(e));
};

/** The message:receive items equal to id, counted. */
const countId = (items, id) => items.filter((m) => m.id === id).length;

describe('cluster: shared state across backends', { skip: !HAS_REDIS && 'parley has no --redis yet' }, () => {
  const cluster = new Cluster('shared', { PARLEY_RATE_LIMIT: '0' });
  let to1, to2; // client addresses that NGINX sends to backend1 / backend2

  before(async () => {
    await cluster.start();
    // Probed before any client connects (lib.mjs: probeRoute).
    to1 = await cluster.addressFor(1);
    to2 = await cluster.addressFor(2);
  });
  after(() => cluster.stop());
  afterEach(() => cluster.closeClients());

  // Named clients: directly on a backend, or through NGINX on a known one.
  const on1 = (name) => cluster.client(1, { name });
  const on2 = (name) => cluster.client(2, { name });
  const polling = (backend, name) =>
    cluster.client('nginx', { transport: 'polling', address: backend === 1 ? to1 : to2, name });
  const nginxWs = (backend, name) =>
    cluster.client('nginx', { transport: 'websocket', address: backend === 1 ? to1 : to2, name });

  describe('anonymous mode', () => {
    test('users:update on every backend lists the users of both, once each, and drops who leaves', async () => {
      const watcher = await cluster.client(2); // unnamed connections get users:update too
      const a = await on1(uniq('Ann'));
      const b = await on2(uniq('Ben'));
      const p1 = await polling(1, uniq('Pia'));
      const p2 = await polling(2, uniq('Pol'));
      const w = await nginxWs(1, uniq('Wes'));
      const all = [a, b, p1, p2, w];
      const everyone = all.map((s) => s.username);
      const ids = new Map(all.map((s) => [s.username, s.user.id]));
      for (const s of [...all, watcher]) {
        await eventually(s, 'users', listsOnce(everyone), `all five users on ${s.label}`);
        for (const u of s.users.filter((x) => everyone.includes(x.username))) {
          // The same entry everywhere: the user's id does not depend on the backend.
          assert.deepEqual(u, { id: ids.get(u.username), username: u.username, isActive: true });
        }
      }
      assert.equal(p1.io.engine.transport.name, 'polling');
      assert.equal(p2.io.engine.transport.name, 'polling');

      // A user on backend2 leaves: gone on backend1 too, and the reverse.
      b.disconnect();
      for (const s of [a, p1, p2, w, watcher]) await eventually(s, 'users', lacksUser(b.username), `${b.username} gone on ${s.label}`);
      p1.disconnect(); // long-polling, on backend1 through NGINX
      for (const s of [a, p2, w, watcher]) await eventually(s, 'users', lacksUser(p1.username), `${p1.username} gone on ${s.label}`);
      for (const s of [a, p2, w, watcher]) {
        await eventually(s, 'users', listsOnce([a.username, p2.username, w.username]), `the other three still listed on ${s.label}`);
      }
    });

    test('a name is owned cluster-wide, online or not; a rename frees it at once; a token works on the other backend', async () => {
      const name = uniq('Held');
      const a = await on1(name);
      const b = await on2();
      const p = await polling(2);
      for (const same of [name, name.toUpperCase(), ` ${name.toLowerCase()} `]) {
        await refused(b, 'user:join', same, 'username_taken');
        await refused(p, 'user:join', same, 'username_taken');
      }
      // A token issued on backend1 attaches on backend2: same user, no user:join.
      const a2 = await cluster.client(2, { token: a.token });
      const r = await ok(a2, 'user:join', name);
      assert.equal(r.user.id, a.user.id);
      // Renamed on backend1: its connection on backend2 takes the new name
      // (the rename crosses the bus), and the old name is free at once.
      const newName = uniq('Renamed');
      await ok(a, 'user:join', newName);
      await ok(b, 'user:join', name);
      const got = collect(b, 'message:receive');
      await until(`the rename reaches backend2`, async () => {
        const m = await ok(a2, 'message:private', { to: name, content: 'who am I?' });
        const [item] = await got.until((items) => items.some((x) => x.id === m.id)).then((items) => items.filter((x) => x.id === m.id));
        return item.from === newName;
      }, T);
      await eventually(b, 'users', (l) => l.some((u) => u.id === a.user.id && u.username === newName) && !l.some((u) => u.id === a.user.id && u.username !== newName), 'renamed once in users:update on backend2');
      // Offline, still owned: its clean disconnect on both backends frees nothing.
      a.disconnect();
      a2.disconnect();
      await eventually(b, 'users', lacksUser(newName), `${newName} offline`);
      await refused(p, 'user:join', newName, 'username_taken');
    });

    test('two clients racing for one new name on the two backends: exactly one gets it', async () => {
      const c1 = await on1();
      const c2 = await on2();
      const q1 = await polling(1);
      const q2 = await polling(2);
      const winners = [];
      for (let i = 0; i < 6; i++) {
        const name = uniq('Race');
        // Alternate the pairs: direct WebSocket and long-polling through NGINX.
        const [x, y] = i % 2 === 0 ? [c1, c2] : [q1, q2];
        const replies = await Promise.all([ack(x, 'user:join', name), ack(y, 'user:join', name)]);
        const oks = replies.filter((r) => r?.ok === true);
        assert.equal(oks.length, 1, `race for ${name}: ${JSON.stringify(replies)}`);
        const loser = replies.find((r) => r?.ok !== true);
        assert.equal(loser?.error, 'username_taken', `race for ${name}: ${JSON.stringify(replies)}`);
        winners.push({ name, on: replies[0].ok ? x : y });
      }
      // The winners are each listed once on both backends.
      const w = winners.map((x) => x.name).slice(-2); // earlier names were renamed away
      for (const s of [c1, c2]) await eventually(s, 'users', listsOnce(w), `race winners on ${s.label}`);
    });

    test('rooms: created on backend1, joined on backend2; rooms:update counts connections cluster-wide', async () => {
      const room = uniq('Hall');
      const a = await on1(uniq('Roo'));
      const b = await on2(uniq('Rex'));
      const p = await polling(2, uniq('Rio'));
      const o1 = await on1(uniq('Obs')); // observers, in no room
      const o2 = await polling(1, uniq('Obp'));
      await refused(b, 'room:join', room, 'room_not_found');
      const created = await ok(a, 'room:create', room);
      assert.deepEqual(created.room, { name: room, users: 1 });
      const counted = (n) => (list) => roomCount(list, room) === n;
      for (const s of [a, b, p, o1, o2]) await eventually(s, 'rooms', counted(1), `${room}: 1 on ${s.label}`);
      // The room exists cluster-wide; its name compares case-folded and is
      // shown as first created.
      const joined = await ok(b, 'room:join', room.toUpperCase());
      assert.deepEqual(joined.room, { name: room, users: 2 });
      const pj = await ok(p, 'room:join', room);
      assert.equal(pj.room.name, room);
      for (const s of [a, b, p, o1, o2]) await eventually(s, 'rooms', counted(3), `${room}: 3 (1 on b1 + 2 on b2) on ${s.label}`);
      assert.equal((await ok(o1, 'rooms:list')).rooms.find((r) => r.name === room)?.users, 3);
      // Leaving and disconnecting lower the count everywhere.
      await ok(b, 'room:leave', room);
      for (const s of [a, p, o1, o2]) await eventually(s, 'rooms', counted(2), `${room}: 2 after a leave on ${s.label}`);
      p.disconnect(); // long-polling on backend2
      for (const s of [a, o1, o2]) await eventually(s, 'rooms', counted(1), `${room}: 1 after a disconnect on ${s.label}`);
      a.disconnect();
      for (const s of [b, o1, o2]) await eventually(s, 'rooms', counted(0), `${room}: 0 on ${s.label}`);
    });

    test('message:room crosses backends: members get it exactly once as acked, non-members never; history in order', async () => {
      const room = uniq('Talk');
      const a = await on1(uniq('Ada'));
      const b = await on2(uniq('Bo'));
      const p = await polling(2, uniq('Pam'));
      const q = await polling(1, uniq('Quo'));
      const w = await nginxWs(2, uniq('Wyn'));
      const n1 = await on1(uniq('Nil'));
      const n2 = await polling(2, uniq('Nob'));
      await ok(a, 'room:create', room);
      for (const s of [b, p, q, w]) await ok(s, 'room:join', room);
      await ok(n2, 'room:create', uniq('Else')); // in another room: still not a member of `room`
      const members = [a, b, p, q, w];
      const got = new Map([...members, n1, n2].map((s) => [s, collect(s, 'message:receive')]));

      // The server sets `from`; the ack's id and timestamp are the delivered ones.
      const sent = await ok(a, 'message:room', { room, content: 'hello from b1', from: 'mallory' });
      assert.equal(typeof sent.id, 'string');
      assert.equal(typeof sent.timestamp, 'number');
      const expected = { id: sent.id, type: 'room', room, from: a.username, content: 'hello from b1', timestamp: sent.timestamp };
      // A second message from the same sender to the same room comes after
      // the first on every connection: once it is there, a duplicate of the
      // first would have come too.
      const next = await ok(a, 'message:room', { room, content: 'second' });
      for (const s of members) {
        await got.get(s).until((items) => countId(items, next.id) === 1);
        assert.equal(countId(got.get(s).items, sent.id), 1, `exactly once on ${s.label}`);
        assert.deepEqual(got.get(s).items.find((m) => m.id === sent.id), expected, s.label);
      }
      for (const s of [n1, n2]) {
        await roundTrip(s);
        assert.deepEqual(got.get(s).items, [], `non-member ${s.label} got nothing`);
      }

      // Messages from both backends and from long-polling, acked one after the
      // other: history on either backend has them in that order.
      const acks = [sent, next];
      const order = [b, a, p, q, w, b];
      for (const [i, s] of order.entries()) acks.push(await ok(s, 'message:room', { room, content: `m${i}` }));
      const want = acks.map((r) => r.id);
      for (const s of [b, p, a]) {
        const h = await ok(s, 'history:fetch', { room, limit: 100 });
        assert.deepEqual(h.messages.map((m) => m.id), want, `history on ${s.label}`);
        assert.deepEqual(h.messages.map((m) => m.from),
          [a, a, ...order].map((x) => x.username), `history senders on ${s.label}`);
        assert.deepEqual(h.messages.map((m) => m.timestamp), acks.map((r) => r.timestamp));
        assert.equal(h.hasMore, false);
      }
      // Live delivery too: each member has every message once (the order of
      // messages from different senders on different backends is the
      // history's, not necessarily the order of arrival).
      for (const s of members) {
        await got.get(s).until((items) => want.every((id) => items.some((m) => m.id === id)));
        assert.deepEqual(got.get(s).items.map((m) => m.id).sort(), [...want].sort(), `each once on ${s.label}`);
      }
      assert.equal(p.io.engine.transport.name, 'polling');
    });

    test('message:private from backend1 to backend2: recipient and sender once each, nobody else; user_not_found', async () => {
      const a = await on1(uniq('Pri'));
      const b = await on2(uniq('Pro'));
      const p = await polling(1, uniq('Pup'));
      const other = await on2(uniq('Odd'));
      const got = new Map([a, b, p, other].map((s) => [s, collect(s, 'message:receive')]));
      for (const s of [a, p]) await eventually(s, 'users', hasUser(b.username), `${b.username} known on ${s.label}`);
      await eventually(b, 'users', hasUser(p.username), `${p.username} known on backend2`);

      const r1 = await ok(a, 'message:private', { to: b.username.toUpperCase(), content: 'psst', from: 'mallory' });
      const expected = { id: r1.id, type: 'private', to: b.username, from: a.username, content: 'psst', timestamp: r1.timestamp };
      const r2 = await ok(a, 'message:private', { to: b.username, content: 'psst again' });
      for (const s of [a, b]) {
        await got.get(s).until((items) => countId(items, r2.id) === 1);
        assert.equal(countId(got.get(s).items, r1.id), 1, `once on ${s.label}`);
        assert.deepEqual(got.get(s).items.find((m) => m.id === r1.id), expected, s.label);
      }
      // Back from backend2 to a long-polling client on backend1.
      const r3 = await ok(b, 'message:private', { to: p.username, content: 'to the poller' });
      for (const s of [b, p]) {
        const [m] = await got.get(s).until((items) => items.some((x) => x.id === r3.id)).then((items) => items.filter((x) => x.id === r3.id));
        assert.deepEqual(m, { id: r3.id, type: 'private', to: p.username, from: b.username, content: 'to the poller', timestamp: r3.timestamp });
      }
      for (const s of [other, p]) await roundTrip(s);
      assert.deepEqual(got.get(other).items, [], 'a third user gets nothing');
      assert.deepEqual(got.get(p).items.map((m) => m.id), [r3.id], 'the poller got only its own');
      await roundTrip(a);
      assert.deepEqual(got.get(a).items.map((m) => m.id), [r1.id, r2.id]);

      // The conversation's history is the same from both backends.
      const ha = await ok(a, 'history:fetch', { with: b.username });
      const hb = await ok(b, 'history:fetch', { with: a.username });
      assert.deepEqual(ha, hb);
      assert.deepEqual(ha.messages.map((m) => m.id), [r1.id, r2.id]);

      // Nobody online under that name, on either backend.
      await refused(a, 'message:private', { to: uniq('ghost'), content: 'x' }, 'user_not_found');
      await refused(p, 'message:private', { to: uniq('ghost'), content: 'x' }, 'user_not_found');
      // A user who left backend1 cleanly still owns its name: a message sent
      // to it through backend2 waits for it, and it reads it when it comes
      // back on backend1 with its token.
      const gone = p.username;
      p.disconnect();
      await eventually(b, 'users', lacksUser(gone), `${gone} gone on backend2`);
      const away = await ok(b, 'message:private', { to: gone, content: 'while you were away' });
      const back = await cluster.client(1, { token: p.token });
      const hp = await ok(back, 'history:fetch', { with: b.username });
      assert.deepEqual(hp.messages.map((m) => [m.id, m.content]), [[r3.id, 'to the poller'], [away.id, 'while you were away']]);
    });

    test('membership and read state are the user\'s across backends: join, read:update, leave', async () => {
      const a = await on1(uniq('Cross'));
      const a2 = await cluster.client(2, { token: a.token }); // the same user on backend2
      const b = await on2(uniq('Talk'));
      const room = uniq('Xr');
      await ok(b, 'room:create', room);
      await ok(a, 'room:join', room); // on backend1: its connection on backend2 follows
      await until('the join reaches backend2', async () =>
        (await ack(a2, 'message:room', { room, content: 'probe' }))?.ok === true);
      const got = collect(a2, 'message:receive');
      const m1 = await ok(b, 'message:room', { room, content: 'to every tab' });
      await got.until((items) => items.some((m) => m.id === m1.id));
      // A mark on backend1: read:update to the connection on backend2 (not to the marker).
      const upd = waitFor(a2, 'read:update', T);
      const own = collect(a, 'read:update');
      const r = await ok(a, 'read:mark', { room, id: m1.id });
      assert.equal(r.unread, 0);
      assert.deepEqual(await upd, { room, lastReadId: m1.id, unread: 0 });
      await roundTrip(a);
      assert.deepEqual(own.items, []);
      // A leave on backend2: the connection on backend1 is out too.
      await ok(a2, 'room:leave', room);
      await until('the leave reaches backend1', async () =>
        (await ack(a, 'message:room', { room, content: 'x' }))?.error === 'not_in_room');
      // A new connection on backend1 is in none of it, and conversations:list agrees.
      const list = await ok(a, 'conversations:list');
      assert.ok(!list.conversations.some((c) => c.room === room), JSON.stringify(list));
    });

    test('typing, room and private, crosses backends and never reaches the sender', async () => {
      const room = uniq('Typ');
      const a = await on1(uniq('Tam'));
      const b = await on2(uniq('Tod'));
      const p = await polling(2, uniq('Tip'));
      const n = await on2(uniq('Tnm')); // not in the room
      await ok(a, 'room:create', room);
      await ok(b, 'room:join', room);
      await ok(p, 'room:join', room);
      const typing = new Map([a, b, p, n].map((s) => [s, collect(s, 'typing')]));

      assert.deepEqual(await ack(a, 'typing', { room, isTyping: true, from: 'mallory' }), { ok: true });
      for (const s of [b, p]) {
        const [t] = await typing.get(s).until(1);
        assert.deepEqual(t, { room, from: a.username, isTyping: true }, s.label);
      }
      // And back from backend2 (long-polling) to backend1.
      await ok(p, 'typing', { room, isTyping: false });
      const [back] = await typing.get(a).until(1);
      assert.deepEqual(back, { room, from: p.username, isTyping: false });
      await typing.get(b).until(2);
      assert.deepEqual(typing.get(b).items[1], { room, from: p.username, isTyping: false });
      for (const s of [a, b, p, n]) await roundTrip(s);
      assert.equal(typing.get(a).items.length, 1, 'the sender a never got its own');
      assert.equal(typing.get(p).items.length, 1, 'the sender p never got its own');
      assert.deepEqual(typing.get(n).items, [], 'not a member');

      // Private: only to `to`, on the other backend.
      await ok(b, 'typing', { to: a.username, isTyping: true });
      await typing.get(a).until(2);
      assert.deepEqual(typing.get(a).items[1], { from: b.username, isTyping: true });
      for (const s of [a, b, p, n]) await roundTrip(s);
      assert.equal(typing.get(b).items.length, 2, 'b did not get its own private typing');
      assert.equal(typing.get(p).items.length, 1);
      assert.deepEqual(typing.get(n).items, []);
      await refused(a, 'typing', { to: uniq('ghost'), isTyping: true }, 'user_not_found');
    });

    test('clientId: a retry on the same connection is neither stored nor delivered again', async () => {
      const room = uniq('Ded');
      const a = await on1(uniq('Cid'));
      const b = await on2(uniq('Cod'));
      const p = await polling(2, uniq('Cup'));
      await ok(a, 'room:create', room);
      await ok(b, 'room:join', room);
      await ok(p, 'room:join', room);
      await eventually(a, 'users', hasUser(b.username), `${b.username} known on backend1`);
      const got = new Map([b, p].map((s) => [s, collect(s, 'message:receive')]));
      const clientId = `cid-${uniq('x')}-\u00e9`;
      const first = await ok(a, 'message:room', { room, content: 'once', clientId });
      const retry = await ok(a, 'message:room', { room, content: 'once', clientId });
      assert.deepEqual(retry, first);
      // Per user, across conversations: a private retry with it is the same.
      assert.deepEqual(await ok(a, 'message:private', { to: b.username, content: 'once?', clientId }), first);
      // A long-polling sender through NGINX, on backend2.
      const pid = `pcid-${uniq('y')}`;
      const pFirst = await ok(p, 'message:room', { room, content: 'poll once', clientId: pid });
      assert.deepEqual(await ok(p, 'message:room', { room, content: 'poll once', clientId: pid }), pFirst);
      const last = await ok(a, 'message:room', { room, content: 'after' });
      for (const s of [b, p]) {
        await got.get(s).until((items) => [first.id, pFirst.id, last.id].every((id) => items.some((m) => m.id === id)));
        await roundTrip(s);
        assert.deepEqual(got.get(s).items.map((m) => m.content).sort(), ['after', 'once', 'poll once'], s.label);
      }
      const h = await ok(b, 'history:fetch', { room });
      assert.deepEqual(h.messages.map((m) => m.id), [first.id, pFirst.id, last.id]);
      assert.deepEqual((await ok(b, 'history:fetch', { with: a.username })).messages, []);
    });

    test('a lost connection is reserved cluster-wide and recovers on its backend with what the other one sent', async () => {
      const room = uniq('Res');
      const al = await on1(uniq('Al'));
      const bo = await on2(uniq('Bo'));
      const cy = await polling(2);
      await ok(al, 'room:create', room);
      await ok(bo, 'room:join', room);
      await eventually(bo, 'rooms', (l) => roomCount(l, room) === 2, `${room}: 2 on backend2`);
      const got = collect(al, 'message:receive');
      const first = await ok(bo, 'message:room', { room, content: 'before' });
      await got.until(1); // al now has an offset to come back with
      assert.equal(typeof al._pid, 'string', 'the server offers recovery');

      // The transport dies without a goodbye: not listed nor counted on the
      // other backend, its name still refused there, private messages to it
      // from there accepted.
      const gone = waitFor(al, 'disconnect');
      al.io.engine.close();
      await gone;
      await eventually(bo, 'users', lacksUser(al.username), `${al.username} unlisted on backend2`);
      await eventually(bo, 'rooms', (l) => roomCount(l, room) === 1, `${room}: 1 on backend2`);
      await refused(cy, 'user:join', al.username.toUpperCase(), 'username_taken');
      const missed = [];
      for (const content of ['one', 'two']) missed.push((await ok(bo, 'message:room', { room, content })).id);
      missed.push((await ok(bo, 'message:private', { to: al.username, content: 'psst' })).id);

      // Back on its own backend: recovered, every missed packet once, in order.
      al.connect();
      await waitFor(al, 'connect');
      assert.equal(al.recovered, true);
      await got.until(4);
      assert.deepEqual(got.items.map((m) => m.id), [first.id, ...missed]);
      await eventually(bo, 'users', hasUser(al.username), `${al.username} listed again on backend2`);
      await eventually(bo, 'rooms', (l) => roomCount(l, room) === 2, `${room}: 2 again on backend2`);
      const echo = waitFor(bo, 'message:receive', T, (m) => m.content === 'back');
      await ok(al, 'message:room', { room, content: 'back' }); // no new user:join or room:join
      assert.equal((await echo).from, al.username);
    });

    test('clientId is remembered per user: a retry after moving to the other backend is not stored again', async () => {
      const room = uniq('Mov');
      const name = uniq('Mover');
      const a = await on1(name);
      const b = await on2(uniq('Stay'));
      await ok(a, 'room:create', room);
      await ok(b, 'room:join', room);
      const clientId = `move-${uniq('z')}`;
      const first = await ok(a, 'message:room', { room, content: 'sent before the move', clientId });
      a.disconnect();
      // The same user comes back on backend2, with its token.
      const a2 = await cluster.client(2, { token: a.token });
      assert.equal((await ok(a2, 'user:join', name)).user.id, a.user.id);
      await ok(a2, 'room:join', room);
      const got = collect(b, 'message:receive');
      assert.deepEqual(await ok(a2, 'message:room', { room, content: 'sent before the move', clientId }), first);
      const last = await ok(a2, 'message:room', { room, content: 'after the move' });
      await got.until((items) => items.some((m) => m.id === last.id));
      assert.deepEqual(got.items.map((m) => m.id), [last.id]);
      const h = await ok(b, 'history:fetch', { room });
      assert.deepEqual(h.messages.map((m) => m.id), [first.id, last.id]);
    });
  });

  describe('token mode (one user, connections on both backends)', () => {
    before(() => cluster.restartBackends({ PARLEY_AUTH_SECRET: SECRET }));

    const token = (name) => ({ auth: { token: jwt({ sub: name }, SECRET) } });
    const tab = async (where, name, extra = {}) => {
      const s = await cluster.client(where, { ...extra, opts: token(name) });
      s.label = s.label.replace(/^anon/, name);
      s.username = name;
      return s;
    };

    test('private messages reach every connection of the recipient and of the sender, once', async () => {
      const xName = uniq('Xia');
      const yName = uniq('Yul');
      const x1 = await tab(1, xName);
      const x2 = await tab(2, xName);
      const x3 = await tab('nginx', xName, { transport: 'polling', address: to1 });
      const y1 = await tab(1, yName);
      const y2 = await tab(2, yName);
      const zName = uniq('Zed');
      const z = await tab(2, zName);
      const xs = [x1, x2, x3];
      const ys = [y1, y2];
      const got = new Map([...xs, ...ys, z].map((s) => [s, collect(s, 'message:receive')]));
      // One entry per user, however many connections on however many
      // backends. users:update goes out on changes: z's arrival is the last
      // one, which every connection before it gets.
      for (const s of [...xs, ...ys]) {
        await eventually(s, 'users', listsOnce([xName, yName, zName]), `users once each on ${s.label}`);
      }
      const r = await ok(y2, 'message:private', { to: xName, content: 'to all your tabs' });
      const expected = { id: r.id, type: 'private', to: xName, from: yName, content: 'to all your tabs', timestamp: r.timestamp };
      const r2 = await ok(y2, 'message:private', { to: xName, content: 'and again' });
      for (const s of [...xs, ...ys]) {
        await got.get(s).until((items) => countId(items, r2.id) === 1);
        assert.equal(countId(got.get(s).items, r.id), 1, `once on ${s.label}`);
        assert.deepEqual(got.get(s).items.find((m) => m.id === r.id), expected, s.label);
      }
      await roundTrip(z);
      assert.deepEqual(got.get(z).items, []);
      // Private typing: every connection of `to`, none of the sender's.
      const typing = new Map([...xs, ...ys].map((s) => [s, collect(s, 'typing')]));
      await ok(y1, 'typing', { to: xName, isTyping: true });
      for (const s of xs) {
        const [t] = await typing.get(s).until(1);
        assert.deepEqual(t, { from: yName, isTyping: true }, s.label);
      }
      for (const s of [...xs, ...ys]) await roundTrip(s);
      for (const s of ys) assert.deepEqual(typing.get(s).items, [], `sender connection ${s.label}`);
      for (const s of xs) assert.equal(typing.get(s).items.length, 1, `once on ${s.label}`);
    });

    test('room typing never reaches any connection of the sender, on any backend', async () => {
      const room = uniq('Tok');
      const uName = uniq('Una');
      const vName = uniq('Vic');
      const u1 = await tab(1, uName);
      const u2 = await tab(2, uName);
      const v2 = await tab(2, vName);
      const v3 = await tab('nginx', vName, { transport: 'polling', address: to1 });
      await ok(u1, 'room:create', room);
      for (const s of [u2, v2, v3]) await ok(s, 'room:join', room);
      for (const s of [u1, u2, v2, v3]) await eventually(s, 'rooms', (l) => roomCount(l, room) === 4, `${room}: 4 connections on ${s.label}`);
      const typing = new Map([u1, u2, v2, v3].map((s) => [s, collect(s, 'typing')]));
      await ok(u1, 'typing', { room, isTyping: true });
      for (const s of [v2, v3]) {
        const [t] = await typing.get(s).until(1);
        assert.deepEqual(t, { room, from: uName, isTyping: true }, s.label);
      }
      for (const s of [u1, u2, v2, v3]) await roundTrip(s);
      assert.deepEqual(typing.get(u1).items, [], 'the sending connection');
      assert.deepEqual(typing.get(u2).items, [], "the sender's other connection, on backend2");
      // Room messages do reach every connection, the sender's included.
      const got = new Map([u1, u2, v2, v3].map((s) => [s, collect(s, 'message:receive')]));
      const m = await ok(v3, 'message:room', { room, content: 'all of us' });
      for (const s of [u1, u2, v2, v3]) {
        await got.get(s).until(1);
        assert.deepEqual(got.get(s).items.map((x) => x.id), [m.id], s.label);
      }
    });
  });
});
