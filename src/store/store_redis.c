/* store_redis.c - store.h on a Redis Cluster, through the rc client
 * (src/redis/rc.h): what lets several parley backends share rooms, history
 * and clientIds.
 *
 * Keys. Every operation touches keys of one hash slot per step, and the
 * keys are spread so that no single one is hit by every operation:
 *   parley:{<conv>}:msgs        a conversation's messages: a Stream, one
 *                               entry per message (fields ts, from, to when
 *                               private, content), trimmed with
 *                               XADD MAXLEN ~ <maxlen>
 *   parley:room:{<key>}         a room: a hash {name, listed}
 *   parley:{rooms}:names        the room index: key -> name (a hash) ...
 *   parley:{rooms}:order        ... and keys in creation order (a list);
 *                               written once per room, read by room_list
 *   parley:<n>:{u:<user>}:cid:<clientId>
 *                               a clientId entry, "<expires_ms> <ts_ms> <id>"
 *                               with PX expires_ms - ts_ms; n is strlen(user),
 *                               so no user/clientId pair can spell another's
 *                               key; the hash tag puts a user's entries in
 *                               one slot, users spread over the cluster.
 *   parley:{u:<user>}:pconv     a user's private conversations, for
 *                               recovery: a sorted set, member the
 *                               conversation's name, score the ts_ms of its
 *                               newest message; entries a day older than
 *                               the message being written are trimmed at
 *                               each write, and the key expires a day after
 *                               the last one. The user's slot (the tag of
 *                               its clientIds); no other key can spell it:
 *                               after "parley:" it has "{u:", a clientId
 *                               key a digit, a conversation's "{r:" or
 *                               "{p:", the room keys "room:" or "{rooms}";
 *                               the one other "{u:" key, the bus's claim
 *                               (bus_redis_claim.c), ends in "}:claim".
 * The rooms index is the one shared key, and only room creation (rare) and
 * room lists (one per presence window) touch it; joins, messages and
 * history never do. A room is created in two writes (its hash, then the
 * index); when the second fails the create answers STORE_EIO and the room
 * is not listed until the next create of that key, which sees `listed`
 * missing and writes the index again (idempotent). A busy conversation is
 * one key on one master: its order needs that. Keys may hold '}': Redis
 * then hashes a shorter tag, the same for every key built from it.
 *
 * Ids. A message id is its stream entry id "<ms>-<seq>" followed by
 * ".<tag>", the conversation's 32-bit FNV-1a hash in 8 hex digits: unique
 * in its conversation and increasing (Redis never goes back on a stream's
 * last id, not even when a promoted replica's clock is behind). Stream ids
 * of different conversations often coincide; the tag is what tells an id
 * of another conversation (wrong tag: STORE_EBADID with no round trip),
 * short of a 1 in 2^32 hash collision between two conversations that also
 * share a stream id. `before` must then be an id still in that stream
 * (XRANGE before before COUNT 1): one trimmed by MAXLEN is STORE_EBADID. A
 * message's ts_ms is the server-provided one, stored as a field (the id's
 * ms part is Redis' clock, used for nothing but order).
 *
 * Order. rc_command gives no order across a retry or a redirection, so the
 * store serializes by itself: every operation joins the lane (a FIFO) of
 * each key it touches (the conversation; the sending user's clientIds for an
 * append with a clientId; the room key; not the pconv indexes, see
 * Recovery) and starts only when it heads every one of its lanes, its
 * steps chained one after the other (but the last round trip of an
 * append, whose commands go out together). Lanes are joined in start
 * order, so an operation waits only for older ones and none waits forever:
 * every step has rc's deadline. Hence, per conversation, room and
 * user: operations take effect one at a time, in start order, and complete
 * in that order. Different keys run concurrently. The lanes are this
 * process's: two parley servers appending the same user's clientId at the
 * same moment (one round trip apart) can both miss it and store twice.
 *
 * Durability. An append is reported once Redis acknowledged the XADD and,
 * with wait_replicas > 0 (--redis-wait-replicas), a WAIT for that many
 * replicas returned (bounded at STORE__WAIT_MS: while replicas are missing
 * the append still succeeds, on the master alone, logged, and WAIT is
 * skipped for STORE__WAIT_SKIP_MS after one fell short). With the
 * cluster's appendonly, a restart loses at most the last fsync second of a
 * node that had no replica in sync; a failover loses nothing that WAIT saw
 * replicated. A clientId entry is written after its message (see
 * store_msg_append): a failure to write it is logged, and the append still
 * succeeds, because the message is stored.
 *
 * Recovery. store_since reads the conversation's stream from the id time
 * since_ms - STORE__SKEW_MS (ids are Redis' clock, ts the server's: the
 * margin lets them disagree by that much), in XRANGE chunks, dropping the
 * entries whose ts is not after since_ms, each chunk starting just after
 * the last entry read, until it has limit + 1 entries (the last one only
 * says has_more) or the stream ends. A message whose id is more than the
 * margin behind its ts is missed. store_private_convs reads the user's
 * pconv index (ZRANGEBYSCORE (since_ms +inf). An append to a private
 * conversation writes the index of both users after the message is stored
 * (like the clientId entry: an entry never names a conversation without
 * that message; a failed write is logged, the append still succeeds, and
 * the conversation is missing from that index until its next message) and
 * before its callback runs, so a private_convs started after that
 * callback sees it. private_convs joins no lane: it may also see the entry
 * of an append whose callback has not run yet.
 *
 * Cost. Round trips, each of one command to one master: room_get,
 * room_list, private_convs and a history page without `before`: 1; with
 * `before`: 2; room_create: 1, 3 the first time; since: 1 per chunk of up
 * to max(limit + 1, STORE__SINCE_CHUNK) entries, usually 1. An append: a
 * GET (with a clientId), the XADD, a WAIT (with wait_replicas), then
 * together, in one more round trip, the SET of the clientId (with one)
 * and, in a private conversation, one EVAL (ZADD GT, ZREMRANGEBYSCORE,
 * PEXPIRE) per user of the pair: two commands more than a room message
 * (one for a user's conversation with itself), on the two users' masters.
 *
 * Completion. Callbacks run later, from rc's reply callbacks, or from a
 * zero timer for operations that fail before reaching Redis (bad limit,
 * malformed id, rc refusing a command). Memory aborts on OOM (mem.h);
 * unexpected replies and rc's errors become STORE_EIO, logged. */
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "redis/rc.h"
#include "util/log.h"
#include "util/mem.h"

