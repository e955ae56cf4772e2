// server.js - the Parley chat contract (docs/PROTOCOL.md,
// docs/PROTOCOL.md) on Node.js + socket.io: what a team would build instead of
// parley, kept as the comparison point of bench/ (docs/BENCHMARKS.md).
//
// Written plainly, the way the socket.io docs suggest, with nothing held back:
// broadcasts go through io.to(room).emit (socket.io encodes a broadcast once),
// presence updates are coalesced over --presence-delay ms exactly as parley
// does by default (30 ms), validation follows the contract.
//
// Two modes:
//   in-memory (default)      state in Maps, one process
//   --redis H:P[,H:P...]     a Redis Cluster: @socket.io/redis-adapter in sharded
//                            mode (Redis 7 sharded pub/sub) carries broadcasts
//                            between servers; users, rooms, room counts and
//                            messages live in Redis so that every backend sees
//                            the same chat.
// Not implemented (parley has them; the benchmarks do not exercise them):
// token mode, the rate limiter (parley runs with --rate-limit 0 in the
// benchmarks), connection state recovery and the name reservation after an
// abrupt disconnect.
//
// Usage: node server.js [--port 0] [--host 127.0.0.1] [--redis ...] [--presence-delay 30]
//                       [--port-file FILE]
// Logs one logfmt line with msg="listening" port=N on stderr and, with
// --port-file, writes the bound port to FILE (a temporary file renamed over
// it), like parley.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const { Server } = require('socket.io');

// ---- options -----------------------------------------------------------------

function parseArgs(argv) {
  const o = { port: 8080, host: '0.0.0.0', redis: '', presenceDelay: 30, maxContent: 4000, portFile: '' };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--port': o.port = Number(v); i++; break;
      case '--host': o.host = v; i++; break;
      case '--redis': o.redis = v; i++; break;
      case '--presence-delay': o.presenceDelay = Number(v); i++; break;
      case '--max-content': o.maxContent = Number(v); i++; break;
      case '--port-file': o.portFile = v; i++; break;
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  return o;
}
const opts = parseArgs(process.argv.slice(2));

const log = (level, msg, fields = '') =>
  process.stderr.write(`ts=${new Date().toISOString()} level=${level} msg="${msg}"${fields ? ' ' + fields : ''}\n`);

// ---- validation ------------------------------------------------------------------

const fail = (error, message) => ({ ok: false, error, message });
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const CONTROL_OR_FORMAT = /[\p{Cc}\p{Cf}]/u;
const BAD_CONTENT = /[\u0000-\u0008\u000b-\u001f]/;

function codePoints(s) {
  let n = 0;
  for (const _ of s) n++; // eslint-disable-line no-unused-vars
  return n;
}

/** A username or room name: trimmed, 1..max code points, no Cc/Cf.
 *  Returns { name (NFC), key (NFKC case-folded) } or null. */
function checkName(raw, max) {
  const s = raw.trim();
  if (s.length === 0 || (s.length > max && codePoints(s) > max) || CONTROL_OR_FORMAT.test(s)) return null;
  return { name: s.normalize('NFC'), key: s.normalize('NFKC').toLowerCase().normalize('NFKC') };
}

function checkContent(c) {
  if (c.length === 0 || BAD_CONTENT.test(c)) return fail('invalid_payload', 'content must be a non-empty string without control characters');
  if (c.length > opts.maxContent && codePoints(c) > opts.maxContent) return fail('content_too_long', `content is longer than ${opts.maxContent} code points`);
  return null;
}

function checkClientId(id) {
  return id === undefined || (typeof id === 'string' && id.length > 0 && codePoints(id) <= 64);
}

// ---- stores ----------------------------------------------------------------------

/** Everything in this process. Methods are synchronous; callers await them
 *  all the same so that the handlers serve both stores. */
