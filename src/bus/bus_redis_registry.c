/* bus_redis_registry.c - the node registry of the Redis bus (the sorted set
 * parley:nodes): the heartbeat (ZADD of our expiry, then ZRANGE), which
 * adds the live nodes to the mirror, marks the expired ones dead (reserved
 * for the reserve window, their sessions swept once), brings back dead
 * ones that heartbeat again, drops the gone ones, and removes from Redis
 * the ones whose window is over (the final sweep of bus_redis_session.c:
 * their registry entry and presence hash). It asks for a presence reset when this node
 * was missing, and lets the exclusive claims waiting for a fresh registry
 * read go on. */
#include "bus/bus_redis_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

/* ---- the registry: heartbeat ------------------------------------------------- */

uint64_t bus_redis__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A registry entry that expired (score < now): node id is dead. A live
 * node of the mirror becomes reserved (or goes, with no reserve window);
 * one never seen alive is reserved only while its window, counted from its
 * expiry, is not over. Its sessions are swept once by this node; once its
 * window is over (expiry + reserve_ms, this node's), the final sweep also
 * removes it from the registry and its presence hash. Until a sweep
 * succeeds, every registry read that finds it tries again. Returns what
 * changed in the mirror. */
static unsigned bus__registry_dead(bus__redis *b, const char *id, double score, double now)
{
    unsigned what = 0;
    int over = score + (double)b->reserve_ms < now;
    bus__node *n = NULL;
    HASH_FIND_STR(b->nodes, id, n);
    if (n && !n->dead) {
        if (b->reserve_ms) {
            what |= bus_redis__node_kill(b, n);
        } else {
            what |= bus_redis__node_drop(b, n, "expired");
            n = NULL;
        }
    } else if (n == NULL && !over && b->reserve_ms) {
        n = bus_redis__node_add_dead(b, id);
    }
    if (over)
        bus_redis__sessions_sweep(b, id, 1);
    else if (n && !n->swept)
        bus_redis__sessions_sweep(b, id, 0);
    if (n && !n->synced && !n->sync_inflight)
        bus_redis__node_sync(b, n); /* a failed read of its hash, again */
    return what;
}

static void bus__on_zadd(void *ud, const redisReply *r, const char *err)
{
    bus__redis *b = ud;
    b->hb_inflight--;
    if (b->closed)
        return;
    if (bus_redis__failed(r, err) || r->type != REDIS_REPLY_INTEGER) {
        bus_redis__warn(b, "heartbeat", r, err);
        return;
    }
    uint64_t now = uv_now(b->loop);
    int missing = r->integer == 1;
    int stale = b->hb_ok_at && now - b->hb_ok_at > b->dead_ms;
    if (b->hb_ok_at == 0)
        log_info("bus node registered", "node=%s", b->id);
    else if (missing || stale)
        log_warn("bus node registered again", "node=%s missing=%d silent_ms=%" PRIu64, b->id,
                 missing, now - b->hb_ok_at);
    b->hb_ok_at = now;
    if (missing || stale) { /* others may have dropped our presence */
        b->reset_needed = 1;
        bus_redis__flush_arm(b);
    }
}

static void bus__on_registry(void *ud, const redisReply *r, const char *err)
{
    bus__redis *b = ud;
    b->hb_inflight--;
    if (b->closed)
        return;
    if (bus_redis__failed(r, err) || r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        bus_redis__warn(b, "registry", r, err);
        bus_redis__claims_registry(b, BUS_EIO);
        return;
    }
    double now = (double)bus_redis__wall_ms();
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
        double score = strtod(s->str, NULL);
        if (score < now) {
            what |= bus__registry_dead(b, id, score, now);
            continue;
        }
        bus__node *n = NULL;
        HASH_FIND_STR(b->nodes, id, n);
        if (n == NULL)
            n = bus_redis__node_add(b, id);
        else if (n->dead)
            bus_redis__node_revive(b, n); /* it was only cut off */
        n->seen = 1;
        n->expiry = score;
        if (n->subscribed && !n->synced && !n->sync_inflight)
            bus_redis__node_sync(b, n); /* a failed read, again */
    }
    /* Gone from the registry: a live node left (its presence went with its
     * leave message), unless it had expired by the last read that found it
     * (another survivor removed it first: a shorter window, or it never
     * saw it alive); a dead one stays for the rest of our window. */
    bus__node *n, *tmp;
    HASH_ITER(hh, b->nodes, n, tmp) {
        if (n->seen || n->dead)
            continue;
        if (b->reserve_ms && n->expiry > 0 && n->expiry < now)
            what |= bus_redis__node_kill(b, n);
        else
            what |= bus_redis__node_drop(b, n, "left");
    }
    b->registry_at = uv_now(b->loop);
    bus_redis__claims_registry(b, 0);
    bus_redis__notify(b, what);
}

void bus_redis__on_heartbeat(uv_timer_t *t)
{
    bus__redis *b = t->data;
    if (b->closed)
        return;
    if (b->reset_needed)
        bus_redis__flush_arm(b); /* a failed flush, again */
    if (b->hb_inflight) {
        log_debug("bus heartbeat still out", "node=%s", b->id);
        return;
    }
    char score[24];
    snprintf(score, sizeof(score), "%" PRIu64, bus_redis__wall_ms() + b->dead_ms);
    const char *zadd[] = {"ZADD", BUS__NODES_KEY, score, b->id};
    const char *zrange[] = {"ZRANGE", BUS__NODES_KEY, "0", "-1", "WITHSCORES"};
    if (rc_command(b->rc, BUS__NODES_KEY, 4, zadd, NULL, bus__on_zadd, b) == 0)
        b->hb_inflight++;
    if (rc_command(b->rc, BUS__NODES_KEY, 5, zrange, NULL, bus__on_registry, b) == 0)
        b->hb_inflight++;
}
