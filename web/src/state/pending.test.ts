import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../protocol.ts';
import {
  addPending,
  markFailed,
  markQueued,
  markSending,
  matchReceived,
  newClientId,
  queued,
  requeueInFlight,
  resolveAck,
  retryFailed,
  visiblePending,
  type PendingSend,
} from './pending.ts';

function pending(clientId: string, content = 'hi', conv = 'room:general'): PendingSend {
  return {
    clientId,
    conv,
    target: { kind: 'room', room: 'general' },
    content,
    createdAt: 1,
    status: 'queued',
    attempts: 0,
  };
}

const received = (id: string, content = 'hi'): ChatMessage => ({
  id,
  type: 'room',
  room: 'general',
  from: 'alice',
  content,
  timestamp: 10,
});

describe('newClientId', () => {
  it('is 32 hex digits and differs between calls', () => {
    const a = newClientId();
    const b = newClientId();
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(a).not.toBe(b);
  });
  it('uses the given randomness', () => {
    expect(newClientId((b) => b.fill(0xab))).toBe('ab'.repeat(16));
  });
});

describe('pending sends', () => {
  it('keeps its clientId through send, disconnect and retry', () => {
    let l = addPending([], pending('c1'));
    l = markSending(l, 'c1');
    expect(l[0]?.status).toBe('sending');
    expect(l[0]?.attempts).toBe(1);
    l = requeueInFlight(l); // the connection dropped before the ack
    expect(queued(l).map((p) => p.clientId)).toEqual(['c1']);
    l = markSending(l, 'c1');
    expect(l[0]?.clientId).toBe('c1');
    expect(l[0]?.attempts).toBe(2);
  });

  it('does not add the same clientId twice', () => {
    expect(addPending([pending('c1')], pending('c1'))).toHaveLength(1);
  });

  it('a failed send stays failed on requeue until the user retries', () => {
    let l = markFailed([pending('c1')], 'c1', 'too long');
    expect(l[0]?.error).toBe('too long');
    l = markQueued(l, 'c1');
    expect(l[0]?.status).toBe('failed');
    l = retryFailed(l, 'c1');
    expect(l[0]?.status).toBe('queued');
    expect(l[0]?.error).toBeUndefined();
  });

  it('matches a received own message to the oldest unmatched send with that content', () => {
    let l = [pending('c1', 'hi'), pending('c2', 'hi'), pending('c3', 'other')];
    l = [...matchReceived(l, 'room:general', received('m1', 'hi'))];
    expect(l.map((p) => p.matchedId)).toEqual(['m1', undefined, undefined]);
    l = [...matchReceived(l, 'room:general', received('m1', 'hi'))]; // replayed: no second match
    expect(l.map((p) => p.matchedId)).toEqual(['m1', undefined, undefined]);
    l = [...matchReceived(l, 'room:general', received('m2', 'hi'))];
    expect(l.map((p) => p.matchedId)).toEqual(['m1', 'm2', undefined]);
    expect(visiblePending(l, 'room:general').map((p) => p.clientId)).toEqual(['c3']);
  });

  it('does not match across conversations', () => {
    const l = matchReceived([pending('c1', 'hi', 'dm:bob')], 'room:general', received('m1'));
    expect(l[0]?.matchedId).toBeUndefined();
  });

  it('resolveAck removes the send and returns it', () => {
    const { pending: rest, settled } = resolveAck([pending('c1'), pending('c2')], 'c1');
    expect(settled?.clientId).toBe('c1');
    expect(rest.map((p) => p.clientId)).toEqual(['c2']);
    expect(resolveAck(rest, 'c1').settled).toBeNull();
  });
});
