// The private chats part of the sidebar: one line per peer, with presence
// and unread counter, most recently active first.

import type { ChatRow } from '../state/lists.ts';
import type { ConvKey } from '../state/names.ts';
import { Badge } from './Badge.tsx';

export interface PrivateChatListProps {
  rows: readonly ChatRow[];
  onOpen: (key: ConvKey) => void;
}

export function PrivateChatList({ rows, onOpen }: PrivateChatListProps) {
  return (
    <section aria-labelledby="dms-heading">
      <h2 id="dms-heading">Private chats</h2>
      {rows.length === 0 ? (
        <p className="empty">Pick someone below to chat privately.</p>
      ) : (
        <ul className="conv-list" aria-label="Private chats">
          {rows.map((c) => (
            <li key={c.key} data-conv={c.key} data-peer={c.name} className={c.active ? 'active' : undefined}>
              <button
                type="button"
                className="conv-button"
                aria-current={c.active ? 'true' : undefined}
                onClick={() => onOpen(c.key)}
              >
                <span className="conv-name">
                  <span className={c.online ? 'presence online' : 'presence'} aria-hidden="true" />
                  {c.name}
                  <span className="sr-only">{c.online ? ' (online)' : ' (offline)'}</span>
                </span>
                <Badge count={c.unread} />
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