#define STORE__MAXLEN_DEFAULT 10000
#define STORE__WAIT_MS "500"
/* After a WAIT that timed out, appends skip WAIT for this long: a master
 * without a replica costs one 100 ms wait per second, not one per message
 * (a conversation's appends run one at a time). */
#define STORE__WAIT_SKIP_MS 1000
#define STORE__LANE_BUCKETS 256
/* store_since starts this much before since_ms in stream id time (Redis'
 * clock) to find the messages whose ts (the server's clock) is after it. */
#define STORE__SKEW_MS 10000
/* Entries store_since asks for at least, per XRANGE: the margin's
 * entries are read and dropped, so asking for just limit + 1 would often
 * cost a second round trip. */
#define STORE__SINCE_CHUNK 64
/* How long a user's pconv index remembers a conversation. */
#define STORE__PCONV_KEEP_MS ((int64_t)86400000)

/* Creates the room unless it exists: {created, name, listed}. */
static const char store__lua_room_create[] =
    "local c = redis.call('HSETNX', KEYS[1], 'name', ARGV[1]) "
    "return {c, redis.call('HGET', KEYS[1], 'name'), redis.call('HEXISTS', KEYS[1], 'listed')}";
/* Adds a room to the index once: KEYS = names, order. */
static const char store__lua_index_add[] =
    "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then "
    "redis.call('RPUSH', KEYS[2], ARGV[1]) end return 1";
/* Every room, in creation order: key, name, key, name... */
static const char store__lua_room_list[] =
    "local k = redis.call('LRANGE', KEYS[2], 0, -1) local r = {} "
    "for i, x in ipairs(k) do r[2*i-1] = x r[2*i] = redis.call('HGET', KEYS[1], x) or x end "
    "return r";

/* Notes a private conversation in a user's index: KEYS = the index; ARGV =
 * ts_ms, conversation, ts_ms - STORE__PCONV_KEEP_MS, STORE__PCONV_KEEP_MS.
 * GT keeps the newest time when two servers' appends cross. */
static const char store__lua_pconv_add[] =
    "redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[2]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3]) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[4]) return 1";

static const char store__names_key[] = "parley:{rooms}:names";
static const char store__order_key[] = "parley:{rooms}:order";

enum {
    STORE__OP_ROOM,
    STORE__OP_LIST,
    STORE__OP_APPEND,
    STORE__OP_HISTORY,
    STORE__OP_COUNT,
    STORE__OP_SINCE,
    STORE__OP_CONVS
};

/* The steps of the operations, in the order they run. */
enum {
    STORE__S_START,
    STORE__S_ROOM_CREATE, /* the room script */
    STORE__S_ROOM_INDEX,  /* the index script */
    STORE__S_ROOM_LISTED, /* HSET listed */
    STORE__S_ROOM_GET,
    STORE__S_LIST,
    STORE__S_DEDUPE_GET,
    STORE__S_XADD,
    STORE__S_WAIT,
    STORE__S_AFTER,  /* the clientId SET and the pconv EVALs, together */
    STORE__S_BEFORE, /* XRANGE before before COUNT 1 */
    STORE__S_PAGE,   /* XREVRANGE */
    STORE__S_SINCE,  /* XRANGE (last +, a chunk */
    STORE__S_CONVS,  /* ZRANGEBYSCORE */
};

typedef struct store__lane store__lane;
typedef struct store__op store__op;
typedef struct store__redis store__redis;

/* An operation's place in one lane. */
typedef struct store__lnode {
    struct store__lnode *next;
    store__lane *lane;
    store__op *op;
} store__lnode;

/* The operations waiting on one key, oldest (running) first. */
struct store__lane {
    store__lane *hnext;
    store__lnode *head, *tail;
    char *name;
};

struct store__op {
    store__op *prev, *next; /* every live op of the store, in start order */
    store__op *ready_next;  /* failed before reaching Redis */
    store__redis *st;
    int kind, step, started;
    int inflight; /* rc commands out: the last callback frees a done op */
    int done;     /* the callback ran */
    int rc;       /* for a ready op */
    store__lnode ln[2];
    int nlanes;
    void *ud;
    union {
        store_room_cb room;
        store_room_list_cb list;
        store_append_cb append;
        store_history_cb history;
        store_count_cb count;
        store_conv_list_cb convs;
    } cb;
    /* inputs, copied */
    char *key;   /* the room's, the stream's or the pconv index's key */
    char *arg;   /* room name / before id / "(" and since's last id */
    char *from, *to, *content;
    size_t content_len;
    int64_t ts_ms, expires_ms;
    char *cid_key, *cid_route;
    size_t cid_key_len;
    char *pconv[2]; /* the users' pconv index keys (private append) */
    int npconv;
    char *conv;     /* the conversation, member of those indexes */
    size_t limit;   /* ts_ms: since's since_ms */
    size_t asked;   /* entries since's XRANGE asked for */
    uint32_t tag; /* the conversation's, in its message ids */
    /* results */
    int created;
    char *name;
    store_appended_t appended;
    store_history_t page;    /* since, filled chunk by chunk */
    size_t page_cap;
    store_conv_list_t convs; /* private_convs */
};

struct store__redis {
    struct store base; /* first: a store_t * is a store__redis * */
    uv_loop_t *loop;
    rc_cluster *rc;
    uv_timer_t timer; /* completes ready ops */
    uint32_t maxlen;
    char maxlen_txt[16];
    char wait_txt[8];         /* replicas to WAIT for; "" for none */
    int closed;
    uint64_t wait_skip_until; /* uv_now before which appends skip WAIT */
    int owns_rc;              /* store_redis_open made st->rc: close frees it */
    store__op *first, *last;
    store__op *ready, *ready_last;
    store__lane *lanes[STORE__LANE_BUCKETS];
};

