/* rc_cluster.c - the cluster client itself: creation and rc_free, the node
 * table, the slot map and how it changes, and the topology refresh.
 *
 * The slot map is an array of 16384 node pointers. It changes in two ways:
 * wholesale when a CLUSTER SLOTS reply is applied (rc__map_apply), and one
 * slot at a time on a -MOVED (rc__map_moved). Every change is followed, in
 * the same call, by placing subscriptions again and sending the commands
 * that were waiting, so a command is never sent ahead of older ones that
 * wait for the same master.
 *
 * Refresh: one CLUSTER SLOTS at a time, at most one per RC__REFRESH_MIN_MS,
 * asked of a node whose command link is up (rotating). It is requested
 * soon after a -MOVED, a lost connection or a command timeout, and again
 * every refresh_ms for as long as the map is degraded (a slot without
 * master, or a master that cannot be reached): that is how a failover is
 * noticed, since nobody tells us. When no link is up, every address known
 * (the seeds, then every node CLUSTER SLOTS named) is connected to, and the
 * first link that comes up is asked.
 *
 * Nodes that own no slot after a refresh are retired: both links closed,
 * the struct freed in the close callbacks of its two timers. */
#include "redis/rc_internal.h"
#include "util/log.h"
#include "util/mem.h"

#include <string.h>

static void rc__refresh_start(rc_cluster *c);

/* ---- handles ------------------------------------------------------------ */

static void rc__cluster_destroy(rc_cluster *c)
{
    rc__subs_free_all(c);
    for (size_t i = 0; i < c->nboot; i++)
        mem_free(c->boot[i]);
    mem_free(c->boot);
    mem_free(c->refresh_from);
    mem_free(c);
}

static void rc__cluster_handle_done(rc_cluster *c)
{
    if (--c->open_handles == 0)
        rc__cluster_destroy(c);
}

static void rc__timer_closed(uv_handle_t *h)
{
    rc__cluster_handle_done(h->data);
}

/* tq timers point at their queue; the queue's data is the cluster. tq_close
 * takes no callback, and the cluster must outlive these handles, so they
 * are closed here with one. */
static void rc__tq_closed(uv_handle_t *h)
{
    tq_queue *q = h->data;
    rc__cluster_handle_done(q->data);
}

static void rc__node_closed(uv_handle_t *h)
{
    rc__node *n = h->data;
    if (--n->open_handles > 0)
        return;
    mem_free(n->host);
    mem_free(n->name);
    mem_free(n);
}

/* ---- nodes -------------------------------------------------------------- */

char *rc__addr_name(const char *host, int port)
{
    buf_t b = {0};
    if (strchr(host, ':'))
        buf_appendf(&b, "[%s]:%d", host, port);
    else
        buf_appendf(&b, "%s:%d", host, port);
    return buf_steal(&b);
}

rc__node *rc__node_get(rc_cluster *c, const char *host, int port, int create)
{
    for (rc__node *n = c->nodes; n; n = n->next) {
        if (n->port == port && strcmp(n->host, host) == 0)
            return n;
    }
    if (!create || c->closing)
        return NULL;
    rc__node *n = mem_calloc(1, sizeof(*n));
    n->c = c;
    n->host = mem_strdup(host);
    n->port = port;
    n->name = rc__addr_name(host, port);
    rc__conn_init(n);
    rc__sub_init(n);
    n->open_handles = 2;
    n->next = c->nodes;
    c->nodes = n;
    return n;
}

/* Closes both links and frees the node once its timers are closed. No
 * slot may point at it any more. */
static void rc__node_retire(rc__node *n)
{
    rc_cluster *c = n->c;
    for (rc__node **pp = &c->nodes; *pp; pp = &(*pp)->next) {
        if (*pp == n) {
            *pp = n->next;
            break;
        }
    }
    n->next = NULL;
    n->retired = 1;
    rc__conn_close(n);
    rc__sconn_close(n);
    uv_close((uv_handle_t *)&n->cmd_timer, rc__node_closed);
    uv_close((uv_handle_t *)&n->sub_timer, rc__node_closed);
}

