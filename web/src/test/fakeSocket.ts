// A stand-in for the socket.io-client Socket in the client's tests: records
// what the client emits, answers acks through per-event responders, and lets
// a test play the server (connect, drop, recover, push events). By default
// it answers like a v1 server: `{ok: true}` to the events of contract v1,
// nothing to those of v2.

type Handler = (...args: unknown[]) => void;

/** Events a v1 server ignores. */
const V2_EVENTS = new Set([
  'conversations:list',
  'read:mark',
  'message:edit',
  'message:delete',
  'reaction:add',
  'reaction:remove',
  'room:members',
  'room:invite',
  'room:kick',
  'room:ban',
  'room:unban',
  'room:mute',
  'room:unmute',
  'room:role',
  'room:topic',
  'room:delete',
]);
type AckFn = (err: Error | null, reply?: unknown) => void;
export type Responder = (payload: unknown, call: number) => unknown;

export interface Emitted {
  event: string;
  payload: unknown;
}

export class FakeSocket {
  connected = false;
  active = false;
  recovered = false;
  auth: Record<string, unknown> = {};
  readonly emitted: Emitted[] = [];
  /** event -> answer; returning undefined leaves the ack unanswered (a lost reply). */
  readonly respond: Record<string, Responder> = {};
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly ioHandlers = new Map<string, Set<Handler>>();
  private unanswered = new Set<AckFn>();
  private calls = new Map<string, number>();

  readonly io = {
    on: (ev: string, h: Handler) => {
      add(this.ioHandlers, ev, h);
      return this.io;
    },
    off: (ev: string, h: Handler) => {
      this.ioHandlers.get(ev)?.delete(h);
      return this.io;
    },
  };

  on(ev: string, h: Handler): this {
    add(this.handlers, ev, h);
    return this;
  }

  off(ev: string, h: Handler): this {
    this.handlers.get(ev)?.delete(h);
    return this;
  }

  connect(): this {
    this.active = true;
    return this;
  }

  disconnect(): this {
    this.active = false;
    if (this.connected) this.drop('io client disconnect');
    return this;
  }

  /** As socket.io-client: an ack not answered within `ms` fails with an error (use fake timers). */
  timeout(ms: number) {
    return { emit: (event: string, ...args: unknown[]) => this.emit(event, ...args, { timeoutMs: ms }) };
  }

  emit(event: string, ...argsIn: unknown[]): this {
    const last = argsIn[argsIn.length - 1] as { timeoutMs?: unknown } | undefined;
    const timeoutMs = typeof last === 'object' && last !== null && typeof last.timeoutMs === 'number' ? last.timeoutMs : null;
    const args = timeoutMs === null ? argsIn : argsIn.slice(0, -1);
    const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as AckFn) : null;
    const payload = args[0];
    this.emitted.push({ event, payload });
    const n = (this.calls.get(event) ?? 0) + 1;
    this.calls.set(event, n);
    const responder = this.respond[event];
    // Like a v1 server, events of contract v2 get no answer unless a test plays a v2 server.
    const reply = responder ? responder(payload, n) : V2_EVENTS.has(event) ? undefined : { ok: true };
    if (ack) {
      if (reply === undefined) {
        this.unanswered.add(ack);
        if (timeoutMs !== null) {
          const t: unknown = setTimeout(() => {
            if (this.unanswered.delete(ack)) ack(new Error('operation has timed out'));
          }, timeoutMs);
          (t as { unref?: () => void }).unref?.(); // a test that ends first need not wait for it
        }
      } else {
        queueMicrotask(() => ack(null, reply));
      }
    }
    return this;
  }

  // ---- the server's side ----

  serverConnect(recovered = false): void {
    this.connected = true;
    this.active = true;
    this.recovered = recovered;
    this.fire('connect');
  }

  /** The transport is lost: unanswered acks fail, as socket.io-client does. */
  drop(reason = 'transport close'): void {
    this.connected = false;
    const acks = [...this.unanswered];
    this.unanswered = new Set();
    for (const ack of acks) ack(new Error('socket has been disconnected'));
    this.fire('disconnect', reason);
  }

  push(event: string, ...args: unknown[]): void {
    this.fire(event, ...args);
  }

  sent(event: string): unknown[] {
    return this.emitted.filter((e) => e.event === event).map((e) => e.payload);
  }

  private fire(ev: string, ...args: unknown[]): void {
    for (const h of [...(this.handlers.get(ev) ?? [])]) h(...args);
  }
}

function add(map: Map<string, Set<Handler>>, ev: string, h: Handler): void {
  let set = map.get(ev);
  if (!set) map.set(ev, (set = new Set()));
  set.add(h);
}

/** A Storage backed by a Map. */
export function memoryStorage(initial: Record<string, string> = {}): Storage {
  const m = new Map(Object.entries(initial));
  return {
    get length() {
      return m.size;
    },
    clear: () => m.clear(),
    getItem: (k: string) => m.get(k) ?? null,
    key: (i: number) => [...m.keys()][i] ?? null,
    removeItem: (k: string) => void m.delete(k),
    setItem: (k: string, v: string) => void m.set(k, String(v)),
  };
}
