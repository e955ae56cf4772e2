// End-to-end tests of messages that live (contract v2, issue #14) between
// two people in two browser profiles: edit, delete, react and reply, by
// keyboard and by mouse, each seen live by the other.
//
// They need a server that speaks contract v2 part 2 (message:edit,
// message:delete, reaction:add/remove, replyTo, message:update). The
// server in this tree does not yet, so every test is skipped with
// V2_MISSING as the reason; the step that lands those server features sets
// V2_MISSING to false. They also need the web client built
// with both feature switches on (web/src/features.ts; off by default, so a
// plain web/dist has none of these controls):
//   VITE_PARLEY_MESSAGE_ACTIONS=1 VITE_PARLEY_ROOM_MODERATION=1 scripts/build-web.sh --force
// (see web/README.md, "Feature switches"). The harness is v2-harness.mjs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bodies, composer, consoleErrors, createRoom, eventually, joinListed, message, person, send, setup } from './v2-harness.mjs';

/** Why these tests do not run yet (false once the server speaks contract v2 part 2). */
const V2_MISSING =
  'needs the v2 server: message:edit, message:delete, reaction:add/remove, replyTo and message:update (issue #14), ' +
  'and web/dist built with VITE_PARLEY_MESSAGE_ACTIONS=1 VITE_PARLEY_ROOM_MODERATION=1';

let alice = null;
let bob = null;

test('two people in one room see each other’s messages', { skip: V2_MISSING }, async () => {
  await setup();
  alice = await person('Alice');
  bob = await person('Bob');
  await createRoom(alice.page, 'live');
  await joinListed(bob.page, 'live');
  await send(alice.page, 'the first draft');
  await message(bob.page, 'the first draft').waitFor();
});

test('edit: E on one’s own message, Enter saves, the other sees it edited', { skip: V2_MISSING }, async () => {
  const mine = message(alice.page, 'the first draft');
  await mine.focus();
  await alice.page.keyboard.press('e');
  const editor = mine.getByLabel('Edit message');
  await editor.fill('the final text');
  await editor.press('Enter');
  await message(bob.page, 'the final text').getByText('(edited)').waitFor();
  // Bob cannot edit Alice's message: no Edit button, E does nothing.
  const theirs = message(bob.page, 'the final text');
  await theirs.focus();
  assert.equal(await theirs.getByRole('button', { name: 'Edit', exact: true }).count(), 0);
  await bob.page.keyboard.press('e');
  assert.equal(await theirs.getByLabel('Edit message').count(), 0);
});

test('react: the picker adds a reaction, the chip says who and toggles one’s own', { skip: V2_MISSING }, async () => {
  const theirs = message(bob.page, 'the final text');
  await theirs.hover();
  await theirs.getByRole('button', { name: 'React', exact: true }).click();
  await theirs.getByRole('button', { name: 'React with 👍' }).click();
  const chip = message(alice.page, 'the final text').locator('button.reaction');
  await eventually(async () => assert.equal(await chip.getAttribute('title'), 'Bob reacted with 👍'), 'Alice sees Bob’s reaction');
  assert.equal(await chip.getAttribute('aria-pressed'), 'false');
  await chip.click();
  await eventually(async () => assert.equal(await chip.getAttribute('aria-pressed'), 'true'), 'Alice’s own reaction');
  const bobChip = message(bob.page, 'the final text').locator('button.reaction');
  await eventually(async () => assert.equal(await bobChip.getAttribute('title'), 'you and Alice reacted with 👍'), 'Bob sees both');
  // A free emoji that breaks the rule is refused before it is sent.
  await theirs.getByRole('button', { name: 'React', exact: true }).click();
  await theirs.getByLabel('Other emoji').fill('not one');
  await theirs.getByRole('button', { name: 'Add', exact: true }).click();
  await theirs.getByRole('alert').waitFor();
  await theirs.getByRole('button', { name: 'Cancel', exact: true }).click();
});

test('reply: R quotes the message, the reply shows the excerpt and leads to the original', { skip: V2_MISSING }, async () => {
  const theirs = message(bob.page, 'the final text');
  await theirs.focus();
  await bob.page.keyboard.press('r');
  await bob.page.locator('.reply-banner').getByText('the final text').waitFor();
  await composer(bob.page).fill('a reply to it');
  await composer(bob.page).press('Enter');
  const reply = message(alice.page, 'a reply to it');
  const quote = reply.locator('.msg-quote');
  await eventually(async () => assert.match(await quote.textContent(), /Bob|Alice/), 'quote shown');
  assert.match(await quote.textContent(), /the final text/);
  await quote.click();
  await eventually(
    async () => assert.equal(await alice.page.evaluate(() => document.activeElement?.querySelector('.msg-body')?.textContent), 'the final text'),
    'the original is focused',
  );
});

test('delete: the author deletes, both see the tombstone and the reply’s quote says so', { skip: V2_MISSING }, async () => {
  const mine = message(alice.page, 'the final text');
  await mine.focus();
  await alice.page.keyboard.press('Delete');
  await mine.getByRole('button', { name: 'Delete message' }).click();
  for (const page of [alice.page, bob.page]) {
    await eventually(async () => assert.ok((await bodies(page)).includes('This message was deleted')), 'tombstone');
    await eventually(
      async () => assert.match(await message(page, 'a reply to it').locator('.msg-quote').textContent(), /Original message deleted/),
      'quote of a deleted message',
    );
  }
  assert.ok(!(await bodies(bob.page)).includes('the final text'));
});

test('a member is offered no Delete on someone else’s message', { skip: V2_MISSING }, async () => {
  await send(alice.page, 'only mine');
  const theirs = message(bob.page, 'only mine');
  await theirs.waitFor();
  assert.equal(await theirs.getByRole('button', { name: 'Delete', exact: true }).count(), 0, 'a member has no Delete on others’ messages');
});

test('no console errors on any page', { skip: V2_MISSING }, () => {
  assert.deepEqual(consoleErrors, []);
});