void rc__node_up(rc__node *n)
{
    rc_cluster *c = n->c;
    if (c->refresh_blocked && !c->refreshing)
        rc__refresh_start(c);
    rc__dispatch_waiting(c);
}

uint64_t rc__backoff(const rc_cluster *c, unsigned fails)
{
    uint64_t d = c->cfg.backoff_min_ms, max = c->cfg.backoff_max_ms;
    for (unsigned i = 0; i < fails && d < max; i++)
        d *= 2;
    if (d > max)
        d = max;
    /* Jitter (the last quarter) so that clients do not reconnect in step. */
    uint64_t q = d / 4;
    return d - q + (q ? uv_hrtime() % (q + 1) : 0);
}

/* Remembers addr ("host:port") to find the cluster again. */
static void rc__boot_add(rc_cluster *c, const char *addr)
{
    for (size_t i = 0; i < c->nboot; i++) {
        if (strcmp(c->boot[i], addr) == 0)
            return;
    }
    if (c->nboot >= RC__BOOT_MAX + c->nseeds)
        return;
    c->boot = mem_realloc(c->boot, (c->nboot + 1) * sizeof(*c->boot));
    c->boot[c->nboot++] = mem_strdup(addr);
}

/* ---- the slot map ------------------------------------------------------- */

/* Some slot has no master, or a master that failed to connect. */
static int rc__degraded(const rc_cluster *c)
{
    for (int s = 0; s < RC_SLOTS; s++) {
        if (c->slots[s] == NULL)
            return 1;
    }
    for (const rc__node *n = c->nodes; n; n = n->next) {
        if (n->nslots > 0 && (n->cmd == RC__BACKOFF || n->cmd == RC__DOWN))
            return 1;
    }
    return 0;
}

void rc__map_apply(rc_cluster *c, const rc__slotmap *m, const char *source)
{
    if (c->closing)
        return;
    rc__node **next = mem_calloc(RC_SLOTS, sizeof(*next));
    for (size_t i = 0; i < m->n; i++) {
        const rc__range *r = &m->ranges[i];
        rc__node *n = rc__node_get(c, r->host, r->port, 1);
        for (int s = r->start; s <= r->end; s++)
            next[s] = n;
    }
    for (rc__node *n = c->nodes; n; n = n->next)
        n->nslots = 0;
    unsigned moved = 0, covered = 0;
    for (int s = 0; s < RC_SLOTS; s++) {
        if (next[s] != c->slots[s])
            moved++;
        c->slots[s] = next[s];
        if (next[s]) {
            next[s]->nslots++;
            covered++;
        }
    }
    mem_free(next);
    for (size_t i = 0; i < m->naddrs; i++)
        rc__boot_add(c, m->addrs[i]);

    if (moved) {
        c->map_version++;
        buf_t masters = {0};
        unsigned nmasters = 0;
        for (rc__node *n = c->nodes; n; n = n->next) {
            if (n->nslots == 0)
                continue;
            if (nmasters++ < 16)
                buf_appendf(&masters, "%s%s/%u", masters.len ? "," : "", n->name, n->nslots);
        }
        log_info("redis cluster topology changed",
                 "source=%s version=%u masters=%u slots_covered=%u slots_moved=%u nodes=\"%s\"",
                 source, c->map_version, nmasters, covered, moved, masters.data ? masters.data : "");
        buf_free(&masters);
    }

    for (rc__node *n = c->nodes; n; n = n->next) {
        if (n->nslots > 0)
            rc__conn_ensure(n);
    }
    rc__subs_reconcile(c, -1);
    rc__node *n = c->nodes;
    while (n) {
        rc__node *after = n->next;
        if (n->nslots == 0)
            rc__node_retire(n);
        n = after;
    }
    rc__dispatch_waiting(c);
}

void rc__map_moved(rc_cluster *c, int slot, const char *host, int port)
{
    if (c->closing)
        return;
    rc__node *n = rc__node_get(c, host, port, 1);
    rc__node *old = c->slots[slot];
    if (old != n) {
        if (old)
            old->nslots--;
        n->nslots++;
        c->slots[slot] = n;
        c->map_version++;
        log_debug("redis slot moved", "slot=%d from=%s to=%s", slot, old ? old->name : "none",
                  n->name);
        rc__conn_ensure(n);
        rc__subs_reconcile(c, slot);
        rc__dispatch_waiting(c);
    }
    rc__refresh_soon(c);
}

