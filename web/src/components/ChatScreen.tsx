// The signed-in screen: sidebar and the open conversation side by side on
// a desktop; on a phone one of the two at a time, with a back button.

import { useCallback, useEffect, useMemo, useRef } from 'react';
import type { ChatActions } from '../client/ChatClient.ts';
import { isOnline, memberCount, type ChatState } from '../state/chat.ts';
import { msgKey } from '../state/messageOps.ts';
import { sameName, type ConvKey } from '../state/names.ts';
import type { RoomOp } from '../state/rooms.ts';
import { visiblePending } from '../state/pending.ts';
import type { ChatMessage } from '../protocol.ts';
import { replyRef } from '../state/messageOps.ts';
import { typingNames } from '../state/typing.ts';
import { ConversationView } from './ConversationView.tsx';
import { Sidebar } from './Sidebar.tsx';

export type ChatScreenActions = Pick<
  ChatActions,
  | 'open'
  | 'openDm'
  | 'createRoom'
  | 'joinRoom'
  | 'leaveRoom'
  | 'send'
  | 'typing'
  | 'loadOlder'
  | 'retrySend'
  | 'discardSend'
  | 'viewAtBottom'
  | 'editMessage'
  | 'deleteMessage'
  | 'react'
  | 'replyTo'
  | 'dismissMessageError'
  | 'roomOp'
  | 'dismissInvite'
  | 'clearMuted'
>;

const NO_MSG_ACTIONS = { reply: () => {}, edit: () => {}, remove: () => {}, react: () => {}, dismissError: () => {} };

export function ChatScreen({ chat, actions }: { chat: ChatState; actions: ChatScreenActions }) {
  const active = chat.active ? chat.conversations[chat.active] : undefined;
  const lastActive = useRef<ConvKey | null>(null);

  // Back from a conversation (phone layout): focus returns to its entry in the list.
  useEffect(() => {
    if (chat.active === null && lastActive.current) {
      const key = lastActive.current;
      // Compared by attribute, not a selector: a key may hold any character.
      const rows = [...document.querySelectorAll('[data-conv]')].filter((x) => x.getAttribute('data-conv') === key);
      rows.map((r) => r.querySelector<HTMLButtonElement>('.conv-button')).find((x) => x)?.focus();
    }
    lastActive.current = chat.active;
  }, [chat.active]);

  const activeKey = active?.key;
  const { send, typing, loadOlder, open, viewAtBottom } = actions;
  const onSend = useCallback((content: string) => activeKey && send(activeKey, content), [activeKey, send]);
  const onTyping = useCallback((on: boolean) => activeKey && typing(activeKey, on), [activeKey, typing]);
  const onLoadOlder = useCallback(() => activeKey && loadOlder(activeKey), [activeKey, loadOlder]);
  const onBack = useCallback(() => open(null), [open]);
  const onAtBottom = useCallback((at: boolean) => activeKey && viewAtBottom(activeKey, at), [activeKey, viewAtBottom]);
  // Expired notices are pruned by the client's once-a-second tick.
  const typingNow = useMemo(() => (activeKey ? typingNames(chat.typing, activeKey, 0) : []), [chat.typing, activeKey]);
  const pending = useMemo(() => (activeKey ? visiblePending(chat.pending, activeKey) : []), [chat.pending, activeKey]);
  const { editMessage, deleteMessage, react, replyTo, dismissMessageError, roomOp, clearMuted } = actions;
  const msgActions = useMemo(
    () =>
      activeKey
        ? {
            reply: (m: ChatMessage) => replyTo(activeKey, replyRef(m)),
            edit: (id: string, content: string) => editMessage(activeKey, id, content),
            remove: (id: string) => deleteMessage(activeKey, id),
            react: (id: string, emoji: string) => react(activeKey, id, emoji),
            dismissError: (id: string) => dismissMessageError(activeKey, id),
          }
        : null,
    [activeKey, replyTo, editMessage, deleteMessage, react, dismissMessageError],
  );
  // The errors of the open conversation's messages, by message id.
  const errors = useMemo(() => {
    const out: Record<string, string> = {};
    if (!activeKey) return out;
    const prefix = msgKey(activeKey, '');
    for (const [k, v] of Object.entries(chat.msgErrors)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
    return out;
  }, [chat.msgErrors, activeKey]);
  const activeName = active?.kind === 'room' ? active.name : null;
  const onRoomOp = useCallback((req: RoomOp) => (activeName ? roomOp(activeName, req) : Promise.resolve(null)), [activeName, roomOp]);
  const onCancelReply = useCallback(() => activeKey && replyTo(activeKey, null), [activeKey, replyTo]);
  const onClearMuted = useCallback(() => activeName && clearMuted(activeName), [activeName, clearMuted]);
  const info = activeName ? chat.rooms.find((r) => sameName(r.name, activeName)) : undefined;

  return (
    <div className="chat" data-view={active ? 'conversation' : 'list'}>
      <Sidebar
        chat={chat}
        onOpen={actions.open}
        onOpenDm={actions.openDm}
        onCreateRoom={actions.createRoom}
        onJoinRoom={actions.joinRoom}
        onLeaveRoom={actions.leaveRoom}
        onDismissInvite={actions.dismissInvite}
      />
      <main className="pane">
        {active ? (
          <ConversationView
            key={active.key}
            conv={active}
            me={chat.me}
            members={active.kind === 'room' ? memberCount(chat, active.name) : null}
            peerOnline={active.kind === 'dm' && isOnline(chat, active.name)}
            typing={typingNow}
            pending={pending}
            onBack={onBack}
            onLeave={actions.leaveRoom}
            onSend={onSend}
            onTyping={onTyping}
            onLoadOlder={onLoadOlder}
            onRetry={actions.retrySend}
            onDiscard={actions.discardSend}
            onAtBottom={onAtBottom}
            topic={info?.topic ?? active.topic ?? ''}
            isPrivate={info?.private === true || active.isPrivate}
            errors={errors}
            replying={chat.replying[active.key] ?? null}
            msgActions={msgActions ?? NO_MSG_ACTIONS}
            onCancelReply={onCancelReply}
            onRoomOp={onRoomOp}
            onClearMuted={onClearMuted}
          />
        ) : (
          <div className="placeholder">
            <h2>Welcome, {chat.me}</h2>
            <p>
              {chat.server === 'v2'
                ? 'Pick a conversation on the left, write to someone by name, or create a room.'
                : 'Pick a room or a person on the left, or create a room.'}
            </p>
          </div>
        )}
      </main>
    </div>
  );
}
