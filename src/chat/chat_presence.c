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
 * has left its rooms by then, so the counts are right).
 *
 * rooms:update needs the store's room list: the timer starts that read and
 * its completion sends the list, with the counts of that moment. One read
 * at a time: a window that ends while one is in flight leaves the rooms
 * stale, and the completion re-arms the timer, so the final state still
 * goes out and the lists still come at most one per window. */
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

/* The room list came: the counts are taken now, so they are current. */
static void chat_presence_listed(void *ud, int rc, store_room_list_t *l)
{
    chat_server *c = ud;
    c->pending--;
    c->presence_listing = 0;
    if (c->closing) {
        chat__server_maybe_free(c);
        return;
    }
    chat__store_timed(c, CHAT__LAT_ROOM, c->presence_t0);
    json_t *list = rc == 0 ? chat__rooms_json(c, l) : NULL;
    if (list)
        chat_presence_send(c, "rooms:update", list);
    else
        log_warn("rooms:update not sent", "reason=%s", rc == 0 ? "json" : "store");
    if (c->presence_dirty & CHAT__ROOMS) /* changed meanwhile: one more */
        chat__presence_changed(c, 0);
}

static void chat_presence_fire(uv_timer_t *t)
{
    chat_server *c = t->data;
    unsigned what = c->presence_dirty;
    if (c->presence_listing) /* one list at a time; its completion re-arms */
        what &= ~CHAT__ROOMS;
    /* Cleared first: a recipient cut off during the broadcast is a change. */
    c->presence_dirty &= ~what;
    if (what == 0)
        return;
    c->presence_last = uv_now(c->loop);
    if (what & CHAT__USERS)
        chat_presence_send(c, "users:update", chat__users_json(c));
    if (what & CHAT__ROOMS) {
        chat__rooms_report(c);
        c->presence_listing = 1;
        c->pending++;
        c->presence_t0 = uv_hrtime();
        store_room_list(c->store, chat_presence_listed, c);
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
