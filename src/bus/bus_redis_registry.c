/* bus_redis_registry.c - the node registry of the Redis bus (the sorted set
 * parley:nodes): the heartbeat (ZADD of our expiry, then ZRANGE), which
 * adds the live nodes to the mirror and drops the expired or gone ones
 * (and removes the expired ones from Redis: their presence, their session
 * records' persistence through the sweep of bus_redis_session.c, then
 * their registry entry), asks for a presence reset when this node was
 * missing, and lets the exclusive claims waiting for a fresh registry read
 * go on. */
#include "bus/bus_redis_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

/* ---- the registry: heartbeat ------------------------------------------------- */

static uint64_t bus__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Removes an expired node: its presence hash now, and its entry in the
 * registry once its sessions have their expiry (the sweep ZREMs it then):
 * until that succeeds, every registry read that finds it tries again. */
static void bus__cleanup_dead(bus__redis *b, const char *id)
{
    char *hkey = bus_redis__cat("parley:{n:", id, "}");
    const char *del[] = {"DEL", hkey};
    bus_redis__send_logged(b, hkey, 2, del);
    mem_free(hkey);
    bus_redis__sessions_sweep(b, id);
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
    int stale = b->hb_ok_at && now - b->hb_ok_at > BUS_NODE_DEAD_MS;
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
                what |= bus_redis__node_drop(b, n, "expired");
            bus__cleanup_dead(b, id);
            continue;
        }
        if (n == NULL)
            n = bus_redis__node_add(b, id);
        n->seen = 1;
        if (n->subscribed && !n->synced && !n->sync_inflight)
            bus_redis__node_sync(b, n); /* a failed read, again */
    }
    bus__node *n, *tmp;
    HASH_ITER(hh, b->nodes, n, tmp) {
        if (!n->seen)
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
    snprintf(score, sizeof(score), "%" PRIu64, bus__wall_ms() + BUS_NODE_DEAD_MS);
    const char *zadd[] = {"ZADD", BUS__NODES_KEY, score, b->id};
    const char *zrange[] = {"ZRANGE", BUS__NODES_KEY, "0", "-1", "WITHSCORES"};
    if (rc_command(b->rc, BUS__NODES_KEY, 4, zadd, NULL, bus__on_zadd, b) == 0)
        b->hb_inflight++;
    if (rc_command(b->rc, BUS__NODES_KEY, 5, zrange, NULL, bus__on_registry, b) == 0)
        b->hb_inflight++;
}
