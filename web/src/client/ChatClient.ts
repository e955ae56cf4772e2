// The chat client: a plain object (no React) that owns the page's socket.
// Everything that happens (a socket event, a server push, an answer, a
// timer, a user action) becomes one event for the pure reducer in
// state/session.ts; the client keeps the resulting state and carries out
// the commands the reducer returns (emit, connect, disconnect, set the
// CONNECT auth, start a timer, save the session or the guest identity).
// React reads the state
// with useSyncExternalStore through `subscribe` and `getSnapshot`
// (hooks/useChat.ts) and calls the action methods, which are bound and can
// be passed around as callbacks.
//
// Lifetime: `start()` attaches the socket and page listeners and connects;
// `stop()` detaches them and cancels every timer (the socket is left as
// it is). Answers that arrive after `stop()` still update the state.

import {
  describeError,
  parseChatError,
  parseInvited,
  parseMessage,
  parseRemoved,
  parseReadUpdate,
  parseRoomHistory,
  parseRooms,
  parseTyping,
  parseUsers,
} from '../protocol.ts';
import { request, type ChatSocket } from '../socket.ts';
import { connectAuth } from '../state/auth.ts';
import type { ChatAction } from '../state/chat.ts';
import { dmKey, roomKey, type ConvKey } from '../state/names.ts';
import { newClientId } from '../state/pending.ts';
import type { ReplyRef } from '../protocol.ts';
import { roomRequest, type RoomOp } from '../state/rooms.ts';
import {
  answerError,
  initialClientState,
  step,
  type ClientState,
  type Command,
  type RequestTag,
  type SessionEvent,
} from '../state/session.ts';
import { hasTyping } from '../state/typing.ts';
import { IDENTITY_KEY, loadIdentity, loadSaved, storeIdentity, storeSaved } from './storage.ts';

/** What the user can do; the components receive these as callbacks. */
export interface ChatActions {
  signIn(username: string): void;
  signInWithToken(token: string): void;
  signOut(): void;
  reconnect(): void;
  /**
   * room:create, room:join and room:leave resolve to an error text, or null
   * when they worked. A private room or a topic (v2) sends the object form.
   */
  createRoom(name: string, options?: { private?: boolean; topic?: string }): Promise<string | null>;
  joinRoom(name: string): Promise<string | null>;
  leaveRoom(name: string): Promise<string | null>;
  open(key: ConvKey | null): void;
  openDm(peer: string): void;
  send(conv: ConvKey, content: string): void;
  loadOlder(conv: ConvKey): void;
  typing(conv: ConvKey, isTyping: boolean): void;
  retrySend(clientId: string): void;
  discardSend(clientId: string): void;
  dismissNotice(): void;
  /** The open conversation's message list is (or is no longer) scrolled to its newest message. */
  viewAtBottom(conv: ConvKey, atBottom: boolean): void;
  // contract v2, messages that live (state/messageOps.ts)
  editMessage(conv: ConvKey, id: string, content: string): void;
  deleteMessage(conv: ConvKey, id: string): void;
  /** Toggles this user's reaction `emoji` on a message. */
  react(conv: ConvKey, id: string, emoji: string): void;
  /** The message the composer of `conv` replies to (null: none). */
  replyTo(conv: ConvKey, ref: ReplyRef | null): void;
  dismissMessageError(conv: ConvKey, id: string): void;
  // contract v2, rooms with owners (state/rooms.ts)
  /** A room request; resolves to an error text, or null when it worked. */
  roomOp(room: string, req: RoomOp): Promise<string | null>;
  dismissInvite(room: string): void;
  /** Clears the muted notice of a room (its mute may have run out). */
  clearMuted(room: string): void;
}

/** How often expired typing notices are pruned while any is shown. */
const TYPING_TICK_MS = 1000;

type Listener = () => void;
type Timer = ReturnType<typeof setTimeout>;

function browserOnline(): boolean {
  return typeof navigator === 'undefined' || navigator.onLine;
}

function pageVisible(): boolean {
  return typeof document === 'undefined' || document.visibilityState !== 'hidden';
}

