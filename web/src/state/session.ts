// The session's lifecycle as one pure reducer: `step(state, event)` returns
// the next state and the commands the client (client/ChatClient.ts) must
// carry out (emit a request, connect, disconnect, set the CONNECT auth,
// start a timer, save the session). Events are what the socket, the server's
// answers, the timers and the user say. Nothing here touches the socket,
// the clock or storage, so every transition can be tested by calling it.
//
//   connected ── recovered and was synced? ── yes ─> synced, resend queued
//        │                                 └─ no ──> user:join ─> resync:
//        │         room:join each room, history:fetch each private chat
//        │         ─> synced, resend queued (same clientIds)
//        └── attached by a guest resume token (v2)? ─> resync without
//                  user:join or room:join: history:fetch what was loaded
//
// Every resync also asks for `conversations:list`; a v1 server ignores it,
// the request times out and the v1 lists stay (quietly). With a v2 server
// the open conversation is marked read (`read:mark`, at most one per
// READ_MARK_DELAY_MS) while the page is visible and its newest message is
// in view.
//
// The chat's data (chat.ts) is part of the state: answers and server pushes
// become chat actions, and the sends waiting in it are flushed from here.
// Credentials (the token) live only in SessionState; `auth` commands carry
// them to the socket.
//
// Contract v2 part 2 lives in its own modules, called from here: actions
// on one message (edit, delete, react: messageOps.ts) and room requests
// (members, moderation, topic, delete: rooms.ts).

import { describeError, parseConversations, parseMessages, type Ack } from '../protocol.ts';
import { tokenSubject, type GuestIdentity } from './auth.ts';
import {
  chatReducer,
  initialState as initialChat,
  joinedRooms,
  type ChatAction,
  type ChatState,
  type Conversation,
} from './chat.ts';
import { dmKey, roomKey, sameName, type ConvKey } from './names.ts';
import { msgAnswer, msgIntent, type MessageIntent, type MsgOpTag } from './messageOps.ts';
import { queued, type PendingSend } from './pending.ts';
import { isTransient, retryDelay, RETRY_LIMIT } from './retry.ts';
import { afterSystem, metaFromAck, roomAnswer, roomErrorText, type RoomOpTag } from './rooms.ts';
import { EMPTY_SESSION, sameSaved, sessionFromState, type SavedSession } from './saved.ts';

export const HISTORY_PAGE = 50;
/** A conversation's newest message must stay in view this long before it is marked read (and marks are this far apart). */
export const READ_MARK_DELAY_MS = 500;

export type Phase = 'login' | 'joining' | 'ready';
export type ConnStatus = 'connecting' | 'connected' | 'reconnecting' | 'offline';

export interface LoginError {
  /** The server's error code (`username_taken`, `invalid_username`, `unauthorized`, ...). */
  code: string;
  message: string;
}

/** The connection as the socket last reported it. */
export interface Link {
  connected: boolean;
  /** The socket is connected or trying to (socket.io-client's `active`). */
  active: boolean;
  /** The browser believes it is online (`navigator.onLine`). */
  online: boolean;
  everConnected: boolean;
}

/** How far this connection is in getting its identity and rooms back. */
export type Sync =
  | { kind: 'idle' }
  | { kind: 'joining'; seq: number; auto: boolean; attempt: number }
  | { kind: 'resyncing'; seq: number; left: number }
  | { kind: 'synced'; seq: number };

export interface SessionState {
  phase: Phase;
  /** The name being signed in or signed in as; null: the user must pick one. */
  name: string | null;
  /** The name last used (prefills the sign-in form). */
  lastName: string;
  /** The sign-in token (token mode); sent as the CONNECT auth. */
  token: string | null;
  /** The guest resume token (v2 guest mode); sent as the CONNECT auth when there is no `token`. */
  resume: string | null;
  /** The user's id, from the `user:join` ack or the stored identity. */
  userId: string | null;
  /** Shown on the sign-in form after "Sign out": whose name, and whether the server keeps it (v2 guest). */
  farewell: { name: string; kept: boolean } | null;
  /** The page is visible (document.visibilityState); nothing is marked read while it is hidden. */
  visible: boolean;
  /** The open conversation's newest message is in view (its message list is scrolled to the end). */
  atBottom: boolean;
  /** A `markRead` timer is pending. */
  markTimer: boolean;
  /** The server refused an anonymous connection: only token sign-in works. */
  tokenRequired: boolean;
  loginError: LoginError | null;
  /** The user asked for the current sign-in: a refusal is shown at once, not retried. */
  userJoin: boolean;
  link: Link;
  sync: Sync;
  /** `sync` was `synced` when the connection dropped (a recovered connection may go on). */
  wasSynced: boolean;
  /** Generation of sign-ins; answers and timers of an older one are ignored. */
  seq: number;
  /** Server goodbyes (`io server disconnect`) retried since the last sign-in. */
  kicks: number;
}

