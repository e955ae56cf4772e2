// Sign-in: pick a username (anonymous mode) or paste a token (token mode).
// Errors from the server (taken, invalid, unauthorized) are shown next to
// the field they are about, and the field keeps the focus. After "Sign out"
// it says what became of the name.

import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import type { LoginError } from '../state/session.ts';

export interface LoginProps {
  busy: boolean;
  error: LoginError | null;
  tokenRequired: boolean;
  initialName: string;
  /** The user just signed out as `name`; `kept`: the name stays its guest user's (v2). */
  farewell?: { name: string; kept: boolean } | null;
  onName: (name: string) => void;
  onToken: (token: string) => void;
}

export function LoginScreen({ busy, error, tokenRequired, initialName, farewell = null, onName, onToken }: LoginProps) {
  const [mode, setMode] = useState<'name' | 'token'>(tokenRequired ? 'token' : 'name');
  const [name, setName] = useState(initialName);
  const [token, setToken] = useState('');
  const [localError, setLocalError] = useState<LoginError | null>(null);
  const fieldRef = useRef<HTMLInputElement & HTMLTextAreaElement>(null);
  const errorId = useId();
  const nameId = useId();
  const tokenId = useId();

  useEffect(() => {
    if (tokenRequired) setMode('token');
  }, [tokenRequired]);

  useEffect(() => {
    setName((n) => n || initialName);
  }, [initialName]);

  const shown = localError ?? error;
  useEffect(() => {
    if (!busy) fieldRef.current?.focus();
  }, [busy, shown, mode]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    if (mode === 'name') {
      const n = name.trim();
      if (n === '') {
        setLocalError({ code: 'empty', message: 'Please enter a username.' });
        return;
      }
      setLocalError(null);
      onName(n);
    } else {
      const t = token.trim();
      if (t === '') {
        setLocalError({ code: 'empty', message: 'Please paste your sign-in token.' });
        return;
      }
      setLocalError(null);
      onToken(t);
    }
  };

  return (
    <main className="login" aria-labelledby="login-title">
      <form className="login-card" onSubmit={submit} noValidate aria-busy={busy}>
        <h2 id="login-title">{mode === 'name' ? 'Join the chat' : 'Sign in with a token'}</h2>
        {farewell && (
          <p className="hint" role="status" data-farewell={farewell.kept ? 'kept' : 'freed'}>
            {farewell.kept
              ? `You signed out. The name “${farewell.name}” stays reserved for its guest account for the guest lifetime (by default 30 days after its last connection).`
              : `You signed out. The name “${farewell.name}” is free again.`}
          </p>
        )}
        {mode === 'name' ? (
          <>
            <label htmlFor={nameId}>Username</label>
            <input
              id={nameId}
              ref={fieldRef}
              name="username"
              autoComplete="username"
              maxLength={64}
              value={name}
              onChange={(e) => setName(e.target.value)}
              aria-invalid={shown ? true : undefined}
              aria-describedby={shown ? errorId : undefined}
              disabled={busy}
            />
          </>
        ) : (
          <>
            {tokenRequired && <p className="hint">This server requires a sign-in token.</p>}
            <label htmlFor={tokenId}>Token</label>
            <textarea
              id={tokenId}
              ref={fieldRef}
              name="token"
              rows={3}
              spellCheck={false}
              autoComplete="off"
              value={token}
              onChange={(e) => setToken(e.target.value)}
              aria-invalid={shown ? true : undefined}
              aria-describedby={shown ? errorId : undefined}
              disabled={busy}
            />
          </>
        )}
        {shown && (
          <p id={errorId} className="field-error" role="alert" data-code={shown.code}>
            {shown.message}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : mode === 'name' ? 'Join' : 'Sign in'}
        </button>
        {!tokenRequired && (
          <button
            type="button"
            className="link-button"
            onClick={() => {
              setLocalError(null);
              setMode(mode === 'name' ? 'token' : 'name');
            }}
            disabled={busy}
          >
            {mode === 'name' ? 'Sign in with a token instead' : 'Pick a username instead'}
          </button>
        )}
      </form>
    </main>
  );
}