/* ---- refresh ------------------------------------------------------------ */

static void rc__refresh_timer_cb(uv_timer_t *t)
{
    rc__refresh_start(t->data);
}

static void rc__refresh_arm(rc_cluster *c)
{
    uint64_t now = uv_now(c->loop);
    uv_timer_start(&c->refresh_timer, rc__refresh_timer_cb,
                   c->refresh_due > now ? c->refresh_due - now : 0, 0);
}

static void rc__refresh_in(rc_cluster *c, uint64_t delay)
{
    if (c->closing)
        return;
    uint64_t now = uv_now(c->loop);
    uint64_t due = now + delay, earliest = c->last_refresh + RC__REFRESH_MIN_MS;
    if (c->last_refresh && due < earliest)
        due = earliest;
    if (c->refresh_due && c->refresh_due <= due)
        return;
    c->refresh_due = due;
    if (!c->refreshing)
        rc__refresh_arm(c);
}

void rc__refresh_soon(rc_cluster *c)
{
    rc__refresh_in(c, 0);
}

void rc__refresh_later(rc_cluster *c)
{
    rc__refresh_in(c, c->cfg.refresh_ms);
}

static void rc__refresh_done(void *ud, const redisReply *reply, const char *err)
{
    rc_cluster *c = ud;
    c->refreshing = 0;
    if (c->closing)
        return;
    rc__slotmap m;
    if (err || reply->type != REDIS_REPLY_ARRAY) {
        /* An error reply (cluster support disabled...) is a configuration
         * problem worth a warning; a lost link or a timeout is routine. */
        const char *why = err ? err : reply->str ? reply->str : "unexpected reply";
        if (!err && c->refresh_fails == 0)
            log_warn("redis cluster slots failed", "node=%s err=\"%.100s\"", c->refresh_from,
                     why);
        else
            log_debug("redis cluster slots failed", "node=%s err=\"%.100s\"", c->refresh_from,
                      why);
        c->refresh_fails++;
        rc__refresh_later(c);
    } else if (rc__slots_parse(reply, c->refresh_from, &m) != 0 || m.n == 0) {
        if (c->refresh_fails++ == 0)
            log_warn("redis cluster slots unusable", "node=%s ranges=%zu", c->refresh_from, m.n);
        rc__slotmap_free(&m);
        rc__refresh_later(c);
    } else {
        c->refresh_fails = 0;
        rc__map_apply(c, &m, c->refresh_from);
        rc__slotmap_free(&m);
        if (rc__degraded(c))
            rc__refresh_later(c);
    }
    if (c->refresh_due && !c->closing)
        rc__refresh_arm(c);
}

/* Connects to every address known, to find a node to ask. */
static void rc__bootstrap(rc_cluster *c)
{
    for (size_t i = 0; i < c->nboot; i++) {
        char host[RC__HOST_MAX];
        int port;
        if (rc__split_addr(c->boot[i], strlen(c->boot[i]), host, &port) != 0)
            continue;
        rc__conn_ensure(rc__node_get(c, host, port, 1));
    }
}

static void rc__refresh_start(rc_cluster *c)
{
    if (c->closing || c->refreshing)
        return;
    c->refresh_due = 0;
    uv_timer_stop(&c->refresh_timer);
    c->n_refreshes++;

    /* Ask the up nodes in turn. */
    rc__node *pick = NULL;
    unsigned up = 0;
    for (rc__node *n = c->nodes; n; n = n->next)
        up += n->cmd == RC__UP;
    if (up) {
        unsigned idx = c->refresh_rr++ % up;
        for (rc__node *n = c->nodes; n && pick == NULL; n = n->next) {
            if (n->cmd == RC__UP && idx-- == 0)
                pick = n;
        }
    }
    if (pick == NULL) {
        c->refresh_blocked = 1;
        rc__bootstrap(c);
        rc__refresh_later(c);
        return;
    }
    c->refresh_blocked = 0;
    c->refreshing = 1;
    c->last_refresh = uv_now(c->loop);
    mem_free(c->refresh_from);
    c->refresh_from = mem_strdup(pick->host);
    log_debug("redis cluster slots asked", "node=%s", pick->name);

    static const char *const argv[] = {"CLUSTER", "SLOTS"};
    rc__req *req = rc__req_new(c, 2, (const char **)argv, NULL);
    req->raw = 1;
    req->cb = rc__refresh_done;
    req->ud = c;
    if (rc__conn_send(pick, req) != 0)
        rc__req_fail_later(req, RC_ERR_SEND);
}

