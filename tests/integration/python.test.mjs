// python.test.mjs - an independent Socket.IO implementation (Debian's
// python3-socketio) talks to Parley: polling handshake, upgrade to websocket,
// an acked event and an echoed one. The checks run in python_client.py; this
// file starts the server, runs the client with a bounded wait, and asserts its
// exit status and report.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { startServer, waitFor } from './lib/server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
// Debian's interpreter: python3-socketio is installed for it, not for a
// pyenv python3 that may come first on PATH.
const PYTHON = '/usr/bin/python3';

async function runClient(url, timeoutMs = 20000) {
  const child = spawn(PYTHON, [path.join(HERE, 'python_client.py'), url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = await waitFor(child, 'close', timeoutMs + 1000);
  clearTimeout(timer);
  return { code, signal, out, err };
}

describe('python-socketio client', { timeout: 60000 }, () => {
  let server;
  before(async () => {
    server = await startServer({ bin: 'conformance-server', args: ['--ping-interval', '1000', '--ping-timeout', '3000'] });
  });
  after(async () => { if (server) await server.stop().catch(() => {}); });

  test('polling then websocket upgrade, ack and echo', async () => {
    assert.ok(existsSync(PYTHON), `${PYTHON} is missing (Debian packages python3-socketio python3-websocket: make deps-test installs them)`);
    const r = await runClient(server.url);
    const report = `exit ${r.code} signal ${r.signal}\nstdout:\n${r.out}\nstderr:\n${r.err}`;
    assert.equal(r.code, 0, report);
    for (const line of [
      'ok handshake over polling',
      'ok upgrade to websocket',
      'ok transport=websocket',
      'ok received "auth" on connect',
      "ok ack answer {'text': 'héllo 🌍', 'n': [1, 2, 3]}",
      "ok message-back [['from python', 42]]",
      'python client: all checks passed',
    ]) {
      assert.ok(r.out.split('\n').includes(line), `missing "${line}"\n${report}`);
    }
  });

  test('server exits cleanly on SIGTERM with no sanitizer report', async () => {
    await server.stop();
  });
});
