// The conversation list of a v2 server: the rooms the user is a member of
// and its private conversations (also with users who are offline), most
// recent activity first, each with its unread counter and a preview of its
// newest message; above it, the "New message" form.

import { formatFull, formatTime } from '../format.ts';
import type { ConversationRow } from '../state/lists.ts';
import type { ConvKey } from '../state/names.ts';
import { Badge } from './Badge.tsx';
import { NewMessage } from './NewMessage.tsx';

export interface ConversationListProps {
  rows: readonly ConversationRow[];
  me: string | null;
  onOpen: (key: ConvKey) => void;
  onOpenDm: (peer: string) => void;
}

function Preview({ row, now }: { row: ConversationRow; now: number }) {
  const p = row.preview;
  if (!p) return <span className="conv-preview empty-preview">No messages yet</span>;
  return (
    <>
      <span className="conv-preview">
        {p.from && <span className="preview-from">{p.from}: </span>}
        {p.text}
      </span>
      <time className="conv-time" dateTime={new Date(p.timestamp).toISOString()} title={formatFull(p.timestamp)}>
        {formatTime(p.timestamp, now)}
      </time>
    </>
  );
}

export function ConversationList({ rows, me, onOpen, onOpenDm }: ConversationListProps) {
  const now = Date.now();
  return (
    <section aria-labelledby="convs-heading">
      <h2 id="convs-heading">Conversations</h2>
      <NewMessage me={me} onOpenDm={onOpenDm} />
      {rows.length === 0 ? (
        <p className="empty">No conversations yet. Join a room or write to someone.</p>
      ) : (
        <ul className="conv-list conversations" aria-label="Recent conversations">
          {rows.map((c) => (
            <li
              key={c.key}
              data-conv={c.key}
              {...(c.kind === 'room' ? { 'data-room': c.name } : { 'data-peer': c.name })}
              className={c.active ? 'active' : undefined}
            >
              <button
                type="button"
                className="conv-button"
                aria-current={c.active ? 'true' : undefined}
                onClick={() => onOpen(c.key)}
              >
                <span className="conv-name">
                  {c.kind === 'room' ? (
                    `# ${c.name}`
                  ) : (
                    <>
                      <span className={c.online ? 'presence online' : 'presence'} aria-hidden="true" />
                      {c.name}
                      <span className="sr-only">{c.online ? ' (online)' : ' (offline)'}</span>
                    </>
                  )}
                </span>
                <Badge count={c.unread} />
                <Preview row={c} now={now} />
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
