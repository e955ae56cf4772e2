// @vitest-environment jsdom
import { act, renderHook } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { ChatClient } from '../client/ChatClient.ts';
import type { ChatSocket } from '../socket.ts';
import { FakeSocket, memoryStorage } from '../test/fakeSocket.ts';
import { useChat } from './useChat.ts';

describe('useChat', () => {
  it('renders the client state and follows its changes', async () => {
    const fake = new FakeSocket();
    fake.respond['user:join'] = (name) => ({ ok: true, user: { id: '1', username: name } });
    const client = new ChatClient(fake as unknown as ChatSocket, memoryStorage());
    client.start();
    const { result } = renderHook(() => useChat(client));
    expect(result.current).toBe(client.getSnapshot());
    expect(result.current.session.link.connected).toBe(false);
    act(() => fake.serverConnect());
    expect(result.current.session.link.connected).toBe(true);
    await act(async () => client.signIn('Alice'));
    expect(result.current.session.phase).toBe('ready');
    expect(result.current.chat.me).toBe('Alice');
    client.stop();
  });
});
