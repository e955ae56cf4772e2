/* rc_sub.c - sharded pub/sub: subscriptions, and the subscriber link of
 * each master (a libuv TCP stream driven by the engine in rc_subproto.c).
 *
 * A subscription (rc__sub) is wanted until rc_sunsubscribe. It is placed on
 * the node that the slot map names for its channel's slot, and is UNSENT
 * (to subscribe when that node's subscriber link is up), PENDING
 * (SSUBSCRIBE sent) or ACTIVE (confirmed). Placement is redone
 * (rc__subs_reconcile) after every change of the slot map, so:
 *   - failover: the dead master's link fails (subscriptions fall back to
 *     UNSENT, RC_SUB_LOST is due), the map keeps being re-read while
 *     degraded, and once it names the promoted replica the subscriptions
 *     move there and subscribe again;
 *   - resharding: the old owner drops the channel with a sunsubscribe
 *     array (a kick), or answers our SSUBSCRIBE with -MOVED; either way
 *     the map is corrected and the subscription moves;
 *   - reconnect: a link that comes back subscribes everything placed on it.
 * A link whose node still holds subscriptions reconnects with backoff; an
 * idle link is left down after a failure.
 *
 * Callbacks: RC_SUB_MESSAGE and RC_SUB_SUBSCRIBED run from the read
 * callback as events are parsed; RC_SUB_LOST is flagged and delivered by
 * the kick timer (so it never runs inside a reconcile or rc_* call), and
 * just before an RC_SUB_SUBSCRIBED of the same subscription if the kick
 * has not run yet, to keep the order. Unsubscribed subscriptions are only
 * marked dead and unlinked from their node; the kick frees them. */
#include "redis/rc_internal.h"
#include "util/log.h"
#include "util/mem.h"

#include <string.h>

struct rc__sconn {
    uv_tcp_t tcp;             /* data: this */
    uv_connect_t connect_req;
    uv_write_t write_req;
    rc__node *node;           /* NULL once let go of: closing */
    rc__subproto proto;
    buf_t out;                /* commands queued behind the write in flight */
    buf_t wbuf;               /* the write in flight */
    int writing;
    char rbuf[16384];
};

static void rc__sconn_start(rc__node *n);
static void rc__sub_timer_cb(uv_timer_t *t);

/* ---- subscription lists ------------------------------------------------- */

static void rc__sub_link(rc__sub *s, rc__node *n)
{
    s->node = n;
    s->node_prev = NULL;
    s->node_next = n->subs;
    if (n->subs)
        n->subs->node_prev = s;
    n->subs = s;
}

static void rc__sub_unlink(rc__sub *s)
{
    rc__node *n = s->node;
    if (n == NULL)
        return;
    if (s->node_prev)
        s->node_prev->node_next = s->node_next;
    else
        n->subs = s->node_next;
    if (s->node_next)
        s->node_next->node_prev = s->node_prev;
    s->node_prev = s->node_next = NULL;
    s->node = NULL;
}

static void rc__sub_free(rc__sub *s)
{
    mem_free(s->channel);
    mem_free(s);
}

/* ---- the link ----------------------------------------------------------- */

static void rc__sconn_closed(uv_handle_t *h)
{
    rc__sconn *sc = mem_container_of((uv_tcp_t *)h, rc__sconn, tcp);
    rc__subproto_free(&sc->proto);
    buf_free(&sc->out);
    buf_free(&sc->wbuf);
    mem_free(sc);
}

/* Lets go of the node's link; it is freed in its close callback. */
static void rc__sconn_detach(rc__node *n)
{
    rc__sconn *sc = n->sc;
    if (sc == NULL)
        return;
    n->sc = NULL;
    sc->node = NULL;
    uv_close((uv_handle_t *)&sc->tcp, rc__sconn_closed);
}

/* The link failed (or never came up): subscriptions placed here go back to
 * UNSENT, the active ones are told (by the kick), and the link retries. */
