// The sidebar: rooms (with live member counts, create, join, leave),
// private conversations and online users, each with unread counters.

import { useId, useState, type FormEvent } from 'react';
import type { ChatState, Conversation } from '../state/chat.ts';
import { isOnline, privateChats } from '../state/chat.ts';
import { foldName, roomKey, sameName, type ConvKey } from '../state/names.ts';
import { Badge } from './Badge.tsx';

export interface SidebarProps {
  state: ChatState;
  onOpen: (key: ConvKey) => void;
  onOpenDm: (peer: string) => void;
  onCreateRoom: (name: string) => Promise<string | null>;
  onJoinRoom: (name: string) => Promise<string | null>;
  onLeaveRoom: (name: string) => Promise<string | null>;
}

interface RoomRow {
  name: string;
  key: ConvKey;
  users: number | null;
  conv: Conversation | undefined;
}

function roomRows(state: ChatState): RoomRow[] {
  const rows = new Map<ConvKey, RoomRow>();
  for (const r of state.rooms) {
    const key = roomKey(r.name);
    rows.set(key, { name: r.name, key, users: r.users, conv: state.conversations[key] });
  }
  for (const c of Object.values(state.conversations)) {
    if (c.kind === 'room' && c.joined && !rows.has(c.key)) rows.set(c.key, { name: c.name, key: c.key, users: null, conv: c });
  }
  return [...rows.values()].sort((a, b) => foldName(a.name).localeCompare(foldName(b.name)));
}

function members(n: number | null): string {
  if (n === null) return '';
  return n === 1 ? '1 member' : `${n} members`;
}

export function Sidebar({ state, onOpen, onOpenDm, onCreateRoom, onJoinRoom, onLeaveRoom }: SidebarProps) {
  const [newRoom, setNewRoom] = useState('');
  const [roomError, setRoomError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const inputId = useId();
  const errorId = useId();

  const act = async (f: () => Promise<string | null>) => {
    setBusy(true);
    const err = await f();
    setBusy(false);
    setRoomError(err);
    return err;
  };

  const create = async (e: FormEvent) => {
    e.preventDefault();
    const name = newRoom.trim();
    if (name === '') {
      setRoomError('Please enter a room name.');
      return;
    }
    const err = await act(() => onCreateRoom(name));
    if (err === null) setNewRoom('');
  };

  const rows = roomRows(state);
  const dms = privateChats(state);
  const users = [...state.users].sort((a, b) => foldName(a.username).localeCompare(foldName(b.username)));

  return (
    <nav className="sidebar" aria-label="Conversations">
      <section aria-labelledby="rooms-heading">
        <h2 id="rooms-heading">Rooms</h2>
        <form className="create-room" onSubmit={create} noValidate>
          <label htmlFor={inputId} className="sr-only">
            New room name
          </label>
          <input
            id={inputId}
            placeholder="New room name"
            value={newRoom}
            maxLength={128}
            onChange={(e) => setNewRoom(e.target.value)}
            aria-invalid={roomError ? true : undefined}
            aria-describedby={roomError ? errorId : undefined}
          />
          <button type="submit" disabled={busy}>
            Create
          </button>
        </form>
        {roomError && (
          <p id={errorId} className="field-error" role="alert">
            {roomError}
          </p>
        )}
        {rows.length === 0 ? (
          <p className="empty">No rooms yet. Create one.</p>
        ) : (
          <ul className="conv-list" aria-label="Rooms">
            {rows.map((r) => {
              const joined = r.conv?.joined === true;
              const active = state.active === r.key;
              return (
                <li key={r.key} data-conv={r.key} data-room={r.name} data-joined={joined} className={active ? 'active' : undefined}>
                  <button
                    type="button"
                    className="conv-button"
                    aria-current={active ? 'true' : undefined}
                    onClick={() => (joined ? onOpen(r.key) : void act(() => onJoinRoom(r.name)))}
                  >
                    <span className="conv-name"># {r.name}</span>
                    <span className="conv-meta" data-members={r.users ?? ''}>
                      {members(r.users)}
                      {!joined && <span className="join-hint"> · join</span>}
                    </span>
                    <Badge count={state.unread[r.key] ?? 0} />
                  </button>
                  {joined && (
                    <button
                      type="button"
                      className="icon-button"
                      aria-label={`Leave room ${r.name}`}
                      title="Leave room"
                      onClick={() => void act(() => onLeaveRoom(r.name))}
                    >
                      ×
                    </button>
                  )}
                </li>
              );
            })}
          </ul>
        )}
      </section>

      <section aria-labelledby="dms-heading">
        <h2 id="dms-heading">Private chats</h2>
        {dms.length === 0 ? (
          <p className="empty">Pick someone below to chat privately.</p>
        ) : (
          <ul className="conv-list" aria-label="Private chats">
            {dms.map((c) => {
              const active = state.active === c.key;
              const online = isOnline(state, c.name);
              return (
                <li key={c.key} data-conv={c.key} data-peer={c.name} className={active ? 'active' : undefined}>
                  <button
                    type="button"
                    className="conv-button"
                    aria-current={active ? 'true' : undefined}
                    onClick={() => onOpen(c.key)}
                  >
                    <span className="conv-name">
                      <span className={online ? 'presence online' : 'presence'} aria-hidden="true" />
                      {c.name}
                      <span className="sr-only">{online ? ' (online)' : ' (offline)'}</span>
                    </span>
                    <Badge count={state.unread[c.key] ?? 0} />
                  </button>
                </li>
              );
            })}
          </ul>
        )}
      </section>

      <section aria-labelledby="users-heading">
        <h2 id="users-heading">Online ({users.length})</h2>
        <ul className="user-list" aria-label="Online users">
          {users.map((u) => {
            const me = sameName(u.username, state.me);
            return (
              <li key={foldName(u.username)} data-user={u.username}>
                {me ? (
                  <span className="user-self">
                    <span className="presence online" aria-hidden="true" />
                    {u.username} <span className="you">(you)</span>
                  </span>
                ) : (
                  <button
                    type="button"
                    className="conv-button"
                    onClick={() => onOpenDm(u.username)}
                    aria-label={`Chat privately with ${u.username}`}
                  >
                    <span className="conv-name">
                      <span className="presence online" aria-hidden="true" />
                      {u.username}
                    </span>
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      </section>
    </nav>
  );
}
