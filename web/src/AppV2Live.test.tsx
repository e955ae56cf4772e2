// @vitest-environment jsdom
// The app on a scripted v2 server, contract v2 part 2: actions on messages
// (keyboard and mouse), reply quotes, reactions, tombstones, the members
// panel and its moderation menu, invitations and removal from a room.
// Rendered with both feature switches on (features.ts); features.test.tsx
// checks what the app shows with them off.
import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { App } from './App.tsx';
import { ALL_FEATURES, FeaturesContext } from './features.ts';
import { ChatClient } from './client/ChatClient.ts';
import type { ChatSocket } from './socket.ts';
import { FakeSocket, memoryStorage } from './test/fakeSocket.ts';

const clients: ChatClient[] = [];
afterEach(() => {
  cleanup();
  for (const c of clients.splice(0)) c.stop();
});

const T = 1_700_000_000_000;
const bobMsg = { id: 'm1', type: 'room', room: 'general', from: 'Bob', content: 'hello there', timestamp: T };
const aliceMsg = { id: 'm2', type: 'room', room: 'general', from: 'Alice', content: 'my words', timestamp: T + 1 };

/** Alice signed in on a v2 server, in #general (role `role`) with two messages. */
async function inRoom(role = 'member') {
  const fake = new FakeSocket();
  fake.respond['user:join'] = (name) => ({ ok: true, user: { id: '1', username: name }, token: 'resume-1' });
  fake.respond['conversations:list'] = () => ({ ok: true, conversations: [{ type: 'private', with: 'Carol', unread: 0, lastMessage: null }] });
  fake.respond['room:create'] = () => ({ ok: true, room: { name: 'general', users: 2, members: 2, private: false, topic: 'Talk', role } });
  const client = new ChatClient(fake as unknown as ChatSocket, memoryStorage());
  clients.push(client);
  client.start();
  render(
    <FeaturesContext.Provider value={ALL_FEATURES}>
      <App client={client} />
    </FeaturesContext.Provider>,
  );
  act(() => fake.serverConnect());
  fireEvent.change(screen.getByLabelText('Username'), { target: { value: 'Alice' } });
  await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Join' })));
  await screen.findByRole('list', { name: 'Recent conversations' });
  fireEvent.change(screen.getByPlaceholderText('New room name'), { target: { value: 'general' } });
  await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Create' })));
  act(() => fake.push('room:history', { room: 'general', messages: [bobMsg, aliceMsg], hasMore: false }));
  return { fake, client };
}

const item = (id: string) => document.querySelector(`li.msg[data-id="${id}"]`) as HTMLElement;

