/* chat_cluster.c - the chat's side of the bus (bus.h): deliveries that
 * cross to the other nodes, and this node's presence as they see it.
 *
 * A delivery is published as one small JSON object {"e": event, "a": args,
 * "x": except-room or null} on the topic of the room it went to locally
 * ("r:<room>" or "u:<user>"); a node that watches the topic broadcasts it
 * to its own sockets in that room, minus those in room x. The event is
 * encoded once per publication, and once more by each receiving node for
 * all of its recipients. Only the events a delivery can carry are accepted
 * from the bus (message:receive, typing, read:update), plus control
 * messages that reach no client, on a user's topic, published by the node
 * where the store was changed: {"e": "user:rename", "a": [key, name]} (its
 * connections here take the new name) and {"e": "user:room", "a": ["join"
 * or "leave", room key, room name]} (its connections here join or leave
 * the room: membership is the user's). A
 * message:receive is recorded
 * per topic, and waits or is dropped while the topic is replayed after a
 * lost subscription (chat_seen.c).
 *
 * Presence: chat_users.c reports each user's state on this node when it
 * changes (chat__user_report); rooms are reported when a rooms:update is
 * due (chat__rooms_report), with their local counts. The bus's mirror of
 * the other nodes completes users:update and the room counts, and its
 * changes re-arm the presence timer like local ones. */
#include "chat/chat_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* Events another node may ask us to deliver. */
static int chat_cluster_event_ok(const char *e)
{
    return strcmp(e, "message:receive") == 0 || strcmp(e, "typing") == 0 ||
           strcmp(e, "read:update") == 0;
}

/* {"e":"user:rename","a":[key, name]} on topic "u:<id>". 0, or -1 when
 * malformed. */
static int chat_cluster_rename(chat_server *c, const char *topic, const json_t *args)
{
    const char *key = json_string_value(json_array_get(args, 0));
    const char *name = json_string_value(json_array_get(args, 1));
    if (strncmp(topic, "u:", 2) != 0 || key == NULL || name == NULL)
        return -1;
    chat_user *u = chat__user_find(c, topic + 2);
    if (u && (strcmp(u->key, key) != 0 || strcmp(u->name, name) != 0))
        chat__user_rename(c, u, key, name);
    return 0;
}

/* {"e":"user:room","a":["join"|"leave", key, name]} on topic "u:<id>". 0,
 * or -1 when malformed. */
static int chat_cluster_room(chat_server *c, const char *topic, const json_t *args)
{
    const char *what = json_string_value(json_array_get(args, 0));
    const char *key = json_string_value(json_array_get(args, 1));
    const char *name = json_string_value(json_array_get(args, 2));
    if (strncmp(topic, "u:", 2) != 0 || what == NULL || key == NULL || name == NULL)
        return -1;
    chat_user *u = chat__user_find(c, topic + 2);
    if (u == NULL)
        return 0; /* no connection of it here */
    int join = strcmp(what, "join") == 0;
    chat_room *room = join ? chat__room_member(c, key, name) : chat__room_cache(c, key, name);
    chat__user_room_apply(c, u, room, join);
    return 0;
}

static void chat_cluster_control(chat_server *c, const chat_user *u, json_t *m)
{
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    if (text)
        bus_publish(c->bus, u->room, text, strlen(text));
    else
        log_error("control message not published", "user=%s", u->id);
    free(text); /* jansson's allocator */
    json_decref(m);
}

void chat__user_publish_room(chat_server *c, const chat_user *u, const chat_room *room, int join)
{
    if (bus_clustered(c->bus))
        chat_cluster_control(c, u, json_pack("{s:s,s:[s,s,s]}", "e", "user:room", "a",
                                             join ? "join" : "leave", room->key, room->name));
}

void chat__user_publish_rename(chat_server *c, const chat_user *u)
{
    if (!bus_clustered(c->bus))
        return;
    json_t *m = json_pack("{s:s,s:[s,s]}", "e", "user:rename", "a", u->key, u->name);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    if (text)
        bus_publish(c->bus, u->room, text, strlen(text));
    else
        log_error("rename not published", "user=%s", u->id);
    free(text); /* jansson's allocator */
    json_decref(m);
}

static void chat_cluster_on_message(void *ud, const char *topic, const char *data, size_t len)
{
    chat_server *c = ud;
    if (c->closing)
        return;
    json_t *m = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    const char *e = json_string_value(json_object_get(m, "e"));
    json_t *args = json_object_get(m, "a");
    json_t *x = json_object_get(m, "x");
    if (e && json_is_array(args) && strncmp(e, "user:", 5) == 0) {
        int bad = strcmp(e, "user:rename") == 0 ? chat_cluster_rename(c, topic, args)
                  : strcmp(e, "user:room") == 0 ? chat_cluster_room(c, topic, args)
                                                : -1;
        if (bad) {
            c->bus_bad++;
            log_warn("unreadable control message from the bus", "topic=\"%s\"", topic);
        }
        json_decref(m);
        return;
    }
    if (e == NULL || !json_is_array(args) || !chat_cluster_event_ok(e) ||
        (x && !json_is_null(x) && !json_is_string(x))) {
        c->bus_bad++;
        log_warn("unreadable delivery from the bus", "topic=\"%s\" bytes=%zu", topic, len);
        json_decref(m);
        return;
    }
    if (e[0] == 'm' && chat__seen_bus(c, topic, args)) { /* after a replay, or replayed */
        c->bus_in++;
        json_decref(m);
        return;
    }
    sio_except except = {.room = json_string_value(x)};
    size_t n = sio_broadcast(c->nsp, &topic, 1, except.room ? &except : NULL, e, args);
    c->bus_in++;
    if (e[0] == 'm')
        c->out_messages += n;
    else if (e[0] == 't')
        c->out_typing += n;
    json_decref(m);
}

