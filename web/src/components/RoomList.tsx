// The list of rooms with live member counts and unread counters. A joined
// room opens on click and can be left; another room is joined on click.

import type { RoomRow } from '../state/lists.ts';
import type { ConvKey } from '../state/names.ts';
import { Badge } from './Badge.tsx';

export interface RoomListProps {
  rows: readonly RoomRow[];
  empty?: string | undefined;
  onOpen: (key: ConvKey) => void;
  onJoin: (name: string) => void;
  onLeave: (name: string) => void;
}

function members(n: number | null): string {
  if (n === null) return '';
  return n === 1 ? '1 member' : `${n} members`;
}

export function RoomList({ rows, empty = 'No rooms yet. Create one.', onOpen, onJoin, onLeave }: RoomListProps) {
  if (rows.length === 0) return <p className="empty">{empty}</p>;
  return (
    <ul className="conv-list" aria-label="Rooms">
      {rows.map((r) => (
        <li
          key={r.key}
          data-conv={r.key}
          data-room={r.name}
          data-joined={r.joined}
          className={r.active ? 'active' : undefined}
        >
          <button
            type="button"
            className="conv-button"
            aria-current={r.active ? 'true' : undefined}
            onClick={() => (r.joined ? onOpen(r.key) : onJoin(r.name))}
          >
            <span className="conv-name"># {r.name}</span>
            <span className="conv-meta" data-members={r.users ?? ''}>
              {members(r.users)}
              {!r.joined && <span className="join-hint"> · join</span>}
            </span>
            <Badge count={r.unread} />
          </button>
          {r.joined && (
            <button
              type="button"
              className="icon-button"
              aria-label={`Leave room ${r.name}`}
              title="Leave room"
              onClick={() => onLeave(r.name)}
            >
              ×
            </button>
          )}
        </li>
      ))}
    </ul>
  );
}