describe('messages that live', () => {
  it('edits one’s own message from the keyboard: E opens the editor, Enter saves', async () => {
    const { fake } = await inRoom();
    fake.respond['message:edit'] = () => ({ ok: true, editedAt: T + 5 });
    item('m2').focus();
    fireEvent.keyDown(item('m2'), { key: 'e' });
    const box = within(item('m2')).getByLabelText('Edit message');
    expect(document.activeElement).toBe(box);
    fireEvent.change(box, { target: { value: 'better words' } });
    await act(async () => fireEvent.keyDown(box, { key: 'Enter' }));
    expect(fake.sent('message:edit')).toEqual([{ id: 'm2', room: 'general', content: 'better words' }]);
    expect(item('m2').querySelector('.msg-body')?.textContent).toBe('better words');
    expect(within(item('m2')).getByText('(edited)')).toBeTruthy();
    // Others' messages cannot be edited: E does nothing there, and there is no Edit button.
    fireEvent.keyDown(item('m1'), { key: 'e' });
    expect(within(item('m1')).queryByLabelText('Edit message')).toBeNull();
    expect(within(item('m1')).queryByRole('button', { name: 'Edit' })).toBeNull();
  });

  it('Escape cancels an edit and focus goes back to the message', async () => {
    const { fake } = await inRoom();
    fireEvent.click(within(item('m2')).getByRole('button', { name: 'Edit' }));
    const box = within(item('m2')).getByLabelText('Edit message');
    fireEvent.change(box, { target: { value: 'never mind' } });
    fireEvent.keyDown(box, { key: 'Escape' });
    expect(fake.sent('message:edit')).toEqual([]);
    expect(document.activeElement).toBe(item('m2'));
    expect(item('m2').querySelector('.msg-body')?.textContent).toBe('my words');
  });

  it('a refused delete is undone and its error shown next to the message; message:update makes a tombstone', async () => {
    const { fake } = await inRoom();
    fake.respond['message:delete'] = () => ({ ok: false, error: 'forbidden' });
    fireEvent.click(within(item('m2')).getByRole('button', { name: 'Delete' }));
    await act(async () => fireEvent.click(within(item('m2')).getByRole('button', { name: 'Delete message' })));
    expect(within(item('m2')).getByRole('alert').textContent).toContain('You are not allowed to do that.');
    expect(item('m2').querySelector('.msg-body')?.textContent).toBe('my words');
    act(() => fake.push('message:update', { ...aliceMsg, content: '', deleted: true }));
    expect(item('m2').querySelector('.msg-body')?.textContent).toBe('This message was deleted');
  });

  it('reacts from the picker; chips say who reacted and toggle one’s own reaction', async () => {
    const { fake } = await inRoom();
    fake.respond['reaction:add'] = () => ({ ok: true });
    fake.respond['reaction:remove'] = () => ({ ok: true });
    fireEvent.click(within(item('m1')).getByRole('button', { name: 'React' }));
    await act(async () => fireEvent.click(within(item('m1')).getByRole('button', { name: 'React with 🎉' })));
    expect(fake.sent('reaction:add')).toEqual([{ id: 'm1', room: 'general', emoji: '🎉' }]);
    act(() => fake.push('message:update', { ...bobMsg, reactions: [{ emoji: '🎉', count: 2, users: ['Bob', 'Alice'] }] }));
    const chip = within(item('m1')).getByRole('button', { name: '🎉 2: Bob and you reacted with 🎉' });
    expect(chip.getAttribute('aria-pressed')).toBe('true');
    expect(chip.getAttribute('title')).toBe('Bob and you reacted with 🎉');
    await act(async () => fireEvent.click(chip));
    expect(fake.sent('reaction:remove')).toEqual([{ id: 'm1', room: 'general', emoji: '🎉' }]);
    // A typed emoji that breaks the rule is not sent.
    fireEvent.click(within(item('m1')).getByRole('button', { name: 'React' }));
    fireEvent.change(within(item('m1')).getByLabelText('Other emoji'), { target: { value: 'no way' } });
    fireEvent.click(within(item('m1')).getByRole('button', { name: 'Add' }));
    expect(within(item('m1')).getByRole('alert').textContent).toContain('no spaces');
  });

  it('R replies: the composer quotes the message, the send carries replyTo, the quote shows the original', async () => {
    const { fake } = await inRoom();
    fake.respond['message:room'] = () => ({ ok: true, id: 'm3', timestamp: T + 9 });
    fireEvent.keyDown(item('m1'), { key: 'r' });
    expect(screen.getByText('Replying to', { exact: false }).textContent).toContain('hello there');
    const box = screen.getByPlaceholderText('Message # general');
    expect(document.activeElement).toBe(box);
    fireEvent.change(box, { target: { value: 'hi Bob' } });
    await act(async () => fireEvent.keyDown(box, { key: 'Enter' }));
    expect(fake.sent('message:room')).toEqual([{ room: 'general', content: 'hi Bob', clientId: expect.any(String), replyTo: 'm1' }]);
    act(() => fake.push('message:receive', { id: 'm3', type: 'room', room: 'general', from: 'Alice', content: 'hi Bob', timestamp: T + 9, replyTo: { id: 'm1', from: 'Bob', excerpt: 'hello there' } }));
    fireEvent.click(within(item('m3')).getByRole('button', { name: /Reply to Bob: hello there/ }));
    expect(document.activeElement).toBe(item('m1'));
    expect(item('m1').classList.contains('highlight')).toBe(true);
  });
});

