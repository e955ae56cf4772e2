/* chat_seen.c - what a bus topic missed during a Redis failover, read back
 * from the store (cluster mode).
 *
 * The bus is at most once: while the subscription of a topic is restored
 * (its master failed over, the connection dropped), what the other nodes
 * publish to it is lost for this node (bus.h), although it is in history.
 * The bus says so (on_topic: BUS_TOPIC_LOST, then BUS_TOPIC_RESUMED), and
 * this file closes the gap for the topics with local members: a room's
 * "r:<key>" (one conversation) and a user's "u:<id>" (its direct
 * conversations).
 *
 * Each such topic keeps a chat_seen (in its chat_room or chat_user, not
 * per connection): the ids of the messages delivered to its local
 * connections lately, whether they came from the bus or from a local
 * sender, and `floor`, a time such that every message stamped after it and
 * delivered here is among those ids. Keeping it costs a copy of the id per
 * delivery and no Redis command; ids leave once they are CHAT__SEEN_MS
 * older than the newest (floor then moves up to them), except while the
 * topic is lost, when nothing leaves (up to CHAT__SEEN_MAX ids).
 *
 * On RESUMED the topic is replayed: one store_since of its conversation
 * from floor (a user: store_direct_convs, every direct conversation of
 * the user, then one store_since from floor for each of them), and
 * every message read that is not among the ids is delivered to the
 * topic's sio room (and so to the recovery log), in store order,
 * conversation by conversation, and added to them. Meanwhile the
 * topic's bus deliveries wait behind the read (so that a client gets the
 * gap before what followed it) and are delivered after it unless the
 * replay had them. The ids replayed stay in `dups` for CHAT__SEEN_MS more:
 * a publication that was still on its way when the store was read (its
 * sender's SPUBLISH waited for the new master) is dropped when it comes.
 * Ids are compared as strings, never ordered: a message is the same
 * message when its id is the same (ids are unique in their conversation,
 * and the Redis store's carry a tag of the conversation).
 *
 * What is still missed: a message stamped more than CHAT__SEEN_MS before
 * the last one delivered here before the loss and published only after
 * the loss (a store append that stalled that long); more than
 * STORE_HISTORY_LIMIT_MAX messages of one conversation after floor (the
 * rest, logged); a direct conversation missing from the user's list (the
 * Redis store's index of them shares the user's slot, and its writes fail
 * while that master is down: a conversation whose first message came then
 * is missing); a read that failed CHAT__REPLAY_TRIES
 * times (logged). A connection that joins a room between the loss and the
 * end of its replay may get in the replay a message its room:history page
 * had. */
#include "chat/chat_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/mem.h"

/* Ids a topic keeps after the newest delivery's time. It covers the time
 * between a message's stamp and its publication (store latency, a retry)
 * and the skew of the backends' clocks. */
#define CHAT__SEEN_MS 3000
/* Ids a topic keeps at most (a very busy room, a long loss). */
#define CHAT__SEEN_MAX 4096
/* Reads of a replay before it gives up (each bounded by the store's
 * timeout). */
#define CHAT__REPLAY_TRIES 3

/* A replay of one topic in flight. It holds the topic's name, never its
 * chat_room or chat_user (a user may go meanwhile): each step finds the
 * topic again and goes on only while its seen->rp is this replay. */
struct chat_replay {
    chat_server *c;
    char *topic;
    int64_t since;    /* the floor when it started */
    json_t *held;     /* message:receive args from the bus, in arrival order */
    json_t *pages;    /* per conversation: [room display name or null, [msgs]] */
    size_t waiting;   /* store reads in flight */
    unsigned tries;
    int failed;
    int again;        /* RESUMED again meanwhile: another replay after this */
};

/* ---- the ids ------------------------------------------------------------------ */

void chat__seen_start(chat_seen *s)
{
    chat__seen_free(s);
    s->floor = chat__now_ms();
}

void chat__seen_free(chat_seen *s)
{
    /* A replay in flight (s->rp) belongs to its store callbacks: they find
     * it orphaned and drop it. */
    mem_free(s->ids);
    mem_free(s->dups);
    memset(s, 0, sizeof(*s));
}