static void rc__sconn_lost(rc__node *n, const char *why)
{
    rc_cluster *c = n->c;
    int was_up = n->sub == RC__UP;
    rc__sconn_detach(n);
    int lost = 0;
    for (rc__sub *s = n->subs; s; s = s->node_next) {
        if (s->state == RC__SUB_ACTIVE) {
            s->notify_lost = 1;
            lost = 1;
        }
        s->state = RC__SUB_UNSENT;
    }
    if (lost)
        rc__kick(c);
    uint64_t delay = rc__backoff(c, n->sub_fails);
    n->sub = RC__BACKOFF;
    if (was_up)
        log_warn("redis subscriber connection lost", "node=%s err=\"%s\" retry_ms=%llu",
                 n->name, why, (unsigned long long)delay);
    else
        log_debug("redis subscriber connect failed", "node=%s err=\"%s\" fails=%u", n->name,
                  why, n->sub_fails + 1);
    n->sub_fails++;
    if (!n->retired && !c->closing)
        uv_timer_start(&n->sub_timer, rc__sub_timer_cb, delay, 0);
    if (was_up)
        rc__refresh_soon(c);
}

static void rc__sconn_on_write(uv_write_t *req, int status);

static void rc__sconn_flush(rc__sconn *sc)
{
    if (sc->writing || sc->out.len == 0)
        return;
    buf_t t = sc->wbuf; /* empty: reuse its memory for the next batch */
    sc->wbuf = sc->out;
    sc->out = t;
    sc->out.len = 0;
    uv_buf_t b = uv_buf_init(sc->wbuf.data, (unsigned)sc->wbuf.len);
    int rc = uv_write(&sc->write_req, (uv_stream_t *)&sc->tcp, &b, 1, rc__sconn_on_write);
    if (rc != 0) {
        sc->wbuf.len = 0;
        rc__sconn_lost(sc->node, uv_strerror(rc));
        return;
    }
    sc->writing = 1;
}

static void rc__sconn_on_write(uv_write_t *req, int status)
{
    rc__sconn *sc = mem_container_of(req, rc__sconn, write_req);
    sc->writing = 0;
    sc->wbuf.len = 0;
    if (sc->node == NULL)
        return;
    if (status < 0) {
        rc__sconn_lost(sc->node, uv_strerror(status));
        return;
    }
    rc__sconn_flush(sc);
}

/* Queues SSUBSCRIBE or SUNSUBSCRIBE of s's channel on n's link (up). */
static void rc__sub_send(rc__node *n, rc__op_kind kind, const rc__sub *s)
{
    rc__sconn *sc = n->sc;
    rc__subproto_send(&sc->proto, kind, s->channel, s->len, &sc->out);
    rc__sconn_flush(sc);
}

static int rc__sub_on_event(void *ud, const rc__ev *ev)
{
    rc__sconn *sc = ud;
    rc__node *n = sc->node;
    if (n == NULL)
        return 1;
    rc_cluster *c = n->c;
    rc__sub *s = NULL;
    HASH_FIND(hh, c->subs, ev->channel, ev->channel_len, s);

    switch (ev->kind) {
    case RC__EV_MESSAGE:
        if (s)
            s->cb(s->ud, RC_SUB_MESSAGE, s->channel, ev->data, ev->len);
        break;
    case RC__EV_SUBSCRIBED:
        if (s && s->node == n && s->state == RC__SUB_PENDING) {
            s->state = RC__SUB_ACTIVE;
            s->redirects = 0;
            if (s->notify_lost) {
                s->notify_lost = 0;
                s->cb(s->ud, RC_SUB_LOST, s->channel, NULL, 0);
                if (sc->node == NULL || c->closing || s->dead || s->state != RC__SUB_ACTIVE)
                    break;
            }
            s->cb(s->ud, RC_SUB_SUBSCRIBED, s->channel, NULL, 0);
        }
        break;
    case RC__EV_UNSUBSCRIBED:
        break;
    case RC__EV_KICKED:
        if (s && s->node == n && s->state != RC__SUB_UNSENT) {
            log_debug("redis subscription dropped by server", "node=%s slot=%d", n->name,
                      s->slot);
            if (s->state == RC__SUB_ACTIVE) {
                s->notify_lost = 1;
                rc__kick(c);
            }
            s->state = RC__SUB_UNSENT; /* the refresh places and sends it */
            rc__refresh_soon(c);
        }
        break;
    case RC__EV_REFUSED:
        if (s && s->node == n && s->state == RC__SUB_PENDING) {
            s->state = RC__SUB_UNSENT;
            rc__redirect rd;
            if (rc__parse_redirect(ev->data, ev->len, &rd) == RC__REPLY_MOVED &&
                ++s->redirects <= RC__MAX_REDIRECTS) {
                /* Moves the slot, which places (and sends) s again. */
                rc__map_moved(c, rd.slot, rd.host[0] ? rd.host : n->host, rd.port);
            } else {
                log_debug("redis ssubscribe refused", "node=%s slot=%d err=\"%.*s\"", n->name,
                          s->slot, (int)(ev->len > 80 ? 80 : ev->len), ev->data);
                rc__refresh_later(c);
            }
        }
        break;
    }
    return (sc->node == NULL || c->closing) ? 1 : 0;
}

