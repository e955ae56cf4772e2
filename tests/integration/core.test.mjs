// core.test.mjs - the Socket.IO core as an unmodified client sees it, against
// the real layers in build/conformance-server (see tests/conformance/server.c
// for its events: "message" -> "message-back", "message-with-ack", "join",
// "to-room", "server-ack"). socket.io-client for what users do; raw `ws` and
// HTTP where the client library hides the protocol.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Manager } from 'socket.io-client';
import {
  bytes, clientPool, collect, connected, emitAck, httpRequest, pollingHandshake,
  rawSocket, startServer, waitFor,
} from './lib/server.mjs';

const BOTH = [['polling'], ['websocket']];

// Pings far enough apart that a busy (or sanitized) client never misses one.
const isMessageBack = (frame) => typeof frame === 'string' && frame.startsWith('42["message-back"');

const SLOW_PINGS = ['--ping-interval', '1000', '--ping-timeout', '3000'];

// Every describe owns a server; its last test stops it and checks that it
// shut down cleanly, so a crash or sanitizer report fails a counted test.
function serverLifecycle(args) {
  const ctx = { server: null, clients: clientPool() };
  before(async () => { ctx.server = await startServer({ bin: 'conformance-server', args }); });
  after(async () => {
    ctx.clients.closeAll();
    // Reported by the test below already; only make sure nothing is left.
    if (ctx.server) await ctx.server.stop().catch(() => {});
  });
  return ctx;
}

function cleanExitTest(ctx) {
  test('server exits cleanly on SIGTERM with no sanitizer report', async () => {
    ctx.clients.closeAll();
    await ctx.server.stop();
  });
}

