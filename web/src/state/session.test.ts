// The session reducer's transitions, called directly: no socket, no timers.
// Each test feeds events and checks the state and the commands returned.
import { describe, expect, it } from 'vitest';
import { EMPTY_SESSION, type SavedSession } from './saved.ts';
import {
  connStatus,
  initialClientState,
  step,
  type AnyAck,
  type ClientState,
  type Command,
  type RequestTag,
  type SessionEvent,
} from './session.ts';

type Request = Extract<Command, { type: 'request' }>;

/** Feeds events in order; returns the last state and every command returned on the way. */
function feed(state: ClientState, ...events: SessionEvent[]): { state: ClientState; commands: Command[] } {
  const commands: Command[] = [];
  for (const ev of events) {
    const r = step(state, ev);
    state = r.state;
    commands.push(...r.commands);
  }
  return { state, commands };
}

const requests = (cmds: Command[]): Request[] => cmds.filter((c): c is Request => c.type === 'request');
const emitted = (cmds: Command[]) => requests(cmds).map((r) => r.event);
/** The request for `event` among `cmds` (the last one). */
function req(cmds: Command[], event: string): Request {
  const r = requests(cmds).filter((x) => x.event === event).at(-1);
  if (!r) throw new Error(`no ${event} in ${emitted(cmds).join(', ')}`);
  return r;
}
const answer = (r: Request, ack: AnyAck): SessionEvent => ({ type: 'answer', tag: r.tag, ack });
const ok = (fields: Record<string, unknown> = {}): AnyAck => ({ ok: true, ...fields });
const fail = (error: string, message?: string): AnyAck => (message ? { ok: false, error, message } : { ok: false, error });
const joined = (name: string): AnyAck => ok({ user: { id: 'u1', username: name } });
const link = { active: true, online: true };
const timers = (cmds: Command[]) =>
  cmds.filter((c): c is Extract<Command, { type: 'after' }> => c.type === 'after').map((c) => [c.ms, c.event.type]);

/**
 * A tab restored from a reload with one room and one private chat, signed
 * back in and synced. Returns the state and the commands of the sign-in.
 */
function synced(saved: Partial<SavedSession> = {}) {
  let s = initialClientState({ ...EMPTY_SESSION, username: 'Alice', rooms: ['general'], dms: ['Bob'], ...saved });
  let r = feed(s, { type: 'start', online: true }, { type: 'connected', recovered: false });
  s = r.state;
  const join = req(r.commands, 'user:join');
  r = feed(s, answer(join, joined('Alice')));
  const rejoin = req(r.commands, 'room:join');
  const dm = req(r.commands, 'history:fetch');
  r = feed(r.state, answer(rejoin, ok({ room: { name: 'general', users: 2 } })), answer(dm, ok({ messages: [], hasMore: false })));
  expect(r.state.session.sync.kind).toBe('synced');
  return r.state;
}

/** Sends `content` to #general and returns the state and its message:room request. */
function sendOne(s: ClientState, content = 'hello', clientId = 'c1') {
  const r = feed(s, { type: 'send', conv: 'room:general', content, clientId, now: 1 });
  return { state: r.state, commands: r.commands };
}

