// tests/cluster/nginx.test.mjs - the local cluster of scripts/cluster-up.sh
// seen through NGINX (deploy/nginx.conf): long-polling sessions stay on one
// backend, WebSocket and the upgrade pass the proxy, the web UI and its
// caching headers come through, and when the backend of a client dies the
// client reconnects through NGINX to the other one.
//
//   node --test tests/cluster/          (from the repository root)
//
// Needs build/parley, web/dist, redis-server and /usr/sbin/nginx (the
// script installs nginx-light when it runs as root). The cluster runs on
// ports picked free for this run, in a temporary CLUSTER_DIR, and
// scripts/cluster-down.sh runs at the end whatever happened. Tests of shared
// state across backends are skipped while `parley --help` has no --redis.
// KEEP_CLUSTER_DIR=1 keeps the directory (logs) after the run.
// socket.io-client comes from tests/integration/node_modules (npm ci there).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'tests/integration/package.json'));
const { io } = require('socket.io-client');

const PARLEY = path.join(ROOT, 'build/parley');
const HAS_REDIS =
  fs.existsSync(PARLEY) && /^\s*--redis\s/m.test(spawnSync(PARLEY, ['--help']).stdout.toString());
const T = 10000; // bound of one wait

// True if nothing listens on 127.0.0.1:port and it can be bound.
function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

// A free port chosen by the kernel (free when checked; the script binds it
// right after).
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// A base port such that base..base+5 and their cluster bus ports (+10000)
// are all free.
async function freeRedisBase() {
  for (let i = 0; i < 50; i++) {
    const base = 20000 + Math.floor(Math.random() * 9000);
    let ok = true;
    for (let p = base; p < base + 6 && ok; p++) ok = (await portFree(p)) && (await portFree(p + 10000));
    if (ok) return base;
  }
  throw new Error('no free range of Redis ports');
}

