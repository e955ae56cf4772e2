// The client object against a scripted socket (test/fakeSocket.ts): what it
// emits, in which order, and what state the user ends up seeing.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ChatMessage } from '../protocol.ts';
import type { ChatSocket } from '../socket.ts';
import { connStatus, type ClientState } from '../state/session.ts';
import { FakeSocket, memoryStorage } from '../test/fakeSocket.ts';
import { ChatClient } from './ChatClient.ts';
import { IDENTITY_KEY, SESSION_KEY } from './storage.ts';

interface SendPayload {
  room: string;
  to?: string;
  content: string;
  clientId: string;
}

/** A fake server that stores room messages once per clientId and broadcasts them. */
function chatServer(fake: FakeSocket, me = 'Alice') {
  const byClientId = new Map<string, { id: string; timestamp: number }>();
  let seq = 0;
  fake.respond['user:join'] = (name) => ({ ok: true, user: { id: 'u1', username: name } });
  fake.respond['room:create'] = (name) => ({ ok: true, room: { name, users: 1 } });
  fake.respond['room:join'] = (name) => ({ ok: true, room: { name, users: 1 } });
  fake.respond['message:room'] = (p) => {
    const { room, content, clientId } = p as SendPayload;
    const known = byClientId.get(clientId);
    if (known) return { ok: true, ...known };
    const msg: ChatMessage = { id: `id-${++seq}`, type: 'room', room, from: me, content, timestamp: 1000 + seq };
    byClientId.set(clientId, { id: msg.id, timestamp: msg.timestamp });
    queueMicrotask(() => fake.push('message:receive', msg));
    return { ok: true, id: msg.id, timestamp: msg.timestamp };
  };
  return { stored: () => byClientId.size };
}

const clients: ChatClient[] = [];
function startClient(fake: FakeSocket, storage: Storage = memoryStorage()): ChatClient {
  const client = new ChatClient(fake as unknown as ChatSocket, storage);
  clients.push(client);
  client.start();
  return client;
}

afterEach(() => {
  for (const c of clients.splice(0)) c.stop();
  vi.useRealTimers();
});

/** Resolves once `pred` holds for the client's state (checked on every change). */
function until(client: ChatClient, pred: (s: ClientState) => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (pred(client.getSnapshot())) return resolve();
    const off = client.subscribe(() => {
      if (pred(client.getSnapshot())) {
        off();
        resolve();
      }
    });
  });
}

async function signedIn(fake: FakeSocket, storage?: Storage) {
  const client = startClient(fake, storage);
  fake.serverConnect();
  client.signIn('Alice');
  await until(client, (s) => s.session.sync.kind === 'synced');
  expect(await client.createRoom('general')).toBeNull();
  return client;
}

const contents = (c: ChatClient) => c.getSnapshot().chat.conversations['room:general']?.messages.map((m) => m.content);
const pending = (c: ChatClient) => c.getSnapshot().chat.pending;

