import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../protocol.ts';
import {
  chatReducer,
  initialState,
  joinedRooms,
  previewOf,
  privateChats,
  type ChatAction,
  type ChatState,
  type Conversation,
} from './chat.ts';
import { conversationRows } from './lists.ts';
import { visiblePending, type PendingSend } from './pending.ts';
import { typingNames } from './typing.ts';
import { totalUnread } from './unread.ts';

const T0 = 1_700_000_000_000;
let seq = 0;
function roomMsg(id: string, from: string, content = `text ${id}`, room = 'general'): ChatMessage {
  return { id, type: 'room', room, from, content, timestamp: T0 + ++seq };
}
function dm(id: string, from: string, to: string, content = `dm ${id}`): ChatMessage {
  return { id, type: 'private', from, to, content, timestamp: T0 + ++seq };
}
function run(state: ChatState, ...actions: ChatAction[]): ChatState {
  return actions.reduce(chatReducer, state);
}
function signedIn(): ChatState {
  return run(
    initialState(),
    { type: 'signedIn', username: 'Alice' },
    { type: 'roomJoined', name: 'general', users: 2 },
  );
}
const contents = (s: ChatState, key: string) => s.conversations[key]?.messages.map((m) => m.content) ?? [];
function sendOf(clientId: string, content: string, room = 'general'): PendingSend {
  return {
    clientId,
    conv: `room:${room}`,
    target: { kind: 'room', room },
    content,
    createdAt: T0,
    status: 'queued',
    attempts: 0,
  };
}

describe('history and live messages', () => {
  it('merges room:history and live messages by id, in server order, without duplicates', () => {
    const m1 = roomMsg('x1', 'Bob');
    const m2 = roomMsg('x2', 'Bob');
    const m3 = roomMsg('x3', 'Bob');
    let s = signedIn();
    s = run(
      s,
      { type: 'received', message: m2 }, // live before the history page
      { type: 'history', key: 'room:general', name: 'general', messages: [m1, m2], hasMore: false, mode: 'latest' },
      { type: 'received', message: m3 },
      { type: 'received', message: m3 }, // replayed after recovery
      { type: 'history', key: 'room:general', name: 'general', messages: [m1, m2, m3], hasMore: false, mode: 'latest' },
    );
    expect(contents(s, 'room:general')).toEqual(['text x1', 'text x2', 'text x3']);
  });

  it('accepts room:history before the join ack', () => {
    const s = run(initialState(), { type: 'signedIn', username: 'Alice' }, {
      type: 'history',
      key: 'room:lobby',
      name: 'Lobby',
      messages: [roomMsg('a', 'Bob', 'hi', 'Lobby')],
      hasMore: true,
      mode: 'latest',
    });
    expect(s.conversations['room:lobby']?.messages).toHaveLength(1);
    expect(s.conversations['room:lobby']?.hasMore).toBe(true);
    expect(s.conversations['room:lobby']?.historyLoaded).toBe(true);
    expect(joinedRooms(run(s, { type: 'roomJoined', name: 'Lobby' }))).toEqual(['Lobby']);
  });

  it('prepends older pages and tracks hasMore and loading', () => {
    const older = [roomMsg('o1', 'Bob'), roomMsg('o2', 'Bob')];
    const latest = [roomMsg('l1', 'Bob'), roomMsg('l2', 'Bob')];
    let s = run(signedIn(), {
      type: 'history',
      key: 'room:general',
      name: 'general',
      messages: latest,
      hasMore: true,
      mode: 'latest',
    });
    s = run(s, { type: 'loadingOlder', key: 'room:general', value: true });
    expect(s.conversations['room:general']?.loadingOlder).toBe(true);
    s = run(s, { type: 'history', key: 'room:general', name: 'general', messages: older, hasMore: false, mode: 'older' });
    expect(contents(s, 'room:general')).toEqual(['text o1', 'text o2', 'text l1', 'text l2']);
    expect(s.conversations['room:general']?.hasMore).toBe(false);
    expect(s.conversations['room:general']?.loadingOlder).toBe(false);
    // A refetch of the latest page after a reconnect keeps what was scrolled in.
    s = run(s, { type: 'history', key: 'room:general', name: 'general', messages: latest, hasMore: true, mode: 'latest' });
    expect(contents(s, 'room:general')).toHaveLength(4);
    expect(s.conversations['room:general']?.hasMore).toBe(false);
  });

  it('files private messages under the peer, whoever sent them', () => {
    const s = run(
      signedIn(),
      { type: 'received', message: dm('p1', 'Bob', 'Alice') },
      { type: 'received', message: dm('p2', 'ALICE', 'bob') }, // own, other spelling
    );
    expect(contents(s, 'dm:bob')).toEqual(['dm p1', 'dm p2']);
    expect(s.conversations['dm:bob']?.name).toBe('Bob');
    expect(privateChats(s).map((c) => c.name)).toEqual(['Bob']);
  });
});

