// Invitations to private rooms (contract v2, issue #15): `room:invited`
// pushes and rooms listed with `invited: true`, each with Join and Dismiss.
// The list is a live region, so a new invitation is announced.

import { useState } from 'react';
import type { Invite } from '../state/rooms.ts';

export interface InvitationsProps {
  invites: readonly Invite[];
  onJoin: (room: string) => Promise<string | null>;
  onDismiss: (room: string) => void;
}

export function Invitations({ invites, onJoin, onDismiss }: InvitationsProps) {
  const [error, setError] = useState<string | null>(null);
  return (
    <section aria-labelledby="invites-heading" className="invites" aria-live="polite">
      {invites.length > 0 && <h2 id="invites-heading">Invitations</h2>}
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
      {invites.length > 0 && (
        <ul aria-labelledby="invites-heading">
          {invites.map((i) => (
            <li key={i.room} data-invite={i.room}>
              <span>
                {i.by ? `${i.by} invited you to ` : 'You are invited to '}
                <strong># {i.room}</strong>
              </span>
              <button type="button" aria-label={`Join ${i.room}`} onClick={() => void onJoin(i.room).then(setError)}>
                Join
              </button>
              <button
                type="button"
                className="link-button"
                aria-label={`Dismiss the invitation to ${i.room}`}
                onClick={() => onDismiss(i.room)}
              >
                Dismiss
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
