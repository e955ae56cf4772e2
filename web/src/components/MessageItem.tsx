// One message of the timeline (contract v2, issue #14): who and when, the
// quoted message it replies to, its text (or the tombstone line), the
// "edited" marker, reaction chips, its actions, and the error of its last
// action. The message itself is focusable: with it focused, R replies, E
// edits (one's own), Delete deletes, + reacts, arrows move to the previous
// or next message. The actions bar appears on hover and focus, and always
// on touch screens; a long press on a message focuses it (so its bar shows
// on touch devices that also report hover). All of these actions exist only
// when the messageActions switch is on (features.ts); off, a message is
// shown as it arrives (edited marker, tombstone, quote, reaction chips read
// only) and offers nothing. System messages (moderation, topic, notices) are one
// sentence with no actions. Text only: nothing is rendered as HTML.

import { useEffect, useRef, useState, type KeyboardEvent, type PointerEvent } from 'react';
import type { ChatMessage } from '../protocol.ts';
import { useFeatures } from '../features.ts';
import { formatFull, formatTime } from '../format.ts';
import { describeReaction, hasReacted } from '../state/messageOps.ts';
import { EmojiPicker } from './EmojiPicker.tsx';
import { MessageEditor } from './MessageEditor.tsx';

export interface MessageItemActions {
  reply: (m: ChatMessage) => void;
  edit: (id: string, content: string) => void;
  remove: (id: string) => void;
  react: (id: string, emoji: string) => void;
  dismissError: (id: string) => void;
  /** Scrolls to a loaded message and highlights it; false when it is not loaded. */
  jumpTo: (id: string) => boolean;
}

export interface MessageItemProps {
  m: ChatMessage;
  own: boolean;
  me: string | null;
  /** This user may delete others' messages here (a room's owner or moderator). */
  moderator: boolean;
  error: string | null;
  highlighted: boolean;
  now: number;
  actions: MessageItemActions;
}

type Mode = 'view' | 'edit' | 'confirmDelete' | 'react';

function Quote({ m, jumpTo }: { m: ChatMessage; jumpTo: (id: string) => boolean }) {
  const [missing, setMissing] = useState(false);
  const r = m.replyTo;
  if (!r) return null;
  const text = r.excerpt === '' ? 'Original message deleted' : r.excerpt;
  return (
    <>
      <button
        type="button"
        className="msg-quote"
        aria-label={`Reply to ${r.from || 'a message'}: ${text}. Show the original.`}
        title={missing ? 'The original is not loaded: scroll up to load older messages.' : 'Show the original'}
        onClick={() => setMissing(!jumpTo(r.id))}
      >
        <span className="quote-from">{r.from}</span>
        <span className={r.excerpt === '' ? 'quote-text deleted' : 'quote-text'}>{text}</span>
      </button>
      {missing && (
        <span className="hint" role="status">
          The original is not loaded: load older messages to see it.
        </span>
      )}
    </>
  );
}

const LONG_PRESS_MS = 500;