function memoryStore(io) {
  const names = new Map(); // key -> socket id
  const users = new Map(); // socket id -> { id, username }
  const rooms = new Map(); // key -> display name
  const convs = new Map(); // conversation key -> { seq, messages }
  const conv = (k) => {
    let c = convs.get(k);
    if (!c) convs.set(k, (c = { seq: 0, messages: [] }));
    return c;
  };
  return {
    claimName(key, sid) {
      const owner = names.get(key);
      if (owner && owner !== sid) return false;
      names.set(key, sid);
      return true;
    },
    releaseName(key, sid) { if (names.get(key) === sid) names.delete(key); },
    findUser(key) { return names.get(key) ?? null; },
    setUser(sid, user) { users.set(sid, user); },
    dropUser(sid) { users.delete(sid); },
    listUsers() { return [...users.values()].map((u) => ({ id: u.id, username: u.username, isActive: true })); },
    createRoom(key, name) {
      if (!rooms.has(key)) rooms.set(key, name);
      return rooms.get(key);
    },
    getRoom(key) { return rooms.get(key) ?? null; },
    roomJoined() {}, // counts come from the adapter's own room sets
    listRooms() {
      const sets = io.of('/').adapter.rooms;
      return [...rooms].map(([key, name]) => ({ name, users: sets.get('r:' + key)?.size ?? 0 }));
    },
    addMessage(k, msg) {
      const c = conv(k);
      msg.id = String(++c.seq);
      c.messages.push(msg);
      return msg;
    },
    history(k, before, limit) {
      const list = convs.get(k)?.messages ?? [];
      let end = list.length;
      if (before !== undefined) end = Math.max(0, Math.min(end, Number(before) - 1));
      const start = Math.max(0, end - limit);
      return { messages: list.slice(start, end), hasMore: start > 0 };
    },
  };
}

/** State in a Redis Cluster (node-redis cluster client). */
function redisStore(r) {
  return {
    async claimName(key, sid) {
      if (await r.hSetNX('chat:names', key, sid)) return true;
      return (await r.hGet('chat:names', key)) === sid;
    },
    async releaseName(key, sid) {
      if ((await r.hGet('chat:names', key)) === sid) await r.hDel('chat:names', key);
    },
    async findUser(key) { return (await r.hGet('chat:names', key)) ?? null; },
    async setUser(sid, user) { await r.hSet('chat:users', sid, JSON.stringify(user)); },
    async dropUser(sid) { await r.hDel('chat:users', sid); },
    async listUsers() {
      return (await r.hVals('chat:users')).map((j) => {
        const u = JSON.parse(j);
        return { id: u.id, username: u.username, isActive: true };
      });
    },
    async createRoom(key, name) {
      await r.hSetNX('chat:rooms', key, name);
      return r.hGet('chat:rooms', key);
    },
    async getRoom(key) { return (await r.hGet('chat:rooms', key)) ?? null; },
    async roomJoined(key, delta) { await r.hIncrBy('chat:roomcount', key, delta); },
    async listRooms() {
      const [rooms, counts] = await Promise.all([r.hGetAll('chat:rooms'), r.hGetAll('chat:roomcount')]);
      return Object.entries(rooms).map(([key, name]) => ({ name, users: Number(counts[key] ?? 0) }));
    },
    async addMessage(k, msg) {
      msg.id = String(await r.incr(`chat:seq:{${k}}`));
      await r.rPush(`chat:msgs:{${k}}`, JSON.stringify(msg));
      return msg;
    },
    async history(k, before, limit) {
      const all = (await r.lRange(`chat:msgs:{${k}}`, 0, -1)).map((j) => JSON.parse(j));
      let end = all.length;
      if (before !== undefined) end = Math.max(0, Math.min(end, Number(before) - 1));
      const start = Math.max(0, end - limit);
      return { messages: all.slice(start, end), hasMore: start > 0 };
    },
  };
}

// ---- the chat --------------------------------------------------------------------