export interface ClientState {
  session: SessionState;
  chat: ChatState;
}

/** What a request's answer is for; it comes back with the answer. */
export type RequestTag =
  | { kind: 'none' }
  | { kind: 'join'; seq: number }
  | { kind: 'rejoin'; seq: number; room: string }
  | { kind: 'history'; key: ConvKey; name: string; mode: 'latest' | 'older'; resync: number | null }
  | { kind: 'send'; clientId: string; attempt: number }
  | { kind: 'enterRoom' }
  | { kind: 'leaveRoom'; room: string }
  | { kind: 'conversations'; seq: number; since: number; attempt: number }
  | { kind: 'read'; key: ConvKey; id: string }
  | MsgOpTag
  | RoomOpTag;

export type AnyAck = Ack<Record<string, unknown>>;

export type SessionEvent =
  // the client starts, the socket and the page
  | { type: 'start'; online: boolean; visible?: boolean }
  | { type: 'connected'; recovered: boolean }
  | { type: 'disconnected'; reason: string; active: boolean; online: boolean }
  | { type: 'connectError'; message: string; active: boolean; online: boolean }
  | { type: 'link'; active: boolean; online: boolean }
  | { type: 'pageHide' }
  | { type: 'pageShow'; persisted: boolean }
  | { type: 'pageVisible'; visible: boolean }
  /** Another tab removed the stored guest identity (it signed out, or its token was refused). */
  | { type: 'identityRemoved' }
  // server pushes and local changes of the chat's data
  | { type: 'chat'; action: ChatAction }
  // answers and timers this reducer asked for
  | { type: 'answer'; tag: RequestTag; ack: AnyAck }
  | { type: 'retryJoin'; seq: number }
  | { type: 'retryConnect' }
  | { type: 'retryList'; seq: number; attempt: number }
  | { type: 'markRead' }
  | { type: 'flush' }
  // the user
  | { type: 'signIn'; name: string }
  | { type: 'signInWithToken'; token: string }
  | { type: 'signOut' }
  | { type: 'reconnect' }
  | { type: 'open'; key: ConvKey | null }
  | { type: 'openDm'; peer: string }
  | { type: 'send'; conv: ConvKey; content: string; clientId: string; now: number }
  | { type: 'retrySend'; clientId: string }
  | { type: 'loadOlder'; key: ConvKey }
  | { type: 'typing'; key: ConvKey; isTyping: boolean }
  | { type: 'viewAtBottom'; key: ConvKey; atBottom: boolean }
  | MessageIntent;

export type Command =
  /** Emit `event` with `args` and an ack; dispatch `{type: 'answer', tag, ack}` (unless tag `none`). */
  | { type: 'request'; event: string; args: unknown[]; tag: RequestTag }
  /** Set the CONNECT auth from this token (state/auth.ts). */
  | { type: 'auth'; token: string | null }
  /** Connect unless connected. */
  | { type: 'connect' }
  | { type: 'disconnect' }
  /** Dispatch `event` after `ms`. */
  | { type: 'after'; ms: number; event: SessionEvent }
  /** Remember the session for a reload (null: forget it). */
  | { type: 'save'; session: SavedSession | null }
  /** Remember the guest identity for every tab and reload (null: forget it). */
  | { type: 'identity'; identity: GuestIdentity | null };

export interface Step {
  state: ClientState;
  commands: Command[];
}

/**
 * The state a page starts with, from what the tab saved before a reload and
 * the browser's guest identity (v2). A tab signed in with a pasted token
 * keeps it; otherwise a stored identity decides who the page is, and the
 * tab's saved conversations are kept only if they are that user's.
 */
export function initialClientState(saved: SavedSession, identityIn: GuestIdentity | null = null): ClientState {
  const identity = saved.token ? null : identityIn;
  if (identity && saved.username !== null && !sameName(saved.username, identity.username)) saved = EMPTY_SESSION;
  const name = identity?.username ?? saved.username ?? (saved.token ? tokenSubject(saved.token) : null);
  const chat = initialChat({ rooms: saved.rooms, dms: saved.dms, active: saved.active });
  return {
    session: {
      phase: name ? 'joining' : 'login',
      name,
      lastName: name ?? '',
      token: saved.token,
      resume: identity?.token ?? null,
      userId: identity?.id ?? null,
      farewell: null,
      visible: true,
      atBottom: true,
      markTimer: false,
      tokenRequired: false,
      loginError: null,
      userJoin: false,
      link: { connected: false, active: true, online: true, everConnected: false },
      sync: { kind: 'idle' },
      wasSynced: false,
      seq: 0,
      kicks: 0,
    },
    chat: identity ? { ...chat, server: 'v2' } : chat,
  };
}

