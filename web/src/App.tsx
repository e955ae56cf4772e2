// The application shell: top bar with the connection status (always
// visible), server notices, and either the sign-in or the chat screen.
// It reads the client's state and hands each part what it shows.

import { useEffect } from 'react';
import type { ChatClient } from './client/ChatClient.ts';
import { ChatScreen } from './components/ChatScreen.tsx';
import { LoginScreen } from './components/LoginScreen.tsx';
import { SignOut } from './components/SignOut.tsx';
import { StatusBar } from './components/StatusBar.tsx';
import { useChat } from './hooks/useChat.ts';
import { connStatus } from './state/session.ts';
import { totalUnread } from './state/unread.ts';

export function App({ client }: { client: ChatClient }) {
  const { session, chat } = useChat(client);
  const unread = totalUnread(chat.unread);

  useEffect(() => {
    document.title = unread > 0 ? `(${unread}) Parley` : 'Parley';
  }, [unread]);

  return (
    <div className="app">
      <header className="topbar">
        <h1 className="brand">Parley</h1>
        <StatusBar status={connStatus(session.link)} onReconnect={client.reconnect} />
        {session.phase === 'ready' && chat.me && (
          <div className="whoami">
            <span className="whoami-name">
              <span className="sr-only">Signed in as </span>
              {chat.me}
            </span>
            <SignOut name={chat.me} kept={session.resume !== null && session.token === null} onSignOut={client.signOut} />
          </div>
        )}
      </header>
      {chat.notice && (
        <div className="notice" role="alert">
          <span>{chat.notice}</span>
          <button type="button" className="icon-button" aria-label="Dismiss" onClick={client.dismissNotice}>
            ×
          </button>
        </div>
      )}
      {session.phase === 'ready' ? (
        <ChatScreen chat={chat} actions={client} />
      ) : (
        <LoginScreen
          busy={session.phase === 'joining'}
          error={session.loginError}
          tokenRequired={session.tokenRequired}
          initialName={session.lastName}
          farewell={session.farewell}
          onName={client.signIn}
          onToken={client.signInWithToken}
        />
      )}
    </div>
  );
}
