// Entry point: mounts the app with the page's one socket connection.

import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { socket } from './socket.ts';
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
createRoot(root).render(
  <StrictMode>
    <App socket={socket} storage={sessionStore()} />
  </StrictMode>,
);
