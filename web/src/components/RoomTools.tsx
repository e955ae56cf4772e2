// A room header's v2 parts (issue #15): the topic, editable in place by
// the owner and moderators (room:topic), and the owner's "Delete room"
// with a confirmation (room:delete). Each shows the answer to its request.

import { useId, useRef, useState, type FormEvent } from 'react';
import type { RoomOp } from '../state/rooms.ts';

export interface RoomTopicProps {
  topic: string;
  canEdit: boolean;
  onAct: (req: RoomOp) => Promise<string | null>;
}

export function RoomTopic({ topic, canEdit, onAct }: RoomTopicProps) {
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(topic);
  const [error, setError] = useState<string | null>(null);
  const button = useRef<HTMLButtonElement>(null);
  const id = useId();

  const stop = () => {
    setEditing(false);
    setTimeout(() => button.current?.focus(), 0);
  };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const err = await onAct({ op: 'topic', topic: text.trim() });
    setError(err);
    if (err === null) stop();
  };

  if (editing) {
    return (
      <form className="topic-editor" onSubmit={submit} onKeyDown={(e) => e.key === 'Escape' && stop()}>
        <label htmlFor={id} className="sr-only">
          Room topic
        </label>
        <input id={id} value={text} maxLength={250} autoFocus onChange={(e) => setText(e.target.value)} />
        <button type="submit">Save topic</button>
        <button type="button" className="link-button" onClick={stop}>
          Cancel
        </button>
        {error && (
          <span className="field-error" role="alert">
            {error}
          </span>
        )}
      </form>
    );
  }
  return (
    <div className="topic">
      <span className="topic-text">{topic || (canEdit ? 'No topic' : '')}</span>
      {canEdit && (
        <button
          ref={button}
          type="button"
          className="link-button"
          onClick={() => {
            setText(topic);
            setError(null);
            setEditing(true);
          }}
        >
          Edit topic
        </button>
      )}
    </div>
  );
}

export function DeleteRoom({ room, onAct }: { room: string; onAct: (req: RoomOp) => Promise<string | null> }) {
  const [confirm, setConfirm] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!confirm) {
    return (
      <button type="button" className="danger-link" onClick={() => setConfirm(true)}>
        Delete room
      </button>
    );
  }
  return (
    <div className="confirm" role="group" aria-label="Confirm room deletion">
      <span>Delete “{room}”, its history and its members for everyone?</span>
      <button type="button" className="danger" autoFocus onClick={() => void onAct({ op: 'delete' }).then(setError)}>
        Delete “{room}”
      </button>
      <button
        type="button"
        className="link-button"
        onClick={() => {
          setConfirm(false);
          setError(null);
        }}
      >
        Cancel
      </button>
      {error && (
        <span className="field-error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}
