/* bus_redis.c - bus.h on the Redis Cluster that also holds the store,
 * through a client of its own (src/redis/rc.h): fan-out between parley
 * nodes, a mirror of the other nodes' presence, and username claims.
 *
 * Node. Each bus is a node with a random id of 16 hex digits (<id>).
 *
 * Keys and channels (<T> a topic, <u> a user key):
 *   parley:{<T>}:bus          shard channel of topic T. A payload on it is
 *                             "<id of the publisher>\n" + the data. Redis
 *                             hashes the text up to the first '}' of T:
 *                             still one channel per topic, never parsed
 *                             back (each watch keeps its topic).
 *   parley:nodes              the registry: a sorted set, member <id>,
 *                             score the node's expiry (wall-clock ms:
 *                             last heartbeat + BUS_NODE_DEAD_MS).
 *   parley:{n:<id>}           a node's presence: a hash, "u:<u>" ->
 *                             "<state digit><display name>" (1 reserved,
 *                             2 online), "r:<room>" -> its connection
 *                             count, and '#seq', the number of the last
 *                             change published.
 *   parley:{n:<id>}:presence  shard channel of the node's changes (the
 *                             same slot as its hash): "<seq>\n<reset 0|1>\n"
 *                             then one "field\x1fvalue\n" per entry ("" for
 *                             a removed one). Keys and names hold no control
 *                             characters, so the separators are safe.
 *   parley:{u:<u>}:claim      the claims of a username: a hash <id> ->
 *                             the Redis time (ms) of the claim.
 *
 * Commands per operation:
 *   publish    one SPUBLISH to the topic's master.
 *   watch      SSUBSCRIBE through rc, which subscribes again by itself after
 *              a failover or a resharding; nothing when already watched.
 *   user_set / room_set   nothing at once: the latest value of each entry
 *              waits in `pending`, and the flush (a prepare handle: once
 *              per loop turn, before the loop sleeps, one in flight at a
 *              time) sends one EVAL of bus__lua_presence that bumps '#seq',
 *              writes the hash and SPUBLISHes the change, atomically. A
 *              reset (the whole state of this node, from `own`) is sent
 *              instead after a failed flush and when the registry says this
 *              node was missing: nothing reported is ever lost for good.
 *   heartbeat  every BUS_HEARTBEAT_MS (and at start): ZADD of our expiry,
 *              then ZRANGE of the registry. A live node new to us is
 *              subscribed to (its presence channel) and, once subscribed,
 *              read with HGETALL; an expired one is dropped from the mirror,
 *              and ZREM + DEL remove it from Redis (every survivor may do it,
 *              it is idempotent); a node gone from the set is dropped too.
 *   mirror     per remote node: its entries, the seq of the last change
 *              applied, and whether a snapshot is being read. A change
 *              seq == last + 1 applies; older ones were in the snapshot; a
 *              gap (or a new subscription after a lost one) reads the
 *              snapshot again (HGETALL). A reset message replaces the node's
 *              entries. Aggregates over the nodes (per user: a name, the
 *              number of nodes where it is online and reserved; per room:
 *              the sum) are kept as entries change, so the readers cost one
 *              lookup (users_each: one walk of the users).
 *   claim      one EVAL of bus__lua_claim on the claim hash (exclusive: with
 *              the nodes the last registry read found alive; a field of a
 *              node not in that list is void unless younger than
 *              bus__grace_ms, which covers a node started after that read),
 *              then the watch of "u:<u>". An exclusive claim waits for a
 *              registry read younger than BUS__FRESH_MS (the first one at
 *              start). release: HDEL, and unwatch.
 *   close      one EVAL (a reset with no entries, then DEL of the hash), ZREM
 *              from the registry, HDEL of every claim. The rc client is
 *              freed once they are answered (each within timeout_ms), not at
 *              once: rc_free drops what hiredis has not written yet, and
 *              hiredis writes on the next loop turn, so an immediate rc_free
 *              would send none of them.
 *
 * Failure behaviour. Every command is bounded by rc's timeout. A failed
 * publish is logged and counted (delivery is at most once). A failed
 * flush turns into a reset, retried by the next heartbeat or change. A
 * failed heartbeat changes nothing (a node is judged by its expiry, so a
 * failover shorter than BUS_NODE_DEAD_MS drops nobody); after
 * BUS_NODE_DEAD_MS without an acknowledged heartbeat, this node assumes
 * others dropped it and sends a reset. A failed snapshot read is retried
 * by the next heartbeat. A watch not active within timeout_ms reports
 * BUS_EIO and keeps trying; the subscriptions follow failovers by
 * themselves (rc). Wall clocks of the nodes must agree to well within
 * BUS_NODE_DEAD_MS. A node that was cut off for longer than that comes
 * back with its presence (reset), but claims others took meanwhile stay
 * theirs. Failure logs are limited to one per BUS__LOG_EVERY_MS.
 *
 * Lifetimes. Callbacks from rc get the bus (which lives until its last
 * handle is closed, after rc_free), a remote node (counted in `refs`, freed
 * by the last reply once dropped) or a claim operation (freed by its reply
 * once its callback ran). A watch being handed a message is freed after
 * the handler returns. Memory aborts on OOM (util/mem.h); hiredis replies
 * are checked for their type. */
#include "bus/bus.h"

#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis/rc.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/metrics.h"

#define uthash_malloc(sz) mem_alloc(sz)
#define uthash_free(ptr, sz) mem_free(ptr)
#include <uthash.h>
#include <utlist.h>

#define BUS__ID_LEN 16
#define BUS__TIMEOUT_DEFAULT 2000
#define BUS__NODES_KEY "parley:nodes"
/* A registry read older than this is too old to judge exclusive claims. */
#define BUS__FRESH_MS (2 * BUS_HEARTBEAT_MS)
#define BUS__LOG_EVERY_MS 1000

/* KEYS: the node's hash, its channel. ARGV[1]: '0' changes, '1' reset (the
 * pairs are the whole state), '2' leave (no pairs; the hash is deleted).
 * ARGV[2..]: field, value ("" removes). Returns the seq. */
static const char bus__lua_presence[] =
    "local seq = redis.call('HINCRBY', KEYS[1], '#seq', 1) "
    "local mode = ARGV[1] "
    "if mode ~= '0' then redis.call('DEL', KEYS[1]) "
    "  if mode == '2' then redis.call('SPUBLISH', KEYS[2], seq .. '\\n1\\n') return seq end "
    "  redis.call('HSET', KEYS[1], '#seq', seq) end "
    "local us = string.char(31) "
    "local msg = {seq .. '\\n' .. mode .. '\\n'} "
    "for i = 2, #ARGV - 1, 2 do "
    "  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) "
    "  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end "
    "  msg[#msg + 1] = ARGV[i] .. us .. ARGV[i + 1] .. '\\n' end "
    "redis.call('SPUBLISH', KEYS[2], table.concat(msg)) "
    "return seq";

/* KEYS: the claim hash. ARGV: our id, exclusive '0'/'1', grace ms, the ids
 * of the live nodes. 1: claimed (our field holds Redis' time), 0: a live
 * node, or one too recent to judge, holds it. */
