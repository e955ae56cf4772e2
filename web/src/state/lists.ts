// What the sidebar lists, derived from the chat state: rooms (known from
// rooms:update or joined), private chats and online users, each row with
// just what its line shows.

import type { ChatState } from './chat.ts';
import { isOnline, privateChats } from './chat.ts';
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

export type ListSource = Pick<ChatState, 'rooms' | 'conversations' | 'users' | 'me' | 'active' | 'unread'>;

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
