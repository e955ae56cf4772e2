// The sidebar: rooms, private chats and online users, side by side in one
// navigation landmark. It derives the rows (state/lists.ts) and gives each
// section only its rows and the actions it offers. With a v2 server the
// joined rooms and the private conversations are one list (Conversations),
// and the rooms section offers only the rooms one may still join.

import type { ChatState } from '../state/chat.ts';
import type { ConvKey } from '../state/names.ts';
import { chatRows, conversationRows, otherRoomRows, roomRows, userRows, type ListSource } from '../state/lists.ts';
import { pendingInvites } from '../state/rooms.ts';
import { ConversationList } from './ConversationList.tsx';
import { Invitations } from './Invitations.tsx';
import { PrivateChatList } from './PrivateChatList.tsx';
import { RoomsSection } from './RoomsSection.tsx';
import { UserList } from './UserList.tsx';

export interface SidebarProps {
  chat: ListSource & Pick<ChatState, 'server' | 'invites'>;
  onOpen: (key: ConvKey) => void;
  onOpenDm: (peer: string) => void;
  onCreateRoom: (name: string, options?: { private?: boolean; topic?: string }) => Promise<string | null>;
  onJoinRoom: (name: string) => Promise<string | null>;
  onLeaveRoom: (name: string) => Promise<string | null>;
  onDismissInvite: (room: string) => void;
}

export function Sidebar({ chat, onOpen, onOpenDm, onCreateRoom, onJoinRoom, onLeaveRoom, onDismissInvite }: SidebarProps) {
  if (chat.server === 'v2') {
    return (
      <nav className="sidebar" aria-label="Conversations">
        <Invitations invites={pendingInvites(chat)} onJoin={onJoinRoom} onDismiss={onDismissInvite} />
        <ConversationList rows={conversationRows(chat)} me={chat.me} onOpen={onOpen} onOpenDm={onOpenDm} />
        <RoomsSection
          rows={otherRoomRows(chat)}
          empty="No other rooms to join. Create one."
          v2
          onOpen={onOpen}
          onCreate={onCreateRoom}
          onJoin={onJoinRoom}
          onLeave={onLeaveRoom}
        />
        <UserList users={userRows(chat)} onOpenDm={onOpenDm} />
      </nav>
    );
  }
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
