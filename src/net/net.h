/* net.h - TCP listener, connections, coalesced output and HTTP/1.1 requests.
 *
 * The bottom layer. It owns sockets and bytes: it accepts connections, parses
 * HTTP/1.1 requests (http-parser) and hands each to the request callback,
 * writes responses, and after a WebSocket upgrade passes raw bytes to the
 * connection's owner. It knows nothing of Engine.IO.
 *
 * Memory: reads land in one buffer shared by the whole server; a connection
 * keeps input only while a request is incomplete (HTTP) and holds no input
 * buffer in raw mode (the owner copies what it must keep). Output is a queue
 * of references to shared buffers (rbuf_t): a broadcast frame is written to
 * many connections without copies. Everything queued during one loop turn is
 * written with one writev per connection just before the loop sleeps.
 *
 * Lifetime: a connection is closed with net_conn_close; its owner's on_close
 * runs exactly once, synchronously inside net_conn_close (or when the peer
 * goes away), and the memory is freed later in the libuv close callback, so a
 * net_conn pointer stays valid until the current callback returns. After
 * on_close, writes to the connection are dropped. */
#ifndef PARLEY_NET_H
#define PARLEY_NET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/rbuf.h"
#include "util/turn.h"

typedef struct net_server net_server;
typedef struct net_conn net_conn;

/* One parsed HTTP request. Strings are NUL-terminated and owned by the
 * connection; they stay valid until the response to this request is written
 * (net_respond*) or the connection closes. */
typedef struct {
    int method;           /* http_parser's enum http_method (HTTP_GET ...) */
    const char *method_name;
    char *url;            /* as received: path and query */
    size_t path_len;      /* url[0..path_len) is the path */
    const char *query;    /* after '?', "" when none */
    /* The headers Parley uses; NULL when absent. */
    char *upgrade, *connection, *ws_key, *ws_version, *origin, *content_type,
         *forwarded_for, *host;
    char *authorization;  /* the Server API's key (never logged) */
    buf_t body;
    int keep_alive;       /* the client allows another request after this */
    int is_upgrade;       /* Connection: upgrade + Upgrade header present */
    int too_large;        /* the body exceeded max_body_bytes: body is empty and
                           * the connection closes after the response */
} net_request;

typedef struct {
    /* A request is complete (body included). The callee answers now or later
     * with net_respond*, or takes the connection over with
     * net_conn_upgrade. No further request of this connection is processed
     * until then. */
    void (*on_request)(void *ud, net_conn *c, net_request *req);
} net_handler;

/* What a connection's owner (a pending long-poll, a WebSocket) is told. */
typedef struct {
    /* Raw mode only: bytes from the peer. data is the server's shared read
     * buffer: it may be modified, and must be copied to be kept. */
    void (*on_data)(void *owner, net_conn *c, uint8_t *data, size_t len);
    /* The connection is closing (peer left, error, limit, or
     * net_conn_close). Runs once; the owner must drop its pointer. */
    void (*on_close)(void *owner, net_conn *c);
} net_owner_ops;

typedef struct {
    const char *host;
    int port;
    size_t max_header_bytes;  /* URL + headers of one request */
    size_t max_body_bytes;    /* a larger body closes the connection (413) */
    size_t max_output_bytes;  /* queued output above this closes the connection */
    uint32_t max_connections; /* open connections in all; 0: no limit */
    uint32_t max_per_ip;      /* open connections from one address; 0: no limit.
                               * Trusted proxies are exempt (their clients are
                               * told apart by X-Forwarded-For, a layer up). */
    uint32_t http_timeout_ms; /* a connection in HTTP mode must complete each
                               * request within this from its last response (or
                               * from accept); idle keep-alive ends then too.
                               * Not counted while a request awaits its answer
                               * (a long-poll) nor after an upgrade. 0: none */
    const char *const *trusted_proxies; /* peer addresses ("127.0.0.1") */
    size_t trusted_count;
} net_config;

/* Binds and listens on turn's loop; queued output is written in the
 * turn's TURN_NET phase (util/turn.h). Returns 0 or a negative libuv error;
 * *out is set only on success. turn, handler and ud must outlive the
 * server. */