static int chat_seen_has(const chat_seen *s, const char *id)
{
    for (uint32_t i = s->n; i > 0; i--) { /* newest first: replays hit late ids */
        if (strcmp(s->ids[(s->head + i - 1) % s->cap].id, id) == 0)
            return 1;
    }
    return 0;
}

/* Drops the oldest ids that are past the window (none while lost) or over
 * the maximum; floor moves up to each one dropped. */
static void chat_seen_trim(chat_seen *s)
{
    while (s->n > 0) {
        const chat_seen_id *e = &s->ids[s->head];
        int old = !s->lost && e->ts < s->newest - CHAT__SEEN_MS;
        if (!old && s->n < CHAT__SEEN_MAX)
            break;
        if (!old && s->lost)
            log_debug("replay window cut short", "ids=%u", s->n);
        if (e->ts > s->floor)
            s->floor = e->ts;
        s->head = (s->head + 1) % s->cap;
        s->n--;
    }
}

void chat__seen_add(chat_seen *s, const char *id, int64_t ts)
{
    if (s->floor == 0 || strlen(id) >= STORE_ID_MAX)
        return; /* not started: the topic has no local member */
    if (ts > s->newest)
        s->newest = ts;
    chat_seen_trim(s);
    if (s->n == s->cap) { /* grow, unrolling the ring */
        uint32_t cap = s->cap ? s->cap * 2 : 8;
        chat_seen_id *ids = mem_alloc(cap * sizeof(*ids));
        for (uint32_t i = 0; i < s->n; i++)
            ids[i] = s->ids[(s->head + i) % s->cap];
        mem_free(s->ids);
        s->ids = ids;
        s->cap = cap;
        s->head = 0;
    }
    chat_seen_id *e = &s->ids[(s->head + s->n++) % s->cap];
    memcpy(e->id, id, strlen(id) + 1);
    e->ts = ts;
}

static void chat_seen_dup_add(chat_seen *s, const char *id)
{
    s->dups = mem_realloc(s->dups, (s->ndups + 1) * sizeof(*s->dups));
    memcpy(s->dups[s->ndups].id, id, strlen(id) + 1);
    s->dups[s->ndups].ts = 0;
    s->ndups++;
}

/* Whether id was replayed lately (dups expire CHAT__SEEN_MS after). */
static int chat_seen_dup(chat_server *c, chat_seen *s, const char *id)
{
    if (s->ndups == 0)
        return 0;
    if (uv_now(c->loop) > s->dups_until) {
        mem_free(s->dups);
        s->dups = NULL;
        s->ndups = 0;
        return 0;
    }
    for (uint32_t i = 0; i < s->ndups; i++) {
        if (strcmp(s->dups[i].id, id) == 0)
            return 1;
    }
    return 0;
}

chat_seen *chat__seen_of(chat_server *c, const char *topic, const char **room_name)
{
    if (strncmp(topic, "r:", 2) == 0) {
        chat_room *room = NULL;
        HASH_FIND_STR(c->rooms, topic + 2, room);
        if (room && room_name)
            *room_name = room->name;
        return room ? &room->seen : NULL;
    }
    if (strncmp(topic, "u:", 2) == 0) {
        chat_user *u = chat__user_find(c, topic + 2);
        if (room_name)
            *room_name = NULL;
        return u ? &u->seen : NULL;
    }
    return NULL;
}

/* The id and timestamp of a message:receive's args ([{id, timestamp, ...}]). */
static const char *chat_args_id(const json_t *args, int64_t *ts)
{
    const json_t *m = json_array_get(args, 0);
    *ts = (int64_t)json_integer_value(json_object_get(m, "timestamp"));
    return json_string_value(json_object_get(m, "id"));
}

int chat__seen_bus(chat_server *c, const char *topic, json_t *args)
{
    chat_seen *s = chat__seen_of(c, topic, NULL);
    int64_t ts;
    const char *id = chat_args_id(args, &ts);
    if (s == NULL || id == NULL)
        return 0;
    if (s->rp) { /* after the replay */
        json_array_append(s->rp->held, args);
        return 1;
    }
    if (chat_seen_dup(c, s, id)) {
        c->replay_dups++;
        return 1;
    }
    chat__seen_add(s, id, ts);
    return 0;
}

/* ---- the replay ------------------------------------------------------------- */

