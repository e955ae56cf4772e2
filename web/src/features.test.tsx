// @vitest-environment jsdom
// The feature switches (features.ts): with both off, as by default, the app
// on a v2 server shows what the server sends (edited marker, tombstones,
// reply quotes, reaction chips, the topic) but offers none of the controls
// of contract v2 parts 2 and 3; with them on, it offers them.
import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { App } from './App.tsx';
import { ChatClient } from './client/ChatClient.ts';
import { FEATURES, FeaturesContext, type Features } from './features.ts';
import type { ChatSocket } from './socket.ts';
import { FakeSocket, memoryStorage } from './test/fakeSocket.ts';

const clients: ChatClient[] = [];
afterEach(() => {
  cleanup();
  for (const c of clients.splice(0)) c.stop();
});

const T = 1_700_000_000_000;
const OFF: Features = { messageActions: false, roomModeration: false };
const ON: Features = { messageActions: true, roomModeration: true };
const bobMsg = {
  id: 'm1',
  type: 'room',
  room: 'general',
  from: 'Bob',
  content: 'hello there',
  timestamp: T,
  editedAt: T + 3,
  reactions: [{ emoji: '🎉', count: 2, users: ['Bob', 'Alice'] }],
};
const aliceMsg = {
  id: 'm2',
  type: 'room',
  room: 'general',
  from: 'Alice',
  content: 'my words',
  timestamp: T + 1,
  replyTo: { id: 'm1', from: 'Bob', excerpt: 'hello there' },
};
const gone = { id: 'm3', type: 'room', room: 'general', from: 'Bob', content: '', deleted: true, timestamp: T + 2 };

/** Alice, the owner of #general (topic "Talk") on a v2 server, rendered with `features`. */
async function ownerInRoom(features: Features) {
  const fake = new FakeSocket();
  fake.respond['user:join'] = (name) => ({ ok: true, user: { id: '1', username: name }, token: 'resume-1' });
  fake.respond['conversations:list'] = () => ({
    ok: true,
    conversations: [{ type: 'private', with: 'Carol', unread: 0, lastMessage: null }],
  });
  fake.respond['room:create'] = () => ({
    ok: true,
    room: { name: 'general', users: 2, members: 2, private: false, topic: 'Talk', role: 'owner' },
  });
  const client = new ChatClient(fake as unknown as ChatSocket, memoryStorage());
  clients.push(client);
  client.start();
  render(
    <FeaturesContext.Provider value={features}>
      <App client={client} />
    </FeaturesContext.Provider>,
  );
  act(() => fake.serverConnect());
  fireEvent.change(screen.getByLabelText('Username'), { target: { value: 'Alice' } });
  await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Join' })));
  await screen.findByRole('list', { name: 'Recent conversations' });
  // The create form, seen before a room is open.
  const form = screen.getByPlaceholderText('New room name').closest('form') as HTMLElement;
  const createOptions = {
    private: within(form).queryByRole('checkbox', { name: /Private/ }) !== null,
    topic: within(form).queryByPlaceholderText('Topic (optional)') !== null,
  };
  fireEvent.change(screen.getByPlaceholderText('New room name'), { target: { value: 'general' } });
  await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Create' })));
  act(() => fake.push('room:history', { room: 'general', messages: [bobMsg, aliceMsg, gone], hasMore: false }));
  return { fake, createOptions };
}

const item = (id: string) => document.querySelector(`li.msg[data-id="${id}"]`) as HTMLElement;

describe('feature switches', () => {
  it('are off by default (no VITE_PARLEY_* variables in the test build)', () => {
    expect(FEATURES).toEqual(OFF);
  });

  it('off: server data is shown, but no message actions or room moderation controls', async () => {
    const { fake, createOptions } = await ownerInRoom(OFF);
    expect(createOptions).toEqual({ private: false, topic: false });
    // What the server sent is shown.
    expect(within(item('m1')).getByText('(edited)')).toBeTruthy();
    expect(within(item('m2')).getByText('hello there')).toBeTruthy(); // the reply's quote
    expect(item('m3').querySelector('.msg-body')?.textContent).toBe('This message was deleted');
    expect(screen.getByText('Talk')).toBeTruthy();
    // Reaction chips are read only.
    const chip = within(item('m1')).getByLabelText(/🎉 2/);
    expect(chip.tagName).toBe('SPAN');
    expect(within(item('m1')).queryByRole('button', { name: /🎉/ })).toBeNull();
    // No actions bar, no focusable message, no shortcuts.
    expect(screen.queryAllByRole('toolbar')).toEqual([]);
    for (const id of ['m1', 'm2', 'm3']) expect(item(id).hasAttribute('tabindex')).toBe(false);
    for (const key of ['e', 'r', '+', 'Delete']) fireEvent.keyDown(item('m2'), { key });
    expect(within(item('m2')).queryByLabelText('Edit message')).toBeNull();
    expect(screen.queryByRole('group', { name: 'Confirm delete' })).toBeNull();
    expect(screen.queryByText(/Replying to/)).toBeNull();
    expect(fake.sent('message:edit')).toEqual([]);
    // No room moderation: members panel, topic editing, deletion.
    for (const name of ['Members', 'Edit topic', 'Delete room', 'Reply', 'React', 'Edit', 'Delete']) {
      expect(screen.queryByRole('button', { name })).toBeNull();
    }
  });

  it('on: the same room offers message actions and room moderation', async () => {
    const { fake, createOptions } = await ownerInRoom(ON);
    expect(createOptions).toEqual({ private: true, topic: true });
    expect(within(item('m1')).getByRole('button', { name: /🎉 2/ })).toBeTruthy();
    expect(within(item('m2')).getByRole('toolbar')).toBeTruthy();
    expect(item('m2').getAttribute('tabindex')).toBe('0');
    for (const name of ['Members', 'Edit topic', 'Delete room']) expect(screen.getByRole('button', { name })).toBeTruthy();
    fireEvent.keyDown(item('m2'), { key: 'e' });
    expect(within(item('m2')).getByLabelText('Edit message')).toBeTruthy();
    fireEvent.keyDown(within(item('m2')).getByLabelText('Edit message'), { key: 'Escape' });
    fireEvent.keyDown(item('m1'), { key: 'r' });
    expect(screen.getByText(/Replying to/)).toBeTruthy();
    fake.respond['room:members'] = () => ({ ok: true, members: [] });
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Members' })));
    expect(fake.sent('room:members')).toEqual(['general']);
  });
});