describe('unread counters', () => {
  it('counts messages from others in conversations not open, per room and per private chat', () => {
    let s = run(
      signedIn(),
      { type: 'received', message: roomMsg('1', 'Bob') },
      { type: 'received', message: roomMsg('2', 'Bob') },
      { type: 'received', message: dm('3', 'Carol', 'Alice') },
    );
    expect(s.unread).toEqual({ 'room:general': 2, 'dm:carol': 1 });
    expect(totalUnread(s.unread)).toBe(3);
    s = run(s, { type: 'open', key: 'room:general' });
    expect(s.unread).toEqual({ 'dm:carol': 1 });
    s = run(s, { type: 'received', message: roomMsg('4', 'Bob') }); // open: not unread
    expect(s.unread['room:general']).toBeUndefined();
    s = run(s, { type: 'openDm', peer: 'carol' });
    expect(totalUnread(s.unread)).toBe(0);
  });

  it('does not count own messages, duplicates or history', () => {
    const m = roomMsg('1', 'Bob');
    const s = run(
      signedIn(),
      { type: 'received', message: roomMsg('0', 'alice') },
      { type: 'received', message: m },
      { type: 'received', message: m },
      { type: 'history', key: 'room:general', name: 'general', messages: [roomMsg('9', 'Bob')], hasMore: false, mode: 'latest' },
    );
    expect(s.unread).toEqual({ 'room:general': 1 });
  });

  it('forgets a room on leave', () => {
    let s = run(signedIn(), { type: 'received', message: roomMsg('1', 'Bob') }, { type: 'open', key: 'room:general' });
    s = run(s, { type: 'open', key: null }, { type: 'received', message: roomMsg('2', 'Bob') });
    expect(s.unread['room:general']).toBe(1);
    s = run(s, { type: 'roomLeft', name: 'General' });
    expect(s.unread).toEqual({});
    expect(s.conversations['room:general']).toBeUndefined();
    expect(joinedRooms(s)).toEqual([]);
  });
});

describe('typing', () => {
  it('shows others typing and clears them when their message arrives', () => {
    let s = run(signedIn(), { type: 'typing', event: { room: 'general', from: 'Bob', isTyping: true }, now: T0 });
    expect(typingNames(s.typing, 'room:general', T0)).toEqual(['Bob']);
    s = run(s, { type: 'received', message: roomMsg('1', 'bob') });
    expect(typingNames(s.typing, 'room:general', T0)).toEqual([]);
  });

  it('files private typing under the sender and ignores our own', () => {
    const s = run(
      signedIn(),
      { type: 'typing', event: { from: 'Carol', isTyping: true }, now: T0 },
      { type: 'typing', event: { room: 'general', from: 'alice', isTyping: true }, now: T0 },
    );
    expect(Object.keys(s.typing)).toEqual(['dm:carol']);
  });

  it('expires on tick and is cleared by a disconnect', () => {
    let s = run(signedIn(), { type: 'typing', event: { room: 'general', from: 'Bob', isTyping: true }, now: T0 });
    expect(run(s, { type: 'tick', now: T0 + 60_000 }).typing).toEqual({});
    s = run(s, { type: 'disconnected' });
    expect(s.typing).toEqual({});
  });
});

