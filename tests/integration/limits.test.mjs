// Abuse limits of the net layer, seen from a client: connection caps overall
// and per address, and the HTTP timeout that ends slow or idle requests.
// Each limit is shown to refuse or close the offender while other clients
// keep being served.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import { startServer, waitFor, httpRequest, emitAck } from './lib/server.mjs';

// Bound of every wait: longer under sanitizers and valgrind (PARLEY_SLOW).
const T = (/asan/.test(process.env.PARLEY_BUILD_DIR || '') ? 15000 : 5000) * Math.max(1, Number(process.env.PARLEY_SLOW) || 1);

// A fresh data directory per server, removed when the file's tests end.
const dirs = [];
function dataDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-limits-'));
  dirs.push(d);
  return d;
}
process.on('exit', () => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

// Opens a TCP connection from `localAddress`; resolves with the socket once
// connected.
function tcp(port, localAddress = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => resolve(s));
    s.once('error', reject);
  });
}

// Sends a request on a raw socket and resolves with the status line, or
// with null when the server closes the connection without answering.
function statusOf(sock, request = 'GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n') {
  return new Promise((resolve) => {
    let data = '';
    sock.on('data', (d) => {
      data += d;
      const line = data.split('\r\n')[0];
      if (data.includes('\r\n')) resolve(line);
    });
    sock.on('close', () => resolve(data ? data.split('\r\n')[0] : null));
    sock.on('error', () => {});
    sock.write(request);
  });
}

describe('max-per-ip', () => {
  let srv;
  before(async () => {
    srv = await startServer({ bin: 'parley', args: ['--max-per-ip', '3', '--static', '/nonexistent', '--data', dataDir()] });
  });
  after(async () => srv && srv.stop());

  test('a 4th connection from one address is refused; another address still gets in', async () => {
    const held = [];
    for (let i = 0; i < 3; i++) {
      const s = await tcp(srv.port);
      held.push(s);
      assert.equal(await statusOf(s, 'GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n'), 'HTTP/1.1 200 OK');
    }
    const fourth = await tcp(srv.port);
    assert.equal(await statusOf(fourth), null, 'the 4th connection is closed without an answer');
    const other = await tcp(srv.port, '127.0.0.2');
    assert.equal(await statusOf(other), 'HTTP/1.1 200 OK', 'another address is served');
    // Closing one frees a place for the first address again.
    held[0].destroy();
    await waitFor(held[0], 'close');
    let again = null;
    for (let i = 0; i < 50 && again !== 'HTTP/1.1 200 OK'; i++) {
      again = await statusOf(await tcp(srv.port)); // the server may see the close a moment later
    }
    assert.equal(again, 'HTTP/1.1 200 OK');
    for (const s of held) s.destroy();
    other.destroy();
  });
});

describe('max-connections', () => {
  let srv;
  before(async () => {
    srv = await startServer({ bin: 'parley', args: ['--max-connections', '4', '--max-per-ip', '0', '--static', '/nonexistent', '--data', dataDir()] });
  });
  after(async () => srv && srv.stop());

  test('connections over the cap are closed; those admitted keep working', async () => {
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await tcp(srv.port, `127.0.0.${i + 1}`));
    const extra = await tcp(srv.port, '127.0.0.9');
    assert.equal(await statusOf(extra), null);
    assert.equal(await statusOf(held[0]), 'HTTP/1.1 200 OK');
    for (const s of held) s.destroy();
  });
});

describe('http-timeout (slowloris)', () => {
  let srv;
  before(async () => {
    srv = await startServer({ bin: 'parley', args: ['--http-timeout', '300', '--static', '/nonexistent', '--data', dataDir()] });
  });
  after(async () => srv && srv.stop());

  test('a request that never completes is closed; other clients are served meanwhile', async () => {
    const slow = await tcp(srv.port);
    slow.on('error', () => {});
    slow.write('GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ');
    const closed = waitFor(slow, 'close', T);
    const res = await httpRequest(`${srv.url}/healthz`);
    assert.equal(res.status, 200);
    await closed;
  });

  test('an idle connection that sends nothing is closed', async () => {
    const idle = await tcp(srv.port);
    idle.on('error', () => {});
    await waitFor(idle, 'close', T);
  });

  test('a long-poll waiting for data is not cut by the HTTP timeout', async () => {
    const open = await httpRequest(`${srv.url}/socket.io/?EIO=4&transport=polling`);
    const sid = JSON.parse(open.body.slice(1)).sid;
    // The GET is answered with the server's ping after pingInterval (25 s
    // by default) or earlier with data; send a CONNECT so data comes back,
    // after the timeout has passed once.
    const poll = httpRequest(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { timeoutMs: T });
    await new Promise((r) => setTimeout(r, 600)); // longer than --http-timeout
    const post = await httpRequest(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '40' });
    assert.equal(post.status, 200);
    const res = await poll;
    assert.equal(res.status, 200);
    assert.match(res.body, /^40\{"sid"/);
  });
});

