// Rooms with owners (v2, issue #15): menu visibility by role, the members
// panel's state, invitations, room:removed, mutes, and the requests and
// answers of the moderation actions.
import { describe, expect, it } from 'vitest';
import type { ChatMessage, Member } from '../protocol.ts';
import { chatReducer, initialState, type ChatAction, type ChatState } from './chat.ts';
import { memberActions, pendingInvites, roomRequest, sortMembers } from './rooms.ts';
import { EMPTY_SESSION } from './saved.ts';
import { answerError, initialClientState, step, type AnyAck, type ClientState, type Command, type SessionEvent } from './session.ts';

const run = (s: ChatState, ...a: ChatAction[]) => a.reduce(chatReducer, s);
const alice = (): ChatState => run(initialState(), { type: 'signedIn', username: 'Alice' }, { type: 'roomJoined', name: 'general' });
const m = (username: string, role: Member['role'], online = true): Member => ({ username, role, online });

describe('member menus by role', () => {
  it('owners act on moderators and members, with role changes and hand-over', () => {
    expect(memberActions('owner', 'Alice', m('Bob', 'moderator'))).toEqual(['kick', 'ban', 'mute', 'unmute', 'member', 'owner']);
    expect(memberActions('owner', 'Alice', m('Bob', 'member'))).toEqual(['kick', 'ban', 'mute', 'unmute', 'moderator', 'owner']);
  });
  it('moderators act on members only, without role changes', () => {
    expect(memberActions('moderator', 'Alice', m('Bob', 'member'))).toEqual(['kick', 'ban', 'mute', 'unmute']);
    expect(memberActions('moderator', 'Alice', m('Bob', 'moderator'))).toEqual([]);
    expect(memberActions('moderator', 'Alice', m('Carol', 'owner'))).toEqual([]);
  });
  it('members, unknown roles and oneself get no menu', () => {
    expect(memberActions('member', 'Alice', m('Bob', 'member'))).toEqual([]);
    expect(memberActions(null, 'Alice', m('Bob', 'member'))).toEqual([]);
    expect(memberActions('owner', 'Alice', m('alice', 'owner'))).toEqual([]);
  });
  it('lists the owner first, then moderators, online before offline', () => {
    const sorted = sortMembers([m('Zed', 'member'), m('Bob', 'member', false), m('Amy', 'member'), m('Carol', 'owner', false), m('Dan', 'moderator')]);
    expect(sorted.map((x) => x.username)).toEqual(['Carol', 'Dan', 'Amy', 'Zed', 'Bob']);
  });
});

