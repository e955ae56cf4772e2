/* eio.h - Engine.IO protocol 4 server: sessions over HTTP long-polling and
 * WebSocket, the upgrade between them, heartbeats and CORS.
 *
 * It sits on net (HTTP requests, raw WebSocket bytes) and gives the layer
 * above sessions that carry text and binary messages, whichever transport
 * they use. Outbound messages are built once (eio_msg) and shared by every
 * session they are sent to: over WebSocket the very same frame bytes are
 * queued on each connection; over polling the same packet bytes go into each
 * response.
 *
 * Lifetime: a session is closed by the peer, a timeout, an error or
 * eio_session_close; on_close then runs once, synchronously, and the
 * session's memory is released later (before the loop next sleeps), so a
 * session pointer stays valid for the rest of the current callback. Sending
 * to a closed session does nothing. */
#ifndef PARLEY_EIO_H
#define PARLEY_EIO_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "net/net.h"
#include "util/err.h"
#include "util/rbuf.h"

typedef struct eio_server eio_server;
typedef struct eio_session eio_session;

typedef struct {
    uint32_t ping_interval_ms;   /* 25000 */
    uint32_t ping_timeout_ms;    /* 20000 */
    uint32_t upgrade_timeout_ms; /* 10000 */
    size_t max_payload;          /* 1e6: larger message or POST body closes */
    /* Allowed cross-origin origins ("https://a.example"); "*" allows any.
     * Requests without Origin, or from the server's own host, always pass. */
    const char *const *cors_origins;
    size_t cors_count;
    int allow_upgrades;          /* advertise and accept polling -> websocket */
    /* Packet bytes queued for a polling session between two of its GETs;
     * above it the session is closed ("transport error"), as a WebSocket is
     * cut off by the net layer's output limit. 0: no limit. */
    size_t max_poll_queue;
    /* New sessions per second from one client address (its X-Forwarded-For
     * one behind a trusted proxy), with a burst; rate 0: no limit. Over it
     * a handshake gets HTTP 429. */
    double handshake_rate;
    uint32_t handshake_burst;
} eio_config;

typedef struct {
    /* A new session is open (its open packet is sent). */
    void (*on_open)(void *ud, eio_session *s);
    /* One message; data may be modified and is valid during the call. */
    void (*on_message)(void *ud, eio_session *s, uint8_t *data, size_t len, int binary);
    /* The session is gone; reason as Engine.IO names it ("transport close",
     * "ping timeout", "parse error", "transport error", "forced close",
     * "server shutting down"). */
    void (*on_close)(void *ud, eio_session *s, const char *reason);
} eio_handlers;

/* An outbound message: one shared buffer holding room for a WebSocket
 * header, then the packet. Pass by pointer; copies share the reference. */
typedef struct {
    rbuf_t *rb;
    uint16_t ws_off;  /* the WebSocket frame starts here */
    uint16_t pkt_off; /* text: the type digit '4'; binary: the payload */
    uint8_t binary;
} eio_msg;

/* Builds a message holding a copy of data (text: sent as packet "4"+data).
 * The caller owns the message and releases it with eio_msg_release. */
void eio_msg_init(eio_msg *m, const void *data, size_t len, int binary);
void eio_msg_release(eio_msg *m);

/* Creates the server; cfg's strings must outlive it. */
eio_server *eio_server_new(uv_loop_t *loop, net_server *net, const eio_config *cfg,
                           const eio_handlers *h, void *ud);
/* Closes every session ("server shutting down": on_close runs for each),
 * and frees the server after the loop has run once more. */
void eio_server_free(eio_server *srv);

typedef struct {
    uint64_t handshakes;      /* sessions opened since start */
    uint64_t upgrades;        /* polling -> websocket upgrades completed */
    uint64_t open_polling;    /* open sessions on each transport */
    uint64_t open_websocket;
    uint64_t ping_timeouts;
    uint64_t handshakes_refused; /* over the per-address handshake rate */
} eio_stats;

void eio_server_stats(const eio_server *srv, eio_stats *out);

/* Handles one HTTP request whose path belongs to Engine.IO (the caller
 * routes by path). Always answers or takes over the connection. */
void eio_handle_request(eio_server *srv, net_conn *c, net_request *req);

/* Queues a message (a new reference is taken). Returns 0, ERR_CLOSED when
 * the session is closed, or ERR_LIMITED when its output limit closed it. */
int eio_send(eio_session *s, const eio_msg *m);
/* Closes the session (see eio.h's lifetime note). */
void eio_session_close(eio_session *s, const char *reason);
const char *eio_session_id(const eio_session *s);
void eio_session_set_data(eio_session *s, void *data);
void *eio_session_data(const eio_session *s);

#endif
