// End-to-end tests of rooms with owners (contract v2, issue #15) between
// two people in two browser profiles: a private room and its invitation,
// the members panel, mute, kick, ban and unban, roles, the topic, and
// deleting the room, each seen by the person it concerns.
//
// They need a server that speaks contract v2 part 2 (room:create with
// {name, private, topic}, room:members, room:invite, room:kick, room:ban,
// room:unban, room:mute, room:unmute, room:role, room:topic, room:delete,
// room:invited, room:removed, system messages). The server in this tree
// does not yet, so every test is skipped with V2_MISSING as the reason; the
// step that lands those server features sets V2_MISSING to false. They
// also need the web client built with both feature switches on
// (web/src/features.ts; off by default, so a plain web/dist has none of
// these controls):
//   VITE_PARLEY_MESSAGE_ACTIONS=1 VITE_PARLEY_ROOM_MODERATION=1 scripts/build-web.sh --force
// (see web/README.md, "Feature switches"). The harness is v2-harness.mjs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { composer, consoleErrors, createRoom, eventually, joinListed, notice, person, send, setup, title } from './v2-harness.mjs';

/** Why these tests do not run yet (false once the server speaks contract v2 part 2). */
const V2_MISSING =
  'needs the v2 server: private rooms, room:members, room:invite/kick/ban/unban/mute/unmute/role/topic/delete, ' +
  'room:invited, room:removed and system messages (issue #15), ' +
  'and web/dist built with VITE_PARLEY_MESSAGE_ACTIONS=1 VITE_PARLEY_ROOM_MODERATION=1';

let alice = null;
let bob = null;

/** Opens the members panel of the open room (once) and returns it. */
async function members(page, room) {
  const panel = page.getByRole('complementary', { name: `Members of ${room}` });
  if ((await panel.count()) === 0) await page.getByRole('button', { name: 'Members', exact: true }).click();
  await panel.getByRole('list', { name: 'Members' }).waitFor();
  return panel;
}

/** The owner's menu on `user` in the panel: opens it and clicks `action`. */
async function act(panel, user, action) {
  await panel.getByRole('button', { name: `Actions for ${user}` }).click();
  await panel.getByRole('button', { name: action, exact: true }).click();
}

test('a private room: invited by name, the invitee sees it and joins', { skip: V2_MISSING }, async () => {
  await setup();
  alice = await person('Alice');
  bob = await person('Bob');
  await createRoom(alice.page, 'club', { private: true, topic: 'Members only' });
  assert.equal(await bob.page.locator('li[data-room="club"]').count(), 0, 'a private room is invisible before the invitation');
  const panel = await members(alice.page, 'club');
  assert.equal(await panel.locator('li[data-member="Alice"]').getAttribute('data-role'), 'owner');
  await panel.getByLabel('Invite to this room').fill('Bob');
  await panel.getByRole('button', { name: 'Invite', exact: true }).click();
  const invite = bob.page.locator('[data-invite="club"]');
  await invite.waitFor();
  assert.match(await invite.textContent(), /Alice invited you/);
  await invite.getByRole('button', { name: 'Join club' }).click();
  await eventually(async () => assert.equal(await title(bob.page), '# club'), 'Bob in club');
  await bob.page.locator('.topic-text', { hasText: 'Members only' }).waitFor();
  await panel.locator('li[data-member="Bob"]').waitFor();
});

test('mute: the member’s composer says why; unmute gives it back', { skip: V2_MISSING }, async () => {
  const panel = await members(alice.page, 'club');
  await panel.getByRole('button', { name: 'Actions for Bob' }).click();
  await panel.getByRole('button', { name: 'Mute…' }).click();
  await panel.getByLabel('Mute Bob for').selectOption({ label: '10 minutes' });
  await panel.getByRole('button', { name: 'Mute', exact: true }).click();
  await bob.page.locator('.composer-muted').waitFor();
  assert.equal(await composer(bob.page).count(), 0);
  await bob.page.locator('.conversation li.msg.system').first().waitFor(); // the mute, in history
  await act(panel, 'Bob', 'Unmute');
  await composer(bob.page).waitFor();
  await send(bob.page, 'I can talk again');
  await alice.page.locator('.conversation li.msg[data-id] .msg-body', { hasText: 'I can talk again' }).waitFor();
});

test('roles: the owner makes Bob a moderator; Bob sees it and gets the topic editor', { skip: V2_MISSING }, async () => {
  const panel = await members(alice.page, 'club');
  await act(panel, 'Bob', 'Make moderator');
  await eventually(async () => assert.equal(await panel.locator('li[data-member="Bob"]').getAttribute('data-role'), 'moderator'), 'Bob moderator');
  await eventually(async () => assert.match(await bob.page.locator('.conversation-meta').textContent(), /a moderator/), 'Bob told');
  await bob.page.getByRole('button', { name: 'Edit topic' }).click();
  await bob.page.getByLabel('Room topic').fill('Now with rules');
  await bob.page.getByRole('button', { name: 'Save topic' }).click();
  await alice.page.locator('.topic-text', { hasText: 'Now with rules' }).waitFor();
  await act(panel, 'Bob', 'Make member');
  await eventually(async () => assert.equal(await panel.locator('li[data-member="Bob"]').getAttribute('data-role'), 'member'), 'Bob member');
});

test('kick: the member is removed, told by whom, and the room leaves the list', { skip: V2_MISSING }, async () => {
  const panel = await members(alice.page, 'club');
  await act(panel, 'Bob', 'Kick');
  await eventually(async () => assert.match(await notice(bob.page).textContent(), /removed from “club” by Alice/), 'kick notice');
  assert.equal(await bob.page.locator('[data-conv="room:club"]').count(), 0);
});

test('ban for a time: refused on rejoin with the reason; unban lets the user back', { skip: V2_MISSING }, async () => {
  await createRoom(alice.page, 'open');
  await joinListed(bob.page, 'open');
  const panel = await members(alice.page, 'open');
  await panel.getByRole('button', { name: 'Actions for Bob' }).click();
  await panel.getByRole('button', { name: 'Ban…' }).click();
  await panel.getByLabel('Ban Bob for').selectOption({ label: '1 hour' });
  await panel.getByRole('button', { name: 'Ban', exact: true }).click();
  await eventually(async () => assert.match(await notice(bob.page).textContent(), /banned from “open” by Alice/), 'ban notice');
  await bob.page.locator('li[data-room="open"] .conv-button').click();
  await bob.page.getByText('You are banned from this room.').waitFor();
  await panel.getByLabel('Unban by name').fill('Bob');
  await panel.getByRole('button', { name: 'Unban', exact: true }).click();
  await panel.getByText('Bob is no longer banned.').waitFor();
  await joinListed(bob.page, 'open');
});

test('hand on ownership asks to confirm; deleting the room tells every member', { skip: V2_MISSING }, async () => {
  const panel = await members(alice.page, 'open');
  await act(panel, 'Bob', 'Hand on ownership…');
  await panel.getByRole('button', { name: 'Make Bob owner' }).click();
  await eventually(async () => assert.match(await bob.page.locator('.conversation-meta').textContent(), /the owner/), 'Bob owner');
  await bob.page.getByRole('button', { name: 'Delete room' }).click();
  await bob.page.getByRole('button', { name: 'Delete “open”' }).click();
  await eventually(async () => assert.match(await notice(alice.page).textContent(), /“open” was deleted by Bob/), 'deleted notice');
  assert.equal(await alice.page.locator('[data-conv="room:open"]').count(), 0);
});

test('no console errors on any page', { skip: V2_MISSING }, () => {
  assert.deepEqual(consoleErrors, []);
});