/** What the CONNECT packet carries: the pasted token, else the guest resume token. */
function authToken(s: SessionState): string | null {
  return s.token ?? s.resume;
}

export function connStatus(link: Link): ConnStatus {
  if (link.connected) return 'connected';
  if (!link.online || !link.active) return 'offline';
  return link.everConnected ? 'reconnecting' : 'connecting';
}

/** The text a form shows for the answer to a room request the user made (null: it worked). */
export function answerError(tag: RequestTag, ack: AnyAck): string | null {
  if (ack.ok) return null;
  if (tag.kind === 'leaveRoom' && (ack.error === 'not_in_room' || ack.error === 'room_not_found')) return null;
  if (tag.kind === 'roomOp') return roomErrorText(ack);
  return describeError(ack.error, ack.message);
}

// ---- one transition ---------------------------------------------------------

/** A transition under construction: the state so far and the commands it needs. */
export class Tx {
  readonly commands: Command[] = [];
  constructor(public s: ClientState) {}

  get session(): SessionState {
    return this.s.session;
  }
  get chat(): ChatState {
    return this.s.chat;
  }
  set(patch: Partial<SessionState>): void {
    this.s = { ...this.s, session: { ...this.s.session, ...patch } };
  }
  link(patch: Partial<Link>): void {
    const link = this.session.link;
    if ((Object.keys(patch) as (keyof Link)[]).every((k) => patch[k] === link[k])) return;
    this.set({ link: { ...link, ...patch } });
  }
  apply(action: ChatAction): void {
    const chat = chatReducer(this.s.chat, action);
    if (chat !== this.s.chat) this.s = { ...this.s, chat };
  }
  run(c: Command): void {
    this.commands.push(c);
  }
  request(event: string, args: unknown[], tag: RequestTag = { kind: 'none' }): void {
    this.run({ type: 'request', event, args, tag });
  }
  connect(): void {
    this.link({ active: true });
    this.run({ type: 'connect' });
  }
  disconnect(): void {
    this.link({ active: false });
    this.run({ type: 'disconnect' });
  }
  notice(text: string | null): void {
    this.apply({ type: 'notice', text });
  }
}

export function step(state: ClientState, event: SessionEvent): Step {
  const tx = new Tx(state);
  handle(tx, event);
  scheduleMark(tx);
  persist(state, tx);
  return { state: tx.s, commands: tx.commands };
}

function handle(tx: Tx, ev: SessionEvent): void {
  switch (ev.type) {
    case 'start':
      tx.link({ online: ev.online });
      if (ev.visible !== undefined) tx.set({ visible: ev.visible });
      tx.run({ type: 'auth', token: authToken(tx.session) });
      tx.connect();
      return;
    case 'connected':
      return connected(tx, ev.recovered);
    case 'disconnected':
      return disconnected(tx, ev);
    case 'connectError':
      return connectError(tx, ev);
    case 'link':
      tx.link({ active: ev.active, online: ev.online });
      return;
    case 'pageHide':
      // A reload or navigation is a disconnect we ask for: the server frees
      // our name at once instead of holding it for the recovery window.
      if (tx.session.link.connected) tx.disconnect();
      return;
    case 'pageShow':
      if (ev.persisted && !tx.session.link.connected) tx.connect();
      return;
    case 'pageVisible':
      if (tx.session.visible !== ev.visible) tx.set({ visible: ev.visible });
      return;
    case 'markRead':
      return markRead(tx);
    case 'identityRemoved':
      // The browser's guest is signed out: this tab too, if it was that guest.
      if (tx.session.resume !== null && tx.session.token === null) intent(tx, { type: 'signOut' });
      return;
    case 'retryList':
      if (ev.seq === tx.session.seq && tx.session.link.connected) listConversations(tx, ev.seq, ev.attempt);
      return;
    case 'chat':
      tx.apply(ev.action);
      if (ev.action.type === 'received') afterSystem(tx, ev.action.message);
      return;
    case 'editMessage':
    case 'deleteMessage':
    case 'react':
      return msgIntent(tx, ev);
    case 'answer':
      return answer(tx, ev.tag, ev.ack);
    case 'retryJoin': {
      const sync = tx.session.sync;
      if (sync.kind === 'joining' && sync.seq === ev.seq && tx.session.link.connected) {
        tx.set({ sync: { ...sync, attempt: sync.attempt + 1 } });
        emitJoin(tx);
      }
      return;
    }
    case 'retryConnect':
    case 'reconnect':
      if (!tx.session.link.connected) tx.connect();
      return;
    case 'flush':
      return flush(tx);
    default:
      return intent(tx, ev);
  }
}

