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

describe('App with a v2 server', () => {
  function v2app() {
    const { fake, client } = app();
    fake.respond['user:join'] = (name) => ({ ok: true, user: { id: '1', username: name }, token: 'resume-1' });
    fake.respond['conversations:list'] = () => ({
      ok: true,
      conversations: [
        {
          type: 'room',
          room: 'general',
          role: 'member',
          unread: 3,
          lastMessage: { id: 'g1', type: 'room', room: 'general', from: 'Bob', content: 'see the notes', timestamp: 5 },
        },
        { type: 'private', with: 'Carol', unread: 0, lastMessage: null },
      ],
    });
    fake.respond['message:private'] = (p) =>
      (p as { to: string }).to === 'Nobody' ? { ok: false, error: 'user_not_found' } : { ok: true, id: 'x1', timestamp: 7 };
    return { fake, client };
  }

  it('lists conversations with unread counts and previews, offline peers included', async () => {
    v2app();
    await signIn('Alice');
    const list = await screen.findByRole('list', { name: 'Recent conversations' });
    const rows = within(list).getAllByRole('listitem');
    expect(rows.map((li) => li.getAttribute('data-conv'))).toEqual(['room:general', 'dm:carol']);
    expect(rows[0]?.textContent).toContain('Bob: see the notes');
    expect(rows[0]?.querySelector('.badge')?.getAttribute('data-unread')).toBe('3');
    expect(within(rows[1] as HTMLElement).getByText('(offline)', { exact: false })).toBeTruthy();
    expect(document.title).toBe('(3) Parley');
    // The v1 "Private chats" list is gone; the rooms section offers only rooms to join.
    expect(screen.queryByRole('list', { name: 'Private chats' })).toBeNull();
  });

  it('starts a private conversation by name and shows that no user has it', async () => {
    v2app();
    await signIn('Alice');
    await screen.findByRole('list', { name: 'Recent conversations' });
    fireEvent.change(screen.getByLabelText('New message to'), { target: { value: 'Nobody' } });
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Write' })));
    expect(screen.getByRole('heading', { level: 2, name: 'Nobody' })).toBeTruthy();
    const box = screen.getByPlaceholderText('Message Nobody');
    fireEvent.change(box, { target: { value: 'hello?' } });
    await act(async () => fireEvent.keyDown(box, { key: 'Enter' }));
    expect((await screen.findByText('No user is called “Nobody”.')).textContent).toBeTruthy();
  });

  it('asks before signing out, and says the name stays the guest’s', async () => {
    const { client } = v2app();
    await signIn('Alice');
    await screen.findByRole('list', { name: 'Recent conversations' });
    const button = screen.getByRole('button', { name: 'Sign out' });
    fireEvent.click(button);
    expect(button.getAttribute('aria-expanded')).toBe('true');
    const panel = screen.getByRole('group', { name: 'Sign out' });
    expect(panel.textContent).toContain('stays yours for the guest lifetime');
    fireEvent.keyDown(panel, { key: 'Escape' });
    expect(screen.queryByRole('group', { name: 'Sign out' })).toBeNull();
    // Focus moving elsewhere closes it too.
    fireEvent.click(button);
    fireEvent.blur(button, { relatedTarget: screen.getByLabelText('New message to') });
    expect(screen.queryByRole('group', { name: 'Sign out' })).toBeNull();
    expect(client.getSnapshot().session.phase).toBe('ready');
    fireEvent.click(button);
    await act(async () => fireEvent.click(within(screen.getByRole('group', { name: 'Sign out' })).getByRole('button', { name: 'Sign out' })));
    expect(client.getSnapshot().session.phase).toBe('login');
    expect(document.querySelector('[data-farewell="kept"]')?.textContent).toContain('“Alice” stays reserved');
  });
});