describe('max-header', () => {
  let srv;
  before(async () => {
    srv = await startServer({ bin: 'parley', args: ['--max-header', '1024', '--static', '/nonexistent', '--data', dataDir()] });
  });
  after(async () => srv && srv.stop());

  test('a request whose headers exceed the limit gets 431 and is closed; others are served', async () => {
    const big = await tcp(srv.port);
    const status = await statusOf(big, `GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(2000)}\r\n\r\n`);
    assert.equal(status, 'HTTP/1.1 431 Request Header Fields Too Large');
    await waitFor(big, 'close', T);
    const res = await httpRequest(`${srv.url}/healthz`);
    assert.equal(res.status, 200);
  });
});

describe('handshake-rate', () => {
  let srv;
  before(async () => {
    srv = await startServer({
      bin: 'parley',
      args: ['--handshake-rate', '0.5', '--handshake-burst', '3', '--trusted-proxy', '127.0.0.1',
        '--static', '/nonexistent', '--data', dataDir()],
    });
  });
  after(async () => srv && srv.stop());

  const handshake = (xff) => httpRequest(`${srv.url}/socket.io/?EIO=4&transport=polling`,
    { headers: xff ? { 'X-Forwarded-For': xff } : {} });

  test('over the burst, a client address gets 429; another address still connects', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await handshake('203.0.113.7')).status, 200);
    const refused = await handshake('203.0.113.7');
    assert.equal(refused.status, 429);
    assert.deepEqual(JSON.parse(refused.body), { code: 3, message: 'Too many handshakes' });
    // Behind the trusted proxy, the forwarded address is the one limited.
    assert.equal((await handshake('198.51.100.9')).status, 200);
  });

  test('requests of an open session are not handshakes and are never limited', async () => {
    const open = await handshake('192.0.2.44');
    const sid = JSON.parse(open.body.slice(1)).sid;
    for (let i = 0; i < 6; i++) {
      const post = await httpRequest(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`,
        { method: 'POST', body: '3', headers: { 'X-Forwarded-For': '192.0.2.44' } });
      assert.equal(post.status, 200);
    }
  });
});

describe('max-rooms and max-members', () => {
  let srv;
  const sockets = [];
  before(async () => {
    srv = await startServer({
      bin: 'parley',
      args: ['--max-rooms', '2', '--max-members', '2', '--rate-limit', '0', '--static', '/nonexistent', '--data', dataDir()],
    });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await srv.stop();
  });

  async function user(name) {
    const s = io(srv.url, { transports: ['websocket'], forceNew: true, reconnection: false });
    sockets.push(s);
    await waitFor(s, 'connect', T);
    assert.equal((await emitAck(s, 'user:join', [name], T))[0].ok, true);
    return s;
  }
  const reply = async (s, ev, arg) => (await emitAck(s, ev, [arg], T))[0];

  test('a connection in --max-rooms rooms cannot enter a third; leaving one makes room', async () => {
    const a = await user('Roomy');
    assert.equal((await reply(a, 'room:create', 'one')).ok, true);
    assert.equal((await reply(a, 'room:create', 'two')).ok, true);
    const third = await reply(a, 'room:create', 'three');
    assert.equal(third.error, 'forbidden');
    const list = await reply(a, 'rooms:list');
    assert.ok(!list.rooms.some((r) => r.name === 'three'), 'the refused room was not created');
    assert.equal((await reply(a, 'room:create', 'one')).ok, true, 'a room it is in is fine');
    assert.equal((await reply(a, 'room:leave', 'two')).ok, true);
    assert.equal((await reply(a, 'room:create', 'three')).ok, true);
  });

  test('a room with --max-members connections refuses the next; its members keep chatting', async () => {
    const a = await user('First');
    const b = await user('Second');
    const c = await user('Third');
    assert.equal((await reply(a, 'room:create', 'small')).ok, true);
    assert.equal((await reply(b, 'room:join', 'small')).ok, true);
    assert.equal((await reply(c, 'room:join', 'small')).error, 'forbidden');
    const got = waitFor(b, 'message:receive', T);
    assert.equal((await reply(a, 'message:room', { room: 'small', content: 'still here' })).ok, true);
    assert.equal((await got)[0].content, 'still here');
  });
});

describe('max-output for a polling session', () => {
  let srv;
  const sockets = [];
  before(async () => {
    srv = await startServer({
      bin: 'parley',
      args: ['--max-output', '20000', '--rate-limit', '0', '--static', '/nonexistent', '--data', dataDir()],
    });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await srv.stop();
  });

  const poll = (sid, method = 'GET', body) =>
    httpRequest(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method, body, timeoutMs: T });

  test('a polling client that stops polling is closed once its queue passes the limit; others go on', async () => {
    const open = await httpRequest(`${srv.url}/socket.io/?EIO=4&transport=polling`);
    const sid = JSON.parse(open.body.slice(1)).sid;
    const send = (pkt) => poll(sid, 'POST', pkt);
    assert.equal((await send('40')).status, 200);
    assert.equal((await send('42["user:join","Stalled"]')).status, 200);
    assert.equal((await send('42["room:create","busy"]')).status, 200);
    const drained = await poll(sid); // CONNECT reply etc.: then it stops polling
    assert.equal(drained.status, 200);

    const b = io(srv.url, { transports: ['websocket'], forceNew: true, reconnection: false });
    sockets.push(b);
    await waitFor(b, 'connect', T);
    assert.equal((await emitAck(b, 'user:join', ['Talker'], T))[0].ok, true);
    assert.equal((await emitAck(b, 'room:join', ['busy'], T))[0].ok, true);
    const content = 'x'.repeat(1000);
    for (let i = 0; i < 30; i++) // 30 KB for the stalled client, over its 20 KB
      assert.equal((await emitAck(b, 'message:room', [{ room: 'busy', content }], T))[0].ok, true);
    const gone = await poll(sid);
    assert.equal(gone.status, 400, 'the session was closed');
    assert.deepEqual(JSON.parse(gone.body), { code: 1, message: 'Session ID unknown' });
    assert.equal((await emitAck(b, 'rooms:list', [], T))[0].ok, true, 'the others go on');
  });
});

// Issue #12, defect 1: valid JSON nested deeper than the server's parser
// allows is a malformed payload (invalid_payload), not a reason to close the
// connection (it used to close it, silently).
describe('deeply nested payloads', () => {
  let srv;
  let s;
  before(async () => {
    srv = await startServer({
      bin: 'parley',
      args: ['--rate-limit', '0', '--static', '/nonexistent', '--data', dataDir()],
    });
    s = io(srv.url, { transports: ['websocket'], forceNew: true, reconnection: false });
    await waitFor(s, 'connect', T);
    assert.equal((await emitAck(s, 'user:join', ['Deep'], T))[0].ok, true);
    assert.equal((await emitAck(s, 'room:create', ['pit'], T))[0].ok, true);
  });
  after(async () => {
    s.close();
    await srv.stop();
  });

  // `depth` arrays, one inside the other.
  function nested(depth) {
    let v = [];
    for (let i = 1; i < depth; i++) v = [v];
    return v;
  }
  // The ack's reply; rejects at once if the server closes the connection.
  function reply(event, args) {
    return new Promise((resolve, reject) => {
      const onClose = (reason) => reject(new Error(`the server closed the connection (${reason})`));
      s.once('disconnect', onClose);
      emitAck(s, event, args, T).then(
        ([r]) => { s.off('disconnect', onClose); resolve(r); },
        (e) => { s.off('disconnect', onClose); reject(e); },
      );
    });
  }

  test('2,000 nested arrays are parsed as usual', async () => {
    // Within the parser's limit the payload is read: a message that carries
    // a deep extra field is sent; a deep array in place of the message is the
    // usual wrong type.
    const ok = await reply('message:room', [{ room: 'pit', content: 'deep', extra: nested(2000) }]);
    assert.equal(ok.ok, true, JSON.stringify(ok));
    const bad = await reply('message:room', [nested(2000)]);
    assert.equal(bad.error, 'invalid_payload');
  });

  test('3,000 nested arrays with an ack: invalid_payload, and the connection goes on', async () => {
    const r = await reply('message:room', [nested(3000)]);
    assert.equal(r.ok, false);
    assert.equal(r.error, 'invalid_payload');
    assert.equal(typeof r.message, 'string');
    // Also when the deep value sits beside a well-formed message.
    const r2 = await reply('message:room', [{ room: 'pit', content: 'x', extra: nested(3000) }]);
    assert.equal(r2.error, 'invalid_payload');
    const after = await reply('message:room', [{ room: 'pit', content: 'still here' }]);
    assert.equal(after.ok, true, JSON.stringify(after));
  });

  test('3,000 nested arrays without an ack: a chat:error', async () => {
    const err = waitFor(s, 'chat:error', T);
    s.emit('message:room', nested(3000));
    const [e] = await err;
    assert.equal(e.event, 'message:room');
    assert.equal(e.error, 'invalid_payload');
    assert.equal((await reply('rooms:list', [])).ok, true);
  });
});
