// The chat's data (conversations, messages, rooms, users, unread counts,
// typing notices, sends in flight) and the pure reducer that moves it.
// Everything the server says arrives here as an action; the session reducer
// (session.ts) decides when to ask the server and feeds the answers in, so
// this file is where the data rules live: which conversation a message
// belongs to, what counts as unread, how history and live messages merge,
// how sends settle. The connection's state is not here but in session.ts.
//
// With a v2 server (`server: 'v2'`) the conversation list comes from
// `conversations:list`: it says which rooms the user is a member of, which
// private conversations it has (also with users who are offline), the
// unread counts and each one's newest message; live messages, `read:update`
// and our own reads keep it current from then on. `recent` is the list's
// order (most recent activity first); a v1 server never fills it and the UI
// stays as it was (rooms and online users).

import {
  parseRole,
  type ChatMessage,
  type ConversationSummary,
  type Member,
  type OnlineUser,
  type ReplyRef,
  type Role,
  type RoomInfo,
  type TypingEvent,
} from '../protocol.ts';
import { messageReducer, type MessageAction } from './messageOps.ts';
import { roomReducer, roomSystem, type Invite, type RoomAction } from './rooms.ts';
import { appendLive, insertByTime, mergeLatest, mergeOlder, hasMessage } from './messages.ts';
import { dmKey, foldName, roomKey, sameName, type ConvKey, type ConvKind } from './names.ts';
import {
  addPending,
  markFailed,
  markQueued,
  markSending,
  matchReceived,
  removePending,
  requeueInFlight,
  resolveAck,
  retryFailed,
  type PendingSend,
} from './pending.ts';
import { conversationOf, forget, putConv, touch } from './convs.ts';
import { applyTyping, pruneTyping, type TypingState } from './typing.ts';
import { bumpUnread, clearUnread, setUnread, type UnreadState } from './unread.ts';

export interface Conversation {
  key: ConvKey;
  kind: ConvKind;
  /** The room's name or the peer's username, as the server shows it. */
  name: string;
  messages: readonly ChatMessage[];
  /** Older history exists on the server (from the last page that decided it). */
  hasMore: boolean;
  /** A history page has arrived at least once since the conversation was opened or rejoined. */
  historyLoaded: boolean;
  loadingOlder: boolean;
  /** Rooms: this connection is a member. Private chats: always true. */
  joined: boolean;
  /** The newest message known, also when its history is not loaded (the list's preview). */
  last: ChatMessage | null;
  /** The newest message id the server holds as read (our read:mark, read:update, our own message). */
  markedId: string | null;
  /** `ChatState.joinGen` when this room was last joined (0: restored or listed). */
  joinedAt: number;
  /** Rooms (v2): this user's role, when the server said it. */
  role: Role | null;
  /** Rooms (v2): the topic from the join ack or our own change (rooms:update has the newest). */
  topic: string | null;
  isPrivate: boolean;
  /** Rooms (v2): the members panel's list (null: not asked yet) and its last error. */
  members: readonly Member[] | null;
  membersError: string | null;
  /** Rooms (v2): this user is muted here; the text says why (the composer is disabled). */
  muted: string | null;
}

/** What the server is known to speak: v2 answers conversations:list (or gave a resume token). */
export type ServerVersion = 'unknown' | 'v1' | 'v2';

export interface ChatState {
  me: string | null;
  users: readonly OnlineUser[];
  rooms: readonly RoomInfo[];
  conversations: Readonly<Record<ConvKey, Conversation>>;
  active: ConvKey | null;
  unread: UnreadState;
  typing: TypingState;
  pending: readonly PendingSend[];
  /** The last error the server reported without an ack (`chat:error`), or a local one. */
  notice: string | null;
  server: ServerVersion;
  /** Conversations, most recent activity first (v2); ones not in it are listed after. */
  recent: readonly ConvKey[];
  /** Counts room joins, so a conversation list asked for before a join does not drop that room. */
  joinGen: number;
  /** v2 messages: the original of each message changed locally and not yet acked, by msgKey (messageOps.ts). */
  optimistic: Readonly<Record<string, ChatMessage>>;
  /** v2 messages: the error shown next to a message, by msgKey. */
  msgErrors: Readonly<Record<string, string>>;
  /** v2 messages: the message each conversation's composer replies to. */
  replying: Readonly<Record<ConvKey, ReplyRef>>;
  /** v2 rooms: invitations received (room:invited) and not acted on. */
  invites: readonly Invite[];
}

