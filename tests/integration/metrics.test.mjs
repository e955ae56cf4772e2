// GET /metrics: Prometheus text whose figures follow what clients do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import { startServer, waitFor, emitAck, httpRequest } from './lib/server.mjs';

const T = (/asan/.test(process.env.PARLEY_BUILD_DIR || '') ? 15000 : 5000) * Math.max(1, Number(process.env.PARLEY_SLOW) || 1);

// name{labels} -> value, from the exposition text.
function parse(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

async function scrape(url) {
  const res = await httpRequest(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  return parse(res.body);
}

test('/metrics counts connections by transport, events, refusals and latencies', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-metrics-'));
  const srv = await startServer({ bin: 'parley', args: ['--data', dir, '--static', '/nonexistent'] });
  const ws = io(srv.url, { transports: ['websocket'], forceNew: true, reconnection: false });
  const poll = io(srv.url, { transports: ['polling'], forceNew: true, reconnection: false });
  try {
    await Promise.all([waitFor(ws, 'connect', T), waitFor(poll, 'connect', T)]);
    let m = await scrape(srv.url);
    assert.equal(m.get('parley_connections{transport="websocket"}'), 1);
    assert.equal(m.get('parley_connections{transport="polling"}'), 1);
    assert.equal(m.get('parley_sockets'), 2);

    await emitAck(ws, 'user:join', ['Metric'], T);
    await emitAck(ws, 'room:create', ['Stats'], T);
    await emitAck(ws, 'message:room', [{ room: 'Stats', content: 'hi' }], T);
    const [refused] = await emitAck(poll, 'message:room', [{ room: 'Stats', content: 'x' }], T);
    assert.equal(refused.error, 'not_joined');
    ws.emit('no-such-event');
    await emitAck(ws, 'rooms:list', [], T); // after the unknown event, in order

    m = await scrape(srv.url);
    assert.equal(m.get('parley_chat_events_in_total{event="user:join"}'), 1);
    assert.equal(m.get('parley_chat_events_in_total{event="message:room"}'), 2);
    assert.equal(m.get('parley_chat_events_in_total{event="other"}'), 1);
    assert.equal(m.get('parley_chat_refused_total{error="not_joined"}'), 1);
    assert.equal(m.get('parley_chat_events_out_total{event="message:receive"}'), 1);
    assert.equal(m.get('parley_store_latency_seconds_count{op="append"}'), 1);
    assert.ok(m.get('parley_event_loop_lag_seconds_count') >= 0);
    assert.ok(m.get('process_resident_memory_bytes') > 1e6);

    const gone = waitFor(ws, 'disconnect', T);
    ws.close();
    await gone;
    // The server sees the close a moment later: scrape until it does.
    const deadline = Date.now() + T;
    do m = await scrape(srv.url);
    while (m.get('parley_connections{transport="websocket"}') !== 0 && Date.now() < deadline);
    assert.equal(m.get('parley_connections{transport="websocket"}'), 0);
  } finally {
    ws.close();
    poll.close();
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