static void store__run(store__op *op);
static void store__on_timer(uv_timer_t *t);

/* ---- lanes -------------------------------------------------------------- */

static unsigned store__hash(const char *s)
{
    unsigned h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h % STORE__LANE_BUCKETS;
}

/* Puts op at the tail of the lane `name`, creating it. */
static void store__lane_join(store__op *op, const char *name)
{
    store__redis *st = op->st;
    unsigned b = store__hash(name);
    store__lane *l = st->lanes[b];
    while (l && strcmp(l->name, name) != 0)
        l = l->hnext;
    if (l == NULL) {
        l = mem_calloc(1, sizeof(*l));
        l->name = mem_strdup(name);
        l->hnext = st->lanes[b];
        st->lanes[b] = l;
    }
    store__lnode *n = &op->ln[op->nlanes++];
    n->next = NULL;
    n->lane = l;
    n->op = op;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

static int store__runnable(const store__op *op)
{
    for (int i = 0; i < op->nlanes; i++)
        if (op->ln[i].lane->head != &op->ln[i])
            return 0;
    return 1;
}

/* Takes op (the head of each of its lanes) out of them, frees emptied
 * lanes, and starts the next heads that can run. */
static void store__lanes_leave(store__op *op)
{
    store__redis *st = op->st;
    store__op *next[2];
    int nnext = 0;
    for (int i = 0; i < op->nlanes; i++) {
        store__lane *l = op->ln[i].lane;
        l->head = op->ln[i].next;
        if (l->head == NULL) {
            l->tail = NULL;
            store__lane **pp = &st->lanes[store__hash(l->name)];
            while (*pp != l)
                pp = &(*pp)->hnext;
            *pp = l->hnext;
            mem_free(l->name);
            mem_free(l);
        } else {
            next[nnext++] = l->head->op;
        }
    }
    op->nlanes = 0;
    for (int i = 0; i < nnext; i++)
        if (!st->closed && !next[i]->started && store__runnable(next[i]))
            store__run(next[i]);
}

/* ---- op records --------------------------------------------------------- */

static store__op *store__op_new(store__redis *st, int kind, void *ud)
{
    store__op *op = mem_calloc(1, sizeof(*op));
    op->st = st;
    op->kind = kind;
    op->ud = ud;
    op->prev = st->last;
    if (st->last)
        st->last->next = op;
    else
        st->first = op;
    st->last = op;
    return op;
}

static void store__op_free(store__op *op)
{
    mem_free(op->key);
    mem_free(op->arg);
    mem_free(op->from);
    mem_free(op->to);
    mem_free(op->content);
    mem_free(op->cid_key);
    mem_free(op->cid_route);
    mem_free(op->pconv[0]);
    mem_free(op->pconv[1]);
    mem_free(op->conv);
    mem_free(op->name);
    store_history_free(&op->page);
    store_conv_list_free(&op->convs);
    mem_free(op);
}

/* Runs op's callback once with rc and the result (the page or list given
 * by the caller), takes it out of the store, and starts what waited for
 * it. The record lives on while an rc command of it is out. */
static void store__finish(store__op *op, int rc, store_history_t *page, store_room_list_t *list)
{
    store__redis *st = op->st;
    store_history_t no_page = {NULL, 0, 0};
    store_room_list_t no_list = {NULL, 0};
    if (page == NULL)
        page = &no_page;
    if (list == NULL)
        list = &no_list;
    op->done = 1;
    if (op->prev)
        op->prev->next = op->next;
    else
        st->first = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        st->last = op->prev;
    op->prev = op->next = NULL;

    switch (op->kind) {
    case STORE__OP_ROOM:
        op->cb.room(op->ud, rc, rc == 0 ? op->name : NULL, rc == 0 ? op->created : 0);
        break;
    case STORE__OP_LIST:
        if (rc != 0)
            store_room_list_free(list);
        op->cb.list(op->ud, rc, list);
        store_room_list_free(list);
        break;
    case STORE__OP_APPEND: {
        store_appended_t none = {{0}, 0, 0};
        op->cb.append(op->ud, rc, rc == 0 ? &op->appended : &none);
        break;
    }
    case STORE__OP_HISTORY:
    case STORE__OP_SINCE:
        if (rc != 0)
            store_history_free(page);
        op->cb.history(op->ud, rc, page);
        store_history_free(page);
        break;
    case STORE__OP_CONVS:
        if (rc != 0)
            store_conv_list_free(&op->convs);
        op->cb.convs(op->ud, rc, &op->convs);
        store_conv_list_free(&op->convs);
        break;
    default:
        op->cb.count(op->ud, rc, 0);
        break;
    }
    store__lanes_leave(op);
    if (!op->inflight)
        store__op_free(op);
}

/* Completes op from the timer: for failures found before Redis saw it. */
static void store__ready(store__op *op, int rc)
{
    store__redis *st = op->st;
    op->rc = rc;
    op->ready_next = NULL;
    if (st->ready_last)
        st->ready_last->ready_next = op;
    else
        st->ready = op;
    st->ready_last = op;
    uv_timer_start(&st->timer, store__on_timer, 0, 0);
}

static void store__on_timer(uv_timer_t *t)
{
    store__redis *st = mem_container_of(t, store__redis, timer);
    store__op *op = st->ready;
    st->ready = st->ready_last = NULL;
    while (op) {
        store__op *next = op->ready_next;
        store__finish(op, op->rc, NULL, NULL);
        op = next;
    }
}

/* ---- commands ----------------------------------------------------------- */

static void store__on_reply(void *ud, const redisReply *r, const char *err);

/* Sends one step of op. A refusal (never expected) fails op with
 * STORE_EIO from the timer. */
static void store__send(store__op *op, int step, const char *key, int argc, const char **argv,
                        const size_t *argvlen)
{
    op->step = step;
    if (rc_command(op->st->rc, key, argc, argv, argvlen, store__on_reply, op) != 0) {
        log_error("store redis command refused", "cmd=%s", argv[0]);
        store__ready(op, STORE_EIO);
        return;
    }
    op->inflight++;
}

/* The tag of a conversation in its message ids: FNV-1a, 32 bits. */
static uint32_t store__conv_tag(const char *conv)
{
    uint32_t h = 2166136261u;
    while (*conv)
        h = (h ^ (unsigned char)*conv++) * 16777619u;
    return h;
}

/* "<ms>-<seq>", both decimal without sign or leading zero, each fitting
 * in 64 bits: the form of a stream id, checked before Redis sees it. */
static int store__stream_id_valid(const char *s)
{
    for (int part = 0; part < 2; part++) {
        const char *p = s;
        while (*s >= '0' && *s <= '9')
            s++;
        size_t n = (size_t)(s - p);
        if (n == 0 || n > 20 || (n > 1 && p[0] == '0'))
            return 0;
        if (n == 20 && memcmp(p, "18446744073709551615", 20) > 0)
            return 0;
        if (part == 0) {
            if (*s != '-')
                return 0;
            s++;
        }
    }
    return *s == '\0';
}

/* A message id "<stream id>.<tag as 8 hex digits>" of the conversation
 * tagged `tag`: cuts the tag off (leaving the stream id in s) and says
 * whether it is one. */
static int store__id_split(char *s, uint32_t tag)
{
    char want[16];
    char *dot = strrchr(s, '.');
    snprintf(want, sizeof(want), ".%08" PRIx32, tag);
    if (dot == NULL || strcmp(dot, want) != 0)
        return 0;
    *dot = '\0';
    return store__stream_id_valid(s);
}

/* Appends the tag to a stream id (into id[STORE_ID_MAX]); -1 if too long. */
static int store__id_make(char id[STORE_ID_MAX], const char *sid, size_t len, uint32_t tag)
{
    if (len + 10 > STORE_ID_MAX)
        return -1;
    memcpy(id, sid, len);
    snprintf(id + len, STORE_ID_MAX - len, ".%08" PRIx32, tag);
    return 0;
}

/* Asks for store_since's next chunk: from the margin before since_ms
 * (ms only: its first sequence), then from just after the last entry read
 * (op->arg). Enough for what is missing, and at least STORE__SINCE_CHUNK. */
static void store__since_next(store__op *op)
{
    char start[24], count[24];
    size_t want = op->limit + 1 - op->page.n;
    snprintf(count, sizeof(count), "%zu", want < STORE__SINCE_CHUNK ? STORE__SINCE_CHUNK : want);
    if (op->ts_ms > STORE__SKEW_MS)
        snprintf(start, sizeof(start), "%" PRId64, op->ts_ms - STORE__SKEW_MS);
    else
        strcpy(start, "-");
    op->asked = want < STORE__SINCE_CHUNK ? STORE__SINCE_CHUNK : want;
    const char *argv[] = {"XRANGE", op->key, op->arg ? op->arg : start, "+", "COUNT", count};
    store__send(op, STORE__S_SINCE, op->key, 6, argv, NULL);
}

static void store__run(store__op *op)
{
    op->started = 1;
    switch (op->kind) {
    case STORE__OP_ROOM:
        if (op->arg) { /* create */
            const char *argv[] = {"EVAL", store__lua_room_create, "1", op->key, op->arg};
            store__send(op, STORE__S_ROOM_CREATE, op->key, 5, argv, NULL);
        } else {
            const char *argv[] = {"HGET", op->key, "name"};
            store__send(op, STORE__S_ROOM_GET, op->key, 3, argv, NULL);
        }
        break;
    case STORE__OP_LIST: {
        const char *argv[] = {"EVAL", store__lua_room_list, "2", store__names_key,
                              store__order_key};
        store__send(op, STORE__S_LIST, store__order_key, 5, argv, NULL);
        break;
    }
    case STORE__OP_APPEND:
        if (op->cid_key) {
            const char *argv[] = {"GET", op->cid_key};
            size_t len[] = {3, op->cid_key_len};
            store__send(op, STORE__S_DEDUPE_GET, op->cid_route, 2, argv, len);
            break;
        }
        store__on_reply(op, NULL, NULL); /* straight to the XADD */
        break;
    case STORE__OP_HISTORY:
        if (op->limit < 1 || op->limit > STORE_HISTORY_LIMIT_MAX) {
            store__ready(op, STORE_EINVAL);
        } else if (op->arg && !store__id_split(op->arg, op->tag)) {
            store__ready(op, STORE_EBADID);
        } else if (op->arg) {
            const char *argv[] = {"XRANGE", op->key, op->arg, op->arg, "COUNT", "1"};
            store__send(op, STORE__S_BEFORE, op->key, 6, argv, NULL);
        } else {
            store__on_reply(op, NULL, NULL); /* straight to the page */
        }
        break;
    case STORE__OP_SINCE:
        if (op->limit < 1 || op->limit > STORE_HISTORY_LIMIT_MAX)
            store__ready(op, STORE_EINVAL);
        else
            store__since_next(op);
        break;
    case STORE__OP_CONVS: {
        char min[24];
        snprintf(min, sizeof(min), "(%" PRId64, op->ts_ms);
        const char *argv[] = {"ZRANGEBYSCORE", op->key, min, "+inf"};
        store__send(op, STORE__S_CONVS, op->key, 4, argv, NULL);
        break;
    }
    default:
        store__ready(op, 0); /* Redis expires clientId entries by itself */
        break;
    }
}

/* Starts op now if it heads its lanes; else it waits for them. */
static void store__submit(store__op *op)
{
    if (store__runnable(op))
        store__run(op);
}

/* ---- replies ------------------------------------------------------------ */

static char *store__dup_reply(const redisReply *r)
{
    if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS))
        return NULL;
    return mem_strndup(r->str, r->len);
}

