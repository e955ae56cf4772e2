/* bus_redis_internal.h - what the files of the Redis bus share. The keys,
 * channels, commands and failure behaviour are described at the top of
 * bus_redis.c; this header holds the structures and the calls between the
 * files:
 *
 *   bus_redis.c           creation, close, the interface table, metrics and
 *                         the helpers every file uses (failure logs)
 *   bus_redis_topic.c     topics: watch, unwatch, publish, and the watch
 *                         callbacks waiting for a subscription
 *   bus_redis_presence.c  this node's presence: the reports and their
 *                         flush (the presence script)
 *   bus_redis_mirror.c    the mirror of the other nodes' presence: their
 *                         entries, snapshots, changes and the aggregates
 *   bus_redis_registry.c  the node registry: heartbeat, who is alive, dead
 *                         node cleanup
 *   bus_redis_claim.c     username claims (the claim script) and the
 *                         lookup of a name's claims (bus_user_lookup)
 *   bus_redis_session.c   connection state recovery: the shared key, the
 *                         session records and this node's index of them,
 *                         the sweep of a dead node's sessions
 *
 * Nothing outside src/bus/bus_redis*.c includes this. Shared functions are
 * named bus_redis__*; the static ones of each file keep bus__*. */
#ifndef PARLEY_BUS_REDIS_INTERNAL_H
#define PARLEY_BUS_REDIS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "bus/bus.h"
#include "redis/rc.h"
#include "util/mem.h"

#include "util/uthash_oom.h" /* uthash on mem.h: aborts on OOM */
#include "util/turn.h"

#define BUS__ID_LEN 16
#define BUS__NODES_KEY "parley:nodes"

typedef struct bus__redis bus__redis;
typedef struct bus__watch bus__watch;
typedef struct bus__claimop bus__claimop;
typedef struct bus__lookup bus__lookup; /* bus_redis_claim.c */
typedef struct bus__dataop bus__dataop; /* bus_redis_session.c */
typedef struct bus__sweep bus__sweep;   /* bus_redis_session.c */

/* A bus_watch callback due when its watch becomes active. */
typedef struct bus__waiter {
    struct bus__waiter *prev, *next;   /* b->waiters, by deadline */
    struct bus__waiter *wprev, *wnext; /* its watch's */
    bus__watch *w;
    uint64_t deadline; /* loop time */
    bus_done_cb cb;
    void *ud;
} bus__waiter;

struct bus__watch {
    UT_hash_handle hh; /* b->watches, by topic */
    bus__redis *b;
    char *topic, *channel;
    int active; /* subscribed: messages arrive */
    int busy;   /* inside on_message: freed after it if dead */
    int dead;   /* unwatched */
    int lost;   /* was active, then lost: on_topic(RESUMED) is due */
    bus__waiter *waiters;
};

/* A user or room of a remote node. */
typedef struct bus__entry {
    UT_hash_handle hh;
    char *key;
    int state;      /* users: bus_user_state_t */
    char *name;     /* users */
    uint64_t count; /* rooms */
    unsigned gen;   /* the node's gen when a full state last named it */
} bus__entry;

/* A remote node: live (subscribed to its presence channel), or dead but in
 * this node's reserve window (no subscription, its users RESERVED, no
 * rooms: see the top of bus_redis.c). */
typedef struct bus__node {
    UT_hash_handle hh; /* b->nodes, by id */
    bus__redis *b;
    char id[BUS__ID_LEN + 1];
    char *hkey, *channel;
    bus__entry *users, *rooms;
    uint64_t last_seq; /* of the last change applied */
    uint64_t seen_seq; /* highest seq seen while reading the snapshot */
    unsigned gen;
    unsigned nsyncs;
    int subscribed; /* its presence channel is active */
    int synced;     /* a snapshot was applied and no gap seen since */
    int sync_inflight, sync_again;
    int seen;       /* named by the registry read being applied */
    int refs;       /* commands out with this node as ud */
    int dropped;    /* out of the mirror: freed when refs is 0 */
    int dead;       /* found dead: reserved until dead_until */
    int swept;      /* dead: this node's sweep of its sessions is done */
    uint64_t dead_until; /* loop time the reserve window ends */
    double expiry;  /* wall ms: its score in the last registry read that
                       found it alive, 0: none */
} bus__node;