static const char bus__lua_claim[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "if ARGV[2] == '1' then "
    "  local live = {} "
    "  for i = 4, #ARGV do live[ARGV[i]] = true end "
    "  local grace = tonumber(ARGV[3]) "
    "  local h = redis.call('HGETALL', KEYS[1]) "
    "  for i = 1, #h, 2 do "
    "    if h[i] ~= ARGV[1] then "
    "      if live[h[i]] or now - (tonumber(h[i + 1]) or 0) < grace then return 0 end "
    "      redis.call('HDEL', KEYS[1], h[i]) "
    "    end "
    "  end "
    "end "
    "redis.call('HSET', KEYS[1], ARGV[1], string.format('%.0f', now)) "
    "return 1";

typedef struct bus__redis bus__redis;
typedef struct bus__watch bus__watch;
typedef struct bus__claimop bus__claimop;

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
    bus__node *nodes;
    /* this node's presence */
    bus__kv *own, *pending;
    int reset_needed, flush_inflight;
    uv_prepare_t flush;
    /* the mirror */
    bus__guser *gusers;
    bus__groom *grooms;
    /* claims */
    bus__claim *claims;
    bus__claimop *ops;
    bus__claimop *qhead, *qtail;
    size_t qlen;
    /* metrics */
    uint64_t published, received, publish_errors, resyncs;
    /* failure logs */
    uint64_t warn_at;
    unsigned warn_suppressed;
};

static void bus__watch_add(bus__redis *b, const char *topic, bus_done_cb cb, void *ud);
static void bus__unwatch_topic(bus__redis *b, const char *topic);
static void bus__flush_arm(bus__redis *b);

/* ---- helpers ------------------------------------------------------------- */

static bus__redis *bus__self(const bus_t *b)
{
    return (bus__redis *)b;
}

static uint64_t bus__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* a + b + c in one new string (the caller frees it). */
static char *bus__cat(const char *a, const char *b, const char *c)
{
    size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
    char *s = mem_alloc(na + nb + nc + 1);
    memcpy(s, a, na);
    memcpy(s + na, b, nb);
    memcpy(s + na + nb, c, nc + 1);
    return s;
}

static int bus__failed(const redisReply *r, const char *err)
{
    return err != NULL || r == NULL || r->type == REDIS_REPLY_ERROR;
}

/* A failure worth a warning, at most one per BUS__LOG_EVERY_MS (a failover
 * fails every command of a master at once). */
static void bus__warn(bus__redis *b, const char *what, const redisReply *r, const char *err)
{
    uint64_t now = uv_now(b->loop);
    if (b->warn_at && now - b->warn_at < BUS__LOG_EVERY_MS) {
        b->warn_suppressed++;
        return;
    }
    char text[128];
    if (err)
        snprintf(text, sizeof(text), "%s", err);
    else if (r && r->type == REDIS_REPLY_ERROR)
        snprintf(text, sizeof(text), "%.*s", (int)(r->len < 100 ? r->len : 100), r->str);
    else
        snprintf(text, sizeof(text), "unexpected reply type %d", r ? r->type : -1);
    for (char *p = text; *p; p++) {
        if (*p == '"' || (unsigned char)*p < 0x20)
            *p = '\'';
    }
    log_warn("bus redis failure", "node=%s op=%s err=\"%s\" suppressed=%u", b->id, what, text,
             b->warn_suppressed);
    b->warn_at = now;
    b->warn_suppressed = 0;
}

/* Sends a command whose reply only matters when it failed (logged). */
static void bus__on_reply_logged(void *ud, const redisReply *r, const char *err)
{
    bus__redis *b = ud;
    if (!b->closed && bus__failed(r, err))
        bus__warn(b, "cleanup", r, err);
}

static void bus__send_logged(bus__redis *b, const char *key, int argc, const char **argv)
{
    if (rc_command(b->rc, key, argc, argv, NULL, bus__on_reply_logged, b) != 0)
        log_warn("bus redis command refused", "node=%s cmd=%s", b->id, argv[0]);
}

static void bus__notify(bus__redis *b, unsigned what)
{
    if (what && !b->closed && b->h.on_presence)
        b->h.on_presence(b->hud, what);
}

/* ---- watch callbacks waiting for a subscription ---------------------------- */

static void bus__on_wait_timer(uv_timer_t *t);

static void bus__wait_arm(bus__redis *b)
{
    if (b->waiters == NULL || b->closed) {
        uv_timer_stop(&b->wait_timer);
        return;
    }
    uint64_t now = uv_now(b->loop), d = b->waiters->deadline;
    uv_timer_start(&b->wait_timer, bus__on_wait_timer, d > now ? d - now : 0, 0);
}

static void bus__waiter_add(bus__redis *b, bus__watch *w, bus_done_cb cb, void *ud)
{
    bus__waiter *x = mem_calloc(1, sizeof(*x));
    x->w = w;
    x->cb = cb;
    x->ud = ud;
    x->deadline = uv_now(b->loop) + b->timeout_ms; /* same timeout: the list stays sorted */
    int first = b->waiters == NULL;
    DL_APPEND2(b->waiters, x, prev, next);
    DL_APPEND2(w->waiters, x, wprev, wnext);
    if (first)
        bus__wait_arm(b);
}

/* Takes x out of both lists; the caller runs and frees it. */
static void bus__waiter_unlink(bus__redis *b, bus__waiter *x)
{
    DL_DELETE2(b->waiters, x, prev, next);
    if (x->w)
        DL_DELETE2(x->w->waiters, x, wprev, wnext);
    x->w = NULL;
}

static void bus__waiter_run(bus__waiter *x, int rc)
{
    bus_done_cb cb = x->cb;
    void *ud = x->ud;
    mem_free(x);
    cb(ud, rc);
}

static void bus__on_wait_timer(uv_timer_t *t)
{
    bus__redis *b = t->data;
    uint64_t now = uv_now(b->loop);
    while (!b->closed && b->waiters && b->waiters->deadline <= now) {
        bus__waiter *x = b->waiters;
        if (x->w)
            log_debug("bus watch not active in time", "node=%s topic=\"%s\"", b->id,
                      x->w->topic);
        bus__waiter_unlink(b, x);
        bus__waiter_run(x, BUS_EIO);
    }
    bus__wait_arm(b);
}

/* Runs every callback waiting on w with rc (BUS_ECLOSED for those left
 * when a callback closes the bus). They are taken off w first: a callback
 * may watch, unwatch or free w. */
static void bus__watch_settle(bus__redis *b, bus__watch *w, int rc)
{
    bus__waiter *list = w->waiters;
    w->waiters = NULL;
    for (bus__waiter *x = list; x; x = x->wnext) {
        DL_DELETE2(b->waiters, x, prev, next);
        x->w = NULL;
    }
    while (list) {
        bus__waiter *x = list;
        list = x->wnext;
        bus__waiter_run(x, b->closed ? BUS_ECLOSED : rc);
    }
    bus__wait_arm(b);
}

/* ---- topics: watch, unwatch, publish --------------------------------------- */

static char *bus__topic_channel(const char *topic)
{
    return bus__cat("parley:{", topic, "}:bus");
}

static void bus__watch_free(bus__watch *w)
{
    mem_free(w->topic);
    mem_free(w->channel);
    mem_free(w);
}

