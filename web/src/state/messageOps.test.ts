// Messages that live (v2, issue #14): the pure helpers, the chat state's
// message:update merging and optimistic changes, and the requests the
// session reducer sends for edits, deletes, reactions and replies.
import { describe, expect, it } from 'vitest';
import { parseMessage, type ChatMessage } from '../protocol.ts';
import { chatReducer, initialState, type ChatAction, type ChatState } from './chat.ts';
import { describeReaction, excerptOf, replaceMessage, replyRef, toggleReaction, validEmoji } from './messageOps.ts';
import { conversationRows } from './lists.ts';
import { EMPTY_SESSION } from './saved.ts';
import { initialClientState, step, type AnyAck, type ClientState, type Command, type SessionEvent } from './session.ts';

const T0 = 1_700_000_000_000;
const msg = (id: string, from: string, content = `text ${id}`, extra: Partial<ChatMessage> = {}): ChatMessage => ({
  id,
  type: 'room',
  room: 'general',
  from,
  content,
  timestamp: T0 + Number(id.replace(/\D/g, '') || 0),
  ...extra,
});
const run = (s: ChatState, ...a: ChatAction[]) => a.reduce(chatReducer, s);
function withHistory(...messages: ChatMessage[]): ChatState {
  return run(
    initialState(),
    { type: 'signedIn', username: 'Alice' },
    { type: 'roomJoined', name: 'general' },
    { type: 'history', key: 'room:general', name: 'general', messages, hasMore: false, mode: 'latest' },
  );
}
const messagesOf = (s: ChatState) => s.conversations['room:general']?.messages ?? [];
const byId = (s: ChatState, id: string) => messagesOf(s).find((m) => m.id === id);

describe('messageOps helpers', () => {
  it('validates emoji as the contract does', () => {
    expect(validEmoji('👍')).toBe(true);
    expect(validEmoji('👩‍💻')).toBe(true); // joined by U+200D
    expect(validEmoji(':+1:')).toBe(true);
    expect(validEmoji('')).toBe(false);
    expect(validEmoji('a b')).toBe(false);
    expect(validEmoji('x\u0007')).toBe(false);
    expect(validEmoji('x\u200b')).toBe(false); // Cf other than ZWJ
    expect(validEmoji('😀'.repeat(16))).toBe(true);
    expect(validEmoji('😀'.repeat(17))).toBe(false);
  });

  it('makes a reply excerpt of 100 code points, empty for a tombstone', () => {
    expect([...excerptOf('😀'.repeat(150))]).toHaveLength(100);
    expect(replyRef(msg('m1', 'Bob', 'hi'))).toEqual({ id: 'm1', from: 'Bob', excerpt: 'hi' });
    expect(replyRef(msg('m1', 'Bob', '', { deleted: true })).excerpt).toBe('');
  });

  it('toggles a reaction on and off, keeping others', () => {
    const m = msg('m1', 'Bob', 'x', { reactions: [{ emoji: '👍', count: 1, users: ['Bob'] }] });
    const on = toggleReaction(m, '👍', 'Alice');
    expect(on.add).toBe(true);
    expect(on.message.reactions).toEqual([{ emoji: '👍', count: 2, users: ['Bob', 'Alice'] }]);
    const off = toggleReaction(on.message, '👍', 'ALICE');
    expect(off.add).toBe(false);
    expect(off.message.reactions).toEqual([{ emoji: '👍', count: 1, users: ['Bob'] }]);
    const last = toggleReaction(toggleReaction(msg('m2', 'Bob'), '🎉', 'Alice').message, '🎉', 'Alice');
    expect(last.message.reactions).toBeUndefined();
  });

  it('says who reacted', () => {
    expect(describeReaction({ emoji: '👍', count: 1, users: ['Alice'] }, 'Alice')).toBe('you reacted with 👍');
    expect(describeReaction({ emoji: '👍', count: 5, users: ['Bob', 'Carol'] }, 'Alice')).toBe('Bob, Carol and 3 others reacted with 👍');
  });

  it('a tombstone replaces a message and empties the excerpts of loaded replies to it', () => {
    const list = [msg('m1', 'Bob'), msg('m2', 'Alice', 'yes', { replyTo: { id: 'm1', from: 'Bob', excerpt: 'text m1' } })];
    const out = replaceMessage(list, { ...msg('m1', 'Bob', ''), deleted: true });
    expect(out[0]?.deleted).toBe(true);
    expect(out[1]?.replyTo).toEqual({ id: 'm1', from: 'Bob', excerpt: '' });
    expect(replaceMessage(list, msg('zz', 'Bob'))).toBe(list);
  });

  it('parses the v2 message fields; a tombstone keeps no content, reply or reactions', () => {
    const wire = {
      ...msg('m3', 'Bob', 'edited'),
      editedAt: T0 + 9,
      replyTo: { id: 'm1', from: 'Alice', excerpt: 'hi' },
      reactions: [{ emoji: '👍', count: 2, users: ['Alice', 'Carol'] }, { emoji: 3 }],
    };
    expect(parseMessage(wire)).toEqual({ ...wire, reactions: [{ emoji: '👍', count: 2, users: ['Alice', 'Carol'] }] });
    expect(parseMessage({ ...wire, deleted: true })).toEqual({ ...msg('m3', 'Bob', ''), deleted: true });
    const sys = parseMessage({ id: 's1', type: 'system', room: 'general', from: 'Alice', action: 'kick', user: 'Bob', content: 'Alice removed Bob.', timestamp: T0 });
    expect(sys).toMatchObject({ action: 'kick', user: 'Bob', from: 'Alice' });
  });
});