export function MessageItem({ m, own, me, moderator, error, highlighted, now, actions }: MessageItemProps) {
  const [mode, setMode] = useState<Mode>('view');
  const ref = useRef<HTMLLIElement>(null);
  const press = useRef<ReturnType<typeof setTimeout> | null>(null);
  const pressAt = useRef({ x: 0, y: 0 });
  const endPress = () => {
    if (press.current) clearTimeout(press.current);
    press.current = null;
  };
  useEffect(() => endPress, []);
  const startPress = (e: PointerEvent<HTMLLIElement>) => {
    if (e.pointerType !== 'touch' || e.target !== e.currentTarget) return;
    endPress();
    pressAt.current = { x: e.clientX, y: e.clientY };
    press.current = setTimeout(() => ref.current?.focus(), LONG_PRESS_MS);
  };
  // A finger that moves (scrolls) is not a long press.
  const movePress = (e: PointerEvent<HTMLLIElement>) => {
    if (Math.hypot(e.clientX - pressAt.current.x, e.clientY - pressAt.current.y) > 10) endPress();
  };
  const system = m.type === 'system';
  const enabled = useFeatures().messageActions;
  const canEdit = enabled && own && !m.deleted && !system;
  const canDelete = enabled && (own || moderator) && !m.deleted && !system;
  const canAct = enabled && !m.deleted && !system;
  const focusable = enabled && !system;

  const back = () => {
    setMode('view');
    ref.current?.focus();
  };

  const keyDown = (e: KeyboardEvent<HTMLLIElement>) => {
    if (e.target !== e.currentTarget || e.altKey || e.ctrlKey || e.metaKey) return;
    const key = e.key.toLowerCase();
    if (key === 'arrowup' || key === 'arrowdown') {
      const sibling = key === 'arrowup' ? 'previousElementSibling' : 'nextElementSibling';
      let el = e.currentTarget[sibling];
      while (el && !(el instanceof HTMLElement && el.matches('li.msg[tabindex]'))) el = el[sibling];
      if (el instanceof HTMLElement) {
        e.preventDefault();
        el.focus();
      }
      return;
    }
    if (!canAct) return;
    if (key === 'r') actions.reply(m);
    else if (key === 'e' && canEdit) setMode('edit');
    else if ((key === 'delete' || key === 'backspace') && canDelete) setMode('confirmDelete');
    else if (key === '+') setMode('react');
    else return;
    e.preventDefault();
  };

  const cls = ['msg', system ? 'system' : own ? 'own' : '', m.deleted ? 'deleted' : '', highlighted ? 'highlight' : '']
    .filter(Boolean)
    .join(' ');
  const who = own ? 'You' : m.from;
  return (
    <li
      ref={ref}
      className={cls}
      data-id={m.id}
      data-own={own}
      data-action={m.action}
      tabIndex={focusable ? 0 : undefined}
      onKeyDown={focusable ? keyDown : undefined}
      onPointerDown={focusable ? startPress : undefined}
      onPointerUp={focusable ? endPress : undefined}
      onPointerCancel={focusable ? endPress : undefined}
      onPointerMove={focusable ? movePress : undefined}
      aria-keyshortcuts={canAct ? ['R', canEdit && 'E', canDelete && 'Delete', '+'].filter(Boolean).join(' ') : undefined}
    >
      <div className="msg-meta">
        {!system && <span className="msg-from">{who}</span>}
        <time dateTime={new Date(m.timestamp).toISOString()} title={formatFull(m.timestamp)}>
          {formatTime(m.timestamp, now)}
        </time>
        {m.editedAt !== undefined && !m.deleted && (
          <span className="msg-edited" title={`Edited ${formatFull(m.editedAt)}`}>
            (edited)
          </span>
        )}
      </div>
      {m.replyTo && <Quote m={m} jumpTo={actions.jumpTo} />}
      {canEdit && mode === 'edit' ? (
        <MessageEditor
          initial={m.content}
          onCancel={back}
          onSave={(content) => {
            actions.edit(m.id, content);
            back();
          }}
        />
      ) : m.deleted ? (
        <p className="msg-body tombstone">This message was deleted</p>
      ) : (
        <p className="msg-body">{m.content}</p>
      )}
      {m.reactions && m.reactions.length > 0 && (
        <ul className="reactions" aria-label="Reactions">
          {m.reactions.map((r) => {
            const text = describeReaction(r, me);
            return (
              <li key={r.emoji}>
                {enabled ? (
                  <button
                    type="button"
                    className="reaction"
                    aria-pressed={hasReacted(r, me)}
                    aria-label={`${r.emoji} ${r.count}: ${text}`}
                    title={text}
                    onClick={() => actions.react(m.id, r.emoji)}
                  >
                    <span aria-hidden="true">
                      {r.emoji} {r.count}
                    </span>
                  </button>
                ) : (
                  <span
                    className="reaction"
                    data-mine={hasReacted(r, me)}
                    role="img"
                    aria-label={`${r.emoji} ${r.count}: ${text}`}
                    title={text}
                  >
                    <span aria-hidden="true">
                      {r.emoji} {r.count}
                    </span>
                  </span>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {canAct && mode !== 'edit' && (
        <div className="msg-tools" role="toolbar" aria-label={`Actions for the message from ${who}`}>
          <button type="button" className="tool" onClick={() => actions.reply(m)} title="Reply (R)">
            Reply
          </button>
          <button
            type="button"
            className="tool"
            onClick={() => setMode(mode === 'react' ? 'view' : 'react')}
            aria-expanded={mode === 'react'}
            title="React (+)"
          >
            React
          </button>
          {canEdit && (
            <button type="button" className="tool" onClick={() => setMode('edit')} title="Edit (E)">
              Edit
            </button>
          )}
          {canDelete && (
            <button type="button" className="tool" onClick={() => setMode('confirmDelete')} title="Delete (Delete)">
              Delete
            </button>
          )}
        </div>
      )}
      {canAct && mode === 'react' && (
        <EmojiPicker
          onClose={back}
          onPick={(emoji) => {
            actions.react(m.id, emoji);
            back();
          }}
        />
      )}
      {canDelete && mode === 'confirmDelete' && (
        <div className="msg-confirm" role="group" aria-label="Confirm delete">
          <span>Delete this message for everyone?</span>
          <button
            type="button"
            className="danger"
            autoFocus
            onClick={() => {
              actions.remove(m.id);
              back();
            }}
          >
            Delete message
          </button>
          <button type="button" className="link-button" onClick={back}>
            Cancel
          </button>
        </div>
      )}
      {error && (
        <div className="msg-error" role="alert">
          <span className="field-error">{error}</span>
          <button type="button" className="link-button" onClick={() => actions.dismissError(m.id)}>
            Dismiss
          </button>
        </div>
      )}
    </li>
  );
}
