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
import { startServer, waitFor, httpRequest } from './lib/server.mjs';

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
    const closed = waitFor(slow, 'close', 5000);
    const res = await httpRequest(`${srv.url}/healthz`);
    assert.equal(res.status, 200);
    await closed;
  });

  test('an idle connection that sends nothing is closed', async () => {
    const idle = await tcp(srv.port);
    idle.on('error', () => {});
    await waitFor(idle, 'close', 5000);
  });

  test('a long-poll waiting for data is not cut by the HTTP timeout', async () => {
    const open = await httpRequest(`${srv.url}/socket.io/?EIO=4&transport=polling`);
    const sid = JSON.parse(open.body.slice(1)).sid;
    // The GET is answered with the server's ping after pingInterval (25 s
    // by default) or earlier with data; send a CONNECT so data comes back,
    // after the timeout has passed once.
    const poll = httpRequest(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 600)); // longer than --http-timeout
    const post = await httpRequest(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '40' });
    assert.equal(post.status, 200);
    const res = await poll;
    assert.equal(res.status, 200);
    assert.match(res.body, /^40\{"sid"/);
  });
});