describe('session: start and sign-in', () => {
  it('starts by setting the CONNECT auth and connecting; asks for a name when it has none', () => {
    const s0 = initialClientState(EMPTY_SESSION);
    expect(s0.session.phase).toBe('login');
    expect(connStatus(s0.session.link)).toBe('connecting');
    let r = feed(s0, { type: 'start', online: true });
    expect(r.commands).toEqual([{ type: 'auth', token: null }, { type: 'connect' }]);
    r = feed(r.state, { type: 'connected', recovered: false });
    expect(emitted(r.commands)).toEqual(['rooms:list']);
    expect(r.state.session.phase).toBe('login');
    expect(connStatus(r.state.session.link)).toBe('connected');
  });

  it('a restored tab signs in, rejoins its rooms, refetches its private chats, then saves the session', () => {
    let r = feed(
      initialClientState({ ...EMPTY_SESSION, username: 'Alice', rooms: ['general'], dms: ['Bob'] }),
      { type: 'start', online: true },
      { type: 'connected', recovered: false },
    );
    expect(r.state.session.phase).toBe('joining');
    expect(emitted(r.commands)).toEqual(['rooms:list', 'user:join']);
    r = feed(r.state, answer(req(r.commands, 'user:join'), joined('alice')));
    expect(r.state.session.phase).toBe('ready');
    expect(r.state.chat.me).toBe('alice'); // the server's spelling
    expect(requests(r.commands).map((x) => [x.event, x.args[0]])).toEqual([
      ['room:join', 'general'],
      ['history:fetch', { with: 'Bob', limit: 50 }],
      ['conversations:list', undefined], // v2; a v1 server ignores it
    ]);
    expect(r.state.session.sync).toMatchObject({ kind: 'resyncing', left: 2 });
    expect(r.commands).toContainEqual({
      type: 'save',
      session: { username: 'alice', token: null, rooms: ['general'], dms: ['Bob'], active: null },
    });
  });

  it('a refusal of a name the user typed is shown at once', () => {
    let r = feed(initialClientState(EMPTY_SESSION), { type: 'start', online: true }, { type: 'connected', recovered: false });
    r = feed(r.state, { type: 'signIn', name: 'Bob' });
    expect(r.state.session.phase).toBe('joining');
    r = feed(r.state, answer(req(r.commands, 'user:join'), fail('username_taken', 'Bob is taken')));
    expect(r.state.session.phase).toBe('login');
    expect(r.state.session.loginError).toEqual({ code: 'username_taken', message: 'Bob is taken' });
    expect(r.state.session.name).toBeNull();
    expect(r.state.session.lastName).toBe('Bob');
    expect(timers(r.commands)).toEqual([]);
    // A later reconnect does not sign in with the refused name on its own.
    r = feed(r.state, { type: 'disconnected', reason: 'transport close', ...link }, { type: 'connected', recovered: false });
    expect(emitted(r.commands)).toEqual(['rooms:list']);
  });

  it('a sign-in with a token sets the auth and starts a fresh connection', () => {
    const claims = btoa(JSON.stringify({ sub: 'Alice' })).replace(/=+$/, '');
    const token = `e30.${claims}.sig`;
    let r = feed(initialClientState(EMPTY_SESSION), { type: 'start', online: true }, { type: 'connected', recovered: false });
    r = feed(r.state, { type: 'signInWithToken', token: ` ${token} ` });
    expect(r.commands).toEqual([{ type: 'auth', token }, { type: 'disconnect' }, { type: 'connect' }]);
    expect(r.state.session).toMatchObject({ token, name: 'Alice', phase: 'joining' });
    // Signing out of token mode says nothing about the name (it is the token's).
    expect(step(r.state, { type: 'signOut' }).state.session.farewell).toBeNull();
    // A refused token: back to the form, the auth cleared.
    r = feed(r.state, { type: 'connectError', message: 'unauthorized', active: false, online: true });
    expect(r.commands).toEqual([{ type: 'auth', token: null }]);
    expect(r.state.session).toMatchObject({ token: null, name: null, phase: 'login', tokenRequired: true });
    expect(r.state.session.loginError?.code).toBe('unauthorized');
  });

  it('a token without a subject is refused before connecting', () => {
    const r = feed(initialClientState(EMPTY_SESSION), { type: 'signInWithToken', token: 'garbage' });
    expect(r.commands).toEqual([]);
    expect(r.state.session.loginError?.code).toBe('invalid_token');
  });
});

