// tests/cluster/lib.mjs - what the cluster tests share: a local cluster of
// scripts/cluster-up.sh (6 Redis nodes, 2 parley backends, NGINX) started on
// ports picked free for the run (the backends' by the kernel, read from
// their --port-file) in a temporary CLUSTER_DIR, and stopped with
// scripts/cluster-down.sh whatever happened; socket.io clients on a backend
// directly or through NGINX (long-polling or WebSocket, from a chosen client
// address so that NGINX's hash on it puts them on a known backend); small
// event helpers (waitFor, collect, the last users:update / rooms:update of
// a socket) and Redis and process helpers for the fault tests.
//
// KEEP_CLUSTER_DIR=1 keeps each cluster's directory (pid files, backend*.log,
// redis-*.log, nginx/) after the run and prints where it is.
// socket.io-client comes from tests/integration/node_modules (npm ci there).
//
// No helper sleeps in place of waiting for something: until() polls a
// condition every 100 ms up to a bound, the event helpers wait for events up
// to a bound.

import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'tests/integration/package.json'));
export const { io } = require('socket.io-client');

export const PARLEY = path.join(ROOT, 'build/parley');
/** build/parley knows --redis (cluster mode). */
export const HAS_REDIS =
  fs.existsSync(PARLEY) && /^\s*--redis\s/m.test(spawnSync(PARLEY, ['--help']).stdout.toString());
/** Bound of one wait. */
export const T = 10000;

// ---- ports --------------------------------------------------------------------

/** A free port chosen by the kernel (free when checked; the script binds it
 *  right after): NGINX's, which cannot report a port it picked itself. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A base port such that base..base+5 and their cluster bus ports (+10000)
 *  are all free: free_port_block of scripts/lib.sh, the search the
 *  project's scripts use (below the kernel's ephemeral range, where
 *  freePort() picks, so the two cannot collide). */
export function freeRedisBase() {
  const r = spawnSync('bash', ['-c', '. scripts/lib.sh && free_port_block 6'], { cwd: ROOT, encoding: 'utf8' });
  const base = Number(r.stdout.trim());
  if (r.status !== 0 || !Number.isInteger(base)) throw new Error(`no free range of Redis ports: ${r.stderr}`);
  return base;
}

// ---- processes, HTTP ------------------------------------------------------------

export function request(url, { method = 'GET', body, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, localAddress, agent: false, timeout: T }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Runs scripts/NAME with env added; resolves its stdout, rejects with its
 *  output when it fails. Asynchronous, so that clients keep running. */
export function script(name, env, timeoutMs = 180000) {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(ROOT, 'scripts', name), [], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${name} exited ${code} (${signal ?? 'no signal'}):\n${out}\n${err}`));
    });
  });
}

export function readPid(dir, name) {
  return Number(fs.readFileSync(path.join(dir, `${name}.pid`), 'utf8').trim());
}

/** True if pid runs; a zombie (exited, not yet reaped by its new parent:
 *  the cluster's processes are daemons) does not count. */
export function isAlive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Polls fn() every 100 ms until it returns something truthy (resolved
 *  with it), at most ms; a throwing fn counts as false. */
export async function until(what, fn, ms = T) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await Promise.resolve().then(fn).catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The value of an unlabelled (or fully labelled) metric on one backend. */
export async function metric(port, name) {
  const { body } = await request(`http://127.0.0.1:${port}/metrics`);
  const line = body.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

/** redis-cli against one node (no -c); resolves its stdout. */
export function redisCli(port, ...args) {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 5000 }, (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    );
  });
}

// ---- socket.io helpers --------------------------------------------------------------

// parley's connection state recovery appends an offset ("<8 chars>-<seq>")
// as the last argument of every replayable event, as Socket.IO does; the
// payload is what precedes it.
export const RECOVERY_OFFSET = /^[A-Za-z0-9_-]{8}-\d+$/;
export function withoutOffset(args) {
  const last = args[args.length - 1];
  return args.length > 1 && typeof last === 'string' && RECOVERY_OFFSET.test(last) ? args.slice(0, -1) : args;
}

/** Resolves with the first argument of the next `event` on `emitter` that
 *  satisfies filter (recovery offset left out), or rejects after ms. */
export function waitFor(emitter, event, ms = T, filter = () => true) {
  return new Promise((resolve, reject) => {
    const onEvent = (...all) => {
      const [v] = withoutOffset(all);
      if (!filter(v)) return;
      clearTimeout(timer);
      emitter.off(event, onEvent);
      resolve(v);
    };
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`timed out after ${ms} ms waiting for "${event}"`));
    }, ms);
    emitter.on(event, onEvent);
  });
}