export type ChatAction =
  | { type: 'disconnected' }
  | { type: 'signedIn'; username: string }
  | { type: 'signedOut' }
  | { type: 'users'; users: OnlineUser[] }
  | { type: 'rooms'; rooms: RoomInfo[] }
  | { type: 'roomJoined'; name: string; users?: number }
  | { type: 'roomLeft'; name: string }
  | { type: 'openDm'; peer: string }
  | { type: 'open'; key: ConvKey | null }
  | { type: 'received'; message: ChatMessage }
  | {
      type: 'history';
      key: ConvKey;
      /** Display name, used when the page arrives before the conversation exists (room:history before the join ack). */
      name: string;
      messages: ChatMessage[];
      hasMore: boolean;
      mode: 'latest' | 'older';
    }
  | { type: 'loadingOlder'; key: ConvKey; value: boolean }
  | { type: 'typing'; event: TypingEvent; now: number }
  | { type: 'tick'; now: number }
  | { type: 'send'; pending: PendingSend }
  | { type: 'sending'; clientId: string }
  | { type: 'sendRequeue'; clientId: string }
  | { type: 'sendFailed'; clientId: string; error: string }
  | { type: 'sendAcked'; clientId: string; id: string; timestamp: number }
  | { type: 'sendRetry'; clientId: string }
  | { type: 'sendDiscard'; clientId: string }
  | { type: 'notice'; text: string | null }
  | { type: 'server'; version: ServerVersion }
  /** The `conversations:list` answer; rooms joined after `since` (a joinGen) are kept even if absent. */
  | { type: 'conversations'; list: ConversationSummary[]; since: number }
  /** The server's read state of one conversation (read:update, or the read:mark ack). */
  | { type: 'readState'; key: ConvKey; lastReadId: string | null; unread: number }
  /** read:mark was sent for `id` (or failed for it: `id` is forgotten, so it is sent again). */
  | { type: 'marking'; key: ConvKey; id: string }
  | { type: 'markFailed'; key: ConvKey; id: string }
  | MessageAction
  | RoomAction;

export interface InitialSession {
  username?: string | null;
  rooms?: readonly string[];
  dms?: readonly string[];
  active?: ConvKey | null;
}

export function newConversation(kind: ConvKind, name: string, joined = true): Conversation {
  return {
    key: kind === 'room' ? roomKey(name) : dmKey(name),
    kind,
    name,
    messages: [],
    hasMore: false,
    historyLoaded: false,
    loadingOlder: false,
    joined,
    last: null,
    markedId: null,
    joinedAt: 0,
    role: null,
    topic: null,
    isPrivate: false,
    members: null,
    membersError: null,
    muted: null,
  };
}

/** The starting state, optionally restored from a saved session (rooms and chats to rejoin). */
export function initialState(session: InitialSession = {}): ChatState {
  const conversations: Record<ConvKey, Conversation> = {};
  for (const r of session.rooms ?? []) {
    const c = newConversation('room', r);
    conversations[c.key] = c;
  }
  for (const d of session.dms ?? []) {
    const c = newConversation('dm', d);
    conversations[c.key] = c;
  }
  const active = session.active && conversations[session.active] ? session.active : null;
  return {
    me: null,
    users: [],
    rooms: [],
    conversations,
    active,
    unread: {},
    typing: {},
    pending: [],
    notice: null,
    server: 'unknown',
    recent: [],
    joinGen: 0,
    optimistic: {},
    msgErrors: {},
    replying: {},
    invites: [],
  };
}

export { conversationOf };

export function isOwn(state: Pick<ChatState, 'me'>, msg: Pick<ChatMessage, 'from'>): boolean {
  return sameName(msg.from, state.me);
}

function ensureConv(state: ChatState, key: ConvKey, kind: ConvKind, name: string): Conversation {
  return state.conversations[key] ?? newConversation(kind, name, kind === 'dm');
}

/** The conversation list from `conversations:list` (v2) replaces what we knew of memberships and counts. */
function listed(state: ChatState, list: readonly ConversationSummary[], since: number): ChatState {
  const conversations: Record<ConvKey, Conversation> = { ...state.conversations };
  let unread = state.unread;
  const order: ConvKey[] = [];
  for (const item of list) {
    const kind: ConvKind = item.type === 'room' ? 'room' : 'dm';
    const name = item.type === 'room' ? item.room : item.with;
    const key = kind === 'room' ? roomKey(name) : dmKey(name);
    if (order.includes(key)) continue;
    order.push(key);
    const conv = conversations[key] ?? newConversation(kind, name);
    const last = item.lastMessage ?? conv.last;
    // Nothing unread: everything up to the newest message is read already.
    const markedId = item.unread === 0 && last ? last.id : conv.markedId;
    const role = item.type === 'room' ? (parseRole(item.role) ?? conv.role) : conv.role;
    conversations[key] = { ...conv, name: kind === 'dm' ? name : conv.name, joined: true, last, markedId, role };
    unread = setUnread(unread, key, key === state.active ? 0 : item.unread);
  }
  let next: ChatState = { ...state, conversations, unread, server: 'v2' };
  // A room the server does not list is one we are no longer a member of
  // (left in another tab, removed), unless we joined it after asking.
  for (const c of Object.values(conversations)) {
    if (c.kind === 'room' && !order.includes(c.key) && c.joinedAt <= since) next = forget(next, c.key);
  }
  const kept = next.recent.filter((k) => !order.includes(k) && k in next.conversations);
  return { ...next, recent: [...kept, ...order] };
}

