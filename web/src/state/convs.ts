// Small steps on the chat state that several reducers share (chat.ts,
// messageOps.ts, rooms.ts): put one conversation, move one to the front of
// the recent list, forget one with everything attached to it, find the
// conversation a message belongs to.

import type { ChatMessage } from '../protocol.ts';
import type { ChatState, Conversation } from './chat.ts';
import { dmKey, roomKey, sameName, type ConvKey, type ConvKind } from './names.ts';
import { clearTyping } from './typing.ts';
import { clearUnread } from './unread.ts';

export function putConv(state: ChatState, conv: Conversation): ChatState {
  return { ...state, conversations: { ...state.conversations, [conv.key]: conv } };
}

/** Moves `key` to the front of the recent list (activity just happened there). */
export function touch(recent: readonly ConvKey[], key: ConvKey): readonly ConvKey[] {
  if (recent[0] === key) return recent;
  return [key, ...recent.filter((k) => k !== key)];
}

export function forget(state: ChatState, key: ConvKey): ChatState {
  const { [key]: _gone, ...conversations } = state.conversations;
  return {
    ...state,
    conversations,
    active: state.active === key ? null : state.active,
    unread: clearUnread(state.unread, key),
    pending: state.pending.filter((p) => p.conv !== key),
    typing: clearTyping(state.typing, key),
    recent: state.recent.filter((k) => k !== key),
  };
}


/** Which conversation a message belongs to, from this user's point of view. */
export function conversationOf(me: string | null, msg: ChatMessage): { key: ConvKey; kind: ConvKind; name: string } | null {
  if (msg.type !== 'private') {
    if (msg.room === undefined) return null;
    return { key: roomKey(msg.room), kind: 'room', name: msg.room };
  }
  const mine = sameName(msg.from, me);
  const peer = mine ? msg.to : msg.from;
  if (peer === undefined) return null;
  return { key: dmKey(peer), kind: 'dm', name: peer };
}

