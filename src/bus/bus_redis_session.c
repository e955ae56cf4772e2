/* bus_redis_session.c - connection state recovery across nodes on the Redis
 * bus (the end of bus.h): the secret every node shares (one SET NX GET of
 * parley:recovery-key), the session records parley:{s:<pid>} with this
 * node's index of them, parley:{n:<id>}:sess (put, keep, del: fire and
 * forget; take: one GETDEL), and the sweep that gives a dead node's records
 * their expiry, which the registry starts for every expired node it reads
 * (once per dead node, and a final one that also removes the node from the
 * registry when its reserve window is over). Keys, commands and failure
 * behaviour are at the top of bus_redis.c. */
#include "bus/bus_redis_internal.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define BUS__KEY_NAME "parley:recovery-key"
#define BUS__KEY_LEN 32
/* Members of a dead node's index expired per round (ZRANGE, the PEXPIREs,
 * ZREM): a huge index costs a few commands at a time, not one giant reply. */
#define BUS__SWEEP_CHUNK 1000

/* A take or a shared-key read waiting for its reply. */
struct bus__dataop {
    bus__dataop *prev, *next; /* b->dataops while the callback is due */
    bus__redis *b;
    int take; /* 1: session_take, 0: shared_key */
    int done; /* the callback ran (close): the reply only frees it */
    bus_data_cb cb;
    void *ud;
    unsigned char key[BUS__KEY_LEN]; /* shared_key: the secret we offered */
};

/* The sweep of one dead node's index (see bus_redis__sessions_sweep). */
struct bus__sweep {
    bus__sweep *prev, *next; /* b->sweeps */
    bus__redis *b;
    char id[BUS__ID_LEN + 1];
    char *ikey;   /* parley:{n:<id>}:sess */
    char **pids;  /* the chunk being expired */
    size_t npids;
    int out;      /* its commands waiting for a reply */
    int failed;   /* one of the chunk's PEXPIREs failed */
    int last;     /* the chunk is the rest of the index */
    int final;    /* then the node leaves the registry */
};

/* KEYS: the registry. ARGV: a node id, the wall clock (ms). Removes the
 * node unless it heartbeat again meanwhile (its score is not past).
 * 1: it is out of the registry (now or before), 0: it is alive. */
static const char bus__lua_unlist[] =
    "local s = redis.call('ZSCORE', KEYS[1], ARGV[1]) "
    "if s and tonumber(s) >= tonumber(ARGV[2]) then return 0 end "
    "if s then redis.call('ZREM', KEYS[1], ARGV[1]) end "
    "return 1";

static char *bus__record_key(const char *pid)
{
    return bus_redis__cat("parley:{s:", pid, "}");
}

/* ---- put, keep, del: fire and forget ---------------------------------------- */

/* A failure is counted and logged; at close the last reply lets the close
 * finish (it waits for these: the chat keeps or deletes its sessions just
 * before closing the bus). */
static void bus__session_reply(bus__redis *b, const char *what, const redisReply *r,
                               const char *err)
{
    b->session_out--;
    if (bus_redis__failed(r, err)) {
        if (err == NULL || strcmp(err, RC_ERR_CLOSED) != 0) {
            b->session_errors++;
            bus_redis__warn(b, what, r, err);
        }
    }
    if (b->closed)
        bus_redis__close_check(b);
}

static void bus__on_put_reply(void *ud, const redisReply *r, const char *err)
{
    bus__session_reply(ud, "session_put", r, err);
}

static void bus__on_keep_reply(void *ud, const redisReply *r, const char *err)
{
    bus__session_reply(ud, "session_keep", r, err);
}

static void bus__on_del_reply(void *ud, const redisReply *r, const char *err)
{
    bus__session_reply(ud, "session_del", r, err);
}

static void bus__session_send(bus__redis *b, const char *key, int argc, const char **argv,
                              const size_t *lens, rc_reply_cb cb)
{
    if (rc_command(b->rc, key, argc, argv, lens, cb, b) == 0) {
        b->session_out++;
        return;
    }
    b->session_errors++;
    log_warn("bus redis command refused", "node=%s cmd=%s", b->id, argv[0]);
}

void bus_redis__op_session_put(bus_t *bb, const char *pid, const char *data, size_t len,
                               uint32_t ttl_ms)
{
    bus__redis *b = bus_redis__self(bb);
    if (b->closed)
        return;
    char *rkey = bus__record_key(pid);
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%" PRIu32, ttl_ms);
    /* A plain SET drops the expiry a keep gave the record. */
    const char *set[] = {"SET", rkey, data ? data : ""};
    size_t lens[] = {3, strlen(rkey), data ? len : 0};
    const char *zadd[] = {"ZADD", b->skey, ttl, pid};
    bus__session_send(b, rkey, 3, set, lens, bus__on_put_reply);
    bus__session_send(b, b->skey, 4, zadd, NULL, bus__on_put_reply);
    b->sessions_put++;
    mem_free(rkey);
}

