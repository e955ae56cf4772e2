// Messages that live (contract v2, issue #14): edits, deletes, reactions
// and replies. Three parts, all pure:
//  - helpers on one message or a timeline (replace by id, tombstone,
//    toggle a reaction, the reply excerpt, the emoji rule);
//  - `messageReducer`, the chat state's side: `message:update` replaces the
//    whole message wherever it is; a local change waiting for its ack keeps
//    the original in `optimistic` so a refusal can put it back, and the
//    refusal's text in `msgErrors` (shown next to the message);
//  - `msgIntent`/`msgAnswer`, the session's side: which request a user's
//    action sends and what its answer does.
// A server that does not know these events never answers: the ack times
// out and the message shows "Not supported by this server".

import { describeError, type ChatMessage, type Reaction, type ReplyRef } from '../protocol.ts';
import type { ChatState, Conversation } from './chat.ts';
import { conversationOf, putConv } from './convs.ts';
import { sameName, type ConvKey } from './names.ts';
import type { AnyAck, Tx } from './session.ts';

/** The emoji the picker offers first; anything else valid may be typed. */
export const QUICK_EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '🙏'] as const;
/** A reply's excerpt: the first this many code points of the original. */
export const EXCERPT_LENGTH = 100;

export type MsgOp = 'edit' | 'delete' | 'react';

const NO_REPLIES = 'Replies are not supported by this server.';

/** Where a message lives, as the contract's payloads name it. */
export function whereOf(conv: Pick<Conversation, 'kind' | 'name'>): { room: string } | { with: string } {
  return conv.kind === 'room' ? { room: conv.name } : { with: conv.name };
}

/** The key of one message in `optimistic` and `msgErrors`. */
export function msgKey(conv: ConvKey, id: string): string {
  return `${conv}\n${id}`;
}

/**
 * The contract's emoji rule: 1..16 code points, no white space, no control
 * character (Cc), no format character (Cf) other than the zero-width joiner.
 */
export function validEmoji(s: string): boolean {
  const points = [...s];
  if (points.length < 1 || points.length > 16) return false;
  return points.every((c) => c === '\u200d' || !/[\s\p{Cc}\p{Cf}]/u.test(c));
}

export function excerptOf(content: string): string {
  return [...content].slice(0, EXCERPT_LENGTH).join('');
}

/** What a reply to `m` carries, as the server will store it. */
export function replyRef(m: ChatMessage): ReplyRef {
  return { id: m.id, from: m.from, excerpt: m.deleted ? '' : excerptOf(m.content) };
}

/** The message as a tombstone: no content, no reply, no reactions, no edit time. */
export function tombstone(m: ChatMessage): ChatMessage {
  const t: ChatMessage = { id: m.id, type: m.type, from: m.from, content: '', timestamp: m.timestamp, deleted: true };
  if (m.room !== undefined) t.room = m.room;
  if (m.to !== undefined) t.to = m.to;
  return t;
}

/**
 * Replaces the message with `msg.id` by `msg` (same array when absent). A
 * tombstone also empties the excerpt of the replies to it that are loaded.
 */
export function replaceMessage(list: readonly ChatMessage[], msg: ChatMessage): readonly ChatMessage[] {
  const i = list.findIndex((m) => m.id === msg.id);
  if (i < 0) return list;
  const out = list.map((m, j) => (j === i ? msg : m));
  if (!msg.deleted) return out;
  return out.map((m) => (m.replyTo?.id === msg.id && m.replyTo.excerpt !== '' ? { ...m, replyTo: { ...m.replyTo, excerpt: '' } } : m));
}

export function hasReacted(r: Reaction, me: string | null): boolean {
  return r.users.some((u) => sameName(u, me));
}

