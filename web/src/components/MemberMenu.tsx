// The moderation menu of one room member (contract v2, issue #15), shown
// only to an owner or moderator acting on a lower role (state/rooms.ts
// memberActions decides what it offers). A disclosure: the button opens a
// group of actions; ban and mute ask for how long, handing ownership on
// asks to confirm. Escape closes it and focus goes back to its button.

import { useId, useRef, useState, type KeyboardEvent } from 'react';
import type { Member } from '../protocol.ts';
import { DURATIONS, type MemberAction, type RoomOp } from '../state/rooms.ts';

export interface MemberMenuProps {
  member: Member;
  actions: readonly MemberAction[];
  /** Sends the request; resolves to an error text or null. */
  onAct: (req: RoomOp) => Promise<string | null>;
  onError: (text: string | null) => void;
}

type Step = 'closed' | 'open' | 'ban' | 'mute' | 'owner';

export function MemberMenu({ member, actions, onAct, onError }: MemberMenuProps) {
  const [step, setStep] = useState<Step>('closed');
  const [duration, setDuration] = useState(0);
  const [busy, setBusy] = useState(false);
  const button = useRef<HTMLButtonElement>(null);
  const groupId = useId();
  const user = member.username;

  const close = () => {
    setStep('closed');
    button.current?.focus();
  };
  const act = async (req: RoomOp) => {
    setBusy(true);
    const err = await onAct(req);
    setBusy(false);
    onError(err);
    close();
  };
  const keyDown = (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      close();
    }
  };
  const ms = DURATIONS[duration]?.ms ?? null;

  return (
    <div className="member-menu" onKeyDown={keyDown}>
      <button
        ref={button}
        type="button"
        className="icon-button"
        aria-label={`Actions for ${user}`}
        aria-expanded={step !== 'closed'}
        aria-controls={groupId}
        onClick={() => (step === 'closed' ? setStep('open') : close())}
      >
        ⋯
      </button>
      {step !== 'closed' && (
        <div id={groupId} className="member-actions" role="group" aria-label={`Actions for ${user}`}>
          {step === 'open' && (
            <>
              {actions.includes('kick') && (
                <button type="button" disabled={busy} autoFocus onClick={() => void act({ op: 'kick', user })}>
                  Kick
                </button>
              )}
              {actions.includes('ban') && (
                <button type="button" disabled={busy} onClick={() => setStep('ban')}>
                  Ban…
                </button>
              )}
              {actions.includes('mute') && (
                <button type="button" disabled={busy} onClick={() => setStep('mute')}>
                  Mute…
                </button>
              )}
              {actions.includes('unmute') && (
                <button type="button" disabled={busy} onClick={() => void act({ op: 'unmute', user })}>
                  Unmute
                </button>
              )}
              {actions.includes('moderator') && (
                <button type="button" disabled={busy} onClick={() => void act({ op: 'role', user, role: 'moderator' })}>
                  Make moderator
                </button>
              )}
              {actions.includes('member') && (
                <button type="button" disabled={busy} onClick={() => void act({ op: 'role', user, role: 'member' })}>
                  Make member
                </button>
              )}
              {actions.includes('owner') && (
                <button type="button" disabled={busy} onClick={() => setStep('owner')}>
                  Hand on ownership…
                </button>
              )}
            </>
          )}
          {(step === 'ban' || step === 'mute') && (
            <form
              onSubmit={(e) => {
                e.preventDefault();
                void act({ op: step, user, durationMs: ms });
              }}
            >
              <label>
                {step === 'ban' ? `Ban ${user} for` : `Mute ${user} for`}{' '}
                <select value={duration} autoFocus onChange={(e) => setDuration(Number(e.target.value))}>
                  {DURATIONS.map((d, i) => (
                    <option key={d.label} value={i}>
                      {d.label}
                    </option>
                  ))}
                </select>
              </label>
              <button type="submit" className="danger" disabled={busy}>
                {step === 'ban' ? 'Ban' : 'Mute'}
              </button>
              <button type="button" className="link-button" onClick={close}>
                Cancel
              </button>
            </form>
          )}
          {step === 'owner' && (
            <div>
              <p>Make {user} the owner? You become a moderator and cannot undo this yourself.</p>
              <button
                type="button"
                className="danger"
                disabled={busy}
                autoFocus
                onClick={() => void act({ op: 'role', user, role: 'owner' })}
              >
                Make {user} owner
              </button>
              <button type="button" className="link-button" onClick={close}>
                Cancel
              </button>
            </div>
          )}
        </div>
      )}
    </div>
  );
}
