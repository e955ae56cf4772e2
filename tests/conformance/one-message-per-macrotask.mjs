// Preload for the official protocol suites (see docs/CONFORMANCE.md).
//
// The suites wait for each WebSocket message with a once-listener, and their
// `ws` client emits every frame of one TCP read synchronously, so a second
// frame that arrives in the same read as the first is emitted before the
// test has attached its next listener. Servers that coalesce writes (Parley
// writes all frames of a loop turn with one writev) trip over that. This
// preload hands each 'message' event over in its own macrotask, in order,
// so promise continuations run in between. Assertions are untouched.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.cwd(), "package.json"));
const { WebSocket } = require("ws");

const emit = WebSocket.prototype.emit;
WebSocket.prototype.emit = function (event, ...args) {
  if (event !== "message") return emit.call(this, event, ...args);
  this.__queue ??= [];
  this.__queue.push(args);
  if (this.__queue.length === 1) drain(this);
  return true;
};

function drain(ws) {
  setImmediate(() => {
    const args = ws.__queue.shift();
    emit.call(ws, "message", ...args);
    if (ws.__queue.length > 0) drain(ws);
  });
}
