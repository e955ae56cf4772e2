// bench/loop-lag.mjs - event-loop lag of parley while N clients chat.
//
// N socket.io clients (WebSocket) join as users, spread over rooms of
// ROOM members, and each sends a room message every PERIOD ms for SECONDS.
// Before and after, GET /metrics is scraped; the difference of the
// parley_event_loop_lag_seconds and parley_store_latency_seconds{op="append"}
// histograms gives their distributions during the run (p50/p99 are bucket
// upper bounds). Bounded: stops by itself after SECONDS + connect time.
//
// usage: node bench/loop-lag.mjs --url http://127.0.0.1:PORT [--n 1000]
//        [--room 10] [--period 1000] [--seconds 30]
// (socket.io-client is taken from tests/integration/node_modules; run
// parley with --rate-limit 0 --max-per-ip 0 so the limits stay out of it.)
import { createRequire } from 'node:module';
import path from 'node:path';
import http from 'node:http';

const require = createRequire(path.resolve('tests/integration/package.json'));
const { io } = require('socket.io-client');

const opt = { n: 1000, room: 10, period: 1000, seconds: 30 };
for (let i = 2; i < process.argv.length; i += 2) opt[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const N = Number(opt.n), ROOM = Number(opt.room), PERIOD = Number(opt.period), SECONDS = Number(opt.seconds);

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

// {le -> cumulative count} of one histogram (optionally one label set).
async function histogram(name, label = '') {
  const text = await get(`${opt.url}/metrics`);
  const h = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}_bucket{`) || !line.includes(label)) continue;
    const le = /le="([^"]+)"/.exec(line)[1];
    h.set(le, Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return h;
}

function quantiles(before, after) {
  const les = [...after.keys()];
  const counts = les.map((le) => after.get(le) - (before.get(le) ?? 0));
  const total = counts[counts.length - 1];
  const q = (p) => les[counts.findIndex((c) => c >= p * total)];
  return { total, p50: q(0.5), p99: q(0.99), p999: q(0.999), max: q(1) };
}

const emitAck = (s, ev, arg) => new Promise((r) => s.emit(ev, arg, r));

const sockets = [];
const t0 = Date.now();
for (let i = 0; i < N; i += 100) {
  const batch = [];
  for (let j = i; j < Math.min(N, i + 100); j++) {
    batch.push((async () => {
      const s = io(opt.url, { transports: ['websocket'], forceNew: true, reconnection: false });
      await new Promise((r) => s.once('connect', r));
      await emitAck(s, 'user:join', `load${j}`);
      await emitAck(s, 'room:create', `lag-room-${Math.floor(j / ROOM)}`);
      sockets.push({ s, room: `lag-room-${Math.floor(j / ROOM)}` });
    })());
  }
  await Promise.all(batch);
}
console.log(`connected ${N} clients in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

let delivered = 0;
for (const { s } of sockets) s.on('message:receive', () => delivered++);
const lagBefore = await histogram('parley_event_loop_lag_seconds');
const storeBefore = await histogram('parley_store_latency_seconds', 'op="append"');
let sent = 0;
const timers = sockets.map(({ s, room }, i) => setTimeout(() => {
  const iv = setInterval(() => { s.emit('message:room', { room, content: `m${sent++}` }); }, PERIOD);
  timers[i] = iv;
}, Math.random() * PERIOD));
await new Promise((r) => setTimeout(r, SECONDS * 1000));
for (const t of timers) { clearTimeout(t); clearInterval(t); }
const lag = quantiles(lagBefore, await histogram('parley_event_loop_lag_seconds'));
const store = quantiles(storeBefore, await histogram('parley_store_latency_seconds', 'op="append"'));
console.log(`sent=${sent} msgs/s=${(sent / SECONDS).toFixed(0)} delivered=${delivered} deliveries/s=${(delivered / SECONDS).toFixed(0)}`);
console.log(`loop lag (s, bucket bounds, ${lag.total} samples): p50<=${lag.p50} p99<=${lag.p99} max<=${lag.max}`);
console.log(`store append (s, ${store.total} calls): p50<=${store.p50} p99<=${store.p99} p99.9<=${store.p999} max<=${store.max}`);
for (const { s } of sockets) s.close();
process.exit(0);
