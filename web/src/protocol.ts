// Types for the Parley chat contract (docs/PROTOCOL.md): the
// payloads the server sends and the acks it answers with. Only the shapes
// the UI relies on are declared; anything else the server adds is ignored.

export interface OnlineUser {
  id: string;
  username: string;
  isActive: boolean;
}

export interface RoomInfo {
  name: string;
  users: number;
}

export interface ChatMessage {
  id: string;
  type: 'room' | 'private';
  room?: string;
  to?: string;
  from: string;
  content: string;
  timestamp: number;
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
  | 'internal';

export interface AckError {
  ok: false;
  error: ErrorCode | string;
  message?: string;
}

export type Ack<T extends object = object> = ({ ok: true } & T) | AckError;

export type JoinAck = Ack<{ user: { id: string; username: string } }>;
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
      return 'That user is offline.';
    case 'content_too_long':
      return 'The message is too long.';
    case 'rate_limited':
      return 'You are sending too fast. Please wait a moment.';
    case 'forbidden':
      return 'You are not allowed to do that.';
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
  const { id, type, room, to, from, content, timestamp } = v;
  if (typeof id !== 'string' || typeof from !== 'string' || typeof content !== 'string') return null;
  if (type !== 'room' && type !== 'private') return null;
  if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) return null;
  const msg: ChatMessage = { id, type, from, content, timestamp };
  if (typeof room === 'string') msg.room = room;
  if (typeof to === 'string') msg.to = to;
  if (type === 'room' && msg.room === undefined) return null;
  return msg;
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
      out.push({ name: item.name, users: typeof item.users === 'number' ? item.users : 0 });
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
