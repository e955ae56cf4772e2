// Unread counters per conversation (rooms and private chats alike).

import type { ConvKey } from './names.ts';

export type UnreadState = Readonly<Record<ConvKey, number>>;

export function bumpUnread(state: UnreadState, conv: ConvKey, by = 1): UnreadState {
  return { ...state, [conv]: (state[conv] ?? 0) + by };
}

export function clearUnread(state: UnreadState, conv: ConvKey): UnreadState {
  if (!state[conv]) return state;
  const { [conv]: _gone, ...rest } = state;
  return rest;
}

export function totalUnread(state: UnreadState): number {
  return Object.values(state).reduce((a, b) => a + b, 0);
}

/** Sets a conversation's count as the server reported it (0 removes it). */
export function setUnread(state: UnreadState, conv: ConvKey, n: number): UnreadState {
  if (n <= 0) return clearUnread(state, conv);
  if (state[conv] === n) return state;
  return { ...state, [conv]: n };
}
