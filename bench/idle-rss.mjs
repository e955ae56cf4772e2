// bench/idle-rss.mjs - server memory per idle WebSocket connection.
//
// Opens N raw WebSocket connections to a running server, completes the
// Engine.IO open and the Socket.IO CONNECT on each, answers pings, then reads
// the server's RSS from /proc/PID/status and prints the delta per connection.
// Usage: node bench/idle-rss.mjs --url ws://127.0.0.1:PORT --pid PID [--n 10000]
// (ws is taken from tests/integration/node_modules). Stops by itself.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";

const require = createRequire(path.resolve("tests/integration/package.json"));
const { WebSocket } = require("ws");

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, v, i, a) => (i % 2 ? acc : [...acc, [v.replace(/^--/, ""), a[i + 1]]]), [])
);
const n = Number(args.n ?? 10000);
const url = `${args.url}/socket.io/?EIO=4&transport=websocket`;
const pid = Number(args.pid);

const rssKiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]);

function open() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on("error", reject);
    ws.on("message", (data) => {
      const s = data.toString();
      if (s[0] === "0") ws.send("40");
      else if (s.startsWith("40")) resolve(ws);
      else if (s === "2") ws.send("3");
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
await sleep(200);
const before = rssKiB();
const sockets = [];
const t0 = process.hrtime.bigint();
for (let i = 0; i < n; i += 200) {
  const batch = [];
  for (let j = i; j < Math.min(n, i + 200); j++) batch.push(open());
  sockets.push(...(await Promise.all(batch)));
}
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
await sleep(1000); // let the server settle (pending writes freed)
const after = rssKiB();
const per = ((after - before) * 1024) / n;
console.log(`connections=${n} connect_s=${secs.toFixed(2)} rss_before_kib=${before} rss_after_kib=${after} bytes_per_conn=${per.toFixed(0)}`);
for (const ws of sockets) ws.terminate();
process.exit(0);