describe('session: reconnect', () => {
  it('a drop requeues the send in flight, and the status says reconnecting', () => {
    const { state } = sendOne(synced());
    expect(state.chat.pending[0]?.status).toBe('sending');
    const r = feed(state, { type: 'disconnected', reason: 'transport close', ...link });
    expect(r.state.chat.pending[0]?.status).toBe('queued');
    expect(r.state.session.sync.kind).toBe('idle');
    expect(r.state.session.wasSynced).toBe(true);
    expect(connStatus(r.state.session.link)).toBe('reconnecting');
    expect(r.commands).toEqual([]);
  });

  it('a recovered connection resends at once, without signing in again', () => {
    const sent = sendOne(synced());
    const r = feed(sent.state, { type: 'disconnected', reason: 'transport close', ...link }, { type: 'connected', recovered: true });
    expect(emitted(r.commands)).toEqual(['rooms:list', 'message:room']);
    expect(req(r.commands, 'message:room').args[0]).toEqual(req(sent.commands, 'message:room').args[0]);
    expect(req(r.commands, 'message:room').tag).toEqual({ kind: 'send', clientId: 'c1', attempt: 2 });
    expect(r.state.session.phase).toBe('ready');
  });

  it('a connection that was not recovered signs in again and rejoins, keeping the chat on screen', () => {
    const r = feed(synced(), { type: 'disconnected', reason: 'transport close', ...link }, { type: 'connected', recovered: false });
    expect(emitted(r.commands)).toEqual(['rooms:list', 'user:join']);
    expect(r.state.session.phase).toBe('ready');
    expect(r.state.session.sync.kind).toBe('joining');
  });

  it('a recovered connection after a drop during the resync still resyncs', () => {
    let r = feed(
      initialClientState({ ...EMPTY_SESSION, username: 'Alice', rooms: ['general'] }),
      { type: 'start', online: true },
      { type: 'connected', recovered: false },
    );
    r = feed(r.state, answer(req(r.commands, 'user:join'), joined('Alice')));
    expect(r.state.session.sync.kind).toBe('resyncing');
    r = feed(r.state, { type: 'disconnected', reason: 'ping timeout', ...link }, { type: 'connected', recovered: true });
    expect(emitted(r.commands)).toEqual(['rooms:list', 'user:join']);
  });

  it('the server saying goodbye is retried with the one policy, then left to the user', () => {
    let s = synced();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = feed(s, { type: 'disconnected', reason: 'io server disconnect', active: false, online: true });
      expect(connStatus(r.state.session.link)).toBe('offline');
      delays.push(...timers(r.commands).map(([ms]) => ms as number));
      s = feed(r.state, { type: 'retryConnect' }, { type: 'connected', recovered: true }).state;
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000]);
    expect(s.chat.notice).toBe('The server closed the connection.');
    // A successful sign-in starts the count again.
    s = feed(s, { type: 'disconnected', reason: 'transport close', ...link }, { type: 'connected', recovered: false }).state;
    expect(s.session.sync.kind).toBe('joining');
    const join = step(s, { type: 'retryJoin', seq: s.session.seq }).commands;
    expect(emitted(join)).toEqual(['user:join']);
    s = feed(s, answer(req(join, 'user:join'), joined('Alice'))).state;
    expect(s.session.kicks).toBe(0);
  });

  it('retryConnect connects only while disconnected', () => {
    const s = synced();
    expect(step(s, { type: 'retryConnect' }).commands).toEqual([]);
    const down = feed(s, { type: 'disconnected', reason: 'io server disconnect', active: false, online: true }).state;
    expect(step(down, { type: 'retryConnect' }).commands).toEqual([{ type: 'connect' }]);
    expect(connStatus(step(down, { type: 'retryConnect' }).state.session.link)).toBe('reconnecting');
  });

  it('a reload disconnects on purpose (pagehide)', () => {
    expect(step(synced(), { type: 'pageHide' }).commands).toEqual([{ type: 'disconnect' }]);
  });
});

