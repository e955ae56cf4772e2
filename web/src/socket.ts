// The page's Socket.IO connection, made by `createSocket()` for the client
// object (client/ChatClient.ts), which owns it. It talks to the page's own
// origin on /socket.io/; the server keeps connection state across short
// drops (connection state recovery), and socket.io-client >= 4.6 resumes it
// on its own: `socket.recovered` tells whether the missed packets were
// replayed or we must resync ourselves.

import { io, type Socket } from 'socket.io-client';
import type { Ack } from './protocol.ts';
import { isAck } from './protocol.ts';

export type ChatSocket = Socket;

/** How long we wait for an acknowledgement before treating a request as lost. */
export const ACK_TIMEOUT_MS = 10_000;

export function createSocket(): ChatSocket {
  return io({
    path: '/socket.io/',
    autoConnect: false,
    reconnection: true,
    reconnectionDelay: 500,
    reconnectionDelayMax: 3000,
    randomizationFactor: 0.3,
    timeout: 10_000,
  });
}

/**
 * Emits `event` and resolves with the server's ack. A missing or malformed
 * ack, a timeout or a disconnect before the answer all resolve to an error
 * ack (`timeout`, `offline`, `invalid_ack`): this never rejects.
 */
export function request<T extends object>(
  s: ChatSocket,
  event: string,
  ...args: unknown[]
): Promise<Ack<T>> {
  return new Promise((resolve) => {
    if (!s.connected) {
      resolve({ ok: false, error: 'offline' });
      return;
    }
    s.timeout(ACK_TIMEOUT_MS).emit(event, ...args, (err: Error | null, reply: unknown) => {
      if (err) {
        resolve({ ok: false, error: s.connected ? 'timeout' : 'offline' });
      } else if (isAck(reply)) {
        resolve(reply as Ack<T>);
      } else {
        resolve({ ok: false, error: 'invalid_ack' });
      }
    });
  });
}