static void bus__on_topic_sub(void *ud, rc_sub_event ev, const char *channel, const char *msg,
                              size_t len)
{
    bus__watch *w = ud;
    bus__redis *b = w->b;
    (void)channel;
    if (b->closed || w->dead)
        return;
    switch (ev) {
    case RC_SUB_SUBSCRIBED:
        w->active = 1;
        bus__watch_settle(b, w, 0); /* w may be gone afterwards */
        break;
    case RC_SUB_LOST:
        w->active = 0;
        log_debug("bus watch lost", "node=%s topic=\"%s\"", b->id, w->topic);
        break;
    case RC_SUB_MESSAGE:
        if (len < BUS__ID_LEN + 1 || msg[BUS__ID_LEN] != '\n') {
            log_debug("bus malformed publication", "node=%s topic=\"%s\"", b->id, w->topic);
            break;
        }
        if (memcmp(msg, b->id, BUS__ID_LEN) == 0)
            break; /* our own */
        b->received++;
        if (b->h.on_message) {
            w->busy++;
            b->h.on_message(b->hud, w->topic, msg + BUS__ID_LEN + 1, len - BUS__ID_LEN - 1);
            w->busy--;
            if (w->dead && w->busy == 0)
                bus__watch_free(w);
        }
        break;
    }
}

static void bus__watch_add(bus__redis *b, const char *topic, bus_done_cb cb, void *ud)
{
    bus__watch *w = NULL;
    HASH_FIND_STR(b->watches, topic, w);
    if (w == NULL) {
        w = mem_calloc(1, sizeof(*w));
        w->b = b;
        w->topic = mem_strdup(topic);
        w->channel = bus__topic_channel(topic);
        int rc = rc_ssubscribe(b->rc, w->channel, bus__on_topic_sub, w);
        if (rc != 0) {
            log_warn("bus subscribe refused", "node=%s topic=\"%s\" rc=%d", b->id, topic, rc);
            bus__watch_free(w);
            if (cb)
                cb(ud, BUS_EIO);
            return;
        }
        HASH_ADD_KEYPTR(hh, b->watches, w->topic, strlen(w->topic), w);
    }
    if (w->active) {
        if (cb)
            cb(ud, 0);
        return;
    }
    if (cb)
        bus__waiter_add(b, w, cb, ud);
}

static void bus__unwatch_topic(bus__redis *b, const char *topic)
{
    bus__watch *w = NULL;
    HASH_FIND_STR(b->watches, topic, w);
    if (w == NULL)
        return;
    HASH_DEL(b->watches, w);
    rc_sunsubscribe(b->rc, w->channel);
    w->dead = 1;
    bus__watch_settle(b, w, BUS_EIO);
    if (w->busy == 0)
        bus__watch_free(w);
}

static void bus__on_published(void *ud, const redisReply *r, const char *err)
{
    bus__redis *b = ud;
    if (b->closed || !bus__failed(r, err))
        return;
    b->publish_errors++;
    bus__warn(b, "publish", r, err);
}

/* ---- the mirror: aggregates -------------------------------------------------- */

static void bus__guser_update(bus__redis *b, const char *key, int old, int st, const char *name)
{
    bus__guser *g = NULL;
    HASH_FIND_STR(b->gusers, key, g);
    if (g == NULL) {
        if (st == BUS_USER_GONE)
            return;
        g = mem_calloc(1, sizeof(*g));
        g->key = mem_strdup(key);
        HASH_ADD_KEYPTR(hh, b->gusers, g->key, strlen(g->key), g);
    }
    if (old == BUS_USER_ONLINE)
        g->online--;
    else if (old == BUS_USER_RESERVED)
        g->reserved--;
    if (st == BUS_USER_ONLINE)
        g->online++;
    else if (st == BUS_USER_RESERVED)
        g->reserved++;
    /* the name of the latest report (an online one wins over a reserved) */
    if (name && (st == BUS_USER_ONLINE || g->online == 0) &&
        (g->name == NULL || strcmp(g->name, name) != 0)) {
        mem_free(g->name);
        g->name = mem_strdup(name);
    }
    if (g->online == 0 && g->reserved == 0) {
        HASH_DEL(b->gusers, g);
        mem_free(g->key);
        mem_free(g->name);
        mem_free(g);
    }
}

static void bus__groom_update(bus__redis *b, const char *key, uint64_t old, uint64_t count)
{
    bus__groom *g = NULL;
    HASH_FIND_STR(b->grooms, key, g);
    if (g == NULL) {
        if (count == 0)
            return;
        g = mem_calloc(1, sizeof(*g));
        g->key = mem_strdup(key);
        HASH_ADD_KEYPTR(hh, b->grooms, g->key, strlen(g->key), g);
    }
    g->sum = g->sum - old + count;
    if (g->sum == 0) {
        HASH_DEL(b->grooms, g);
        mem_free(g->key);
        mem_free(g);
    }
}

/* ---- the mirror: one node's entries ---------------------------------------- */

static void bus__entry_free(bus__entry *e)
{
    mem_free(e->key);
    mem_free(e->name);
    mem_free(e);
}

static void bus__user_remove(bus__redis *b, bus__node *n, bus__entry *e)
{
    bus__guser_update(b, e->key, e->state, BUS_USER_GONE, NULL);
    HASH_DEL(n->users, e);
    bus__entry_free(e);
}

static void bus__room_remove(bus__redis *b, bus__node *n, bus__entry *e)
{
    bus__groom_update(b, e->key, e->count, 0);
    HASH_DEL(n->rooms, e);
    bus__entry_free(e);
}

/* Sets node n's state of a user; returns BUS_PRESENCE_USERS if it changed. */
static unsigned bus__node_user(bus__redis *b, bus__node *n, const char *key, int st,
                               const char *name)
{
    bus__entry *e = NULL;
    HASH_FIND_STR(n->users, key, e);
    if (st == BUS_USER_GONE) {
        if (e == NULL)
            return 0;
        bus__user_remove(b, n, e);
        return BUS_PRESENCE_USERS;
    }
    if (e && e->state == st && strcmp(e->name, name) == 0) {
        e->gen = n->gen;
        return 0;
    }
    bus__guser_update(b, key, e ? e->state : BUS_USER_GONE, st, name);
    if (e == NULL) {
        e = mem_calloc(1, sizeof(*e));
        e->key = mem_strdup(key);
        HASH_ADD_KEYPTR(hh, n->users, e->key, strlen(e->key), e);
    }
    e->state = st;
    mem_free(e->name);
    e->name = mem_strdup(name);
    e->gen = n->gen;
    return BUS_PRESENCE_USERS;
}

static unsigned bus__node_room(bus__redis *b, bus__node *n, const char *key, uint64_t count)
{
    bus__entry *e = NULL;
    HASH_FIND_STR(n->rooms, key, e);
    if (e && count == 0) {
        bus__room_remove(b, n, e);
        return BUS_PRESENCE_ROOMS;
    }
    if (e && e->count == count) {
        e->gen = n->gen;
        return 0;
    }
    if (count == 0)
        return 0;
    bus__groom_update(b, key, e ? e->count : 0, count);
    if (e == NULL) {
        e = mem_calloc(1, sizeof(*e));
        e->key = mem_strdup(key);
        HASH_ADD_KEYPTR(hh, n->rooms, e->key, strlen(e->key), e);
    }
    e->count = count;
    e->gen = n->gen;
    return BUS_PRESENCE_ROOMS;
}