describe('session: resend', () => {
  it('a send waits while offline and goes out once synced, after the rooms are rejoined', () => {
    let s = feed(synced(), { type: 'disconnected', reason: 'transport close', ...link }).state;
    let r = sendOne(s, 'typed offline');
    expect(r.commands).toEqual([]);
    expect(r.state.chat.pending[0]?.status).toBe('queued');
    r = feed(r.state, { type: 'connected', recovered: false });
    r = feed(r.state, answer(req(r.commands, 'user:join'), joined('Alice')));
    expect(emitted(r.commands)).toEqual(['room:join', 'history:fetch', 'conversations:list']);
    const rejoin = req(r.commands, 'room:join');
    const dm = req(r.commands, 'history:fetch');
    s = feed(r.state, answer(rejoin, ok({ room: { name: 'general', users: 2 } }))).state;
    r = feed(s, answer(dm, ok({ messages: [], hasMore: false })));
    expect(requests(r.commands).map((x) => [x.event, x.args[0]])).toEqual([
      ['message:room', { room: 'general', content: 'typed offline', clientId: 'c1' }],
    ]);
  });

  it('an ack settles the send into the timeline', () => {
    const { state, commands } = sendOne(synced());
    const r = feed(state, answer(req(commands, 'message:room'), ok({ id: 'm1', timestamp: 5 })));
    expect(r.state.chat.pending).toEqual([]);
    expect(r.state.chat.conversations['room:general']?.messages.map((m) => [m.id, m.from, m.content])).toEqual([
      ['m1', 'Alice', 'hello'],
    ]);
  });

  it('transient failures are retried with the same clientId, 1, 2, 4, 8, 8 s apart', () => {
    let { state, commands } = sendOne(synced());
    const delays: number[] = [];
    for (const error of ['timeout', 'rate_limited', 'internal', 'invalid_ack', 'timeout']) {
      const r = feed(state, answer(req(commands, 'message:room'), fail(error)));
      expect(r.state.chat.pending[0]?.status).toBe('queued');
      delays.push(...timers(r.commands).map(([ms]) => ms as number));
      const again = feed(r.state, { type: 'flush' });
      state = again.state;
      commands = again.commands;
      expect(req(commands, 'message:room').args[0]).toMatchObject({ clientId: 'c1' });
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000]);
  });

  it('a refusal marks the send failed; Retry sends it again with the same clientId', () => {
    const { state, commands } = sendOne(synced());
    let r = feed(state, answer(req(commands, 'message:room'), fail('content_too_long', 'At most 4000.')));
    expect(r.state.chat.pending[0]).toMatchObject({ status: 'failed', error: 'At most 4000.' });
    expect(r.commands).toEqual([]);
    r = feed(r.state, { type: 'retrySend', clientId: 'c1' });
    expect(req(r.commands, 'message:room').args[0]).toMatchObject({ clientId: 'c1' });
  });

  it('the answer to an attempt that a disconnect already gave up is ignored', () => {
    const first = sendOne(synced());
    const r = feed(
      first.state,
      { type: 'disconnected', reason: 'transport close', ...link },
      { type: 'connected', recovered: true },
      // The first attempt's late "offline" must not requeue the second one.
      answer(req(first.commands, 'message:room'), fail('offline')),
    );
    expect(r.state.chat.pending[0]).toMatchObject({ status: 'sending', attempts: 2 });
  });

  it('not_joined: the server forgot us; sign in again, then resend', () => {
    const { state, commands } = sendOne(synced());
    let r = feed(state, answer(req(commands, 'message:room'), fail('not_joined')));
    expect(emitted(r.commands)).toEqual(['user:join']);
    expect(r.state.chat.pending[0]?.status).toBe('queued');
    r = feed(r.state, answer(req(r.commands, 'user:join'), joined('Alice')));
    r = feed(
      r.state,
      answer(req(r.commands, 'room:join'), ok({ room: { name: 'general', users: 2 } })),
      answer(req(r.commands, 'history:fetch'), ok({ messages: [] })),
    );
    expect(emitted(r.commands)).toEqual(['message:room']);
  });
});

