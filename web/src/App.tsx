// The application shell: top bar with the connection status (always
// visible), server notices, and either the sign-in or the chat screen.

import { useEffect } from 'react';
import { useChat } from './hooks/useChat.ts';
import type { ChatSocket } from './socket.ts';
import { totalUnread } from './state/unread.ts';
import { ChatScreen } from './components/ChatScreen.tsx';
import { LoginScreen } from './components/LoginScreen.tsx';
import { StatusBar } from './components/StatusBar.tsx';

export function App({ socket, storage }: { socket: ChatSocket; storage: Storage | null }) {
  const chat = useChat(socket, storage);
  const { state } = chat;
  const unread = totalUnread(state.unread);

  useEffect(() => {
    document.title = unread > 0 ? `(${unread}) Parley` : 'Parley';
  }, [unread]);

  return (
    <div className="app">
      <header className="topbar">
        <h1 className="brand">Parley</h1>
        <StatusBar status={state.status} onReconnect={chat.reconnect} />
        {chat.phase === 'ready' && state.me && (
          <div className="whoami">
            <span className="whoami-name">
              <span className="sr-only">Signed in as </span>
              {state.me}
            </span>
            <button type="button" className="link-button" onClick={chat.signOut}>
              Sign out
            </button>
          </div>
        )}
      </header>
      {state.notice && (
        <div className="notice" role="alert">
          <span>{state.notice}</span>
          <button type="button" className="icon-button" aria-label="Dismiss" onClick={chat.dismissNotice}>
            ×
          </button>
        </div>
      )}
      {chat.phase === 'ready' ? (
        <ChatScreen chat={chat} />
      ) : (
        <LoginScreen
          busy={chat.phase === 'joining'}
          error={chat.loginError}
          tokenRequired={chat.tokenRequired}
          initialName={chat.pendingName}
          onName={chat.signIn}
          onToken={chat.signInWithToken}
        />
      )}
    </div>
  );
}
