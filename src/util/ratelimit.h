/* ratelimit.h - a token bucket: the contract's per-connection limit over all client
 * events (default 20 events/s, burst 40).
 *
 * One ratelimit_config_t is shared by every connection (read-only once
 * made); each connection embeds a 16-byte ratelimit_t. The clock is the
 * caller's: pass the loop's uv_now() (milliseconds, monotonic), which keeps
 * the bucket free of system calls and the tests deterministic.
 *
 * Tokens are counted in millionths (fixed point) and the rate in millionths
 * of a token per millisecond, so rates down to 0.001 events/s are exact to
 * that resolution and fractional rates need no floating point per event. */
#ifndef PARLEY_UTIL_RATELIMIT_H
#define PARLEY_UTIL_RATELIMIT_H

#include <stdint.h>
#include "util/err.h"

#define RATELIMIT_DEFAULT_RATE  20.0
#define RATELIMIT_DEFAULT_BURST 40u

/* Largest burst accepted: keeps every fixed-point sum far from overflow. */
#define RATELIMIT_MAX_BURST 1000000u
/* Largest rate accepted, in events per second. */
#define RATELIMIT_MAX_RATE 1000000.0

#define RATELIMIT_ELIMITED ERR_LIMITED /* the event is over the limit: refuse it */
#define RATELIMIT_EINVAL   ERR_INVAL /* a configuration value out of range */

typedef struct {
    uint64_t refill_per_ms; /* micro-tokens added per millisecond; 0 = off */
    uint64_t capacity;      /* burst, in micro-tokens */
} ratelimit_config_t;

/* Per-connection state. Zeroed memory is not a valid bucket: call
 * ratelimit_init. */
typedef struct {
    uint64_t tokens;  /* micro-tokens available */
    uint64_t last_ms; /* time of the last refill */
} ratelimit_t;

/* Makes a configuration of `rate` events per second (rounded to the
 * nearest 0.001; 0 disables limiting) and a burst of `burst` events.
 * Returns 0, or RATELIMIT_EINVAL (and leaves *cfg unchanged) when rate is
 * negative, NaN, above RATELIMIT_MAX_RATE or positive but below 0.0005
 * (it would round to "disabled"), or when burst is 0 or above
 * RATELIMIT_MAX_BURST while the rate is not 0. */
int ratelimit_config_init(ratelimit_config_t *cfg, double rate, uint32_t burst);

/* Starts a connection's bucket full (a new connection may burst at once). */
void ratelimit_init(ratelimit_t *rl, const ratelimit_config_t *cfg, uint64_t now_ms);

/* Accounts for one event at now_ms: refills for the time since the last
 * call, then takes a token. Returns 0 when the event is allowed, or
 * RATELIMIT_ELIMITED (no token taken) when it must be refused. With a
 * disabled configuration, always 0. A clock that goes backwards refills
 * nothing until it passes the last time seen again; any forward jump is
 * safe (the bucket just fills up). */
int ratelimit_take(ratelimit_t *rl, const ratelimit_config_t *cfg, uint64_t now_ms);

#endif
