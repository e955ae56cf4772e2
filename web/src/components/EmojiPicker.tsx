// The reaction picker: a few common emoji as buttons, and a field for any
// other, checked by the contract's rule (state/messageOps.ts validEmoji)
// before it is sent. Escape closes it; focus starts on the first emoji and
// goes back to the opener when it closes (the caller's job).

import { useEffect, useId, useRef, useState, type KeyboardEvent } from 'react';
import { QUICK_EMOJI, validEmoji } from '../state/messageOps.ts';

export interface EmojiPickerProps {
  onPick: (emoji: string) => void;
  onClose: () => void;
}

export function EmojiPicker({ onPick, onClose }: EmojiPickerProps) {
  const first = useRef<HTMLButtonElement>(null);
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const inputId = useId();
  const errorId = useId();

  useEffect(() => first.current?.focus(), []);

  const keyDown = (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      onClose();
    }
  };

  const submit = () => {
    const emoji = text.trim();
    if (!validEmoji(emoji)) {
      setError('Use 1 to 16 characters with no spaces.');
      return;
    }
    onPick(emoji);
  };

  return (
    <div className="emoji-picker" role="group" aria-label="Pick a reaction" onKeyDown={keyDown}>
      <div className="emoji-quick">
        {QUICK_EMOJI.map((e, i) => (
          <button
            key={e}
            ref={i === 0 ? first : undefined}
            type="button"
            className="emoji-button"
            aria-label={`React with ${e}`}
            onClick={() => onPick(e)}
          >
            {e}
          </button>
        ))}
      </div>
      <form
        className="emoji-free"
        onSubmit={(ev) => {
          ev.preventDefault();
          submit();
        }}
      >
        <label htmlFor={inputId} className="sr-only">
          Other emoji
        </label>
        <input
          id={inputId}
          value={text}
          placeholder="Other…"
          size={6}
          onChange={(ev) => {
            setText(ev.target.value);
            setError(null);
          }}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? errorId : undefined}
        />
        <button type="submit">Add</button>
        <button type="button" className="link-button" onClick={onClose}>
          Cancel
        </button>
      </form>
      {error && (
        <p id={errorId} className="field-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
