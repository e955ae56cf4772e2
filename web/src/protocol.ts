// Types for the Parley chat contract (docs/PROTOCOL.md): the
// payloads the server sends and the acks it answers with. Only the shapes
// the UI relies on are declared; anything else the server adds is ignored.
// Version 2 of the contract adds the resume token in the `user:join` ack,
// `conversations:list`, `read:mark`/`read:update` and `system` messages;
// their parsers are here too (a v1 server never sends them). Part 2 (issues
// #14 and #15) adds the message's editedAt, deleted, replyTo, reactions,
// action and user, the room's private, topic, invited and role, room
// members, `room:invited` and `room:removed`.

export interface OnlineUser {
  id: string;
  username: string;
  isActive: boolean;
}

export interface RoomInfo {
  name: string;
  users: number;
  /** v2: all members (online or not). */
  members?: number;
  private?: boolean;
  topic?: string;
  /** v2: this user is invited to this private room and may join it. */
  invited?: boolean;
}

/** v2: `replyTo` of a message; `excerpt` "" once the original is deleted. */
export interface ReplyRef {
  id: string;
  from: string;
  excerpt: string;
}

/** v2: one emoji's reactions; `users` holds at most the first 20 reactors. */
export interface Reaction {
  emoji: string;
  count: number;
  users: string[];
}

export interface ChatMessage {
  id: string;
  /** `system`: a room event written by the server (v2); `from` is then '' when absent. */
  type: 'room' | 'private' | 'system';
  room?: string;
  to?: string;
  from: string;
  content: string;
  timestamp: number;
  /** v2: ms since the epoch of the last edit; absent if never edited. */
  editedAt?: number;
  /** v2: a tombstone (content ""). */
  deleted?: boolean;
  replyTo?: ReplyRef;
  reactions?: Reaction[];
  /** v2 system messages: what happened (kick, ban, mute, role, topic, notice, ...) and to whom. */
  action?: string;
  user?: string;
}

export interface RoomHistory {
  room: string;
  messages: ChatMessage[];
  hasMore: boolean;
}

export interface TypingEvent {
  room?: string;
  from: string;
  isTyping: boolean;
}

export interface ChatErrorEvent {
  event: string;
  error: string;
  message: string;
}

export type ErrorCode =
  | 'invalid_payload'
  | 'invalid_username'
  | 'username_taken'
  | 'not_joined'
  | 'invalid_room'
  | 'room_not_found'
  | 'not_in_room'
  | 'user_not_found'
  | 'content_too_long'
  | 'rate_limited'
  | 'forbidden'
  | 'internal'
  | 'message_not_found'
  | 'banned'
  | 'muted'
  | 'limit_reached';

export interface AckError {
  ok: false;
  error: ErrorCode | string;
  message?: string;
}

export type Ack<T extends object = object> = ({ ok: true } & T) | AckError;

/** `token`: the guest resume token (v2 guest mode only). */
export type JoinAck = Ack<{ user: { id: string; username: string }; token?: string }>;
export type RoomAck = Ack<{ room: { name: string; users: number } }>;
export type SendAck = Ack<{ id: string; timestamp: number }>;
export type HistoryAck = Ack<{ messages: ChatMessage[]; hasMore: boolean }>;