/* The mirror's aggregates over the remote nodes. */
typedef struct {
    UT_hash_handle hh;
    char *key;
    char *name;
    uint32_t online, reserved; /* nodes where the user is so */
} bus__guser;

typedef struct {
    UT_hash_handle hh;
    char *key;
    uint64_t sum;
} bus__groom;

/* A presence field of this node and its value. */
typedef struct {
    UT_hash_handle hh;
    char *field, *value;
} bus__kv;

/* A username this node claimed or is claiming. */
typedef struct {
    UT_hash_handle hh; /* b->claims, by key */
    char *key, *rkey, *topic;
    int held;          /* a claim succeeded and was not released */
    bus__claimop *ops; /* in progress (rnext) */
} bus__claim;

struct bus__claimop {
    bus__claimop *prev, *next; /* b->ops: every op whose callback is due */
    bus__claimop *rnext;       /* rec->ops */
    bus__claimop *qnext;       /* b->qhead: waiting for a registry read */
    bus__redis *b;
    bus__claim *rec; /* NULL once released (or done) */
    int exclusive;
    char takeover[BUS__ID_LEN + 1]; /* a node whose claim yields to this one, or "" */
    int inflight; /* the EVAL is out: its reply frees a done op */
    int done;     /* the callback ran */
    bus_done_cb cb;
    void *ud;
};

struct bus__redis {
    struct bus base; /* first: a bus_t * is a bus__redis * */
    uv_loop_t *loop;
    rc_cluster *rc;
    uint32_t timeout_ms;
    uint32_t reserve_ms; /* a dead node's users stay reserved this long */
    uint32_t heartbeat_ms, dead_ms; /* bus_redis_timing, defaults applied */
    char id[BUS__ID_LEN + 1];
    char *hkey, *pchan; /* parley:{n:<id>} and its channel */
    bus_handlers h;
    void *hud;
    int closed, rc_freed, open_handles, closing_cmds;
    /* watches */
    bus__watch *watches;
    bus__waiter *waiters;
    uv_timer_t wait_timer;
    /* registry */
    uv_timer_t hb_timer;
    int hb_inflight;
    uint64_t hb_ok_at;    /* loop time of the last acknowledged ZADD, 0: none */
    uint64_t registry_at; /* loop time of the last registry read, 0: none */
    bus__node *nodes;     /* live and dead-but-reserved ones */
    unsigned ndead;       /* of them, dead */
    uv_timer_t reserve_timer; /* the next end of a dead node's window */
    /* this node's presence */
    bus__kv *own, *pending;
    int reset_needed, flush_inflight;
    turn_t *turn;
    turn_hook flush;       /* TURN_BUS: bus__on_flush */
    /* the mirror */
    bus__guser *gusers;
    bus__groom *grooms;
    /* claims */
    bus__claim *claims;
    bus__claimop *ops;
    bus__claimop *qhead, *qtail;
    size_t qlen;
    bus__lookup *lookups; /* user lookups whose callback is due */
    /* sessions */
    char *skey;            /* parley:{n:<id>}:sess, this node's index */
    bus__dataop *dataops;  /* takes and shared-key reads whose callback is due */
    bus__sweep *sweeps;    /* dead nodes' indexes being swept */
    int session_out;       /* put/keep/del commands out: close waits for them */
    /* metrics */
    uint64_t published, received, publish_errors, resyncs;
    uint64_t topics_lost; /* watched topics whose subscription was lost */
    uint64_t sessions_put, sessions_taken[3]; /* found, missing, error */
    uint64_t session_errors, sessions_expired;
    /* failure logs */
    uint64_t warn_at;
    unsigned warn_suppressed;
};

