/* bus_redis_topic.c - the topics of the Redis bus: watch and unwatch (one
 * SSUBSCRIBE per topic through rc, which follows failovers by itself),
 * publish (one SPUBLISH), the messages of the other nodes handed to
 * on_message, and the bus_watch callbacks waiting for a subscription to
 * become active (BUS_EIO after timeout_ms), and the losses and returns
 * of a watch's subscription handed to on_topic. The claims watch "u:<u>"
 * through here too. */
#include "bus/bus_redis_internal.h"

#include <string.h>

#include "util/log.h"

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

/* Close: every watch callback still due runs with BUS_ECLOSED. New calls
 * from them fail inline (b->closed). */
void bus_redis__watches_close(bus__redis *b)
{
    while (b->waiters) {
        bus__waiter *x = b->waiters;
        bus__waiter_unlink(b, x);
        bus__waiter_run(x, BUS_ECLOSED);
    }
}

/* ---- topics: watch, unwatch, publish --------------------------------------- */

static char *bus__topic_channel(const char *topic)
{
    return bus_redis__cat("parley:{", topic, "}:bus");
}

static void bus__watch_free(bus__watch *w)
{
    mem_free(w->topic);
    mem_free(w->channel);
    mem_free(w);
}

/* Tells the handlers that w was lost or resumed (not after close or an
 * unwatch). The caller holds w (busy) across the call: the handler may
 * unwatch it. */
static void bus__topic_event(bus__redis *b, bus__watch *w, bus_topic_event ev)
{
    if (b->h.on_topic == NULL || b->closed || w->dead)
        return;
    b->h.on_topic(b->hud, w->topic, ev);
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
    case RC_SUB_SUBSCRIBED: {
        int resumed = w->lost;
        w->active = 1;
        w->lost = 0;
        w->busy++;
        bus__watch_settle(b, w, 0);
        if (resumed) {
            log_info("bus watch resumed", "node=%s topic=\"%s\"", b->id, w->topic);
            bus__topic_event(b, w, BUS_TOPIC_RESUMED);
        }
        w->busy--;
        if (w->dead && w->busy == 0)
            bus__watch_free(w);
        break;
    }
    case RC_SUB_LOST:
        log_debug("bus watch lost", "node=%s topic=\"%s\"", b->id, w->topic);
        if (!w->active)
            break; /* never active since the last loss: nothing to report */
        w->active = 0;
        w->lost = 1;
        b->topics_lost++;
        w->busy++;
        bus__topic_event(b, w, BUS_TOPIC_LOST);
        w->busy--;
        if (w->dead && w->busy == 0)
            bus__watch_free(w);
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

void bus_redis__watch_add(bus__redis *b, const char *topic, bus_done_cb cb, void *ud)
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

void bus_redis__unwatch_topic(bus__redis *b, const char *topic)
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

void bus_redis__watches_free(bus__redis *b)
{
    bus__watch *w, *wt;
    HASH_ITER(hh, b->watches, w, wt) {
        HASH_DEL(b->watches, w);
        bus__watch_free(w);
    }
}

static void bus__on_published(void *ud, const redisReply *r, const char *err)
{
    bus__redis *b = ud;
    if (b->closed || !bus_redis__failed(r, err))
        return;
    b->publish_errors++;
    bus_redis__warn(b, "publish", r, err);
}

/* ---- the interface: publish, watch, unwatch --------------------------------- */

void bus_redis__op_publish(bus_t *bb, const char *topic, const char *data, size_t len)
{
    bus__redis *b = bus_redis__self(bb);
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

void bus_redis__op_watch(bus_t *bb, const char *topic, bus_done_cb cb, void *ud)
{
    bus__redis *b = bus_redis__self(bb);
    if (b->closed) {
        if (cb)
            cb(ud, BUS_ECLOSED);
        return;
    }
    bus_redis__watch_add(b, topic, cb, ud);
}

void bus_redis__op_unwatch(bus_t *bb, const char *topic)
{
    bus__redis *b = bus_redis__self(bb);
    if (!b->closed)
        bus_redis__unwatch_topic(b, topic);
}
