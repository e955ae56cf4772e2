// The feature switches of the web client, in one place: the controls of
// contract v2 part 2 (issue #14: reply, edit, delete, react) and part 3
// (issue #15: members panel, moderation, invitations sent, topic editing,
// private rooms, room deletion). They stay off until the server answers
// those events; a build turns them on with VITE_PARLEY_MESSAGE_ACTIONS=1 and
// VITE_PARLEY_ROOM_MODERATION=1 (see web/README.md, "Feature switches").
// Components read them through FeaturesContext, whose default is FEATURES,
// so a test can render with either value.

import { createContext, useContext } from 'react';

export interface Features {
  /** Per-message actions: reply, edit, delete, react (bar, shortcuts, long press, picker). */
  messageActions: boolean;
  /** Room moderation: members panel and menus, invite/unban, topic editing, delete room, private rooms. */
  roomModeration: boolean;
}

export const FEATURES: Readonly<Features> = Object.freeze({
  messageActions: import.meta.env.VITE_PARLEY_MESSAGE_ACTIONS === '1',
  roomModeration: import.meta.env.VITE_PARLEY_ROOM_MODERATION === '1',
});

export const ALL_FEATURES: Readonly<Features> = Object.freeze({ messageActions: true, roomModeration: true });

export const FeaturesContext = createContext<Readonly<Features>>(FEATURES);

export function useFeatures(): Readonly<Features> {
  return useContext(FeaturesContext);
}