describe('reply quotes', () => {
  it('a quote of a message that is not loaded says how to see it', async () => {
    const { fake } = await inRoom();
    act(() =>
      fake.push('message:receive', { ...bobMsg, id: 'm5', content: 'late', timestamp: T + 5, replyTo: { id: 'old', from: 'Carol', excerpt: 'long ago' } }),
    );
    fireEvent.click(within(item('m5')).getByRole('button', { name: /Reply to Carol: long ago/ }));
    expect(within(item('m5')).getByRole('status').textContent).toContain('not loaded');
  });

  it('a long touch press focuses the message (its actions show), a short one does not', async () => {
    await inRoom();
    const li = item('m1');
    vi.useFakeTimers();
    try {
      fireEvent.pointerDown(li, { pointerType: 'touch', clientX: 5, clientY: 5 });
      vi.advanceTimersByTime(200);
      fireEvent.pointerUp(li, { pointerType: 'touch' });
      vi.advanceTimersByTime(1000);
      expect(document.activeElement).not.toBe(li);
      fireEvent.pointerDown(li, { pointerType: 'touch', clientX: 5, clientY: 5 });
      vi.advanceTimersByTime(500);
      expect(document.activeElement).toBe(li);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('rooms with owners', () => {
  it('the owner sees the members with roles and bans a member for a chosen time', async () => {
    const { fake } = await inRoom('owner');
    fake.respond['room:members'] = () => ({ ok: true, members: [{ username: 'Alice', role: 'owner', online: true }, { username: 'Bob', role: 'member', online: false }] });
    fake.respond['room:ban'] = () => ({ ok: true });
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Members' })));
    const panel = screen.getByRole('complementary', { name: 'Members of general' });
    expect(within(panel).getByText('owner')).toBeTruthy();
    expect(within(panel).getByRole('img', { name: 'offline' })).toBeTruthy();
    expect(within(panel).queryByRole('button', { name: 'Actions for Alice' })).toBeNull();
    fireEvent.click(within(panel).getByRole('button', { name: 'Actions for Bob' }));
    fireEvent.click(within(panel).getByRole('button', { name: 'Ban…' }));
    fireEvent.change(within(panel).getByLabelText(/Ban Bob for/), { target: { value: '1' } });
    await act(async () => fireEvent.click(within(panel).getByRole('button', { name: 'Ban' })));
    expect(fake.sent('room:ban')).toEqual([{ room: 'general', user: 'Bob', durationMs: 3_600_000 }]);
    expect(screen.getByText('Talk')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Edit topic' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Delete room' })).toBeTruthy();
  });

  it('a member gets no moderation menus, topic editor or delete', async () => {
    const { fake } = await inRoom('member');
    fake.respond['room:members'] = () => ({ ok: true, members: [{ username: 'Alice', role: 'member', online: true }, { username: 'Bob', role: 'member', online: true }] });
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Members' })));
    expect(screen.queryByRole('button', { name: /Actions for/ })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Edit topic' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Delete room' })).toBeNull();
  });

  it('a server that does not answer room:members: the panel says so (after the ack timeout)', async () => {
    await inRoom('owner');
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Members' })));
    expect(screen.getByText('Loading members…')).toBeTruthy();
  });

  it('room:removed closes the room and says why; room:invited offers Join', async () => {
    const { fake } = await inRoom();
    act(() => fake.push('room:removed', { room: 'general', by: 'Bob', reason: 'kicked' }));
    expect(screen.getByRole('alert').textContent).toContain('You were removed from “general” by Bob.');
    expect(screen.queryByRole('heading', { level: 2, name: '# general' })).toBeNull();
    act(() => fake.push('room:invited', { room: 'secret', by: 'Carol' }));
    const invite = document.querySelector('[data-invite="secret"]') as HTMLElement;
    expect(invite.textContent).toContain('Carol invited you to');
    fake.respond['room:join'] = () => ({ ok: true, room: { name: 'secret', users: 2, members: 2, private: true, topic: '', role: 'member' } });
    await act(async () => fireEvent.click(within(invite).getByRole('button', { name: 'Join secret' })));
    expect(fake.sent('room:join')).toEqual(['secret']);
    expect(screen.getByRole('heading', { level: 2, name: '# secret' })).toBeTruthy();
    expect(document.querySelector('[data-invite="secret"]')).toBeNull();
  });

  it('system messages are one sentence with no actions', async () => {
    const { fake } = await inRoom();
    act(() =>
      fake.push('message:receive', { id: 's1', type: 'system', room: 'general', from: 'Carol', action: 'kick', user: 'Bob', content: 'Carol removed Bob from the room.', timestamp: T + 3 }),
    );
    const sys = item('s1');
    expect(sys.classList.contains('system')).toBe(true);
    expect(sys.getAttribute('data-action')).toBe('kick');
    expect(sys.querySelector('.msg-body')?.textContent).toBe('Carol removed Bob from the room.');
    expect(within(sys).queryByRole('toolbar')).toBeNull();
    expect(sys.getAttribute('tabindex')).toBeNull();
  });

  it('a muted member’s composer is replaced by the reason', async () => {
    const { fake } = await inRoom();
    fake.respond['message:room'] = () => ({ ok: false, error: 'muted' });
    const box = screen.getByPlaceholderText('Message # general');
    fireEvent.change(box, { target: { value: 'can I?' } });
    await act(async () => fireEvent.keyDown(box, { key: 'Enter' }));
    expect(screen.queryByPlaceholderText('Message # general')).toBeNull();
    expect(document.querySelector('.composer-muted')?.textContent).toContain('You are muted in this room');
  });
});
