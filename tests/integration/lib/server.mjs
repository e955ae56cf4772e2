// lib/server.mjs - what every integration test shares: start a real Parley
// binary (build/parley or build/conformance-server) on a port the kernel
// picks, wait for it to write that port to its --port-file, and stop it at
// the end while
// checking that it neither crashed nor printed a sanitizer report. Also small
// event helpers (waitFor, collect) and raw HTTP / Engine.IO-over-WebSocket
// helpers for tests that need to see what socket.io-client hides.
//
// The build folder comes from PARLEY_BUILD_DIR (default "build"; scripts/test.sh
// sets build-asan for SANITIZE=1), relative to the repository root.
//
// Two hooks for running the servers under a tool (scripts/valgrind.sh):
//   PARLEY_WRAP  a command the binary is started through, words separated by
//                spaces (no quoting): "valgrind --error-exitcode=99 -q" runs
//                `valgrind --error-exitcode=99 -q build/parley --port 0 ...`.
//                The wrapper must exec the binary in its own process (valgrind
//                does), so the pid and SIGTERM are the server's, and its exit
//                status is the one stop() checks: a tool that reports through
//                a non-zero exit fails the test.
//   PARLEY_SLOW  a factor (a number >= 1, default 1) for how much slower than
//                a normal build the server runs: the helpers' default waits,
//                the socket.io-client connect timeout and the start and stop
//                bounds of startServer are multiplied by it; the tests scale
//                their own bound T with it (see SLOW).

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';
import { WebSocket } from 'ws';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The PARLEY_SLOW factor (1 when unset or not a number >= 1). */
export const SLOW = Math.max(1, Number(process.env.PARLEY_SLOW) || 1);

// Default bound of one wait in the helpers below.
const WAIT_MS = 5000 * SLOW;

/** The PARLEY_WRAP command as [program, ...args], or [] when unset. */
export function wrapCommand() {
  return (process.env.PARLEY_WRAP || '').split(/\s+/).filter(Boolean);
}

/** The folder holding the built binaries, absolute. */
export function buildDir() {
  return path.resolve(REPO_ROOT, process.env.PARLEY_BUILD_DIR || 'build');
}

/** Path of a binary in the build folder ("parley", "conformance-server"); a
 *  name containing a slash is taken as a path (relative to the repo root). */
export function binPath(bin) {
  return bin.includes('/') ? path.resolve(REPO_ROOT, bin) : path.join(buildDir(), bin);
}

// Lines a sanitizer prints when it finds something. "runtime error:" is
// UBSan's report line; the others name the tool in their banner.
const SANITIZER_PATTERNS = [
  /AddressSanitizer/,
  /LeakSanitizer/,
  /UndefinedBehaviorSanitizer/,
  /ThreadSanitizer/,
  /MemorySanitizer/,
  /runtime error:/,
];

/** The first line of `text` that looks like a sanitizer report, or null. */
export function findSanitizerReport(text) {
  for (const line of text.split('\n')) {
    if (SANITIZER_PATTERNS.some((re) => re.test(line))) return line;
  }
  return null;
}

/** The port a server wrote to its --port-file, or null while there is none
 *  (the server renames a complete file into place, so no partial read). */
function readPortFile(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const port = Number(text.trim());
  return Number.isInteger(port) && port > 0 ? port : null;
}

/** Resolves the port once `file` (in a folder of its own, `dir`) holds it:
 *  woken by the rename into `dir` (fs.watch), not by polling. */
function waitPortFile(dir, file, signal) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const port = readPortFile(file);
      if (port === null) return;
      watcher.close();
      resolve(port);
    };
    const watcher = fs.watch(dir, check);
    watcher.on('error', () => {}); // (the folder goes when the server exits: the exit rejects)
    signal.addEventListener('abort', () => { watcher.close(); reject(signal.reason); }, { once: true });
    check(); // written before the watch began
  });
}

