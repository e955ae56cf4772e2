import { describe, expect, it } from 'vitest';
import { applyTyping, clearTyping, describeTyping, pruneTyping, typingNames, TYPING_TTL_MS } from './typing.ts';

describe('typing indicator', () => {
  it('shows a typist until they stop', () => {
    let s = applyTyping({}, 'room:a', 'Alice', true, 0);
    expect(typingNames(s, 'room:a', 1)).toEqual(['Alice']);
    s = applyTyping(s, 'room:a', 'alice', false, 2); // same name, other case
    expect(typingNames(s, 'room:a', 3)).toEqual([]);
    expect(s).toEqual({});
  });

  it('expires a typist whose stop never came', () => {
    let s = applyTyping({}, 'room:a', 'Alice', true, 1000);
    s = applyTyping(s, 'room:a', 'Bob', true, 3000);
    expect(typingNames(s, 'room:a', 1000 + TYPING_TTL_MS - 1)).toEqual(['Alice', 'Bob']);
    const pruned = pruneTyping(s, 1000 + TYPING_TTL_MS);
    expect(typingNames(pruned, 'room:a', 0)).toEqual(['Bob']);
    expect(pruneTyping(pruned, 1000 + TYPING_TTL_MS)).toBe(pruned); // nothing more to prune
    expect(pruneTyping(pruned, 3000 + TYPING_TTL_MS)).toEqual({});
  });

  it('renews the expiry on each typing event', () => {
    let s = applyTyping({}, 'dm:bob', 'Bob', true, 0);
    s = applyTyping(s, 'dm:bob', 'Bob', true, 5000);
    expect(typingNames(pruneTyping(s, TYPING_TTL_MS + 1), 'dm:bob', 0)).toEqual(['Bob']);
  });

  it('keeps conversations apart and can clear one', () => {
    let s = applyTyping({}, 'room:a', 'Alice', true, 0);
    s = applyTyping(s, 'room:b', 'Bob', true, 0);
    expect(typingNames(s, 'room:b', 1)).toEqual(['Bob']);
    s = clearTyping(s, 'room:a');
    expect(Object.keys(s)).toEqual(['room:b']);
  });

  it('describes one, two, three and many typists', () => {
    expect(describeTyping([])).toBe('');
    expect(describeTyping(['Alice'])).toBe('Alice is typing...');
    expect(describeTyping(['Alice', 'Bob'])).toBe('Alice and Bob are typing...');
    expect(describeTyping(['A', 'B', 'C'])).toBe('A, B and C are typing...');
    expect(describeTyping(['A', 'B', 'C', 'D'])).toBe('A, B and 2 others are typing...');
  });
});
