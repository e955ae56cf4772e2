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
