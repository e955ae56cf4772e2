// "New message": opens a private conversation with anyone by name, online
// or not (v2 stores messages to offline users; a name nobody owns is
// refused when the first message is sent, and the message says so).

import { useId, useState, type FormEvent } from 'react';
import { sameName } from '../state/names.ts';

export interface NewMessageProps {
  /** This user's name (one does not write to oneself). */
  me: string | null;
  onOpenDm: (peer: string) => void;
}

export function NewMessage({ me, onOpenDm }: NewMessageProps) {
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const inputId = useId();
  const errorId = useId();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const peer = name.trim();
    if (peer === '') return setError('Please enter a name.');
    if (sameName(peer, me)) return setError('That is your own name.');
    setError(null);
    setName('');
    onOpenDm(peer);
  };

  return (
    <form className="create-room new-message" onSubmit={submit} noValidate>
      <label htmlFor={inputId} className="sr-only">
        New message to
      </label>
      <input
        id={inputId}
        placeholder="New message to…"
        value={name}
        maxLength={64}
        autoComplete="off"
        onChange={(e) => setName(e.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? errorId : undefined}
      />
      <button type="submit">Write</button>
      {error && (
        <p id={errorId} className="field-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
