/* rc_internal.h - what the files of the Redis Cluster client share.
 *
 *   rc_slot.c      CRC16 slots, -MOVED/-ASK parsing, CLUSTER SLOTS parsing
 *                  (pure functions, no I/O)
 *   rc_subproto.c  the subscriber protocol engine: a capped hiredis reader
 *                  and the matching of replies to the commands sent (no I/O)
 *   rc_cluster.c   the client: nodes, slot map, topology refresh, rc_free
 *   rc_conn.c      command connections (hiredis async; the libuv adapter
 *                  with our event hooks), connect timeout, hung-link check,
 *                  reconnect with backoff
 *   rc_command.c   requests: routing, wait queue, timeouts, redirections
 *   rc_sub.c       subscriptions and subscriber connections (raw libuv TCP)
 *
 * Lifetimes. Nothing that a callback can reach is freed synchronously:
 * nodes and subscriber connections are freed in libuv close callbacks,
 * subscriptions in the `kick` timer (or in the last close callback after
 * rc_free), requests right after their callback returned or, when hiredis
 * still holds them, when hiredis gives them back. So after any callback
 * into user code a pointer to a node, subscription or the cluster is still
 * valid memory, and code re-checks c->closing / n->retired instead.
 *
 * hiredis rules kept here: a redisAsyncContext is freed only with its data
 * pointer cleared first (our callbacks then ignore it), never from its own
 * onConnect/onDisconnect callbacks; inside one of its reply callbacks
 * redisAsyncFree is deferred by hiredis until the callback returns. User
 * callbacks run only from hiredis reply callbacks, subscriber-link read
 * callbacks and timers; failures found in other places are handed to a
 * timer (rc__req_fail_later, the kick). */
#ifndef PARLEY_REDIS_RC_INTERNAL_H
#define PARLEY_REDIS_RC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "redis/rc.h"
#include "util/uthash_oom.h" /* uthash on mem.h: aborts on OOM */
#include "util/metrics.h"
#include "util/buf.h"
#include "util/tq.h"

#define RC__HOST_MAX 256        /* host names and addresses, NUL included */
#define RC__MAX_REDIRECTS 5     /* -MOVED/-ASK hops for one command */
#define RC__REFRESH_MIN_MS 50   /* at most one CLUSTER SLOTS per this */
#define RC__BOOT_MAX 64         /* addresses remembered to find the cluster */
#define RC__SUB_MAX_INPUT (8u << 20) /* unparsed bytes on a subscriber link */
#define RC__SUB_MAX_ELEMENTS 64 /* array size on a subscriber link */

/* ---- rc_slot.c: slots, redirections, CLUSTER SLOTS --------------------- */

typedef struct {
    int start, end; /* inclusive slot range */
    char *host;     /* the master's address */
    int port;
} rc__range;

/* A parsed CLUSTER SLOTS reply. */
typedef struct {
    rc__range *ranges;
    size_t n;
    char **addrs;   /* every node named in it, masters and replicas, as
                       "host:port" (for finding the cluster again) */
    size_t naddrs;
} rc__slotmap;

/* Parses a CLUSTER SLOTS reply. A NULL or empty endpoint means the node
 * that answered: asked_host. Ranges whose master endpoint is "?" (unknown)
 * are left out. Returns 0 and fills *out (free with rc__slotmap_free) or
 * ERR_MALFORMED when the reply is malformed (*out is then empty). */
int rc__slots_parse(const redisReply *r, const char *asked_host, rc__slotmap *out);
void rc__slotmap_free(rc__slotmap *m);

typedef enum {
    RC__REPLY_DONE,  /* give it to the caller */
    RC__REPLY_MOVED, /* the slot lives elsewhere now: update the map, resend */
    RC__REPLY_ASK,   /* resend once to the named node, prefixed by ASKING */
    RC__REPLY_RETRY, /* -TRYAGAIN, -CLUSTERDOWN, -LOADING: resend later */
} rc__verdict;

typedef struct {
    int slot;
    char host[RC__HOST_MAX]; /* "" when the server left it out: same host */
    int port;
} rc__redirect;

/* What to do with a reply (NULL: DONE). For MOVED and ASK, *rd is filled;
 * a malformed redirection is DONE (the caller sees the error). */
rc__verdict rc__classify(const redisReply *r, rc__redirect *rd);
/* Parses "MOVED <slot> <host>:<port>" or "ASK ..." (s[0..len)). Returns
 * RC__REPLY_MOVED or RC__REPLY_ASK and fills *rd, or RC__REPLY_DONE. */
rc__verdict rc__parse_redirect(const char *s, size_t len, rc__redirect *rd);
/* Splits "host:port" / "[v6]:port" (s[0..len)). Returns 0 or ERR_MALFORMED. */
int rc__split_addr(const char *s, size_t len, char host[RC__HOST_MAX], int *port);

/* ---- rc_subproto.c: the subscriber protocol engine --------------------- */

/* A redisReader whose reply objects are plain redisReply trees (free them
 * with freeReplyObject) built by this module: arrays larger than
 * max_elements are refused (the reader reports an error) instead of being
 * allocated. Returns NULL when hiredis is out of memory. */