/** Adds or removes `me`'s `emoji` on `m`: whether it is an add, and the message after it. */
export function toggleReaction(m: ChatMessage, emoji: string, me: string): { add: boolean; message: ChatMessage } {
  const list = m.reactions ?? [];
  const found = list.find((r) => r.emoji === emoji);
  const add = !found || !hasReacted(found, me);
  let reactions: Reaction[];
  if (add) {
    reactions = found
      ? list.map((r) => (r === found ? { ...r, count: r.count + 1, users: [...r.users, me] } : r))
      : [...list, { emoji, count: 1, users: [me] }];
  } else {
    reactions = list
      .map((r) => (r === found ? { ...r, count: r.count - 1, users: r.users.filter((u) => !sameName(u, me)) } : r))
      .filter((r) => r.count > 0);
  }
  const { reactions: _old, ...rest } = m;
  return { add, message: reactions.length === 0 ? rest : { ...rest, reactions } };
}

/** Who reacted, for a tooltip and a screen reader: "Alice, Bob and 3 others reacted with 👍". */
export function describeReaction(r: Reaction, me: string | null): string {
  const names = r.users.map((u) => (sameName(u, me) ? 'you' : u));
  const others = r.count - names.length;
  const all = others > 0 ? [...names, `${others} other${others === 1 ? '' : 's'}`] : names;
  const list = all.length <= 1 ? (all[0] ?? `${r.count}`) : `${all.slice(0, -1).join(', ')} and ${all[all.length - 1]}`;
  return `${list} reacted with ${r.emoji}`;
}

/** The text shown next to a message whose action the server refused or never answered. */
export function opErrorText(ack: { error: string; message?: string }): string {
  if (ack.error === 'timeout') return describeError('not_supported');
  if (ack.error === 'message_not_found') return 'That message does not exist any more (or is deleted).';
  if (ack.error === 'invalid_payload') return describeError('invalid_payload', ack.message);
  return describeError(ack.error, ack.message);
}

// ---- the chat state's side ---------------------------------------------------

export type MessageAction =
  /** `message:update`: the whole message as it is now. */
  | { type: 'updated'; message: ChatMessage }
  /** A local change sent and not yet answered: shown at once, the original kept. */
  | { type: 'optimistic'; key: ConvKey; message: ChatMessage }
  | { type: 'opDone'; key: ConvKey; id: string; editedAt?: number }
  | { type: 'opFailed'; key: ConvKey; id: string; error: string }
  /** Shows (or with null dismisses) the error line of one message. */
  | { type: 'msgError'; key: ConvKey; id: string; text: string | null }
  /** The message the composer of `key` replies to (null: none). */
  | { type: 'replyTo'; key: ConvKey; ref: ReplyRef | null };

function withMessage(state: ChatState, conv: Conversation, msg: ChatMessage): ChatState {
  const messages = replaceMessage(conv.messages, msg);
  const last = conv.last?.id === msg.id ? msg : conv.last;
  if (messages === conv.messages && last === conv.last) return state;
  return putConv(state, { ...conv, messages, last });
}

function dropKey<T>(map: Readonly<Record<string, T>>, k: string): Readonly<Record<string, T>> {
  if (!(k in map)) return map;
  const { [k]: _gone, ...rest } = map;
  return rest;
}