static void chat_replay_start(chat_server *c, const char *topic, chat_seen *s, json_t *held,
                              unsigned tries);

static void chat_replay_free(chat_replay *rp)
{
    mem_free(rp->topic);
    json_decref(rp->held);
    json_decref(rp->pages);
    mem_free(rp);
}

/* rp's topic, if rp is still its replay (the user may be gone, the server
 * closing). */
static chat_seen *chat_replay_seen(chat_replay *rp, const char **room_name)
{
    if (rp->c->closing)
        return NULL;
    chat_seen *s = chat__seen_of(rp->c, rp->topic, room_name);
    return s && s->rp == rp ? s : NULL;
}

/* Records and delivers one message:receive of rp's topic. Returns the
 * topic's chat_seen again, or NULL when it went meanwhile (a recipient cut
 * off as a slow consumer may take its user with it). */
static chat_seen *chat_replay_emit(chat_replay *rp, chat_seen *s, json_t *args)
{
    int64_t ts;
    const char *id = chat_args_id(args, &ts);
    if (id)
        chat__seen_add(s, id, ts);
    const char *topic = rp->topic;
    rp->c->out_messages += sio_broadcast(rp->c->nsp, &topic, 1, NULL, "message:receive", args);
    return chat_replay_seen(rp, NULL);
}

/* Delivers what the reads found that the topic has not had, then what the
 * bus brought meanwhile unless it was replayed. Returns s, or NULL when the
 * topic went during a delivery. */
static chat_seen *chat_replay_deliver(chat_replay *rp, chat_seen *s)
{
    chat_server *c = rp->c;
    size_t i, j, replayed = 0, held = 0;
    json_t *page, *m;
    s->dups_until = uv_now(c->loop) + CHAT__SEEN_MS;
    json_array_foreach(rp->pages, i, page) {
        json_array_foreach(json_array_get(page, 1), j, m) {
            const char *id = json_string_value(json_object_get(m, "id"));
            json_t *args = id && !chat_seen_has(s, id) ? json_pack("[O]", m) : NULL;
            if (args == NULL)
                continue;
            chat_seen_dup_add(s, id);
            s = chat_replay_emit(rp, s, args);
            json_decref(args);
            replayed++;
            if (s == NULL)
                goto out;
        }
    }
    json_array_foreach(rp->held, i, m) {
        int64_t ts;
        const char *id = chat_args_id(m, &ts);
        if (id && chat_seen_has(s, id)) {
            c->replay_dups++;
            continue;
        }
        held++;
        if ((s = chat_replay_emit(rp, s, m)) == NULL)
            goto out;
    }
out:
    c->replayed += replayed;
    log_info("topic replayed after a lost subscription",
             "topic=\"%s\" replayed=%zu held=%zu failed=%d", rp->topic, replayed, held,
             rp->failed);
    return s;
}

/* Every read of rp is in (or failed): deliver, then end or go again. */
static void chat_replay_done(chat_replay *rp)
{
    chat_server *c = rp->c;
    chat_seen *s = chat_replay_seen(rp, NULL);
    if (s && rp->failed && !rp->again && ++rp->tries < CHAT__REPLAY_TRIES) {
        log_warn("topic replay read failed, again", "topic=\"%s\" try=%u", rp->topic,
                 rp->tries);
        s->rp = NULL;
        chat_replay_start(c, rp->topic, s, rp->held, rp->tries); /* held still wait */
        rp->held = NULL;
        chat_replay_free(rp);
        return;
    }
    if (s) {
        if (rp->failed)
            log_warn("topic not replayed: its messages missed while lost stay missed",
                     "topic=\"%s\"", rp->topic);
        s = chat_replay_deliver(rp, s);
    }
    if (s) {
        s->rp = NULL;
        if (rp->again)
            chat_replay_start(c, rp->topic, s, NULL, 0);
        else if (!s->down)
            s->lost = 0;
    }
    chat_replay_free(rp);
}

/* A step of rp ended: the last one ends the replay. The server outlives
 * it (c->pending). */
static void chat_replay_step(chat_replay *rp)
{
    chat_server *c = rp->c;
    c->pending--;
    if (--rp->waiting > 0)
        return;
    if (c->closing) {
        chat_replay_free(rp);
        chat__server_maybe_free(c);
        return;
    }
    chat_replay_done(rp);
}

