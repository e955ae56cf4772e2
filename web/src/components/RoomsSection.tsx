// The rooms part of the sidebar: the create form and the room list. The
// answer to the last room request (create, join, leave) is shown under the
// form, and the form's button waits while one is on its way.

import { useId, useState } from 'react';
import type { RoomRow } from '../state/lists.ts';
import type { ConvKey } from '../state/names.ts';
import { RoomCreate } from './RoomCreate.tsx';
import { RoomList } from './RoomList.tsx';

export interface RoomsSectionProps {
  rows: readonly RoomRow[];
  /** What the list says when it has no rows. */
  empty?: string;
  onOpen: (key: ConvKey) => void;
  onCreate: (name: string, options?: { private?: boolean; topic?: string }) => Promise<string | null>;
  /** The server speaks v2: the form offers private rooms and a topic. */
  v2?: boolean;
  onJoin: (name: string) => Promise<string | null>;
  onLeave: (name: string) => Promise<string | null>;
}

export function RoomsSection({ rows, empty, v2 = false, onOpen, onCreate, onJoin, onLeave }: RoomsSectionProps) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const errorId = useId();

  const act = async (f: () => Promise<string | null>): Promise<string | null> => {
    setBusy(true);
    const err = await f();
    setBusy(false);
    setError(err);
    return err;
  };

  const create = (name: string, options?: { private?: boolean; topic?: string }): Promise<string | null> => {
    if (name === '') {
      const err = 'Please enter a room name.';
      setError(err);
      return Promise.resolve(err);
    }
    return act(() => onCreate(name, options));
  };

  return (
    <section aria-labelledby="rooms-heading">
      <h2 id="rooms-heading">Rooms</h2>
      <RoomCreate busy={busy} errorId={error ? errorId : undefined} onCreate={create} v2={v2} />
      {error && (
        <p id={errorId} className="field-error" role="alert">
          {error}
        </p>
      )}
      <RoomList
        rows={rows}
        empty={empty}
        onOpen={onOpen}
        onJoin={(name) => void act(() => onJoin(name))}
        onLeave={(name) => void act(() => onLeave(name))}
      />
    </section>
  );
}