static void chat_cluster_on_presence(void *ud, unsigned what)
{
    chat_server *c = ud;
    if (c->closing)
        return;
    chat__presence_changed(c, ((what & BUS_PRESENCE_USERS) ? CHAT__USERS : 0) |
                                  ((what & BUS_PRESENCE_ROOMS) ? CHAT__ROOMS : 0));
}

void chat__cluster_init(chat_server *c)
{
    bus_handlers h = {.on_message = chat_cluster_on_message,
                      .on_presence = chat_cluster_on_presence,
                      .on_topic = chat__seen_on_topic};
    bus_set_handlers(c->bus, &h, c);
}

void chat__publish(chat_server *c, const char *const *topics, size_t ntopics, const char *event,
                   const json_t *args, const char *except)
{
    if (!bus_clustered(c->bus))
        return;
    /* The payload names no topic: one encoding serves every topic. */
    json_t *m = json_pack("{s:s,s:O,s:s?}", "e", event, "a", args, "x", except);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    for (size_t i = 0; text && i < ntopics; i++)
        bus_publish(c->bus, topics[i], text, strlen(text));
    if (text == NULL)
        log_error("delivery not published", "topic=\"%s\" event=%s", topics[0], event);
    free(text); /* jansson's allocator */
    json_decref(m);
}

uint64_t chat__room_size(chat_server *c, const chat_room *room)
{
    return sio_room_size(c->nsp, room->conv) + bus_room_count(c->bus, room->key);
}

void chat__room_report(chat_server *c, const chat_room *room)
{
    bus_room_set(c->bus, room->key, (uint32_t)sio_room_size(c->nsp, room->conv));
}

void chat__rooms_report(chat_server *c)
{
    if (!bus_clustered(c->bus))
        return;
    uint64_t now = uv_now(c->loop);
    for (chat_room *room = c->rooms; room; room = room->hh.next) {
        size_t n = sio_room_size(c->nsp, room->conv);
        chat__room_report(c, room);
        if (n > 0) {
            room->empty_since = 0;
        } else if (room->empty_since == 0) {
            room->empty_since = now ? now : 1;
        } else if (room->watched && now - room->empty_since > c->cfg.recovery_window_ms) {
            bus_unwatch(c->bus, room->conv);
            room->watched = 0;
            chat__seen_free(&room->seen);
        }
    }
}

void chat__user_report(chat_server *c, const chat_user *u)
{
    bus_user_state_t st = u->nconns ? BUS_USER_ONLINE : u->nkept ? BUS_USER_RESERVED
                                                                 : BUS_USER_GONE;
    bus_user_set(c->bus, u->id, u->name, st); /* presence is keyed by user id */
}

/* ---- session records (connection state recovery across nodes) ----------- */

static int chat_session_kept(const chat_server *c)
{
    return bus_clustered(c->bus) && c->cfg.recovery_window_ms > 0;
}

typedef struct {
    chat_server *c;
    json_t *rooms; /* NULL once jansson failed */
} chat_session_rooms;

static void chat_session_room(void *ud, const char *conv)
{
    chat_session_rooms *sr = ud;
    chat_room *room = NULL;
    if (sr->rooms == NULL || strncmp(conv, "r:", 2) != 0)
        return;
    HASH_FIND_STR(sr->c->rooms, conv + 2, room);
    json_t *e = room ? json_pack("{s:s,s:s}", "conv", conv, "name", room->name) : NULL;
    if (e == NULL || json_array_append_new(sr->rooms, e) != 0) {
        json_decref(sr->rooms);
        sr->rooms = NULL;
    }
}

void chat__session_save(chat_server *c, const chat_conn *conn)
{
    if (!chat_session_kept(c) || conn->user == NULL)
        return;
    char pid[21];
    sio_socket_pid(conn->sock, pid);
    chat_session_rooms sr = {c, json_array()};
    chat__conn_rooms(conn, chat_session_room, &sr);
    json_t *rec = sr.rooms ? json_pack("{s:s,s:s,s:s,s:o}", "sid", sio_socket_id(conn->sock),
                                       "user", conn->user->id, "node",
                                       bus_node_id(c->bus), "rooms", sr.rooms)
                           : NULL;
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    if (text)
        bus_session_put(c->bus, pid, text, strlen(text), c->cfg.recovery_window_ms);
    else
        log_warn("session record not written", "sid=%s", sio_socket_id(conn->sock));
    free(text); /* jansson's allocator */
    json_decref(rec);
}

void chat__session_end(chat_server *c, const chat_conn *conn)
{
    if (!chat_session_kept(c) || conn->user == NULL)
        return;
    char pid[21];
    sio_socket_pid(conn->sock, pid);
    bus_session_del(c->bus, pid);
}

void chat__session_keep(chat_server *c, const chat_conn *conn)
{
    if (!chat_session_kept(c) || conn->user == NULL)
        return;
    char pid[21];
    sio_socket_pid(conn->sock, pid);
    bus_session_keep(c->bus, pid, c->cfg.recovery_window_ms);
}