export function messageReducer(state: ChatState, action: MessageAction): ChatState {
  switch (action.type) {
    case 'updated': {
      const where = conversationOf(state.me, action.message);
      const conv = where && state.conversations[where.key];
      if (!where || !conv) return state;
      // The server's word wins over a local change still waiting for its ack.
      const k = msgKey(where.key, action.message.id);
      const next = withMessage(state, conv, action.message);
      const optimistic = dropKey(next.optimistic, k);
      return optimistic === next.optimistic ? next : { ...next, optimistic };
    }
    case 'optimistic': {
      const conv = state.conversations[action.key];
      const before = conv?.messages.find((m) => m.id === action.message.id);
      if (!conv || !before) return state;
      const k = msgKey(action.key, before.id);
      const optimistic = k in state.optimistic ? state.optimistic : { ...state.optimistic, [k]: before };
      return { ...withMessage(state, conv, action.message), optimistic, msgErrors: dropKey(state.msgErrors, k) };
    }
    case 'opDone': {
      const k = msgKey(action.key, action.id);
      if (!(k in state.optimistic)) return state; // message:update came first
      const conv = state.conversations[action.key];
      const now = conv?.messages.find((m) => m.id === action.id);
      let next: ChatState = { ...state, optimistic: dropKey(state.optimistic, k) };
      if (conv && now && action.editedAt !== undefined) next = withMessage(next, conv, { ...now, editedAt: action.editedAt });
      return next;
    }
    case 'opFailed': {
      const k = msgKey(action.key, action.id);
      const original = state.optimistic[k];
      const conv = state.conversations[action.key];
      const msgErrors = { ...state.msgErrors, [k]: action.error };
      let next: ChatState = { ...state, optimistic: dropKey(state.optimistic, k), msgErrors };
      if (original && conv) next = withMessage(next, conv, original);
      return next;
    }
    case 'msgError': {
      const k = msgKey(action.key, action.id);
      const msgErrors = action.text === null ? dropKey(state.msgErrors, k) : { ...state.msgErrors, [k]: action.text };
      return msgErrors === state.msgErrors ? state : { ...state, msgErrors };
    }
    case 'replyTo': {
      if (action.ref === null) {
        const replying = dropKey(state.replying, action.key);
        return replying === state.replying ? state : { ...state, replying };
      }
      // A v1 server ignores replyTo: say so instead of sending a reply without its quote.
      if (state.server === 'v1') {
        return { ...state, msgErrors: { ...state.msgErrors, [msgKey(action.key, action.ref.id)]: NO_REPLIES } };
      }
      return { ...state, replying: { ...state.replying, [action.key]: action.ref } };
    }
  }
}

// ---- the session's side ------------------------------------------------------

export type MessageIntent =
  | { type: 'editMessage'; key: ConvKey; id: string; content: string }
  | { type: 'deleteMessage'; key: ConvKey; id: string }
  | { type: 'react'; key: ConvKey; id: string; emoji: string };

export type MsgOpTag = { kind: 'msgOp'; key: ConvKey; id: string; op: MsgOp };

/** A user's action on one message: shown at once, sent, settled by the answer. */
export function msgIntent(tx: Tx, ev: MessageIntent): void {
  const conv = tx.chat.conversations[ev.key];
  const m = conv?.messages.find((x) => x.id === ev.id);
  const me = tx.chat.me;
  if (!conv || !m || me === null || m.deleted || m.type === 'system') return;
  const tag = (op: MsgOp): MsgOpTag => ({ kind: 'msgOp', key: ev.key, id: ev.id, op });
  const fail = (text: string) => tx.apply({ type: 'msgError', key: ev.key, id: ev.id, text });
  if (!tx.session.link.connected) return fail(describeError('offline'));
  const where = whereOf(conv);
  switch (ev.type) {
    case 'editMessage': {
      if (ev.content.trim() === '' || ev.content === m.content) return;
      tx.apply({ type: 'optimistic', key: ev.key, message: { ...m, content: ev.content } });
      tx.request('message:edit', [{ id: m.id, ...where, content: ev.content }], tag('edit'));
      return;
    }
    case 'deleteMessage':
      tx.apply({ type: 'optimistic', key: ev.key, message: tombstone(m) });
      tx.request('message:delete', [{ id: m.id, ...where }], tag('delete'));
      return;
    case 'react': {
      if (!validEmoji(ev.emoji)) return fail('That is not an emoji the server accepts (1 to 16 characters, no spaces).');
      const { add, message } = toggleReaction(m, ev.emoji, me);
      tx.apply({ type: 'optimistic', key: ev.key, message });
      tx.request(add ? 'reaction:add' : 'reaction:remove', [{ id: m.id, ...where, emoji: ev.emoji }], tag('react'));
      return;
    }
  }
}

export function msgAnswer(tx: Tx, tag: MsgOpTag, ack: AnyAck): void {
  if (ack.ok) {
    const editedAt = tag.op === 'edit' && typeof ack.editedAt === 'number' ? ack.editedAt : undefined;
    const done = { type: 'opDone', key: tag.key, id: tag.id } as const;
    tx.apply(editedAt === undefined ? done : { ...done, editedAt });
    return;
  }
  tx.apply({ type: 'opFailed', key: tag.key, id: tag.id, error: opErrorText(ack) });
}