static int64_t store__to_i64(const redisReply *r, int *ok)
{
    char buf[32];
    if (r && r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= sizeof(buf)) {
        *ok = 0;
        return 0;
    }
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end)
        *ok = 0;
    return v;
}

/* One stream entry [id, [field, value...]] into *m; 0 or -1. */
static int store__parse_entry(const redisReply *e, uint32_t tag, store_msg_t *m)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY ||
        store__id_make(m->id, e->element[0]->str, e->element[0]->len, tag) < 0)
        return -1;
    const redisReply *f = e->element[1];
    int ok = 1, has_ts = 0;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return -1;
        if (k->len == 2 && memcmp(k->str, "ts", 2) == 0) {
            m->ts_ms = store__to_i64(v, &ok);
            has_ts = 1;
        } else if (k->len == 4 && memcmp(k->str, "from", 4) == 0 && !m->from) {
            m->from = mem_strndup(v->str, v->len);
        } else if (k->len == 2 && memcmp(k->str, "to", 2) == 0 && !m->to) {
            m->to = mem_strndup(v->str, v->len);
        } else if (k->len == 7 && memcmp(k->str, "content", 7) == 0 && !m->content) {
            m->content = mem_strndup(v->str, v->len);
            m->content_len = v->len;
        }
    }
    return ok && has_ts && m->from && m->content ? 0 : -1;
}

