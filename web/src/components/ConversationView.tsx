// One open conversation, a room or a private chat: header, messages,
// typing indicator and the message box.

import { useCallback, useState } from 'react';
import type { ChatMessage } from '../protocol.ts';
import type { Conversation } from '../state/chat.ts';
import { sameName } from '../state/names.ts';
import type { PendingSend } from '../state/pending.ts';
import { describeTyping } from '../state/typing.ts';
import { Composer } from './Composer.tsx';
import { MessageList } from './MessageList.tsx';

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
}

export function ConversationView(p: ConversationProps) {
  const { conv, me, members: count } = p;
  const [error, setError] = useState<string | null>(null);
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
        <span className="conversation-meta">{meta}</span>
        {conv.kind === 'room' && (
          <button type="button" onClick={() => void p.onLeave(conv.name).then(setError)}>
            Leave
          </button>
        )}
      </header>
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
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
      />
      <div className="typing" aria-live="polite">
        {typingText}
      </div>
      <Composer label={placeholder} onSend={p.onSend} onTyping={p.onTyping} autoFocus />
    </section>
  );
}