// ---- the connection -----------------------------------------------------------

function connected(tx: Tx, recovered: boolean): void {
  tx.link({ connected: true, active: true, everConnected: true });
  if (tx.session.token === null) tx.set({ tokenRequired: false });
  tx.request('rooms:list', []);
  const s = tx.session;
  if (recovered && s.phase === 'ready' && s.wasSynced) {
    // Identity, rooms and missed packets are back: only resend.
    tx.set({ sync: { kind: 'synced', seq: s.seq } });
    flush(tx);
  } else if (s.name && s.resume && s.token === null) {
    attach(tx, s.name);
  } else if (s.name) {
    startJoin(tx, !s.userJoin);
  } else {
    tx.set({ phase: 'login', sync: { kind: 'idle' } });
  }
}

function disconnected(tx: Tx, ev: { reason: string; active: boolean; online: boolean }): void {
  tx.set({ wasSynced: tx.session.sync.kind === 'synced', sync: { kind: 'idle' } });
  tx.link({ connected: false, active: ev.active, online: ev.online });
  tx.apply({ type: 'disconnected' });
  if (ev.reason !== 'io server disconnect') return;
  // socket.io-client does not come back after the server disconnects it on
  // purpose; a server restarting says goodbye that way, so try again.
  const kicks = tx.session.kicks;
  if (kicks < RETRY_LIMIT) {
    tx.set({ kicks: kicks + 1 });
    tx.run({ type: 'after', ms: retryDelay(kicks + 1), event: { type: 'retryConnect' } });
  } else {
    tx.notice('The server closed the connection.');
  }
}

function connectError(tx: Tx, ev: { message: string; active: boolean; online: boolean }): void {
  tx.link({ active: ev.active, online: ev.online });
  if (ev.message === 'unauthorized' && tx.session.resume !== null && tx.session.token === null) {
    // The server does not know our guest token (the user expired, or another
    // server): forget it, come back anonymous and ask for the name again.
    const lastName = tx.session.name ?? tx.session.lastName;
    tx.set({
      resume: null,
      userId: null,
      name: null,
      lastName,
      phase: 'login',
      sync: { kind: 'idle' },
      userJoin: false,
      loginError: {
        code: 'session_expired',
        message: 'Your guest session has ended (it expired or this server does not know it). Join again with a name.',
      },
    });
    tx.apply({ type: 'signedOut' });
    tx.run({ type: 'identity', identity: null });
    tx.run({ type: 'save', session: null });
    tx.run({ type: 'auth', token: null });
    tx.connect();
  } else if (ev.message === 'unauthorized') {
    tx.set({ tokenRequired: true });
    if (tx.session.token !== null) {
      tx.set({ loginError: { code: 'unauthorized', message: describeError('unauthorized') }, token: null });
      tx.run({ type: 'auth', token: null });
    }
    tx.set({ name: null, phase: 'login', sync: { kind: 'idle' }, userJoin: false });
  } else if (!ev.active) {
    tx.notice(`Connection refused: ${ev.message}`);
  }
}

// ---- sign-in and resync -------------------------------------------------------

/** Sends user:join for `session.name` as a new sign-in generation. */
function startJoin(tx: Tx, auto: boolean): void {
  const seq = tx.session.seq + 1;
  // A re-join after a reconnect keeps the chat on screen; only a first
  // sign-in shows the "signing in" state.
  tx.set({ seq, sync: { kind: 'joining', seq, auto, attempt: 0 } });
  if (tx.session.phase !== 'ready') tx.set({ phase: 'joining' });
  emitJoin(tx);
}

function emitJoin(tx: Tx): void {
  tx.request('user:join', [tx.session.name], { kind: 'join', seq: tx.session.seq });
}

function joinAnswer(tx: Tx, seq: number, ack: AnyAck): void {
  const sync = tx.session.sync;
  if (sync.kind !== 'joining' || sync.seq !== seq) return; // superseded or disconnected
  if (ack.ok) {
    const user = ack.user as { username?: unknown; id?: unknown } | undefined;
    const username = typeof user?.username === 'string' ? user.username : (tx.session.name ?? '');
    tx.set({ name: username, lastName: username, loginError: null, userJoin: false, kicks: 0, phase: 'ready', farewell: null });
    tx.apply({ type: 'signedIn', username });
    keepIdentity(tx, ack.token, typeof user?.id === 'string' ? user.id : null, username);
    return resync(tx, seq, false);
  }
  if (ack.error === 'offline') return; // the next connect signs in again
  const again = isTransient(ack.error) || (ack.error === 'username_taken' && sync.auto && sync.attempt < RETRY_LIMIT);
  if (again) {
    // A taken name here is most likely our own previous connection, still
    // inside its recovery window after a reload.
    tx.run({ type: 'after', ms: retryDelay(sync.attempt + 1), event: { type: 'retryJoin', seq } });
    return;
  }
  tx.set({
    loginError: { code: ack.error, message: describeError(ack.error, ack.message) },
    phase: 'login',
    name: null,
    userJoin: false,
    sync: { kind: 'idle' },
  });
}