int net_server_start(turn_t *turn, const net_config *cfg, const net_handler *handler,
                     void *ud, net_server **out);
/* The turn the server was started on: the layers above batch their own
 * work of the turn there (util/turn.h has the order). */
turn_t *net_server_turn(net_server *s);
/* The port actually bound (useful with port 0). */
int net_server_port(const net_server *s);
/* Stops accepting; existing connections stay. */
void net_server_stop_accepting(net_server *s);
/* Stops accepting and closes every connection gracefully (owners' on_close
 * run now; output already queued, such as WebSocket close frames, is still
 * written). Connections not done after grace_ms are cut. The server frees
 * itself once the loop has run the last close callback, and then calls
 * done(ud) when done is not NULL (a loop that also serves other clients,
 * such as Redis connections, never runs out of work: stop it there). */
void net_server_close(net_server *s, uint32_t grace_ms, void (*done)(void *ud), void *ud);
/* Open connections. */
size_t net_server_conn_count(const net_server *s);

/* Ownership of a connection for close/data notifications. NULL ops clears. */
void net_conn_set_owner(net_conn *c, const net_owner_ops *ops, void *owner);

/* Switches the connection to raw mode (after the handler wrote a 101
 * response with net_conn_write*): from now on every byte goes to
 * ops->on_data, starting with any bytes that followed the request. */
void net_conn_upgrade(net_conn *c, const net_owner_ops *ops, void *owner);

/* Queues bytes for the connection. net_conn_write takes a new reference to
 * b (the caller keeps its own); the bytes b->data[off..off+len) must not
 * change afterwards. Returns 0, ERR_CLOSED when the connection is closed, or
 * ERR_LIMITED when the output limit was exceeded (the connection is then
 * closed). */
int net_conn_write(net_conn *c, rbuf_t *b, size_t off, size_t len);
int net_conn_write_copy(net_conn *c, const void *data, size_t len);

/* Closes: with `graceful`, queued output is written first; the owner's
 * on_close runs now either way. Safe to call twice. */
void net_conn_close(net_conn *c, int graceful);
int net_conn_is_closed(const net_conn *c);
/* The peer's address as text ("127.0.0.1"), "" when unknown. */
void net_conn_peer(const net_conn *c, char *out, size_t size);
/* The client's address: the peer's, or when the peer is a trusted proxy,
 * the last address of X-Forwarded-For in req (the one the proxy saw). */
void net_conn_client_ip(const net_conn *c, const net_request *req, char *out, size_t size);
typedef struct {
    uint64_t accepted;        /* connections accepted since start */
    uint64_t refused;         /* refused by max_connections / max_per_ip */
    uint64_t slow_consumers;  /* cut off by max_output_bytes */
    uint64_t http_timeouts;   /* closed by http_timeout_ms */
    uint64_t open;            /* open now */
} net_stats;

void net_server_stats(const net_server *s, net_stats *out);

/* Writes a complete response to the current request and moves on to the
 * next one. extra_headers is a block of "Name: value\r\n" lines or NULL.
 * Status 4xx/5xx responses and requests without keep-alive close the
 * connection after the write unless keep_alive is still allowed. */
void net_respond(net_conn *c, int status, const char *content_type,
                 const char *extra_headers, const void *body, size_t len);
/* The same with a shared body (a reference is taken). */
void net_respond_rbuf(net_conn *c, int status, const char *content_type,
                      const char *extra_headers, rbuf_t *body, size_t off, size_t len);
/* Responds and closes the connection afterwards. */
void net_respond_close(net_conn *c, int status, const char *content_type,
                       const char *extra_headers, const void *body, size_t len);
/* The request being answered, or NULL. */
net_request *net_conn_request(net_conn *c);

/* Finds `name` in a query string ("a=1&b=2") and writes its percent-decoded
 * value with a NUL into out. Returns the value's length, ERR_NOTFOUND when
 * absent, or ERR_TOOLONG when longer than size - 1. */
int net_query_get(const char *query, const char *name, char *out, size_t size);

/* The reason phrase of an HTTP status. */
const char *net_status_text(int status);

#endif