describe('session: resync', () => {
  it('a room gone while we were away is dropped with a notice', () => {
    let r = feed(synced(), { type: 'disconnected', reason: 'transport close', ...link }, { type: 'connected', recovered: false });
    r = feed(r.state, answer(req(r.commands, 'user:join'), joined('Alice')));
    r = feed(r.state, answer(req(r.commands, 'room:join'), fail('room_not_found')));
    expect(r.state.chat.conversations['room:general']).toBeUndefined();
    expect(r.state.chat.notice).toBe('Room “general” is gone.');
  });

  it('private histories refetched by the resync are merged', () => {
    let r = feed(synced(), { type: 'disconnected', reason: 'transport close', ...link }, { type: 'connected', recovered: false });
    r = feed(r.state, answer(req(r.commands, 'user:join'), joined('Alice')));
    const messages = [{ id: 'd1', type: 'private', from: 'Bob', to: 'Alice', content: 'missed', timestamp: 3 }];
    r = feed(r.state, answer(req(r.commands, 'history:fetch'), ok({ messages, hasMore: false })));
    expect(r.state.chat.conversations['dm:bob']?.messages.map((m) => m.content)).toEqual(['missed']);
    expect(r.state.session.sync).toMatchObject({ kind: 'resyncing', left: 1 });
  });

  it('answers of a resync cut short by a disconnect do not mark the next connection synced', () => {
    let r = feed(synced(), { type: 'disconnected', reason: 'transport close', ...link }, { type: 'connected', recovered: false });
    r = feed(r.state, answer(req(r.commands, 'user:join'), joined('Alice')));
    const stale = r.commands;
    r = feed(r.state, { type: 'disconnected', reason: 'transport close', ...link }, { type: 'connected', recovered: false });
    const tag: RequestTag = req(r.commands, 'user:join').tag;
    r = feed(
      r.state,
      answer(req(stale, 'room:join'), fail('offline')),
      answer(req(stale, 'history:fetch'), fail('offline')),
    );
    expect(r.state.session.sync).toMatchObject({ kind: 'joining', seq: (tag as { seq: number }).seq });
  });

  it('a sign-in retried after a timeout is dropped when the connection is lost', () => {
    let r = feed(synced(), { type: 'disconnected', reason: 'transport close', ...link }, { type: 'connected', recovered: false });
    const seq = r.state.session.seq;
    r = feed(r.state, answer(req(r.commands, 'user:join'), fail('timeout')));
    expect(timers(r.commands)).toEqual([[1000, 'retryJoin']]);
    r = feed(r.state, { type: 'disconnected', reason: 'transport close', ...link }, { type: 'retryJoin', seq });
    expect(emitted(r.commands)).toEqual([]);
  });
});

describe('session: what a reload restores', () => {
  it('saves only when it changes, and forgets it on sign-out', () => {
    const s = synced();
    const saves = (cmds: Command[]) => cmds.filter((c) => c.type === 'save');
    expect(saves(step(s, { type: 'chat', action: { type: 'tick', now: 0 } }).commands)).toEqual([]);
    const opened = step(s, { type: 'open', key: 'dm:bob' });
    expect(saves(opened.commands)).toEqual([
      { type: 'save', session: { username: 'Alice', token: null, rooms: ['general'], dms: ['Bob'], active: 'dm:bob' } },
    ]);
    const out = step(opened.state, { type: 'signOut' });
    expect(out.commands).toEqual([
      { type: 'save', session: null },
      { type: 'identity', identity: null },
      { type: 'disconnect' },
      { type: 'auth', token: null },
      { type: 'connect' },
    ]);
    expect(out.state.session.phase).toBe('login');
    // v1: the disconnect frees the name, and the form says so.
    expect(out.state.session.farewell).toEqual({ name: 'Alice', kept: false });
  });
});

// ---- contract v2 ------------------------------------------------------------

const guest = { id: 'u7', username: 'Alice', token: 'resume-7' };
const joinedV2 = (name: string, token = 'resume-7'): AnyAck => ok({ user: { id: 'u7', username: name }, token });
const roomMsg = (id: string, from: string, room = 'general') => ({ id, type: 'room', room, from, content: `text ${id}`, timestamp: 10 });
const receive = (m: ReturnType<typeof roomMsg>): SessionEvent => ({
  type: 'chat',
  action: { type: 'received', message: m as never },
});

/** A v2 guest restored from its identity, attached by token and synced, #general open with history. */
function attachedV2(): ClientState {
  let r = feed(
    initialClientState({ ...EMPTY_SESSION, username: 'Alice', rooms: ['general'], active: 'room:general' }, guest),
    { type: 'start', online: true, visible: true },
    { type: 'connected', recovered: false },
  );
  r = feed(r.state, answer(req(r.commands, 'history:fetch'), ok({ messages: [roomMsg('m1', 'Bob')], hasMore: false })));
  expect(r.state.session.sync.kind).toBe('synced');
  return r.state;
}

