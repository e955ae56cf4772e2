// What the sidebar lists, derived from the chat state: rooms (known from
// rooms:update or joined), private chats and online users, each row with
// just what its line shows; with a v2 server, the conversation list (rooms
// and private conversations together, most recent activity first, with
// previews) and the rooms one may still join.

import type { ChatMessage } from '../protocol.ts';
import type { ChatState } from './chat.ts';
import { isOnline, previewOf, privateChats } from './chat.ts';
import { foldName, roomKey, sameName, type ConvKey } from './names.ts';

export interface RoomRow {
  key: ConvKey;
  name: string;
  /** Member count from rooms:update; null when the room is not listed yet. */
  users: number | null;
  joined: boolean;
  active: boolean;
  unread: number;
}

export interface ChatRow {
  key: ConvKey;
  /** The peer's name. */
  name: string;
  online: boolean;
  active: boolean;
  unread: number;
}

export interface UserRow {
  username: string;
  me: boolean;
}

export interface ConversationRow {
  key: ConvKey;
  kind: 'room' | 'dm';
  /** The room's name or the peer's. */
  name: string;
  /** Private conversations: the peer is online. */
  online: boolean;
  active: boolean;
  unread: number;
  /** The newest message: who wrote it ('You', a name, or '' for the peer of a private chat or a system message), what, when. */
  preview: { from: string; text: string; timestamp: number } | null;
}

export type ListSource = Pick<ChatState, 'rooms' | 'conversations' | 'users' | 'me' | 'active' | 'unread' | 'recent'>;

/** Listed and joined rooms, by name (case-folded). */
export function roomRows(state: ListSource): RoomRow[] {
  const rows = new Map<ConvKey, RoomRow>();
  const row = (key: ConvKey, name: string, users: number | null): RoomRow => ({
    key,
    name,
    users,
    joined: state.conversations[key]?.joined === true,
    active: state.active === key,
    unread: state.unread[key] ?? 0,
  });
  for (const r of state.rooms) {
    const key = roomKey(r.name);
    rows.set(key, row(key, r.name, r.users));
  }
  for (const c of Object.values(state.conversations)) {
    if (c.kind === 'room' && c.joined && !rows.has(c.key)) rows.set(c.key, row(c.key, c.name, null));
  }
  return [...rows.values()].sort((a, b) => foldName(a.name).localeCompare(foldName(b.name)));
}

/** Private chats, most recently active first. */
export function chatRows(state: ListSource): ChatRow[] {
  return privateChats(state).map((c) => ({
    key: c.key,
    name: c.name,
    online: isOnline(state, c.name),
    active: state.active === c.key,
    unread: state.unread[c.key] ?? 0,
  }));
}

/** Online users by name, this user marked. */
export function userRows(state: ListSource): UserRow[] {
  return [...state.users]
    .sort((a, b) => foldName(a.username).localeCompare(foldName(b.username)))
    .map((u) => ({ username: u.username, me: sameName(u.username, state.me) }));
}

function previewRow(state: ListSource, kind: 'room' | 'dm', m: ChatMessage | null): ConversationRow['preview'] {
  if (!m) return null;
  const from = sameName(m.from, state.me) ? 'You' : kind === 'room' && m.type !== 'system' ? m.from : '';
  return { from, text: m.deleted ? 'This message was deleted' : m.content, timestamp: m.timestamp };
}

/** Rooms we are a member of and private conversations (v2), most recent activity first. */
export function conversationRows(state: ListSource): ConversationRow[] {
  const order = new Map(state.recent.map((k, i) => [k, i]));
  const rank = (k: ConvKey) => order.get(k) ?? Number.MAX_SAFE_INTEGER;
  return Object.values(state.conversations)
    .filter((c) => c.kind === 'dm' || c.joined)
    .sort((a, b) => rank(a.key) - rank(b.key) || foldName(a.name).localeCompare(foldName(b.name)))
    .map((c) => ({
      key: c.key,
      kind: c.kind,
      name: c.name,
      online: c.kind === 'dm' && isOnline(state, c.name),
      active: state.active === c.key,
      unread: state.unread[c.key] ?? 0,
      preview: previewRow(state, c.kind, previewOf(c)),
    }));
}

/** Listed rooms we are not a member of (v2: the joined ones are in the conversation list). */
export function otherRoomRows(state: ListSource): RoomRow[] {
  return roomRows(state).filter((r) => !r.joined);
}