typedef struct {
    chat_replay *rp;
    size_t page; /* index in rp->pages */
} chat_replay_rd;

static void chat_replay_read_done(void *ud, int rc, store_history_t *h)
{
    chat_replay_rd *rd = ud;
    chat_replay *rp = rd->rp;
    json_t *page = json_array_get(rp->pages, rd->page);
    json_t *msgs = json_array_get(page, 1);
    const char *room = json_string_value(json_array_get(page, 0));
    if (rc != 0) {
        rp->failed = 1;
    } else if (h->has_more) {
        log_warn("topic replay cut at the read limit", "topic=\"%s\" limit=%d", rp->topic,
                 STORE_HISTORY_LIMIT_MAX);
    }
    for (size_t i = 0; rc == 0 && i < h->n; i++) {
        const store_msg_t *m = &h->msgs[i];
        json_t *j = chat__msg_json(m->id, room, m->to, m->from, m->content, m->content_len,
                                   m->ts_ms);
        if (j == NULL || json_array_append_new(msgs, j) != 0)
            rp->failed = 1;
    }
    mem_free(rd);
    chat_replay_step(rp);
}

/* Reads conv from rp->since into a new page of rp (room: the display name
 * of its messages, NULL for a private conversation). */
static void chat_replay_read(chat_replay *rp, const char *conv, const char *room)
{
    json_t *page = json_pack("[s?,[]]", room);
    if (page == NULL || json_array_append_new(rp->pages, page) != 0) {
        rp->failed = 1;
        return;
    }
    chat_replay_rd *rd = mem_calloc(1, sizeof(*rd));
    rd->rp = rp;
    rd->page = json_array_size(rp->pages) - 1;
    rp->waiting++;
    rp->c->pending++;
    store_since(rp->c->store, conv, rp->since, STORE_HISTORY_LIMIT_MAX, chat_replay_read_done,
                rd);
}

static void chat_replay_convs(void *ud, int rc, store_conv_list_t *l)
{
    chat_replay *rp = ud;
    if (rc != 0)
        rp->failed = 1;
    for (size_t i = 0; rc == 0 && !rp->c->closing && i < l->n; i++)
        chat_replay_read(rp, l->convs[i], NULL);
    chat_replay_step(rp);
}

/* Starts a replay of topic (whose chat_seen is s) from s->floor. held: bus
 * deliveries already waiting (stolen), or NULL; tries: reads failed so far. */
static void chat_replay_start(chat_server *c, const char *topic, chat_seen *s, json_t *held,
                              unsigned tries)
{
    const char *room = NULL;
    chat__seen_of(c, topic, &room);
    chat_replay *rp = mem_calloc(1, sizeof(*rp));
    rp->c = c;
    rp->topic = mem_strdup(topic);
    rp->since = s->floor;
    rp->held = held ? held : json_array();
    rp->pages = json_array();
    rp->tries = tries;
    s->rp = rp;
    if (tries == 0)
        c->replays++;
    if (rp->held == NULL || rp->pages == NULL) {
        log_error("topic not replayed", "topic=\"%s\"", topic);
        s->rp = NULL;
        s->lost = s->down;
        chat_replay_free(rp);
        return;
    }
    rp->waiting = 1; /* this function's own step */
    c->pending++;
    if (room) {
        chat_replay_read(rp, topic, room);
        chat_replay_step(rp);
    } else {
        rp->waiting++;
        c->pending++;
        /* Every direct conversation of the user, whatever its age: the
         * list cannot tell which had messages after floor. */
        store_direct_convs(c->store, topic + 2, chat_replay_convs, rp);
        chat_replay_step(rp);
    }
}

void chat__seen_on_topic(void *ud, const char *topic, bus_topic_event ev)
{
    chat_server *c = ud;
    chat_seen *s = c->closing ? NULL : chat__seen_of(c, topic, NULL);
    if (s == NULL || s->floor == 0)
        return; /* no local member: nothing to make up for */
    if (ev == BUS_TOPIC_LOST) {
        s->lost = 1;
        s->down = 1;
        return;
    }
    s->down = 0;
    if (s->rp)
        s->rp->again = 1;
    else
        chat_replay_start(c, topic, s, NULL, 0);
}
