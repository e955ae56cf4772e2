import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../protocol.ts';
import { appendLive, dedupe, insertByTime, mergeLatest, mergeOlder } from './messages.ts';

// Ids are deliberately not sortable ("m" + a shuffled letter): order must
// come from the pages, never from comparing ids.
const IDS = ['q', 'b', 'x', 'a', 'k', 'z', 'c', 'm', 'e', 'r', 'f', 'w'];
function msg(i: number, extra: Partial<ChatMessage> = {}): ChatMessage {
  return {
    id: `m${IDS[i] ?? String(i)}`,
    type: 'room',
    room: 'general',
    from: i % 2 ? 'alice' : 'bob',
    content: `message ${i}`,
    timestamp: 1_700_000_000_000 + i * 1000,
    ...extra,
  };
}
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, k) => msg(a + k));
const ids = (l: readonly ChatMessage[]) => l.map((m) => m.content.replace('message ', ''));

describe('appendLive', () => {
  it('appends a new message at the end', () => {
    expect(ids(appendLive(range(0, 3), msg(3)))).toEqual(['0', '1', '2', '3']);
  });
  it('ignores a message already present and returns the same array', () => {
    const list = range(0, 3);
    expect(appendLive(list, msg(1))).toBe(list);
  });
});

describe('dedupe', () => {
  it('keeps the first of repeated ids in order', () => {
    expect(ids(dedupe([msg(0), msg(1), msg(0), msg(2), msg(1)]))).toEqual(['0', '1', '2']);
  });
});

describe('mergeOlder', () => {
  it('prepends an older page', () => {
    expect(ids(mergeOlder(range(5, 8), range(2, 5)))).toEqual(['2', '3', '4', '5', '6', '7']);
  });
  it('drops the part of the page we already hold', () => {
    expect(ids(mergeOlder(range(4, 8), range(2, 6)))).toEqual(['2', '3', '4', '5', '6', '7']);
  });
  it('handles an empty page', () => {
    expect(ids(mergeOlder(range(4, 6), []))).toEqual(['4', '5']);
  });
  it('handles an empty list', () => {
    expect(ids(mergeOlder([], range(0, 2)))).toEqual(['0', '1']);
  });
});

describe('mergeLatest', () => {
  it('takes the page as is when nothing is held', () => {
    const r = mergeLatest([], range(0, 3));
    expect(ids(r.messages)).toEqual(['0', '1', '2']);
    expect(r.keptOlder).toBe(false);
  });

  it('merges live messages received before the history page without duplicates', () => {
    // Two live messages arrived before room:history, which also contains them.
    const r = mergeLatest([msg(3), msg(4)], range(0, 5));
    expect(ids(r.messages)).toEqual(['0', '1', '2', '3', '4']);
  });

  it('keeps live messages newer than the page after it', () => {
    const r = mergeLatest([msg(3), msg(4), msg(5)], range(0, 4));
    expect(ids(r.messages)).toEqual(['0', '1', '2', '3', '4', '5']);
  });

  it('keeps older pages we scrolled to and says so', () => {
    const held = range(0, 6);
    const r = mergeLatest(held, range(3, 9));
    expect(ids(r.messages)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8']);
    expect(r.keptOlder).toBe(true);
  });

  it('is idempotent: refetching the same page after a reconnect changes nothing', () => {
    const once = mergeLatest([], range(0, 5)).messages;
    const twice = mergeLatest(once, range(0, 5)).messages;
    expect(ids(twice)).toEqual(ids(once));
  });

  it('replaces held messages when the page does not overlap (we missed more than a page)', () => {
    const r = mergeLatest(range(0, 3), range(6, 9));
    expect(ids(r.messages)).toEqual(['6', '7', '8']);
    expect(r.keptOlder).toBe(false);
  });

  it('keeps a newer live message even when the page does not overlap', () => {
    const r = mergeLatest([msg(0), msg(9)], range(5, 8));
    expect(ids(r.messages)).toEqual(['5', '6', '7', '9']);
  });

  it('places a held message the page does not know between overlaps by time', () => {
    // "3" was added locally from an ack; the page (server order) lacks it.
    const held = [msg(2), msg(3), msg(4)];
    const page = [msg(1), msg(2), msg(4), msg(5)];
    expect(ids(mergeLatest(held, page).messages)).toEqual(['1', '2', '3', '4', '5']);
  });

  it('keeps server order even when timestamps disagree', () => {
    const a = msg(0, { timestamp: 5000 });
    const b = msg(1, { timestamp: 4000 }); // clock skew between backends
    expect(ids(mergeLatest([], [a, b]).messages)).toEqual(['0', '1']);
    expect(ids(mergeLatest([b], [a, b]).messages)).toEqual(['0', '1']);
  });
});

describe('insertByTime', () => {
  it('inserts after the last message that is not newer', () => {
    const list = [msg(0), msg(2)];
    expect(ids(insertByTime(list, [msg(1)]))).toEqual(['0', '1', '2']);
  });
  it('skips ids already present', () => {
    expect(ids(insertByTime(range(0, 2), [msg(1)]))).toEqual(['0', '1']);
  });
});