/* The XREVRANGE reply (newest first, up to limit + 1) as a page. */
static int store__parse_page(store__op *op, const redisReply *r, store_history_t *page)
{
    memset(page, 0, sizeof(*page));
    if (r->type != REDIS_REPLY_ARRAY)
        return -1;
    size_t n = r->elements;
    if (n > op->limit) {
        page->has_more = 1;
        n = op->limit;
    }
    if (n == 0)
        return 0;
    page->msgs = mem_calloc(n, sizeof(*page->msgs));
    page->n = n;
    for (size_t i = 0; i < n; i++)
        if (store__parse_entry(r->element[i], op->tag, &page->msgs[n - 1 - i]) < 0)
            return -1;
    return 0;
}

static void store__msg_free(store_msg_t *m)
{
    mem_free(m->from);
    mem_free(m->to);
    mem_free(m->content);
}

/* One XRANGE reply of store_since into op->page: the entries whose ts is
 * after since_ms, up to limit + 1 (that one only sets has_more). Returns 1
 * when the page is complete, 0 when another chunk must follow (op->arg is
 * then its exclusive start), -1 for a malformed reply. */
static int store__since_chunk(store__op *op, const redisReply *r)
{
    store_history_t *page = &op->page;
    if (r->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i < r->elements; i++) {
        store_msg_t m;
        memset(&m, 0, sizeof(m));
        if (store__parse_entry(r->element[i], op->tag, &m) < 0) {
            store__msg_free(&m);
            return -1;
        }
        if (m.ts_ms <= op->ts_ms) { /* in the margin */
            store__msg_free(&m);
            continue;
        }
        if (page->n == op->limit) {
            store__msg_free(&m);
            page->has_more = 1;
            return 1;
        }
        if (page->n == op->page_cap) {
            op->page_cap = op->page_cap ? op->page_cap * 2 : 16;
            if (op->page_cap > op->limit)
                op->page_cap = op->limit;
            page->msgs = mem_realloc(page->msgs, op->page_cap * sizeof(*page->msgs));
        }
        page->msgs[page->n++] = m;
    }
    if (r->elements < op->asked)
        return 1; /* the end of the stream */
    const redisReply *last = r->element[r->elements - 1]->element[0];
    mem_free(op->arg);
    op->arg = mem_alloc(last->len + 2);
    op->arg[0] = '(';
    memcpy(op->arg + 1, last->str, last->len);
    op->arg[last->len + 1] = '\0';
    return 0;
}

/* "<expires_ms> <ts_ms> <id>": the entry, when it is alive at now. */
static int store__parse_cid(const redisReply *r, int64_t now, store_appended_t *out)
{
    char buf[128];
    long long exp, ts;
    int used = 0;
    if (r->type != REDIS_REPLY_STRING || r->len >= sizeof(buf))
        return 0;
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    if (sscanf(buf, "%lld %lld %n", &exp, &ts, &used) != 2 || used == 0)
        return 0;
    size_t idlen = strlen(buf + used);
    if (exp <= now || idlen == 0 || idlen >= STORE_ID_MAX)
        return 0;
    memcpy(out->id, buf + used, idlen + 1);
    out->ts_ms = ts;
    out->duplicate = 1;
    return 1;
}

static void store__xadd(store__op *op)
{
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRId64, op->ts_ms);
    const char *argv[14] = {"XADD", op->key, "MAXLEN", "~", op->st->maxlen_txt, "*",
                            "ts", ts, "from", op->from};
    size_t len[14];
    int argc = 10;
    if (op->to) {
        argv[argc++] = "to";
        argv[argc++] = op->to;
    }
    argv[argc++] = "content";
    argv[argc++] = op->content;
    for (int i = 0; i < argc; i++)
        len[i] = strlen(argv[i]);
    len[argc - 1] = op->content_len;
    store__send(op, STORE__S_XADD, op->key, argc, argv, len);
}

/* Another command of the append's last round trip; a refusal is logged and
 * counts as a failed write of the index or the clientId. */
static void store__send_after(store__op *op, const char *route, int argc, const char **argv,
                              const size_t *argvlen)
{
    if (rc_command(op->st->rc, route, argc, argv, argvlen, store__on_reply, op) != 0) {
        log_error("store redis command refused", "cmd=%s", argv[0]);
        return;
    }
    op->inflight++;
}

/* The message is stored: writes the clientId entry (with one) and the
 * pconv index of each user (private conversation) at once, and completes
 * the append when they all answered, whatever they answered (see the top
 * of the file). */
