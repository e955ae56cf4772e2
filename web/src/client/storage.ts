// Where the tab keeps what a reload restores (sessionStorage, see
// state/saved.ts for what that is). Storage may be missing, disabled or
// full: reading then gives the empty session, writing does nothing, and a
// reload just asks for the name again.

import { EMPTY_SESSION, parseSession, type SavedSession } from '../state/saved.ts';

export const SESSION_KEY = 'parley.session';

export function loadSaved(storage: Storage | null): SavedSession {
  try {
    return parseSession(storage?.getItem(SESSION_KEY) ?? null);
  } catch {
    return EMPTY_SESSION;
  }
}

export function storeSaved(storage: Storage | null, session: SavedSession | null): void {
  try {
    if (session) storage?.setItem(SESSION_KEY, JSON.stringify(session));
    else storage?.removeItem(SESSION_KEY);
  } catch {
    // Storage full or disabled: nothing to do.
  }
}