/** Records the first argument of every `event` on `emitter` from now on:
 *  { items, until(n|pred, ms), stop() }. until(pred) waits until
 *  pred(items) is true. */
export function collect(emitter, event) {
  const items = [];
  const waiters = new Set();
  const check = () => {
    for (const w of waiters) if (w.done()) w.resolve();
  };
  const onEvent = (...all) => {
    items.push(withoutOffset(all)[0]);
    check();
  };
  emitter.on(event, onEvent);
  return {
    items,
    until(cond, ms = T) {
      const done = typeof cond === 'number' ? () => items.length >= cond : () => cond(items);
      if (done()) return Promise.resolve(items);
      return new Promise((resolve, reject) => {
        const w = {
          done,
          resolve: () => {
            clearTimeout(timer);
            waiters.delete(w);
            resolve(items);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`timed out after ${ms} ms waiting for "${event}" events (got ${items.length}: ${JSON.stringify(items).slice(0, 600)})`));
        }, ms);
        waiters.add(w);
      });
    },
    stop() {
      emitter.off(event, onEvent);
    },
  };
}

/** Emits event (payload left out when undefined) with a callback; resolves
 *  the ack's first argument, rejects when none comes within ms. */
export function ack(sock, event, payload, ms = T) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for "${event}" within ${ms} ms`)), ms);
    const args = payload === undefined ? [] : [payload];
    sock.emit(event, ...args, (reply) => {
      clearTimeout(timer);
      resolve(reply);
    });
  });
}

/** ack(), asserting {ok: true}. */
export async function ok(sock, event, payload, ms = T) {
  const reply = await ack(sock, event, payload, ms);
  assert.equal(reply?.ok, true, `${sock.label ?? ''} ${event} ${JSON.stringify(payload)}: ${JSON.stringify(reply)}`);
  return reply;
}

/** ack(), asserting a refusal with code. */
export async function refused(sock, event, payload, code) {
  const reply = await ack(sock, event, payload);
  assert.equal(reply?.ok, false, `${event} ${JSON.stringify(payload)}: expected ${code}, got ${JSON.stringify(reply)}`);
  assert.equal(reply.error, code, `${event} ${JSON.stringify(payload)}: ${JSON.stringify(reply)}`);
  return reply;
}

/** A round trip on sock: every event the server wrote to it before
 *  answering has arrived once this resolves (one connection is in order). */
export const roundTrip = (sock) => ok(sock, 'rooms:list');

/** Keeps the last users:update and rooms:update of sock in sock.users and
 *  sock.rooms (null until one came), and wakes state waiters. */
export function trackState(sock) {
  sock.users = null;
  sock.rooms = null;
  sock.stateWaiters = new Set();
  const wake = () => {
    for (const w of sock.stateWaiters) w();
  };
  sock.on('users:update', (...a) => {
    sock.users = withoutOffset(a)[0];
    wake();
  });
  sock.on('rooms:update', (...a) => {
    sock.rooms = withoutOffset(a)[0];
    wake();
  });
  return sock;
}

/** Resolves once pred(sock[kind]) holds ('users' or 'rooms': the last
 *  update the socket got), with the time it took; rejects after ms with
 *  the last value seen. */
export function eventually(sock, kind, pred, what = kind, ms = T) {
  const start = Date.now();
  const test = () => sock[kind] !== null && pred(sock[kind]);
  if (test()) return Promise.resolve(0);
  return new Promise((resolve, reject) => {
    const w = () => {
      if (!test()) return;
      clearTimeout(timer);
      sock.stateWaiters.delete(w);
      resolve(Date.now() - start);
    };
    const timer = setTimeout(() => {
      sock.stateWaiters.delete(w);
      reject(new Error(`${sock.label ?? 'socket'}: timed out after ${ms} ms waiting for ${what}; last ${kind}: ${JSON.stringify(sock[kind])}`));
    }, ms);
    sock.stateWaiters.add(w);
  });
}

/** The usernames of a users:update list. */
export const names = (list) => list.map((u) => u.username);
export const hasUser = (name) => (list) => names(list).includes(name);
export const lacksUser = (name) => (list) => !names(list).includes(name);
/** users of a room in a rooms:update list (undefined when not listed). */
export const roomCount = (list, room) => list.find((r) => r.name === room)?.users;

/** An HS256 JWT for token mode. */
export function jwt(payload, secret) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(payload)}`;
  return `${body}.${crypto.createHmac('sha256', secret).update(body).digest('base64url')}`;
}

