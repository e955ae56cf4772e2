// bench/soak/driver.mjs - the load and the sampler of scripts/soak.
//
// Load, for --seconds: --clients steady socket.io clients spread over
// --rooms rooms, each sending a room message every --interval ms (with an
// ack, whose latency is recorded) and now and then a typing event; plus
// connection churn: --churn new clients per second, each of which connects
// (polling then the upgrade to WebSocket, as a browser does), joins a room,
// sends one message and goes away, alternately with a clean disconnect and
// by killing its TCP connection (which the server keeps for connection
// state recovery). Clients are spread round-robin over the --url values
// (several in cluster mode).
//
// Samples, every --sample-ms: for every --pid, the server's RSS
// (/proc/PID/status VmRSS), open descriptors (/proc/PID/fd) and CPU use
// (/proc/PID/stat); from its /metrics, the event-loop lag and store-append
// histograms of the interval (mean, and the upper bound of the highest
// bucket reached) and a few gauges; and the driver's own counters. One CSV
// row per server per sample on --csv.
//
// Exits 0 when the run completed, 1 when a server went away (its /proc
// entry vanished) or the load could not start. Judging growth is the
// caller's job (scripts/soak).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// socket.io-client from the integration tests' node_modules (no package of our own).
const require = createRequire(path.join(here, '../../tests/integration/package.json'));
const { io } = require('socket.io-client');

function parseArgs(argv) {
  const o = {
    url: [], pid: [], clients: 200, rooms: 10, interval: 5000, churn: 1,
    seconds: 1800, sampleMs: 10000, csv: 'soak.csv', summary: null,
  };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    switch (k) {
      case '--url': o.url.push(v); i++; break;
      case '--pid': o.pid.push(Number(v)); i++; break;
      case '--clients': o.clients = Number(v); i++; break;
      case '--rooms': o.rooms = Number(v); i++; break;
      case '--interval': o.interval = Number(v); i++; break;
      case '--churn': o.churn = Number(v); i++; break;
      case '--seconds': o.seconds = Number(v); i++; break;
      case '--sample-ms': o.sampleMs = Number(v); i++; break;
      case '--csv': o.csv = v; i++; break;
      case '--summary': o.summary = v; i++; break;
      default: throw new Error(`unknown argument ${k}`);
    }
  }
  if (!o.url.length || o.url.length !== o.pid.length) throw new Error('give --url and --pid once per server, in the same order');
  return o;
}

const opt = parseArgs(process.argv);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error(new Date().toISOString().slice(11, 19), ...a);

// ---- counters ---------------------------------------------------------------

const c = {
  sent: 0, acked: 0, ackErrors: 0, ackTimeouts: 0, received: 0,
  churnOk: 0, churnFail: 0, disconnects: 0,
};
let ackLatencies = []; // ms, this interval

// ---- steady clients ---------------------------------------------------------

function connect(url, opts) {
  return new Promise((resolve, reject) => {
    const s = io(url, { forceNew: true, reconnection: true, timeout: 10000, ...opts });
    const t = setTimeout(() => { s.close(); reject(new Error('connect timeout')); }, 15000);
    s.once('connect', () => { clearTimeout(t); resolve(s); });
    s.once('connect_error', (e) => { if (!opts.reconnection) { clearTimeout(t); s.close(); reject(e); } });
  });
}

function ack(s, event, arg, timeoutMs = 10000) {
  return new Promise((resolve) => {
    s.timeout(timeoutMs).emit(event, arg, (err, res) => resolve(err ? { timeout: true } : res));
  });
}

const steady = [];
async function startSteady(i) {
  const url = opt.url[i % opt.url.length];
  // Half start on WebSocket, half on polling (and upgrade), as a mix of clients would.
  const s = await connect(url, i % 2 ? { transports: ['websocket'] } : {});
  const name = `soak${i}`;
  const room = `soak-room-${i % opt.rooms}`;
  s.on('message:receive', () => { c.received++; });
  s.on('disconnect', () => { c.disconnects++; });
  // After a reconnection (which the server may not see as a recovery),
  // name the connection and join its room again.
  const setup = async () => {
    await ack(s, 'user:join', name);
    await ack(s, 'room:create', room);
  };
  s.io.on('reconnect', () => { setup().catch(() => {}); });
  await setup();
  steady.push({ s, room });
}