describe('session v2: guest identity', () => {
  it('keeps the resume token of the join ack: CONNECT auth and stored identity', () => {
    let r = feed(initialClientState(EMPTY_SESSION), { type: 'start', online: true }, { type: 'connected', recovered: false });
    r = feed(r.state, { type: 'signIn', name: 'Alice' });
    r = feed(r.state, answer(req(r.commands, 'user:join'), joinedV2('Alice')));
    expect(r.commands).toContainEqual({ type: 'auth', token: 'resume-7' });
    expect(r.commands).toContainEqual({ type: 'identity', identity: guest });
    expect(r.state.session).toMatchObject({ resume: 'resume-7', userId: 'u7', phase: 'ready' });
    expect(r.state.chat.server).toBe('v2');
    expect(emitted(r.commands)).toEqual(['conversations:list']);
  });

  it('without a token in the ack (v1) nothing is stored and a reconnect signs in by name again', () => {
    let r = feed(initialClientState(EMPTY_SESSION), { type: 'start', online: true }, { type: 'connected', recovered: false });
    r = feed(r.state, { type: 'signIn', name: 'Alice' });
    r = feed(r.state, answer(req(r.commands, 'user:join'), joined('Alice')));
    expect(r.commands.filter((c) => c.type === 'identity' || c.type === 'auth')).toEqual([]);
    expect(r.state.session.resume).toBeNull();
    r = feed(r.state, { type: 'disconnected', reason: 'transport close', ...link }, { type: 'connected', recovered: false });
    expect(emitted(r.commands)).toEqual(['rooms:list', 'user:join']);
  });

  it('a page with a stored identity connects with the token and is signed in without user:join or room:join', () => {
    const s0 = initialClientState({ ...EMPTY_SESSION, username: 'Alice', rooms: ['general'], dms: ['Bob'], active: 'room:general' }, guest);
    expect(s0.session.phase).toBe('joining');
    let r = feed(s0, { type: 'start', online: true });
    expect(r.commands).toEqual([{ type: 'auth', token: 'resume-7' }, { type: 'connect' }]);
    r = feed(r.state, { type: 'connected', recovered: false });
    expect(r.state.session.phase).toBe('ready');
    expect(r.state.chat.me).toBe('Alice');
    // Only the open conversation's history is fetched again; the private chat waits until opened.
    expect(requests(r.commands).map((x) => [x.event, x.args[0]])).toEqual([
      ['rooms:list', undefined],
      ['history:fetch', { room: 'general', limit: 50 }],
      ['conversations:list', undefined],
    ]);
    r = feed(r.state, answer(req(r.commands, 'history:fetch'), ok({ messages: [], hasMore: false })));
    expect(r.state.session.sync.kind).toBe('synced');
    const opened = step(r.state, { type: 'open', key: 'dm:bob' });
    expect(req(opened.commands, 'history:fetch').args[0]).toEqual({ with: 'Bob', limit: 50 });
  });

  it('a reconnect that is not recovered attaches again by token: no user:join, no room:join', () => {
    const r = feed(attachedV2(), { type: 'disconnected', reason: 'transport close', ...link }, { type: 'connected', recovered: false });
    expect(emitted(r.commands)).toEqual(['rooms:list', 'history:fetch', 'conversations:list']);
    expect(r.state.session.phase).toBe('ready');
  });

  it('a tab saved for another user than the stored identity starts from the identity alone', () => {
    const s = initialClientState({ ...EMPTY_SESSION, username: 'Zed', rooms: ['zed-room'] }, guest);
    expect(s.session.name).toBe('Alice');
    expect(s.chat.conversations).toEqual({});
  });

  it('an unauthorized stored token is dropped: anonymous connect, the form with the old name', () => {
    let r = feed(initialClientState({ ...EMPTY_SESSION, username: 'Alice', rooms: ['general'] }, guest), { type: 'start', online: true });
    r = feed(r.state, { type: 'connectError', message: 'unauthorized', active: false, online: true });
    expect(r.commands).toEqual([
      { type: 'identity', identity: null },
      { type: 'save', session: null },
      { type: 'auth', token: null },
      { type: 'connect' },
    ]);
    expect(r.state.session).toMatchObject({ resume: null, name: null, lastName: 'Alice', phase: 'login', tokenRequired: false });
    expect(r.state.session.loginError?.code).toBe('session_expired');
    expect(r.state.chat.conversations).toEqual({});
    // The anonymous connection then asks for a name (no user:join on its own).
    r = feed(r.state, { type: 'connected', recovered: false });
    expect(emitted(r.commands)).toEqual(['rooms:list']);
  });

  it('signing out forgets the identity, and says the name stays the guest user’s', () => {
    const out = step(attachedV2(), { type: 'signOut' });
    expect(out.commands).toContainEqual({ type: 'identity', identity: null });
    expect(out.commands).toContainEqual({ type: 'auth', token: null });
    expect(out.state.session).toMatchObject({ resume: null, phase: 'login', farewell: { name: 'Alice', kept: true } });
  });
});

