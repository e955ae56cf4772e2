// Sends in flight. Each message the user sends gets a clientId and stays
// here until the server acknowledges it with the stored message's id. A send
// that fails for a transient reason (disconnect, timeout, rate limit) goes
// back to `queued` and is emitted again with the same clientId, which the
// server deduplicates, so a message is delivered once however often we retry.

import type { ChatMessage, ReplyRef } from '../protocol.ts';
import type { ConvKey } from './names.ts';

export type SendTarget = { kind: 'room'; room: string } | { kind: 'dm'; to: string };

export type PendingStatus = 'queued' | 'sending' | 'failed';

export interface PendingSend {
  clientId: string;
  conv: ConvKey;
  target: SendTarget;
  content: string;
  /** v2: the message this one replies to (sent as `replyTo: id`). */
  replyTo?: ReplyRef;
  createdAt: number;
  status: PendingStatus;
  attempts: number;
  /** Why the last attempt failed for good (status `failed`). */
  error?: string;
  /**
   * The id of a `message:receive` from us, with this content in this
   * conversation, that arrived before the ack: most likely this send. The
   * pending entry is hidden from then on; the ack settles it.
   */
  matchedId?: string;
}

/** 16 random bytes as hex; crypto.randomUUID needs a secure context, this does not. */
export function newClientId(
  fill: (bytes: Uint8Array<ArrayBuffer>) => void = (b) => {
    crypto.getRandomValues(b);
  },
): string {
  const bytes = new Uint8Array(16);
  fill(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function addPending(list: readonly PendingSend[], p: PendingSend): PendingSend[] {
  if (list.some((x) => x.clientId === p.clientId)) return [...list];
  return [...list, p];
}

function update(
  list: readonly PendingSend[],
  clientId: string,
  f: (p: PendingSend) => PendingSend,
): PendingSend[] {
  return list.map((p) => (p.clientId === clientId ? f(p) : p));
}

export function markSending(list: readonly PendingSend[], clientId: string): PendingSend[] {
  return update(list, clientId, (p) => {
    const { error: _e, ...rest } = p;
    return { ...rest, status: 'sending', attempts: p.attempts + 1 };
  });
}

/** A transient failure: try again later with the same clientId. */
export function markQueued(list: readonly PendingSend[], clientId: string): PendingSend[] {
  return update(list, clientId, (p) => (p.status === 'failed' ? p : { ...p, status: 'queued' }));
}

/** After a disconnect every send in flight is retried once we are back. */
export function requeueInFlight(list: readonly PendingSend[]): PendingSend[] {
  return list.map((p) => (p.status === 'sending' ? { ...p, status: 'queued' } : p));
}

export function markFailed(list: readonly PendingSend[], clientId: string, error: string): PendingSend[] {
  return update(list, clientId, (p) => ({ ...p, status: 'failed', error }));
}

/** The user asks to try a failed send again (same clientId). */
export function retryFailed(list: readonly PendingSend[], clientId: string): PendingSend[] {
  return update(list, clientId, (p) => {
    if (p.status !== 'failed') return p;
    const { error: _e, ...rest } = p;
    return { ...rest, status: 'queued' };
  });
}

export function removePending(list: readonly PendingSend[], clientId: string): PendingSend[] {
  return list.filter((p) => p.clientId !== clientId);
}

/**
 * A message of ours arrived: remember it on the oldest unmatched send with
 * the same conversation and content, so it is not shown twice while its ack
 * is on the way.
 */
export function matchReceived(list: readonly PendingSend[], conv: ConvKey, msg: ChatMessage): readonly PendingSend[] {
  if (list.some((p) => p.matchedId === msg.id)) return list;
  const i = list.findIndex(
    (p) => p.conv === conv && p.matchedId === undefined && p.status !== 'failed' && p.content === msg.content,
  );
  if (i < 0) return list;
  const out = [...list];
  out[i] = { ...(out[i] as PendingSend), matchedId: msg.id };
  return out;
}

export interface AckResult {
  pending: PendingSend[];
  /** The send that was acknowledged, if it was still pending. */
  settled: PendingSend | null;
}

/** The server stored the send as message `id`: it leaves the pending list. */
export function resolveAck(list: readonly PendingSend[], clientId: string): AckResult {
  const settled = list.find((p) => p.clientId === clientId) ?? null;
  return { pending: removePending(list, clientId), settled };
}

/** The sends the user should see in a conversation (matched ones are already in the timeline). */
export function visiblePending(list: readonly PendingSend[], conv: ConvKey): PendingSend[] {
  return list.filter((p) => p.conv === conv && p.matchedId === undefined);
}

export function queued(list: readonly PendingSend[]): PendingSend[] {
  return list.filter((p) => p.status === 'queued');
}
