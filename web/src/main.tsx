// Entry point: makes the chat client (which owns the page's one socket
// connection), starts it, and mounts the app on it.

import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { ChatClient } from './client/ChatClient.ts';
import { createSocket } from './socket.ts';
import './styles.css';

function sessionStore(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: no restore after reload
  }
}

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
const client = new ChatClient(createSocket(), sessionStore());
client.start();
createRoot(root).render(
  <StrictMode>
    <App client={client} />
  </StrictMode>,
);