describe('pending sends and acks', () => {
  it('shows a send until its ack, then the stored message once', () => {
    let s = run(signedIn(), { type: 'send', pending: sendOf('c1', 'hello') }, { type: 'sending', clientId: 'c1' });
    expect(visiblePending(s.pending, 'room:general')).toHaveLength(1);
    s = run(s, { type: 'sendAcked', clientId: 'c1', id: 'srv1', timestamp: T0 + 100 });
    expect(s.pending).toEqual([]);
    expect(contents(s, 'room:general')).toEqual(['hello']);
    // The broadcast arrives after the ack: no duplicate.
    s = run(s, { type: 'received', message: { ...roomMsg('srv1', 'Alice', 'hello'), timestamp: T0 + 100 } });
    expect(contents(s, 'room:general')).toEqual(['hello']);
  });

  it('hides the send as soon as its broadcast arrives before the ack', () => {
    let s = run(signedIn(), { type: 'send', pending: sendOf('c1', 'hello') }, { type: 'sending', clientId: 'c1' });
    s = run(s, { type: 'received', message: roomMsg('srv1', 'Alice', 'hello') });
    expect(visiblePending(s.pending, 'room:general')).toEqual([]);
    expect(contents(s, 'room:general')).toEqual(['hello']);
    s = run(s, { type: 'sendAcked', clientId: 'c1', id: 'srv1', timestamp: T0 });
    expect(s.pending).toEqual([]);
    expect(contents(s, 'room:general')).toEqual(['hello']);
  });

  it('a mismatched guess is corrected by the ack (same text sent from another tab)', () => {
    let s = run(signedIn(), { type: 'send', pending: sendOf('c1', 'ok') }, { type: 'sending', clientId: 'c1' });
    s = run(s, { type: 'received', message: roomMsg('other-tab', 'Alice', 'ok') });
    s = run(s, { type: 'sendAcked', clientId: 'c1', id: 'mine', timestamp: T0 + 1000 });
    expect(s.conversations['room:general']?.messages.map((m) => m.id)).toEqual(['other-tab', 'mine']);
  });

  it('a send interrupted by a disconnect is retried with the same clientId and delivered once', () => {
    let s = run(signedIn(), { type: 'send', pending: sendOf('c1', 'typed offline') }, { type: 'sending', clientId: 'c1' });
    s = run(s, { type: 'disconnected' });
    expect(s.pending.map((p) => [p.clientId, p.status])).toEqual([['c1', 'queued']]);
    // Back online: the server had stored the first attempt; it replays the
    // broadcast and acks the retry with the first id.
    s = run(s, { type: 'sending', clientId: 'c1' });
    expect(s.pending[0]?.attempts).toBe(2);
    s = run(
      s,
      { type: 'received', message: roomMsg('srv1', 'Alice', 'typed offline') },
      { type: 'history', key: 'room:general', name: 'general', messages: [roomMsg('srv1', 'Alice', 'typed offline')], hasMore: false, mode: 'latest' },
      { type: 'sendAcked', clientId: 'c1', id: 'srv1', timestamp: T0 },
    );
    expect(contents(s, 'room:general')).toEqual(['typed offline']);
    expect(s.pending).toEqual([]);
  });

  it('a refused send stays visible as failed until retried or discarded', () => {
    let s = run(signedIn(), { type: 'send', pending: sendOf('c1', 'x'.repeat(5000)) });
    s = run(s, { type: 'sendFailed', clientId: 'c1', error: 'too long' });
    expect(s.pending[0]?.status).toBe('failed');
    s = run(s, { type: 'disconnected' });
    expect(s.pending[0]?.status).toBe('failed'); // not retried behind the user's back
    s = run(s, { type: 'sendRetry', clientId: 'c1' });
    expect(s.pending[0]?.status).toBe('queued');
    s = run(s, { type: 'sendDiscard', clientId: 'c1' });
    expect(s.pending).toEqual([]);
  });

  it('an ack for an unknown clientId changes nothing', () => {
    const s = signedIn();
    expect(run(s, { type: 'sendAcked', clientId: 'nope', id: 'x', timestamp: 0 }).conversations).toEqual(s.conversations);
  });
});

describe('sign-out and restore', () => {
  it('restores rooms and chats from a saved session and resets on sign-out', () => {
    let s = initialState({ username: 'Alice', rooms: ['general'], dms: ['Bob'], active: 'room:general' });
    expect(joinedRooms(s)).toEqual(['general']);
    expect(s.active).toBe('room:general');
    s = run(s, { type: 'users', users: [{ id: '1', username: 'Bob', isActive: true }] }, { type: 'signedOut' });
    expect(s.conversations).toEqual({});
    expect(s.users).toHaveLength(1);
  });
});

