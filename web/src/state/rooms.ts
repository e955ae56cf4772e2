// Rooms with owners (contract v2, issue #15): roles, the members panel,
// moderation, invitations, topics, and being removed from a room. Pure,
// in three parts like messageOps.ts:
//  - rules the UI asks (which actions a member's menu offers, the ban and
//    mute durations, the text a removed user reads);
//  - `roomReducer`, the chat state's side (a room's role, topic, members
//    and mute, the invitations, `room:removed`), and `roomSystem`, what a
//    `system` message in a room changes for this user;
//  - `roomRequest`/`roomAnswer`, the session's side: the requests the
//    members panel and the moderation menus send, and what answers do.

import { describeError, parseMembers, parseRole, type ChatMessage, type Member, type RemovedReason, type Role } from '../protocol.ts';
import type { ChatState, Conversation } from './chat.ts';
import { forget, putConv } from './convs.ts';
import { roomKey, sameName } from './names.ts';
import type { AnyAck, Tx } from './session.ts';

const RANK: Record<Role, number> = { owner: 3, moderator: 2, member: 1 };

export type MemberAction = 'kick' | 'ban' | 'mute' | 'unmute' | 'moderator' | 'member' | 'owner';

/** Ban and mute lengths the menus offer; null: until lifted. */
export const DURATIONS: readonly { label: string; ms: number | null }[] = [
  { label: '10 minutes', ms: 10 * 60_000 },
  { label: '1 hour', ms: 60 * 60_000 },
  { label: '1 day', ms: 24 * 60 * 60_000 },
  { label: 'Until lifted', ms: null },
];

/** Owners and moderators moderate; nobody acts on an equal or higher role (nor on themselves). */
export function canModerate(mine: Role | null): boolean {
  return mine === 'owner' || mine === 'moderator';
}

/** What the menu of `target` offers to a member whose role is `mine` (empty: no menu). */
export function memberActions(mine: Role | null, me: string | null, target: Member): MemberAction[] {
  if (!mine || !canModerate(mine) || sameName(target.username, me) || RANK[target.role] >= RANK[mine]) return [];
  const out: MemberAction[] = ['kick', 'ban', 'mute', 'unmute'];
  if (mine === 'owner') out.push(target.role === 'moderator' ? 'member' : 'moderator', 'owner');
  return out;
}

/** Owner first, then moderators, then members; online before offline; then by name. */
export function sortMembers(list: readonly Member[]): Member[] {
  return [...list].sort(
    (a, b) => RANK[b.role] - RANK[a.role] || Number(b.online) - Number(a.online) || a.username.localeCompare(b.username),
  );
}

export function removedText(room: string, by: string, reason: RemovedReason, me: string | null): string {
  const who = by === '' ? 'the server' : sameName(by, me) ? 'you' : by;
  switch (reason) {
    case 'deleted':
      return sameName(by, me) ? `You deleted the room “${room}”.` : `The room “${room}” was deleted by ${who}.`;
    case 'banned':
      return `You were banned from “${room}” by ${who}.`;
    case 'kicked':
      return `You were removed from “${room}” by ${who}.`;
  }
}

/** A room request's refusal as a text (a server that does not know the event never answers). */
export function roomErrorText(ack: { error: string; message?: string }): string {
  return ack.error === 'timeout' ? describeError('not_supported') : describeError(ack.error, ack.message);
}

// ---- the chat state's side -----------------------------------------------------

export interface Invite {
  room: string;
  by: string;
  /** The user dismissed it (kept so that a room listed with `invited: true` is not offered again). */
  dismissed?: boolean;
}

export type RoomAction =
  /** What a room:create/join ack or the conversation list says of a room. */
  | { type: 'roomMeta'; room: string; role?: Role | null; topic?: string; isPrivate?: boolean }
  /** The `room:members` answer (or its refusal). */
  | { type: 'members'; room: string; members: Member[] | null; error: string | null }
  /** This user is muted in the room (the reason) or no longer (null). */
  | { type: 'muted'; room: string; text: string | null }
  | { type: 'invited'; room: string; by: string }
  | { type: 'dismissInvite'; room: string }
  | { type: 'removed'; room: string; by: string; reason: RemovedReason };

function withRoom(state: ChatState, room: string, f: (c: Conversation) => Conversation): ChatState {
  const conv = state.conversations[roomKey(room)];
  return conv ? putConv(state, f(conv)) : state;
}

function dropInvite(state: ChatState, room: string): ChatState {
  const invites = state.invites.filter((i) => !sameName(i.room, room));
  return invites.length === state.invites.length ? state : { ...state, invites };
}

export function roomReducer(state: ChatState, action: RoomAction): ChatState {
  switch (action.type) {
    case 'roomMeta':
      return withRoom(dropInvite(state, action.room), action.room, (c) => ({
        ...c,
        role: action.role !== undefined ? action.role : c.role,
        topic: action.topic ?? c.topic,
        isPrivate: action.isPrivate ?? c.isPrivate,
      }));
    case 'members':
      return withRoom(state, action.room, (c) => {
        if (action.members === null) return { ...c, membersError: action.error };
        const mine = action.members.find((m) => sameName(m.username, state.me));
        return { ...c, members: sortMembers(action.members), membersError: null, role: mine ? mine.role : c.role };
      });
    case 'muted':
      return withRoom(state, action.room, (c) => (c.muted === action.text ? c : { ...c, muted: action.text }));
    case 'invited': {
      const known = state.conversations[roomKey(action.room)]?.joined === true;
      if (known) return state;
      const rest = dropInvite(state, action.room);
      return { ...rest, invites: [...rest.invites, { room: action.room, by: action.by }] };
    }
    case 'dismissInvite': {
      const rest = dropInvite(state, action.room);
      return { ...rest, invites: [...rest.invites, { room: action.room, by: '', dismissed: true }] };
    }
    case 'removed': {
      const next = forget(dropInvite(state, action.room), roomKey(action.room));
      const rooms = next.rooms.filter((r) => !(sameName(r.name, action.room) && (action.reason === 'deleted' || r.private)));
      return { ...next, rooms, notice: removedText(action.room, action.by, action.reason, state.me) };
    }
  }
}