function startChat(io, store) {
  const me = new Map();      // socket id -> { id, username, key } once joined
  const sent = new Map();    // user key -> Map(clientId -> { id, timestamp, at })
  const DEDUP_MS = 10 * 60 * 1000;

  // presence: coalesced over presenceDelay, the last state always goes out
  let wantUsers = false, wantRooms = false, timer = null;
  async function flushPresence() {
    timer = null;
    const u = wantUsers, r = wantRooms;
    wantUsers = wantRooms = false;
    if (u) io.emit('users:update', await store.listUsers());
    if (r) io.emit('rooms:update', await store.listRooms());
  }
  function presence(users, rooms) {
    wantUsers ||= users;
    wantRooms ||= rooms;
    if (!timer) timer = setTimeout(flushPresence, opts.presenceDelay);
  }

  const convKey = (a, b) => (a < b ? `p:${a}\u0000${b}` : `p:${b}\u0000${a}`);

  function remembered(userKey, clientId) {
    if (clientId === undefined) return null;
    const m = sent.get(userKey);
    const e = m?.get(clientId);
    if (e && Date.now() - e.at < DEDUP_MS) return e;
    return null;
  }
  function remember(userKey, clientId, msg) {
    if (clientId === undefined) return;
    let m = sent.get(userKey);
    if (!m) sent.set(userKey, (m = new Map()));
    m.set(clientId, { id: msg.id, timestamp: msg.timestamp, at: Date.now() });
    if (m.size > 10000) { // forget what is older than the window
      const now = Date.now();
      for (const [k, v] of m) if (now - v.at >= DEDUP_MS) m.delete(k);
    }
  }

  async function joinRoom(socket, key, name) {
    const room = 'r:' + key;
    if (!socket.rooms.has(room)) {
      socket.join(room);
      await store.roomJoined(key, 1);
    }
    presence(false, true);
    const h = await store.history(room, undefined, 50);
    socket.emit('room:history', { room: name, messages: h.messages, hasMore: h.hasMore });
    const rooms = await store.listRooms();
    return { ok: true, room: { name, users: rooms.find((r) => r.name === name)?.users ?? 0 } };
  }

  const handlers = {
    async 'user:join'(socket, username) {
      if (typeof username !== 'string') return fail('invalid_payload', 'username must be a string');
      const n = checkName(username, 32);
      if (!n) return fail('invalid_username', 'a username is 1..32 characters, no control characters');
      const cur = me.get(socket.id);
      if (!cur || cur.key !== n.key) {
        if (!(await store.claimName(n.key, socket.id))) return fail('username_taken', 'that name is taken');
        if (cur) await store.releaseName(cur.key, socket.id);
      }
      const user = { id: socket.id, username: n.name, key: n.key };
      me.set(socket.id, user);
      await store.setUser(socket.id, { id: user.id, username: user.username });
      presence(true, false);
      return { ok: true, user: { id: user.id, username: user.username } };
    },

    async 'room:create'(socket, name) {
      if (typeof name !== 'string') return fail('invalid_payload', 'name must be a string');
      if (!me.has(socket.id)) return fail('not_joined', 'user:join first');
      const n = checkName(name, 64);
      if (!n) return fail('invalid_room', 'a room name is 1..64 characters, no control characters');
      const shown = await store.createRoom(n.key, n.name);
      return joinRoom(socket, n.key, shown);
    },

    async 'room:join'(socket, name) {
      if (typeof name !== 'string') return fail('invalid_payload', 'name must be a string');
      if (!me.has(socket.id)) return fail('not_joined', 'user:join first');
      const n = checkName(name, 64);
      if (!n) return fail('invalid_room', 'a room name is 1..64 characters, no control characters');
      const shown = await store.getRoom(n.key);
      if (shown === null) return fail('room_not_found', 'no such room');
      return joinRoom(socket, n.key, shown);
    },

    async 'room:leave'(socket, name) {
      if (typeof name !== 'string') return fail('invalid_payload', 'name must be a string');
      if (!me.has(socket.id)) return fail('not_joined', 'user:join first');
      const n = checkName(name, 64);
      if (!n) return fail('invalid_room', 'a room name is 1..64 characters, no control characters');
      if ((await store.getRoom(n.key)) === null) return fail('room_not_found', 'no such room');
      if (!socket.rooms.has('r:' + n.key)) return fail('not_in_room', 'you are not in that room');
      socket.leave('r:' + n.key);
      await store.roomJoined(n.key, -1);
      presence(false, true);
      return { ok: true };
    },

    async 'rooms:list'(socket) {
      const rooms = await store.listRooms();
      socket.emit('rooms:update', rooms);
      return { ok: true, rooms };
    },

    async 'message:room'(socket, p) {
      if (!isObj(p) || typeof p.room !== 'string' || typeof p.content !== 'string' || !checkClientId(p.clientId))
        return fail('invalid_payload', 'expected {room, content, clientId?}');
      const user = me.get(socket.id);
      if (!user) return fail('not_joined', 'user:join first');
      const n = checkName(p.room, 64);
      if (!n) return fail('invalid_room', 'a room name is 1..64 characters, no control characters');
      const bad = checkContent(p.content);
      if (bad) return bad;
      const shown = await store.getRoom(n.key);
      if (shown === null) return fail('room_not_found', 'no such room');
      const room = 'r:' + n.key;
      if (!socket.rooms.has(room)) return fail('not_in_room', 'join the room first');
      const again = remembered(user.key, p.clientId);
      if (again) return { ok: true, id: again.id, timestamp: again.timestamp };
      const msg = { id: '', type: 'room', room: shown, from: user.username, content: p.content, timestamp: Date.now() };
      await store.addMessage(room, msg);
      remember(user.key, p.clientId, msg);
      io.to(room).emit('message:receive', msg);
      return { ok: true, id: msg.id, timestamp: msg.timestamp };
    },

    async 'message:private'(socket, p) {
      if (!isObj(p) || typeof p.to !== 'string' || typeof p.content !== 'string' || !checkClientId(p.clientId))
        return fail('invalid_payload', 'expected {to, content, clientId?}');
      const user = me.get(socket.id);
      if (!user) return fail('not_joined', 'user:join first');
      const n = checkName(p.to, 32);
      if (!n) return fail('invalid_username', 'not a valid username');
      const bad = checkContent(p.content);
      if (bad) return bad;
      const target = await store.findUser(n.key);
      if (target === null) return fail('user_not_found', 'no such user online');
      const again = remembered(user.key, p.clientId);
      if (again) return { ok: true, id: again.id, timestamp: again.timestamp };
      const msg = { id: '', type: 'private', to: n.name, from: user.username, content: p.content, timestamp: Date.now() };
      await store.addMessage(convKey(user.key, n.key), msg);
      remember(user.key, p.clientId, msg);
      io.to(target).to(socket.id).emit('message:receive', msg);
      return { ok: true, id: msg.id, timestamp: msg.timestamp };
    },

    async 'history:fetch'(socket, p) {
      if (!isObj(p) || (typeof p.room !== 'string' && typeof p.with !== 'string'))
        return fail('invalid_payload', 'expected {room} or {with}');
      if (p.limit !== undefined && !(Number.isInteger(p.limit) && p.limit >= 1 && p.limit <= 100))
        return fail('invalid_payload', 'limit is an integer 1..100');
      if (p.before !== undefined && !(typeof p.before === 'string' && /^[1-9][0-9]*$/.test(p.before)))
        return fail('invalid_payload', 'before is a message id');
      const user = me.get(socket.id);
      if (!user) return fail('not_joined', 'user:join first');
      const limit = p.limit ?? 50;
      if (typeof p.room === 'string') {
        const n = checkName(p.room, 64);
        if (!n) return fail('invalid_room', 'not a valid room name');
        if ((await store.getRoom(n.key)) === null) return fail('room_not_found', 'no such room');
        if (!socket.rooms.has('r:' + n.key)) return fail('not_in_room', 'join the room first');
        return { ok: true, ...(await store.history('r:' + n.key, p.before, limit)) };
      }
      const n = checkName(p.with, 32);
      if (!n) return fail('invalid_username', 'not a valid username');
      return { ok: true, ...(await store.history(convKey(user.key, n.key), p.before, limit)) };
    },

    async typing(socket, p) {
      if (!isObj(p) || typeof p.isTyping !== 'boolean' || (typeof p.room !== 'string' && typeof p.to !== 'string'))
        return fail('invalid_payload', 'expected {room|to, isTyping}');
      const user = me.get(socket.id);
      if (!user) return fail('not_joined', 'user:join first');
      if (typeof p.room === 'string') {
        const n = checkName(p.room, 64);
        if (!n) return fail('invalid_room', 'not a valid room name');
        const shown = await store.getRoom(n.key);
        if (shown === null) return fail('room_not_found', 'no such room');
        if (!socket.rooms.has('r:' + n.key)) return fail('not_in_room', 'join the room first');
        socket.to('r:' + n.key).emit('typing', { room: shown, from: user.username, isTyping: p.isTyping });
        return { ok: true };
      }
      const n = checkName(p.to, 32);
      if (!n) return fail('invalid_username', 'not a valid username');
      const target = await store.findUser(n.key);
      if (target === null) return fail('user_not_found', 'no such user online');
      if (target !== socket.id) io.to(target).emit('typing', { from: user.username, isTyping: p.isTyping });
      return { ok: true };
    },
  };

  io.on('connection', (socket) => {
    // One socket's events are handled in the order they came (clients
    // pipeline user:join and room:join); handlers await the store, so they
    // are chained per socket.
    let tail = Promise.resolve();
    for (const [event, fn] of Object.entries(handlers)) {
      socket.on(event, (...args) => {
        const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
        tail = tail.then(async () => {
          let res;
          try {
            res = await fn(socket, ...args);
          } catch (e) {
            log('error', 'handler failed', `event=${event} err="${String(e && e.message)}"`);
            res = fail('internal', 'internal error');
          }
          if (ack) ack(res);
          else if (!res.ok) socket.emit('chat:error', { event, error: res.error, message: res.message });
        });
      });
    }
    socket.on('disconnecting', () => {
      // membership is still readable here; counts are fixed up before the rooms go
      const rooms = [...socket.rooms].filter((r) => r.startsWith('r:'));
      for (const r of rooms) store.roomJoined(r.slice(2), -1);
      if (rooms.length) presence(false, true);
    });
    socket.on('disconnect', async () => {
      const user = me.get(socket.id);
      if (!user) return;
      me.delete(socket.id);
      await store.releaseName(user.key, socket.id);
      await store.dropUser(socket.id);
      presence(true, false);
    });
  });
}