describe('conversation list (v2)', () => {
  const list = (s: ChatState, since = s.joinGen): ChatState =>
    run(s, {
      type: 'conversations',
      since,
      list: [
        { type: 'private', with: 'Bob', unread: 2, lastMessage: dm('b9', 'Bob', 'Alice', 'see you') },
        { type: 'room', room: 'general', role: 'member', unread: 0, lastMessage: roomMsg('g9', 'Carol', 'morning') },
        { type: 'private', with: 'Dave', unread: 0, lastMessage: null },
      ],
    });

  it('takes the server’s order, counts and previews; offline peers included', () => {
    const s = list(run(initialState(), { type: 'signedIn', username: 'Alice' }));
    expect(s.server).toBe('v2');
    expect(conversationRows(s).map((r) => [r.name, r.unread, r.online, r.preview?.from, r.preview?.text])).toEqual([
      ['Bob', 2, false, '', 'see you'],
      ['general', 0, false, 'Carol', 'morning'],
      ['Dave', 0, false, undefined, undefined],
    ]);
    expect(totalUnread(s.unread)).toBe(2);
    // Nothing unread in #general: read up to its newest message.
    expect(s.conversations['room:general']?.markedId).toBe('g9');
  });

  it('a message moves its conversation first, updates the preview, and counts unless open or ours', () => {
    let s = list(run(initialState(), { type: 'signedIn', username: 'Alice' }));
    s = run(s, { type: 'open', key: 'room:general' });
    s = run(s, { type: 'received', message: dm('d1', 'Dave', 'Alice', 'hello from Dave') });
    expect(conversationRows(s).map((r) => [r.name, r.unread])).toEqual([
      ['Dave', 1],
      ['Bob', 2],
      ['general', 0],
    ]);
    s = run(s, { type: 'received', message: roomMsg('g10', 'Carol', 'in the open room') });
    expect(conversationRows(s)[0]).toMatchObject({ name: 'general', unread: 0, preview: { from: 'Carol', text: 'in the open room' } });
    // Our own message (from another tab) marks its conversation read.
    s = run(s, { type: 'received', message: dm('b10', 'Alice', 'Bob', 'on my way') });
    expect(conversationRows(s).map((r) => [r.name, r.unread, r.preview?.from])).toEqual([
      ['Bob', 0, 'You'],
      ['general', 0, 'Carol'],
      ['Dave', 1, ''],
    ]);
    expect(s.conversations['dm:bob']?.markedId).toBe('b10');
  });

  it('read:update from another tab sets the count; in the open conversation it stays 0', () => {
    let s = list(run(initialState(), { type: 'signedIn', username: 'Alice' }));
    s = run(s, { type: 'readState', key: 'dm:bob', lastReadId: 'b8', unread: 1 });
    expect(s.unread['dm:bob']).toBe(1);
    s = run(s, { type: 'readState', key: 'dm:bob', lastReadId: 'b9', unread: 0 });
    expect(s.unread['dm:bob']).toBeUndefined();
    expect(s.conversations['dm:bob']?.markedId).toBe('b9');
    s = run(s, { type: 'open', key: 'dm:dave' }, { type: 'readState', key: 'dm:dave', lastReadId: null, unread: 3 });
    expect(s.unread['dm:dave']).toBeUndefined();
  });

  it('drops rooms the server no longer lists, but not one joined after the list was asked for', () => {
    let s = run(initialState({ rooms: ['old', 'general'], dms: ['Zed'], active: 'room:old' }), { type: 'signedIn', username: 'Alice' });
    const since = s.joinGen;
    s = run(s, { type: 'roomJoined', name: 'fresh' });
    s = list(s, since);
    expect(Object.keys(s.conversations).sort()).toEqual(['dm:bob', 'dm:dave', 'dm:zed', 'room:fresh', 'room:general']);
    expect(s.active).toBeNull();
    // Conversations the server does not know yet (just opened) stay first.
    expect(conversationRows(s).map((r) => r.name)).toEqual(['fresh', 'Bob', 'general', 'Dave', 'Zed']);
  });

  it('the preview is the newer of the list’s message and the loaded timeline', () => {
    let s = list(run(initialState(), { type: 'signedIn', username: 'Alice' }));
    const older = roomMsg('g1', 'Bob', 'older');
    s = run(s, { type: 'history', key: 'room:general', name: 'general', messages: [older], hasMore: true, mode: 'latest' });
    expect(previewOf(s.conversations['room:general'] as Conversation)?.content).toBe('morning');
    s = run(s, { type: 'history', key: 'room:general', name: 'general', messages: [older, roomMsg('g9', 'Carol', 'morning')], hasMore: true, mode: 'latest' });
    s = run(s, { type: 'sendAcked', clientId: 'none', id: 'x', timestamp: 0 });
    expect(previewOf(s.conversations['room:general'] as Conversation)?.id).toBe('g9');
  });
});