function receive(state: ChatState, msg: ChatMessage): ChatState {
  const where = conversationOf(state.me, msg);
  if (!where) return state;
  const conv = ensureConv(state, where.key, where.kind, where.name);
  const messages = appendLive(conv.messages, msg);
  const own = isOwn(state, msg);
  // The peer's own spelling of their name wins over the one we typed.
  const name = where.kind === 'dm' && !own ? msg.from : conv.name;
  if (messages === conv.messages) return putConv(state, { ...conv, name }); // a duplicate: nothing else changes
  // Sending marks everything up to one's own message read (v2).
  const markedId = own ? msg.id : conv.markedId;
  let next = putConv(state, { ...conv, messages, name, last: msg, markedId });
  next = { ...next, recent: touch(next.recent, where.key) };
  if (own) {
    next = { ...next, pending: matchReceived(next.pending, where.key, msg) as PendingSend[], unread: clearUnread(next.unread, where.key) };
  } else {
    if (next.active !== where.key) next = { ...next, unread: bumpUnread(next.unread, where.key) };
    next = { ...next, typing: applyTyping(next.typing, where.key, msg.from, false, 0) };
  }
  return roomSystem(next, msg);
}

function settleAck(state: ChatState, clientId: string, id: string, timestamp: number): ChatState {
  const { pending, settled } = resolveAck(state.pending, clientId);
  let next: ChatState = { ...state, pending };
  if (!settled || settled.matchedId === id || state.me === null) return next;
  const conv = next.conversations[settled.conv];
  if (!conv || hasMessage(conv.messages, id)) return next;
  const msg: ChatMessage =
    settled.target.kind === 'room'
      ? { id, type: 'room', room: settled.target.room, from: state.me, content: settled.content, timestamp }
      : { id, type: 'private', to: settled.target.to, from: state.me, content: settled.content, timestamp };
  if (settled.replyTo) msg.replyTo = settled.replyTo;
  next = putConv(next, { ...conv, messages: insertByTime(conv.messages, [msg]) });
  return next;
}