/** What a `system` message of a room changes for this user: its mute, its role, the room's topic. */
export function roomSystem(state: ChatState, msg: ChatMessage): ChatState {
  if (msg.type !== 'system' || msg.room === undefined) return state;
  const forMe = msg.user !== undefined && sameName(msg.user, state.me);
  const room = msg.room;
  if (forMe && msg.action === 'mute') return roomReducer(state, { type: 'muted', room, text: msg.content || describeError('muted') });
  if (forMe && msg.action === 'unmute') return roomReducer(state, { type: 'muted', room, text: null });
  return state;
}

/** Invitations to show: `room:invited` ones, and rooms listed with `invited: true` not joined. */
export function pendingInvites(state: Pick<ChatState, 'invites' | 'rooms' | 'conversations'>): Invite[] {
  const out = [...state.invites];
  for (const r of state.rooms) {
    if (r.invited && !out.some((i) => sameName(i.room, r.name))) out.push({ room: r.name, by: '' });
  }
  return out.filter((i) => !i.dismissed && state.conversations[roomKey(i.room)]?.joined !== true);
}

// ---- the session's side ----------------------------------------------------------

/** A room request the UI waits for; its answer also changes the state (roomAnswer). */
export type RoomOp =
  | { op: 'members' }
  | { op: 'invite' | 'kick' | 'unban' | 'unmute'; user: string }
  | { op: 'ban' | 'mute'; user: string; durationMs: number | null }
  | { op: 'role'; user: string; role: Role }
  | { op: 'topic'; topic: string }
  | { op: 'delete' };

export type RoomOpTag = { kind: 'roomOp'; room: string; req: RoomOp };

/** The event and payload of a room request. */
export function roomRequest(room: string, req: RoomOp): { event: string; args: unknown[] } {
  switch (req.op) {
    case 'members':
      return { event: 'room:members', args: [room] };
    case 'delete':
      return { event: 'room:delete', args: [room] };
    case 'topic':
      return { event: 'room:topic', args: [{ room, topic: req.topic }] };
    case 'role':
      return { event: 'room:role', args: [{ room, user: req.user, role: req.role }] };
    case 'ban':
    case 'mute': {
      const payload: Record<string, unknown> = { room, user: req.user };
      if (req.durationMs !== null) payload.durationMs = req.durationMs;
      return { event: `room:${req.op}`, args: [payload] };
    }
    default:
      return { event: `room:${req.op}`, args: [{ room, user: req.user }] };
  }
}

/** Sends a room request (the client's `roomOp` action). */
export function sendRoomOp(tx: Tx, room: string, req: RoomOp): void {
  const { event, args } = roomRequest(room, req);
  tx.request(event, args, { kind: 'roomOp', room, req });
}

export function roomAnswer(tx: Tx, tag: RoomOpTag, ack: AnyAck): void {
  const { room, req } = tag;
  if (req.op === 'members') {
    const members = ack.ok ? parseMembers(ack.members) : null;
    tx.apply({ type: 'members', room, members, error: ack.ok ? null : roomErrorText(ack) });
    return;
  }
  if (!ack.ok) return; // the form that asked shows the refusal
  if (req.op === 'delete') {
    tx.apply({ type: 'removed', room, by: tx.chat.me ?? '', reason: 'deleted' });
  } else if (req.op === 'topic') {
    tx.apply({ type: 'roomMeta', room, topic: req.topic });
  } else if (req.op !== 'invite' && tx.chat.conversations[roomKey(room)]) {
    sendRoomOp(tx, room, { op: 'members' }); // roles and the list changed
  }
}

/** System messages that change who is a member, or in which role. */
const MEMBERSHIP_ACTIONS = new Set(['kick', 'ban', 'role']);

/**
 * After a message arrives: a moderation message refreshes the members
 * panel's list when it has one, and a change of this user's own role
 * refreshes it anyway (the role comes with the list).
 */
export function afterSystem(tx: Tx, msg: ChatMessage): void {
  if (msg.type !== 'system' || msg.room === undefined || !MEMBERSHIP_ACTIONS.has(msg.action ?? '')) return;
  const conv = tx.chat.conversations[roomKey(msg.room)];
  const myRole = msg.action === 'role' && msg.user !== undefined && sameName(msg.user, tx.chat.me);
  if (conv && tx.session.link.connected && (conv.members !== null || myRole)) sendRoomOp(tx, msg.room, { op: 'members' });
}

/** The role, topic and privacy a room:create/room:join ack carries. */
export function metaFromAck(room: Record<string, unknown>): { role?: Role | null; topic?: string; isPrivate?: boolean } {
  const out: { role?: Role | null; topic?: string; isPrivate?: boolean } = {};
  if ('role' in room) out.role = parseRole(room.role);
  if (typeof room.topic === 'string') out.topic = room.topic;
  if (typeof room.private === 'boolean') out.isPrivate = room.private;
  return out;
}
