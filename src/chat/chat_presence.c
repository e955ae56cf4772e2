/* chat_presence.c - users:update and rooms:update, coalesced.
 *
 * Changes only mark what is stale; one uv_timer sends the full lists, each
 * encoded once for everyone (sio_broadcast). The timer fires as soon as the
 * loop comes back when nothing was sent for presence_delay_ms, else at the
 * end of that window: at most one list of each kind per window, whatever
 * the number of changes (a burst of 1,000 joins is a handful of lists, not
 * a million packets), and since every change re-arms an idle timer, the
 * last state always goes out. Never sending from inside a change also means
 * a list is built after sio has finished the change (a disconnecting socket
 * has left its rooms by then, so the counts are right). */
#include "chat/chat_internal.h"

#include "util/log.h"

static void chat_presence_send(chat_server *c, const char *event, json_t *list)
{
    json_t *args = list ? json_pack("[o]", list) : NULL;
    if (args == NULL) {
        log_warn("presence list not sent", "event=%s", event);
        return;
    }
    size_t n = sio_broadcast(c->nsp, NULL, 0, NULL, event, args);
    if (event[0] == 'u')
        c->out_users += n;
    else
        c->out_rooms += n;
    json_decref(args);
}

static void chat_presence_fire(uv_timer_t *t)
{
    chat_server *c = t->data;
    unsigned what = c->presence_dirty;
    /* Cleared first: a recipient cut off during the broadcast is a change. */
    c->presence_dirty = 0;
    c->presence_last = uv_now(c->loop);
    if (what & CHAT__USERS)
        chat_presence_send(c, "users:update", chat__users_json(c));
    if (what & CHAT__ROOMS) {
        json_t *list = NULL;
        if (chat__rooms_json(c, &list) == 0)
            chat_presence_send(c, "rooms:update", list);
        else
            log_warn("rooms:update not sent", "reason=%s", "store");
    }
}

void chat__presence_init(chat_server *c)
{
    uv_timer_init(c->loop, &c->presence_timer);
    c->presence_timer.data = c;
}

void chat__presence_changed(chat_server *c, unsigned what)
{
    c->presence_dirty |= what;
    if (c->closing || uv_is_active((uv_handle_t *)&c->presence_timer))
        return;
    uint64_t now = uv_now(c->loop);
    uint64_t due = c->presence_last ? c->presence_last + c->cfg.presence_delay_ms : now;
    uv_timer_start(&c->presence_timer, chat_presence_fire, due > now ? due - now : 0, 0);
}