let seq = 0;
/** A name no other test of this process uses (<= 32 code points). */
export const uniq = (prefix) => `${prefix}${process.pid % 1000}x${++seq}`;

// ---- the cluster ------------------------------------------------------------------

// Clusters started and not stopped yet: stopped synchronously if the test
// process is interrupted (Ctrl-C), since after() hooks do not run then.
const live = new Set();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    for (const c of live) {
      spawnSync(path.join(ROOT, 'scripts', 'cluster-down.sh'), [], {
        cwd: ROOT, env: { ...process.env, ...c.env, CLUSTER_DIR: c.dir }, stdio: 'ignore', timeout: 60000,
      });
    }
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

/**
 * One local cluster, for one test file:
 *   const cluster = new Cluster('shared', { PARLEY_RATE_LIMIT: '0' });
 *   before(() => cluster.start());
 *   after(() => cluster.stop());
 * env is added to the environment of cluster-up.sh, which the backends
 * inherit (parley reads PARLEY_<FLAG>).
 */
export class Cluster {
  constructor(label, env = {}) {
    this.label = label;
    this.extraEnv = env;
    this.dir = null;
    this.env = null;
    this.sockets = new Set();
    this.home = new Map(); // client address -> backend (1 or 2) NGINX first sent it to
    this.addressSeq = 10;
  }

