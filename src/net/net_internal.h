/* net_internal.h - structures shared by the files of the net module only.
 * Nothing outside src/net/ includes this. */
#ifndef PARLEY_NET_INTERNAL_H
#define PARLEY_NET_INTERNAL_H

#include <http_parser.h>

#include "util/uthash_oom.h" /* uthash on mem.h: aborts on OOM */

#include "net/net.h"
#include "util/tq.h"

#define NET_READ_BUF_SIZE (64 * 1024)
#define NET_IOV_MAX 256
/* How long a graceful close waits for the peer to close its side. */
#define NET_LINGER_MS 2000

enum {
    NET_F_CLOSED = 1 << 0,      /* owner told; writes dropped */
    NET_F_DIRTY = 1 << 1,       /* on the server's flush list */
    NET_F_WRITING = 1 << 2,     /* a uv_write is in flight */
    NET_F_CLOSE_AFTER_FLUSH = 1 << 3,
    NET_F_HANDLE_CLOSING = 1 << 4, /* uv_close called */
    NET_F_FREE_PENDING = 1 << 5,   /* closed while on the flush list */
    NET_F_RAW = 1 << 6,         /* upgraded: bytes go to the owner */
};

typedef struct {
    rbuf_t *rb;
    uint32_t off, len;
} net_chunk;

/* Output queue; exists only while output is pending. */
typedef struct {
    uv_write_t req;
    net_chunk *chunks;
    uint32_t head, count, cap;
    uint32_t inflight;   /* chunks [head, head+inflight) belong to req */
    size_t bytes;
} net_outq;

/* HTTP state; exists only while a request is being read or answered. */
enum { NET_H_UPGRADE, NET_H_CONNECTION, NET_H_WS_KEY, NET_H_WS_VERSION, NET_H_ORIGIN,
       NET_H_CONTENT_TYPE, NET_H_FORWARDED_FOR, NET_H_HOST, NET_H_AUTHORIZATION, NET_H_COUNT };

typedef struct {
    http_parser parser;
    net_request req;
    buf_t url;
    buf_t field;
    buf_t hv[NET_H_COUNT];
    uint8_t seen[NET_H_COUNT];
    int cur;              /* index into hv of the header being read, or -1 */
    int last_was_value;
    int in_trailers;      /* headers complete: header callbacks now carry
                             a chunked body's trailer fields, ignored */
    size_t header_bytes;
    int complete;         /* a request awaits its response */
    int too_large;        /* header or body over the limit */
    buf_t pending_in;     /* input not parsed yet (pipelined, or after an upgrade) */
} net_http;

/* Open connections from one address (for max_per_ip). */
typedef struct net_ip_count {
    uint8_t addr[16];
    uint32_t count;
    UT_hash_handle hh;
} net_ip_count;

struct net_conn {
    uv_tcp_t tcp;         /* tcp.data is the server (net__srv) */
    net_conn *dirty_next;
    net_outq *out;
    net_http *http;
    const net_owner_ops *ops;
    void *owner;
    net_ip_count *ip;     /* counted against max_per_ip, or NULL */
    tq_owned *deadline;   /* while an HTTP request is due, a keep-alive
                             idles or a close lingers (http_q) */
    uint32_t flags;
};

/* The server of connection c: libuv's data pointer of the handle holds it
 * (no field of its own: 16 bytes less per connection with malloc's steps). */
static inline net_server *net__srv(const net_conn *c)
{
    return (net_server *)c->tcp.data;
}

struct net_server {
    uv_tcp_t listener;
    turn_t *turn;
    turn_hook flush;    /* TURN_NET: write every dirty connection */
    uv_loop_t *loop;
    net_config cfg;
    const net_handler *handler;
    void *ud;
    net_conn *dirty;
    net_ip_count *ips;
    tq_queue http_q;
    uint64_t refused, accepted, slow_consumers, http_timeouts;
    size_t nconns;
    int port;
    int closing;
    void (*closed_cb)(void *ud); /* net_server_close's `done` */
    void *closed_ud;
    int finishing;
    int handles_open;
    uv_timer_t grace;
    uint8_t readbuf[NET_READ_BUF_SIZE];
};

/* net_conn.c */
void net__mark_dirty(net_conn *c);
/* Starts (or restarts) the time the peer has to send a whole request. */
void net__http_deadline_start(net_conn *c);
void net__http_deadline_stop(net_conn *c);

/* net_http.c */
void net__http_feed(net_conn *c, const uint8_t *data, size_t len);
void net__http_resume(net_conn *c);
void net__http_free(net_conn *c);

#endif
