// Who is online: every other user is a button that opens a private chat.

import { foldName } from '../state/names.ts';
import type { UserRow } from '../state/lists.ts';

export interface UserListProps {
  users: readonly UserRow[];
  onOpenDm: (peer: string) => void;
}

export function UserList({ users, onOpenDm }: UserListProps) {
  return (
    <section aria-labelledby="users-heading">
      <h2 id="users-heading">Online ({users.length})</h2>
      <ul className="user-list" aria-label="Online users">
        {users.map((u) => (
          <li key={foldName(u.username)} data-user={u.username}>
            {u.me ? (
              <span className="user-self">
                <span className="presence online" aria-hidden="true" />
                {u.username} <span className="you">(you)</span>
              </span>
            ) : (
              <button
                type="button"
                className="conv-button"
                onClick={() => onOpenDm(u.username)}
                aria-label={`Chat privately with ${u.username}`}
              >
                <span className="conv-name">
                  <span className="presence online" aria-hidden="true" />
                  {u.username}
                </span>
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
