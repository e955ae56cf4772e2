/* chat.h - the chat layer: the events of the chat contract
 * (docs/PROTOCOL.md) on top of a Socket.IO namespace and a
 * store.
 *
 * A chat_server owns namespace "/" of a sio_server: identity (anonymous
 * user:join or token mode), presence (users:update, rooms:update, coalesced
 * by one timer), rooms, room and private messages (stored before they are
 * delivered), history, typing, replies and errors, and the per-connection
 * rate limit and order of events (a connection's events run one after the
 * other, whatever the store's latency). With a clustered bus, every rule
 * holds across the nodes that share it (chat_internal.h tells how). It
 * keeps the sio_server, the store and the bus borrowed: they must outlive
 * it (see chat_server_free). Everything runs on the loop's thread. */
#ifndef PARLEY_CHAT_CHAT_H
#define PARLEY_CHAT_CHAT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "bus/bus.h"
#include "sio/sio.h"
#include "store/store.h"
#include "util/buf.h"

typedef struct chat_server chat_server;

typedef struct {
    size_t max_content;          /* longest content in code points; 0: 4000 */
    double rate;                 /* events/s per connection; 0 disables */
    uint32_t burst;              /* token bucket size (ignored when rate is 0) */
    const char *auth_secret;     /* HS256 secret: token mode; NULL: anonymous */
    uint32_t recovery_window_ms; /* sio's recovery window (0: off); in cluster
                                    mode the life of a kept session's record
                                    and of an empty room's topic watch
                                    (chat_cluster.c) */
    uint32_t presence_delay_ms;  /* coalescing window of users:update and
                                    rooms:update (e.g. 30); 0: one per loop turn */
    uint32_t max_rooms;          /* rooms one connection may be in; 0: no limit */
    uint32_t max_members;        /* connections in one room; 0: no limit */
    int64_t guest_ttl_ms;        /* guest lifetime (store_user_claim); 0: 30 days */
    const uint8_t *token_key;    /* 32 bytes (copied): the resume tokens' key,
                                    the same on every backend (the store's
                                    secret "resume-token"); NULL: guests get
                                    no token (a random key: tokens die with
                                    the process) */
} chat_config;

/* Creates the chat server and registers namespace "/" on sio with its
 * handlers. cfg is copied (auth_secret included), so it need not outlive the
 * call. Returns NULL, after logging why, when cfg's rate or burst is out of
 * range for ratelimit_config_init. Aborts on out-of-memory. */
chat_server *chat_server_new(uv_loop_t *loop, sio_server *sio, store_t *store, bus_t *bus,
                             const chat_config *cfg);

/* Appends the chat's metrics (Prometheus text: events in by name, refusals
 * by code, events out, store latency) to out. */
void chat_server_metrics(const chat_server *c, buf_t *out);

/* Releases every chat state and closes the chat's timers. Sockets still
 * connected are detached from the chat (their later disconnect, when the
 * caller frees sio, does nothing here) but not disconnected. Events that
 * wait for their turn are dropped; those waiting for the store finish
 * without a reply when the store completes them (they hold their sockets
 * by reference, so sio may be freed first). The caller then frees sio
 * (before running the loop for anything but close callbacks), runs the
 * loop until idle (the timers' close callbacks and the store's completions
 * finish the job; the memory goes with the last of them), and closes the
 * store: a store_close before that completes the rest with STORE_ECLOSED,
 * which is fine too. c may be NULL. */
void chat_server_free(chat_server *c);

#endif