/** Server pushes, validated, as chat actions (null: malformed, dropped). */
const PUSHES: Record<string, (v: unknown) => ChatAction | null> = {
  'users:update': (v) => ({ type: 'users', users: parseUsers(v) }),
  'rooms:update': (v) => ({ type: 'rooms', rooms: parseRooms(v) }),
  'message:receive': (v) => {
    const message = parseMessage(v);
    return message && { type: 'received', message };
  },
  'room:history': (v) => {
    const h = parseRoomHistory(v);
    return (
      h && { type: 'history', key: roomKey(h.room), name: h.room, messages: h.messages, hasMore: h.hasMore, mode: 'latest' }
    );
  },
  typing: (v) => {
    const event = parseTyping(v);
    return event && { type: 'typing', event, now: Date.now() };
  },
  'read:update': (v) => {
    const u = parseReadUpdate(v);
    if (!u) return null;
    const key = u.room !== undefined ? roomKey(u.room) : dmKey(u.with ?? '');
    return { type: 'readState', key, lastReadId: u.lastReadId, unread: u.unread };
  },
  'message:update': (v) => {
    const message = parseMessage(v);
    return message && { type: 'updated', message };
  },
  'room:invited': (v) => {
    const i = parseInvited(v);
    return i && { type: 'invited', room: i.room, by: i.by };
  },
  'room:removed': (v) => {
    const r = parseRemoved(v);
    return r && { type: 'removed', room: r.room, by: r.by, reason: r.reason };
  },
  'chat:error': (v) => {
    const e = parseChatError(v);
    return e && { type: 'notice', text: describeError(e.error, e.message) };
  },
};

export class ChatClient implements ChatActions {
  private state: ClientState;
  private readonly listeners = new Set<Listener>();
  private readonly timers = new Set<Timer>();
  private ticker: ReturnType<typeof setInterval> | null = null;
  private detach: (() => void) | null = null;

  /**
   * `socket` is owned from now on; `storage` keeps the tab's session across
   * reloads (sessionStorage), `local` the guest identity for every tab
   * (localStorage); null: not kept.
   */
  constructor(
    private readonly socket: ChatSocket,
    private readonly storage: Storage | null,
    private readonly local: Storage | null = null,
  ) {
    this.state = initialClientState(loadSaved(storage), loadIdentity(local));
  }

  // ---- the store React reads ----

  readonly subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  readonly getSnapshot = (): ClientState => this.state;

  // ---- lifetime ----

  start(): void {
    if (this.detach) return;
    this.detach = this.listen();
    this.dispatch({ type: 'start', online: browserOnline(), visible: pageVisible() });
    if (this.socket.connected) this.dispatch({ type: 'connected', recovered: this.socket.recovered });
  }

  stop(): void {
    this.detach?.();
    this.detach = null;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
  }

  // ---- actions ----

  readonly signIn = (name: string): void => this.dispatch({ type: 'signIn', name });
  readonly signInWithToken = (token: string): void => this.dispatch({ type: 'signInWithToken', token });
  readonly signOut = (): void => this.dispatch({ type: 'signOut' });
  readonly reconnect = (): void => this.dispatch({ type: 'reconnect' });
  readonly createRoom = (name: string, options: { private?: boolean; topic?: string } = {}): Promise<string | null> => {
    const topic = options.topic?.trim() ?? '';
    // A v1 server takes the name only: the object form is sent only when it says more.
    const arg = options.private || topic !== '' ? { name, private: options.private === true, topic } : name;
    return this.ask('room:create', [arg], { kind: 'enterRoom' });
  };
  readonly joinRoom = (name: string): Promise<string | null> => this.ask('room:join', [name], { kind: 'enterRoom' });
  readonly leaveRoom = (name: string): Promise<string | null> =>
    this.ask('room:leave', [name], { kind: 'leaveRoom', room: name });
  readonly open = (key: ConvKey | null): void => this.dispatch({ type: 'open', key });
  readonly openDm = (peer: string): void => this.dispatch({ type: 'openDm', peer });
  readonly send = (conv: ConvKey, content: string): void =>
    this.dispatch({ type: 'send', conv, content, clientId: newClientId(), now: Date.now() });
  readonly loadOlder = (key: ConvKey): void => this.dispatch({ type: 'loadOlder', key });
  readonly typing = (key: ConvKey, isTyping: boolean): void => this.dispatch({ type: 'typing', key, isTyping });
  readonly retrySend = (clientId: string): void => this.dispatch({ type: 'retrySend', clientId });
  readonly discardSend = (clientId: string): void => this.chat({ type: 'sendDiscard', clientId });
  readonly dismissNotice = (): void => this.chat({ type: 'notice', text: null });
  readonly viewAtBottom = (key: ConvKey, atBottom: boolean): void => this.dispatch({ type: 'viewAtBottom', key, atBottom });
  readonly editMessage = (key: ConvKey, id: string, content: string): void => this.dispatch({ type: 'editMessage', key, id, content });
  readonly deleteMessage = (key: ConvKey, id: string): void => this.dispatch({ type: 'deleteMessage', key, id });
  readonly react = (key: ConvKey, id: string, emoji: string): void => this.dispatch({ type: 'react', key, id, emoji });
  readonly replyTo = (key: ConvKey, ref: ReplyRef | null): void => this.chat({ type: 'replyTo', key, ref });
  readonly dismissMessageError = (key: ConvKey, id: string): void => this.chat({ type: 'msgError', key, id, text: null });
  readonly roomOp = (room: string, req: RoomOp): Promise<string | null> => {
    const { event, args } = roomRequest(room, req);
    return this.ask(event, args, { kind: 'roomOp', room, req });
  };
  readonly dismissInvite = (room: string): void => this.chat({ type: 'dismissInvite', room });
  readonly clearMuted = (room: string): void => this.chat({ type: 'muted', room, text: null });