/**
 * A v2 guest sign-in returns a resume token: it becomes the CONNECT auth of
 * every later connection and is stored for the other tabs and reloads.
 * Without one (a v1 server, token mode) nothing changes: reconnects sign in
 * by name again.
 */
function keepIdentity(tx: Tx, ackToken: unknown, id: string | null, username: string): void {
  if (tx.session.token !== null) return;
  const fresh = typeof ackToken === 'string' && ackToken !== '' ? ackToken : null;
  const token = fresh ?? tx.session.resume; // a rename of an attached user keeps its token
  if (token === null) return;
  const userId = id ?? tx.session.userId ?? '';
  tx.set({ resume: token, userId });
  if (fresh) tx.run({ type: 'auth', token });
  tx.run({ type: 'identity', identity: { id: userId, username, token } });
  tx.apply({ type: 'server', version: 'v2' });
}

/**
 * A connection a v2 server attached to our user by its resume token: it is
 * signed in and in its rooms from its first packet, so no user:join and no
 * room:join; only the history we show is fetched again.
 */
function attach(tx: Tx, name: string): void {
  const seq = tx.session.seq + 1;
  tx.set({ seq, phase: 'ready', name, lastName: name, loginError: null, userJoin: false, kicks: 0, farewell: null });
  tx.apply({ type: 'signedIn', username: name });
  resync(tx, seq, true);
}

/**
 * After a sign-in: rejoin every room (unless `attached`) and refetch the
 * history shown, ask for the conversation list, then resend.
 */
function resync(tx: Tx, seq: number, attached: boolean): void {
  const rooms = attached ? [] : joinedRooms(tx.chat);
  const active = tx.chat.active;
  const refetch = Object.values(tx.chat.conversations).filter((c) =>
    attached ? c.historyLoaded || c.key === active : c.kind === 'dm',
  );
  for (const room of rooms) tx.request('room:join', [room], { kind: 'rejoin', seq, room });
  for (const c of refetch) fetchLatest(tx, c, seq);
  tx.set({ sync: { kind: 'resyncing', seq, left: rooms.length + refetch.length } });
  listConversations(tx, seq, 0);
  resyncDone(tx, seq, 0);
}

/** Asks for the conversation list (v2; a v1 server never answers, see listAnswer). */
function listConversations(tx: Tx, seq: number, attempt: number): void {
  tx.request('conversations:list', [], { kind: 'conversations', seq, since: tx.chat.joinGen, attempt });
}

function listAnswer(tx: Tx, tag: Extract<RequestTag, { kind: 'conversations' }>, ack: AnyAck): void {
  if (tag.seq !== tx.session.seq) return; // an older sign-in's
  if (ack.ok) {
    tx.apply({ type: 'conversations', list: parseConversations(ack.conversations), since: tag.since });
    return;
  }
  if (ack.error === 'offline') return; // asked again after the next sign-in
  if (tx.chat.server === 'v2' && isTransient(ack.error) && tag.attempt < RETRY_LIMIT) {
    tx.run({ type: 'after', ms: retryDelay(tag.attempt + 1), event: { type: 'retryList', seq: tag.seq, attempt: tag.attempt + 1 } });
    return;
  }
  // No answer from a server not known to be v2: a v1 server ignores the
  // event. Keep the v1 lists, say nothing.
  if (tx.chat.server === 'unknown') tx.apply({ type: 'server', version: 'v1' });
}

// ---- read state (v2) ------------------------------------------------------------

/** The read:mark the open conversation needs now, if any. */
export function wantedMark(s: ClientState): { key: ConvKey; id: string; payload: Record<string, string> } | null {
  const { session, chat } = s;
  if (chat.server !== 'v2' || !session.link.connected || session.sync.kind !== 'synced') return null;
  if (!session.visible || !session.atBottom || chat.active === null) return null;
  const conv = chat.conversations[chat.active];
  if (!conv || !conv.historyLoaded) return null;
  const newest = conv.messages[conv.messages.length - 1];
  if (!newest || newest.id === conv.markedId) return null;
  const where = conv.kind === 'room' ? { room: conv.name } : { with: conv.name };
  return { key: conv.key, id: newest.id, payload: { ...where, id: newest.id } };
}