export function chatReducer(state: ChatState, action: ChatAction): ChatState {
  switch (action.type) {
    case 'disconnected':
      // Typing notices die with the connection; sends in flight are retried on return.
      return { ...state, typing: {}, pending: requeueInFlight(state.pending) };

    case 'signedIn':
      return { ...state, me: action.username };

    case 'signedOut':
      return { ...initialState(), users: state.users, rooms: state.rooms, server: state.server };

    case 'users':
      return { ...state, users: action.users };

    case 'rooms':
      return { ...state, rooms: action.rooms };

    case 'roomJoined': {
      const key = roomKey(action.name);
      const existing = state.conversations[key];
      const joinGen = state.joinGen + 1;
      const conv: Conversation = existing
        ? { ...existing, name: action.name, joined: true, joinedAt: joinGen }
        : { ...newConversation('room', action.name), joinedAt: joinGen };
      let next = { ...putConv(state, conv), joinGen };
      if (!existing) next = { ...next, recent: touch(next.recent, key) };
      if (action.users !== undefined && !state.rooms.some((r) => sameName(r.name, action.name))) {
        next = { ...next, rooms: [...state.rooms, { name: action.name, users: action.users }] };
      }
      return next;
    }

    case 'roomLeft':
      return forget(state, roomKey(action.name));

    case 'openDm': {
      const key = dmKey(action.peer);
      const existing = state.conversations[key];
      const next = { ...putConv(state, existing ?? newConversation('dm', action.peer)), active: key, unread: clearUnread(state.unread, key) };
      return existing ? next : { ...next, recent: touch(next.recent, key) };
    }

    case 'open':
      if (action.key === null) return { ...state, active: null };
      if (!state.conversations[action.key]) return state;
      return { ...state, active: action.key, unread: clearUnread(state.unread, action.key) };

    case 'received':
      return receive(state, action.message);

    case 'history': {
      const kind = action.key.startsWith('room:') ? 'room' : 'dm';
      const known = state.conversations[action.key];
      // room:history before the join ack: the room is being joined now.
      if (!known && kind === 'room') state = { ...state, joinGen: state.joinGen + 1 };
      const conv = known ?? { ...newConversation(kind, action.name), joinedAt: state.joinGen };
      if (action.mode === 'older') {
        return putConv(state, {
          ...conv,
          messages: mergeOlder(conv.messages, action.messages),
          hasMore: action.hasMore,
          loadingOlder: false,
        });
      }
      const { messages, keptOlder } = mergeLatest(conv.messages, action.messages);
      return putConv(state, {
        ...conv,
        messages,
        hasMore: keptOlder ? conv.hasMore : action.hasMore,
        historyLoaded: true,
      });
    }

    case 'loadingOlder': {
      const conv = state.conversations[action.key];
      if (!conv || conv.loadingOlder === action.value) return state;
      return putConv(state, { ...conv, loadingOlder: action.value });
    }

    case 'typing': {
      const ev = action.event;
      if (sameName(ev.from, state.me)) return state;
      const key = ev.room !== undefined ? roomKey(ev.room) : dmKey(ev.from);
      return { ...state, typing: applyTyping(state.typing, key, ev.from, ev.isTyping, action.now) };
    }

    case 'tick': {
      const typing = pruneTyping(state.typing, action.now);
      return typing === state.typing ? state : { ...state, typing };
    }

    case 'send': {
      const { [action.pending.conv]: _sent, ...replying } = state.replying;
      return { ...state, pending: addPending(state.pending, action.pending), replying };
    }

    case 'sending':
      return { ...state, pending: markSending(state.pending, action.clientId) };

    case 'sendRequeue':
      return { ...state, pending: markQueued(state.pending, action.clientId) };

    case 'sendFailed':
      return { ...state, pending: markFailed(state.pending, action.clientId, action.error) };

    case 'sendAcked':
      return settleAck(state, action.clientId, action.id, action.timestamp);

    case 'sendRetry':
      return { ...state, pending: retryFailed(state.pending, action.clientId) };

    case 'sendDiscard':
      return { ...state, pending: removePending(state.pending, action.clientId) };

    case 'notice':
      return { ...state, notice: action.text };

    case 'server':
      return state.server === action.version ? state : { ...state, server: action.version };

    case 'conversations':
      return listed(state, action.list, action.since);

    case 'readState': {
      const conv = state.conversations[action.key];
      if (!conv) return state;
      const unread = setUnread(state.unread, action.key, action.key === state.active ? 0 : action.unread);
      const markedId = action.lastReadId ?? conv.markedId;
      if (unread === state.unread && markedId === conv.markedId) return state;
      return { ...putConv(state, { ...conv, markedId }), unread };
    }

    case 'marking': {
      const conv = state.conversations[action.key];
      if (!conv || conv.markedId === action.id) return state;
      return putConv(state, { ...conv, markedId: action.id });
    }

    case 'markFailed': {
      const conv = state.conversations[action.key];
      if (!conv || conv.markedId !== action.id) return state;
      return putConv(state, { ...conv, markedId: null });
    }

    case 'updated':
    case 'optimistic':
    case 'opDone':
    case 'opFailed':
    case 'msgError':
    case 'replyTo':
      return messageReducer(state, action);

    case 'roomMeta':
    case 'members':
    case 'muted':
    case 'invited':
    case 'dismissInvite':
    case 'removed':
      return roomReducer(state, action);
  }
}

/** The newest message a conversation's row previews: the timeline's end, or the list's newer one. */
export function previewOf(conv: Conversation): ChatMessage | null {
  const end = conv.messages[conv.messages.length - 1];
  if (conv.last === null || (end && hasMessage(conv.messages, conv.last.id))) return end ?? conv.last;
  return conv.last;
}

/** Rooms this connection is in, by display name (what a reconnect must rejoin). */
export function joinedRooms(state: Pick<ChatState, 'conversations'>): string[] {
  return Object.values(state.conversations)
    .filter((c) => c.kind === 'room' && c.joined)
    .map((c) => c.name);
}

/** Private chats, most recently active first. */
export function privateChats(state: Pick<ChatState, 'conversations'>): Conversation[] {
  const last = (c: Conversation) => c.messages[c.messages.length - 1]?.timestamp ?? 0;
  return Object.values(state.conversations)
    .filter((c) => c.kind === 'dm')
    .sort((a, b) => last(b) - last(a) || a.name.localeCompare(b.name));
}

export function isOnline(state: Pick<ChatState, 'users'>, name: string): boolean {
  const f = foldName(name);
  return state.users.some((u) => foldName(u.username) === f);
}

export function memberCount(state: Pick<ChatState, 'rooms'>, room: string): number | null {
  const r = state.rooms.find((x) => sameName(x.name, room));
  return r ? r.users : null;
}