static inline bus__redis *bus_redis__self(const bus_t *b)
{
    return (bus__redis *)b;
}

static inline int bus_redis__failed(const redisReply *r, const char *err)
{
    return err != NULL || r == NULL || r->type == REDIS_REPLY_ERROR;
}

/* ---- bus_redis.c: helpers ------------------------------------------------- */

/* a + b + c in one new string (the caller frees it). */
char *bus_redis__cat(const char *a, const char *b, const char *c);

/* Logs a failed command (what: the operation), at most one warning per
 * BUS__LOG_EVERY_MS; the others are counted in the next one. */
void bus_redis__warn(bus__redis *b, const char *what, const redisReply *r, const char *err);

/* Sends a command whose reply only matters when it failed (logged). */
void bus_redis__send_logged(bus__redis *b, const char *key, int argc, const char **argv);

/* After close: frees the client once the last commands close waits for
 * (its own, the sessions' put/keep/del) are answered. */
void bus_redis__close_check(bus__redis *b);

/* ---- bus_redis_topic.c ---------------------------------------------------- */

/* Watches topic (see bus_watch): cb (may be NULL) runs inline when the
 * topic is active already or the subscription is refused (BUS_EIO), else
 * once it is active, or with BUS_EIO after timeout_ms. */
void bus_redis__watch_add(bus__redis *b, const char *topic, bus_done_cb cb, void *ud);
/* Stops watching topic; its waiting callbacks run with BUS_EIO. */
void bus_redis__unwatch_topic(bus__redis *b, const char *topic);
/* Close: runs every waiting watch callback with BUS_ECLOSED. */
void bus_redis__watches_close(bus__redis *b);
/* Frees every watch (after rc_free: no callback can reach them). */
void bus_redis__watches_free(bus__redis *b);

void bus_redis__op_publish(bus_t *bb, const char *topic, const char *data, size_t len);
void bus_redis__op_watch(bus_t *bb, const char *topic, bus_done_cb cb, void *ud);
void bus_redis__op_unwatch(bus_t *bb, const char *topic);

/* ---- bus_redis_presence.c ------------------------------------------------- */

/* The presence script (see its comment); the leave at close uses it too. */
extern const char bus_redis__lua_presence[];

/* Flushes before the loop sleeps; after the flush in flight if any. */
void bus_redis__flush_arm(bus__redis *b);
/* The turn hook (TURN_BUS): sends what bus_redis__flush_arm asked for. */
void bus_redis__on_flush(void *ud);
/* Frees this node's reported and pending entries. */
void bus_redis__own_free(bus__redis *b);

void bus_redis__op_user_set(bus_t *bb, const char *user_key, const char *name,
                            bus_user_state_t st);
void bus_redis__op_room_set(bus_t *bb, const char *room_key, uint32_t count);

/* ---- bus_redis_mirror.c --------------------------------------------------- */

/* Tells the handlers the mirror changed (what: BUS_PRESENCE_*; 0 and after
 * close: nothing). */
void bus_redis__notify(bus__redis *b, unsigned what);
/* Adds node id to the mirror and subscribes to its presence channel (the
 * snapshot is read once subscribed). */
bus__node *bus_redis__node_add(bus__redis *b, const char *id);
/* Adds node id, found dead by the registry read and never seen alive by
 * this node, as dead: its snapshot (if its hash is still there) is read
 * once and its users are RESERVED until b->reserve_ms from now. */
bus__node *bus_redis__node_add_dead(bus__redis *b, const char *id);
/* Live node n was found dead: unsubscribes, its users become RESERVED and
 * its rooms go until b->reserve_ms from now (the snapshot is read if n was
 * not synced). Returns what changed. */