describe('core', { timeout: 60000 }, () => {
  const ctx = serverLifecycle(SLOW_PINGS);
  const url = () => ctx.server.url;
  const clients = ctx.clients;

  // ---- transports ---------------------------------------------------------

  test('polling only: connects, receives the connect event, exchanges an event', async () => {
    const s = clients.open(url(), { transports: ['polling'], auth: { who: 'polling' } });
    const auth = waitFor(s, 'auth');
    await connected(s);
    assert.deepEqual(await auth, [{ who: 'polling' }]);
    const back = waitFor(s, 'message-back');
    s.emit('message', 'over polling', 42);
    assert.deepEqual(await back, ['over polling', 42]);
    assert.equal(s.io.engine.transport.name, 'polling');
  });

  test('websocket only: connects and exchanges an event', async () => {
    const s = clients.open(url(), { transports: ['websocket'], auth: { who: 'ws' } });
    const auth = waitFor(s, 'auth');
    await connected(s);
    assert.equal(s.io.engine.transport.name, 'websocket');
    assert.deepEqual(await auth, [{ who: 'ws' }]);
    const back = waitFor(s, 'message-back');
    s.emit('message', 'over websocket', { n: 1 });
    assert.deepEqual(await back, ['over websocket', { n: 1 }]);
  });

  test('default transports: upgrade from polling to websocket, events flow after', async () => {
    const s = clients.open(url());
    const engine = s.io.engine;
    const opened = waitFor(engine, 'open');
    const upgraded = waitFor(engine, 'upgrade', 5000);
    await opened;
    assert.equal(engine.transport.name, 'polling', 'the session starts over polling');
    await connected(s);
    const sid = engine.id;
    const [transport] = await upgraded;
    assert.equal(transport.name, 'websocket');
    assert.equal(engine.transport.name, 'websocket');
    assert.equal(engine.id, sid, 'the upgrade keeps the Engine.IO session');
    const back = waitFor(s, 'message-back');
    s.emit('message', 'after upgrade');
    assert.deepEqual(await back, ['after upgrade']);
    assert.deepEqual(await emitAck(s, 'message-with-ack', ['ack after upgrade']), ['ack after upgrade']);
    assert.ok(s.connected);
  });

  // ---- acknowledgements ---------------------------------------------------

  for (const transports of BOTH) {
    test(`ack client->server returns the event's args (${transports[0]})`, async () => {
      const s = await clients.connect(url(), { transports });
      const args = [1, 'two', { three: [3] }, null, true];
      assert.deepEqual(await emitAck(s, 'message-with-ack', args), args);
      // Two acks in flight at once each get their own answer.
      const [a, b] = await Promise.all([
        emitAck(s, 'message-with-ack', ['first']),
        emitAck(s, 'message-with-ack', ['second']),
      ]);
      assert.deepEqual([a, b], [['first'], ['second']]);
    });
  }

  test('ack server->client: the client acks "ask", the server reports the ack args as "answer"', async () => {
    const s = await clients.connect(url(), { transports: ['websocket'] });
    const asked = [];
    s.on('ask', (...args) => {
      const ack = args.pop();
      assert.equal(typeof ack, 'function', '"ask" carries an ack callback');
      asked.push(args);
      ack({ seen: args.length, reply: 'from the client' }, 7);
    });
    const answer = waitFor(s, 'answer');
    s.emit('server-ack', 'q', { x: 1 });
    assert.deepEqual(await answer, [{ seen: 2, reply: 'from the client' }, 7]);
    assert.deepEqual(asked, [['q', { x: 1 }]]);
  });

  // ---- binary -------------------------------------------------------------

  for (const transports of BOTH) {
    test(`binary payloads both ways, nested and top-level (${transports[0]})`, async () => {
      const s = await clients.connect(url(), { transports });
      const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const big = Buffer.alloc(70000);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
      const back = waitFor(s, 'message-back');
      s.emit('message',
        { label: 'obj', data: all, nested: [Uint8Array.from([9, 8, 7]), { deep: big }] },
        Buffer.from('top-level'),
        'text between',
        Uint8Array.from([0, 0, 0, 1]));
      const [obj, top, text, tail] = await back;
      assert.equal(obj.label, 'obj');
      assert.deepEqual(bytes(obj.data), all);
      assert.deepEqual(bytes(obj.nested[0]), Buffer.from([9, 8, 7]));
      assert.deepEqual(bytes(obj.nested[1].deep), big);
      assert.deepEqual(bytes(top), Buffer.from('top-level'));
      assert.equal(text, 'text between');
      assert.deepEqual(bytes(tail), Buffer.from([0, 0, 0, 1]));

      // And in an ack.
      const ack = await emitAck(s, 'message-with-ack', [Buffer.from([0xde, 0xad]), { b: Buffer.from([0xbe, 0xef]) }]);
      assert.deepEqual(bytes(ack[0]), Buffer.from([0xde, 0xad]));
      assert.deepEqual(bytes(ack[1].b), Buffer.from([0xbe, 0xef]));
    });
  }

  // ---- rooms --------------------------------------------------------------

  test('room broadcast reaches the other members, not the sender, not non-members', async () => {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map(
      () => clients.connect(url(), { transports: ['websocket'] })));
    const got = { a: collect(a, 'room-message'), b: collect(b, 'room-message'), c: collect(c, 'room-message') };
    assert.deepEqual(await emitAck(a, 'join', ['r']), [true]);
    assert.deepEqual(await emitAck(b, 'join', ['r']), [true]);

    a.emit('to-room', 'r', 'hello', { from: 'a' });
    await got.b.until(1);
    assert.deepEqual(got.b.items, [['hello', { from: 'a' }]]);

    // c joins only now, then b sends a marker. Each connection's output is in
    // order, so if "hello" had been sent to a (its sender) or c (not yet a
    // member) it would have arrived before the marker.
    assert.deepEqual(await emitAck(c, 'join', ['r']), [true]);
    b.emit('to-room', 'r', 'marker');
    await Promise.all([got.a.until(1), got.c.until(1)]);
    assert.deepEqual(got.a.items, ['marker'], 'the sender of "hello" did not get it');
    assert.deepEqual(got.c.items, ['marker'], 'a non-member did not get "hello"');

    // Same proof for b as a sender.
    a.emit('to-room', 'r', 'marker2');
    await Promise.all([got.b.until(2), got.c.until(2)]);
    assert.deepEqual(got.b.items, [['hello', { from: 'a' }], 'marker2'], 'the sender of "marker" did not get it');
    assert.deepEqual(got.c.items, ['marker', 'marker2']);
  });

  // ---- namespaces ---------------------------------------------------------

  test('unknown namespace: connect_error "Invalid namespace"', async () => {
    const s = clients.open(`${url()}/nope`, { transports: ['websocket'] });
    const [err] = await waitFor(s, 'connect_error');
    assert.equal(err.message, 'Invalid namespace');
    assert.equal(s.connected, false);
  });

  // "/async" answers its CONNECT later (SIO_CONNECT_PENDING, sio_connect_finish).
  test('asynchronous CONNECT: accepted later, then a socket like any other', async () => {
    const s = clients.open(`${url()}/async`, { transports: ['websocket'], auth: { delay: 100 } });
    const auth = waitFor(s, 'auth');
    await connected(s);
    assert.deepEqual(await auth, [{ delay: 100 }]);
    assert.deepEqual(await emitAck(s, 'message-with-ack', ['later']), ['later']);
  });

  test('asynchronous CONNECT: refused later with its CONNECT_ERROR data', async () => {
    const s = clients.open(`${url()}/async`, { transports: ['websocket'], auth: { delay: 50, refuse: true } });
    const [err] = await waitFor(s, 'connect_error');
    assert.equal(err.message, 'refused');
    assert.equal(s.connected, false);
  });

  test('asynchronous CONNECT: a second CONNECT while one is pending is ignored', async () => {
    const { ws, next } = await rawSocket(url());
    ws.send('40/async,{"delay":100}');
    ws.send('40/async,{"delay":0}');
    const [reply] = await next(5000, (m) => m.startsWith('40/async,'));
    assert.match(reply, /^40\/async,\{"sid":/);
    // Exactly one reply: the event after it is answered, and nothing came between.
    ws.send('42/async,["message","after"]');
    const [back] = await next(5000, (m) => m !== '2');
    assert.equal(back, '42/async,["auth",{"delay":100}]');
    assert.equal((await next(5000, (m) => m !== '2'))[0], '42/async,["message-back","after"]');
    ws.close();
  });

  test('asynchronous CONNECT: a client gone while pending leaves nothing behind', async () => {
    // The server finishes the CONNECT after the client has gone; the clean
    // exit under the sanitizers (last test) says nothing leaked or was used
    // after being freed. Meanwhile the server keeps serving.
    for (let i = 0; i < 5; i++) {
      const { ws } = await rawSocket(url());
      const closed = waitFor(ws, 'close');
      ws.send('40/async,{"delay":200}');
      ws.close();
      await closed;
    }
    const s = await clients.connect(`${url()}/async`, { transports: ['websocket'], auth: { delay: 300 } });
    assert.deepEqual(await emitAck(s, 'message-with-ack', ['alive']), ['alive']);
  });

  test('"/custom" and "/" multiplexed on one connection', async () => {
    const manager = new Manager(url(), { reconnection: false, transports: ['websocket'] });
    const root = clients.track(manager.socket('/', { auth: { ns: 'root' } }));
    const custom = clients.track(manager.socket('/custom', { auth: { ns: 'custom' } }));
    const authRoot = waitFor(root, 'auth');
    const authCustom = waitFor(custom, 'auth');
    await Promise.all([connected(root), connected(custom)]);
    assert.deepEqual(await authRoot, [{ ns: 'root' }]);
    assert.deepEqual(await authCustom, [{ ns: 'custom' }]);
    assert.equal(root.io.engine, custom.io.engine, 'one Engine.IO connection');
    assert.notEqual(root.id, custom.id);

    const rootBacks = collect(root, 'message-back');
    const customBacks = collect(custom, 'message-back');
    custom.emit('message', 'on custom');
    root.emit('message', 'on root');
    // Both replies share one transport, in order: the "/" reply comes after
    // the "/custom" one, so a misrouted reply would already be here.
    await rootBacks.until(1);
    await customBacks.until(1);
    assert.deepEqual(rootBacks.items, ['on root']);
    assert.deepEqual(customBacks.items, ['on custom']);

    // Leaving one namespace keeps the other.
    custom.disconnect();
    assert.deepEqual(await emitAck(root, 'message-with-ack', ['still here']), ['still here']);
    assert.ok(root.connected);
  });

  // ---- volume and content -------------------------------------------------

  for (const transports of BOTH) {
    test(`1,000 events are echoed in order (${transports[0]})`, async () => {
      const s = await clients.connect(url(), { transports });
      const backs = collect(s, 'message-back');
      for (let i = 0; i < 1000; i++) s.emit('message', i);
      await backs.until(1000, 20000);
      assert.deepEqual(backs.items, Array.from({ length: 1000 }, (_, i) => i));
    });
  }

  for (const transports of BOTH) {
    test(`a 900 KB message is echoed intact (${transports[0]})`, async () => {
      const s = await clients.connect(url(), { transports });
      const big = Array.from({ length: 900 * 1024 }, (_, i) => String.fromCharCode(33 + ((i * 7 + (i >> 10)) % 90))).join('');
      const back = waitFor(s, 'message-back', 15000);
      s.emit('message', big);
      const [echo] = await back;
      assert.equal(echo.length, big.length);
      assert.ok(echo === big, 'echo differs from what was sent');
    });
  }

  for (const transports of BOTH) {
    test(`UTF-8 (emoji, CJK, combining, RTL, astral) is echoed intact (${transports[0]})`, async () => {
      const s = await clients.connect(url(), { transports });
      const samples = [
        'héllo wörld',
        '😀👍🏽🎉👨‍👩‍👧‍👦',
        '中文漢字日本語한국어',
        '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛',
        'e\u0301 a\u0308',
        'مرحبا بالعالم',
        { 'ключ': 'значение', '鍵': ['値', '🔑'] },
      ];
      const back = waitFor(s, 'message-back');
      s.emit('message', ...samples);
      assert.deepEqual(await back, samples);
      assert.deepEqual(await emitAck(s, 'message-with-ack', ['確認 ✅']), ['確認 ✅']);
    });
  }

  // ---- raw protocol -------------------------------------------------------

  test('raw WebSocket: a text frame with invalid UTF-8 is closed with 1007', async () => {
    const { ws } = await rawSocket(url(), { namespace: '/' });
    const closed = waitFor(ws, 'close');
    // '42["message","' + bytes that are not UTF-8 + '"]'
    ws.send(Buffer.concat([Buffer.from('42["message","'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"]')]),
      { binary: false });
    const [code] = await closed;
    assert.equal(code, 1007);
  });

  test('raw WebSocket: a message in two fragments is reassembled', async () => {
    const { ws, next } = await rawSocket(url(), { namespace: '/' });
    ws.send('42["message","frag', { fin: false });
    ws.send('mented"]', { fin: true });
    assert.deepEqual(await next(5000, isMessageBack), ['42["message-back","fragmented"]']);
    ws.close();
  });

  test('raw WebSocket: a ping between two fragments is answered and the message reassembled', async () => {
    const { ws, next } = await rawSocket(url(), { namespace: '/' });
    const pong = waitFor(ws, 'pong');
    ws.send('42["message","be', { fin: false });
    ws.ping(Buffer.from('in between'));
    ws.send('fore"]', { fin: true });
    const [data] = await pong;
    assert.equal(data.toString(), 'in between');
    assert.deepEqual(await next(5000, isMessageBack), ['42["message-back","before"]']);
    ws.close();
  });

  test('raw WebSocket: a ping frame gets a pong with the same payload', async () => {
    const { ws } = await rawSocket(url());
    const pong = waitFor(ws, 'pong');
    ws.ping(Buffer.from('are you there?'));
    const [data] = await pong;
    assert.equal(data.toString(), 'are you there?');
    ws.close();
  });

  test('HTTP: unknown sid is 400 {"code":1,"message":"Session ID unknown"}', async () => {
    for (const method of ['GET', 'POST']) {
      const res = await httpRequest(`${url()}/socket.io/?EIO=4&transport=polling&sid=no-such-session`,
        { method, body: method === 'POST' ? '4hello' : undefined, headers: { 'content-type': 'text/plain;charset=UTF-8' } });
      assert.equal(res.status, 400, method);
      assert.match(res.headers['content-type'], /^application\/json/);
      assert.deepEqual(JSON.parse(res.body), { code: 1, message: 'Session ID unknown' });
    }
  });

  test('HTTP: a chunked POST with trailer fields is read with its own headers', async () => {
    // Trailers come after the headers are complete; a trailer named like a
    // header the server reads (Origin, checked when the POST is answered)
    // must neither replace it nor disturb it (the libFuzzer http target
    // found a use-after-free there; ASan builds see it).
    const hs = await pollingHandshake(url());
    const sidUrl = `${url()}/socket.io/?EIO=4&transport=polling&sid=${hs.sid}`;
    const res = await new Promise((resolve, reject) => {
      const req = http.request(sidUrl, {
        method: 'POST', agent: false,
        headers: { 'content-type': 'text/plain;charset=UTF-8', origin: 'http://client.example', 'transfer-encoding': 'chunked', trailer: 'Origin' },
      }, (r) => {
        let body = '';
        r.on('data', (c) => { body += c; });
        r.on('end', () => resolve({ status: r.statusCode, headers: r.headers, body }));
      });
      req.on('error', reject);
      req.write('4');
      req.write('0');
      // long enough that appending it would have to move the header's buffer
      req.addTrailers({ Origin: `http://${'p'.repeat(4000)}.example` });
      req.end();
    });
    assert.equal(res.status, 200);
    assert.equal(res.body, 'ok');
    assert.equal(res.headers['access-control-allow-origin'], '*');
    const poll = await httpRequest(sidUrl);
    assert.equal(poll.status, 200);
    assert.match(poll.body, /^40\{"sid":"[^"]+"/); // the CONNECT was read as text
  });

  test('HTTP: EIO=3 is 400 with code 5', async () => {
    const res = await httpRequest(`${url()}/socket.io/?EIO=3&transport=polling`);
    assert.equal(res.status, 400);
    assert.deepEqual(JSON.parse(res.body), { code: 5, message: 'Unsupported protocol version' });
  });

  test('HTTP: a polling handshake with an Origin gets Access-Control-Allow-Origin: *', async () => {
    const hs = await pollingHandshake(url(), { Origin: 'http://client.example' });
    assert.equal(hs.response.headers['access-control-allow-origin'], '*');
    assert.equal(typeof hs.sid, 'string');
    assert.deepEqual(hs.upgrades, ['websocket']);
  });

  cleanExitTest(ctx);
});

describe('ping timeout', { timeout: 30000 }, () => {
  const ctx = serverLifecycle(['--ping-interval', '150', '--ping-timeout', '150']);

  test('a client that never answers pings is closed; one that answers stays', async () => {
    const silent = await rawSocket(ctx.server.url, { namespace: '/' });
    // Listen at once: the next ping may come while the second socket opens.
    const silentPing = waitFor(silent.ws, 'message', 3000, { filter: (m) => m.toString() === '2' });
    const silentClosed = waitFor(silent.ws, 'close', 5000);
    const polite = await rawSocket(ctx.server.url, { namespace: '/' });
    assert.equal(silent.open.pingInterval, 150);
    assert.equal(silent.open.pingTimeout, 150);
    const politePings = [];
    polite.ws.on('message', (m) => {
      if (m.toString() === '2') { politePings.push(m); polite.ws.send('3'); }
    });
    await silentPing;
    await silentClosed;

    // The answering client gets two more pings after that, and is still open.
    const seen = politePings.length;
    await waitFor(polite.ws, 'message', 3000, { filter: () => politePings.length >= seen + 2 });
    assert.equal(polite.ws.readyState, polite.ws.OPEN);
    polite.ws.close();
    await waitFor(polite.ws, 'close');
  });

  test('socket.io-client, which answers pings, stays connected across several ping intervals', async () => {
    const s = await ctx.clients.connect(ctx.server.url, { transports: ['websocket'] });
    const pings = collect(s.io.engine, 'ping');
    await pings.until(3, 5000);
    assert.ok(s.connected);
    assert.deepEqual(await emitAck(s, 'message-with-ack', ['alive']), ['alive']);
  });

  cleanExitTest(ctx);
});

describe('max payload', { timeout: 30000 }, () => {
  const ctx = serverLifecycle([...SLOW_PINGS, '--max-payload', '1000']);
  const url = () => ctx.server.url;

  for (const transports of BOTH) {
    test(`an oversized message disconnects its sender only (${transports[0]})`, async () => {
      const bystander = await ctx.clients.connect(url(), { transports: ['websocket'] });
      const offender = await ctx.clients.connect(url(), { transports });
      const offenderBacks = collect(offender, 'message-back');
      const gone = waitFor(offender, 'disconnect', 5000);
      offender.emit('message', 'x'.repeat(5000));
      const [reason] = await gone;
      assert.match(reason, /^transport (close|error)$/);
      assert.deepEqual(offenderBacks.items, []);

      const back = waitFor(bystander, 'message-back');
      bystander.emit('message', 'still here');
      assert.deepEqual(await back, ['still here']);
      assert.ok(bystander.connected);
      // A message under the limit still goes through for a fresh client.
      const again = await ctx.clients.connect(url(), { transports });
      assert.deepEqual(await emitAck(again, 'message-with-ack', ['y'.repeat(900)]), ['y'.repeat(900)]);
    });
  }

  test('HTTP: a POST body above the limit ends that session, not another one', async () => {
    const offender = await pollingHandshake(url());
    const bystander = await pollingHandshake(url());
    const poll = (sid, opts) => httpRequest(`${url()}/socket.io/?EIO=4&transport=polling&sid=${sid}`, opts);
    const res = await poll(offender.sid, {
      method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: '4' + 'z'.repeat(5000),
    });
    assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
    const later = await poll(offender.sid);
    assert.equal(later.status, 400);
    assert.deepEqual(JSON.parse(later.body), { code: 1, message: 'Session ID unknown' });

    // The other session connects to "/" and gets its CONNECT reply.
    const post = await poll(bystander.sid, { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: '40' });
    assert.equal(post.status, 200);
    assert.equal(post.body, 'ok');
    const get = await poll(bystander.sid);
    assert.equal(get.status, 200);
    assert.match(get.body, /^40\{"sid":"[^"]+"\}/);
  });

  // engine.io answers an oversized POST with 413 Payload Too Large (RFC 9110
  // 15.5.14); Parley's net layer flags it as 413 too, but the answer is 400.
  test('HTTP: a POST body above the limit is answered 413 Payload Too Large', async () => {
    const hs = await pollingHandshake(url());
    const res = await httpRequest(`${url()}/socket.io/?EIO=4&transport=polling&sid=${hs.sid}`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
      body: '4' + 'z'.repeat(5000),
    });
    assert.equal(res.status, 413, `got ${res.status} ${res.body}`);
  });

  test('raw WebSocket: a frame above the limit is closed with 1009', async () => {
    const { ws } = await rawSocket(url(), { namespace: '/' });
    const closed = waitFor(ws, 'close');
    ws.send('42["message","' + 'z'.repeat(5000) + '"]');
    const [code] = await closed;
    assert.equal(code, 1009);
  });

  cleanExitTest(ctx);
});