/* One presence field of node n ("u:<key>" / "r:<key>"; others ignored). */
static unsigned bus__apply_pair(bus__redis *b, bus__node *n, const char *field,
                                const char *value)
{
    if (field[0] == 'u' && field[1] == ':') {
        if (value[0] == '1' || value[0] == '2')
            return bus__node_user(b, n, field + 2, value[0] - '0', value + 1);
        return bus__node_user(b, n, field + 2, BUS_USER_GONE, NULL);
    }
    if (field[0] == 'r' && field[1] == ':')
        return bus__node_room(b, n, field + 2, strtoull(value, NULL, 10));
    return 0;
}

/* Removes the entries of n that the full state just applied (gen) did not
 * name. */
static unsigned bus__node_sweep(bus__redis *b, bus__node *n)
{
    unsigned what = 0;
    bus__entry *e, *tmp;
    HASH_ITER(hh, n->users, e, tmp) {
        if (e->gen != n->gen) {
            bus__user_remove(b, n, e);
            what |= BUS_PRESENCE_USERS;
        }
    }
    HASH_ITER(hh, n->rooms, e, tmp) {
        if (e->gen != n->gen) {
            bus__room_remove(b, n, e);
            what |= BUS_PRESENCE_ROOMS;
        }
    }
    return what;
}

static unsigned bus__node_clear(bus__redis *b, bus__node *n)
{
    n->gen++;
    return bus__node_sweep(b, n);
}

/* Applies the "field\x1fvalue\n" lines of p[0..end). */
static unsigned bus__apply_lines(bus__redis *b, bus__node *n, const char *p, const char *end)
{
    unsigned what = 0;
    buf_t line = {0};
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            nl = end;
        const char *us = memchr(p, '\x1f', (size_t)(nl - p));
        if (us) {
            line.len = 0;
            buf_append(&line, p, (size_t)(nl - p)); /* NUL-terminated */
            line.data[us - p] = '\0';
            what |= bus__apply_pair(b, n, line.data, line.data + (us - p) + 1);
        }
        p = nl + 1;
    }
    buf_free(&line);
    return what;
}

/* ---- the mirror: nodes, snapshots, changes -------------------------------- */

static void bus__node_free(bus__node *n)
{
    bus__entry *e, *tmp;
    HASH_ITER(hh, n->users, e, tmp) {
        HASH_DEL(n->users, e);
        bus__entry_free(e);
    }
    HASH_ITER(hh, n->rooms, e, tmp) {
        HASH_DEL(n->rooms, e);
        bus__entry_free(e);
    }
    mem_free(n->hkey);
    mem_free(n->channel);
    mem_free(n);
}

static void bus__on_snapshot(void *ud, const redisReply *r, const char *err);

/* Reads node n's snapshot again (now, or once its channel is active).
 * Messages meanwhile only raise seen_seq. */
static void bus__node_sync(bus__redis *b, bus__node *n)
{
    n->synced = 0;
    if (!n->subscribed)
        return; /* RC_SUB_SUBSCRIBED starts it */
    if (n->sync_inflight) {
        n->sync_again = 1;
        return;
    }
    const char *argv[] = {"HGETALL", n->hkey};
    if (rc_command(b->rc, n->hkey, 2, argv, NULL, bus__on_snapshot, n) != 0)
        return;
    n->sync_inflight = 1;
    n->refs++;
    if (n->nsyncs++ > 0)
        b->resyncs++;
}

static void bus__on_snapshot(void *ud, const redisReply *r, const char *err)
{
    bus__node *n = ud;
    bus__redis *b = n->b;
    n->refs--;
    n->sync_inflight = 0;
    if (n->dropped) {
        if (n->refs == 0)
            bus__node_free(n);
        return;
    }
    if (b->closed)
        return;
    if (bus__failed(r, err) || r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        bus__warn(b, "snapshot", r, err); /* the next heartbeat retries */
        return;
    }
    if (n->sync_again) { /* resubscribed meanwhile: this may predate it */
        n->sync_again = 0;
        bus__node_sync(b, n);
        return;
    }
    unsigned what = 0;
    uint64_t seq = 0;
    n->gen++;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (f->len == 4 && memcmp(f->str, "#seq", 4) == 0) {
            seq = strtoull(v->str, NULL, 10);
            continue;
        }
        /* hiredis ends every string with a NUL */
        if (strlen(f->str) == f->len && strlen(v->str) == v->len)
            what |= bus__apply_pair(b, n, f->str, v->str);
    }
    what |= bus__node_sweep(b, n);
    n->last_seq = seq;
    n->synced = 1;
    if (n->seen_seq > seq) /* changes published after the read were missed */
        bus__node_sync(b, n);
    n->seen_seq = 0;
    log_debug("bus node snapshot", "node=%s peer=%s seq=%" PRIu64, b->id, n->id, seq);
    bus__notify(b, what);
}

/* "<seq>\n<reset>\n": returns the offset of the first entry line, or -1. */
static long bus__parse_header(const char *msg, size_t len, uint64_t *seq, int *reset)
{
    size_t i = 0;
    uint64_t s = 0;
    while (i < len && i < 20 && msg[i] >= '0' && msg[i] <= '9')
        s = s * 10 + (uint64_t)(msg[i++] - '0');
    if (i == 0 || i >= len || msg[i] != '\n')
        return -1;
    i++;
    if (i + 2 > len || (msg[i] != '0' && msg[i] != '1') || msg[i + 1] != '\n')
        return -1;
    *seq = s;
    *reset = msg[i] == '1';
    return (long)(i + 2);
}

static void bus__on_presence_msg(bus__redis *b, bus__node *n, const char *msg, size_t len)
{
    uint64_t seq;
    int reset;
    long off = bus__parse_header(msg, len, &seq, &reset);
    if (off < 0) {
        log_debug("bus malformed presence message", "node=%s peer=%s", b->id, n->id);
        return;
    }
    if (!n->synced) {
        if (seq > n->seen_seq)
            n->seen_seq = seq;
        return;
    }
    unsigned what = 0;
    if (reset) {
        /* The whole state: it applies whatever its seq (after a restart of
         * the numbering, or in order behind an older snapshot). */
        n->gen++;
        what = bus__apply_lines(b, n, msg + off, msg + len);
        what |= bus__node_sweep(b, n);
    } else if (seq == n->last_seq + 1) {
        what = bus__apply_lines(b, n, msg + off, msg + len);
    } else if (seq <= n->last_seq) {
        return; /* in the snapshot already */
    } else {
        log_debug("bus presence gap", "node=%s peer=%s last=%" PRIu64 " seq=%" PRIu64, b->id,
                  n->id, n->last_seq, seq);
        n->seen_seq = seq;
        bus__node_sync(b, n);
        return;
    }
    n->last_seq = seq;
    bus__notify(b, what);
}