unsigned bus_redis__node_kill(bus__redis *b, bus__node *n);
/* Dead node n is in the registry alive again: subscribes again; its
 * reserved users stay until its snapshot replaces them. */
void bus_redis__node_revive(bus__redis *b, bus__node *n);
/* The reserve_timer callback: drops the dead nodes whose reserve window
 * is over (and tells the handlers), and arms itself for the next end. */
void bus_redis__on_reserve_timer(uv_timer_t *t);
/* Reads node n's snapshot again (now, or once its channel is active). */
void bus_redis__node_sync(bus__redis *b, bus__node *n);
/* Takes n out of the mirror; returns what changed. n is freed at once or
 * by its last reply: the caller must not use it afterwards. */
unsigned bus_redis__node_drop(bus__redis *b, bus__node *n, const char *why);
/* Frees the nodes and the aggregates (after rc_free). */
void bus_redis__mirror_free(bus__redis *b);

bus_user_state_t bus_redis__op_user_state(const bus_t *bb, const char *user_key,
                                          const char **name);
void bus_redis__op_users_each(const bus_t *bb,
                              void (*fn)(void *ud, const char *key, const char *name),
                              void *ud);
uint64_t bus_redis__op_room_count(const bus_t *bb, const char *room_key);

/* ---- bus_redis_registry.c ------------------------------------------------- */

/* The hb_timer callback: ZADD of our expiry, then the registry read. */
void bus_redis__on_heartbeat(uv_timer_t *t);
/* The wall clock in ms (registry scores, claim times). */
uint64_t bus_redis__wall_ms(void);
/* The remote nodes of the mirror that are alive (not dead-but-reserved). */
static inline unsigned bus_redis__live_count(const bus__redis *b)
{
    return HASH_COUNT(b->nodes) - b->ndead;
}

/* ---- bus_redis_claim.c ---------------------------------------------------- */

/* A registry read ended (rc 0: b->nodes is fresh): starts or fails the
 * exclusive claims that waited for it. */
void bus_redis__claims_registry(bus__redis *b, int rc);
/* Close: forgets the queue and runs every due claim and lookup callback
 * with BUS_ECLOSED. */
void bus_redis__claims_close(bus__redis *b);
/* Frees the claim records (after rc_free). */
void bus_redis__claims_free(bus__redis *b);

void bus_redis__op_claim(bus_t *bb, const char *user_key, int exclusive, const char *takeover,
                         bus_done_cb cb, void *ud);
void bus_redis__op_release(bus_t *bb, const char *user_key);
void bus_redis__op_user_lookup(bus_t *bb, const char *user_key, bus_done_cb cb, void *ud);

/* ---- bus_redis_session.c -------------------------------------------------- */

/* The registry read node id expired: gives its session records their
 * expiry (the score of each in its index), a chunk at a time, then marks
 * id swept in the mirror (if it is there, dead); final (its reserve window
 * is over too): then also removes id from the registry unless it came
 * back, and its presence hash. On a failure it stops, and the next
 * registry read that finds id starts over. Nothing while a sweep of id
 * runs on this node. */
void bus_redis__sessions_sweep(bus__redis *b, const char *id, int final);
/* Close: runs every take and shared-key callback still due with
 * BUS_ECLOSED. */
void bus_redis__sessions_close(bus__redis *b);
/* Frees the sweeps left (after rc_free: no callback can reach them). */
void bus_redis__sweeps_free(bus__redis *b);

void bus_redis__op_shared_key(bus_t *bb, bus_data_cb cb, void *ud);
void bus_redis__op_session_put(bus_t *bb, const char *pid, const char *data, size_t len,
                               uint32_t ttl_ms);
void bus_redis__op_session_keep(bus_t *bb, const char *pid, uint32_t ttl_ms);
void bus_redis__op_session_del(bus_t *bb, const char *pid);
void bus_redis__op_session_take(bus_t *bb, const char *pid, bus_data_cb cb, void *ud);

#endif
