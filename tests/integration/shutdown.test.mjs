// Graceful shutdown: on SIGTERM parley stops accepting, closes every client's
// transport in a way socket.io clients answer by reconnecting (a lost
// transport, not a server-side namespace disconnect, which would stop them),
// exits cleanly, and no message it acknowledged is lost across the restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import { startServer, waitFor, emitAck } from './lib/server.mjs';

const T = (/asan/.test(process.env.PARLEY_BUILD_DIR || '') ? 15000 : 5000) * Math.max(1, Number(process.env.PARLEY_SLOW) || 1);

function connect(url, transports, auth = undefined) {
  return io(url, { transports, reconnection: false, forceNew: true, auth });
}

test('SIGTERM: clients see "transport close", the server exits 0, acked messages survive', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-shutdown-'));
  const args = ['--data', dir, '--static', '/nonexistent', '--rate-limit', '0'];
  const first = await startServer({ bin: 'parley', args });
  let token; // Sender's resume token: its name is its own across the restart
  const ws = connect(first.url, ['websocket']);
  const poll = connect(first.url, ['polling']);
  try {
    await Promise.all([waitFor(ws, 'connect', T), waitFor(poll, 'connect', T)]);
    const [sender] = await emitAck(ws, 'user:join', ['Sender'], T);
    assert.equal(sender.ok, true);
    token = sender.token;
    assert.equal((await emitAck(poll, 'user:join', ['Poller'], T))[0].ok, true);
    assert.equal((await emitAck(ws, 'room:create', ['Lobby'], T))[0].ok, true);
    const acked = [];
    for (let i = 0; i < 20; i++) {
      const [reply] = await emitAck(ws, 'message:room', [{ room: 'Lobby', content: `m${i}` }], T);
      assert.equal(reply.ok, true);
      acked.push(reply.id);
    }
    const wsGone = waitFor(ws, 'disconnect', T);
    const pollGone = waitFor(poll, 'disconnect', T);
    await first.stop(); // SIGTERM; throws on a crash, a non-zero exit or a sanitizer report
    // What matters to a client is that it reconnects: socket.io-client does
    // after a lost transport, never after a server-side namespace disconnect
    // ("io server disconnect"). WebSocket clients see "transport close" (30
    // runs of 30, ASan build included). A polling client sees "transport
    // close" when its long-poll was pending at the SIGTERM (it gets the close
    // packet) and "transport error" (XHR status 0) in the rare case it was
    // between two polls: its next GET meets a connection the server has
    // closed (1 run in 15 under ASan). Both make it reconnect.
    const reconnectable = ['transport close', 'transport error'];
    assert.ok(reconnectable.includes((await wsGone)[0]), `websocket: ${(await wsGone)[0]}`);
    assert.ok(reconnectable.includes((await pollGone)[0]), `polling: ${(await pollGone)[0]}`);
  } finally {
    ws.close();
    poll.close();
  }

  const second = await startServer({ bin: 'parley', args });
  const again = connect(second.url, ['websocket'], { token });
  try {
    await waitFor(again, 'connect', T);
    assert.equal((await emitAck(again, 'user:join', ['Sender'], T))[0].ok, true);
    const [joined] = await emitAck(again, 'room:join', ['Lobby'], T);
    assert.equal(joined.ok, true);
    const [page] = await emitAck(again, 'history:fetch', [{ room: 'Lobby', limit: 100 }], T);
    assert.equal(page.ok, true);
    assert.deepEqual(page.messages.map((m) => m.content), Array.from({ length: 20 }, (_, i) => `m${i}`));
  } finally {
    again.close();
    await second.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