describe('chat state: rooms with owners', () => {
  it('the members answer fills the panel and this user’s role; a refusal keeps the list and says why', () => {
    let s = run(alice(), { type: 'members', room: 'general', members: [m('Bob', 'member'), m('alice', 'moderator')], error: null });
    expect(s.conversations['room:general']?.members?.map((x) => x.username)).toEqual(['alice', 'Bob']);
    expect(s.conversations['room:general']?.role).toBe('moderator');
    s = run(s, { type: 'members', room: 'general', members: null, error: 'Not supported by this server (it did not answer).' });
    expect(s.conversations['room:general']?.members).toHaveLength(2);
    expect(s.conversations['room:general']?.membersError).toMatch(/not supported/i);
  });

  it('room:removed takes the room out of the list and says why', () => {
    let s = run(alice(), { type: 'open', key: 'room:general' }, { type: 'rooms', rooms: [{ name: 'general', users: 2 }] });
    s = run(s, { type: 'removed', room: 'general', by: 'Bob', reason: 'banned' });
    expect(s.conversations['room:general']).toBeUndefined();
    expect(s.active).toBeNull();
    expect(s.notice).toBe('You were banned from “general” by Bob.');
    s = run(alice(), { type: 'rooms', rooms: [{ name: 'general', users: 2 }] }, { type: 'removed', room: 'general', by: 'Bob', reason: 'deleted' });
    expect(s.rooms).toEqual([]);
    expect(s.notice).toBe('The room “general” was deleted by Bob.');
    expect(run(alice(), { type: 'removed', room: 'general', by: 'Bob', reason: 'kicked' }).notice).toBe('You were removed from “general” by Bob.');
  });

  it('invitations: room:invited and rooms listed with invited, until joined or dismissed', () => {
    let s = run(alice(), { type: 'invited', room: 'secret', by: 'Bob' }, { type: 'rooms', rooms: [{ name: 'other', users: 1, private: true, invited: true }] });
    expect(pendingInvites(s)).toEqual([{ room: 'secret', by: 'Bob' }, { room: 'other', by: '' }]);
    s = run(s, { type: 'roomJoined', name: 'secret' }, { type: 'roomMeta', room: 'secret', role: 'member', isPrivate: true });
    expect(pendingInvites(s)).toEqual([{ room: 'other', by: '' }]);
    expect(s.conversations['room:secret']).toMatchObject({ role: 'member', isPrivate: true });
    s = run(s, { type: 'invited', room: 'third', by: 'Carol' }, { type: 'dismissInvite', room: 'third' });
    expect(pendingInvites(s).map((i) => i.room)).toEqual(['other']);
    // A listed invitation stays dismissed; a new room:invited offers it again.
    s = run(s, { type: 'dismissInvite', room: 'other' });
    expect(pendingInvites(s)).toEqual([]);
    s = run(s, { type: 'invited', room: 'other', by: 'Dan' });
    expect(pendingInvites(s)).toEqual([{ room: 'other', by: 'Dan' }]);
    // Already a member: an invitation is not shown.
    expect(run(s, { type: 'invited', room: 'general', by: 'Bob' })).toBe(s);
  });

  it('a system message muting this user disables the room’s composer; unmuting enables it', () => {
    const sys = (action: string, user: string, content: string): ChatMessage => ({ id: `s-${action}-${user}`, type: 'system', room: 'general', from: 'Bob', action, user, content, timestamp: 1 });
    let s = run(alice(), { type: 'received', message: sys('mute', 'Carol', 'Bob muted Carol.') });
    expect(s.conversations['room:general']?.muted).toBeNull();
    s = run(s, { type: 'received', message: sys('mute', 'alice', 'Bob muted Alice for 10 minutes.') });
    expect(s.conversations['room:general']?.muted).toBe('Bob muted Alice for 10 minutes.');
    s = run(s, { type: 'received', message: sys('unmute', 'Alice', 'Bob unmuted Alice.') });
    expect(s.conversations['room:general']?.muted).toBeNull();
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

function ready(): ClientState {
  let s = initialClientState(EMPTY_SESSION);
  s = feed(s, { type: 'start', online: true }, { type: 'connected', recovered: false }).state;
  const r = feed(s, { type: 'signIn', name: 'Alice' });
  const join = reqs(r.commands).find((x) => x.event === 'user:join') as Req;
  return feed(r.state, answer(join, { ok: true, user: { id: 'u1', username: 'Alice' } })).state;
}

describe('session: room requests', () => {
  it('payloads of the moderation requests', () => {
    expect(roomRequest('g', { op: 'ban', user: 'Bob', durationMs: 600_000 })).toEqual({ event: 'room:ban', args: [{ room: 'g', user: 'Bob', durationMs: 600_000 }] });
    expect(roomRequest('g', { op: 'ban', user: 'Bob', durationMs: null })).toEqual({ event: 'room:ban', args: [{ room: 'g', user: 'Bob' }] });
    expect(roomRequest('g', { op: 'role', user: 'Bob', role: 'owner' })).toEqual({ event: 'room:role', args: [{ room: 'g', user: 'Bob', role: 'owner' }] });
    expect(roomRequest('g', { op: 'members' })).toEqual({ event: 'room:members', args: ['g'] });
    expect(roomRequest('g', { op: 'delete' })).toEqual({ event: 'room:delete', args: ['g'] });
    expect(roomRequest('g', { op: 'invite', user: 'Bob' })).toEqual({ event: 'room:invite', args: [{ room: 'g', user: 'Bob' }] });
  });

  it('the join ack gives the role, topic and privacy', () => {
    const r = feed(ready(), { type: 'answer', tag: { kind: 'enterRoom' }, ack: { ok: true, room: { name: 'secret', users: 1, members: 1, private: true, topic: 'Plans', role: 'owner' } } });
    expect(r.state.chat.conversations['room:secret']).toMatchObject({ role: 'owner', topic: 'Plans', isPrivate: true });
    expect(r.state.chat.active).toBe('room:secret');
  });

  it('a moderation action that worked refreshes the members; deleting the room removes it', () => {
    let s = feed(ready(), { type: 'chat', action: { type: 'roomJoined', name: 'general' } }).state;
    const kick: SessionEvent = { type: 'answer', tag: { kind: 'roomOp', room: 'general', req: { op: 'kick', user: 'Bob' } }, ack: { ok: true } };
    expect(reqs(feed(s, kick).commands).map((x) => x.event)).toEqual(['room:members']);
    s = feed(s, { type: 'answer', tag: { kind: 'roomOp', room: 'general', req: { op: 'delete' } }, ack: { ok: true } }).state;
    expect(s.chat.conversations['room:general']).toBeUndefined();
    expect(s.chat.notice).toBe('You deleted the room “general”.');
  });

  it('a moderation request a server does not answer says it is not supported', () => {
    const tag = { kind: 'roomOp', room: 'general', req: { op: 'kick', user: 'Bob' } } as const;
    expect(answerError(tag, { ok: false, error: 'timeout' })).toMatch(/not supported by this server/i);
    expect(answerError(tag, { ok: false, error: 'forbidden' })).toBe('You are not allowed to do that.');
    expect(answerError({ kind: 'enterRoom' }, { ok: false, error: 'banned' })).toBe('You are banned from this room.');
  });

  it('a send refused as muted marks it failed and disables the composer with the reason', () => {
    let s = feed(ready(), { type: 'chat', action: { type: 'roomJoined', name: 'general' } }).state;
    const r = feed(s, { type: 'send', conv: 'room:general', content: 'hi', clientId: 'c1', now: 1 });
    const send = reqs(r.commands).find((x) => x.event === 'message:room') as Req;
    s = feed(r.state, answer(send, { ok: false, error: 'muted' })).state;
    expect(s.chat.conversations['room:general']?.muted).toMatch(/muted/);
    expect(s.chat.pending[0]?.status).toBe('failed');
  });

  it('a kick or ban message refreshes the members list once the panel has one, not before', () => {
    const s = feed(ready(), { type: 'chat', action: { type: 'roomJoined', name: 'general' } }).state;
    const kick: ChatMessage = { id: 's2', type: 'system', room: 'general', from: 'Carol', action: 'kick', user: 'Bob', content: 'Carol removed Bob.', timestamp: 1 };
    const received: SessionEvent = { type: 'chat', action: { type: 'received', message: kick } };
    expect(reqs(feed(s, received).commands)).toEqual([]);
    const loaded = feed(s, { type: 'chat', action: { type: 'members', room: 'general', members: [m('Bob', 'member')], error: null } }).state;
    expect(reqs(feed(loaded, received).commands).map((x) => x.event)).toEqual(['room:members']);
  });

  it('a system message changing this user’s role refreshes the members (and so the role)', () => {
    const s = feed(ready(), { type: 'chat', action: { type: 'roomJoined', name: 'general' } }).state;
    const role: ChatMessage = { id: 's1', type: 'system', room: 'general', from: 'Carol', action: 'role', user: 'Alice', content: 'Carol made Alice a moderator.', timestamp: 1 };
    const r = feed(s, { type: 'chat', action: { type: 'received', message: role } });
    const members = reqs(r.commands).find((x) => x.event === 'room:members') as Req;
    const after = feed(r.state, answer(members, { ok: true, members: [{ username: 'Alice', role: 'moderator', online: true }] })).state;
    expect(after.chat.conversations['room:general']?.role).toBe('moderator');
  });
});
