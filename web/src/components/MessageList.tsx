// The conversation's messages, oldest at the top. Scrolling near the top
// loads the previous page (the reader's position is kept when it arrives);
// new messages keep the view pinned to the bottom if it was there, and
// `onAtBottom` tells whether the newest message is in view (the client
// marks the conversation read then). Each message is a MessageItem (its
// actions, edits, reactions, reply quote); a quote's "show the original"
// scrolls to it here and highlights it. Content and names are rendered as
// React text, never as HTML.

import { Fragment, useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import type { ChatMessage } from '../protocol.ts';
import type { PendingSend } from '../state/pending.ts';
import { dayLabel, dayStamp } from '../format.ts';
import { MessageItem, type MessageItemActions } from './MessageItem.tsx';

export interface MessageListProps {
  label: string;
  messages: readonly ChatMessage[];
  pending: readonly PendingSend[];
  isOwn: (m: ChatMessage) => boolean;
  hasMore: boolean;
  loadingOlder: boolean;
  historyLoaded: boolean;
  onLoadOlder: () => void;
  onRetry: (clientId: string) => void;
  /** Called on mount and whenever the view reaches or leaves the newest message. */
  onAtBottom?: (atBottom: boolean) => void;
  onDiscard: (clientId: string) => void;
  /** This user's name (reactions say "you"). */
  me?: string | null;
  /** This user may delete others' messages (a room's owner or moderator). */
  moderator?: boolean;
  /** The error shown next to a message, by id. */
  errors?: Readonly<Record<string, string>>;
  /** The actions on one message (v2); without them the messages offer none. */
  actions?: Omit<MessageItemActions, 'jumpTo'>;
}

const NO_ACTIONS: Omit<MessageItemActions, 'jumpTo'> = {
  reply: () => {},
  edit: () => {},
  remove: () => {},
  react: () => {},
  dismissError: () => {},
};
const HIGHLIGHT_MS = 2000;

const NEAR_TOP_PX = 120;
const NEAR_BOTTOM_PX = 80;

function atBottom(el: HTMLElement): boolean {
  return el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;
}

function PendingItem({ p, onRetry, onDiscard }: { p: PendingSend; onRetry: () => void; onDiscard: () => void }) {
  const state = p.status === 'failed' ? 'Not sent' : p.status === 'sending' ? 'Sending…' : 'Waiting for connection…';
  return (
    <li className="msg own pending" data-client-id={p.clientId} data-status={p.status}>
      <div className="msg-meta">
        <span className="msg-from">You</span>
        <span className="msg-state">{state}</span>
      </div>
      {p.replyTo && (
        <p className="msg-quote">
          <span className="quote-from">{p.replyTo.from}</span>
          <span className="quote-text">{p.replyTo.excerpt}</span>
        </p>
      )}
      <p className="msg-body">{p.content}</p>
      {p.status === 'failed' && (
        <div className="msg-actions">
          {p.error && <span className="field-error">{p.error}</span>}
          <button type="button" className="link-button" onClick={onRetry}>
            Retry
          </button>
          <button type="button" className="link-button" onClick={onDiscard}>
            Discard
          </button>
        </div>
      )}
    </li>
  );
}

export function MessageList(props: MessageListProps) {
  const { label, messages, pending, isOwn, hasMore, loadingOlder, historyLoaded, onLoadOlder } = props;
  const ref = useRef<HTMLDivElement>(null);
  const snap = useRef({ firstId: '', lastKey: '', scrollHeight: 0, scrollTop: 0, atBottom: true });
  const reported = useRef<boolean | null>(null);
  const { onAtBottom } = props;
  const report = (value: boolean) => {
    if (reported.current === value) return;
    reported.current = value;
    onAtBottom?.(value);
  };

  const firstId = messages[0]?.id ?? '';
  const lastPending = pending[pending.length - 1];
  const lastKey = `${messages[messages.length - 1]?.id ?? ''}|${lastPending?.clientId ?? ''}|${pending.length}`;

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const prev = snap.current;
    if (prev.firstId !== '' && firstId !== prev.firstId && lastKey === prev.lastKey) {
      // An older page was prepended: keep the same message under the reader's eyes.
      el.scrollTop = prev.scrollTop + (el.scrollHeight - prev.scrollHeight);
    } else if (lastKey !== prev.lastKey || prev.atBottom) {
      const ownNew = lastPending !== undefined && lastKey !== prev.lastKey;
      if (prev.atBottom || ownNew) el.scrollTop = el.scrollHeight;
    }
    snap.current = { firstId, lastKey, scrollHeight: el.scrollHeight, scrollTop: el.scrollTop, atBottom: atBottom(el) };
    report(snap.current.atBottom);
  });

  // A first page shorter than the view cannot be scrolled: fetch more right away.
  useEffect(() => {
    const el = ref.current;
    if (el && historyLoaded && hasMore && !loadingOlder && el.scrollHeight <= el.clientHeight) onLoadOlder();
  }, [historyLoaded, hasMore, loadingOlder, messages.length, onLoadOlder]);

  const onScroll = () => {
    const el = ref.current;
    if (!el) return;
    snap.current.scrollTop = el.scrollTop;
    snap.current.scrollHeight = el.scrollHeight;
    snap.current.atBottom = atBottom(el);
    report(snap.current.atBottom);
    if (el.scrollTop < NEAR_TOP_PX && hasMore && !loadingOlder) onLoadOlder();
  };

  const [highlight, setHighlight] = useState<string | null>(null);
  useEffect(() => {
    if (highlight === null) return;
    const t = setTimeout(() => setHighlight(null), HIGHLIGHT_MS);
    return () => clearTimeout(t);
  }, [highlight]);
  const jumpTo = useCallback((id: string): boolean => {
    const all = ref.current?.querySelectorAll<HTMLElement>('li.msg[data-id]') ?? [];
    const el = [...all].find((x) => x.getAttribute('data-id') === id);
    if (!el) return false;
    el.scrollIntoView?.({ block: 'center' });
    el.focus();
    setHighlight(id);
    return true;
  }, []);
  const itemActions: MessageItemActions = { ...(props.actions ?? NO_ACTIONS), jumpTo };

  const now = Date.now();
  let lastDay = '';
  return (
    <div className="messages" ref={ref} onScroll={onScroll} tabIndex={0} role="log" aria-label={label}>
      {hasMore && (
        <div className="older">
          <button type="button" className="link-button" onClick={onLoadOlder} disabled={loadingOlder}>
            {loadingOlder ? 'Loading older messages…' : 'Load older messages'}
          </button>
        </div>
      )}
      {!historyLoaded && messages.length === 0 && <p className="empty">Loading history…</p>}
      {historyLoaded && messages.length === 0 && pending.length === 0 && (
        <p className="empty">No messages yet. Say hello!</p>
      )}
      <ol className="message-list">
        {messages.map((m) => {
          const own = isOwn(m);
          const day = dayStamp(m.timestamp);
          const separator = day !== lastDay;
          lastDay = day;
          return (
            <Fragment key={m.id}>
              {separator && (
                <li className="day-separator" role="separator" aria-label={dayLabel(m.timestamp, now)}>
                  <span aria-hidden="true">{dayLabel(m.timestamp, now)}</span>
                </li>
              )}
              <MessageItem
                m={m}
                own={own}
                me={props.me ?? null}
                moderator={props.moderator === true}
                error={props.errors?.[m.id] ?? null}
                highlighted={highlight === m.id}
                now={now}
                actions={itemActions}
              />
            </Fragment>
          );
        })}
        {pending.map((p) => (
          <PendingItem
            key={p.clientId}
            p={p}
            onRetry={() => props.onRetry(p.clientId)}
            onDiscard={() => props.onDiscard(p.clientId)}
          />
        ))}
      </ol>
    </div>
  );
}