function request(url, { method = 'GET', body, localAddress } = {}) {
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

function script(name, env) {
  const r = spawnSync(path.join(ROOT, 'scripts', name), [], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 180000,
  });
  if (r.status !== 0) {
    throw new Error(`${name} exited ${r.status} (${r.signal ?? 'no signal'}):\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

function readPid(dir, name) {
  return Number(fs.readFileSync(path.join(dir, `${name}.pid`), 'utf8').trim());
}

// True if pid runs; a zombie (exited, not yet reaped by its new parent:
// the cluster's processes are daemons) does not count.
function isAlive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until(what, fn, ms = T) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// A socket.io client through NGINX; resolves once connected.
function connect(url, opts) {
  const socket = io(url, { forceNew: true, timeout: T, ...opts });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}

// The value of an unlabelled (or fully labelled) metric on one backend.
async function metric(port, name) {
  const { body } = await request(`http://127.0.0.1:${port}/metrics`);
  const line = body.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

describe('local cluster behind NGINX', () => {
  let env, dir, url;
  const sockets = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-cluster-'));
    env = {
      CLUSTER_DIR: dir,
      REDIS_BASE_PORT: String(await freeRedisBase()),
      BACKEND1_PORT: String(await freePort()),
      BACKEND2_PORT: String(await freePort()),
      NGINX_PORT: String(await freePort()),
    };
    url = `http://127.0.0.1:${env.NGINX_PORT}`;
    script('cluster-up.sh', env);
  });

  after(() => {
    for (const s of sockets) s.close();
    if (!dir) return;
    const pids = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.pid'))
      .map((f) => readPid(dir, f.slice(0, -4)));
    try {
      script('cluster-down.sh', env);
      for (const pid of pids) assert.ok(!isAlive(pid), `pid ${pid} still runs after cluster-down`);
      assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.pid')), []);
    } finally {
      if (!process.env.KEEP_CLUSTER_DIR) fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('every process has its pid file and runs', () => {
    const base = Number(env.REDIS_BASE_PORT);
    const names = ['backend1', 'backend2', 'nginx'];
    for (let i = 0; i < 6; i++) names.push(`redis-${base + i}`);
    for (const name of names) assert.ok(isAlive(readPid(dir, name)), `${name} runs`);
  });

  test('cluster-up is idempotent: a second run keeps the same processes', () => {
    const before = ['backend1', 'backend2', 'nginx'].map((n) => readPid(dir, n));
    script('cluster-up.sh', env);
    assert.deepEqual(['backend1', 'backend2', 'nginx'].map((n) => readPid(dir, n)), before);
  });

  test('the web UI and /healthz come through NGINX with their headers; /metrics does not', async () => {
    const index = await request(`${url}/`);
    assert.equal(index.status, 200);
    assert.match(index.headers['content-type'], /^text\/html/);
    assert.match(index.body, /<div id="root">/);
    assert.equal(index.headers['cache-control'], 'no-cache');
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(index.body)[1];
    const js = await request(`${url}${asset}`);
    assert.equal(js.status, 200);
    assert.match(js.headers['cache-control'], /immutable/);
    assert.equal((await request(`${url}/healthz`)).status, 200);
    assert.equal((await request(`${url}/metrics`)).status, 404);
  });

  test('a long-polling client keeps its session on one backend (user:join acked)', async () => {
    const s = await connect(url, { transports: ['polling'], reconnection: false });
    sockets.push(s);
    assert.equal(s.io.engine.transport.name, 'polling');
    // Each of these is a POST and the answer comes on a pending GET: every
    // request of the session must reach the backend that holds it.
    for (let i = 0; i < 5; i++) {
      const res = await s.timeout(T).emitWithAck('user:join', `poller${i}`);
      assert.equal(res.ok, true, JSON.stringify(res));
    }
    s.close();
  });

  test('sessions from many client addresses are spread over both backends and stay put', async () => {
    const ports = [env.BACKEND1_PORT, env.BACKEND2_PORT];
    const before = await Promise.all(ports.map((p) => metric(p, 'parley_handshakes_total')));
    for (let i = 1; i <= 16; i++) {
      const localAddress = `127.0.0.${i + 10}`;
      const base = `${url}/socket.io/?EIO=4&transport=polling`;
      const open = await request(base, { localAddress });
      assert.equal(open.status, 200, open.body);
      const { sid } = JSON.parse(open.body.slice(1));
      // CONNECT to the main namespace, then read the answer: a backend that
      // does not hold the session would answer 400.
      const post = await request(`${base}&sid=${sid}`, { method: 'POST', body: '40', localAddress });
      assert.equal(post.status, 200, post.body);
      const poll = await request(`${base}&sid=${sid}`, { localAddress });
      assert.equal(poll.status, 200, poll.body);
      assert.match(poll.body, /^40\{"sid"/);
      const close = await request(`${base}&sid=${sid}`, { method: 'POST', body: '1', localAddress });
      assert.equal(close.status, 200, close.body);
    }
    const after = await Promise.all(ports.map((p) => metric(p, 'parley_handshakes_total')));
    const served = after.map((n, i) => n - before[i]);
    assert.equal(served[0] + served[1], 16);
    assert.ok(served[0] > 0 && served[1] > 0, `both backends get clients (got ${served})`);
  });

  test('WebSocket through NGINX, directly and by upgrade from polling', async () => {
    const ws = await connect(url, { transports: ['websocket'], reconnection: false });
    sockets.push(ws);
    assert.equal(ws.io.engine.transport.name, 'websocket');
    assert.equal((await ws.timeout(T).emitWithAck('user:join', 'wsuser')).ok, true);
    ws.close();

    const up = await connect(url, { reconnection: false });
    sockets.push(up);
    await until('the upgrade to websocket', async () => up.io.engine.transport.name === 'websocket');
    assert.equal((await up.timeout(T).emitWithAck('user:join', 'upgraded')).ok, true);
    up.close();
  });

  test('when its backend dies, a client reconnects through NGINX to the other', async () => {
    const ports = [env.BACKEND1_PORT, env.BACKEND2_PORT];
    const handshakes = () => Promise.all(ports.map((p) => metric(p, 'parley_handshakes_total')));
    const before = await handshakes();
    const s = await connect(url, { transports: ['websocket'], reconnectionDelay: 100, reconnectionDelayMax: 500 });
    sockets.push(s);
    assert.equal((await s.timeout(T).emitWithAck('user:join', 'survivor')).ok, true);
    const after = await handshakes();
    const on = after[0] > before[0] ? 0 : 1; // the backend that took the session
    assert.equal(after[on] - before[on], 1, `one backend took the session (${before} -> ${after})`);
    const victim = `backend${on + 1}`;
    const other = ports[1 - on];

    const pid = readPid(dir, victim);
    const reconnected = new Promise((resolve) => s.io.once('reconnect', resolve));
    process.kill(pid, 'SIGKILL');
    await until(`${victim} to exit`, async () => !isAlive(pid));
    await reconnected;
    assert.equal((await s.timeout(T).emitWithAck('user:join', 'survivor')).ok, true);
    assert.ok((await metric(other, 'parley_sockets')) >= 1, 'the other backend has the socket');
    s.close();

    // Running cluster-up again brings back only the missing piece.
    const nginxPid = readPid(dir, 'nginx');
    script('cluster-up.sh', env);
    assert.ok(isAlive(readPid(dir, victim)));
    assert.notEqual(readPid(dir, victim), pid);
    assert.equal(readPid(dir, 'nginx'), nginxPid);
  });

  test('users and messages are shared across backends', { skip: !HAS_REDIS && 'parley has no --redis yet' }, () => {
    // To write once --redis lands: a client on each backend (different
    // client addresses), users:update lists both, a room message crosses;
    // a backend killed with SIGKILL: its users leave users:update within
    // 15 s; a Redis master killed: the cluster fails over and the chat
    // goes on.
    assert.fail('not written yet');
  });
});