static void rc__sconn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    rc__sconn *sc = h->data;
    *buf = uv_buf_init(sc->rbuf, sizeof(sc->rbuf));
}

static void rc__sconn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    rc__sconn *sc = stream->data;
    if (sc->node == NULL)
        return;
    if (nread < 0) {
        rc__sconn_lost(sc->node, nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0)
        return;
    int rc = rc__subproto_feed(&sc->proto, buf->base, (size_t)nread, rc__sub_on_event, sc);
    if (rc < 0 && sc->node) {
        log_warn("redis subscriber protocol error", "node=%s", sc->node->name);
        rc__sconn_lost(sc->node, "protocol error");
    }
}

static void rc__sconn_on_connect(uv_connect_t *req, int status)
{
    rc__sconn *sc = mem_container_of(req, rc__sconn, connect_req);
    rc__node *n = sc->node;
    if (n == NULL)
        return; /* let go of meanwhile (status is UV_ECANCELED) */
    if (status < 0) {
        rc__sconn_lost(n, uv_strerror(status));
        return;
    }
    uv_timer_stop(&n->sub_timer);
    int rc = uv_read_start((uv_stream_t *)&sc->tcp, rc__sconn_alloc, rc__sconn_on_read);
    if (rc != 0) {
        rc__sconn_lost(n, uv_strerror(rc));
        return;
    }
    uv_tcp_nodelay(&sc->tcp, 1);
    uv_tcp_keepalive(&sc->tcp, 1, 30);
    n->sub = RC__UP;
    n->sub_fails = 0;
    log_debug("redis subscriber connected", "node=%s", n->name);
    for (rc__sub *s = n->subs; s && n->sub == RC__UP; s = s->node_next) {
        if (s->state == RC__SUB_UNSENT) {
            s->state = RC__SUB_PENDING;
            rc__sub_send(n, RC__OP_SSUBSCRIBE, s);
        }
    }
}