describe('ChatClient', () => {
  it('shows a refused name in place, then signs in and remembers the session', async () => {
    const fake = new FakeSocket();
    const storage = memoryStorage();
    fake.respond['user:join'] = (name) =>
      name === 'Bob' ? { ok: false, error: 'username_taken', message: 'Bob is taken' } : { ok: true, user: { id: '1', username: name } };
    const client = startClient(fake, storage);
    expect(fake.active).toBe(true); // start() opened the connection
    fake.serverConnect();
    expect(client.getSnapshot().session.phase).toBe('login');
    expect(fake.sent('rooms:list')).toHaveLength(1);

    client.signIn('Bob');
    await until(client, (s) => s.session.loginError !== null);
    expect(client.getSnapshot().session.loginError).toEqual({ code: 'username_taken', message: 'Bob is taken' });
    expect(client.getSnapshot().session.phase).toBe('login');
    expect(fake.sent('user:join')).toEqual(['Bob']); // asked by the user: not retried

    client.signIn('Alice');
    await until(client, (s) => s.session.phase === 'ready');
    expect(client.getSnapshot().chat.me).toBe('Alice');
    expect(client.getSnapshot().session.loginError).toBeNull();
    expect(JSON.parse(storage.getItem(SESSION_KEY) ?? '{}').username).toBe('Alice');
  });

  it('merges room:history that arrives before the create ack', async () => {
    const fake = new FakeSocket();
    chatServer(fake);
    fake.respond['room:create'] = (name) => {
      fake.push('room:history', {
        room: name,
        messages: [{ id: 'h1', type: 'room', room: name, from: 'Bob', content: 'earlier', timestamp: 1 }],
        hasMore: false,
      });
      return { ok: true, room: { name, users: 2 } };
    };
    const client = await signedIn(fake);
    expect(contents(client)).toEqual(['earlier']);
    expect(client.getSnapshot().chat.active).toBe('room:general');
  });

  it('retries a send with the same clientId after a reconnect that was not recovered, delivering it once', async () => {
    const fake = new FakeSocket();
    const server = chatServer(fake);
    const client = await signedIn(fake);
    const realSend = fake.respond['message:room'];
    if (!realSend) throw new Error('no responder');

    // The server stores the first attempt but its ack is lost with the connection.
    fake.respond['message:room'] = (p, n) => {
      realSend(p, n);
      return undefined;
    };
    client.send('room:general', 'hello');
    const [first] = fake.sent('message:room') as SendPayload[];
    expect(first?.content).toBe('hello');
    fake.drop();
    expect(connStatus(client.getSnapshot().session.link)).toBe('reconnecting');
    await until(client, (s) => s.chat.pending.every((p) => p.status === 'queued'));

    // Typed while offline: nothing goes out yet.
    client.send('room:general', 'typed offline');
    expect(fake.sent('message:room')).toHaveLength(1);

    // The server restarted: a fresh session (not recovered).
    fake.respond['message:room'] = realSend;
    const before = fake.emitted.length;
    fake.serverConnect(false);
    await until(client, (s) => s.chat.pending.length === 0);

    const after = fake.emitted.slice(before).map((e) => e.event);
    expect(after.indexOf('user:join')).toBeGreaterThanOrEqual(0);
    expect(after.indexOf('room:join')).toBeGreaterThan(after.indexOf('user:join'));
    expect(after.indexOf('message:room')).toBeGreaterThan(after.indexOf('room:join'));
    const resent = (fake.sent('message:room') as SendPayload[]).slice(1);
    expect(resent.map((p) => p.content).sort()).toEqual(['hello', 'typed offline']);
    expect(resent.find((p) => p.content === 'hello')?.clientId).toBe(first?.clientId);
    expect(server.stored()).toBe(2);
    await until(client, () => contents(client)?.length === 2);
    expect(contents(client)).toEqual(['hello', 'typed offline']);
  });

  it('after a recovered reconnect only resends, without signing in again', async () => {
    const fake = new FakeSocket();
    chatServer(fake);
    const client = await signedIn(fake);
    fake.drop();
    client.send('room:general', 'queued');
    const before = fake.emitted.length;
    fake.serverConnect(true);
    await until(client, (s) => s.chat.pending.length === 0);
    const events = fake.emitted.slice(before).map((e) => e.event);
    expect(events).not.toContain('user:join');
    expect(events).not.toContain('room:join');
    expect(events).toContain('message:room');
    await until(client, () => contents(client)?.length === 1);
    expect(contents(client)).toEqual(['queued']);
  });

  it('signs back in after a reload, retrying while the old connection still holds the name', async () => {
    vi.useFakeTimers();
    const fake = new FakeSocket();
    chatServer(fake);
    fake.respond['user:join'] = (name, n) =>
      n === 1 ? { ok: false, error: 'username_taken' } : { ok: true, user: { id: '1', username: name } };
    const storage = memoryStorage({
      [SESSION_KEY]: JSON.stringify({ username: 'Alice', rooms: ['general'], dms: ['Bob'], active: 'room:general' }),
    });
    fake.respond['history:fetch'] = () => ({
      ok: true,
      messages: [{ id: 'd1', type: 'private', from: 'Bob', to: 'Alice', content: 'hi', timestamp: 5 }],
      hasMore: false,
    });
    const client = startClient(fake, storage);
    expect(client.getSnapshot().session.phase).toBe('joining');
    fake.serverConnect();
    await vi.advanceTimersByTimeAsync(999);
    expect(fake.sent('user:join')).toEqual(['Alice']);
    expect(client.getSnapshot().session.phase).toBe('joining');
    await vi.advanceTimersByTimeAsync(1);
    expect(fake.sent('user:join')).toEqual(['Alice', 'Alice']);
    await until(client, (s) => s.session.sync.kind === 'synced');
    expect(client.getSnapshot().session.phase).toBe('ready');
    expect(fake.sent('room:join')).toEqual(['general']);
    expect(fake.sent('history:fetch')).toEqual([{ with: 'Bob', limit: 50 }]);
    expect(client.getSnapshot().chat.conversations['dm:bob']?.messages).toHaveLength(1);
    expect(client.getSnapshot().chat.active).toBe('room:general');
  });

  it('gives up on a name still taken after the retries, and shows the form', async () => {
    vi.useFakeTimers();
    const fake = new FakeSocket();
    fake.respond['user:join'] = () => ({ ok: false, error: 'username_taken' });
    const client = startClient(fake, memoryStorage({ [SESSION_KEY]: JSON.stringify({ username: 'Alice' }) }));
    fake.serverConnect();
    await vi.advanceTimersByTimeAsync(1000 + 2000 + 4000 + 8000);
    expect(fake.sent('user:join')).toHaveLength(5);
    expect(client.getSnapshot().session.phase).toBe('login');
    expect(client.getSnapshot().session.loginError?.code).toBe('username_taken');
    expect(client.getSnapshot().session.lastName).toBe('Alice');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(fake.sent('user:join')).toHaveLength(5);
  });

  it('loads older history with before = the oldest id', async () => {
    const fake = new FakeSocket();
    chatServer(fake);
    fake.respond['room:create'] = (name) => {
      fake.push('room:history', {
        room: name,
        messages: [{ id: 'n1', type: 'room', room: name, from: 'Bob', content: 'newer', timestamp: 10 }],
        hasMore: true,
      });
      return { ok: true, room: { name, users: 2 } };
    };
    fake.respond['history:fetch'] = () => ({
      ok: true,
      messages: [{ id: 'o1', type: 'room', room: 'general', from: 'Bob', content: 'older', timestamp: 5 }],
      hasMore: false,
    });
    const client = await signedIn(fake);
    client.loadOlder('room:general');
    expect(fake.sent('history:fetch')).toEqual([{ room: 'general', before: 'n1', limit: 50 }]);
    await until(client, () => contents(client)?.length === 2);
    expect(contents(client)).toEqual(['older', 'newer']);
    expect(client.getSnapshot().chat.conversations['room:general']?.hasMore).toBe(false);
  });

  it('comes back after the server said goodbye (e.g. shutting down for a restart)', async () => {
    const fake = new FakeSocket();
    chatServer(fake);
    const client = await signedIn(fake);
    vi.useFakeTimers();
    fake.active = false; // socket.io-client does not reconnect by itself here
    fake.drop('io server disconnect');
    expect(connStatus(client.getSnapshot().session.link)).toBe('offline');
    await vi.advanceTimersByTimeAsync(1000);
    expect(fake.active).toBe(true);
    fake.serverConnect(false);
    await until(client, (s) => s.session.sync.kind === 'synced');
    expect(connStatus(client.getSnapshot().session.link)).toBe('connected');
    expect(fake.sent('user:join')).toEqual(['Alice', 'Alice']);
  });

  it('marks a send refused by the server as failed with its reason, and retries it on demand', async () => {
    const fake = new FakeSocket();
    chatServer(fake);
    const client = await signedIn(fake);
    const realSend = fake.respond['message:room'];
    fake.respond['message:room'] = () => ({ ok: false, error: 'content_too_long', message: 'At most 4000.' });
    client.send('room:general', 'x'.repeat(5000));
    await until(client, (s) => s.chat.pending[0]?.status === 'failed');
    expect(pending(client)[0]?.error).toBe('At most 4000.');
    const [first] = fake.sent('message:room') as SendPayload[];

    if (realSend) fake.respond['message:room'] = realSend;
    client.retrySend(first?.clientId ?? '');
    const [, again] = fake.sent('message:room') as SendPayload[];
    expect(again?.clientId).toBe(first?.clientId);
    await until(client, (s) => s.chat.pending.length === 0);
  });

  it('resends after a rate limit, 1 s later, with the same clientId', async () => {
    const fake = new FakeSocket();
    chatServer(fake);
    const client = await signedIn(fake);
    const realSend = fake.respond['message:room'];
    fake.respond['message:room'] = (p, n) => (n === 1 ? { ok: false, error: 'rate_limited' } : realSend?.(p, n));
    vi.useFakeTimers();
    client.send('room:general', 'slow down');
    await vi.advanceTimersByTimeAsync(999);
    expect(fake.sent('message:room')).toHaveLength(1);
    expect(pending(client)[0]?.status).toBe('queued');
    await vi.advanceTimersByTimeAsync(1);
    const sent = fake.sent('message:room') as SendPayload[];
    expect(sent).toHaveLength(2);
    expect(sent[1]?.clientId).toBe(sent[0]?.clientId);
    await until(client, (s) => s.chat.pending.length === 0);
  });

  it('asks for a token when the server refuses anonymous connections', async () => {
    const fake = new FakeSocket();
    const client = startClient(fake);
    fake.active = false;
    fake.push('connect_error', new Error('unauthorized'));
    expect(client.getSnapshot().session.tokenRequired).toBe(true);
    const claims = btoa(JSON.stringify({ sub: 'Alice' })).replace(/=+$/, '');
    client.signInWithToken(`e30.${claims}.sig`);
    expect(fake.auth).toEqual({ token: `e30.${claims}.sig` });
    expect(client.getSnapshot().session.phase).toBe('joining');
    fake.respond['user:join'] = (name) => ({ ok: true, user: { id: '1', username: name } });
    fake.serverConnect();
    await until(client, (s) => s.session.phase === 'ready');
    expect(fake.sent('user:join')).toEqual(['Alice']);
  });

  it('signs out: disconnects, forgets the session and comes back anonymous', async () => {
    const fake = new FakeSocket();
    chatServer(fake);
    const storage = memoryStorage();
    const client = await signedIn(fake, storage);
    expect(storage.getItem(SESSION_KEY)).not.toBeNull();
    client.signOut();
    expect(storage.getItem(SESSION_KEY)).toBeNull();
    expect(fake.connected).toBe(false);
    expect(fake.active).toBe(true); // connecting again
    expect(fake.auth).toEqual({});
    expect(client.getSnapshot().session.phase).toBe('login');
    expect(client.getSnapshot().chat.conversations).toEqual({});
  });

  it('prunes a typing notice whose "stopped" never came', async () => {
    const fake = new FakeSocket();
    chatServer(fake);
    const client = await signedIn(fake);
    vi.useFakeTimers();
    fake.push('typing', { room: 'general', from: 'Bob', isTyping: true });
    expect(client.getSnapshot().chat.typing['room:general']).toBeDefined();
    await vi.advanceTimersByTimeAsync(7000);
    expect(client.getSnapshot().chat.typing).toEqual({});
  });
});