redisReader *rc__reader_new(int max_elements);

typedef enum { RC__OP_SSUBSCRIBE, RC__OP_SUNSUBSCRIBE } rc__op_kind;

/* A command sent on a subscriber link and not answered yet. */
typedef struct rc__op {
    struct rc__op *next;
    rc__op_kind kind;
    size_t len;
    char channel[];
} rc__op;

typedef struct {
    redisReader *reader;
    rc__op *head, *tail; /* oldest first */
    size_t nops;
} rc__subproto;

typedef enum {
    RC__EV_SUBSCRIBED,   /* our SSUBSCRIBE of `channel` is confirmed */
    RC__EV_UNSUBSCRIBED, /* our SUNSUBSCRIBE of `channel` is answered
                            (data: the error text if it was refused) */
    RC__EV_KICKED,       /* the server dropped `channel` on its own (its
                            slot moved away) */
    RC__EV_MESSAGE,      /* data[0..len) published to `channel` */
    RC__EV_REFUSED,      /* our SSUBSCRIBE of `channel` got an error reply:
                            data[0..len) is its text ("MOVED 12 h:p") */
} rc__ev_kind;

typedef struct {
    rc__ev_kind kind;
    const char *channel;
    size_t channel_len;
    const char *data;
    size_t len;
} rc__ev;

/* An event; return nonzero to stop feeding (the link is going away). The
 * strings live until the callback returns. */
typedef int (*rc__ev_cb)(void *ud, const rc__ev *ev);

/* Returns 0, or -1 when hiredis is out of memory. */
int rc__subproto_init(rc__subproto *p);
void rc__subproto_free(rc__subproto *p);
/* Appends the command (SSUBSCRIBE or SUNSUBSCRIBE of one channel) to out
 * and remembers it, to match its answer. */
void rc__subproto_send(rc__subproto *p, rc__op_kind kind, const char *channel, size_t len,
                       buf_t *out);
/* Parses data and calls cb for each event. Returns 0; 1 when cb asked to
 * stop; ERR_MALFORMED on a protocol error (bad RESP, a reply that fits no command,
 * more than RC__SUB_MAX_INPUT bytes of an unfinished reply): the link must
 * be closed, and p must not be fed again. */
int rc__subproto_feed(rc__subproto *p, const char *data, size_t len, rc__ev_cb cb, void *ud);

/* ---- the client -------------------------------------------------------- */

typedef enum {
    RC__DOWN = 0,   /* no connection, none wanted */
    RC__CONNECTING, /* connect in progress (timer: connect timeout) */
    RC__UP,
    RC__BACKOFF,    /* failed; timer: next attempt */
} rc__link;

typedef struct rc__sub rc__sub;
typedef struct rc__sconn rc__sconn;

typedef struct rc__node {
    rc_cluster *c;
    struct rc__node *next; /* c->nodes; not listed once retired */
    char *host;
    int port;
    char *name;            /* "host:port", for logs */
    unsigned nslots;       /* slots of the map that point here */
    int retired;           /* closing: freed when both timers are closed */
    int open_handles;
    /* command link (rc_conn.c) */
    redisAsyncContext *ac;
    rc__link cmd;
    unsigned cmd_fails;
    uint64_t last_reply;   /* loop time of the last reply (or of connect) */
    uv_timer_t cmd_timer;
    /* subscriber link (rc_sub.c) */
    rc__sconn *sc;
    rc__link sub;
    unsigned sub_fails;
    uv_timer_t sub_timer;
    rc__sub *subs;         /* subscriptions placed here (node_next list) */
} rc__node;

/* A command on its way; see rc_command.c for the life cycle. */
typedef struct rc__req {
    rc_cluster *c;
    tq_node tmo;              /* in c->q_timeout while the callback is due */
    tq_node later;            /* in c->q_later: retry or deferred failure */
    struct rc__req *wprev, *wnext;
    int waiting;              /* in c's wait list */
    rc_reply_cb cb;           /* NULL once the callback ran */
    uint64_t t0;              /* uv_hrtime at rc_command */
    void *ud;
    char *cmd;                /* RESP-encoded command */
    size_t cmdlen;
    int slot;                 /* -1: any master */
    unsigned redirects;
    unsigned retries;         /* -TRYAGAIN & co. so far: backoff */
    redisAsyncContext *ac;    /* where it was sent (valid while in_hiredis) */
    char *ask;                /* one-shot target "host:port" of -ASK */
    const char *fail;         /* in q_later: fail with this instead of retry */
    unsigned in_hiredis : 1;  /* hiredis holds it: free when it calls back */
    unsigned raw : 1;         /* internal: no redirect/retry handling */
} rc__req;

