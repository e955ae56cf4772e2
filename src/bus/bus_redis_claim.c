/* bus_redis_claim.c - username claims on the Redis bus: one EVAL of the
 * claim script on parley:{u:<u>}:claim (exclusive: against the nodes of
 * the mirror, live or dead in their reserve window, as of the last
 * registry read, which must be fresh, so such a claim may wait for the
 * next read), then the watch of "u:<u>"; release (HDEL and unwatch); the
 * claims in progress, their callbacks and their undo on failure; and the
 * lookup (one HGETALL of the claim hash, judged against the mirror). */
#include "bus/bus_redis_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* A registry read older than this (two heartbeats) is too old to judge
 * exclusive claims. */
static uint64_t bus__fresh_ms(const bus__redis *b)
{
    return 2 * (uint64_t)b->heartbeat_ms;
}

/* KEYS: the claim hash. ARGV: our id, exclusive '0'/'1', grace ms, the id
 * of a node whose claim we take over (or ""), the ids of the nodes whose
 * claims count (the mirror's: live, or dead in our reserve window).
 * 1: claimed (our field holds Redis' time; void fields removed), 0: a node
 * that counts, or one too recent to judge, holds it. */
static const char bus__lua_claim[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "if ARGV[2] == '1' then "
    "  local live = {} "
    "  for i = 5, #ARGV do live[ARGV[i]] = true end "
    "  local grace = tonumber(ARGV[3]) "
    "  local h = redis.call('HGETALL', KEYS[1]) "
    "  for i = 1, #h, 2 do "
    "    if h[i] ~= ARGV[1] and h[i] ~= ARGV[4] then "
    "      if live[h[i]] or now - (tonumber(h[i + 1]) or 0) < grace then return 0 end "
    "      redis.call('HDEL', KEYS[1], h[i]) "
    "    elseif h[i] == ARGV[4] then "
    "      redis.call('HDEL', KEYS[1], h[i]) "
    "    end "
    "  end "
    "end "
    "redis.call('HSET', KEYS[1], ARGV[1], string.format('%.0f', now)) "
    "return 1";

/* A bus_user_lookup waiting for its HGETALL. */
struct bus__lookup {
    bus__lookup *prev, *next; /* b->lookups while the callback is due */
    bus__redis *b;
    int done; /* the callback ran (close): the reply only frees it */
    bus_done_cb cb;
    void *ud;
};

/* ---- claims ------------------------------------------------------------------ */

static uint64_t bus__grace_ms(const bus__redis *b)
{
    return bus__fresh_ms(b) + b->timeout_ms;
}

static void bus__claim_forget(bus__redis *b, bus__claim *rec)
{
    HASH_DEL(b->claims, rec);
    mem_free(rec->key);
    mem_free(rec->rkey);
    mem_free(rec->topic);
    mem_free(rec);
}

void bus_redis__claims_free(bus__redis *b)
{
    bus__claim *c, *ct;
    HASH_ITER(hh, b->claims, c, ct) {
        bus__claim_forget(b, c);
    }
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
    bus_redis__send_logged(b, op->rec->rkey, 3, argv);
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
        bus_redis__unwatch_topic(b, topic);
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
    if (bus_redis__failed(r, err) || r->type != REDIS_REPLY_INTEGER) {
        bus_redis__warn(b, "claim", r, err);
        if (bus__claimop_alone(op)) /* it may have run */
            bus__claim_undo(b, op);
        bus__claimop_finish(op, BUS_EIO);
        return;
    }
    if (r->integer == 0) {
        bus__claimop_finish(op, BUS_ETAKEN);
        return;
    }
    bus_redis__watch_add(b, op->rec->topic, bus__on_claim_watched, op);
}

/* Sends the claim script for op (the nodes whose claims count: the
 * mirror's, dead ones in their reserve window included). */
static void bus__claim_start(bus__claimop *op)
{
    bus__redis *b = op->b;
    char grace[24];
    snprintf(grace, sizeof(grace), "%" PRIu64, bus__grace_ms(b));
    size_t argc = 8 + (op->exclusive ? HASH_COUNT(b->nodes) : 0);
    const char **argv = mem_alloc(argc * sizeof(*argv));
    argv[0] = "EVAL";
    argv[1] = bus__lua_claim;
    argv[2] = "1";
    argv[3] = op->rec->rkey;
    argv[4] = b->id;
    argv[5] = op->exclusive ? "1" : "0";
    argv[6] = grace;
    argv[7] = op->takeover;
    size_t i = 8;
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
    return b->registry_at && uv_now(b->loop) - b->registry_at <= bus__fresh_ms(b);
}

/* A registry read ended (rc 0: b->nodes is fresh): starts or fails the
 * exclusive claims that waited for it, in call order; claims queued by
 * their callbacks wait for the next read. */
void bus_redis__claims_registry(bus__redis *b, int rc)
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

/* Close: the queue is forgotten and every claim callback still due runs
 * with BUS_ECLOSED (after the watches', claims waiting for theirs
 * included), then every lookup's. New calls from them fail inline. */
void bus_redis__claims_close(bus__redis *b)
{
    b->qhead = b->qtail = NULL;
    b->qlen = 0;
    while (b->ops)
        bus__claimop_finish(b->ops, BUS_ECLOSED);
    while (b->lookups) {
        bus__lookup *op = b->lookups;
        DL_DELETE(b->lookups, op);
        op->done = 1; /* its reply frees it */
        if (op->cb)
            op->cb(op->ud, BUS_ECLOSED);
    }
}

/* ---- lookup ------------------------------------------------------------------ */

/* Whether one field of a claim hash (node id -> Redis time of the claim)
 * is a claim that counts: ours, a node of the mirror (live, or dead in its
 * reserve window), or one too recent to judge (a node started after our
 * last registry read), like the claim script. */
static int bus__claim_counts(const bus__redis *b, const redisReply *f, const redisReply *v,
                             uint64_t now)
{
    if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
        return 0;
    if (f->len == BUS__ID_LEN) {
        char id[BUS__ID_LEN + 1];
        memcpy(id, f->str, BUS__ID_LEN);
        id[BUS__ID_LEN] = '\0';
        bus__node *n = NULL;
        HASH_FIND_STR(b->nodes, id, n);
        if (n || strcmp(id, b->id) == 0)
            return 1;
    }
    double at = strtod(v->str, NULL); /* hiredis ends every string with a NUL */
    return at > 0 && (double)now - at < (double)bus__grace_ms(b);
}

static void bus__on_lookup(void *ud, const redisReply *r, const char *err)
{
    bus__lookup *op = ud;
    bus__redis *b = op->b;
    if (op->done) { /* closed meanwhile: its callback ran */
        mem_free(op);
        return;
    }
    DL_DELETE(b->lookups, op);
    int rc = BUS_ENOTFOUND;
    if (bus_redis__failed(r, err) || r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        bus_redis__warn(b, "user_lookup", r, err);
        rc = BUS_EIO;
    } else {
        uint64_t now = bus_redis__wall_ms();
        for (size_t i = 0; i + 1 < r->elements && rc != 0; i += 2)
            if (bus__claim_counts(b, r->element[i], r->element[i + 1], now))
                rc = 0;
    }
    if (op->cb)
        op->cb(op->ud, rc);
    mem_free(op);
}

void bus_redis__op_user_lookup(bus_t *bb, const char *user_key, bus_done_cb cb, void *ud)
{
    bus__redis *b = bus_redis__self(bb);
    if (b->closed) {
        if (cb)
            cb(ud, BUS_ECLOSED);
        return;
    }
    bus__lookup *op = mem_calloc(1, sizeof(*op));
    op->b = b;
    op->cb = cb;
    op->ud = ud;
    char *rkey = bus_redis__cat("parley:{u:", user_key, "}:claim");
    const char *argv[] = {"HGETALL", rkey};
    int rc = rc_command(b->rc, rkey, 2, argv, NULL, bus__on_lookup, op);
    mem_free(rkey);
    if (rc != 0) {
        log_warn("bus redis command refused", "node=%s cmd=HGETALL rc=%d", b->id, rc);
        mem_free(op);
        if (cb)
            cb(ud, BUS_EIO);
        return;
    }
    DL_APPEND(b->lookups, op);
}

/* ---- the interface: claim, release ------------------------------------------ */

void bus_redis__op_claim(bus_t *bb, const char *user_key, int exclusive, const char *takeover,
                         bus_done_cb cb, void *ud)
{
    bus__redis *b = bus_redis__self(bb);
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
        rec->rkey = bus_redis__cat("parley:{u:", user_key, "}:claim");
        rec->topic = bus_redis__cat("u:", user_key, "");
        HASH_ADD_KEYPTR(hh, b->claims, rec->key, strlen(rec->key), rec);
    }
    bus__claimop *op = mem_calloc(1, sizeof(*op));
    op->b = b;
    op->rec = rec;
    op->exclusive = exclusive != 0;
    if (takeover && strlen(takeover) <= BUS__ID_LEN && strcmp(takeover, b->id) != 0)
        memcpy(op->takeover, takeover, strlen(takeover) + 1);
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

void bus_redis__op_release(bus_t *bb, const char *user_key)
{
    bus__redis *b = bus_redis__self(bb);
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
    bus_redis__send_logged(b, rec->rkey, 3, argv);
    char *topic = rec->topic;
    rec->topic = NULL;
    bus__claim_forget(b, rec);
    bus_redis__unwatch_topic(b, topic);
    mem_free(topic);
}
