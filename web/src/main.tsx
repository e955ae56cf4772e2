// Entry point: makes the chat client (which owns the page's one socket
// connection), starts it, and mounts the app on it.

import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { ChatClient } from './client/ChatClient.ts';
import { createSocket } from './socket.ts';
import './styles.css';

function store(which: 'sessionStorage' | 'localStorage'): Storage | null {
  try {
    return window[which];
  } catch {
    return null; // storage disabled: no restore after reload
  }
}

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
const client = new ChatClient(createSocket(), store('sessionStorage'), store('localStorage'));
client.start();
createRoot(root).render(
  <StrictMode>
    <App client={client} />
  </StrictMode>,
);
