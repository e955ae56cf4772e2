// Merging a conversation's timeline: history pages (from `room:history` and
// `history:fetch`) and live `message:receive` events, by message id, never
// duplicating and keeping the order the server gave. Ids are opaque, so the
// only order we know is the order of the pages and of arrival; timestamps
// are used solely to place a message that no page has placed yet.

import type { ChatMessage } from '../protocol.ts';

/** Drops repeated ids inside one list, keeping the first occurrence. */
export function dedupe(list: readonly ChatMessage[]): ChatMessage[] {
  const seen = new Set<string>();
  const out: ChatMessage[] = [];
  for (const m of list) {
    if (!seen.has(m.id)) {
      seen.add(m.id);
      out.push(m);
    }
  }
  return out;
}

export function hasMessage(list: readonly ChatMessage[], id: string): boolean {
  return list.some((m) => m.id === id);
}

/**
 * Adds a live message at the end unless its id is already there (a message
 * replayed after recovery, or already merged from a history page).
 * Returns the same array when nothing changed.
 */
export function appendLive(list: readonly ChatMessage[], msg: ChatMessage): readonly ChatMessage[] {
  if (hasMessage(list, msg.id)) return list;
  return [...list, msg];
}

/**
 * Inserts messages that no page has placed (e.g. our own send confirmed by
 * its ack before the broadcast arrived) after the last message that is not
 * newer, so they land near where the server will put them.
 */
export function insertByTime(list: readonly ChatMessage[], extras: readonly ChatMessage[]): ChatMessage[] {
  const out = [...list];
  for (const m of extras) {
    if (hasMessage(out, m.id)) continue;
    let i = out.length;
    while (i > 0 && (out[i - 1] as ChatMessage).timestamp > m.timestamp) i--;
    out.splice(i, 0, m);
  }
  return out;
}

/** Merges a page that shares at least one id with the list, or returns null. */
function mergeOverlapping(list: readonly ChatMessage[], page: readonly ChatMessage[]): ChatMessage[] | null {
  const pageIds = new Set(page.map((m) => m.id));
  let first = -1;
  let last = -1;
  list.forEach((m, i) => {
    if (pageIds.has(m.id)) {
      if (first < 0) first = i;
      last = i;
    }
  });
  if (first < 0) return null;
  const before = list.slice(0, first);
  const middle = list.slice(first, last + 1).filter((m) => !pageIds.has(m.id));
  const after = list.slice(last + 1);
  return [...before, ...insertByTime(page, middle), ...after];
}

export interface MergeResult {
  messages: ChatMessage[];
  /** True when what we held before the page was kept (so its hasMore still applies). */
  keptOlder: boolean;
}

/**
 * Merges an older page (`history:fetch` with `before` = our oldest id):
 * it sits right before what we hold.
 */
export function mergeOlder(list: readonly ChatMessage[], pageIn: readonly ChatMessage[]): ChatMessage[] {
  const page = dedupe(pageIn);
  const merged = mergeOverlapping(list, page);
  if (merged) return merged;
  const ids = new Set(list.map((m) => m.id));
  return [...page.filter((m) => !ids.has(m.id)), ...list];
}

/**
 * Merges the newest page of a conversation (`room:history` on join, or a
 * refetch after a reconnect that was not recovered). When the page overlaps
 * what we hold, everything is kept. When it does not, we missed more than a
 * page: the older part is dropped (it would leave a hole that scrolling up
 * could never fill) and only messages at least as new as the page's end are
 * kept after it.
 */
export function mergeLatest(list: readonly ChatMessage[], pageIn: readonly ChatMessage[]): MergeResult {
  const page = dedupe(pageIn);
  if (list.length === 0) return { messages: page, keptOlder: false };
  if (page.length === 0) return { messages: [...list], keptOlder: true };
  const merged = mergeOverlapping(list, page);
  if (merged) {
    const firstPageId = (page[0] as ChatMessage).id;
    const keptOlder = merged[0]?.id !== firstPageId;
    return { messages: merged, keptOlder };
  }
  const lastTs = (page[page.length - 1] as ChatMessage).timestamp;
  const newer = list.filter((m) => m.timestamp >= lastTs);
  return { messages: insertByTime(page, newer), keptOlder: false };
}
