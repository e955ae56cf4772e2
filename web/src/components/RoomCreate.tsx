// The "new room" form. The name is trimmed; the field is cleared once the
// room exists. Errors are shown by the caller, whose element `errorId` names.
// With a v2 server, and the roomModeration switch on (features.ts), it also
// offers a private room and a topic.

import { useId, useState, type FormEvent } from 'react';
import { useFeatures } from '../features.ts';

export interface RoomCreateProps {
  busy: boolean;
  /** The id of the error shown for the last attempt, if any. */
  errorId: string | undefined;
  /** Resolves to an error text, or null when the room was created. */
  onCreate: (name: string, options?: { private?: boolean; topic?: string }) => Promise<string | null>;
  v2?: boolean;
}

export function RoomCreate({ busy, errorId, onCreate, v2: serverV2 = false }: RoomCreateProps) {
  const features = useFeatures();
  const v2 = serverV2 && features.roomModeration;
  const [name, setName] = useState('');
  const [priv, setPriv] = useState(false);
  const [topic, setTopic] = useState('');
  const inputId = useId();
  const topicId = useId();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const err = v2 ? await onCreate(name.trim(), { private: priv, topic }) : await onCreate(name.trim());
    if (err === null) {
      setName('');
      setTopic('');
      setPriv(false);
    }
  };

  return (
    <form className="create-room" onSubmit={submit} noValidate>
      <label htmlFor={inputId} className="sr-only">
        New room name
      </label>
      <input
        id={inputId}
        placeholder="New room name"
        value={name}
        maxLength={128}
        onChange={(e) => setName(e.target.value)}
        aria-invalid={errorId ? true : undefined}
        aria-describedby={errorId}
      />
      <button type="submit" disabled={busy}>
        Create
      </button>
      {v2 && (
        <div className="create-room-options">
          <label>
            <input type="checkbox" checked={priv} onChange={(e) => setPriv(e.target.checked)} /> Private (invitation only)
          </label>
          <label htmlFor={topicId} className="sr-only">
            Topic (optional)
          </label>
          <input id={topicId} placeholder="Topic (optional)" value={topic} maxLength={250} onChange={(e) => setTopic(e.target.value)} />
        </div>
      )}
    </form>
  );
}