  async start() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `parley-${this.label}-`));
    live.add(this);
    this.env = {
      ...this.extraEnv,
      CLUSTER_DIR: this.dir,
      REDIS_BASE_PORT: String(freeRedisBase()),
      // The backends take ports the kernel picks (--port 0) and write them
      // to CLUSTER_DIR/backendN.port; a restart keeps the same port.
      BACKEND1_PORT: '0',
      BACKEND2_PORT: '0',
      NGINX_PORT: String(await freePort()),
    };
    await this.up();
  }

  /** cluster-up.sh again (idempotent: starts only what is missing); env is
   *  added for this run, and kept for later ones. Then settle(). */
  async up(env = {}) {
    Object.assign(this.env, env);
    const out = await script('cluster-up.sh', this.env);
    if (HAS_REDIS) {
      // The backends must run on the Redis bus, not standalone (only the
      // Redis bus has the parley_bus_* metrics).
      for (const i of [1, 2]) {
        const n = await metric(this.backendPort(i), 'parley_bus_nodes');
        assert.ok(!Number.isNaN(n), `backend${i} runs without --redis (no parley_bus_nodes metric); cluster-up said:\n${out}`);
      }
    }
    await this.settle();
    return out;
  }

  /** Waits until NGINX sends every probed client address to its first
   *  backend again. After a backend failed, NGINX keeps it out for
   *  fail_timeout (5 s, deploy/nginx.conf) and its addresses go to the
   *  other one; when it is back, they go home, and a long-polling session
   *  opened meanwhile on the other backend is lost ("Session ID unknown").
   *  Tests that need stable routes start once this has returned. */
  async settle(ms = 20000) {
    for (const [address, backend] of this.home) {
      await until(`NGINX to send ${address} to backend${backend} again`,
        async () => (await this.probeRoute(address)) === backend, ms);
    }
  }

  /** Closes the clients, runs cluster-down.sh, checks that every process of
   *  a pid file is gone and the pid files too, removes the directory (unless
   *  KEEP_CLUSTER_DIR). Runs whatever happened before. */
  async stop() {
    this.closeClients();
    if (!this.dir) return;
    const pids = fs
      .readdirSync(this.dir)
      .filter((f) => f.endsWith('.pid'))
      .map((f) => readPid(this.dir, f.slice(0, -4)));
    try {
      await script('cluster-down.sh', this.env ?? { CLUSTER_DIR: this.dir });
      live.delete(this);
      for (const pid of pids) assert.ok(!isAlive(pid), `pid ${pid} still runs after cluster-down`);
      assert.deepEqual(fs.readdirSync(this.dir).filter((f) => f.endsWith('.pid')), []);
    } finally {
      if (process.env.KEEP_CLUSTER_DIR) process.stderr.write(`# ${this.label}: cluster directory kept: ${this.dir}\n`);
      else fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  get url() {
    return `http://127.0.0.1:${this.env.NGINX_PORT}`;
  }

  /** The port backend i listens on (its --port-file, written by parley). */
  backendPort(i) {
    return Number(fs.readFileSync(path.join(this.dir, `backend${i}.port`), 'utf8').trim());
  }

  backendUrl(i) {
    return `http://127.0.0.1:${this.backendPort(i)}`;
  }

  redisPorts() {
    const base = Number(this.env.REDIS_BASE_PORT);
    return [0, 1, 2, 3, 4, 5].map((i) => base + i);
  }

  pid(name) {
    return readPid(this.dir, name);
  }

  /** Sends signal to the process of NAME.pid and waits until it is gone;
   *  resolves { pid, at } (at: Date.now() right after the kill). */
  async kill(name, signal = 'SIGKILL', ms = 15000) {
    const pid = this.pid(name);
    assert.ok(isAlive(pid), `${name} (pid ${pid}) runs before the kill`);
    process.kill(pid, signal);
    const at = Date.now();
    await until(`${name} (pid ${pid}) to exit after ${signal}`, () => !isAlive(pid), ms);
    return { pid, at };
  }

  /** SIGTERM to both backends (a clean stop), then cluster-up.sh (with env
   *  added) starts them again. */
  async restartBackends(env = {}) {
    await Promise.all([this.kill('backend1', 'SIGTERM'), this.kill('backend2', 'SIGTERM')]);
    await this.up(env);
  }

  /**
   * A connected socket.io client, closed by closeClients()/stop().
   *   where      1 or 2 (that backend directly) or 'nginx'
   *   transport  'websocket' (default) or 'polling' (long-polling only)
   *   address    the client's local address (127.0.0.x), for NGINX's hash
   *   name       user:join with it (ack checked; sock.user is the ack's user,
 *              sock.username its name)
   *   opts       more socket.io-client options (reconnection, auth, ...)
   * The socket tracks its last users:update/rooms:update (trackState) and
   * has sock.label ("name@where/transport") for messages.
   */
  async client(where, { transport = 'websocket', address, name, token, opts = {} } = {}) {
    const url = where === 'nginx' ? this.url : this.backendUrl(where);
    const o = { forceNew: true, reconnection: false, timeout: T, transports: [transport], ...opts };
    if (token) o.auth = { token }; // a guest's resume token: attached at CONNECT
    if (address) {
      o.localAddress = address; // the WebSocket transport
      o.agent = new http.Agent({ localAddress: address }); // long-polling requests
    }
    const sock = trackState(io(url, o));
    sock.label = `${name ?? 'anon'}@${where}${address ? `(${address})` : ''}/${transport}`;
    this.sockets.add(sock);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${sock.label}: not connected within ${T} ms`)), T);
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      sock.once('connect_error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    if (name) {
      const reply = await ok(sock, 'user:join', name);
      sock.user = reply.user;
      sock.username = reply.user.username;
      sock.token = reply.token;
    }
    return sock;
  }

  closeClients() {
    for (const s of this.sockets) s.close();
    this.sockets.clear();
  }

  /** Which backend (1 or 2) NGINX gives a new Engine.IO session from client
   *  address `address` right now (told by the backends' handshake counters:
   *  call it when no other client is connecting). */
  async probeRoute(address) {
    const ports = [1, 2].map((i) => this.backendPort(i));
    const count = () => Promise.all(ports.map((p) => metric(p, 'parley_handshakes_total').catch(() => NaN)));
    const before = await count();
    const base = `${this.url}/socket.io/?EIO=4&transport=polling`;
    const open = await request(base, { localAddress: address });
    assert.equal(open.status, 200, open.body);
    const { sid } = JSON.parse(open.body.slice(1));
    const after = await count();
    await request(`${base}&sid=${sid}`, { method: 'POST', body: '1', localAddress: address });
    const served = [0, 1].filter((i) => after[i] > before[i]);
    assert.equal(served.length, 1, `one backend took the probe session (${before} -> ${after})`);
    if (!this.home.has(address)) this.home.set(address, served[0] + 1);
    return served[0] + 1;
  }

  /** A client address that NGINX sends to backend i (probing new ones as
   *  needed); `skip` lists addresses not to return. */
  async addressFor(i, skip = []) {
    for (const [a, b] of this.home) if (b === i && !skip.includes(a)) return a;
    for (let n = 0; n < 40; n++) {
      const a = `127.0.0.${++this.addressSeq}`;
      if ((await this.probeRoute(a)) === i) return a;
    }
    throw new Error(`no client address that NGINX sends to backend${i}`);
  }
}
