// @vitest-environment jsdom
import { act, renderHook, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../protocol.ts';
import type { ChatSocket } from '../socket.ts';
import { FakeSocket, memoryStorage } from '../test/fakeSocket.ts';
import { SESSION_KEY, useChat } from './useChat.ts';

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

async function signedIn(fake: FakeSocket, storage = memoryStorage()) {
  const hook = renderHook(() => useChat(fake as unknown as ChatSocket, storage));
  act(() => fake.serverConnect());
  act(() => hook.result.current.signIn('Alice'));
  await waitFor(() => expect(hook.result.current.phase).toBe('ready'));
  await act(async () => {
    await hook.result.current.createRoom('general');
  });
  return hook;
}

const contents = (h: { result: { current: ReturnType<typeof useChat> } }) =>
  h.result.current.state.conversations['room:general']?.messages.map((m) => m.content);

describe('useChat', () => {
  it('shows a refused name in place, then signs in and remembers the session', async () => {
    const fake = new FakeSocket();
    const storage = memoryStorage();
    fake.respond['user:join'] = (name) =>
      name === 'Bob' ? { ok: false, error: 'username_taken', message: 'Bob is taken' } : { ok: true, user: { id: '1', username: name } };
    const { result } = renderHook(() => useChat(fake as unknown as ChatSocket, storage));
    expect(fake.active).toBe(true); // the hook opened the connection
    act(() => fake.serverConnect());
    expect(result.current.phase).toBe('login');
    expect(fake.sent('rooms:list')).toHaveLength(1);

    act(() => result.current.signIn('Bob'));
    await waitFor(() => expect(result.current.loginError?.code).toBe('username_taken'));
    expect(result.current.loginError?.message).toBe('Bob is taken');
    expect(result.current.phase).toBe('login');

    act(() => result.current.signIn('Alice'));
    await waitFor(() => expect(result.current.phase).toBe('ready'));
    expect(result.current.state.me).toBe('Alice');
    expect(result.current.loginError).toBeNull();
    await waitFor(() => expect(JSON.parse(storage.getItem(SESSION_KEY) ?? '{}').username).toBe('Alice'));
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
    const hook = await signedIn(fake);
    expect(contents(hook)).toEqual(['earlier']);
    expect(hook.result.current.state.active).toBe('room:general');
  });

  it('retries a send with the same clientId after a reconnect that was not recovered, delivering it once', async () => {
    const fake = new FakeSocket();
    const server = chatServer(fake);
    const hook = await signedIn(fake);
    const realSend = fake.respond['message:room'];
    if (!realSend) throw new Error('no responder');

    // The server stores the first attempt but its ack is lost with the connection.
    fake.respond['message:room'] = (p, n) => {
      realSend(p, n);
      return undefined;
    };
    act(() => hook.result.current.send('room:general', 'hello'));
    const [first] = fake.sent('message:room') as SendPayload[];
    expect(first?.content).toBe('hello');
    await act(async () => fake.drop());
    expect(hook.result.current.state.status).not.toBe('connected');
    expect(hook.result.current.state.pending.map((p) => p.status)).toEqual(['queued']);

    // Typed while offline: nothing goes out yet.
    act(() => hook.result.current.send('room:general', 'typed offline'));
    expect(fake.sent('message:room')).toHaveLength(1);

    // The server restarted: a fresh session (not recovered).
    fake.respond['message:room'] = realSend;
    const before = fake.emitted.length;
    await act(async () => fake.serverConnect(false));
    await waitFor(() => expect(hook.result.current.state.pending).toEqual([]));

    const after = fake.emitted.slice(before).map((e) => e.event);
    expect(after.indexOf('user:join')).toBeGreaterThanOrEqual(0);
    expect(after.indexOf('room:join')).toBeGreaterThan(after.indexOf('user:join'));
    expect(after.indexOf('message:room')).toBeGreaterThan(after.indexOf('room:join'));
    const resent = (fake.sent('message:room') as SendPayload[]).slice(1);
    expect(resent.map((p) => p.content).sort()).toEqual(['hello', 'typed offline']);
    expect(resent.find((p) => p.content === 'hello')?.clientId).toBe(first?.clientId);
    expect(server.stored()).toBe(2);
    await waitFor(() => expect(contents(hook)).toEqual(['hello', 'typed offline']));
  });

  it('after a recovered reconnect only resends, without signing in again', async () => {
    const fake = new FakeSocket();
    chatServer(fake);
    const hook = await signedIn(fake);
    await act(async () => fake.drop());
    act(() => hook.result.current.send('room:general', 'queued'));
    const before = fake.emitted.length;
    await act(async () => fake.serverConnect(true));
    await waitFor(() => expect(hook.result.current.state.pending).toEqual([]));
    const events = fake.emitted.slice(before).map((e) => e.event);
    expect(events).not.toContain('user:join');
    expect(events).not.toContain('room:join');
    expect(events).toContain('message:room');
    expect(contents(hook)).toEqual(['queued']);
  });

  it('signs back in after a reload, retrying while the old connection still holds the name', async () => {
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
    const { result } = renderHook(() => useChat(fake as unknown as ChatSocket, storage));
    expect(result.current.phase).toBe('joining');
    act(() => fake.serverConnect());
    await waitFor(() => expect(result.current.phase).toBe('ready'), { timeout: 4000 });
    expect(fake.sent('user:join')).toEqual(['Alice', 'Alice']);
    await waitFor(() => expect(fake.sent('room:join')).toEqual(['general']));
    expect(fake.sent('history:fetch')).toEqual([{ with: 'Bob', limit: 50 }]);
    await waitFor(() => expect(result.current.state.conversations['dm:bob']?.messages).toHaveLength(1));
    expect(result.current.state.active).toBe('room:general');
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
    const hook = await signedIn(fake);
    act(() => hook.result.current.loadOlder('room:general'));
    expect(fake.sent('history:fetch')).toEqual([{ room: 'general', before: 'n1', limit: 50 }]);
    await waitFor(() => expect(contents(hook)).toEqual(['older', 'newer']));
    expect(hook.result.current.state.conversations['room:general']?.hasMore).toBe(false);
  });

  it('comes back after the server said goodbye (e.g. shutting down for a restart)', async () => {
    const fake = new FakeSocket();
    chatServer(fake);
    const hook = await signedIn(fake);
    act(() => {
      fake.active = false; // socket.io-client does not reconnect by itself here
      fake.drop('io server disconnect');
    });
    expect(hook.result.current.state.status).toBe('offline');
    await waitFor(() => expect(fake.active).toBe(true), { timeout: 4000 });
    await act(async () => fake.serverConnect(false));
    await waitFor(() => expect(hook.result.current.state.status).toBe('connected'));
    expect(fake.sent('user:join')).toEqual(['Alice', 'Alice']);
  });

  it('marks a send refused by the server as failed with its reason', async () => {
    const fake = new FakeSocket();
    chatServer(fake);
    const hook = await signedIn(fake);
    fake.respond['message:room'] = () => ({ ok: false, error: 'content_too_long', message: 'At most 4000.' });
    act(() => hook.result.current.send('room:general', 'x'.repeat(5000)));
    await waitFor(() => expect(hook.result.current.state.pending[0]?.status).toBe('failed'));
    expect(hook.result.current.state.pending[0]?.error).toBe('At most 4000.');
  });

  it('asks for a token when the server refuses anonymous connections', async () => {
    const fake = new FakeSocket();
    const { result } = renderHook(() => useChat(fake as unknown as ChatSocket, memoryStorage()));
    act(() => {
      fake.active = false;
      fake.push('connect_error', new Error('unauthorized'));
    });
    expect(result.current.tokenRequired).toBe(true);
    const claims = btoa(JSON.stringify({ sub: 'Alice' })).replace(/=+$/, '');
    act(() => result.current.signInWithToken(`e30.${claims}.sig`));
    expect(fake.auth).toEqual({ token: `e30.${claims}.sig` });
    expect(result.current.phase).toBe('joining');
    fake.respond['user:join'] = (name) => ({ ok: true, user: { id: '1', username: name } });
    act(() => fake.serverConnect());
    await waitFor(() => expect(result.current.phase).toBe('ready'));
    expect(fake.sent('user:join')).toEqual(['Alice']);
  });
});