static void bus__on_node_sub(void *ud, rc_sub_event ev, const char *channel, const char *msg,
                             size_t len)
{
    bus__node *n = ud;
    bus__redis *b = n->b;
    (void)channel;
    if (b->closed || n->dropped)
        return;
    switch (ev) {
    case RC_SUB_SUBSCRIBED:
        n->subscribed = 1;
        bus__node_sync(b, n);
        break;
    case RC_SUB_LOST:
        n->subscribed = 0;
        n->synced = 0;
        break;
    case RC_SUB_MESSAGE:
        bus__on_presence_msg(b, n, msg, len);
        break;
    }
}

static bus__node *bus__node_add(bus__redis *b, const char *id)
{
    bus__node *n = mem_calloc(1, sizeof(*n));
    n->b = b;
    memcpy(n->id, id, BUS__ID_LEN + 1);
    n->hkey = bus__cat("parley:{n:", id, "}");
    n->channel = bus__cat(n->hkey, ":presence", "");
    HASH_ADD_STR(b->nodes, id, n);
    int rc = rc_ssubscribe(b->rc, n->channel, bus__on_node_sub, n);
    if (rc != 0)
        log_warn("bus subscribe refused", "node=%s peer=%s rc=%d", b->id, id, rc);
    log_info("bus node joined", "node=%s peer=%s nodes=%u", b->id, id, HASH_COUNT(b->nodes));
    return n;
}

/* Takes n out of the mirror; returns what changed. */
static unsigned bus__node_drop(bus__redis *b, bus__node *n, const char *why)
{
    HASH_DEL(b->nodes, n);
    rc_sunsubscribe(b->rc, n->channel);
    unsigned what = bus__node_clear(b, n);
    log_info("bus node dropped", "node=%s peer=%s why=%s nodes=%u", b->id, n->id, why,
             HASH_COUNT(b->nodes));
    n->dropped = 1;
    if (n->refs == 0)
        bus__node_free(n);
    return what;
}

/* ---- this node's presence ---------------------------------------------------- */

static bus__kv *bus__kv_find(bus__kv *head, const char *field)
{
    bus__kv *e = NULL;
    HASH_FIND_STR(head, field, e);
    return e;
}

static void bus__kv_del(bus__kv **head, bus__kv *e)
{
    HASH_DEL(*head, e);
    mem_free(e->field);
    mem_free(e->value);
    mem_free(e);
}

static void bus__kv_set(bus__kv **head, const char *field, const char *value)
{
    bus__kv *e = bus__kv_find(*head, field);
    if (e == NULL) {
        e = mem_calloc(1, sizeof(*e));
        e->field = mem_strdup(field);
        HASH_ADD_KEYPTR(hh, *head, e->field, strlen(e->field), e);
    } else {
        mem_free(e->value);
    }
    e->value = mem_strdup(value);
}

static void bus__kv_clear(bus__kv **head)
{
    bus__kv *e, *tmp;
    HASH_ITER(hh, *head, e, tmp) {
        bus__kv_del(head, e);
    }
}

/* Records the latest value of one field ("" removes it) for the flush. */
static void bus__own_set(bus__redis *b, const char *field, const char *value)
{
    bus__kv *cur = bus__kv_find(b->own, field);
    int same = cur ? strcmp(cur->value, value) == 0 : value[0] == '\0';
    if (same && bus__kv_find(b->pending, field) == NULL)
        return;
    if (value[0])
        bus__kv_set(&b->own, field, value);
    else if (cur)
        bus__kv_del(&b->own, cur);
    bus__kv_set(&b->pending, field, value);
    bus__flush_arm(b);
}

static void bus__on_flushed(void *ud, const redisReply *r, const char *err)
{
    bus__redis *b = ud;
    b->flush_inflight = 0;
    if (b->closed)
        return;
    if (bus__failed(r, err)) {
        bus__warn(b, "presence", r, err);
        b->reset_needed = 1; /* sent by the next heartbeat or change */
        if (b->pending)
            bus__flush_arm(b);
        return;
    }
    if (b->pending || b->reset_needed)
        bus__flush_arm(b);
}

/* Sends the pending changes, or the whole state when a reset is due. */
static void bus__flush_send(bus__redis *b)
{
    int reset = b->reset_needed;
    bus__kv *src = reset ? b->own : b->pending;
    size_t n = HASH_COUNT(src);
    if (!reset && n == 0)
        return;
    size_t argc = 6 + 2 * n;
    const char **argv = mem_alloc(argc * sizeof(*argv));
    argv[0] = "EVAL";
    argv[1] = bus__lua_presence;
    argv[2] = "2";
    argv[3] = b->hkey;
    argv[4] = b->pchan;
    argv[5] = reset ? "1" : "0";
    size_t i = 6;
    for (bus__kv *e = src; e; e = e->hh.next) {
        argv[i++] = e->field;
        argv[i++] = e->value;
    }
    int rc = rc_command(b->rc, b->hkey, (int)argc, argv, NULL, bus__on_flushed, b);
    mem_free(argv);
    if (rc != 0) {
        log_warn("bus redis command refused", "node=%s cmd=EVAL rc=%d", b->id, rc);
        b->reset_needed = 1;
        return;
    }
    b->flush_inflight = 1;
    b->reset_needed = 0;
    bus__kv_clear(&b->pending);
}

static void bus__on_flush(uv_prepare_t *p)
{
    bus__redis *b = p->data;
    uv_prepare_stop(p);
    if (!b->closed && !b->flush_inflight)
        bus__flush_send(b);
}

/* Flushes before the loop sleeps; after the flush in flight if any. */
static void bus__flush_arm(bus__redis *b)
{
    if (!b->closed && !b->flush_inflight)
        uv_prepare_start(&b->flush, bus__on_flush);
}

/* ---- claims ------------------------------------------------------------------ */

static uint64_t bus__grace_ms(const bus__redis *b)
{
    return BUS__FRESH_MS + b->timeout_ms;
}

static void bus__claim_forget(bus__redis *b, bus__claim *rec)
{
    HASH_DEL(b->claims, rec);
    mem_free(rec->key);
    mem_free(rec->rkey);
    mem_free(rec->topic);
    mem_free(rec);
}

/* Runs op's callback once, and forgets the name when it is not ours. */
static void bus__claimop_finish(bus__claimop *op, int rc)
{
    bus__redis *b = op->b;
    bus__claim *rec = op->rec;
    op->done = 1;
    DL_DELETE2(b->ops, op, prev, next);
    if (rec) {
        LL_DELETE2(rec->ops, op, rnext);
        op->rec = NULL;
        if (rc == 0)
            rec->held = 1;
        else if (!rec->held && rec->ops == NULL)
            bus__claim_forget(b, rec);
    }
    if (op->cb)
        op->cb(op->ud, rc);
    if (!op->inflight)
        mem_free(op);
}

/* Whether op is the only claim of its name in progress and the name was
 * not held before: then a failure leaves nothing of ours behind. */
static int bus__claimop_alone(const bus__claimop *op)
{
    return op->rec && !op->rec->held && op->rec->ops == op && op->rnext == NULL;
}

static void bus__claim_undo(bus__redis *b, bus__claimop *op)
{
    const char *argv[] = {"HDEL", op->rec->rkey, b->id};
    bus__send_logged(b, op->rec->rkey, 3, argv);
}