const running = new Set();
// If the test process dies with servers still up, do not leave them behind.
process.on('exit', () => {
  for (const child of running) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

function tail(text, max = 4000) {
  return text.length > max ? '...' + text.slice(-max) : text;
}

/**
 * Starts `bin` with `--port 0 --port-file FILE` plus `args` (FILE in a
 * temporary folder removed once the server has exited; or the one named by
 * `--port-file` in args) and resolves once the server has written its port
 * there. Rejects if it exits first or is
 * not ready in time.
 *
 * Returns { port, url, pid, stop(), stderr(), exited }:
 *   url      "http://127.0.0.1:PORT"
 *   stderr() everything the server printed on stderr so far
 *   stop()   SIGTERM, wait for exit (bounded), then throws if the server
 *            crashed, exited non-zero, had to be killed, or printed a
 *            sanitizer report. Calling it again returns the same promise.
 *   exited   a promise of {code, signal}, resolved when the process ends
 */
export async function startServer({
  bin = 'conformance-server',
  args = [],
  env = {},
  readyTimeoutMs = 10000,
  stopTimeoutMs = 5000,
} = {}) {
  const file = binPath(bin);
  readyTimeoutMs *= SLOW;
  stopTimeoutMs *= SLOW;
  const [wrapper, ...wrapArgs] = wrapCommand();
  // A --port-file in args (a test of the option) is the one waited for.
  const given = args.indexOf('--port-file');
  const ownDir = given < 0 ? fs.mkdtempSync(path.join(os.tmpdir(), 'parley-port-')) : null;
  const portFile = ownDir ? path.join(ownDir, 'port') : path.resolve(REPO_ROOT, args[given + 1]);
  const portDir = path.dirname(portFile);
  const argv = ['--port', '0', ...(ownDir ? ['--port-file', portFile] : []), ...args];
  const child = spawn(wrapper ?? file, wrapper ? [...wrapArgs, file, ...argv] : argv, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      // Report everything, and make UBSan reports carry a stack.
      ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1:abort_on_error=0',
      UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? 'print_stacktrace=1',
      ...env,
    },
  });
  running.add(child);
  let err = '';
  child.stderr.setEncoding('utf8');

  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      if (ownDir) fs.rmSync(ownDir, { recursive: true, force: true });
      resolve({ code, signal });
    });
  });
  // The stderr pipe may still hold data after 'exit'; 'close' means all read.
  const stderrDone = once(child.stderr, 'close').catch(() => {});

  child.stderr.on('data', (chunk) => { err += chunk; });
  const ready = new AbortController();
  const timer = setTimeout(() => {
    child.kill('SIGKILL');
    ready.abort(new Error(`${file} did not write its port file within ${readyTimeoutMs} ms; stderr:\n${tail(err)}`));
  }, readyTimeoutMs);
  child.on('error', (e) => {
    ready.abort(new Error(`cannot start ${wrapper ? `${wrapper} (PARLEY_WRAP) for ` : ''}${file}: ${e.message}`));
  });
  exited.then(async ({ code, signal }) => {
    await stderrDone;
    ready.abort(new Error(`${file} exited (code ${code}, signal ${signal}) before listening; stderr:\n${tail(err)}`));
  });
  let port;
  try {
    port = await waitPortFile(portDir, portFile, ready.signal);
  } finally {
    clearTimeout(timer);
  }

  let stopping = null;
  const stop = () => {
    stopping ??= (async () => {
      let killed = false;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => { killed = true; child.kill('SIGKILL'); }, stopTimeoutMs);
        await exited;
        clearTimeout(timer);
      }
      const { code, signal } = await exited;
      await stderrDone;
      const report = findSanitizerReport(err);
      const problems = [];
      if (killed) problems.push(`did not exit within ${stopTimeoutMs} ms of SIGTERM (killed)`);
      else if (signal) problems.push(`died of signal ${signal}`);
      else if (code !== 0) problems.push(`exited with code ${code}`);
      if (report) problems.push(`printed a sanitizer report: ${report}`);
      if (problems.length) {
        throw new Error(`${path.basename(file)} (port ${port}) ${problems.join('; ')}; stderr:\n${tail(err)}`);
      }
    })();
    return stopping;
  };

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    stop,
    stderr: () => err,
    exited,
  };
}