// ---- main --------------------------------------------------------------------------

async function main() {
  const httpServer = http.createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return;
    }
    res.writeHead(404);
    res.end();
  });
  const io = new Server(httpServer, {
    serveClient: false,
    maxHttpBufferSize: 1e6,
    pingInterval: 25000,
    pingTimeout: 20000,
  });

  let store;
  if (opts.redis) {
    const { createCluster } = require('redis');
    const { createShardedAdapter } = require('@socket.io/redis-adapter');
    const rootNodes = opts.redis.split(',').map((hp) => ({ url: `redis://${hp}` }));
    const pub = createCluster({ rootNodes });
    const sub = pub.duplicate();
    pub.on('error', (e) => log('error', 'redis', `err="${e.message}"`));
    sub.on('error', (e) => log('error', 'redis', `err="${e.message}"`));
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createShardedAdapter(pub, sub));
    store = redisStore(pub);
  } else {
    store = memoryStore(io);
  }
  startChat(io, store);

  httpServer.listen(opts.port, opts.host, () => {
    const { port } = httpServer.address();
    if (opts.portFile) {
      const tmp = `${opts.portFile}.tmp.${process.pid}`;
      fs.writeFileSync(tmp, `${port}\n`);
      fs.renameSync(tmp, opts.portFile);
    }
    log('info', 'listening', `port=${port} host=${opts.host} mode=${opts.redis ? 'redis-cluster' : 'memory'} node=${process.version}`);
  });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
}

main().catch((e) => {
  log('error', 'startup failed', `err="${e.message}"`);
  process.exit(1);
});
