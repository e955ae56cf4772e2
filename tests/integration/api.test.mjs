// The Server API's front (src/api/, docs/API.md) and the webhook sender
// (src/webhook/): keys, errors, limits and metrics of /api/v1/, and signed,
// batched, retried webhook deliveries to a receiver in this process
// (lib/webhook-receiver.mjs). The endpoints that need the chat layer answer
// 501 for now; the events come from the test-only route of --test-hooks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startServer, httpRequest, binPath, SLOW } from './lib/server.mjs';
import { startReceiver, sign } from './lib/webhook-receiver.mjs';

const T = (/asan/.test(process.env.PARLEY_BUILD_DIR || '') ? 15000 : 5000) * SLOW;
const KEY = 'k-0123456789abcdef-one';
const KEY2 = 'k-0123456789abcdef-two';
const SECRET = 'webhook-secret-for-the-tests';

function tmpDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'parley-api-'));
}

async function start({ args = [], env = {} } = {}) {
  return startServer({
    bin: 'parley',
    args: ['--data', tmpDir(), '--static', '/nonexistent', ...args],
    env,
  });
}

function api(srv, p, { method = 'GET', key = KEY, body, headers = {} } = {}) {
  const h = { ...headers };
  if (key) h.Authorization = `Bearer ${key}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  return httpRequest(`${srv.url}${p}`, { method, headers: h, body, timeoutMs: T });
}

function json(res) {
  assert.match(res.headers['content-type'], /^application\/json/);
  return JSON.parse(res.body);
}

function parseMetrics(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

async function metrics(srv) {
  const res = await httpRequest(`${srv.url}/metrics`, { timeoutMs: T });
  assert.equal(res.status, 200);
  return parseMetrics(res.body);
}

/** Polls /metrics until pred(m) holds (bounded by ms). */
async function metricsUntil(srv, pred, ms = T) {
  const end = Date.now() + ms;
  for (;;) {
    const m = await metrics(srv);
    if (pred(m)) return m;
    if (Date.now() > end) throw new Error('metrics condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('without an API key every /api/ path is 404 not_found', async () => {
  const srv = await start();
  try {
    for (const p of ['/api/v1/users', '/api/v1/rooms', '/api/', '/api/v2/x']) {
      const res = await api(srv, p, { key: KEY });
      assert.equal(res.status, 404, p);
      assert.deepEqual(json(res).error, 'not_found');
    }
    const help = spawnSync(binPath('parley'), ['--help'], { encoding: 'utf8' });
    assert.match(help.stdout, /--api-key KEY/);
    assert.match(help.stdout, /--webhook-url URL/);
    assert.doesNotMatch(help.stdout, /test-hooks/);
  } finally {
    await srv.stop();
  }
});

test('keys: missing, unknown or in the URL is 401; every configured key works', async () => {
  const srv = await start({ env: { PARLEY_API_KEY: `${KEY},${KEY2}` } });
  try {
    let res = await api(srv, '/api/v1/users', { key: null });
    assert.equal(res.status, 401);
    assert.deepEqual(json(res), { ok: false, error: 'unauthorized', message: json(res).message });
    assert.equal(res.headers['www-authenticate'], 'Bearer');
    res = await api(srv, '/api/v1/users', { key: `${KEY}x` });
    assert.equal(res.status, 401);
    res = await api(srv, '/api/v1/users', { key: null, headers: { Authorization: `Basic ${KEY}` } });
    assert.equal(res.status, 401);
    // A key in the query string is refused even beside a valid header.
    res = await api(srv, `/api/v1/users?api_key=${KEY}`);
    assert.equal(res.status, 401);
    assert.match(json(res).message, /URL/);
    res = await api(srv, `/api/v1/users?access_token=${KEY}`, { key: null });
    assert.equal(res.status, 401);
    // Both keys pass the front; the endpoint itself is not implemented yet.
    for (const key of [KEY, KEY2]) {
      res = await api(srv, '/api/v1/users', { key });
      assert.equal(res.status, 501);
      assert.deepEqual(json(res), { ok: false, error: 'internal', message: 'not implemented yet' });
    }
    assert.doesNotMatch(srv.stderr(), new RegExp(KEY));
  } finally {
    await srv.stop();
  }
  assert.doesNotMatch(srv.stderr(), /k-0123456789abcdef/);
});

test('routing: 404, 405 with Allow, percent-decoding, 413 and malformed bodies', async () => {
  const srv = await start({ env: { PARLEY_API_KEY: KEY } });
  try {
    let res = await api(srv, '/api/v1/nothing');
    assert.equal(res.status, 404);
    assert.equal(json(res).error, 'not_found');
    res = await api(srv, '/api/v1/users/alice');
    assert.equal(res.status, 404);
    res = await api(srv, '/api/v1/users', { method: 'DELETE' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'POST, GET');
    res = await api(srv, '/api/v1/rooms/lobby/messages/m1', { method: 'GET' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'DELETE');
    // Bad escapes in a path segment are 400; good ones reach the endpoint.
    for (const p of ['/api/v1/users/a%ZZ/disconnect', '/api/v1/users/a%2/disconnect',
      '/api/v1/users/a%00b/disconnect']) {
      res = await api(srv, p, { method: 'POST' });
      assert.equal(res.status, 400, p);
      assert.equal(json(res).error, 'invalid_payload');
    }
    res = await api(srv, '/api/v1/users/b%2Fc%20d/disconnect', { method: 'POST' });
    assert.equal(res.status, 501);
    // Bodies: over 64 KiB, not JSON, not an object, wrong field types.
    res = await api(srv, '/api/v1/users', { method: 'POST', body: JSON.stringify({ username: 'x'.repeat(70000) }) });
    assert.equal(res.status, 413);
    assert.equal(json(res).error, 'invalid_payload');
    const bad = [
      ['/api/v1/users', '{"username":'],
      ['/api/v1/users', '[1,2]'],
      ['/api/v1/users', '{"username":42}'],
      ['/api/v1/users', '{}'],
      ['/api/v1/rooms', '{"name":"a","private":"yes"}'],
      ['/api/v1/rooms/lobby/members/bob', '{"action":"ban","durationMs":"1h"}'],
      ['/api/v1/users/bob/messages', '{"content":"hi"}'],
    ];
    for (const [p, body] of bad) {
      res = await api(srv, p, { method: 'POST', body });
      assert.equal(res.status, 400, `${p} ${body}`);
      assert.equal(json(res).error, 'invalid_payload');
      assert.equal(json(res).ok, false);
    }
    res = await api(srv, '/api/v1/rooms', { method: 'POST', body: '{"name":"a","private":true}' });
    assert.equal(res.status, 501);
    // The server still answers after all that.
    res = await httpRequest(`${srv.url}/healthz`);
    assert.equal(res.status, 200);
  } finally {
    await srv.stop();
  }
});

test('per-key rate limit: 429 with Retry-After, counted in /metrics', async () => {
  const srv = await start({ args: ['--api-rate', '0.5', '--api-burst', '2'], env: { PARLEY_API_KEY: `${KEY},${KEY2}` } });
  try {
    assert.equal((await api(srv, '/api/v1/rooms')).status, 501);
    assert.equal((await api(srv, '/api/v1/rooms')).status, 501);
    const res = await api(srv, '/api/v1/rooms');
    assert.equal(res.status, 429);
    assert.equal(json(res).error, 'rate_limited');
    const after = Number(res.headers['retry-after']);
    assert.ok(after >= 1 && after <= 2, `Retry-After ${res.headers['retry-after']}`);
    // The other key has its own bucket.
    assert.equal((await api(srv, '/api/v1/rooms', { key: KEY2 })).status, 501);
    const m = await metrics(srv);
    assert.equal(m.get('parley_api_requests_total{route="rooms.list",status="501"}'), 3);
    assert.equal(m.get('parley_api_requests_total{route="none",status="429"}'), 1);
    assert.equal(m.get('parley_api_request_duration_seconds_count'), 4);
  } finally {
    await srv.stop();
  }
});

/** A server whose webhooks go to rx; events come from the test hook. */
async function webhookServer(rx, args = []) {
  return start({
    args: ['--test-hooks', '1', '--webhook-url', rx.url, ...args],
    env: { PARLEY_API_KEY: KEY, PARLEY_WEBHOOK_SECRET: SECRET },
  });
}

async function emit(srv, type, count = 1, data = { user: 'alice' }) {
  const res = await api(srv, '/api/v1/_test/events', { method: 'POST', body: JSON.stringify({ type, count, data }) });
  assert.equal(res.status, 200, res.body);
}

test('webhooks: one signed batch per burst of events, then the next batch', async () => {
  const rx = await startReceiver();
  const srv = await webhookServer(rx);
  try {
    await emit(srv, 'user.online', 5, { user: 'alice' });
    const r = await rx.next(T);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers['x-parley-signature'], sign(SECRET, r.raw));
    assert.notEqual(r.headers['x-parley-signature'], sign('other', r.raw));
    assert.equal(r.json.events.length, 5);
    const ids = new Set(r.json.events.map((e) => e.id));
    assert.equal(ids.size, 5);
    for (const e of r.json.events) {
      assert.equal(e.type, 'user.online');
      assert.deepEqual(e.data, { user: 'alice' });
      assert.ok(Math.abs(e.time - Date.now()) < 60000);
      assert.match(e.id, /^[A-Za-z0-9_-]{20}$/);
    }
    await emit(srv, 'user.offline', 1);
    const r2 = await rx.next(T);
    assert.deepEqual(r2.json.events.map((e) => e.type), ['user.offline']);
    const m = await metricsUntil(srv, (x) => x.get('parley_webhook_events_delivered_total') === 6);
    assert.equal(m.get('parley_webhook_posts_total{outcome="delivered"}'), 2);
    assert.equal(m.get('parley_webhook_queue_depth'), 0);
    assert.equal(m.get('parley_webhook_dropped_total'), 0);
    assert.equal(m.get('parley_webhook_post_duration_seconds_count'), 2);
  } finally {
    await srv.stop();
    await rx.close();
  }
});

test('webhooks: 500s are retried with exponential backoff and the same event ids', async () => {
  const rx = await startReceiver();
  rx.behave((rec, n) => ({ status: n < 2 ? 500 : 204 }));
  const srv = await webhookServer(rx, ['--webhook-retry-min', '300', '--webhook-retry-max', '5000']);
  try {
    await emit(srv, 'message.created', 3, { room: 'lobby', content: 'hi' });
    const [a, b, c] = [await rx.next(T), await rx.next(T), await rx.next(T)];
    const ids = (r) => r.json.events.map((e) => e.id);
    assert.deepEqual(ids(b), ids(a));
    assert.deepEqual(ids(c), ids(a));
    assert.equal(c.headers['x-parley-signature'], sign(SECRET, c.raw));
    const gap1 = b.at - a.at, gap2 = c.at - b.at;
    assert.ok(gap1 >= 250, `first retry after ${gap1} ms`);
    assert.ok(gap2 >= 550, `second retry after ${gap2} ms`);
    const m = await metricsUntil(srv, (x) => x.get('parley_webhook_events_delivered_total') === 3);
    assert.equal(m.get('parley_webhook_posts_total{outcome="refused"}'), 2);
    assert.equal(m.get('parley_webhook_posts_total{outcome="delivered"}'), 1);
    assert.equal(m.get('parley_webhook_retries_total'), 2);
  } finally {
    await srv.stop();
    await rx.close();
  }
});

test('webhooks: a receiver that hangs times out and is retried; the server keeps serving', async () => {
  const rx = await startReceiver();
  rx.behave((rec, n) => (n === 0 ? { hang: true } : { status: 200 }));
  const srv = await webhookServer(rx, ['--webhook-timeout', '1500', '--webhook-retry-min', '100']);
  try {
    await emit(srv, 'user.online', 1);
    const a = await rx.next(T);
    // While the POST hangs, the loop answers at once.
    const t0 = Date.now();
    const h = await httpRequest(`${srv.url}/healthz`, { timeoutMs: T });
    assert.equal(h.status, 200);
    assert.ok(Date.now() - t0 < 1000, 'healthz answered while the webhook hung');
    const b = await rx.next(T + 3000);
    assert.ok(b.at - a.at >= 1400, `retry after ${b.at - a.at} ms`);
    assert.deepEqual(b.json.events.map((e) => e.id), a.json.events.map((e) => e.id));
    const m = await metricsUntil(srv, (x) => x.get('parley_webhook_events_delivered_total') === 1);
    assert.equal(m.get('parley_webhook_posts_total{outcome="timeout"}'), 1);
  } finally {
    await srv.stop();
    await rx.close();
  }
});

test('webhooks: a huge answer is cut off and not kept; the batch counts as delivered', async () => {
  const rx = await startReceiver();
  rx.behave((rec, n) => (n === 0 ? { huge: 200 * 1024 * 1024 } : { status: 200 }));
  const srv = await webhookServer(rx);
  try {
    await emit(srv, 'user.online', 2);
    const a = await rx.next(T);
    assert.equal(a.json.events.length, 2);
    await metricsUntil(srv, (x) => x.get('parley_webhook_events_delivered_total') === 2);
    // The next batch holds only the new event: the first was not resent.
    await emit(srv, 'user.offline', 1);
    const b = await rx.next(T);
    assert.deepEqual(b.json.events.map((e) => e.type), ['user.offline']);
    const m = await metrics(srv);
    assert.ok(m.get('process_resident_memory_bytes') < 150 * 1024 * 1024);
  } finally {
    await srv.stop();
    await rx.close();
  }
});

test('webhooks: a full queue drops the oldest events and counts them', async () => {
  const rx = await startReceiver();
  rx.behave(() => ({ status: 503 }));
  const srv = await webhookServer(rx, ['--webhook-queue', '5', '--webhook-retry-min', '60000']);
  try {
    await emit(srv, 'user.online', 1, { user: 'first' });
    await rx.next(T); // refused: now backing off for a minute
    await metricsUntil(srv, (x) => x.get('parley_webhook_retries_total') === 1);
    await emit(srv, 'user.online', 10, { user: 'later' });
    const m = await metrics(srv);
    assert.equal(m.get('parley_webhook_dropped_total'), 6);
    assert.equal(m.get('parley_webhook_queue_depth'), 5);
  } finally {
    await srv.stop();
    await rx.close();
  }
  assert.match(srv.stderr(), /webhook events lost at shutdown.*events=5/);
});

test('webhooks: stopping while a POST hangs abandons it cleanly (no leak, prompt exit)', async () => {
  const rx = await startReceiver();
  rx.behave(() => ({ hang: true }));
  const srv = await webhookServer(rx);
  try {
    await emit(srv, 'user.online', 3);
    await rx.next(T);
  } finally {
    const t0 = Date.now();
    await srv.stop(); // throws on a sanitizer report or a non-zero exit
    assert.ok(Date.now() - t0 < 4000, `stopped in ${Date.now() - t0} ms`);
    await rx.close();
  }
  assert.match(srv.stderr(), /webhook events lost at shutdown.*events=3/);
});

test('configuration: bad webhook and key settings stop the server with status 2', () => {
  const run = (args, env = {}) => spawnSync(binPath('parley'), ['--port', '0', '--data', tmpDir(), ...args],
    { encoding: 'utf8', env: { ...process.env, ...env }, timeout: T });
  let r = run(['--webhook-url', 'http://127.0.0.1:1/hook']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /webhook-url needs webhook-secret/);
  r = run(['--webhook-url', 'ftp://127.0.0.1/hook'], { PARLEY_WEBHOOK_SECRET: SECRET });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /http:\/\/ or https:\/\//);
  r = run([], { PARLEY_API_KEY: 'short' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /at least 16 characters/);
  assert.doesNotMatch(r.stderr, /"short"/); // the key itself is not echoed
  r = run(['--api-rate', '-1']);
  assert.equal(r.status, 2);
});

test('a key given as a flag works but is warned about, without the key in the log', async () => {
  const srv = await start({ args: ['--api-key', KEY] });
  try {
    assert.equal((await api(srv, '/api/v1/users')).status, 501);
  } finally {
    await srv.stop();
  }
  assert.match(srv.stderr(), /api-key given as a flag/);
  assert.doesNotMatch(srv.stderr(), /k-0123456789abcdef/);
});

test('asynchronous handlers: answered later, the loop serves meanwhile; a client that left, and shutdown mid-request', async () => {
  const srv = await start({ args: ['--test-hooks', '1'], env: { PARLEY_API_KEY: KEY } });
  let gone;
  try {
    const t0 = Date.now();
    const slow = api(srv, '/api/v1/_test/delay', { method: 'POST', body: '{"ms":400}' });
    const h = await httpRequest(`${srv.url}/healthz`, { timeoutMs: T });
    assert.equal(h.status, 200);
    const res = await slow;
    assert.equal(res.status, 200);
    assert.deepEqual(json(res), { ok: true, waited: 400 });
    assert.ok(Date.now() - t0 >= 390, `answered after ${Date.now() - t0} ms`);
    assert.equal((await metrics(srv)).get('parley_api_requests_pending'), 0);
    // A client that leaves before the answer: the answer is dropped, counted.
    gone = httpRequest(`${srv.url}/api/v1/_test/delay`, {
      method: 'POST', headers: { Authorization: `Bearer ${KEY}` }, body: '{"ms":200}', timeoutMs: 50,
    }).catch((e) => e);
    assert.match((await gone).message, /timed out/);
    await metricsUntil(srv, (m) => m.get('parley_api_requests_total{route="test.delay",status="200"}') === 2);
    // One left waiting for a minute when the server stops.
    api(srv, '/api/v1/_test/delay', { method: 'POST', body: '{"ms":60000}' }).catch(() => {});
    await metricsUntil(srv, (m) => m.get('parley_api_requests_pending') === 1);
  } finally {
    await srv.stop(); // no leak, no crash with the request under way
  }
});
