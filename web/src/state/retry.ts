// The client's one retry policy. Whatever is tried again (a send, a
// sign-in, a connection the server closed) waits 1 s before the first
// retry, then twice as long each time, at most 8 s. Failures that say
// nothing about the request itself (no answer in time, rate limited, a
// server error, an unreadable ack) are retried for as long as the
// connection lasts. Refusals that usually clear up on their own (a reload's
// old connection still holds our name; the server said goodbye while
// restarting) are retried RETRY_LIMIT times, then the user decides.

export const RETRY_FIRST_MS = 1000;
export const RETRY_MAX_MS = 8000;
export const RETRY_LIMIT = 4;

/** How long to wait before the n-th retry (n >= 1). */
export function retryDelay(n: number): number {
  return Math.min(RETRY_FIRST_MS * 2 ** Math.max(0, n - 1), RETRY_MAX_MS);
}

/** An error code that says the request may well succeed if sent again as is. */
export function isTransient(code: string): boolean {
  return code === 'timeout' || code === 'rate_limited' || code === 'internal' || code === 'invalid_ack';
}