async function steadyLoop({ s, room }, i, stopAt) {
  // Spread the sends over the interval.
  await sleep(Math.floor((i / opt.clients) * opt.interval));
  let n = 0;
  while (Date.now() < stopAt) {
    if (s.connected) {
      if (n % 10 === 5) s.emit('typing', { room, isTyping: true });
      const t0 = performance.now();
      c.sent++;
      const res = await ack(s, 'message:room', { room, content: `steady ${i} #${n}`, clientId: `s${i}-${n}` });
      if (res && res.ok) { c.acked++; ackLatencies.push(performance.now() - t0); }
      else if (res && res.timeout) c.ackTimeouts++;
      else c.ackErrors++;
      n++;
    }
    await sleep(opt.interval * (0.8 + 0.4 * Math.random()));
  }
}

// ---- churn ------------------------------------------------------------------

let churnSeq = 0;
async function churnOne() {
  const k = churnSeq++;
  const url = opt.url[k % opt.url.length];
  let s;
  try {
    s = await connect(url, { reconnection: false });
    const join = await ack(s, 'user:join', `churn${k}`, 5000);
    const room = `soak-room-${k % opt.rooms}`;
    const j = await ack(s, 'room:join', room, 5000);
    const m = await ack(s, 'message:room', { room, content: `churn ${k}` }, 5000);
    if (!(join && join.ok && j && j.ok && m && m.ok)) throw new Error(`refused: ${JSON.stringify([join, j, m])}`);
    if (k % 2 === 0) {
      s.disconnect(); // goodbye: the name is freed at once
    } else {
      // No goodbye: kill the TCP connection under the client, as a lost
      // network would. The server keeps the socket for recovery.
      const tr = s.io.engine.transport;
      if (tr.ws && tr.ws._socket) {
        tr.ws._socket.destroy();
        setTimeout(() => s.close(), 1000); // after the client has seen the close: nothing is sent
      } else {
        s.close(); // still on polling: a clean close instead
      }
    }
    c.churnOk++;
  } catch (e) {
    c.churnFail++;
    if (c.churnFail <= 5 || c.churnFail % 100 === 0) log(`churn ${k} failed: ${e.message}`);
    if (s) s.close();
  }
}

// ---- sampling ---------------------------------------------------------------