struct rc__sub {
    UT_hash_handle hh;        /* c->subs, by channel (live ones only) */
    rc__sub *all_prev, *all_next;   /* c->sub_all, dead ones included */
    rc__sub *node_prev, *node_next; /* node->subs */
    rc__node *node;           /* where it is placed, or NULL */
    char *channel;
    size_t len;
    int slot;
    rc_sub_cb cb;
    void *ud;
    enum { RC__SUB_UNSENT, RC__SUB_PENDING, RC__SUB_ACTIVE } state;
    int dead;                 /* unsubscribed: freed by the next kick */
    int notify_lost;          /* RC_SUB_LOST is due (delivered by the kick) */
    unsigned redirects;       /* -MOVED in a row, reset when confirmed */
};

struct rc_cluster {
    uv_loop_t *loop;
    rc_config cfg;
    int closing;
    int open_handles;
    /* topology */
    rc__node *slots[RC_SLOTS];
    rc__node *nodes;
    char **boot;              /* seeds, then every address seen */
    size_t nboot, nseeds;
    unsigned any_rr, refresh_rr;
    /* topology refresh */
    uv_timer_t refresh_timer;
    uint64_t refresh_due;     /* loop time of the next refresh, 0: none */
    uint64_t last_refresh;
    int refreshing;           /* a CLUSTER SLOTS is in flight */
    int refresh_blocked;      /* wanted, but no node was up to ask */
    unsigned refresh_fails;   /* failed refreshes in a row (log once) */
    char *refresh_from;       /* host of the node asked */
    unsigned map_version;
    /* commands */
    tq_queue q_timeout, q_later;
    rc__req *wait_head, *wait_tail;
    size_t nwait;
    /* subscriptions */
    rc__sub *subs;
    rc__sub *sub_all;
    uv_timer_t kick;
    /* metrics (rc_metrics) */
    metrics_hist latency;
    uint64_t n_ok, n_error_reply, n_failed, n_redirects, n_refreshes;
};

/* rc_cluster.c */
/* "host:port", or "[host]:port" for IPv6; caller frees (mem_free). */
char *rc__addr_name(const char *host, int port);
rc__node *rc__node_get(rc_cluster *c, const char *host, int port, int create);
/* Applies a parsed CLUSTER SLOTS: moves slots, places subscriptions again,
 * retires nodes that own no slot, sends waiting commands. source names the
 * node that answered (for the log). */
void rc__map_apply(rc_cluster *c, const rc__slotmap *m, const char *source);
/* A -MOVED: slot now lives at host:port. */
void rc__map_moved(rc_cluster *c, int slot, const char *host, int port);
void rc__refresh_soon(rc_cluster *c);
void rc__refresh_later(rc_cluster *c);
/* Schedules the kick: sweep dead subscriptions, deliver RC_SUB_LOST. */
void rc__kick(rc_cluster *c);
/* A node's command link came up (rc_conn.c calls it). */
void rc__node_up(rc__node *n);
/* Exponential backoff with jitter for the n-th failure in a row. */
uint64_t rc__backoff(const rc_cluster *c, unsigned fails);

/* rc_conn.c */
void rc__conn_init(rc__node *n);
void rc__conn_ensure(rc__node *n);
/* Queues req on n's command link (n->cmd must be RC__UP). Returns 0, or
 * ERR_IO when hiredis refuses it (no link, OOM). */
int rc__conn_send(rc__node *n, rc__req *req);
void rc__conn_close(rc__node *n);
/* A command on n's link timed out: unless a reply arrives within a few
 * milliseconds (after the loop has read its sockets: timers run before
 * I/O, and a loop stalled past the timeout would otherwise take every link
 * for hung), a link that received nothing for a whole timeout while
 * commands wait on it is dropped and reconnected. That frees what hiredis
 * holds, which would pile up behind a hung server. */
void rc__conn_suspect(rc__node *n);

/* rc_command.c */
/* A request for argv with its deadline armed; the caller sets cb and ud
 * (and slot, raw) before the loop runs again, then dispatches or sends it. */
rc__req *rc__req_new(rc_cluster *c, int argc, const char **argv, const size_t *argvlen);
/* Sends req to its master, or puts it in the wait list (failing it with
 * RC_ERR_QUEUE_FULL when that is full). Runs no user callback. */
void rc__req_dispatch(rc__req *req);
void rc__req_complete(rc__req *req, const redisReply *reply, const char *err);
void rc__req_fail_later(rc__req *req, const char *err);
/* Sends every waiting command whose master is up now. */
void rc__dispatch_waiting(rc_cluster *c);
void rc__q_timeout_expired(tq_queue *q, tq_node *t);
void rc__q_later_expired(tq_queue *q, tq_node *t);
void rc__hiredis_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* rc_sub.c */
void rc__sub_init(rc__node *n);
/* Places every live subscription (or those of one slot, slot >= 0) on its
 * slot's master and subscribes it where the link is up. */
void rc__subs_reconcile(rc_cluster *c, int slot);
void rc__sconn_close(rc__node *n);
/* Frees every subscription (after rc_free, when nothing runs any more). */
void rc__subs_free_all(rc_cluster *c);
/* Frees dead subscriptions and delivers due RC_SUB_LOST (the kick). */
void rc__subs_kick(rc_cluster *c);

#endif