static void bus__on_claim_watched(void *ud, int rc)
{
    bus__claimop *op = ud;
    bus__redis *b = op->b;
    if (rc == BUS_EIO && bus__claimop_alone(op) && !b->closed) {
        log_warn("bus claim not watched in time", "node=%s user=\"%s\"", b->id, op->rec->key);
        char *topic = mem_strdup(op->rec->topic);
        bus__claim_undo(b, op);
        bus__claimop_finish(op, rc);
        bus__unwatch_topic(b, topic);
        mem_free(topic);
        return;
    }
    bus__claimop_finish(op, rc);
}

static void bus__on_claimed(void *ud, const redisReply *r, const char *err)
{
    bus__claimop *op = ud;
    bus__redis *b = op->b;
    op->inflight = 0;
    if (op->done) { /* closed meanwhile */
        mem_free(op);
        return;
    }
    if (op->rec == NULL) { /* released meanwhile: its HDEL came after */
        bus__claimop_finish(op, BUS_EIO);
        return;
    }
    if (bus__failed(r, err) || r->type != REDIS_REPLY_INTEGER) {
        bus__warn(b, "claim", r, err);
        if (bus__claimop_alone(op)) /* it may have run */
            bus__claim_undo(b, op);
        bus__claimop_finish(op, BUS_EIO);
        return;
    }
    if (r->integer == 0) {
        bus__claimop_finish(op, BUS_ETAKEN);
        return;
    }
    bus__watch_add(b, op->rec->topic, bus__on_claim_watched, op);
}

/* Sends the claim script for op (the live nodes: the mirror). */
static void bus__claim_start(bus__claimop *op)
{
    bus__redis *b = op->b;
    char grace[24];
    snprintf(grace, sizeof(grace), "%" PRIu64, bus__grace_ms(b));
    size_t argc = 7 + (op->exclusive ? HASH_COUNT(b->nodes) : 0);
    const char **argv = mem_alloc(argc * sizeof(*argv));
    argv[0] = "EVAL";
    argv[1] = bus__lua_claim;
    argv[2] = "1";
    argv[3] = op->rec->rkey;
    argv[4] = b->id;
    argv[5] = op->exclusive ? "1" : "0";
    argv[6] = grace;
    size_t i = 7;
    if (op->exclusive)
        for (bus__node *n = b->nodes; n; n = n->hh.next)
            argv[i++] = n->id;
    int rc = rc_command(b->rc, op->rec->rkey, (int)argc, argv, NULL, bus__on_claimed, op);
    mem_free(argv);
    if (rc != 0) {
        log_warn("bus redis command refused", "node=%s cmd=EVAL rc=%d", b->id, rc);
        bus__claimop_finish(op, BUS_EIO);
        return;
    }
    op->inflight = 1;
}

static int bus__registry_fresh(const bus__redis *b)
{
    return b->registry_at && uv_now(b->loop) - b->registry_at <= BUS__FRESH_MS;
}

/* A registry read ended (rc 0: b->nodes is fresh): starts or fails the
 * exclusive claims that waited for it, in call order; claims queued by
 * their callbacks wait for the next read. */
static void bus__claims_registry(bus__redis *b, int rc)
{
    size_t n = b->qlen;
    while (n-- > 0 && b->qhead && !b->closed) {
        bus__claimop *op = b->qhead;
        b->qhead = op->qnext;
        if (b->qhead == NULL)
            b->qtail = NULL;
        b->qlen--;
        op->qnext = NULL;
        if (op->rec == NULL || rc != 0)
            bus__claimop_finish(op, op->rec == NULL ? BUS_EIO : rc);
        else
            bus__claim_start(op);
    }
}

/* ---- the registry: heartbeat ------------------------------------------------- */

static void bus__cleanup_dead(bus__redis *b, const char *id)
{
    char *hkey = bus__cat("parley:{n:", id, "}");
    const char *zrem[] = {"ZREM", BUS__NODES_KEY, id};
    const char *del[] = {"DEL", hkey};
    bus__send_logged(b, BUS__NODES_KEY, 3, zrem);
    bus__send_logged(b, hkey, 2, del);
    mem_free(hkey);
}

static void bus__on_zadd(void *ud, const redisReply *r, const char *err)
{
    bus__redis *b = ud;
    b->hb_inflight--;
    if (b->closed)
        return;
    if (bus__failed(r, err) || r->type != REDIS_REPLY_INTEGER) {
        bus__warn(b, "heartbeat", r, err);
        return;
    }
    uint64_t now = uv_now(b->loop);
    int missing = r->integer == 1;
    int stale = b->hb_ok_at && now - b->hb_ok_at > BUS_NODE_DEAD_MS;
    if (b->hb_ok_at == 0)
        log_info("bus node registered", "node=%s", b->id);
    else if (missing || stale)
        log_warn("bus node registered again", "node=%s missing=%d silent_ms=%" PRIu64, b->id,
                 missing, now - b->hb_ok_at);
    b->hb_ok_at = now;
    if (missing || stale) { /* others may have dropped our presence */
        b->reset_needed = 1;
        bus__flush_arm(b);
    }
}

static void bus__on_registry(void *ud, const redisReply *r, const char *err)
{
    bus__redis *b = ud;
    b->hb_inflight--;
    if (b->closed)
        return;
    if (bus__failed(r, err) || r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        bus__warn(b, "registry", r, err);
        bus__claims_registry(b, BUS_EIO);
        return;
    }
    double now = (double)bus__wall_ms();
    unsigned what = 0;
    for (bus__node *n = b->nodes; n; n = n->hh.next)
        n->seen = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *m = r->element[i], *s = r->element[i + 1];
        if (m->type != REDIS_REPLY_STRING || s->type != REDIS_REPLY_STRING ||
            m->len != BUS__ID_LEN || memcmp(m->str, b->id, BUS__ID_LEN) == 0)
            continue;
        char id[BUS__ID_LEN + 1];
        memcpy(id, m->str, BUS__ID_LEN);
        id[BUS__ID_LEN] = '\0';
        bus__node *n = NULL;
        HASH_FIND_STR(b->nodes, id, n);
        if (strtod(s->str, NULL) < now) {
            if (n)
                what |= bus__node_drop(b, n, "expired");
            bus__cleanup_dead(b, id);
            continue;
        }
        if (n == NULL)
            n = bus__node_add(b, id);
        n->seen = 1;
        if (n->subscribed && !n->synced && !n->sync_inflight)
            bus__node_sync(b, n); /* a failed read, again */
    }
    bus__node *n, *tmp;
    HASH_ITER(hh, b->nodes, n, tmp) {
        if (!n->seen)
            what |= bus__node_drop(b, n, "left");
    }
    b->registry_at = uv_now(b->loop);
    bus__claims_registry(b, 0);
    bus__notify(b, what);
}

static void bus__on_heartbeat(uv_timer_t *t)
{
    bus__redis *b = t->data;
    if (b->closed)
        return;
    if (b->reset_needed)
        bus__flush_arm(b); /* a failed flush, again */
    if (b->hb_inflight) {
        log_debug("bus heartbeat still out", "node=%s", b->id);
        return;
    }
    char score[24];
    snprintf(score, sizeof(score), "%" PRIu64, bus__wall_ms() + BUS_NODE_DEAD_MS);
    const char *zadd[] = {"ZADD", BUS__NODES_KEY, score, b->id};
    const char *zrange[] = {"ZRANGE", BUS__NODES_KEY, "0", "-1", "WITHSCORES"};
    if (rc_command(b->rc, BUS__NODES_KEY, 4, zadd, NULL, bus__on_zadd, b) == 0)
        b->hb_inflight++;
    if (rc_command(b->rc, BUS__NODES_KEY, 5, zrange, NULL, bus__on_registry, b) == 0)
        b->hb_inflight++;
}

