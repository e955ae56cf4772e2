// The signed-in screen: sidebar and the open conversation side by side on
// a desktop; on a phone one of the two at a time, with a back button.

import { useCallback, useEffect, useRef } from 'react';
import type { ChatController } from '../hooks/useChat.ts';
import type { ConvKey } from '../state/names.ts';
import { ConversationView } from './ConversationView.tsx';
import { Sidebar } from './Sidebar.tsx';

export function ChatScreen({ chat }: { chat: ChatController }) {
  const { state } = chat;
  const active = state.active ? state.conversations[state.active] : undefined;
  const lastActive = useRef<ConvKey | null>(null);

  // Back from a conversation (phone layout): focus returns to its entry in the list.
  useEffect(() => {
    if (state.active === null && lastActive.current) {
      const key = lastActive.current;
      const el = document.querySelector<HTMLButtonElement>(`[data-conv="${CSS.escape(key)}"] .conv-button`);
      el?.focus();
    }
    lastActive.current = state.active;
  }, [state.active]);

  const activeKey = active?.key;
  const { send, typing, loadOlder, open } = chat;
  const onSend = useCallback((content: string) => activeKey && send(activeKey, content), [activeKey, send]);
  const onTyping = useCallback((on: boolean) => activeKey && typing(activeKey, on), [activeKey, typing]);
  const onLoadOlder = useCallback(() => activeKey && loadOlder(activeKey), [activeKey, loadOlder]);
  const onBack = useCallback(() => open(null), [open]);

  return (
    <div className="chat" data-view={active ? 'conversation' : 'list'}>
      <Sidebar
        state={state}
        onOpen={chat.open}
        onOpenDm={chat.openDm}
        onCreateRoom={chat.createRoom}
        onJoinRoom={chat.joinRoom}
        onLeaveRoom={chat.leaveRoom}
      />
      <main className="pane">
        {active ? (
          <ConversationView
            key={active.key}
            state={state}
            conv={active}
            onBack={onBack}
            onLeave={chat.leaveRoom}
            onSend={onSend}
            onTyping={onTyping}
            onLoadOlder={onLoadOlder}
            onRetry={chat.retrySend}
            onDiscard={chat.discardSend}
          />
        ) : (
          <div className="placeholder">
            <h2>Welcome, {state.me}</h2>
            <p>Pick a room or a person on the left, or create a room.</p>
          </div>
        )}
      </main>
    </div>
  );
}