/** Starts the read-mark timer when a mark is wanted and none is pending. */
function scheduleMark(tx: Tx): void {
  if (tx.session.markTimer || wantedMark(tx.s) === null) return;
  tx.set({ markTimer: true });
  tx.run({ type: 'after', ms: READ_MARK_DELAY_MS, event: { type: 'markRead' } });
}

/** The timer fired: mark what is still wanted (the newest id then, not the one that started the timer). */
function markRead(tx: Tx): void {
  tx.set({ markTimer: false });
  const want = wantedMark(tx.s);
  if (!want) return;
  tx.apply({ type: 'marking', key: want.key, id: want.id });
  tx.request('read:mark', [want.payload], { kind: 'read', key: want.key, id: want.id });
}

function readAnswer(tx: Tx, tag: Extract<RequestTag, { kind: 'read' }>, ack: AnyAck): void {
  if (ack.ok) {
    const unread = typeof ack.unread === 'number' ? ack.unread : 0;
    tx.apply({ type: 'readState', key: tag.key, lastReadId: null, unread });
  } else if (ack.error === 'offline' || isTransient(ack.error)) {
    tx.apply({ type: 'markFailed', key: tag.key, id: tag.id }); // wanted again, sent again
  }
  // Any other refusal (message_not_found, not_in_room, ...): not retried.
}

/** `n` resync answers arrived; when none is left the connection is synced. */
function resyncDone(tx: Tx, seq: number, n: number): void {
  const sync = tx.session.sync;
  if (sync.kind !== 'resyncing' || sync.seq !== seq) return;
  const left = sync.left - n;
  if (left > 0) {
    tx.set({ sync: { ...sync, left } });
    return;
  }
  tx.set({ sync: { kind: 'synced', seq } });
  flush(tx);
}

function rejoinAnswer(tx: Tx, seq: number, room: string, ack: AnyAck): void {
  if (ack.ok) {
    enteredRoom(tx, ack, false);
  } else if (ack.error === 'room_not_found' || ack.error === 'invalid_room') {
    tx.apply({ type: 'roomLeft', name: room });
    tx.notice(`Room “${room}” is gone.`);
  }
  resyncDone(tx, seq, 1);
}

function enteredRoom(tx: Tx, ack: AnyAck, open: boolean): void {
  const room = (ack as Record<string, unknown>).room as Record<string, unknown> | undefined;
  if (typeof room?.name !== 'string') return;
  const users = typeof room.users === 'number' ? room.users : undefined;
  tx.apply(users === undefined ? { type: 'roomJoined', name: room.name } : { type: 'roomJoined', name: room.name, users });
  tx.apply({ type: 'roomMeta', room: room.name, ...metaFromAck(room) });
  if (open) tx.apply({ type: 'open', key: roomKey(room.name) });
}

// ---- history ----------------------------------------------------------------

function fetchLatest(tx: Tx, conv: Conversation, resync: number | null): void {
  const query = conv.kind === 'room' ? { room: conv.name } : { with: conv.name };
  tx.request('history:fetch', [{ ...query, limit: HISTORY_PAGE }], {
    kind: 'history',
    key: conv.key,
    name: conv.name,
    mode: 'latest',
    resync,
  });
}

function loadOlder(tx: Tx, key: ConvKey): void {
  const conv = tx.chat.conversations[key];
  if (!conv || conv.loadingOlder || !conv.hasMore || !tx.session.link.connected) return;
  const oldest = conv.messages[0];
  if (!oldest) return fetchLatest(tx, conv, null);
  tx.apply({ type: 'loadingOlder', key, value: true });
  const query = conv.kind === 'room' ? { room: conv.name } : { with: conv.name };
  tx.request('history:fetch', [{ ...query, before: oldest.id, limit: HISTORY_PAGE }], {
    kind: 'history',
    key,
    name: conv.name,
    mode: 'older',
    resync: null,
  });
}

function historyAnswer(tx: Tx, tag: Extract<RequestTag, { kind: 'history' }>, ack: AnyAck): void {
  if (ack.ok) {
    tx.apply({
      type: 'history',
      key: tag.key,
      name: tag.name,
      messages: parseMessages(ack.messages),
      hasMore: ack.hasMore === true,
      mode: tag.mode,
    });
  } else if (tag.mode === 'older') {
    tx.apply({ type: 'loadingOlder', key: tag.key, value: false });
    if (ack.error !== 'offline') tx.notice(describeError(ack.error, ack.message));
  }
  if (tag.resync !== null) resyncDone(tx, tag.resync, 1);
}