/* ---- close ------------------------------------------------------------------- */

static void bus__free_all(bus__redis *b)
{
    bus__watch *w, *wt;
    HASH_ITER(hh, b->watches, w, wt) {
        HASH_DEL(b->watches, w);
        bus__watch_free(w);
    }
    bus__node *n, *nt;
    HASH_ITER(hh, b->nodes, n, nt) {
        HASH_DEL(b->nodes, n);
        bus__node_free(n);
    }
    bus__guser *g, *gt;
    HASH_ITER(hh, b->gusers, g, gt) {
        HASH_DEL(b->gusers, g);
        mem_free(g->key);
        mem_free(g->name);
        mem_free(g);
    }
    bus__groom *gr, *grt;
    HASH_ITER(hh, b->grooms, gr, grt) {
        HASH_DEL(b->grooms, gr);
        mem_free(gr->key);
        mem_free(gr);
    }
    bus__claim *c, *ct;
    HASH_ITER(hh, b->claims, c, ct) {
        bus__claim_forget(b, c);
    }
    bus__kv_clear(&b->own);
    bus__kv_clear(&b->pending);
    mem_free(b->hkey);
    mem_free(b->pchan);
    mem_free(b);
}

static void bus__on_handle_closed(uv_handle_t *h)
{
    bus__redis *b = h->data;
    if (--b->open_handles == 0)
        bus__free_all(b);
}

/* The last commands are answered: frees the client (whatever else is out
 * completes with RC_ERR_CLOSED inside), then the handles. */
static void bus__close_finish(bus__redis *b)
{
    if (b->rc_freed)
        return;
    b->rc_freed = 1;
    rc_free(b->rc);
    b->rc = NULL;
    uv_close((uv_handle_t *)&b->hb_timer, bus__on_handle_closed);
    uv_close((uv_handle_t *)&b->wait_timer, bus__on_handle_closed);
    uv_close((uv_handle_t *)&b->flush, bus__on_handle_closed);
}

static void bus__on_close_cmd(void *ud, const redisReply *r, const char *err)
{
    bus__redis *b = ud;
    if (bus__failed(r, err) && (err == NULL || strcmp(err, RC_ERR_CLOSED) != 0))
        log_warn("bus close command failed", "node=%s err=\"%s\"", b->id,
                 err ? err : "error reply");
    if (--b->closing_cmds == 0)
        bus__close_finish(b);
}

static void bus__close_cmd(bus__redis *b, const char *key, int argc, const char **argv)
{
    if (rc_command(b->rc, key, argc, argv, NULL, bus__on_close_cmd, b) == 0)
        b->closing_cmds++;
}

static void bus__op_close(bus_t *bb)
{
    bus__redis *b = bus__self(bb);
    if (b->closed)
        return;
    b->closed = 1;
    uv_timer_stop(&b->hb_timer);
    uv_timer_stop(&b->wait_timer);
    uv_prepare_stop(&b->flush);
    log_info("bus closing", "node=%s claims=%u", b->id, HASH_COUNT(b->claims));

    /* Leave: presence (a reset with no entries, then the hash deleted), the
     * registry, the claims. In order behind what is out on each slot. */
    const char *leave[] = {"EVAL", bus__lua_presence, "2", b->hkey, b->pchan, "2"};
    bus__close_cmd(b, b->hkey, 6, leave);
    const char *zrem[] = {"ZREM", BUS__NODES_KEY, b->id};
    bus__close_cmd(b, BUS__NODES_KEY, 3, zrem);
    for (bus__claim *c = b->claims; c; c = c->hh.next) {
        const char *hdel[] = {"HDEL", c->rkey, b->id};
        bus__close_cmd(b, c->rkey, 3, hdel);
    }

    /* Callbacks due: the watches' (claims waiting for theirs included),
     * then the claims'. New calls from them fail inline. */
    while (b->waiters) {
        bus__waiter *x = b->waiters;
        bus__waiter_unlink(b, x);
        bus__waiter_run(x, BUS_ECLOSED);
    }
    b->qhead = b->qtail = NULL;
    b->qlen = 0;
    while (b->ops)
        bus__claimop_finish(b->ops, BUS_ECLOSED);

    if (b->closing_cmds == 0)
        bus__close_finish(b);
}

/* ---- the interface ---------------------------------------------------------- */

static void bus__op_set_handlers(bus_t *bb, const bus_handlers *h, void *ud)
{
    bus__redis *b = bus__self(bb);
    b->h = *h;
    b->hud = ud;
}

static const char *bus__op_node_id(const bus_t *bb)
{
    return bus__self(bb)->id;
}

static void bus__op_publish(bus_t *bb, const char *topic, const char *data, size_t len)
{
    bus__redis *b = bus__self(bb);
    if (b->closed)
        return;
    char *channel = bus__topic_channel(topic);
    char *payload = mem_alloc(BUS__ID_LEN + 1 + len);
    memcpy(payload, b->id, BUS__ID_LEN);
    payload[BUS__ID_LEN] = '\n';
    if (len)
        memcpy(payload + BUS__ID_LEN + 1, data, len);
    const char *argv[] = {"SPUBLISH", channel, payload};
    size_t lens[] = {8, strlen(channel), BUS__ID_LEN + 1 + len};
    if (rc_command(b->rc, channel, 3, argv, lens, bus__on_published, b) == 0) {
        b->published++;
    } else {
        b->publish_errors++;
        log_warn("bus redis command refused", "node=%s cmd=SPUBLISH", b->id);
    }
    mem_free(channel);
    mem_free(payload);
}

static void bus__op_watch(bus_t *bb, const char *topic, bus_done_cb cb, void *ud)
{
    bus__redis *b = bus__self(bb);
    if (b->closed) {
        if (cb)
            cb(ud, BUS_ECLOSED);
        return;
    }
    bus__watch_add(b, topic, cb, ud);
}

static void bus__op_unwatch(bus_t *bb, const char *topic)
{
    bus__redis *b = bus__self(bb);
    if (!b->closed)
        bus__unwatch_topic(b, topic);
}

static void bus__op_claim(bus_t *bb, const char *user_key, int exclusive, bus_done_cb cb,
                       void *ud)
{
    bus__redis *b = bus__self(bb);
    if (b->closed) {
        if (cb)
            cb(ud, BUS_ECLOSED);
        return;
    }
    bus__claim *rec = NULL;
    HASH_FIND_STR(b->claims, user_key, rec);
    if (rec == NULL) {
        rec = mem_calloc(1, sizeof(*rec));
        rec->key = mem_strdup(user_key);
        rec->rkey = bus__cat("parley:{u:", user_key, "}:claim");
        rec->topic = bus__cat("u:", user_key, "");
        HASH_ADD_KEYPTR(hh, b->claims, rec->key, strlen(rec->key), rec);
    }
    bus__claimop *op = mem_calloc(1, sizeof(*op));
    op->b = b;
    op->rec = rec;
    op->exclusive = exclusive != 0;
    op->cb = cb;
    op->ud = ud;
    DL_APPEND2(b->ops, op, prev, next);
    LL_APPEND2(rec->ops, op, rnext);
    if (op->exclusive && !bus__registry_fresh(b)) {
        /* judged with the next registry read */
        if (b->qtail)
            b->qtail->qnext = op;
        else
            b->qhead = op;
        b->qtail = op;
        b->qlen++;
        return;
    }
    bus__claim_start(op);
}

