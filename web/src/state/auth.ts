// Credentials, in one place: the sign-in token the user pasted (token mode),
// the guest resume token a v2 server returns from `user:join` (kept with the
// user's id and name as the `GuestIdentity`, in localStorage so that every
// tab and every reload is that user), and what either becomes in the
// CONNECT packet. The session reducer keeps both tokens; the client only
// ever sets `socket.auth` from `connectAuth()`.

/** What the CONNECT packet carries: `{ token }` when there is one, else nothing. */
export function connectAuth(token: string | null): Record<string, string> {
  return token ? { token } : {};
}

/**
 * The `sub` claim of a JWT, read without verifying it (the server verifies;
 * the client only needs to know which name the token signs in as).
 */
export function tokenSubject(token: string): string | null {
  const part = token.trim().split('.')[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
    const bin = atob(padded);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof claims === 'object' && claims !== null && typeof (claims as { sub?: unknown }).sub === 'string') {
      return (claims as { sub: string }).sub;
    }
    return null;
  } catch {
    return null;
  }
}

/** A guest user of a v2 server, as its `user:join` ack named it; `token` attaches a connection to it. */
export interface GuestIdentity {
  id: string;
  username: string;
  token: string;
}

/** Parses a stored identity; anything unreadable or incomplete is null. */
export function parseIdentity(raw: string | null): GuestIdentity | null {
  if (!raw) return null;
  try {
    const v: unknown = JSON.parse(raw);
    if (typeof v !== 'object' || v === null) return null;
    const { id, username, token } = v as Record<string, unknown>;
    if (typeof id !== 'string' || typeof username !== 'string' || typeof token !== 'string' || token === '') return null;
    return { id, username, token };
  } catch {
    return null;
  }
}