static void rc__sconn_start(rc__node *n)
{
    rc_cluster *c = n->c;
    struct sockaddr_storage ss;
    if (uv_ip4_addr(n->host, n->port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(n->host, n->port, (struct sockaddr_in6 *)&ss) != 0) {
        rc__sconn_lost(n, "not an IP address");
        return;
    }
    rc__sconn *sc = mem_calloc(1, sizeof(*sc));
    if (rc__subproto_init(&sc->proto) != 0) {
        mem_free(sc);
        rc__sconn_lost(n, "out of memory (hiredis)");
        return;
    }
    int rc = uv_tcp_init(c->loop, &sc->tcp);
    if (rc != 0) {
        rc__subproto_free(&sc->proto);
        mem_free(sc);
        rc__sconn_lost(n, uv_strerror(rc));
        return;
    }
    sc->tcp.data = sc;
    sc->node = n;
    n->sc = sc;
    n->sub = RC__CONNECTING;
    rc = uv_tcp_connect(&sc->connect_req, &sc->tcp, (const struct sockaddr *)&ss,
                        rc__sconn_on_connect);
    if (rc != 0) {
        rc__sconn_lost(n, uv_strerror(rc));
        return;
    }
    uv_timer_start(&n->sub_timer, rc__sub_timer_cb, c->cfg.timeout_ms, 0);
}

static void rc__sub_timer_cb(uv_timer_t *t)
{
    rc__node *n = t->data;
    if (n->sub == RC__CONNECTING) {
        rc__sconn_lost(n, "connect timeout");
    } else if (n->sub == RC__BACKOFF) {
        n->sub = RC__DOWN;
        if (n->subs)
            rc__sconn_start(n);
    }
}

static void rc__sconn_ensure(rc__node *n)
{
    if (n->sub == RC__DOWN && !n->retired && !n->c->closing)
        rc__sconn_start(n);
}

void rc__sub_init(rc__node *n)
{
    uv_timer_init(n->c->loop, &n->sub_timer);
    n->sub_timer.data = n;
}

void rc__sconn_close(rc__node *n)
{
    uv_timer_stop(&n->sub_timer);
    rc__sconn_detach(n);
    n->sub = RC__DOWN;
    while (n->subs) {
        rc__sub *s = n->subs;
        s->state = RC__SUB_UNSENT;
        rc__sub_unlink(s);
    }
}

/* ---- placement ---------------------------------------------------------- */

/* Takes s off its node, unsubscribing it there if it was sent. */
static void rc__sub_detach(rc__sub *s)
{
    rc__node *n = s->node;
    if (n->sub == RC__UP && s->state != RC__SUB_UNSENT)
        rc__sub_send(n, RC__OP_SUNSUBSCRIBE, s);
    if (s->state == RC__SUB_ACTIVE && !s->dead) {
        s->notify_lost = 1;
        rc__kick(n->c);
    }
    s->state = RC__SUB_UNSENT;
    rc__sub_unlink(s);
}

static void rc__sub_place(rc_cluster *c, rc__sub *s)
{
    rc__node *target = c->slots[s->slot];
    if (s->node != target) {
        if (s->node)
            rc__sub_detach(s);
        if (target)
            rc__sub_link(s, target);
    }
    rc__node *n = s->node;
    if (n == NULL || s->state != RC__SUB_UNSENT)
        return;
    if (n->sub == RC__UP) {
        s->state = RC__SUB_PENDING;
        rc__sub_send(n, RC__OP_SSUBSCRIBE, s);
    } else {
        rc__sconn_ensure(n);
    }
}

void rc__subs_reconcile(rc_cluster *c, int slot)
{
    for (rc__sub *s = c->sub_all; s; s = s->all_next) {
        if (!s->dead && (slot < 0 || s->slot == slot))
            rc__sub_place(c, s);
    }
}

void rc__subs_kick(rc_cluster *c)
{
    rc__sub *s = c->sub_all;
    while (s) {
        rc__sub *next = s->all_next;
        if (s->dead && s->node == NULL) {
            if (s->all_prev)
                s->all_prev->all_next = s->all_next;
            else
                c->sub_all = s->all_next;
            if (s->all_next)
                s->all_next->all_prev = s->all_prev;
            rc__sub_free(s);
        }
        s = next;
    }
    /* Subscriptions are not freed while this runs (only marked dead). */
    for (s = c->sub_all; s; s = s->all_next) {
        if (s->dead || !s->notify_lost)
            continue;
        s->notify_lost = 0;
        s->cb(s->ud, RC_SUB_LOST, s->channel, NULL, 0);
        if (c->closing)
            return;
    }
}

void rc__subs_free_all(rc_cluster *c)
{
    HASH_CLEAR(hh, c->subs);
    rc__sub *s = c->sub_all;
    while (s) {
        rc__sub *next = s->all_next;
        rc__sub_free(s);
        s = next;
    }
    c->sub_all = NULL;
}

/* ---- API ---------------------------------------------------------------- */

int rc_ssubscribe(rc_cluster *c, const char *channel, rc_sub_cb cb, void *ud)
{
    if (c == NULL || channel == NULL || cb == NULL)
        return RC_EINVAL;
    if (c->closing)
        return RC_ECLOSED;
    size_t len = strlen(channel);
    rc__sub *s = NULL;
    HASH_FIND(hh, c->subs, channel, len, s);
    if (s)
        return RC_EEXIST;
    s = mem_calloc(1, sizeof(*s));
    s->channel = mem_strndup(channel, len);
    s->len = len;
    s->slot = rc_slot(channel, len);
    s->cb = cb;
    s->ud = ud;
    s->state = RC__SUB_UNSENT;
    HASH_ADD_KEYPTR(hh, c->subs, s->channel, s->len, s);
    s->all_prev = NULL;
    s->all_next = c->sub_all;
    if (c->sub_all)
        c->sub_all->all_prev = s;
    c->sub_all = s;
    rc__sub_place(c, s);
    if (s->node == NULL)
        rc__refresh_soon(c);
    return 0;
}

int rc_sunsubscribe(rc_cluster *c, const char *channel)
{
    if (c == NULL || channel == NULL)
        return RC_EINVAL;
    if (c->closing)
        return RC_ECLOSED;
    rc__sub *s = NULL;
    HASH_FIND(hh, c->subs, channel, strlen(channel), s);
    if (s == NULL)
        return RC_ENOENT;
    HASH_DEL(c->subs, s);
    s->dead = 1;
    s->notify_lost = 0;
    if (s->node)
        rc__sub_detach(s);
    rc__kick(c);
    return 0;
}
