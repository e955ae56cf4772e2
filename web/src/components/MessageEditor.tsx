// The inline editor of one's own message: Enter saves, Shift+Enter adds a
// new line, Escape cancels. It starts focused with the caret at the end.

import { useEffect, useId, useRef, useState, type KeyboardEvent } from 'react';

export interface MessageEditorProps {
  initial: string;
  onSave: (content: string) => void;
  onCancel: () => void;
}

export function MessageEditor({ initial, onSave, onCancel }: MessageEditorProps) {
  const [text, setText] = useState(initial);
  const ref = useRef<HTMLTextAreaElement>(null);
  const id = useId();
  const hintId = useId();

  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.focus();
    el.setSelectionRange(el.value.length, el.value.length);
  }, []);

  const save = () => {
    if (text.trim() === '' || text === initial) onCancel();
    else onSave(text);
  };

  const keyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      onCancel();
    } else if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      save();
    }
  };

  return (
    <form
      className="msg-editor"
      onSubmit={(e) => {
        e.preventDefault();
        save();
      }}
    >
      <label htmlFor={id} className="sr-only">
        Edit message
      </label>
      <textarea
        id={id}
        ref={ref}
        value={text}
        rows={2}
        aria-describedby={hintId}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={keyDown}
      />
      <div className="msg-editor-buttons">
        <span id={hintId} className="hint">
          Enter saves, Shift+Enter new line, Esc cancels
        </span>
        <button type="button" className="link-button" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="primary">
          Save
        </button>
      </div>
    </form>
  );
}