function get(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function metric(text, name) {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

// A Prometheus histogram from /metrics; `labels` is what precedes le=""
// inside the braces (e.g. 'op="append",').
function histogram(text, name, labels = '') {
  const buckets = [];
  const esc = (x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^${name}_bucket\\{${esc(labels)}le="([^"]+)"\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  const sel = labels ? `\\{${esc(labels.replace(/,$/, ''))}\\}` : '';
  const one = (suffix) => {
    const m = new RegExp(`^${name}_${suffix}${sel} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  };
  return { buckets, sum: one('sum'), count: one('count') };
}

// Mean (ms) over the interval between two scrapes of a histogram, and the
// upper bound (ms) of the lowest bucket that holds every observation of
// the interval: the interval's worst value is at most that.
function intervalStats(prev, h) {
  let mean = NaN, max = NaN;
  if (prev && h.count > prev.count && prev.buckets.length === h.buckets.length) {
    const dc = h.count - prev.count;
    mean = ((h.sum - prev.sum) / dc) * 1000;
    for (let i = 0; i < h.buckets.length; i++) {
      if (h.buckets[i][1] - prev.buckets[i][1] >= dc) { max = h.buckets[i][0] * 1000; break; }
    }
  }
  return { mean, max };
}

const CLK_TCK = 100; // Linux USER_HZ
function procStats(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)[1]);
  const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
  // utime and stime: fields 14 and 15, counted after the ")" that ends the name.
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuS = (Number(f[11]) + Number(f[12])) / CLK_TCK;
  return { rssKiB: rss, fds, cpuS };
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

const prev = new Map(); // node -> {lag, store, cpuS, at}
const header = 't_s,node,rss_kib,fds,lag_mean_ms,lag_max_ms,sockets,tcp_open,recovery_kept,recovery_log,'
  + 'sent,acked,ack_errors,ack_timeouts,received,churn_ok,churn_fail,ack_p50_ms,ack_p99_ms,'
  + 'cpu_pct,store_append_mean_ms,store_append_max_ms\n';
fs.writeFileSync(opt.csv, header);
const t0 = Date.now();

async function sample() {
  const lat = ackLatencies.sort((a, b) => a - b);
  ackLatencies = [];
  const p50 = percentile(lat, 0.5), p99 = percentile(lat, 0.99);
  for (let n = 0; n < opt.pid.length; n++) {
    const pid = opt.pid[n];
    let ps;
    try { ps = procStats(pid); } catch { throw new Error(`server ${n} (pid ${pid}) is gone`); }
    let text = '';
    try { text = await get(`${opt.url[n]}/metrics`); } catch (e) { log(`metrics of node ${n}: ${e.message}`); }
    const lagH = histogram(text, 'parley_event_loop_lag_seconds');
    const storeH = histogram(text, 'parley_store_latency_seconds', 'op="append",');
    const now = Date.now();
    const p = prev.get(n);
    const lag = intervalStats(p && p.lag, lagH);
    const store = intervalStats(p && p.store, storeH);
    const cpu = p ? (100 * (ps.cpuS - p.cpuS)) / ((now - p.at) / 1000) : NaN;
    prev.set(n, { lag: lagH.buckets.length ? lagH : p && p.lag, store: storeH.buckets.length ? storeH : p && p.store, cpuS: ps.cpuS, at: now });
    const mean = lag.mean, max = lag.max;
    const t = ((Date.now() - t0) / 1000).toFixed(1);
    const row = [t, n, ps.rssKiB, ps.fds, mean.toFixed(3), max, metric(text, 'parley_sockets'),
      metric(text, 'parley_tcp_open'), metric(text, 'parley_recovery_kept'), metric(text, 'parley_recovery_log_packets'),
      c.sent, c.acked, c.ackErrors, c.ackTimeouts, c.received, c.churnOk, c.churnFail,
      p50.toFixed(2), p99.toFixed(2), cpu.toFixed(1), store.mean.toFixed(3), store.max];
    fs.appendFileSync(opt.csv, row.join(',') + '\n');
    log(`t=${t}s node=${n} rss=${(ps.rssKiB / 1024).toFixed(1)}MiB fds=${ps.fds} cpu=${cpu.toFixed(0)}% lag_mean=${mean.toFixed(2)}ms `
      + `sent=${c.sent} acked=${c.acked} churn=${c.churnOk}/${c.churnOk + c.churnFail} ack_p99=${p99.toFixed(1)}ms`);
  }
}

// ---- main -------------------------------------------------------------------

async function main() {
  log(`soak: ${opt.clients} clients in ${opt.rooms} rooms, a message every ${opt.interval} ms each, `
    + `${opt.churn} churn/s, ${opt.seconds} s, ${opt.url.length} server(s)`);
  await sample(); // the baseline, before any load
  for (let i = 0; i < opt.clients; i += 20) {
    await Promise.all(Array.from({ length: Math.min(20, opt.clients - i) }, (_, k) => startSteady(i + k)));
  }
  log(`${steady.length} steady clients connected`);
  const stopAt = t0 + opt.seconds * 1000;
  const loops = steady.map((st, i) => steadyLoop(st, i, stopAt));
  const churnTimer = setInterval(() => { for (let k = 0; k < opt.churn; k++) churnOne(); }, 1000);
  let failed = null;
  const sampler = setInterval(() => { sample().catch((e) => { failed = e; }); }, opt.sampleMs);
  while (Date.now() < stopAt && !failed) await sleep(250);
  clearInterval(churnTimer);
  clearInterval(sampler);
  if (!failed) await sample().catch((e) => { failed = e; });
  await Promise.race([Promise.all(loops), sleep(15000)]);
  for (const { s } of steady) s.close();
  const summary = { ...c, seconds: opt.seconds, clients: opt.clients, rooms: opt.rooms, interval_ms: opt.interval, churn_per_s: opt.churn, failed: failed ? failed.message : null };
  if (opt.summary) fs.writeFileSync(opt.summary, JSON.stringify(summary, null, 2) + '\n');
  log('summary', JSON.stringify(summary));
  if (failed) {
    log(`FAILED: ${failed.message}`);
    process.exit(1);
  }
  process.exit(0);
}

main().catch((e) => { log(`soak driver: ${e.stack || e}`); process.exit(1); });
