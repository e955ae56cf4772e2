// The message box: Enter sends, Shift+Enter starts a new line. While the
// user types it tells the others (at most every few seconds), and says
// "stopped" after a pause, on send and when the conversation closes.
// Replying (v2, when message actions are on: features.ts) shows the quoted message above the box (Escape or × drops
// it); a user muted in the room sees why instead of a usable box.

import { useEffect, useId, useRef, useState, type KeyboardEvent } from 'react';
import { useFeatures } from '../features.ts';
import type { ReplyRef } from '../protocol.ts';

const TYPING_RENEW_MS = 2500;
const TYPING_IDLE_MS = 3000;

export interface ComposerProps {
  label: string;
  onSend: (content: string) => void;
  onTyping: (isTyping: boolean) => void;
  autoFocus?: boolean;
  /** The message the next send replies to. */
  replying?: ReplyRef | null;
  onCancelReply?: () => void;
  /** Why this user may not write here (muted), or null. */
  muted?: string | null;
  onClearMuted?: () => void;
}

export function Composer(props: ComposerProps) {
  const { label, onSend, onTyping, autoFocus = false, muted = null } = props;
  // No reply quote unless message actions are switched on (features.ts).
  const replying = useFeatures().messageActions ? (props.replying ?? null) : null;
  const [text, setText] = useState('');
  const ref = useRef<HTMLTextAreaElement>(null);
  const hintId = useId();
  const typingSince = useRef(0);
  const idleTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const onTypingRef = useRef(onTyping);
  useEffect(() => {
    onTypingRef.current = onTyping;
  }, [onTyping]);

  const stopTyping = () => {
    if (idleTimer.current) clearTimeout(idleTimer.current);
    idleTimer.current = null;
    if (typingSince.current !== 0) {
      typingSince.current = 0;
      onTypingRef.current(false);
    }
  };

  // Choosing a message to reply to brings the caret here.
  useEffect(() => {
    if (replying) ref.current?.focus();
  }, [replying]);

  useEffect(() => {
    if (autoFocus) ref.current?.focus();
    return () => {
      // Leaving the conversation: tell the others we stopped.
      if (idleTimer.current) clearTimeout(idleTimer.current);
      if (typingSince.current !== 0) onTypingRef.current(false);
    };
  }, [autoFocus]);

  const change = (value: string) => {
    setText(value);
    if (value.trim() === '') {
      stopTyping();
      return;
    }
    const now = Date.now();
    if (typingSince.current === 0 || now - typingSince.current > TYPING_RENEW_MS) {
      typingSince.current = now;
      onTypingRef.current(true);
    }
    if (idleTimer.current) clearTimeout(idleTimer.current);
    idleTimer.current = setTimeout(stopTyping, TYPING_IDLE_MS);
  };

  const submit = () => {
    if (text.trim() === '') return;
    onSend(text);
    setText('');
    stopTyping();
    ref.current?.focus();
  };

  const keyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Escape' && replying) {
      e.preventDefault();
      props.onCancelReply?.();
      return;
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      submit();
    }
  };

  const id = useId();
  if (muted !== null) {
    return (
      <div className="composer composer-muted" role="status">
        <span>{muted}</span>
        {props.onClearMuted && (
          <button type="button" className="link-button" onClick={props.onClearMuted}>
            Try again
          </button>
        )}
      </div>
    );
  }
  return (
    <>
      {replying && (
        <div className="reply-banner">
          <span>
            Replying to <strong>{replying.from}</strong>: <span className="quote-text">{replying.excerpt || 'a deleted message'}</span>
          </span>
          <button type="button" className="icon-button" aria-label="Cancel reply" onClick={props.onCancelReply}>
            ×
          </button>
        </div>
      )}
      <form
        className="composer"
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <label htmlFor={id} className="sr-only">
          {label}
        </label>
        <textarea
          id={id}
          ref={ref}
          rows={1}
          value={text}
          placeholder={label}
          aria-describedby={hintId}
          onChange={(e) => change(e.target.value)}
          onKeyDown={keyDown}
          onBlur={stopTyping}
        />
        <button type="submit" className="primary" disabled={text.trim() === ''}>
          Send
        </button>
        <span id={hintId} className="sr-only">
          Enter sends, Shift+Enter adds a new line.
        </span>
      </form>
    </>
  );
}