/**
 * Opening a conversation whose history has not come yet fetches it: a
 * private chat, or (v2) a room listed by the server, which sends no
 * room:history to a connection that did not join it.
 */
function fetchIfNew(tx: Tx, key: ConvKey | null): void {
  const conv = key ? tx.chat.conversations[key] : undefined;
  if (!conv || conv.historyLoaded || !tx.session.link.connected) return;
  if (conv.kind === 'dm' || tx.chat.server === 'v2') fetchLatest(tx, conv, null);
}

// ---- sends ------------------------------------------------------------------

/** Emits every queued send, once this connection is named and back in its rooms. */
function flush(tx: Tx): void {
  if (!tx.session.link.connected || tx.session.sync.kind !== 'synced') return;
  for (const p of queued(tx.chat.pending)) emitSend(tx, p);
}

function emitSend(tx: Tx, p: PendingSend): void {
  tx.apply({ type: 'sending', clientId: p.clientId });
  const tag: RequestTag = { kind: 'send', clientId: p.clientId, attempt: p.attempts + 1 };
  const reply = p.replyTo ? { replyTo: p.replyTo.id } : {};
  if (p.target.kind === 'room') {
    tx.request('message:room', [{ room: p.target.room, content: p.content, clientId: p.clientId, ...reply }], tag);
  } else {
    tx.request('message:private', [{ to: p.target.to, content: p.content, clientId: p.clientId, ...reply }], tag);
  }
}

function sendAnswer(tx: Tx, clientId: string, attempt: number, ack: AnyAck): void {
  if (ack.ok) {
    tx.apply({ type: 'sendAcked', clientId, id: String(ack.id), timestamp: Number(ack.timestamp) });
    return;
  }
  const p = tx.chat.pending.find((x) => x.clientId === clientId);
  // An answer to an attempt that was already given up (disconnect) or redone.
  if (!p || p.status !== 'sending' || p.attempts !== attempt) return;
  if (ack.error === 'user_not_found' && p.target.kind === 'dm') {
    // v2 stores messages to offline users: the name belongs to nobody. v1: the user is offline.
    const to = p.target.to;
    const text = tx.chat.server === 'v2' ? `No user is called “${to}”.` : `${to} is offline.`;
    tx.apply({ type: 'sendFailed', clientId, error: text });
  } else if (ack.error === 'muted' && p.target.kind === 'room') {
    const text = describeError('muted', ack.message);
    tx.apply({ type: 'sendFailed', clientId, error: text });
    tx.apply({ type: 'muted', room: p.target.room, text });
  } else if (ack.error === 'offline') {
    tx.apply({ type: 'sendRequeue', clientId }); // resent once synced again
  } else if (ack.error === 'not_joined') {
    // The server forgot our name: sign in again, then resend.
    tx.apply({ type: 'sendRequeue', clientId });
    if (tx.session.link.connected && tx.session.sync.kind === 'synced') startJoin(tx, true);
  } else if (isTransient(ack.error)) {
    tx.apply({ type: 'sendRequeue', clientId });
    tx.run({ type: 'after', ms: retryDelay(attempt), event: { type: 'flush' } });
  } else {
    tx.apply({ type: 'sendFailed', clientId, error: describeError(ack.error, ack.message) });
  }
}

// ---- answers and intents --------------------------------------------------------

function answer(tx: Tx, tag: RequestTag, ack: AnyAck): void {
  switch (tag.kind) {
    case 'none':
      return;
    case 'join':
      return joinAnswer(tx, tag.seq, ack);
    case 'rejoin':
      return rejoinAnswer(tx, tag.seq, tag.room, ack);
    case 'history':
      return historyAnswer(tx, tag, ack);
    case 'send':
      return sendAnswer(tx, tag.clientId, tag.attempt, ack);
    case 'enterRoom':
      // room:create and room:join answer alike: the room is joined and opened.
      if (ack.ok) enteredRoom(tx, ack, true);
      return;
    case 'leaveRoom':
      if (answerError(tag, ack) === null) tx.apply({ type: 'roomLeft', name: tag.room });
      return;
    case 'conversations':
      return listAnswer(tx, tag, ack);
    case 'read':
      return readAnswer(tx, tag, ack);
    case 'msgOp':
      return msgAnswer(tx, tag, ack);
    case 'roomOp':
      return roomAnswer(tx, tag, ack);
  }
}

type Intent = Extract<
  SessionEvent,
  {
    type:
      | 'signIn'
      | 'signInWithToken'
      | 'signOut'
      | 'open'
      | 'openDm'
      | 'send'
      | 'retrySend'
      | 'loadOlder'
      | 'typing'
      | 'viewAtBottom';
  }
