// A room's members panel (contract v2, issue #15): each member with role
// and an online dot, and for an owner or moderator a menu per member of
// lower role (MemberMenu), an invite form (private rooms) and an unban
// form (a banned user is no longer a member, so it is named). It asks for
// the list when it opens; the answers of its requests are shown in it.
// Escape closes it (focus goes back to the button that opened it).

import { useEffect, useId, useState, type FormEvent } from 'react';
import type { Member, Role } from '../protocol.ts';
import { canModerate, memberActions, type RoomOp } from '../state/rooms.ts';
import { MemberMenu } from './MemberMenu.tsx';

export interface MembersPanelProps {
  room: string;
  me: string | null;
  role: Role | null;
  isPrivate: boolean;
  members: readonly Member[] | null;
  error: string | null;
  onAct: (req: RoomOp) => Promise<string | null>;
  onClose: () => void;
}

const ROLE_LABEL: Record<Role, string> = { owner: 'owner', moderator: 'moderator', member: '' };

interface ByNameProps {
  label: string;
  action: 'invite' | 'unban';
  onAct: MembersPanelProps['onAct'];
  onDone: (text: string | null) => void;
}

/** A form that names a user: invite (private rooms) or unban. */
function ByName({ label, action, onAct, onDone }: ByNameProps) {
  const [name, setName] = useState('');
  const id = useId();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const user = name.trim();
    if (user === '') return;
    const err = await onAct({ op: action, user });
    onDone(err ?? (action === 'invite' ? `${user} is invited.` : `${user} is no longer banned.`));
    if (err === null) setName('');
  };
  return (
    <form className="by-name" onSubmit={submit}>
      <label htmlFor={id}>{label}</label>
      <input id={id} value={name} placeholder="Username" onChange={(e) => setName(e.target.value)} />
      <button type="submit">{action === 'invite' ? 'Invite' : 'Unban'}</button>
    </form>
  );
}

export function MembersPanel({ room, me, role, isPrivate, members, error, onAct, onClose }: MembersPanelProps) {
  const [said, setSaid] = useState<string | null>(null);
  useEffect(() => {
    void onAct({ op: 'members' });
  }, [room, onAct]);
  const mod = canModerate(role);

  return (
    <aside className="members-panel" aria-label={`Members of ${room}`} onKeyDown={(e) => e.key === 'Escape' && onClose()}>
      <header>
        <h3>Members{members ? ` (${members.length})` : ''}</h3>
        <button type="button" className="icon-button" aria-label="Close members" onClick={onClose}>
          ×
        </button>
      </header>
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
      {said && (
        <p className="panel-status" role="status">
          {said}
        </p>
      )}
      {members === null && !error && <p className="empty">Loading members…</p>}
      {members && (
        <ul className="member-list" aria-label="Members">
          {members.map((m) => {
            const acts = memberActions(role, me, m);
            return (
              <li key={m.username} data-member={m.username} data-role={m.role}>
                <span className={m.online ? 'dot online' : 'dot'} role="img" aria-label={m.online ? 'online' : 'offline'} />
                <span className="member-name">{m.username}</span>
                {ROLE_LABEL[m.role] && <span className="role-badge">{ROLE_LABEL[m.role]}</span>}
                {acts.length > 0 && <MemberMenu member={m} actions={acts} onAct={onAct} onError={setSaid} />}
              </li>
            );
          })}
        </ul>
      )}
      {mod && isPrivate && <ByName label="Invite to this room" action="invite" onAct={onAct} onDone={setSaid} />}
      {mod && <ByName label="Unban by name" action="unban" onAct={onAct} onDone={setSaid} />}
    </aside>
  );
}
