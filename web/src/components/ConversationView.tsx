// One open conversation, a room or a private chat: header, messages,
// typing indicator and the message box. Rooms (v2) also have their topic,
// a members panel and, for the owner, "Delete room"; all but the topic's
// text only when the roomModeration switch is on (features.ts).

import { useCallback, useRef, useState } from 'react';
import { useFeatures } from '../features.ts';
import type { ChatMessage, ReplyRef } from '../protocol.ts';
import type { Conversation } from '../state/chat.ts';
import { sameName } from '../state/names.ts';
import type { PendingSend } from '../state/pending.ts';
import { canModerate, type RoomOp } from '../state/rooms.ts';
import { describeTyping } from '../state/typing.ts';
import { Composer } from './Composer.tsx';
import { MembersPanel } from './MembersPanel.tsx';
import type { MessageItemActions } from './MessageItem.tsx';
import { MessageList } from './MessageList.tsx';
import { DeleteRoom, RoomTopic } from './RoomTools.tsx';

export interface ConversationProps {
  conv: Conversation;
  /** This user's name (own messages are marked). */
  me: string | null;
  /** Rooms: the member count, if known. */
  members: number | null;
  /** Private chats: the peer is online. */
  peerOnline: boolean;
  /** Who is typing here, by name. */
  typing: readonly string[];
  /** Sends not yet in the timeline. */
  pending: readonly PendingSend[];
  onBack: () => void;
  onLeave: (room: string) => Promise<string | null>;
  onSend: (content: string) => void;
  onTyping: (isTyping: boolean) => void;
  onLoadOlder: () => void;
  onRetry: (clientId: string) => void;
  onDiscard: (clientId: string) => void;
  onAtBottom: (atBottom: boolean) => void;
  /** Rooms: the topic (rooms:update, or the join ack) and whether the room is private. */
  topic: string;
  isPrivate: boolean;
  /** Errors next to messages, by message id. */
  errors: Readonly<Record<string, string>>;
  replying: ReplyRef | null;
  msgActions: Omit<MessageItemActions, 'jumpTo'>;
  onCancelReply: () => void;
  onRoomOp: (req: RoomOp) => Promise<string | null>;
  onClearMuted: () => void;
}

export function ConversationView(p: ConversationProps) {
  const { conv, me, members: count } = p;
  const [error, setError] = useState<string | null>(null);
  const [showMembers, setShowMembers] = useState(false);
  const membersButton = useRef<HTMLButtonElement>(null);
  const closeMembers = useCallback(() => {
    setShowMembers(false);
    membersButton.current?.focus();
  }, []);
  const room = conv.kind === 'room';
  const features = useFeatures();
  const tools = room && features.roomModeration;
  const mod = room && canModerate(conv.role);
  const typingText = describeTyping(p.typing);

  const own = useCallback((m: ChatMessage) => sameName(m.from, me), [me]);
  const title = conv.kind === 'room' ? `# ${conv.name}` : conv.name;
  const meta =
    conv.kind === 'room'
      ? count === null
        ? ''
        : count === 1
          ? '1 member'
          : `${count} members`
      : p.peerOnline
        ? 'online'
        : 'offline';
  const placeholder = conv.kind === 'room' ? `Message # ${conv.name}` : `Message ${conv.name}`;

  return (
    <section className="conversation" aria-labelledby="conversation-title" data-conv={conv.key}>
      <header className="conversation-header">
        <button type="button" className="back icon-button" onClick={p.onBack} aria-label="Back to conversations">
          ←
        </button>
        <h2 id="conversation-title">{title}</h2>
        <span className="conversation-meta">
          {meta}
          {room && p.isPrivate && ' · private'}
          {room && conv.role && conv.role !== 'member' && ` · you are ${conv.role === 'owner' ? 'the owner' : 'a moderator'}`}
        </span>
        {tools && (
          <button ref={membersButton} type="button" aria-expanded={showMembers} onClick={() => setShowMembers(!showMembers)}>
            Members
          </button>
        )}
        {tools && conv.role === 'owner' && <DeleteRoom room={conv.name} onAct={p.onRoomOp} />}
        {room && (
          <button type="button" onClick={() => void p.onLeave(conv.name).then(setError)}>
            Leave
          </button>
        )}
        {room && (p.topic !== '' || (tools && mod)) && (
          <RoomTopic key={p.topic} topic={p.topic} canEdit={tools && mod} onAct={p.onRoomOp} />
        )}
      </header>
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
      <div className="conversation-body">
        <MessageList
          label={conv.kind === 'room' ? `Messages in ${conv.name}` : `Private chat with ${conv.name}`}
          messages={conv.messages}
          pending={p.pending}
          isOwn={own}
          hasMore={conv.hasMore}
          loadingOlder={conv.loadingOlder}
          historyLoaded={conv.historyLoaded}
          onLoadOlder={p.onLoadOlder}
          onRetry={p.onRetry}
          onDiscard={p.onDiscard}
          onAtBottom={p.onAtBottom}
          me={me}
          moderator={mod}
          errors={p.errors}
          actions={p.msgActions}
        />
        {tools && showMembers && (
          <MembersPanel
            room={conv.name}
            me={me}
            role={conv.role}
            isPrivate={p.isPrivate}
            members={conv.members}
            error={conv.membersError}
            onAct={p.onRoomOp}
            onClose={closeMembers}
          />
        )}
      </div>
      <div className="typing" aria-live="polite">
        {typingText}
      </div>
      <Composer
        label={placeholder}
        onSend={p.onSend}
        onTyping={p.onTyping}
        autoFocus
        replying={p.replying}
        onCancelReply={p.onCancelReply}
        muted={conv.muted}
        onClearMuted={p.onClearMuted}
      />
    </section>
  );
}
