// Who is typing where. A `typing` event with isTyping=true shows the person
// for a limited time: if their `false` never comes (they closed the tab, the
// packet was lost) the entry expires on its own.

import { foldName, type ConvKey } from './names.ts';

/** How long a typing notice lasts without being renewed. */
export const TYPING_TTL_MS = 6000;

export interface TypingEntry {
  name: string;
  until: number;
}

export type TypingState = Readonly<Record<ConvKey, Readonly<Record<string, TypingEntry>>>>;

export function applyTyping(
  state: TypingState,
  conv: ConvKey,
  from: string,
  isTyping: boolean,
  now: number,
  ttl: number = TYPING_TTL_MS,
): TypingState {
  const who = foldName(from);
  const current = state[conv] ?? {};
  if (isTyping) {
    return { ...state, [conv]: { ...current, [who]: { name: from, until: now + ttl } } };
  }
  if (!(who in current)) return state;
  const { [who]: _gone, ...rest } = current;
  if (Object.keys(rest).length === 0) {
    const { [conv]: _c, ...others } = state;
    return others;
  }
  return { ...state, [conv]: rest };
}

/** Drops expired entries; returns the same object when nothing expired. */
export function pruneTyping(state: TypingState, now: number): TypingState {
  let changed = false;
  const out: Record<ConvKey, Record<string, TypingEntry>> = {};
  for (const [conv, entries] of Object.entries(state)) {
    const kept: Record<string, TypingEntry> = {};
    for (const [who, e] of Object.entries(entries)) {
      if (e.until > now) kept[who] = e;
      else changed = true;
    }
    if (Object.keys(kept).length > 0) out[conv] = kept;
  }
  return changed ? out : state;
}

export function typingNames(state: TypingState, conv: ConvKey, now: number): string[] {
  const entries = state[conv];
  if (!entries) return [];
  return Object.values(entries)
    .filter((e) => e.until > now)
    .map((e) => e.name)
    .sort((a, b) => a.localeCompare(b));
}

export function hasTyping(state: TypingState): boolean {
  return Object.keys(state).length > 0;
}

/** "Alice is typing...", "Alice and Bob are typing...", "Alice, Bob and 2 others are typing...". */
export function describeTyping(names: readonly string[]): string {
  const [a, b] = names;
  if (a === undefined) return '';
  if (b === undefined) return `${a} is typing...`;
  if (names.length === 2) return `${a} and ${b} are typing...`;
  if (names.length === 3) return `${a}, ${b} and ${names[2] as string} are typing...`;
  return `${a}, ${b} and ${names.length - 2} others are typing...`;
}

/** Forgets every notice in one conversation (left the room). */
export function clearTyping(state: TypingState, conv: ConvKey): TypingState {
  if (!(conv in state)) return state;
  const { [conv]: _gone, ...rest } = state;
  return rest;
}