describe('session v2: conversation list and v1 fallback', () => {
  it('the list answer fills the conversations; a v1 server’s silence falls back quietly', () => {
    const first = feed(initialClientState(EMPTY_SESSION), { type: 'start', online: true }, { type: 'connected', recovered: false });
    let r = feed(first.state, { type: 'signIn', name: 'Alice' });
    r = feed(r.state, answer(req(r.commands, 'user:join'), joined('Alice')));
    const list = req(r.commands, 'conversations:list');
    const v1 = feed(r.state, answer(list, fail('timeout')));
    expect(v1.state.chat.server).toBe('v1');
    expect(v1.state.chat.notice).toBeNull();
    expect(v1.commands).toEqual([]); // no retry, no read:mark
    const v2 = feed(
      r.state,
      answer(list, ok({ conversations: [{ type: 'private', with: 'Carol', unread: 2, lastMessage: null }] })),
    );
    expect(v2.state.chat.server).toBe('v2');
    expect(v2.state.chat.unread['dm:carol']).toBe(2);
  });

  it('a list lost to a timeout is asked again when the server is known to be v2', () => {
    let r = feed(attachedV2(), { type: 'disconnected', reason: 'transport close', ...link }, { type: 'connected', recovered: false });
    r = feed(r.state, answer(req(r.commands, 'conversations:list'), fail('timeout')));
    expect(timers(r.commands)).toEqual([[1000, 'retryList']]);
    const again = r.commands.find((c) => c.type === 'after');
    if (again?.type !== 'after') throw new Error('no timer');
    expect(emitted(step(r.state, again.event).commands)).toEqual(['conversations:list']);
    expect(r.state.chat.server).toBe('v2');
  });

  it('an answer of an older sign-in is ignored', () => {
    let r = feed(attachedV2(), { type: 'disconnected', reason: 'transport close', ...link }, { type: 'connected', recovered: false });
    const stale = req(r.commands, 'conversations:list');
    r = feed(r.state, { type: 'disconnected', reason: 'transport close', ...link }, { type: 'connected', recovered: false });
    r = feed(r.state, answer(stale, ok({ conversations: [{ type: 'private', with: 'Old', unread: 1, lastMessage: null }] })));
    expect(r.state.chat.conversations['dm:old']).toBeUndefined();
  });
});