  // ---- the loop ----

  private chat(action: ChatAction): void {
    this.dispatch({ type: 'chat', action });
  }

  private dispatch(event: SessionEvent): void {
    const prev = this.state;
    const { state, commands } = step(prev, event);
    this.state = state;
    // A command may dispatch at once (a disconnect fires its event): that
    // transition starts from the state just set, and runs its own commands.
    for (const c of commands) this.run(c);
    if (state !== prev) {
      this.tickTyping();
      for (const l of [...this.listeners]) l();
    }
  }

  private run(c: Command): void {
    const s = this.socket;
    switch (c.type) {
      case 'request':
        void this.call(c.event, c.args, c.tag);
        return;
      case 'auth':
        s.auth = connectAuth(c.token);
        return;
      case 'connect':
        if (!s.connected) s.connect();
        return;
      case 'disconnect':
        s.disconnect();
        return;
      case 'after': {
        const t = setTimeout(() => {
          this.timers.delete(t);
          this.dispatch(c.event);
        }, c.ms);
        this.timers.add(t);
        return;
      }
      case 'save':
        storeSaved(this.storage, c.session);
        return;
      case 'identity':
        storeIdentity(this.local, c.identity);
        return;
    }
  }

  /** Emits a request; its answer goes back through the reducer. */
  private async call(event: string, args: unknown[], tag: RequestTag) {
    const ack = await request<Record<string, unknown>>(this.socket, event, ...args);
    if (tag.kind !== 'none') this.dispatch({ type: 'answer', tag, ack });
    return ack;
  }

  /** A request a form waits for: resolves to the text to show, or null. */
  private async ask(event: string, args: unknown[], tag: RequestTag): Promise<string | null> {
    return answerError(tag, await this.call(event, args, tag));
  }

  /** Expired typing notices are dropped once a second while any is shown. */
  private tickTyping(): void {
    const want = this.detach !== null && hasTyping(this.state.chat.typing);
    if (want && !this.ticker) {
      this.ticker = setInterval(() => this.chat({ type: 'tick', now: Date.now() }), TYPING_TICK_MS);
    } else if (!want && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = null;
    }
  }

  /** Attaches the socket's and the page's listeners; returns what detaches them. */
  private listen(): () => void {
    const s = this.socket;
    const link = () => ({ active: s.active, online: browserOnline() });
    const on: [string, (arg: unknown) => void][] = [
      ['connect', () => this.dispatch({ type: 'connected', recovered: s.recovered })],
      ['disconnect', (reason) => this.dispatch({ type: 'disconnected', reason: String(reason), ...link() })],
      [
        'connect_error',
        (err) => this.dispatch({ type: 'connectError', message: err instanceof Error ? err.message : String(err), ...link() }),
      ],
    ];
    for (const [event, parse] of Object.entries(PUSHES)) {
      on.push([
        event,
        (v) => {
          const action = parse(v);
          if (action) this.chat(action);
        },
      ]);
    }
    const onAttempt = () => this.dispatch({ type: 'link', ...link() });
    for (const [event, f] of on) s.on(event, f);
    s.io.on('reconnect_attempt', onAttempt);

    const page: [string, (e: Event) => void][] = [
      ['online', onAttempt],
      ['offline', onAttempt],
      ['pagehide', () => this.dispatch({ type: 'pageHide' })],
      ['pageshow', (e) => this.dispatch({ type: 'pageShow', persisted: (e as PageTransitionEvent).persisted })],
      [
        'storage',
        (e) => {
          const { key, newValue, storageArea } = e as StorageEvent;
          if (key === IDENTITY_KEY && newValue === null && storageArea === this.local) this.dispatch({ type: 'identityRemoved' });
        },
      ],
    ];
    const win = typeof window === 'undefined' ? null : window;
    for (const [event, f] of page) win?.addEventListener(event, f);
    const doc = typeof document === 'undefined' ? null : document;
    const onVisibility = () => this.dispatch({ type: 'pageVisible', visible: pageVisible() });
    doc?.addEventListener('visibilitychange', onVisibility);

    return () => {
      for (const [event, f] of on) s.off(event, f);
      s.io.off('reconnect_attempt', onAttempt);
      for (const [event, f] of page) win?.removeEventListener(event, f);
      doc?.removeEventListener('visibilitychange', onVisibility);
    };
  }
}