static void store__append_after(store__op *op)
{
    op->step = STORE__S_AFTER;
    if (op->cid_key) {
        char val[96], px[24];
        int64_t ttl = op->expires_ms - op->ts_ms;
        snprintf(val, sizeof(val), "%" PRId64 " %" PRId64 " %s", op->expires_ms,
                 op->appended.ts_ms, op->appended.id);
        snprintf(px, sizeof(px), "%" PRId64, ttl > 0 ? ttl : 1);
        const char *argv[] = {"SET", op->cid_key, val, "PX", px};
        size_t len[] = {3, op->cid_key_len, strlen(val), 2, strlen(px)};
        store__send_after(op, op->cid_route, 5, argv, len);
    }
    if (op->npconv) {
        char ts[24], cut[24], keep[24];
        snprintf(ts, sizeof(ts), "%" PRId64, op->ts_ms);
        snprintf(cut, sizeof(cut), "%" PRId64, op->ts_ms - STORE__PCONV_KEEP_MS);
        snprintf(keep, sizeof(keep), "%" PRId64, STORE__PCONV_KEEP_MS);
        for (int i = 0; i < op->npconv; i++) {
            const char *argv[] = {"EVAL", store__lua_pconv_add, "1", op->pconv[i],
                                  ts, op->conv, cut, keep};
            store__send_after(op, op->pconv[i], 8, argv, NULL);
        }
    }
    if (op->inflight == 0)
        store__finish(op, 0, NULL, NULL);
}

static void store__on_reply(void *ud, const redisReply *r, const char *err)
{
    store__op *op = ud;
    int from_reply = r != NULL || err != NULL;
    if (from_reply)
        op->inflight--;
    if (op->done) { /* closed while this command was out */
        if (op->inflight == 0)
            store__op_free(op);
        return;
    }
    if (err || (r && r->type == REDIS_REPLY_ERROR)) {
        log_warn("store redis command failed", "step=%d err=\"%.*s\"", op->step,
                 err ? (int)strlen(err) : (int)r->len, err ? err : r->str);
        if (op->kind == STORE__OP_APPEND && op->step == STORE__S_WAIT) {
            r = NULL; /* the XADD was acknowledged: on to the clientId */
        } else if (op->step == STORE__S_AFTER) {
            if (op->inflight == 0) /* stored: see the top of the file */
                store__finish(op, 0, NULL, NULL);
            return;
        } else {
            store__finish(op, STORE_EIO, NULL, NULL);
            return;
        }
    }
    int ok = 1;
    switch (op->step) {
    case STORE__S_ROOM_CREATE:
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
            (op->name = store__dup_reply(r->element[1])) == NULL) {
            ok = 0;
            break;
        }
        op->created = store__to_i64(r->element[0], &ok) == 1;
        if (store__to_i64(r->element[2], &ok) == 0 && ok) {
            const char *argv[] = {"EVAL", store__lua_index_add, "2", store__names_key,
                                  store__order_key, op->from, op->name};
            store__send(op, STORE__S_ROOM_INDEX, store__order_key, 7, argv, NULL);
            return;
        }
        break;
    case STORE__S_ROOM_INDEX: {
        const char *argv[] = {"HSET", op->key, "listed", "1"};
        store__send(op, STORE__S_ROOM_LISTED, op->key, 4, argv, NULL);
        return;
    }
    case STORE__S_ROOM_LISTED:
        break;
    case STORE__S_ROOM_GET:
        if (r->type == REDIS_REPLY_NIL) {
            store__finish(op, STORE_ENOTFOUND, NULL, NULL);
            return;
        }
        ok = (op->name = store__dup_reply(r)) != NULL;
        break;
    case STORE__S_LIST: {
        store_room_list_t l = {NULL, 0};
        if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
            ok = 0;
            break;
        }
        if (r->elements)
            l.rooms = mem_calloc(r->elements / 2, sizeof(*l.rooms));
        for (size_t i = 0; ok && i < r->elements; i += 2) {
            l.rooms[l.n].key = store__dup_reply(r->element[i]);
            l.rooms[l.n].name = store__dup_reply(r->element[i + 1]);
            ok = l.rooms[l.n].key && l.rooms[l.n].name;
            l.n++;
        }
        if (!ok) {
            store_room_list_free(&l);
            break;
        }
        store__finish(op, 0, NULL, &l);
        return;
    }
    case STORE__S_DEDUPE_GET:
        if (r->type != REDIS_REPLY_NIL &&
            store__parse_cid(r, op->ts_ms, &op->appended)) {
            store__finish(op, 0, NULL, NULL);
            return;
        }
        store__xadd(op);
        return;
    case STORE__S_START: /* not sent: the first step without a command */
        if (op->kind == STORE__OP_APPEND) {
            store__xadd(op);
        } else {
            char count[24];
            snprintf(count, sizeof(count), "%zu", op->limit + 1);
            char before[STORE_ID_MAX + 1];
            snprintf(before, sizeof(before), "(%s", op->arg ? op->arg : "");
            const char *argv[] = {"XREVRANGE", op->key, op->arg ? before : "+", "-", "COUNT",
                                  count};
            store__send(op, STORE__S_PAGE, op->key, 6, argv, NULL);
        }
        return;
    case STORE__S_BEFORE:
        if (r->type != REDIS_REPLY_ARRAY) {
            ok = 0;
            break;
        }
        if (r->elements == 0) {
            store__finish(op, STORE_EBADID, NULL, NULL);
            return;
        }
        op->step = STORE__S_START;
        store__on_reply(op, NULL, NULL);
        return;
    case STORE__S_PAGE: {
        store_history_t page;
        if (store__parse_page(op, r, &page) < 0) {
            store_history_free(&page);
            ok = 0;
            break;
        }
        store__finish(op, 0, &page, NULL);
        return;
    }
    case STORE__S_XADD:
        if (r->type != REDIS_REPLY_STRING ||
            store__id_make(op->appended.id, r->str, r->len, op->tag) < 0) {
            ok = 0;
            break;
        }
        op->appended.ts_ms = op->ts_ms;
        if (op->st->wait_txt[0] && uv_now(op->st->loop) >= op->st->wait_skip_until) {
            const char *argv[] = {"WAIT", op->st->wait_txt, STORE__WAIT_MS};
            store__send(op, STORE__S_WAIT, op->key, 3, argv, NULL);
            return;
        }
        /* replicas are missing: see STORE__WAIT_SKIP_MS */
        r = NULL;
        /* fall through */
    case STORE__S_WAIT:
        if (r && (r->type != REDIS_REPLY_INTEGER || r->integer < atoi(op->st->wait_txt))) {
            log_warn("store redis append not replicated in time", "id=%s", op->appended.id);
            op->st->wait_skip_until = uv_now(op->st->loop) + STORE__WAIT_SKIP_MS;
        }
        store__append_after(op);
        return;
    case STORE__S_AFTER:
        if (op->inflight == 0)
            store__finish(op, 0, NULL, NULL);
        return;
    case STORE__S_SINCE:
        ok = store__since_chunk(op, r);
        if (ok == 0) {
            store__since_next(op);
            return;
        }
        if (ok > 0) {
            store__finish(op, 0, &op->page, NULL);
            return;
        }
        ok = 0;
        break;
    case STORE__S_CONVS: {
        store_conv_list_t *l = &op->convs;
        if (r->type != REDIS_REPLY_ARRAY) {
            ok = 0;
            break;
        }
        if (r->elements)
            l->convs = mem_calloc(r->elements, sizeof(*l->convs));
        for (size_t i = 0; ok && i < r->elements; i++) {
            l->convs[l->n] = store__dup_reply(r->element[i]);
            ok = l->convs[l->n] != NULL;
            l->n += ok;
        }
        if (!ok)
            break; /* the finish frees the part read */
        store__finish(op, 0, NULL, NULL);
        return;
    }
    default:
        ok = 0;
        break;
    }
    if (!ok)
        log_error("store redis unexpected reply", "step=%d type=%d", op->step, r ? r->type : -1);
    store__finish(op, ok ? 0 : STORE_EIO, NULL, NULL);
}

