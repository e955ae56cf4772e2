// lib/webhook-receiver.mjs - a webhook receiver for the tests: a Node HTTP
// server on a port the kernel picks that records every POST (headers, raw
// body, parsed JSON, time) and answers as the test says.
//
//   const rx = await startReceiver();
//   rx.behave((req, n) => ({ status: 500 }));  // n: 0-based request number
//   const r = await rx.next();                  // the next recorded request
//   await rx.close();
//
// A behaviour returns { status, body } (body: a string or Buffer), or
// { hang: true } to never answer (the socket is destroyed at close), or
// { huge: bytes } to answer 200 with that many bytes streamed in chunks.
import http from 'node:http';
import crypto from 'node:crypto';
import { once } from 'node:events';

/** The X-Parley-Signature a body must carry for secret. */
export function sign(secret, body) {
  return `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`;
}

export async function startReceiver() {
  const requests = [];
  const waiters = [];
  const sockets = new Set();
  let behaviour = () => ({ status: 200 });
  let count = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let json = null;
      try { json = JSON.parse(raw.toString('utf8')); } catch { /* recorded as null */ }
      const rec = { headers: req.headers, raw, json, at: Date.now(), n: count };
      const what = behaviour(rec, count++) || { status: 200 };
      requests.push(rec);
      const w = waiters.shift();
      if (w) w(rec);
      if (what.hang) return;
      if (what.huge) {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': what.huge });
        const chunk = Buffer.alloc(64 * 1024, 'x');
        let left = what.huge;
        const pump = () => {
          while (left > 0) {
            const n = Math.min(left, chunk.length);
            left -= n;
            if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        res.on('error', () => {});
        pump();
        return;
      }
      res.writeHead(what.status ?? 200, { 'Content-Type': 'text/plain' });
      res.end(what.body ?? 'ok');
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    behave(fn) { behaviour = fn; },
    /** The next request not yet taken by next(), or a rejection after ms. */
    next(ms = 10000) {
      const taken = this._taken ?? 0;
      if (requests.length > taken) {
        this._taken = taken + 1;
        return Promise.resolve(requests[taken]);
      }
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no webhook request within ${ms} ms`)), ms);
        waiters.push((rec) => { clearTimeout(t); this._taken = (this._taken ?? 0) + 1; resolve(rec); });
      });
    },
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close').catch(() => {});
    },
  };
}