/** A person-readable text for an error code, used when the server gave none. */
export function describeError(code: string, fallback?: string): string {
  if (fallback && fallback.trim() !== '') return fallback;
  switch (code) {
    case 'invalid_username':
      return 'That name is not allowed. Use 1 to 32 characters, no control characters.';
    case 'username_taken':
      return 'That name is already taken. Pick another one.';
    case 'invalid_room':
      return 'That room name is not allowed. Use 1 to 64 characters.';
    case 'room_not_found':
      return 'That room does not exist any more.';
    case 'not_in_room':
      return 'You are not a member of that room.';
    case 'user_not_found':
      return 'No user has that name.';
    case 'content_too_long':
      return 'The message is too long.';
    case 'rate_limited':
      return 'You are sending too fast. Please wait a moment.';
    case 'forbidden':
      return 'You are not allowed to do that.';
    case 'message_not_found':
      return 'That message does not exist any more.';
    case 'banned':
      return 'You are banned from this room.';
    case 'muted':
      return 'You are muted in this room: you can read but not write.';
    case 'limit_reached':
      return 'This message has as many different reactions as it can hold.';
    case 'invalid_payload':
      return 'The server refused that request as malformed.';
    case 'not_supported':
      return 'Not supported by this server (it did not answer).';
    case 'unauthorized':
      return 'The token was refused (missing, invalid or expired).';
    case 'timeout':
      return 'The server did not answer in time.';
    case 'offline':
      return 'You are offline. Try again when the connection is back.';
    default:
      return 'Something went wrong. Please try again.';
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates a message coming from the wire; returns null for anything malformed. */
export function parseMessage(v: unknown): ChatMessage | null {
  if (!isObject(v)) return null;
  const { id, type, room, to, content, timestamp } = v;
  // A system message may have no author (a notice posted through the server API).
  const from = v.from === undefined && type === 'system' ? '' : v.from;
  if (typeof id !== 'string' || typeof from !== 'string' || typeof content !== 'string') return null;
  if (type !== 'room' && type !== 'private' && type !== 'system') return null;
  if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) return null;
  const msg: ChatMessage = { id, type, from, content, timestamp };
  if (typeof room === 'string') msg.room = room;
  if (typeof to === 'string') msg.to = to;
  if (type !== 'private' && msg.room === undefined) return null;
  if (v.deleted === true) {
    msg.deleted = true;
    msg.content = '';
  } else {
    if (typeof v.editedAt === 'number' && Number.isFinite(v.editedAt)) msg.editedAt = v.editedAt;
    const reply = parseReplyRef(v.replyTo);
    if (reply) msg.replyTo = reply;
    const reactions = parseReactions(v.reactions);
    if (reactions.length > 0) msg.reactions = reactions;
  }
  if (typeof v.action === 'string') msg.action = v.action;
  if (typeof v.user === 'string') msg.user = v.user;
  return msg;
}

function parseReplyRef(v: unknown): ReplyRef | null {
  if (!isObject(v) || typeof v.id !== 'string') return null;
  return { id: v.id, from: typeof v.from === 'string' ? v.from : '', excerpt: typeof v.excerpt === 'string' ? v.excerpt : '' };
}

function parseReactions(v: unknown): Reaction[] {
  if (!Array.isArray(v)) return [];
  const out: Reaction[] = [];
  for (const r of v) {
    if (!isObject(r) || typeof r.emoji !== 'string') continue;
    const users = Array.isArray(r.users) ? r.users.filter((u): u is string => typeof u === 'string') : [];
    const count = typeof r.count === 'number' && r.count > 0 ? Math.floor(r.count) : users.length;
    if (count > 0) out.push({ emoji: r.emoji, count, users });
  }
  return out;
}

export function parseMessages(v: unknown): ChatMessage[] {
  if (!Array.isArray(v)) return [];
  const out: ChatMessage[] = [];
  for (const item of v) {
    const m = parseMessage(item);
    if (m) out.push(m);
  }
  return out;
}

export function parseUsers(v: unknown): OnlineUser[] {
  if (!Array.isArray(v)) return [];
  const out: OnlineUser[] = [];
  for (const item of v) {
    if (isObject(item) && typeof item.username === 'string') {
      out.push({
        id: typeof item.id === 'string' ? item.id : item.username,
        username: item.username,
        isActive: item.isActive !== false,
      });
    }
  }
  return out;
}

export function parseRooms(v: unknown): RoomInfo[] {
  if (!Array.isArray(v)) return [];
  const out: RoomInfo[] = [];
  for (const item of v) {
    if (isObject(item) && typeof item.name === 'string') {
      const room: RoomInfo = { name: item.name, users: typeof item.users === 'number' ? item.users : 0 };
      if (typeof item.members === 'number') room.members = item.members;
      if (item.private === true) room.private = true;
      if (typeof item.topic === 'string') room.topic = item.topic;
      if (item.invited === true) room.invited = true;
      out.push(room);
    }
  }
  return out;
}

export function parseRoomHistory(v: unknown): RoomHistory | null {
  if (!isObject(v) || typeof v.room !== 'string') return null;
  return { room: v.room, messages: parseMessages(v.messages), hasMore: v.hasMore === true };
}

export function parseTyping(v: unknown): TypingEvent | null {
  if (!isObject(v) || typeof v.from !== 'string') return null;
  const ev: TypingEvent = { from: v.from, isTyping: v.isTyping === true };
  if (typeof v.room === 'string') ev.room = v.room;
  return ev;
}

export function parseChatError(v: unknown): ChatErrorEvent | null {
  if (!isObject(v) || typeof v.error !== 'string') return null;
  return {
    event: typeof v.event === 'string' ? v.event : '',
    error: v.error,
    message: typeof v.message === 'string' ? v.message : '',
  };
}

export function isAck(v: unknown): v is Ack {
  return isObject(v) && typeof v.ok === 'boolean';
}

/** One entry of the `conversations:list` ack (v2): a room or a private conversation with its read state. */
export type ConversationSummary =
  | { type: 'room'; room: string; role: string | null; unread: number; lastMessage: ChatMessage | null }
  | { type: 'private'; with: string; unread: number; lastMessage: ChatMessage | null };

function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

/** The `conversations` of a `conversations:list` ack, in the server's order; malformed entries are dropped. */
export function parseConversations(v: unknown): ConversationSummary[] {
  if (!Array.isArray(v)) return [];
  const out: ConversationSummary[] = [];
  for (const item of v) {
    if (!isObject(item)) continue;
    const lastMessage = parseMessage(item.lastMessage);
    const unread = count(item.unread);
    if (item.type === 'room' && typeof item.room === 'string') {
      out.push({ type: 'room', room: item.room, role: typeof item.role === 'string' ? item.role : null, unread, lastMessage });
    } else if (item.type === 'private' && typeof item.with === 'string') {
      out.push({ type: 'private', with: item.with, unread, lastMessage });
    }
  }
  return out;
}

/** `read:update` (v2): another connection of this user read a room or a private conversation. */
export interface ReadUpdate {
  room?: string;
  with?: string;
  lastReadId: string | null;
  unread: number;
}

export function parseReadUpdate(v: unknown): ReadUpdate | null {
  if (!isObject(v)) return null;
  const u: ReadUpdate = { lastReadId: typeof v.lastReadId === 'string' ? v.lastReadId : null, unread: count(v.unread) };
  if (typeof v.room === 'string') u.room = v.room;
  else if (typeof v.with === 'string') u.with = v.with;
  else return null;
  return u;
}

// ---- rooms with owners (v2, issue #15) ---------------------------------------------

export type Role = 'owner' | 'moderator' | 'member';

export function parseRole(v: unknown): Role | null {
  return v === 'owner' || v === 'moderator' || v === 'member' ? v : null;
}

export interface Member {
  username: string;
  role: Role;
  online: boolean;
}

/** The `members` of a `room:members` ack; malformed entries are dropped. */
export function parseMembers(v: unknown): Member[] {
  if (!Array.isArray(v)) return [];
  const out: Member[] = [];
  for (const m of v) {
    if (!isObject(m) || typeof m.username !== 'string') continue;
    out.push({ username: m.username, role: parseRole(m.role) ?? 'member', online: m.online === true });
  }
  return out;
}

/** `room:invited {room, by}`. */
export function parseInvited(v: unknown): { room: string; by: string } | null {
  if (!isObject(v) || typeof v.room !== 'string') return null;
  return { room: v.room, by: typeof v.by === 'string' ? v.by : '' };
}

export type RemovedReason = 'kicked' | 'banned' | 'deleted';

/** `room:removed {room, by, reason}`. */
export function parseRemoved(v: unknown): { room: string; by: string; reason: RemovedReason } | null {
  if (!isObject(v) || typeof v.room !== 'string') return null;
  const reason = v.reason === 'banned' || v.reason === 'deleted' ? v.reason : 'kicked';
  return { room: v.room, by: typeof v.by === 'string' ? v.by : '', reason };
}
