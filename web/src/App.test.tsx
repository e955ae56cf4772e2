// @vitest-environment jsdom
// The app on a scripted socket: the screens a user goes through, found by
// role and label as a user (and the end-to-end test) finds them.
import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { App } from './App.tsx';
import { ChatClient } from './client/ChatClient.ts';
import type { ChatSocket } from './socket.ts';
import { FakeSocket, memoryStorage } from './test/fakeSocket.ts';

const clients: ChatClient[] = [];
afterEach(() => {
  cleanup();
  for (const c of clients.splice(0)) c.stop();
});

function app() {
  const fake = new FakeSocket();
  fake.respond['user:join'] = (name) => ({ ok: true, user: { id: '1', username: name } });
  fake.respond['room:create'] = (name) =>
    name === 'taken' ? { ok: false, error: 'room_exists', message: 'That room exists.' } : { ok: true, room: { name, users: 1 } };
  const client = new ChatClient(fake as unknown as ChatSocket, memoryStorage());
  clients.push(client);
  client.start();
  render(<App client={client} />);
  act(() => fake.serverConnect());
  return { fake, client };
}

async function signIn(name: string) {
  fireEvent.change(screen.getByLabelText('Username'), { target: { value: name } });
  await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Join' })));
}

async function createRoom(name: string) {
  fireEvent.change(screen.getByPlaceholderText('New room name'), { target: { value: name } });
  await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Create' })));
}

describe('App', () => {
  it('signs in, creates a room and opens it; lists who is online', async () => {
    const { fake } = app();
    expect(screen.getByRole('status').textContent).toBe('Connected');
    await signIn('Alice');
    const nav = screen.getByRole('navigation', { name: 'Conversations' });
    expect(screen.getByText('Signed in as')).toBeTruthy();

    await createRoom('general');
    expect(screen.getByRole('heading', { level: 2, name: '# general' })).toBeTruthy();
    const rooms = within(nav).getByRole('list', { name: 'Rooms' });
    expect(within(rooms).getByRole('button', { current: true }).textContent).toContain('# general');
    expect((screen.getByPlaceholderText('New room name') as HTMLInputElement).value).toBe('');

    act(() => fake.push('users:update', [{ id: '1', username: 'Alice' }, { id: '2', username: 'Bob' }]));
    const online = within(nav).getByRole('list', { name: 'Online users' });
    expect(within(online).getAllByRole('listitem').map((li) => li.getAttribute('data-user'))).toEqual(['Alice', 'Bob']);
    expect(within(online).getByRole('button', { name: 'Chat privately with Bob' })).toBeTruthy();
    expect(screen.getByRole('heading', { name: 'Online (2)' })).toBeTruthy();
  });

  it('shows a room refusal under the form, and keeps the typed name', async () => {
    app();
    await signIn('Alice');
    await createRoom('');
    expect(screen.getByRole('alert').textContent).toBe('Please enter a room name.');
    await createRoom('taken');
    expect(screen.getByRole('alert').textContent).toBe('That room exists.');
    const input = screen.getByPlaceholderText('New room name') as HTMLInputElement;
    expect(input.value).toBe('taken');
    expect(input.getAttribute('aria-invalid')).toBe('true');
  });

  it('a message from someone else in another conversation shows as unread', async () => {
    const { fake } = app();
    await signIn('Alice');
    await createRoom('general');
    act(() =>
      fake.push('message:receive', { id: 'd1', type: 'private', from: 'Bob', to: 'Alice', content: 'psst', timestamp: 1 }),
    );
    const chats = screen.getByRole('list', { name: 'Private chats' });
    expect(within(chats).getByText('Bob')).toBeTruthy();
    expect(chats.querySelector('.badge')?.getAttribute('data-unread')).toBe('1');
    expect(document.title).toBe('(1) Parley');
  });
});
