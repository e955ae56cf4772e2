// "Sign out", in the top bar. A guest of a v2 server keeps its name after
// signing out (the server holds it for the guest lifetime, 30 days after the
// last connection by default), but this browser forgets the key that signs
// in as it: the button first says so and asks to confirm. Elsewhere (v1,
// token mode) it signs out at once; a v1 server frees the name then.

import { useEffect, useId, useRef, useState } from 'react';

export interface SignOutProps {
  name: string;
  /** The name stays the guest user's after signing out (v2 guest). */
  kept: boolean;
  onSignOut: () => void;
}

export function SignOut({ name, kept, onSignOut }: SignOutProps) {
  const [asking, setAsking] = useState(false);
  const panelId = useId();
  const textId = useId();
  const opener = useRef<HTMLButtonElement>(null);
  const confirm = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (asking) confirm.current?.focus();
  }, [asking]);

  const cancel = () => {
    setAsking(false);
    opener.current?.focus();
  };

  if (!kept) {
    return (
      <button type="button" className="link-button" onClick={onSignOut}>
        Sign out
      </button>
    );
  }
  return (
    <div
      className="signout"
      onBlur={(e) => {
        // Focus left the button and its panel (a click elsewhere): close it.
        if (asking && !e.currentTarget.contains(e.relatedTarget as Node | null)) setAsking(false);
      }}
    >
      <button
        ref={opener}
        type="button"
        className="link-button"
        aria-expanded={asking}
        aria-controls={panelId}
        onClick={() => (asking ? cancel() : setAsking(true))}
      >
        Sign out
      </button>
      {asking && (
        <div
          id={panelId}
          className="signout-panel"
          role="group"
          aria-label="Sign out"
          aria-describedby={textId}
          onKeyDown={(e) => {
            if (e.key === 'Escape') cancel();
          }}
        >
          <p id={textId}>
            The name “{name}” stays yours for the guest lifetime (by default 30 days after your last connection): nobody
            else can take it. Signing out makes this browser forget the key that signs you in as {name}, so you will
            not be able to use that name here again until it expires.
          </p>
          <div className="signout-actions">
            <button ref={confirm} type="button" className="primary" onClick={onSignOut}>
              Sign out
            </button>
            <button type="button" onClick={cancel}>
              Stay signed in
            </button>
          </div>
        </div>
      )}
    </div>
  );
}