describe('chat state: message:update', () => {
  it('replaces the whole message in history and in the preview', () => {
    let s = withHistory(msg('m1', 'Bob', 'old'), msg('m2', 'Bob'));
    s = run(s, { type: 'received', message: msg('m3', 'Bob', 'live') });
    s = run(s, { type: 'updated', message: msg('m1', 'Bob', 'new', { editedAt: T0 + 50 }) });
    expect(byId(s, 'm1')).toEqual(msg('m1', 'Bob', 'new', { editedAt: T0 + 50 }));
    s = run(s, { type: 'updated', message: { ...msg('m3', 'Bob', ''), deleted: true } });
    expect(byId(s, 'm3')?.deleted).toBe(true);
    expect(s.conversations['room:general']?.last?.deleted).toBe(true);
    expect(messagesOf(s).map((m) => m.id)).toEqual(['m1', 'm2', 'm3']);
  });

  it('updates private conversations too, and ignores messages it does not hold', () => {
    let s = run(initialState(), { type: 'signedIn', username: 'Alice' });
    const d: ChatMessage = { id: 'd1', type: 'private', from: 'Bob', to: 'Alice', content: 'hey', timestamp: T0 };
    s = run(s, { type: 'received', message: d });
    s = run(s, { type: 'updated', message: { ...d, reactions: [{ emoji: '👍', count: 1, users: ['Alice'] }] } });
    expect(s.conversations['dm:bob']?.messages[0]?.reactions?.[0]?.emoji).toBe('👍');
    expect(run(s, { type: 'updated', message: { ...d, id: 'other' } })).toBe(s);
  });

  it('an optimistic change is put back when refused, with the error next to the message', () => {
    let s = withHistory(msg('m1', 'Alice', 'mine'));
    s = run(s, { type: 'optimistic', key: 'room:general', message: msg('m1', 'Alice', 'changed') });
    expect(byId(s, 'm1')?.content).toBe('changed');
    s = run(s, { type: 'opFailed', key: 'room:general', id: 'm1', error: 'No.' });
    expect(byId(s, 'm1')?.content).toBe('mine');
    expect(s.msgErrors['room:general\nm1']).toBe('No.');
    s = run(s, { type: 'msgError', key: 'room:general', id: 'm1', text: null });
    expect(s.msgErrors).toEqual({});
  });

  it('a v1 server gets no reply: the message says replies are not supported', () => {
    const s = run({ ...withHistory(msg('m1', 'Bob')), server: 'v1' }, { type: 'replyTo', key: 'room:general', ref: { id: 'm1', from: 'Bob', excerpt: 'x' } });
    expect(s.replying).toEqual({});
    expect(s.msgErrors['room:general\nm1']).toBe('Replies are not supported by this server.');
  });

  it('a confirmed edit keeps the new content and takes editedAt from the ack; a message:update wins over both', () => {
    let s = withHistory(msg('m1', 'Alice', 'mine'));
    s = run(s, { type: 'optimistic', key: 'room:general', message: msg('m1', 'Alice', 'changed') });
    const confirmed = run(s, { type: 'opDone', key: 'room:general', id: 'm1', editedAt: T0 + 7 });
    expect(byId(confirmed, 'm1')).toMatchObject({ content: 'changed', editedAt: T0 + 7 });
    expect(confirmed.optimistic).toEqual({});
    // The update came before the ack: the ack changes nothing, a late refusal does not revert it.
    const updated = run(s, { type: 'updated', message: msg('m1', 'Alice', 'server', { editedAt: T0 + 8 }) });
    expect(run(updated, { type: 'opDone', key: 'room:general', id: 'm1', editedAt: T0 + 7 })).toBe(updated);
    expect(byId(run(updated, { type: 'opFailed', key: 'room:general', id: 'm1', error: 'x' }), 'm1')?.content).toBe('server');
  });
});