void bus_redis__op_session_keep(bus_t *bb, const char *pid, uint32_t ttl_ms)
{
    bus__redis *b = bus_redis__self(bb);
    if (b->closed)
        return;
    char *rkey = bus__record_key(pid);
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%" PRIu32, ttl_ms);
    const char *pexpire[] = {"PEXPIRE", rkey, ttl};
    const char *zrem[] = {"ZREM", b->skey, pid};
    bus__session_send(b, rkey, 3, pexpire, NULL, bus__on_keep_reply);
    bus__session_send(b, b->skey, 3, zrem, NULL, bus__on_keep_reply);
    mem_free(rkey);
}

void bus_redis__op_session_del(bus_t *bb, const char *pid)
{
    bus__redis *b = bus_redis__self(bb);
    if (b->closed)
        return;
    char *rkey = bus__record_key(pid);
    const char *del[] = {"DEL", rkey};
    const char *zrem[] = {"ZREM", b->skey, pid};
    bus__session_send(b, rkey, 2, del, NULL, bus__on_del_reply);
    bus__session_send(b, b->skey, 3, zrem, NULL, bus__on_del_reply);
    mem_free(rkey);
}

/* ---- take, shared_key: a reply for a callback --------------------------------- */

static void bus__on_data(void *ud, const redisReply *r, const char *err)
{
    bus__dataop *op = ud;
    bus__redis *b = op->b;
    if (op->done) { /* closed meanwhile: its callback ran */
        mem_free(op);
        return;
    }
    DL_DELETE(b->dataops, op);
    int rc = BUS_EIO;
    const char *data = NULL;
    size_t len = 0;
    if (bus_redis__failed(r, err)) {
        bus_redis__warn(b, op->take ? "session_take" : "shared_key", r, err);
    } else if (op->take && r->type == REDIS_REPLY_NIL) {
        rc = BUS_ENOTFOUND;
    } else if (op->take && r->type == REDIS_REPLY_STRING) {
        rc = 0;
        data = r->str;
        len = r->len;
    } else if (!op->take && r->type == REDIS_REPLY_NIL) { /* ours was set */
        rc = 0;
        data = (const char *)op->key;
        len = BUS__KEY_LEN;
    } else if (!op->take && r->type == REDIS_REPLY_STRING && r->len == BUS__KEY_LEN) {
        rc = 0;
        data = r->str;
        len = r->len;
    } else if (!op->take && r->type == REDIS_REPLY_STRING) {
        log_warn("bus shared key malformed", "node=%s key=%s len=%zu want=%d", b->id,
                 BUS__KEY_NAME, r->len, BUS__KEY_LEN);
    } else {
        bus_redis__warn(b, op->take ? "session_take" : "shared_key", r, NULL);
    }
    if (rc == BUS_EIO)
        b->session_errors++;
    if (op->take)
        b->sessions_taken[rc == 0 ? 0 : rc == BUS_ENOTFOUND ? 1 : 2]++;
    op->cb(op->ud, rc, data, len); /* data may be op->key: freed after */
    OPENSSL_cleanse(op->key, sizeof(op->key));
    mem_free(op);
}

/* Sends op's command; a refusal (never while open) fails it inline. */
static void bus__dataop_send(bus__redis *b, bus__dataop *op, const char *key, int argc,
                             const char **argv, const size_t *lens)
{
    if (rc_command(b->rc, key, argc, argv, lens, bus__on_data, op) != 0) {
        log_warn("bus redis command refused", "node=%s cmd=%s", b->id, argv[0]);
        b->session_errors++;
        if (op->take)
            b->sessions_taken[2]++;
        bus_data_cb cb = op->cb;
        void *ud = op->ud;
        mem_free(op);
        cb(ud, BUS_EIO, NULL, 0);
        return;
    }
    DL_APPEND(b->dataops, op);
}

void bus_redis__op_shared_key(bus_t *bb, bus_data_cb cb, void *ud)
{
    bus__redis *b = bus_redis__self(bb);
    if (b->closed) {
        cb(ud, BUS_ECLOSED, NULL, 0);
        return;
    }
    bus__dataop *op = mem_calloc(1, sizeof(*op));
    op->b = b;
    op->cb = cb;
    op->ud = ud;
    if (RAND_bytes(op->key, sizeof(op->key)) != 1) {
        log_error("bus shared key not made", "node=%s err=RAND_bytes", b->id);
        mem_free(op);
        cb(ud, BUS_EIO, NULL, 0);
        return;
    }
    /* One step: ours when there was none (nil), else the first node's. */
    const char *argv[] = {"SET", BUS__KEY_NAME, (const char *)op->key, "NX", "GET"};
    size_t lens[] = {3, strlen(BUS__KEY_NAME), BUS__KEY_LEN, 2, 3};
    bus__dataop_send(b, op, BUS__KEY_NAME, 5, argv, lens);
}

