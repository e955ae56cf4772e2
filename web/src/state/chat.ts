// The chat's data (conversations, messages, rooms, users, unread counts,
// typing notices, sends in flight) and the pure reducer that moves it.
// Everything the server says arrives here as an action; the session reducer
// (session.ts) decides when to ask the server and feeds the answers in, so
// this file is where the data rules live: which conversation a message
// belongs to, what counts as unread, how history and live messages merge,
// how sends settle. The connection's state is not here but in session.ts.

import type { ChatMessage, OnlineUser, RoomInfo, TypingEvent } from '../protocol.ts';
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
import { applyTyping, clearTyping, pruneTyping, type TypingState } from './typing.ts';
import { bumpUnread, clearUnread, type UnreadState } from './unread.ts';

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
}

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
  | { type: 'notice'; text: string | null };

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
  };
}

/** Which conversation a message belongs to, from this user's point of view. */
export function conversationOf(me: string | null, msg: ChatMessage): { key: ConvKey; kind: ConvKind; name: string } | null {
  if (msg.type === 'room') {
    if (msg.room === undefined) return null;
    return { key: roomKey(msg.room), kind: 'room', name: msg.room };
  }
  const mine = sameName(msg.from, me);
  const peer = mine ? msg.to : msg.from;
  if (peer === undefined) return null;
  return { key: dmKey(peer), kind: 'dm', name: peer };
}

export function isOwn(state: Pick<ChatState, 'me'>, msg: Pick<ChatMessage, 'from'>): boolean {
  return sameName(msg.from, state.me);
}

function putConv(state: ChatState, conv: Conversation): ChatState {
  return { ...state, conversations: { ...state.conversations, [conv.key]: conv } };
}

function ensureConv(state: ChatState, key: ConvKey, kind: ConvKind, name: string): Conversation {
  return state.conversations[key] ?? newConversation(kind, name, kind === 'dm');
}

function receive(state: ChatState, msg: ChatMessage): ChatState {
  const where = conversationOf(state.me, msg);
  if (!where) return state;
  const conv = ensureConv(state, where.key, where.kind, where.name);
  const messages = appendLive(conv.messages, msg);
  const own = isOwn(state, msg);
  // The peer's own spelling of their name wins over the one we typed.
  const name = where.kind === 'dm' && !own ? msg.from : conv.name;
  let next = putConv(state, { ...conv, messages, name });
  if (messages === conv.messages) return next; // a duplicate: nothing else changes
  if (own) {
    next = { ...next, pending: matchReceived(next.pending, where.key, msg) as PendingSend[] };
  } else {
    if (next.active !== where.key) next = { ...next, unread: bumpUnread(next.unread, where.key) };
    next = { ...next, typing: applyTyping(next.typing, where.key, msg.from, false, 0) };
  }
  return next;
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
      return { ...initialState(), users: state.users, rooms: state.rooms };

    case 'users':
      return { ...state, users: action.users };

    case 'rooms':
      return { ...state, rooms: action.rooms };

    case 'roomJoined': {
      const key = roomKey(action.name);
      const existing = state.conversations[key];
      const conv: Conversation = existing
        ? { ...existing, name: action.name, joined: true }
        : newConversation('room', action.name);
      let next = putConv(state, conv);
      if (action.users !== undefined && !state.rooms.some((r) => sameName(r.name, action.name))) {
        next = { ...next, rooms: [...state.rooms, { name: action.name, users: action.users }] };
      }
      return next;
    }

    case 'roomLeft': {
      const key = roomKey(action.name);
      const { [key]: _gone, ...conversations } = state.conversations;
      return {
        ...state,
        conversations,
        active: state.active === key ? null : state.active,
        unread: clearUnread(state.unread, key),
        pending: state.pending.filter((p) => p.conv !== key),
        typing: clearTyping(state.typing, key),
      };
    }

    case 'openDm': {
      const key = dmKey(action.peer);
      const conv = state.conversations[key] ?? newConversation('dm', action.peer);
      return { ...putConv(state, conv), active: key, unread: clearUnread(state.unread, key) };
    }

    case 'open':
      if (action.key === null) return { ...state, active: null };
      if (!state.conversations[action.key]) return state;
      return { ...state, active: action.key, unread: clearUnread(state.unread, action.key) };

    case 'received':
      return receive(state, action.message);

    case 'history': {
      const kind = action.key.startsWith('room:') ? 'room' : 'dm';
      const conv = state.conversations[action.key] ?? newConversation(kind, action.name);
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

    case 'send':
      return { ...state, pending: addPending(state.pending, action.pending) };

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
  }
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