/**
 * Resolves with the array of arguments of the next `event` on `emitter`
 * (Node EventEmitter, socket.io-client Socket/Manager/engine, ws WebSocket),
 * or rejects after timeoutMs. `filter(...args)` may skip events.
 */
export function waitFor(emitter, event, timeoutMs = WAIT_MS, { filter } = {}) {
  return new Promise((resolve, reject) => {
    const onEvent = (...args) => {
      if (filter && !filter(...args)) return;
      clearTimeout(timer);
      emitter.off(event, onEvent);
      resolve(args);
    };
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for "${event}"`));
    }, timeoutMs);
    emitter.on(event, onEvent);
  });
}

/**
 * Records every `event` on `emitter` from now on. Returns
 *   { items, until(n, timeoutMs), stop() }
 * where items holds each event's first argument (or all of them as an array
 * when the event has several), and until(n) resolves once n have arrived.
 */
// parley's connection state recovery appends an offset ("<8 chars>-<seq>")
// as the last argument of every replayable event, as Socket.IO does; the
// payload is what precedes it.
export const RECOVERY_OFFSET = /^[A-Za-z0-9_-]{8}-\d+$/;
export function withoutOffset(args) {
  const last = args[args.length - 1];
  return typeof last === 'string' && RECOVERY_OFFSET.test(last) ? args.slice(0, -1) : args;
}

export function collect(emitter, event) {
  const items = [];
  const waiters = [];
  const onEvent = (...all) => {
    const args = withoutOffset(all);
    items.push(args.length === 1 ? args[0] : args);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (items.length >= waiters[i].n) {
        waiters[i].resolve(items);
        waiters.splice(i, 1);
      }
    }
  };
  emitter.on(event, onEvent);
  return {
    items,
    until(n, timeoutMs = WAIT_MS) {
      if (items.length >= n) return Promise.resolve(items);
      return new Promise((resolve, reject) => {
        const w = {
          n,
          resolve: (v) => { clearTimeout(timer); resolve(v); },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${n} "${event}" events, got ${items.length}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
    stop() { emitter.off(event, onEvent); },
  };
}

/** One HTTP request; resolves {status, headers, body (string)}. */
export function httpRequest(url, { method = 'GET', headers = {}, body, timeoutMs = WAIT_MS } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode,
        headers: res.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`HTTP ${method} ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

/** Engine.IO session over long-polling by hand: the handshake's open packet
 *  data ({sid, pingInterval, ...}). */
export async function pollingHandshake(url, headers = {}) {
  const res = await httpRequest(`${url}/socket.io/?EIO=4&transport=polling`, { headers });
  if (res.status !== 200 || res.body[0] !== '0') {
    throw new Error(`polling handshake failed: ${res.status} ${res.body}`);
  }
  return { ...JSON.parse(res.body.slice(1)), response: res };
}

/**
 * A raw WebSocket on /socket.io/ that has done the Engine.IO handshake (and,
 * with `namespace`, the Socket.IO CONNECT to it). Resolves
 *   { ws, open (handshake data), messages: collect(ws, 'message') }
 * Incoming frames are not answered once it resolves: the caller decides about
 * pings. Engine.IO pings that come before it resolves (a slow server, e.g.
 * under valgrind, with a short --ping-interval) are answered here and left
 * out of next(), since the caller has no socket yet to answer them with.
 */
export async function rawSocket(url, { namespace = null, timeoutMs = WAIT_MS } = {}) {
  // No permessage-deflate: tests of raw framing need frames sent as written.
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`,
    { perMessageDeflate: false });
  ws.on('error', (e) => { ws.lastError = e; }); // an unhandled 'error' would kill the runner
  const texts = [];
  const arrived = collectText(ws, texts);
  await waitFor(ws, 'open', timeoutMs);
  const [first] = await arrived.next(timeoutMs);
  if (first[0] !== '0') throw new Error(`expected an Engine.IO open packet, got ${first}`);
  const open = JSON.parse(first.slice(1));
  if (namespace !== null) {
    ws.send(namespace === '/' ? '40' : `40${namespace},`);
    let [connect] = await arrived.next(timeoutMs);
    while (connect === '2') {
      ws.send('3');
      [connect] = await arrived.next(timeoutMs);
    }
    const prefix = namespace === '/' ? '40' : `40${namespace},`;
    if (!connect.startsWith(prefix)) throw new Error(`expected a Socket.IO CONNECT reply, got ${connect}`);
  }
  for (let n = arrived.drop((m) => m === '2'); n > 0; n--) ws.send('3');
  return { ws, open, next: arrived.next, texts };
}

// Queue of incoming frames (as strings) on a raw socket, consumed in order.
// next(timeoutMs, match) skips frames for which match(frame) is false;
// drop(match) removes the queued frames that match and returns how many.
function collectText(ws, texts) {
  const queue = [];
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    const msg = isBinary ? data : data.toString('utf8');
    texts.push(msg);
    const i = waiters.findIndex((w) => w.match(msg));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(msg);
    else queue.push(msg);
  });
  return {
    drop(match) {
      const before = queue.length;
      queue.splice(0, queue.length, ...queue.filter((m) => !match(m)));
      return before - queue.length;
    },
    next(timeoutMs = WAIT_MS, match = () => true) {
      while (queue.length) {
        const msg = queue.shift();
        if (match(msg)) return Promise.resolve([msg]);
      }
      return new Promise((resolve, reject) => {
        const w = { match, resolve: (msg) => { clearTimeout(timer); resolve([msg]); } };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for a WebSocket message; got ${JSON.stringify(texts).slice(0, 500)}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
  };
}

/**
 * socket.io-client sockets that a test opens and closes together. Each gets
 * its own Manager (forceNew) and no reconnection, so a disconnect stays one.
 *   open(url, opts)     a Socket, connecting
 *   connect(url, opts)  resolves the Socket once connected (rejects on
 *                       connect_error or after timeoutMs)
 *   track(socket)       adds a Socket made elsewhere (e.g. by a Manager)
 *   closeAll()          disconnects every Socket opened or tracked here
 */
export function clientPool() {
  const sockets = new Set();
  return {
    open(url, opts = {}) {
      const s = io(url, { forceNew: true, reconnection: false, timeout: WAIT_MS, ...opts });
      sockets.add(s);
      return s;
    },
    async connect(url, opts = {}, timeoutMs = WAIT_MS) {
      const s = this.open(url, opts);
      await connected(s, timeoutMs);
      return s;
    },
    track(s) { sockets.add(s); return s; },
    closeAll() {
      for (const s of sockets) s.disconnect();
      sockets.clear();
    },
  };
}

/** Resolves when `socket` connects; rejects with its connect_error. */
export function connected(socket, timeoutMs = WAIT_MS) {
  if (socket.connected) return Promise.resolve(socket);
  return new Promise((resolve, reject) => {
    const done = (fn, v) => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
      fn(v);
    };
    const onConnect = () => done(resolve, socket);
    const onError = (e) => done(reject, e);
    const timer = setTimeout(() => done(reject, new Error(`not connected within ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
  });
}

/** emit with a callback, as a promise of the ack's arguments (all of them). */
export function emitAck(socket, event, args, timeoutMs = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for "${event}" within ${timeoutMs} ms`)), timeoutMs);
    socket.emit(event, ...args, (...ackArgs) => { clearTimeout(timer); resolve(ackArgs); });
  });
}

/** Bytes of a binary value as socket.io-client delivers it (Buffer,
 *  ArrayBuffer or a typed array view); throws for anything else, so a binary
 *  that came back as JSON (e.g. {type:'Buffer', data:[...]}) fails loudly. */
export function bytes(v) {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError(`expected binary data, got ${JSON.stringify(v)?.slice(0, 200)}`);
}
