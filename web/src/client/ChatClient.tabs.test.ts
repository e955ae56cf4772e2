// @vitest-environment jsdom
// The browser's tabs share the guest identity (localStorage): signing out in
// one signs out the others that were that guest.
import { afterEach, describe, expect, it } from 'vitest';
import type { ChatSocket } from '../socket.ts';
import { FakeSocket } from '../test/fakeSocket.ts';
import { ChatClient } from './ChatClient.ts';
import { IDENTITY_KEY } from './storage.ts';

const clients: ChatClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.stop();
  localStorage.clear();
  sessionStorage.clear();
});

function tab(): { fake: FakeSocket; client: ChatClient } {
  const fake = new FakeSocket();
  const client = new ChatClient(fake as unknown as ChatSocket, sessionStorage, localStorage);
  clients.push(client);
  client.start();
  fake.serverConnect();
  return { fake, client };
}

describe('ChatClient across tabs', () => {
  it('a sign-out in another tab (the identity removed) signs this tab out too', () => {
    localStorage.setItem(IDENTITY_KEY, JSON.stringify({ id: 'u1', username: 'Alice', token: 'resume-1' }));
    const { fake, client } = tab();
    expect(client.getSnapshot().session.phase).toBe('ready');
    // Another tab's removeItem: the browser tells this one with a storage event.
    localStorage.removeItem(IDENTITY_KEY);
    window.dispatchEvent(new StorageEvent('storage', { key: IDENTITY_KEY, newValue: null, storageArea: localStorage }));
    expect(client.getSnapshot().session).toMatchObject({ phase: 'login', resume: null, farewell: { name: 'Alice', kept: true } });
    expect(fake.auth).toEqual({});
  });

  it('other keys, and tabs not signed in as a guest, are left alone', () => {
    const { client } = tab();
    window.dispatchEvent(new StorageEvent('storage', { key: 'other', newValue: null, storageArea: localStorage }));
    window.dispatchEvent(new StorageEvent('storage', { key: IDENTITY_KEY, newValue: null, storageArea: localStorage }));
    expect(client.getSnapshot().session.phase).toBe('login');
    expect(client.getSnapshot().session.farewell).toBeNull();
  });
});