static void bus__op_release(bus_t *bb, const char *user_key)
{
    bus__redis *b = bus__self(bb);
    if (b->closed)
        return;
    bus__claim *rec = NULL;
    HASH_FIND_STR(b->claims, user_key, rec);
    if (rec == NULL)
        return;
    /* Claims in progress end with BUS_EIO: queued ones at the next
     * registry read, sent ones at their reply (this HDEL runs after them),
     * those waiting for the watch now, from the unwatch. */
    for (bus__claimop *op = rec->ops; op; op = op->rnext)
        op->rec = NULL;
    rec->ops = NULL;
    const char *argv[] = {"HDEL", rec->rkey, b->id};
    bus__send_logged(b, rec->rkey, 3, argv);
    char *topic = rec->topic;
    rec->topic = NULL;
    bus__claim_forget(b, rec);
    bus__unwatch_topic(b, topic);
    mem_free(topic);
}

static void bus__op_user_set(bus_t *bb, const char *user_key, const char *name,
                          bus_user_state_t st)
{
    bus__redis *b = bus__self(bb);
    if (b->closed)
        return;
    char *field = bus__cat("u:", user_key, "");
    char *value;
    if (st == BUS_USER_ONLINE || st == BUS_USER_RESERVED)
        value = bus__cat(st == BUS_USER_ONLINE ? "2" : "1", name ? name : "", "");
    else
        value = mem_strdup("");
    bus__own_set(b, field, value);
    mem_free(field);
    mem_free(value);
}

static void bus__op_room_set(bus_t *bb, const char *room_key, uint32_t count)
{
    bus__redis *b = bus__self(bb);
    if (b->closed)
        return;
    char *field = bus__cat("r:", room_key, "");
    char value[16] = "";
    if (count)
        snprintf(value, sizeof(value), "%" PRIu32, count);
    bus__own_set(b, field, value);
    mem_free(field);
}

static bus_user_state_t bus__op_user_state(const bus_t *bb, const char *user_key,
                                           const char **name)
{
    const bus__redis *b = bus__self(bb);
    bus__guser *g = NULL;
    HASH_FIND_STR(b->gusers, user_key, g);
    if (g == NULL)
        return BUS_USER_GONE;
    if (name)
        *name = g->name ? g->name : g->key;
    return g->online ? BUS_USER_ONLINE : BUS_USER_RESERVED;
}

static void bus__op_users_each(const bus_t *bb,
                            void (*fn)(void *ud, const char *key, const char *name), void *ud)
{
    const bus__redis *b = bus__self(bb);
    for (bus__guser *g = b->gusers; g; g = g->hh.next)
        if (g->online)
            fn(ud, g->key, g->name ? g->name : g->key);
}

static uint64_t bus__op_room_count(const bus_t *bb, const char *room_key)
{
    const bus__redis *b = bus__self(bb);
    bus__groom *g = NULL;
    HASH_FIND_STR(b->grooms, room_key, g);
    return g ? g->sum : 0;
}

static void bus__op_metrics(const bus_t *bb, buf_t *out)
{
    const bus__redis *b = bus__self(bb);
    metrics_header(out, "parley_bus_published_total", "counter",
                   "Publications this node sent to the other nodes.");
    metrics_sample(out, "parley_bus_published_total", NULL, (double)b->published);
    metrics_header(out, "parley_bus_received_total", "counter",
                   "Publications of other nodes this node received.");
    metrics_sample(out, "parley_bus_received_total", NULL, (double)b->received);
    metrics_header(out, "parley_bus_publish_errors_total", "counter",
                   "Publications that failed (refused, timed out, or an error reply).");
    metrics_sample(out, "parley_bus_publish_errors_total", NULL, (double)b->publish_errors);
    metrics_header(out, "parley_bus_nodes", "gauge",
                   "Other live nodes in this node's presence mirror.");
    metrics_sample(out, "parley_bus_nodes", NULL, (double)HASH_COUNT(b->nodes));
    metrics_header(out, "parley_bus_watched_topics", "gauge", "Topics this node watches.");
    metrics_sample(out, "parley_bus_watched_topics", NULL, (double)HASH_COUNT(b->watches));
    metrics_header(out, "parley_bus_resyncs_total", "counter",
                   "Presence snapshots of another node read again (gap, lost subscription).");
    metrics_sample(out, "parley_bus_resyncs_total", NULL, (double)b->resyncs);
}

static const bus_ops_t bus__redis_ops = {
    .close = bus__op_close,
    .set_handlers = bus__op_set_handlers,
    .node_id = bus__op_node_id,
    .publish = bus__op_publish,
    .watch = bus__op_watch,
    .unwatch = bus__op_unwatch,
    .claim = bus__op_claim,
    .release = bus__op_release,
    .user_set = bus__op_user_set,
    .room_set = bus__op_room_set,
    .user_state = bus__op_user_state,
    .users_each = bus__op_users_each,
    .room_count = bus__op_room_count,
    .metrics = bus__op_metrics,
};

static void bus__new_id(char out[BUS__ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[BUS__ID_LEN / 2];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        fprintf(stderr, "parley: RAND_bytes failed\n");
        abort();
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[BUS__ID_LEN] = '\0';
}

int bus_redis_new(uv_loop_t *loop, const char *seeds, uint32_t timeout_ms, bus_t **out)
{
    *out = NULL;
    if (loop == NULL || seeds == NULL)
        return BUS_EIO;
    rc_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.timeout_ms = timeout_ms ? timeout_ms : BUS__TIMEOUT_DEFAULT;
    rc_cluster *rc = NULL;
    if (rc_create(loop, seeds, &cfg, &rc) != 0)
        return BUS_EIO;
    bus__redis *b = mem_calloc(1, sizeof(*b));
    b->base.ops = &bus__redis_ops;
    b->base.clustered = 1;
    b->loop = loop;
    b->rc = rc;
    b->timeout_ms = cfg.timeout_ms;
    bus__new_id(b->id);
    b->hkey = bus__cat("parley:{n:", b->id, "}");
    b->pchan = bus__cat(b->hkey, ":presence", "");
    uv_timer_init(loop, &b->hb_timer);
    uv_timer_init(loop, &b->wait_timer);
    uv_prepare_init(loop, &b->flush);
    b->hb_timer.data = b->wait_timer.data = b->flush.data = b;
    b->open_handles = 3;
    uv_timer_start(&b->hb_timer, bus__on_heartbeat, 0, BUS_HEARTBEAT_MS);
    log_info("bus started", "node=%s backend=redis", b->id);
    *out = &b->base;
    return 0;
}
