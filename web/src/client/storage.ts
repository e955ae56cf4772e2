// Where the browser keeps what a reload restores: the tab's saved session
// in sessionStorage (state/saved.ts says what that is) and the guest
// identity with its resume token in localStorage (state/auth.ts), shared by
// the browser's tabs. Storage may be missing, disabled or full: reading then
// gives nothing, writing does nothing, and a reload just asks for the name
// again.

import { parseIdentity, type GuestIdentity } from '../state/auth.ts';
import { EMPTY_SESSION, parseSession, type SavedSession } from '../state/saved.ts';

export const SESSION_KEY = 'parley.session';
export const IDENTITY_KEY = 'parley.identity';

export function loadIdentity(storage: Storage | null): GuestIdentity | null {
  try {
    return parseIdentity(storage?.getItem(IDENTITY_KEY) ?? null);
  } catch {
    return null;
  }
}

export function storeIdentity(storage: Storage | null, identity: GuestIdentity | null): void {
  try {
    if (identity) storage?.setItem(IDENTITY_KEY, JSON.stringify(identity));
    else storage?.removeItem(IDENTITY_KEY);
  } catch {
    // Storage full or disabled: the next reload asks for the name again.
  }
}

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