/* ---- the interface ------------------------------------------------------ */

static store__redis *store__self(store_t *s)
{
    return (store__redis *)s;
}

static void store__room_op(store_t *s, const char *key, const char *name, store_room_cb cb,
                           void *ud)
{
    store__redis *st = store__self(s);
    if (st->closed) {
        cb(ud, STORE_ECLOSED, NULL, 0);
        return;
    }
    store__op *op = store__op_new(st, STORE__OP_ROOM, ud);
    op->cb.room = cb;
    size_t n = strlen(key);
    op->key = mem_alloc(n + sizeof("parley:room:{}"));
    snprintf(op->key, n + sizeof("parley:room:{}"), "parley:room:{%s}", key);
    if (name) { /* op->from: the key as given, for the index */
        op->arg = mem_strdup(name);
        op->from = mem_strdup(key);
    }
    store__lane_join(op, op->key);
    store__submit(op);
}

static void store__room_create(store_t *s, const char *key, const char *name, store_room_cb cb,
                               void *ud)
{
    store__room_op(s, key, name, cb, ud);
}

static void store__room_get(store_t *s, const char *key, store_room_cb cb, void *ud)
{
    store__room_op(s, key, NULL, cb, ud);
}

static void store__room_list(store_t *s, store_room_list_cb cb, void *ud)
{
    store__redis *st = store__self(s);
    if (st->closed) {
        store_room_list_t none = {NULL, 0};
        cb(ud, STORE_ECLOSED, &none);
        return;
    }
    store__op *op = store__op_new(st, STORE__OP_LIST, ud);
    op->cb.list = cb;
    store__submit(op);
}

static char *store__stream_key(const char *conv)
{
    size_t n = strlen(conv) + sizeof("parley:{}:msgs");
    char *k = mem_alloc(n);
    snprintf(k, n, "parley:{%s}:msgs", conv);
    return k;
}

/* The key of a user's pconv index (user[0..n)). */
static char *store__pconv_key(const char *user, size_t n)
{
    size_t size = n + sizeof("parley:{u:}:pconv");
    char *k = mem_alloc(size);
    snprintf(k, size, "parley:{u:%.*s}:pconv", (int)n, user);
    return k;
}

/* For an append to a private conversation "p:" A U+001F B: the pconv
 * index keys of A and B (one when A is B). Other names have none. */
static void store__pconv_prepare(store__op *op, const char *conv)
{
    if (strncmp(conv, "p:", 2) != 0)
        return;
    const char *a = conv + 2, *sep = strchr(a, '\x1f');
    if (sep == NULL) /* not made by store_conv_private */
        return;
    const char *b = sep + 1;
    size_t na = (size_t)(sep - a), nb = strlen(b);
    op->conv = mem_strdup(conv);
    op->pconv[op->npconv++] = store__pconv_key(a, na);
    if (na != nb || memcmp(a, b, na) != 0)
        op->pconv[op->npconv++] = store__pconv_key(b, nb);
}

static void store__msg_append(store_t *s, const store_msg_in_t *m, const store_dedupe_in_t *d,
                              store_append_cb cb, void *ud)
{
    store__redis *st = store__self(s);
    if (st->closed) {
        store_appended_t none = {{0}, 0, 0};
        cb(ud, STORE_ECLOSED, &none);
        return;
    }
    store__op *op = store__op_new(st, STORE__OP_APPEND, ud);
    op->cb.append = cb;
    op->key = store__stream_key(m->conv);
    op->tag = store__conv_tag(m->conv);
    op->from = mem_strdup(m->from);
    op->to = m->to ? mem_strdup(m->to) : NULL;
    op->content = mem_strndup(m->content, m->content_len);
    op->content_len = m->content_len;
    op->ts_ms = m->ts_ms;
    store__pconv_prepare(op, m->conv);
    store__lane_join(op, op->key);
    if (d) {
        size_t un = strlen(d->user_key);
        char prefix[32];
        int pn = snprintf(prefix, sizeof(prefix), "parley:%zu:", un);
        /* the route: up to the end of the hash tag; the key adds
         * ":cid:" and the clientId's bytes */
        op->cid_route = mem_alloc((size_t)pn + un + 5);
        snprintf(op->cid_route, (size_t)pn + un + 5, "%s{u:%s}", prefix, d->user_key);
        size_t rn = strlen(op->cid_route);
        op->cid_key_len = rn + 5 + d->client_id_len;
        op->cid_key = mem_alloc(op->cid_key_len + 1);
        memcpy(op->cid_key, op->cid_route, rn);
        memcpy(op->cid_key + rn, ":cid:", 5);
        memcpy(op->cid_key + rn + 5, d->client_id, d->client_id_len);
        op->cid_key[op->cid_key_len] = '\0';
        op->expires_ms = d->expires_ms;
        store__lane_join(op, op->cid_route);
    }
    store__submit(op);
}

