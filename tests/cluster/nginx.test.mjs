// tests/cluster/nginx.test.mjs - the local cluster of scripts/cluster-up.sh
// seen through NGINX (deploy/nginx.conf): long-polling sessions stay on one
// backend, WebSocket and the upgrade pass the proxy, the web UI and its
// caching headers come through, and when the backend of a client dies the
// client reconnects through NGINX to the other one. State shared across
// the backends is tested in shared.test.mjs, failures in faults.test.mjs.
//
//   node --test tests/cluster/          (from the repository root)
//
// Needs build/parley, web/dist, redis-server and /usr/sbin/nginx (the
// script installs nginx-light when it runs as root). The cluster runs on
// ports picked free for this run, in a temporary CLUSTER_DIR, and
// scripts/cluster-down.sh runs at the end whatever happened (lib.mjs).
// KEEP_CLUSTER_DIR=1 keeps the directory (logs) after the run.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Cluster, T, isAlive, metric, readPid, request, until, waitFor } from './lib.mjs';

describe('local cluster behind NGINX', () => {
  const cluster = new Cluster('nginx');
  let dir, url;

  before(async () => {
    await cluster.start();
    dir = cluster.dir;
    url = cluster.url;
  });

  after(() => cluster.stop());

  test('every process has its pid file and runs', () => {
    const names = ['backend1', 'backend2', 'nginx', ...cluster.redisPorts().map((p) => `redis-${p}`)];
    for (const name of names) assert.ok(isAlive(readPid(dir, name)), `${name} runs`);
  });

  test('cluster-up is idempotent: a second run keeps the same processes', async () => {
    const before = ['backend1', 'backend2', 'nginx'].map((n) => readPid(dir, n));
    await cluster.up();
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
    const s = await cluster.client('nginx', { transport: 'polling' });
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
    const ports = [cluster.backendPort(1), cluster.backendPort(2)];
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
    const ws = await cluster.client('nginx');
    assert.equal(ws.io.engine.transport.name, 'websocket');
    assert.equal((await ws.timeout(T).emitWithAck('user:join', 'wsuser')).ok, true);
    ws.close();

    const up = await cluster.client('nginx', { opts: { transports: ['polling', 'websocket'] } });
    await until('the upgrade to websocket', async () => up.io.engine.transport.name === 'websocket');
    assert.equal((await up.timeout(T).emitWithAck('user:join', 'upgraded')).ok, true);
    up.close();
  });

  test('when its backend dies, a client reconnects through NGINX to the other', async () => {
    const ports = [cluster.backendPort(1), cluster.backendPort(2)];
    const handshakes = () => Promise.all(ports.map((p) => metric(p, 'parley_handshakes_total')));
    const before = await handshakes();
    const s = await cluster.client('nginx', { opts: { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 } });
    // The users:update that lists it carries a recovery offset: with it the
    // client can get its session back wherever it reconnects.
    const listed = waitFor(s, 'users:update', T, (l) => l.some((u) => u.username === 'survivor'));
    assert.equal((await s.timeout(T).emitWithAck('user:join', 'survivor')).ok, true);
    await listed;
    const after = await handshakes();
    const on = after[0] > before[0] ? 0 : 1; // the backend that took the session
    assert.equal(after[on] - before[on], 1, `one backend took the session (${before} -> ${after})`);
    const victim = `backend${on + 1}`;
    const other = ports[1 - on];

    const reconnected = new Promise((resolve) => s.once('connect', resolve));
    const { pid } = await cluster.kill(victim, 'SIGKILL');
    await reconnected;
    // The other backend continued its session (connection state recovery
    // across backends): still named, no join needed.
    assert.equal(s.recovered, true, 'the session was restored on the other backend');
    const again = await s.timeout(T).emitWithAck('user:join', 'survivor');
    assert.equal(again.ok, true, JSON.stringify(again));
    assert.ok((await metric(other, 'parley_sockets')) >= 1, 'the other backend has the socket');
    s.close();

    // Running cluster-up again brings back only the missing piece.
    const nginxPid = readPid(dir, 'nginx');
    await cluster.up();
    assert.ok(isAlive(readPid(dir, victim)));
    assert.notEqual(readPid(dir, victim), pid);
    assert.equal(readPid(dir, 'nginx'), nginxPid);
  });
});
