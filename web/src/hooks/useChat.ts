// React's view of the chat client: the client's current state, re-rendered
// whenever it changes. All behaviour lives in the client object
// (client/ChatClient.ts) and the reducers it runs (state/).

import { useSyncExternalStore } from 'react';
import type { ChatClient } from '../client/ChatClient.ts';
import type { ClientState } from '../state/session.ts';

export function useChat(client: ChatClient): ClientState {
  return useSyncExternalStore(client.subscribe, client.getSnapshot);
}
