// What a tab remembers across a page reload (sessionStorage): who it is and
// which rooms and private chats it had open, so a reload signs back in and
// shows the same conversations with their history.

import type { ChatState } from './chat.ts';
import { joinedRooms, privateChats } from './chat.ts';
import type { ConvKey } from './names.ts';

export interface SavedSession {
  username: string | null;
  token: string | null;
  rooms: string[];
  dms: string[];
  active: ConvKey | null;
}

export const EMPTY_SESSION: SavedSession = { username: null, token: null, rooms: [], dms: [], active: null };

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** Parses a stored session; anything unreadable yields the empty session. */
export function parseSession(raw: string | null): SavedSession {
  if (!raw) return EMPTY_SESSION;
  try {
    const v: unknown = JSON.parse(raw);
    if (typeof v !== 'object' || v === null) return EMPTY_SESSION;
    const o = v as Record<string, unknown>;
    return {
      username: typeof o.username === 'string' ? o.username : null,
      token: typeof o.token === 'string' ? o.token : null,
      rooms: strings(o.rooms),
      dms: strings(o.dms),
      active: typeof o.active === 'string' ? o.active : null,
    };
  } catch {
    return EMPTY_SESSION;
  }
}

export function sessionFromState(state: ChatState, token: string | null): SavedSession {
  return {
    username: state.me,
    token,
    rooms: joinedRooms(state),
    dms: privateChats(state).map((c) => c.name),
    active: state.active,
  };
}

/** Whether two saved sessions would be stored alike (to write only on a change). */
export function sameSaved(a: SavedSession, b: SavedSession): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