describe('session v2: read:mark', () => {
  const marks = (cmds: Command[]) => requests(cmds).filter((x) => x.event === 'read:mark').map((x) => x.args[0]);

  it('marks the open conversation’s newest message once, after a short delay', () => {
    let r = feed(attachedV2());
    // attachedV2's own steps already scheduled the timer when the history arrived.
    expect(r.state.session.markTimer).toBe(true);
    r = feed(r.state, { type: 'markRead' });
    expect(marks(r.commands)).toEqual([{ room: 'general', id: 'm1' }]);
    expect(timers(r.commands)).toEqual([]);
    // Nothing new: no second mark, whatever happens.
    r = feed(r.state, { type: 'viewAtBottom', key: 'room:general', atBottom: true }, { type: 'pageVisible', visible: true });
    expect(r.commands).toEqual([]);
  });

  it('a burst of messages gives one timer and one read:mark of the newest id', () => {
    let r = feed(attachedV2(), { type: 'markRead' });
    r = feed(r.state, receive(roomMsg('m2', 'Bob')), receive(roomMsg('m3', 'Bob')), receive(roomMsg('m4', 'Carol')));
    expect(timers(r.commands)).toEqual([[500, 'markRead']]);
    r = feed(r.state, { type: 'markRead' });
    expect(marks(r.commands)).toEqual([{ room: 'general', id: 'm4' }]);
    r = feed(r.state, answer(req(r.commands, 'read:mark'), ok({ unread: 0 })));
    expect(r.commands).toEqual([]);
  });

  it('nothing is marked while the page is hidden or the newest message is scrolled away', () => {
    let r = feed(attachedV2(), { type: 'markRead' }, { type: 'pageVisible', visible: false });
    r = feed(r.state, receive(roomMsg('m2', 'Bob')));
    expect(r.commands).toEqual([]);
    r = feed(r.state, { type: 'pageVisible', visible: true }, { type: 'viewAtBottom', key: 'room:general', atBottom: false });
    const { commands } = feed(r.state, { type: 'markRead' });
    expect(marks(commands)).toEqual([]);
    r = feed(r.state, { type: 'markRead' }, { type: 'viewAtBottom', key: 'room:general', atBottom: true });
    expect(timers(r.commands)).toEqual([[500, 'markRead']]);
    expect(marks(feed(r.state, { type: 'markRead' }).commands)).toEqual([{ room: 'general', id: 'm2' }]);
  });

  it('our own message needs no mark; a lost mark is sent again, a refused one is not', () => {
    let r = feed(attachedV2(), { type: 'markRead' });
    r = feed(r.state, receive(roomMsg('m2', 'Alice')));
    expect(r.commands).toEqual([]);
    r = feed(r.state, receive(roomMsg('m3', 'Bob')), { type: 'markRead' });
    const lost = req(r.commands, 'read:mark');
    r = feed(r.state, answer(lost, fail('timeout')));
    expect(timers(r.commands)).toEqual([[500, 'markRead']]);
    r = feed(r.state, { type: 'markRead' });
    r = feed(r.state, answer(req(r.commands, 'read:mark'), fail('message_not_found')));
    expect(r.commands).toEqual([]);
  });

  it('a v1 server is never sent read:mark', () => {
    const s = synced();
    const r = feed(s, { type: 'open', key: 'room:general' }, receive(roomMsg('m9', 'Bob')), { type: 'markRead' });
    expect(marks(r.commands)).toEqual([]);
    expect(timers(r.commands)).toEqual([]);
  });

  it('read:update from another tab and the mark’s ack set the unread count', () => {
    let r = feed(attachedV2(), { type: 'markRead' }, { type: 'open', key: null });
    r = feed(r.state, receive(roomMsg('m2', 'Bob')), receive(roomMsg('m3', 'Bob')));
    expect(r.state.chat.unread['room:general']).toBe(2);
    r = feed(r.state, { type: 'chat', action: { type: 'readState', key: 'room:general', lastReadId: 'm3', unread: 0 } });
    expect(r.state.chat.unread['room:general']).toBeUndefined();
    expect(r.state.chat.conversations['room:general']?.markedId).toBe('m3');
    // Opened again: m3 is read already, so no mark goes out.
    r = feed(r.state, { type: 'open', key: 'room:general' }, { type: 'markRead' });
    expect(marks(r.commands)).toEqual([]);
  });
});

describe('session v2: private conversations with offline users', () => {
  it('opens a conversation by name, sends to it, and says when no user has that name', () => {
    let r = feed(attachedV2(), { type: 'openDm', peer: 'Carol' });
    expect(req(r.commands, 'history:fetch').args[0]).toEqual({ with: 'Carol', limit: 50 });
    expect(r.state.chat.recent[0]).toBe('dm:carol');
    r = feed(r.state, { type: 'send', conv: 'dm:carol', content: 'are you there?', clientId: 'c9', now: 1 });
    expect(req(r.commands, 'message:private').args[0]).toEqual({ to: 'Carol', content: 'are you there?', clientId: 'c9' });
    r = feed(r.state, answer(req(r.commands, 'message:private'), fail('user_not_found', 'Carol is offline')));
    expect(r.state.chat.pending[0]).toMatchObject({ status: 'failed', error: 'No user is called “Carol”.' });
  });

  it('on a v1 server the same refusal says the user is offline', () => {
    let r = feed(synced(), { type: 'openDm', peer: 'Carol' });
    r = feed(r.state, { type: 'send', conv: 'dm:carol', content: 'hi', clientId: 'c9', now: 1 });
    r = feed(r.state, answer(req(r.commands, 'message:private'), fail('user_not_found')));
    expect(r.state.chat.pending[0]?.error).toBe('Carol is offline.');
  });
});