// ---- the session's side ----

type Req = Extract<Command, { type: 'request' }>;
function feed(state: ClientState, ...events: SessionEvent[]) {
  const commands: Command[] = [];
  for (const ev of events) {
    const r = step(state, ev);
    state = r.state;
    commands.push(...r.commands);
  }
  return { state, commands };
}
const reqs = (c: Command[]) => c.filter((x): x is Req => x.type === 'request');
const answer = (r: Req, ack: AnyAck): SessionEvent => ({ type: 'answer', tag: r.tag, ack });

/** Alice signed in, in #general with two messages, connected. */
function ready(): ClientState {
  let s = initialClientState(EMPTY_SESSION);
  s = feed(s, { type: 'start', online: true }, { type: 'connected', recovered: false }).state;
  const r = feed(s, { type: 'signIn', name: 'Alice' });
  const join = reqs(r.commands).find((x) => x.event === 'user:join') as Req;
  s = feed(r.state, answer(join, { ok: true, user: { id: 'u1', username: 'Alice' } })).state;
  const history: ChatAction = {
    type: 'history',
    key: 'room:general',
    name: 'general',
    messages: [msg('m1', 'Bob', 'hello'), msg('m2', 'Alice', 'mine', { reactions: [{ emoji: '👍', count: 1, users: ['Alice'] }] })],
    hasMore: false,
    mode: 'latest',
  };
  s = feed(s, { type: 'chat', action: { type: 'roomJoined', name: 'general' } }, { type: 'chat', action: history }).state;
  return s;
}