void bus_redis__op_session_take(bus_t *bb, const char *pid, bus_data_cb cb, void *ud)
{
    bus__redis *b = bus_redis__self(bb);
    if (b->closed) {
        cb(ud, BUS_ECLOSED, NULL, 0);
        return;
    }
    bus__dataop *op = mem_calloc(1, sizeof(*op));
    op->b = b;
    op->take = 1;
    op->cb = cb;
    op->ud = ud;
    char *rkey = bus__record_key(pid);
    const char *argv[] = {"GETDEL", rkey};
    bus__dataop_send(b, op, rkey, 2, argv, NULL);
    mem_free(rkey);
}

/* Close: every take and shared-key callback still due runs with
 * BUS_ECLOSED (their replies, due from rc_free at the latest, free them).
 * New calls from the callbacks fail inline. */
void bus_redis__sessions_close(bus__redis *b)
{
    while (b->dataops) {
        bus__dataop *op = b->dataops;
        DL_DELETE(b->dataops, op);
        op->done = 1;
        op->cb(op->ud, BUS_ECLOSED, NULL, 0);
    }
}

/* ---- a dead node's sessions --------------------------------------------------- */

static void bus__sweep_free(bus__sweep *s)
{
    DL_DELETE(s->b->sweeps, s);
    for (size_t i = 0; i < s->npids; i++)
        mem_free(s->pids[i]);
    mem_free(s->pids);
    mem_free(s->ikey);
    mem_free(s);
}

void bus_redis__sweeps_free(bus__redis *b)
{
    while (b->sweeps)
        bus__sweep_free(b->sweeps);
}

/* A reply to one of s's commands came: counts it; when the bus closed
 * meanwhile, frees s (the sweep ends there) and returns 1. */
static int bus__sweep_reply_closed(bus__sweep *s)
{
    s->out--;
    if (!s->b->closed)
        return 0;
    bus__sweep_free(s);
    return 1;
}

/* A command of s failed: s stops; the dead node stays in the registry, so
 * the next registry read (this node's or another's) starts over. */
static void bus__sweep_fail(bus__sweep *s, const redisReply *r, const char *err)
{
    s->b->session_errors++;
    bus_redis__warn(s->b, "dead_sessions", r, err);
    bus__sweep_free(s);
}

static void bus__sweep_range(bus__sweep *s);

/* The final step's reply: the node is out of the registry, its presence
 * hash goes too (unless it came back meanwhile). */
static void bus__on_sweep_unlisted(void *ud, const redisReply *r, const char *err)
{
    bus__sweep *s = ud;
    bus__redis *b = s->b;
    if (bus__sweep_reply_closed(s))
        return;
    if (bus_redis__failed(r, err) || r->type != REDIS_REPLY_INTEGER) {
        bus_redis__warn(b, "dead_node", r, err); /* the next registry read retries */
    } else if (r->integer == 1) {
        char *hkey = bus_redis__cat("parley:{n:", s->id, "}");
        const char *del[] = {"DEL", hkey};
        bus_redis__send_logged(b, hkey, 2, del);
        mem_free(hkey);
        log_debug("bus dead node removed", "node=%s peer=%s", b->id, s->id);
    }
    bus__sweep_free(s);
}

/* The index is empty: the node is swept (this node will not sweep it
 * again while it is reserved here); a final sweep then takes it out of the
 * registry, and its presence hash (the end of its cleanup). */
static void bus__sweep_done(bus__sweep *s)
{
    bus__redis *b = s->b;
    bus__node *n = NULL;
    HASH_FIND_STR(b->nodes, s->id, n);
    if (n && n->dead)
        n->swept = 1;
    log_debug("bus dead node swept", "node=%s peer=%s final=%d", b->id, s->id, s->final);
    if (!s->final) {
        bus__sweep_free(s);
        return;
    }
    char now[24];
    snprintf(now, sizeof(now), "%" PRIu64, bus_redis__wall_ms());
    const char *argv[] = {"EVAL", bus__lua_unlist, "1", BUS__NODES_KEY, s->id, now};
    if (rc_command(b->rc, BUS__NODES_KEY, 6, argv, NULL, bus__on_sweep_unlisted, s) != 0) {
        bus__sweep_fail(s, NULL, "refused");
        return;
    }
    s->out++;
}

