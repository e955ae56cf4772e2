/* bus_redis_mirror.c - the mirror of the other nodes' presence on the
 * Redis bus: per remote node its users and rooms, read from its hash
 * (HGETALL snapshot) and kept up to date by the changes on its presence
 * channel (in seq order; a gap reads the snapshot again), and the
 * aggregates over the nodes that user_state, users_each and room_count
 * read. The registry adds the nodes, marks them dead (their users
 * RESERVED, their rooms gone, for the reserve window: then the reserve
 * timer drops them), brings them back and drops them. */
#include "bus/bus_redis_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

void bus_redis__notify(bus__redis *b, unsigned what)
{
    if (what && !b->closed && b->h.on_presence)
        b->h.on_presence(b->hud, what);
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

/* One presence field of node n ("u:<key>" / "r:<key>"; others ignored).
 * A dead node's snapshot only adds reserved users (its rooms are gone). */
static unsigned bus__apply_pair(bus__redis *b, bus__node *n, const char *field,
                                const char *value)
{
    if (field[0] == 'u' && field[1] == ':') {
        if (value[0] == '1' || value[0] == '2')
            return bus__node_user(b, n, field + 2, n->dead ? BUS_USER_RESERVED : value[0] - '0',
                                  value + 1);
        return n->dead ? 0 : bus__node_user(b, n, field + 2, BUS_USER_GONE, NULL);
    }
    if (field[0] == 'r' && field[1] == ':' && !n->dead)
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

/* Reads node n's snapshot again (now, or once its channel is active; a
 * dead node's at once). Messages meanwhile only raise seen_seq. */
void bus_redis__node_sync(bus__redis *b, bus__node *n)
{
    n->synced = 0;
    if (!n->subscribed && !n->dead)
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
    if (bus_redis__failed(r, err) || r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        bus_redis__warn(b, "snapshot", r, err); /* the next heartbeat retries */
        return;
    }
    if (n->sync_again) { /* resubscribed meanwhile: this may predate it */
        n->sync_again = 0;
        bus_redis__node_sync(b, n);
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
    /* A dead node's snapshot adds to what was known of it (its hash may be
     * gone already: another survivor's window ended). */
    if (!n->dead)
        what |= bus__node_sweep(b, n);
    n->last_seq = seq;
    n->synced = 1;
    if (n->seen_seq > seq && !n->dead) /* changes published after the read were missed */
        bus_redis__node_sync(b, n);
    n->seen_seq = 0;
    log_debug("bus node snapshot", "node=%s peer=%s seq=%" PRIu64 " dead=%d", b->id, n->id, seq,
              n->dead);
    bus_redis__notify(b, what);
}

/* "<seq>\n<reset>\n": returns the offset of the first entry line, or
 * ERR_MALFORMED. */
static long bus__parse_header(const char *msg, size_t len, uint64_t *seq, int *reset)
{
    size_t i = 0;
    uint64_t s = 0;
    while (i < len && i < 20 && msg[i] >= '0' && msg[i] <= '9')
        s = s * 10 + (uint64_t)(msg[i++] - '0');
    if (i == 0 || i >= len || msg[i] != '\n')
        return ERR_MALFORMED;
    i++;
    if (i + 2 > len || (msg[i] != '0' && msg[i] != '1') || msg[i + 1] != '\n')
        return ERR_MALFORMED;
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
        bus_redis__node_sync(b, n);
        return;
    }
    n->last_seq = seq;
    bus_redis__notify(b, what);
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
        bus_redis__node_sync(b, n);
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

static bus__node *bus__node_new(bus__redis *b, const char *id)
{
    bus__node *n = mem_calloc(1, sizeof(*n));
    n->b = b;
    memcpy(n->id, id, BUS__ID_LEN + 1);
    n->hkey = bus_redis__cat("parley:{n:", id, "}");
    n->channel = bus_redis__cat(n->hkey, ":presence", "");
    HASH_ADD_STR(b->nodes, id, n);
    return n;
}

static void bus__node_subscribe(bus__redis *b, bus__node *n)
{
    int rc = rc_ssubscribe(b->rc, n->channel, bus__on_node_sub, n);
    if (rc != 0)
        log_warn("bus subscribe refused", "node=%s peer=%s rc=%d", b->id, n->id, rc);
}

bus__node *bus_redis__node_add(bus__redis *b, const char *id)
{
    bus__node *n = bus__node_new(b, id);
    bus__node_subscribe(b, n);
    log_info("bus node joined", "node=%s peer=%s nodes=%u", b->id, id,
             bus_redis__live_count(b));
    return n;
}

/* Arms the reserve timer for the earliest end of a window (dead nodes
 * are few: a walk of the nodes). */
static void bus__reserve_arm(bus__redis *b)
{
    uint64_t next = 0;
    for (bus__node *n = b->nodes; n; n = n->hh.next)
        if (n->dead && (next == 0 || n->dead_until < next))
            next = n->dead_until;
    if (next == 0) {
        uv_timer_stop(&b->reserve_timer);
        return;
    }
    uint64_t now = uv_now(b->loop);
    uv_timer_start(&b->reserve_timer, bus_redis__on_reserve_timer, next > now ? next - now : 0,
                   0);
}

/* The start of n's reserve window (this node's own detection time). */
static void bus__node_mark_dead(bus__redis *b, bus__node *n)
{
    n->dead = 1;
    n->swept = 0;
    n->dead_until = uv_now(b->loop) + b->reserve_ms;
    b->ndead++;
    bus__reserve_arm(b);
}

bus__node *bus_redis__node_add_dead(bus__redis *b, const char *id)
{
    bus__node *n = bus__node_new(b, id);
    bus__node_mark_dead(b, n);
    bus_redis__node_sync(b, n);
    log_info("bus dead node reserved", "node=%s peer=%s known=0 reserve_ms=%" PRIu32, b->id,
             id, b->reserve_ms);
    return n;
}

unsigned bus_redis__node_kill(bus__redis *b, bus__node *n)
{
    rc_sunsubscribe(b->rc, n->channel);
    n->subscribed = 0;
    bus__node_mark_dead(b, n);
    unsigned what = 0;
    bus__entry *e, *tmp;
    HASH_ITER(hh, n->users, e, tmp) {
        if (e->state != BUS_USER_ONLINE)
            continue;
        bus__guser_update(b, e->key, e->state, BUS_USER_RESERVED, e->name);
        e->state = BUS_USER_RESERVED;
        what |= BUS_PRESENCE_USERS;
    }
    HASH_ITER(hh, n->rooms, e, tmp) {
        bus__room_remove(b, n, e);
        what |= BUS_PRESENCE_ROOMS;
    }
    /* What it last said may be incomplete (a lost subscription, a read in
     * flight, which now applies as a dead node's): its hash tells. */
    if (!n->synced && !n->sync_inflight)
        bus_redis__node_sync(b, n);
    log_info("bus node dead", "node=%s peer=%s users=%u reserve_ms=%" PRIu32 " nodes=%u", b->id,
             n->id, HASH_COUNT(n->users), b->reserve_ms, bus_redis__live_count(b));
    return what;
}

void bus_redis__node_revive(bus__redis *b, bus__node *n)
{
    n->dead = 0;
    b->ndead--;
    n->synced = 0;
    n->seen_seq = 0;
    /* its snapshot, read once subscribed, replaces the reserved users */
    bus__node_subscribe(b, n);
    log_info("bus node back", "node=%s peer=%s nodes=%u", b->id, n->id,
             bus_redis__live_count(b));
}

void bus_redis__on_reserve_timer(uv_timer_t *t)
{
    bus__redis *b = t->data;
    if (b->closed)
        return;
    uint64_t now = uv_now(b->loop);
    unsigned what = 0;
    bus__node *n, *tmp;
    HASH_ITER(hh, b->nodes, n, tmp) {
        if (n->dead && n->dead_until <= now)
            what |= bus_redis__node_drop(b, n, "reserve over");
    }
    bus__reserve_arm(b);
    bus_redis__notify(b, what);
}

/* Takes n out of the mirror; returns what changed. */
unsigned bus_redis__node_drop(bus__redis *b, bus__node *n, const char *why)
{
    HASH_DEL(b->nodes, n);
    if (n->dead)
        b->ndead--;
    else
        rc_sunsubscribe(b->rc, n->channel);
    unsigned what = bus__node_clear(b, n);
    log_info("bus node dropped", "node=%s peer=%s why=%s nodes=%u", b->id, n->id, why,
             bus_redis__live_count(b));
    n->dropped = 1;
    if (n->refs == 0)
        bus__node_free(n);
    return what;
}

void bus_redis__mirror_free(bus__redis *b)
{
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
}

/* ---- the interface: the mirror's readers ------------------------------------ */

bus_user_state_t bus_redis__op_user_state(const bus_t *bb, const char *user_key,
                                          const char **name)
{
    const bus__redis *b = bus_redis__self(bb);
    bus__guser *g = NULL;
    HASH_FIND_STR(b->gusers, user_key, g);
    if (g == NULL)
        return BUS_USER_GONE;
    if (name)
        *name = g->name ? g->name : g->key;
    return g->online ? BUS_USER_ONLINE : BUS_USER_RESERVED;
}

void bus_redis__op_users_each(const bus_t *bb,
                              void (*fn)(void *ud, const char *key, const char *name),
                              void *ud)
{
    const bus__redis *b = bus_redis__self(bb);
    for (bus__guser *g = b->gusers; g; g = g->hh.next)
        if (g->online)
            fn(ud, g->key, g->name ? g->name : g->key);
}

uint64_t bus_redis__op_room_count(const bus_t *bb, const char *room_key)
{
    const bus__redis *b = bus_redis__self(bb);
    bus__groom *g = NULL;
    HASH_FIND_STR(b->grooms, room_key, g);
    return g ? g->sum : 0;
}