describe('session: actions on a message', () => {
  it('edit sends message:edit with the room, shows the change at once and settles on the ack', () => {
    const r = feed(ready(), { type: 'editMessage', key: 'room:general', id: 'm2', content: 'fixed' });
    const [edit] = reqs(r.commands);
    expect(edit?.event).toBe('message:edit');
    expect(edit?.args).toEqual([{ id: 'm2', room: 'general', content: 'fixed' }]);
    expect(r.state.chat.conversations['room:general']?.messages[1]?.content).toBe('fixed');
    const done = feed(r.state, answer(edit as Req, { ok: true, editedAt: T0 + 99 })).state;
    expect(done.chat.conversations['room:general']?.messages[1]).toMatchObject({ content: 'fixed', editedAt: T0 + 99 });
  });

  it('a server that never answers: the change is undone and "not supported" shown next to the message', () => {
    const r = feed(ready(), { type: 'deleteMessage', key: 'room:general', id: 'm2' });
    const [del] = reqs(r.commands);
    expect(del?.event).toBe('message:delete');
    expect(r.state.chat.conversations['room:general']?.messages[1]?.deleted).toBe(true);
    const s = feed(r.state, answer(del as Req, { ok: false, error: 'timeout' })).state;
    expect(s.chat.conversations['room:general']?.messages[1]?.content).toBe('mine');
    expect(s.chat.msgErrors['room:general\nm2']).toMatch(/not supported by this server/i);
  });

  it('forbidden and message_not_found are shown next to the message', () => {
    const r = feed(ready(), { type: 'editMessage', key: 'room:general', id: 'm2', content: 'x' });
    const s = feed(r.state, answer(reqs(r.commands)[0] as Req, { ok: false, error: 'forbidden' })).state;
    expect(s.chat.msgErrors['room:general\nm2']).toBe('You are not allowed to do that.');
    const r2 = feed(ready(), { type: 'react', key: 'room:general', id: 'm1', emoji: '🎉' });
    const s2 = feed(r2.state, answer(reqs(r2.commands)[0] as Req, { ok: false, error: 'limit_reached' })).state;
    expect(s2.chat.msgErrors['room:general\nm1']).toMatch(/reactions/);
    expect(s2.chat.conversations['room:general']?.messages[0]?.reactions).toBeUndefined();
  });

  it('reacting toggles: add when not reacted, remove when reacted; an invalid emoji is not sent', () => {
    const add = feed(ready(), { type: 'react', key: 'room:general', id: 'm1', emoji: '🎉' });
    expect(reqs(add.commands).map((x) => [x.event, x.args[0]])).toEqual([['reaction:add', { id: 'm1', room: 'general', emoji: '🎉' }]]);
    const remove = feed(ready(), { type: 'react', key: 'room:general', id: 'm2', emoji: '👍' });
    expect(reqs(remove.commands)[0]?.event).toBe('reaction:remove');
    expect(remove.state.chat.conversations['room:general']?.messages[1]?.reactions).toBeUndefined();
    const bad = feed(ready(), { type: 'react', key: 'room:general', id: 'm1', emoji: 'a b' });
    expect(reqs(bad.commands)).toEqual([]);
    expect(bad.state.chat.msgErrors['room:general\nm1']).toMatch(/emoji/);
  });

  it('in a private conversation the requests name the peer with `with`', () => {
    let s = ready();
    const d: ChatMessage = { id: 'd1', type: 'private', from: 'Bob', to: 'Alice', content: 'hey', timestamp: T0 };
    s = feed(s, { type: 'chat', action: { type: 'received', message: d } }).state;
    const r = feed(s, { type: 'react', key: 'dm:bob', id: 'd1', emoji: '👍' }, { type: 'deleteMessage', key: 'dm:bob', id: 'd1' });
    expect(reqs(r.commands).map((x) => [x.event, x.args[0]])).toEqual([
      ['reaction:add', { id: 'd1', with: 'Bob', emoji: '👍' }],
      ['message:delete', { id: 'd1', with: 'Bob' }],
    ]);
  });

  it('nothing is sent for a tombstone, an unchanged edit or an empty one', () => {
    let s = ready();
    s = feed(s, { type: 'chat', action: { type: 'updated', message: { ...msg('m1', 'Bob', ''), deleted: true } } }).state;
    expect(reqs(feed(s, { type: 'react', key: 'room:general', id: 'm1', emoji: '👍' }).commands)).toEqual([]);
    expect(reqs(feed(s, { type: 'editMessage', key: 'room:general', id: 'm2', content: 'mine' }).commands)).toEqual([]);
    expect(reqs(feed(s, { type: 'editMessage', key: 'room:general', id: 'm2', content: '  ' }).commands)).toEqual([]);
  });

  it('a reply is sent with replyTo and shown with its excerpt once acked', () => {
    let s = ready();
    s = feed(s, { type: 'chat', action: { type: 'replyTo', key: 'room:general', ref: { id: 'm1', from: 'Bob', excerpt: 'hello' } } }).state;
    const r = feed(s, { type: 'send', conv: 'room:general', content: 'hi back', clientId: 'c1', now: T0 + 10 });
    const send = reqs(r.commands).find((x) => x.event === 'message:room') as Req;
    expect(send.args[0]).toEqual({ room: 'general', content: 'hi back', clientId: 'c1', replyTo: 'm1' });
    expect(r.state.chat.replying).toEqual({});
    const done = feed(r.state, answer(send, { ok: true, id: 'm9', timestamp: T0 + 11 })).state;
    expect(done.chat.conversations['room:general']?.messages.at(-1)?.replyTo).toEqual({ id: 'm1', from: 'Bob', excerpt: 'hello' });
  });
});

describe('conversation list preview of a deleted message', () => {
  it('says the newest message was deleted instead of showing nothing', () => {
    let s = withHistory(msg('m1', 'Bob', 'soon gone'));
    s = run(s, { type: 'received', message: msg('m2', 'Bob', 'gone too') });
    s = run(s, { type: 'updated', message: { ...msg('m2', 'Bob', ''), deleted: true } });
    expect(conversationRows(s)[0]?.preview).toMatchObject({ from: 'Bob', text: 'This message was deleted' });
  });
});
