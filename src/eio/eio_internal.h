/* eio_internal.h - structures shared by the files of the eio module only. */
#ifndef PARLEY_EIO_INTERNAL_H
#define PARLEY_EIO_INTERNAL_H

#include "util/uthash_oom.h" /* uthash on mem.h: aborts on OOM */

#include "eio/eio.h"
#include "eio/eio_packet.h"
#include "util/rand.h"
#include "util/ratelimit.h"
#include "util/tq.h"
#include "ws/ws_codec.h"

enum { EIO_T_POLLING = 0, EIO_T_WEBSOCKET = 1 };

/* Messages waiting for the next long-poll; exists only while non-empty. */
typedef struct {
    eio_msg *items;
    uint32_t count, cap;
    size_t bytes;        /* packet bytes queued, against max_poll_queue */
} eio_pollq;

/* State of a polling -> WebSocket upgrade in progress. */
typedef struct {
    net_conn *conn;     /* the probing WebSocket */
    ws_parser parser;
    int probed;         /* "2probe" answered */
    tq_node timeout;
    struct eio_session *s;
} eio_upgrade;

struct eio_session {
    char sid[RAND_ID_LEN + 1];
    /* one byte after the sid's 21, so that the pointers start at 24 (one
     * 16-byte malloc step less per session: 168 bytes, not 176) */
    uint8_t transport : 1;     /* EIO_T_* */
    uint8_t closed : 1;
    uint8_t awaiting_pong : 1;
    uint8_t dirty : 1;         /* on the server's poll flush list */
    eio_server *srv;
    net_conn *ws;        /* WebSocket transport */
    ws_parser wsp;
    net_conn *poll;      /* pending long-poll GET */
    eio_pollq *pollq;
    eio_upgrade *upgrade;
    tq_node hb;          /* in ping_q or pong_q */
    struct eio_session *next_dirty; /* poll flush list, or the free list */
    void *data;
    UT_hash_handle hh;
};

/* Handshake bucket of one client address. */
typedef struct eio_addr_bucket {
    char addr[64];
    ratelimit_t rl;
    uint64_t last_ms;
    UT_hash_handle hh;
} eio_addr_bucket;

struct eio_server {
    uv_loop_t *loop;
    net_server *net;
    eio_config cfg;
    const eio_handlers *h;
    void *ud;
    eio_session *sessions; /* by sid */
    size_t count;
    tq_queue ping_q, pong_q, upgrade_q;
    eio_session *dirty;    /* sessions with a long-poll to answer */
    eio_session *dead;     /* closed, freed at the next flush */
    turn_hook flush;       /* TURN_EIO: eio__flush, armed while either
                              list above is not empty */
    eio_msg msg_ping, msg_noop, msg_pong_probe, msg_close;
    int timers_open;       /* while closing */
    eio_stats stats;
    ratelimit_config_t handshake_rl;
    eio_addr_bucket *buckets;  /* by address; idle full buckets are pruned */
    size_t buckets_pruned_at;  /* bucket count after the last prune */
};

/* eio_server.c */
void eio__session_closed_by_transport(eio_session *s, const char *reason);
void eio__on_packet(eio_session *s, const eio_packet *p);
void eio__cors_headers(eio_server *srv, const net_request *req, char *out, size_t size);
void eio__respond_error(eio_server *srv, net_conn *c, net_request *req, int code);
void eio__mark_poll_dirty(eio_session *s);
eio_session *eio__session_new(eio_server *srv, int transport);
size_t eio__open_packet(eio_session *s, char *out, size_t size);

/* eio_ws.c */
/* Answers a WebSocket handshake: s NULL opens a new session, s set starts
 * its upgrade; reject_after_open closes the new WebSocket right away. */
void eio__ws_accept(eio_server *srv, net_conn *c, net_request *req, eio_session *s,
                    int reject_after_open);
int eio__ws_send(net_conn *c, const eio_msg *m);
void eio__ws_close(net_conn *c, uint16_t code);
void eio__upgrade_expire(tq_queue *q, tq_node *n);
void eio__upgrade_abort(eio_session *s);

#endif