/* ---- the kick ----------------------------------------------------------- */

static void rc__kick_cb(uv_timer_t *t)
{
    rc__subs_kick(t->data);
}

void rc__kick(rc_cluster *c)
{
    if (!c->closing)
        uv_timer_start(&c->kick, rc__kick_cb, 0, 0);
}

/* ---- create / free ------------------------------------------------------ */

int rc_create(uv_loop_t *loop, const char *seeds, const rc_config *cfg, rc_cluster **out)
{
    *out = NULL;
    if (loop == NULL || seeds == NULL)
        return RC_EINVAL;

    rc_cluster *c = mem_calloc(1, sizeof(*c));
    c->loop = loop;
    if (cfg)
        c->cfg = *cfg;
    if (c->cfg.timeout_ms == 0)
        c->cfg.timeout_ms = 2000;
    if (c->cfg.max_queued == 0)
        c->cfg.max_queued = 10000;
    if (c->cfg.backoff_min_ms == 0)
        c->cfg.backoff_min_ms = 50;
    if (c->cfg.backoff_max_ms == 0)
        c->cfg.backoff_max_ms = 2000;
    if (c->cfg.backoff_max_ms < c->cfg.backoff_min_ms)
        c->cfg.backoff_max_ms = c->cfg.backoff_min_ms;
    if (c->cfg.refresh_ms == 0)
        c->cfg.refresh_ms = 500;

    const char *p = seeds;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *s = p;
        size_t n = len;
        while (n && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        char host[RC__HOST_MAX];
        int port;
        if (n == 0 || rc__split_addr(s, n, host, &port) != 0 || host[0] == '\0')
            goto invalid;
        char *name = rc__addr_name(host, port);
        rc__boot_add(c, name);
        mem_free(name);
        p += len;
        if (*p == ',')
            p++;
    }
    if (c->nboot == 0)
        goto invalid;
    c->nseeds = c->nboot;

    tq_init(&c->q_timeout, loop, rc__q_timeout_expired, c);
    tq_init(&c->q_later, loop, rc__q_later_expired, c);
    uv_timer_init(loop, &c->refresh_timer);
    c->refresh_timer.data = c;
    uv_timer_init(loop, &c->kick);
    c->kick.data = c;
    c->open_handles = 4;

    rc__refresh_start(c);
    *out = c;
    return 0;

invalid:
    for (size_t i = 0; i < c->nboot; i++)
        mem_free(c->boot[i]);
    mem_free(c->boot);
    mem_free(c);
    return RC_EINVAL;
}

void rc_free(rc_cluster *c)
{
    if (c == NULL || c->closing)
        return;
    c->closing = 1;

    /* Every request with a callback due is in q_timeout. */
    while (c->q_timeout.head.next != &c->q_timeout.head) {
        rc__req *req = mem_container_of(c->q_timeout.head.next, rc__req, tmo);
        rc__req_complete(req, NULL, RC_ERR_CLOSED);
    }
    memset(c->slots, 0, sizeof(c->slots));
    while (c->nodes)
        rc__node_retire(c->nodes);

    uv_close((uv_handle_t *)&c->q_timeout.timer, rc__tq_closed);
    uv_close((uv_handle_t *)&c->q_later.timer, rc__tq_closed);
    uv_close((uv_handle_t *)&c->refresh_timer, rc__timer_closed);
    uv_close((uv_handle_t *)&c->kick, rc__timer_closed);
}