>;

function intent(tx: Tx, ev: Intent): void {
  switch (ev.type) {
    case 'signIn':
      tx.set({ name: ev.name, lastName: ev.name, loginError: null, userJoin: true, farewell: null });
      if (tx.session.link.connected) {
        startJoin(tx, false);
      } else {
        tx.set({ phase: 'joining' });
        tx.connect();
      }
      return;
    case 'signInWithToken':
      return signInWithToken(tx, ev.token);
    case 'signOut': {
      // Only a guest's name is freed (v1) or kept for the guest lifetime (v2); a token's is the token's.
      const name = tx.session.token === null ? (tx.chat.me ?? tx.session.name) : null;
      tx.set({
        seq: tx.session.seq + 1,
        sync: { kind: 'idle' },
        name: null,
        token: null,
        resume: null,
        userId: null,
        userJoin: false,
        loginError: null,
        phase: 'login',
        // A v2 guest's name stays its user's (the guest lifetime); a v1 name is freed by the disconnect.
        farewell: name ? { name, kept: tx.session.resume !== null } : null,
      });
      tx.apply({ type: 'signedOut' });
      tx.run({ type: 'save', session: null });
      tx.run({ type: 'identity', identity: null });
      // Our own disconnect frees the name at once; then come back anonymous.
      tx.disconnect();
      tx.run({ type: 'auth', token: null });
      tx.connect();
      return;
    }
    case 'viewAtBottom':
      if (ev.key === tx.chat.active && tx.session.atBottom !== ev.atBottom) tx.set({ atBottom: ev.atBottom });
      return;
    case 'open':
      tx.apply({ type: 'open', key: ev.key });
      return fetchIfNew(tx, ev.key);
    case 'openDm':
      tx.apply({ type: 'openDm', peer: ev.peer });
      return fetchIfNew(tx, dmKey(ev.peer));
    case 'send':
      return send(tx, ev);
    case 'retrySend':
      tx.apply({ type: 'sendRetry', clientId: ev.clientId });
      return flush(tx);
    case 'loadOlder':
      return loadOlder(tx, ev.key);
    case 'typing': {
      const conv = tx.chat.conversations[ev.key];
      if (!conv || !tx.session.link.connected || tx.session.sync.kind !== 'synced') return;
      const payload = conv.kind === 'room' ? { room: conv.name, isTyping: ev.isTyping } : { to: conv.name, isTyping: ev.isTyping };
      tx.request('typing', [payload]);
      return;
    }
  }
}

function signInWithToken(tx: Tx, raw: string): void {
  const sub = tokenSubject(raw);
  if (!sub) {
    tx.set({ loginError: { code: 'invalid_token', message: 'That does not look like a sign-in token (no user name in it).' } });
    return;
  }
  const token = raw.trim();
  if (tx.session.resume !== null) tx.run({ type: 'identity', identity: null });
  tx.set({ token, resume: null, userId: null, name: sub, lastName: sub, loginError: null, phase: 'joining', userJoin: true, farewell: null });
  // The token travels in the CONNECT packet: start a fresh connection.
  tx.run({ type: 'auth', token });
  if (tx.session.link.connected) tx.disconnect();
  tx.connect();
}

function send(tx: Tx, ev: Extract<SessionEvent, { type: 'send' }>): void {
  const conv = tx.chat.conversations[ev.conv];
  if (!conv) return;
  const pending: PendingSend = {
    clientId: ev.clientId,
    conv: ev.conv,
    target: conv.kind === 'room' ? { kind: 'room', room: conv.name } : { kind: 'dm', to: conv.name },
    content: ev.content,
    ...(tx.chat.replying[ev.conv] ? { replyTo: tx.chat.replying[ev.conv] } : {}),
    createdAt: ev.now,
    status: 'queued',
    attempts: 0,
  };
  tx.apply({ type: 'send', pending });
  flush(tx);
}

// ---- what a reload restores ---------------------------------------------------

function saved(s: ClientState): SavedSession | null {
  if (s.session.phase !== 'ready' || s.chat.me === null) return null;
  return sessionFromState(s.chat, s.session.token);
}

/** Adds a `save` command when what a reload needs has changed. */
function persist(prev: ClientState, tx: Tx): void {
  const next = tx.s;
  if (next.chat === prev.chat && next.session.token === prev.session.token && next.session.phase === prev.session.phase) return;
  const now = saved(next);
  if (now === null) return;
  const before = saved(prev);
  if (before === null || !sameSaved(before, now)) tx.run({ type: 'save', session: now });
}