describe('ChatClient with a v2 server', () => {
  /** A v2 guest server: user:join returns a resume token; conversations:list and read:mark answer. */
  function v2Server(fake: FakeSocket) {
    chatServer(fake);
    fake.respond['user:join'] = (name) => ({ ok: true, user: { id: 'u1', username: name }, token: 'resume-1' });
    fake.respond['conversations:list'] = () => ({
      ok: true,
      conversations: [
        {
          type: 'private',
          with: 'Carol',
          unread: 1,
          lastMessage: { id: 'c1', type: 'private', from: 'Carol', to: 'Alice', content: 'ping', timestamp: 9 },
        },
      ],
    });
    fake.respond['read:mark'] = () => ({ ok: true, unread: 0 });
  }

  it('keeps the resume token in localStorage; the next page connects with it and needs no user:join', async () => {
    const local = memoryStorage();
    const fake = new FakeSocket();
    v2Server(fake);
    const client = new ChatClient(fake as unknown as ChatSocket, memoryStorage(), local);
    clients.push(client);
    client.start();
    fake.serverConnect();
    client.signIn('Alice');
    await until(client, (s) => s.chat.server === 'v2' && s.chat.conversations['dm:carol'] !== undefined);
    expect(JSON.parse(local.getItem(IDENTITY_KEY) ?? '{}')).toEqual({ id: 'u1', username: 'Alice', token: 'resume-1' });
    expect(fake.auth).toEqual({ token: 'resume-1' });
    expect(client.getSnapshot().chat.unread['dm:carol']).toBe(1);

    // A reload (a new tab would do the same: the identity is in localStorage).
    const fake2 = new FakeSocket();
    v2Server(fake2);
    const again = new ChatClient(fake2 as unknown as ChatSocket, memoryStorage(), local);
    clients.push(again);
    again.start();
    expect(fake2.auth).toEqual({ token: 'resume-1' });
    fake2.serverConnect();
    await until(again, (s) => s.chat.conversations['dm:carol'] !== undefined);
    expect(again.getSnapshot().session.phase).toBe('ready');
    expect(again.getSnapshot().chat.me).toBe('Alice');
    expect(fake2.sent('user:join')).toEqual([]);
    expect(fake2.sent('room:join')).toEqual([]);
  });

  it('drops a token the server refuses and asks for the name again, prefilled', () => {
    const local = memoryStorage({ [IDENTITY_KEY]: JSON.stringify({ id: 'u1', username: 'Alice', token: 'stale' }) });
    const fake = new FakeSocket();
    const client = new ChatClient(fake as unknown as ChatSocket, memoryStorage(), local);
    clients.push(client);
    client.start();
    expect(fake.auth).toEqual({ token: 'stale' });
    fake.active = false; // socket.io-client gives up after a CONNECT_ERROR
    fake.push('connect_error', new Error('unauthorized'));
    expect(local.getItem(IDENTITY_KEY)).toBeNull();
    expect(fake.auth).toEqual({});
    expect(fake.active).toBe(true); // connecting again, anonymous
    expect(client.getSnapshot().session).toMatchObject({ phase: 'login', lastName: 'Alice', tokenRequired: false });
  });

  it('marks the open conversation read and follows read:update from another tab', async () => {
    vi.useFakeTimers();
    const fake = new FakeSocket();
    v2Server(fake);
    fake.respond['history:fetch'] = () => ({
      ok: true,
      messages: [{ id: 'c1', type: 'private', from: 'Carol', to: 'Alice', content: 'ping', timestamp: 9 }],
      hasMore: false,
    });
    const client = startClient(fake);
    fake.serverConnect();
    client.signIn('Alice');
    await vi.advanceTimersByTimeAsync(0);
    client.open('dm:carol');
    client.viewAtBottom('dm:carol', true);
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.sent('read:mark')).toEqual([]);
    await vi.advanceTimersByTimeAsync(500);
    expect(fake.sent('read:mark')).toEqual([{ with: 'Carol', id: 'c1' }]);
    await vi.advanceTimersByTimeAsync(5000);
    expect(fake.sent('read:mark')).toHaveLength(1);

    client.open(null);
    fake.push('message:receive', { id: 'c2', type: 'private', from: 'Carol', to: 'Alice', content: 'again', timestamp: 10 });
    expect(client.getSnapshot().chat.unread['dm:carol']).toBe(1);
    fake.push('read:update', { with: 'Carol', lastReadId: 'c2', unread: 0 });
    expect(client.getSnapshot().chat.unread['dm:carol']).toBeUndefined();
  });

  it('a v1 server does not answer conversations:list: after the timeout, quietly the v1 lists', async () => {
    vi.useFakeTimers();
    const fake = new FakeSocket();
    chatServer(fake);
    const client = startClient(fake);
    fake.serverConnect();
    client.signIn('Alice');
    await vi.advanceTimersByTimeAsync(0);
    expect(client.getSnapshot().session.sync.kind).toBe('synced'); // sending does not wait for the list
    expect(client.getSnapshot().chat.server).toBe('unknown');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(client.getSnapshot().chat.server).toBe('v1');
    expect(client.getSnapshot().chat.notice).toBeNull();
    expect(fake.sent('conversations:list')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(fake.sent('conversations:list')).toHaveLength(1);
    expect(fake.sent('read:mark')).toEqual([]);
  });
});