static void bus__on_sweep_removed(void *ud, const redisReply *r, const char *err)
{
    bus__sweep *s = ud;
    if (bus__sweep_reply_closed(s))
        return;
    if (bus_redis__failed(r, err)) {
        bus__sweep_fail(s, r, err);
        return;
    }
    for (size_t i = 0; i < s->npids; i++)
        mem_free(s->pids[i]);
    s->npids = 0;
    if (s->last)
        bus__sweep_done(s);
    else
        bus__sweep_range(s);
}

static void bus__on_sweep_expired(void *ud, const redisReply *r, const char *err)
{
    bus__sweep *s = ud;
    bus__redis *b = s->b;
    if (bus_redis__failed(r, err)) {
        if (!s->failed && !b->closed) {
            b->session_errors++;
            bus_redis__warn(b, "dead_sessions", r, err);
        }
        s->failed = 1;
    } else if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
        b->sessions_expired++; /* 0: no such record (taken, deleted) */
    }
    if (--s->out > 0)
        return;
    if (b->closed || s->failed) { /* the chunk stays in the index */
        bus__sweep_free(s);
        return;
    }
    /* Only what was expired leaves the index (never by rank: another
     * survivor may be sweeping it too). */
    size_t argc = 2 + s->npids;
    const char **argv = mem_alloc(argc * sizeof(*argv));
    argv[0] = "ZREM";
    argv[1] = s->ikey;
    for (size_t i = 0; i < s->npids; i++)
        argv[2 + i] = s->pids[i];
    int rc = rc_command(b->rc, s->ikey, (int)argc, argv, NULL, bus__on_sweep_removed, s);
    mem_free(argv);
    if (rc != 0) {
        bus__sweep_fail(s, NULL, "refused");
        return;
    }
    s->out++;
}

static void bus__on_sweep_range(void *ud, const redisReply *r, const char *err)
{
    bus__sweep *s = ud;
    bus__redis *b = s->b;
    if (bus__sweep_reply_closed(s))
        return;
    if (bus_redis__failed(r, err) || r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        bus__sweep_fail(s, r, err);
        return;
    }
    size_t n = r->elements / 2;
    if (n == 0) {
        bus__sweep_done(s);
        return;
    }
    s->last = n < BUS__SWEEP_CHUNK;
    s->failed = 0;
    s->pids = mem_alloc(n * sizeof(*s->pids));
    for (size_t i = 0; i < n; i++) {
        const redisReply *m = r->element[2 * i], *sc = r->element[2 * i + 1];
        if (m->type != REDIS_REPLY_STRING || sc->type != REDIS_REPLY_STRING)
            continue; /* not RESP2: left in the index */
        /* the score is the recovery window the owner asked for */
        double ms = strtod(sc->str, NULL);
        char ttl[24];
        snprintf(ttl, sizeof(ttl), "%" PRIu64,
                 ms >= 0 && ms <= (double)UINT32_MAX ? (uint64_t)ms : (uint64_t)0);
        char *pid = mem_strndup(m->str, m->len);
        char *rkey = bus__record_key(pid);
        const char *argv[] = {"PEXPIRE", rkey, ttl};
        if (rc_command(b->rc, rkey, 3, argv, NULL, bus__on_sweep_expired, s) == 0) {
            s->out++;
            s->pids[s->npids++] = pid;
        } else {
            s->failed = 1;
            mem_free(pid);
        }
        mem_free(rkey);
    }
    if (s->out == 0)
        bus__sweep_fail(s, NULL, "refused");
}

static void bus__sweep_range(bus__sweep *s)
{
    char stop[16];
    snprintf(stop, sizeof(stop), "%d", BUS__SWEEP_CHUNK - 1);
    const char *argv[] = {"ZRANGE", s->ikey, "0", stop, "WITHSCORES"};
    mem_free(s->pids);
    s->pids = NULL;
    if (rc_command(s->b->rc, s->ikey, 5, argv, NULL, bus__on_sweep_range, s) != 0) {
        bus__sweep_fail(s, NULL, "refused");
        return;
    }
    s->out++;
}

/* The registry read node id expired: its records get their expiry, chunk
 * by chunk, then (final) it leaves the registry. Nothing while a sweep of
 * id runs on this node (a final one wanted meanwhile comes with the next
 * registry read). */
void bus_redis__sessions_sweep(bus__redis *b, const char *id, int final)
{
    for (bus__sweep *s = b->sweeps; s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return;
    bus__sweep *s = mem_calloc(1, sizeof(*s));
    s->b = b;
    s->final = final;
    memcpy(s->id, id, BUS__ID_LEN + 1);
    s->ikey = bus_redis__cat("parley:{n:", id, "}:sess");
    DL_APPEND(b->sweeps, s);
    bus__sweep_range(s);
}
