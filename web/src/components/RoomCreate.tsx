// The "new room" form. The name is trimmed; the field is cleared once the
// room exists. Errors are shown by the caller, whose element `errorId` names.

import { useId, useState, type FormEvent } from 'react';

export interface RoomCreateProps {
  busy: boolean;
  /** The id of the error shown for the last attempt, if any. */
  errorId: string | undefined;
  /** Resolves to an error text, or null when the room was created. */
  onCreate: (name: string) => Promise<string | null>;
}

export function RoomCreate({ busy, errorId, onCreate }: RoomCreateProps) {
  const [name, setName] = useState('');
  const inputId = useId();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if ((await onCreate(name.trim())) === null) setName('');
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
    </form>
  );
}