static void store__history(store_t *s, const char *conv, const char *before, size_t limit,
                           store_history_cb cb, void *ud)
{
    store__redis *st = store__self(s);
    if (st->closed) {
        store_history_t none = {NULL, 0, 0};
        cb(ud, STORE_ECLOSED, &none);
        return;
    }
    store__op *op = store__op_new(st, STORE__OP_HISTORY, ud);
    op->cb.history = cb;
    op->key = store__stream_key(conv);
    op->tag = store__conv_tag(conv);
    if (before) { /* too long for an id: malformed */
        size_t n = strnlen(before, STORE_ID_MAX);
        op->arg = n < STORE_ID_MAX ? mem_strndup(before, n) : mem_strdup("x");
    }
    op->limit = limit;
    store__lane_join(op, op->key);
    store__submit(op);
}

static void store__since(store_t *s, const char *conv, int64_t since_ms, size_t limit,
                         store_history_cb cb, void *ud)
{
    store__redis *st = store__self(s);
    if (st->closed) {
        store_history_t none = {NULL, 0, 0};
        cb(ud, STORE_ECLOSED, &none);
        return;
    }
    store__op *op = store__op_new(st, STORE__OP_SINCE, ud);
    op->cb.history = cb;
    op->key = store__stream_key(conv);
    op->tag = store__conv_tag(conv);
    op->ts_ms = since_ms;
    op->limit = limit;
    store__lane_join(op, op->key);
    store__submit(op);
}

/* Joins no lane: see "Recovery" at the top of the file. */
static void store__private_convs(store_t *s, const char *user_key, int64_t since_ms,
                                 store_conv_list_cb cb, void *ud)
{
    store__redis *st = store__self(s);
    if (st->closed) {
        store_conv_list_t none = {NULL, 0};
        cb(ud, STORE_ECLOSED, &none);
        return;
    }
    store__op *op = store__op_new(st, STORE__OP_CONVS, ud);
    op->cb.convs = cb;
    op->key = store__pconv_key(user_key, strlen(user_key));
    op->ts_ms = since_ms;
    store__submit(op);
}

static void store__dedupe_purge(store_t *s, int64_t now_ms, store_count_cb cb, void *ud)
{
    store__redis *st = store__self(s);
    (void)now_ms;
    if (st->closed) {
        cb(ud, STORE_ECLOSED, 0);
        return;
    }
    store__op *op = store__op_new(st, STORE__OP_COUNT, ud);
    op->cb.count = cb;
    store__submit(op);
}

/* ---- close and open ------------------------------------------------------ */

static void store__on_timer_closed(uv_handle_t *h)
{
    mem_free(mem_container_of((uv_timer_t *)h, store__redis, timer));
}

static void store__close(store_t *s)
{
    store__redis *st = store__self(s);
    st->closed = 1;
    st->ready = st->ready_last = NULL;
    while (st->first) /* in start order; new ops complete inline */
        store__finish(st->first, STORE_ECLOSED, NULL, NULL);
    /* rc_free frees the records whose command was out (with a borrowed rc
     * the owner frees it after store_close, before the loop runs again). */
    if (st->owns_rc)
        rc_free(st->rc);
    st->rc = NULL;
    uv_close((uv_handle_t *)&st->timer, store__on_timer_closed);
}

static const store_ops_t store__redis_ops = {
    .close = store__close,
    .room_create = store__room_create,
    .room_get = store__room_get,
    .room_list = store__room_list,
    .msg_append = store__msg_append,
    .history = store__history,
    .dedupe_purge = store__dedupe_purge,
    .since = store__since,
    .private_convs = store__private_convs,
};

int store_redis_open(uv_loop_t *loop, const char *seeds, uint32_t timeout_ms, uint32_t maxlen,
                     uint32_t wait_replicas, store_t **out)
{
    *out = NULL;
    if (loop == NULL || seeds == NULL)
        return STORE_EINVAL;
    rc_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.timeout_ms = timeout_ms;
    rc_cluster *rc = NULL;
    if (rc_create(loop, seeds, &cfg, &rc) != 0)
        return STORE_EINVAL;
    store_redis_open_rc(loop, rc, maxlen, wait_replicas, out);
    ((store__redis *)*out)->owns_rc = 1;
    return 0;
}

int store_redis_open_rc(uv_loop_t *loop, rc_cluster *rc, uint32_t maxlen, uint32_t wait_replicas,
                        store_t **out)
{
    *out = NULL;
    if (loop == NULL || rc == NULL)
        return STORE_EINVAL;
    store__redis *st = mem_calloc(1, sizeof(*st));
    st->base.ops = &store__redis_ops;
    st->loop = loop;
    st->rc = rc;
    st->maxlen = maxlen ? maxlen : STORE__MAXLEN_DEFAULT;
    snprintf(st->maxlen_txt, sizeof(st->maxlen_txt), "%" PRIu32, st->maxlen);
    if (wait_replicas)
        snprintf(st->wait_txt, sizeof(st->wait_txt), "%" PRIu32, wait_replicas % 1000);
    uv_timer_init(loop, &st->timer);
    *out = &st->base;
    return 0;
}
