// The sidebar: rooms, private chats and online users, side by side in one
// navigation landmark. It derives the rows (state/lists.ts) and gives each
// section only its rows and the actions it offers.

import type { ConvKey } from '../state/names.ts';
import { chatRows, roomRows, userRows, type ListSource } from '../state/lists.ts';
import { PrivateChatList } from './PrivateChatList.tsx';
import { RoomsSection } from './RoomsSection.tsx';
import { UserList } from './UserList.tsx';

export interface SidebarProps {
  chat: ListSource;
  onOpen: (key: ConvKey) => void;
  onOpenDm: (peer: string) => void;
  onCreateRoom: (name: string) => Promise<string | null>;
  onJoinRoom: (name: string) => Promise<string | null>;
  onLeaveRoom: (name: string) => Promise<string | null>;
}

export function Sidebar({ chat, onOpen, onOpenDm, onCreateRoom, onJoinRoom, onLeaveRoom }: SidebarProps) {
  return (
    <nav className="sidebar" aria-label="Conversations">
      <RoomsSection
        rows={roomRows(chat)}
        onOpen={onOpen}
        onCreate={onCreateRoom}
        onJoin={onJoinRoom}
        onLeave={onLeaveRoom}
      />
      <PrivateChatList rows={chatRows(chat)} onOpen={onOpen} />
      <UserList users={userRows(chat)} onOpenDm={onOpenDm} />
    </nav>
  );
}
