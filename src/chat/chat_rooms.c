/* chat_rooms.c - rooms: room:create, room:join, room:leave, rooms:list, and
 * the [{name, users}] list of rooms:update.
 *
 * The store holds the rooms (they survive restarts); this file keeps a cache
 * of the ones seen (key -> display name and conversation) so the hot paths
 * (every message:room, typing) do not wait for the store. The fan-out is
 * the sio room named by the room's conversation, so a room's count is
 * sio_room_size of it.
 *
 * Membership belongs to the user (contract v2): room:create / room:join
 * make the user a member in the store (store_member_add, and the room
 * marked read), room:leave ends it (store_member_remove), and every
 * connection of the user follows: those on this node through their sio
 * room "u:<id>" (chat__user_room_apply), those on other nodes through a
 * control message on the user's topic (chat_cluster.c), and future ones
 * at CONNECT (chat_connect.c reads store_member_rooms first).
 *
 * Entering a room reads its last messages, then joins it (in the history
 * read's completion): the store completes a room's ops in order, so each of
 * its messages is either in that page or delivered after the join. */
#include "chat/chat_internal.h"

#include <string.h>

#include "util/mem.h"

chat_room *chat__room_cache(chat_server *c, const char *key, const char *name)
{
    chat_room *room = NULL;
    HASH_FIND_STR(c->rooms, key, room);
    if (room)
        return room;
    room = mem_calloc(1, sizeof(*room));
    room->key = mem_strdup(key);
    room->name = mem_strdup(name);
    room->conv = store_conv_room(key);
    HASH_ADD_KEYPTR(hh, c->rooms, room->key, strlen(room->key), room);
    return room;
}

void chat__rooms_free(chat_server *c)
{
    chat_room *room, *tmp;
    HASH_ITER(hh, c->rooms, room, tmp) {
        HASH_DEL(c->rooms, room);
        chat__seen_free(&room->seen);
        mem_free(room->key);
        mem_free(room->name);
        mem_free(room->conv);
        mem_free(room);
    }
}

static void chat_room_got(void *ud, int rc, const char *name, int created)
{
    chat_req *r = ud;
    if (chat__req_resume(r, CHAT__LAT_ROOM))
        return;
    chat_room *room = NULL;
    if (rc == 0)
        room = chat__room_cache(r->c, r->name.key, name);
    rc = rc == 0 ? 0 : rc == STORE_ENOTFOUND ? -CHAT_ERR_ROOM_NOT_FOUND : -CHAT_ERR_INTERNAL;
    if (rc == 0 && r->room_member && !chat__in_room(r->conn, room->conv))
        rc = -CHAT_ERR_NOT_IN_ROOM;
    r->room_fn(r, rc, room);
}

void chat__room_lookup(chat_req *r, int member, chat_room_fn fn)
{
    chat_room *room = NULL;
    HASH_FIND_STR(r->c->rooms, r->name.key, room);
    if (room) {
        fn(r, member && !chat__in_room(r->conn, room->conv) ? -CHAT_ERR_NOT_IN_ROOM : 0, room);
        return;
    }
    r->room_fn = fn;
    r->room_member = member;
    chat__req_store(r);
    store_room_get(r->c->store, r->name.key, chat_room_got, r);
}

chat_room *chat__room_member(chat_server *c, const char *key, const char *name)
{
    chat_room *room = chat__room_cache(c, key, name);
    if (!room->watched) {
        /* No wait: what is published before the watch is active is in
         * history, which a connection attached now reads anyway. */
        bus_watch(c->bus, room->conv, NULL, NULL);
        room->watched = 1;
        if (room->seen.floor == 0 && bus_clustered(c->bus))
            chat__seen_start(&room->seen);
    }
    return room;
}

typedef struct {
    chat_server *c;
    const char *conv;
    int join;
} chat_room_apply;

static void chat_room_apply_one(void *ud, sio_socket *s)
{
    chat_room_apply *a = ud;
    chat_conn *conn = sio_socket_data(s);
    if (conn == NULL)
        return;
    if (a->join)
        chat__join(conn, a->conv);
    else
        chat__leave(conn, a->conv);
    chat__session_save(a->c, conn);
}

void chat__user_room_apply(chat_server *c, chat_user *u, chat_room *room, int join)
{
    chat_room_apply a = {c, room->conv, join};
    sio_room_each(c->nsp, u->room, chat_room_apply_one, &a);
    chat__room_report(c, room);
    chat__presence_changed(c, CHAT__ROOMS);
}

static json_t *chat_room_json(chat_server *c, const chat_room *room)
{
    return json_pack("{s:s,s:I}", "name", room->name, "users",
                     (json_int_t)chat__room_size(c, room));
}

json_t *chat__rooms_json(chat_server *c, const store_room_list_t *l)
{
    json_t *list = json_array();
    for (size_t i = 0; i < l->n && list; i++) {
        chat_room *room = chat__room_cache(c, l->rooms[i].key, l->rooms[i].name);
        if (json_array_append_new(list, chat_room_json(c, room)) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    return list;
}

static void chat_count_room(void *ud, const char *room)
{
    if (strncmp(room, "r:", 2) == 0)
        ++*(size_t *)ud;
}

/* --max-rooms: refuses a connection already in that many rooms. */
static int chat_room_quota(chat_req *r, const char *conv)
{
    size_t in = 0;
    if (r->c->cfg.max_rooms == 0 || (conv && chat__in_room(r->conn, conv)))
        return 0;
    chat__conn_rooms(r->conn, chat_count_room, &in);
    return in >= r->c->cfg.max_rooms ? -CHAT_ERR_FORBIDDEN : 0;
}

/* --max-members: refuses a newcomer to a full room. */
static int chat_room_full(chat_req *r, const chat_room *room)
{
    if (r->c->cfg.max_members && !chat__in_room(r->conn, room->conv) &&
        chat__room_size(r->c, room) >= r->c->cfg.max_members)
        return -CHAT_ERR_FORBIDDEN;
    return 0;
}

/* The room is marked read for the user: every connection of the user is
 * in it now, here and on the other nodes. */
static void chat_room_marked(void *ud, int rc, const store_read_t *rd)
{
    chat_req *r = ud;
    if (chat__req_resume(r, CHAT__LAT_ROOM))
        return;
    if (rc != 0) {
        chat__req_done(r, -CHAT_ERR_INTERNAL);
        return;
    }
    chat_user *u = r->conn->user;
    chat__user_room_apply(r->c, u, r->room, 1);
    chat__user_publish_room(r->c, u, r->room, 1);
    chat__req_done(r, chat__result_set(r, "room", chat_room_json(r->c, r->room)));
}

/* The user is a member in the store: joining marks the room read. */
static void chat_room_added(void *ud, int rc, uint64_t n)
{
    chat_req *r = ud;
    if (chat__req_resume(r, CHAT__LAT_ROOM))
        return;
    if (rc != 0) {
        chat__req_done(r, -CHAT_ERR_INTERNAL);
        return;
    }
    chat__req_store(r);
    store_read_mark(r->c->store, r->conn->user->id, r->room->conv, NULL, chat_room_marked, r);
}

/* The history page came: join (the room may have filled up meanwhile),
 * room:history to the joiner, then the membership is stored (and the
 * room marked read) and the user's other connections follow; the ack's
 * room:{name, users}, rooms:update to all. */
static void chat_room_entered(chat_req *r, int rc, json_t *messages, int has_more)
{
    chat_room *room = r->room;
    json_t *history = NULL;
    if (rc == 0)
        rc = chat_room_full(r, room);
    if (rc == 0) {
        history = json_pack("{s:s,s:o,s:b}", "room", room->name, "messages", messages,
                            "hasMore", has_more);
        messages = NULL; /* stolen */
        rc = history ? 0 : -CHAT_ERR_INTERNAL;
    }
    json_decref(messages);
    if (rc != 0) {
        chat__req_done(r, rc);
        return;
    }
    chat__join(r->conn, room->conv);
    chat__room_report(r->c, room);
    chat__session_save(r->c, r->conn);
    chat__presence_changed(r->c, CHAT__ROOMS);
    json_t *args = sio_socket_connected(r->sock) ? json_pack("[O]", history) : NULL;
    if (args)
        sio_emit(r->sock, "room:history", args);
    json_decref(args);
    json_decref(history);
    chat__req_store(r);
    store_member_add(r->c->store, room->key, r->conn->user->id, chat__now_ms(), chat_room_added,
                     r);
}

/* The room's topic is watched: what other nodes deliver to it from now on
 * reaches this node, so the history read next misses nothing. */
static void chat_room_watched(void *ud, int rc)
{
    chat_req *r = ud;
    if (chat__req_resume(r, CHAT__LAT_BUS))
        return;
    if (rc != 0) {
        chat__req_done(r, -CHAT_ERR_INTERNAL);
        return;
    }
    r->room->watched = 1;
    if (r->room->seen.floor == 0)
        chat__seen_start(&r->room->seen);
    chat__history_page(r, r->room->conv, r->room->name, NULL, CHAT__ROOM_HISTORY,
                       chat_room_entered);
}

/* Joins r's connection to room (again is fine), after reading its last
 * messages. --max-rooms and --max-members refuse with `forbidden`. */
static int chat_room_enter(chat_req *r, chat_room *room)
{
    int rc = chat_room_quota(r, room->conv);
    if (rc == 0)
        rc = chat_room_full(r, room);
    if (rc != 0)
        return rc;
    r->room = room;
    if (room->watched) {
        chat__history_page(r, room->conv, room->name, NULL, CHAT__ROOM_HISTORY,
                           chat_room_entered);
        return CHAT__PENDING;
    }
    chat__req_store(r);
    bus_watch(r->c->bus, room->conv, chat_room_watched, r);
    return CHAT__PENDING;
}

/* The shared start of room:create/join/leave: a string payload, a named
 * connection, a valid room name. */
static int chat_room_name(chat_req *r, json_t *payload, chat_name_t *n)
{
    if (!json_is_string(payload))
        return -CHAT_ERR_INVALID_PAYLOAD;
    if (r->conn->user == NULL)
        return -CHAT_ERR_NOT_JOINED;
    return chat__parse_name(payload, chat_room_parse, CHAT_ERR_INVALID_ROOM, n);
}

static void chat_room_created(void *ud, int rc, const char *name, int created)
{
    chat_req *r = ud;
    if (chat__req_resume(r, CHAT__LAT_ROOM))
        return;
    rc = rc == 0 ? chat_room_enter(r, chat__room_cache(r->c, r->name.key, name))
                 : -CHAT_ERR_INTERNAL;
    if (rc != CHAT__PENDING)
        chat__req_done(r, rc);
}

int chat__on_room_create(chat_req *r, json_t *payload)
{
    int rc = chat_room_name(r, payload, &r->name);
    if (rc != 0)
        return rc;
    /* Before creating anything: a connection at its quota creates no room. */
    char *conv = store_conv_room(r->name.key);
    rc = chat_room_quota(r, conv);
    mem_free(conv);
    if (rc != 0)
        return rc;
    chat__req_store(r);
    store_room_create(r->c->store, r->name.key, r->name.display, chat_room_created, r);
    return CHAT__PENDING;
}

static void chat_room_join_found(chat_req *r, int rc, chat_room *room)
{
    if (rc == 0)
        rc = chat_room_enter(r, room);
    if (rc != CHAT__PENDING)
        chat__req_done(r, rc);
}

int chat__on_room_join(chat_req *r, json_t *payload)
{
    int rc = chat_room_name(r, payload, &r->name);
    if (rc != 0)
        return rc;
    chat__room_lookup(r, 0, chat_room_join_found);
    return CHAT__PENDING;
}

/* The membership is over in the store: every connection of the user
 * leaves, here and on the other nodes. */
static void chat_room_removed(void *ud, int rc, uint64_t n)
{
    chat_req *r = ud;
    if (chat__req_resume(r, CHAT__LAT_ROOM))
        return;
    if (rc != 0) {
        chat__req_done(r, -CHAT_ERR_INTERNAL);
        return;
    }
    chat_user *u = r->conn->user;
    chat__leave(r->conn, r->room->conv); /* also when its socket is disconnecting */
    chat__session_save(r->c, r->conn);
    chat__user_room_apply(r->c, u, r->room, 0);
    chat__user_publish_room(r->c, u, r->room, 0);
    chat__req_done(r, 0);
}

static void chat_room_leave_found(chat_req *r, int rc, chat_room *room)
{
    if (rc != 0) {
        chat__req_done(r, rc);
        return;
    }
    r->room = room;
    chat__req_store(r);
    store_member_remove(r->c->store, room->key, r->conn->user->id, chat_room_removed, r);
}

int chat__on_room_leave(chat_req *r, json_t *payload)
{
    int rc = chat_room_name(r, payload, &r->name);
    if (rc != 0)
        return rc;
    chat__room_lookup(r, 1, chat_room_leave_found);
    return CHAT__PENDING;
}

static void chat_rooms_listed(void *ud, int rc, store_room_list_t *l)
{
    chat_req *r = ud;
    if (chat__req_resume(r, CHAT__LAT_ROOM))
        return;
    json_t *list = rc == 0 ? chat__rooms_json(r->c, l) : NULL;
    if (list == NULL) {
        chat__req_done(r, -CHAT_ERR_INTERNAL);
        return;
    }
    json_t *args = sio_socket_connected(r->sock) ? json_pack("[O]", list) : NULL;
    if (args)
        sio_emit(r->sock, "rooms:update", args);
    json_decref(args);
    chat__req_done(r, chat__result_set(r, "rooms", list));
}

/* rooms:list: the only event an unnamed connection may send; any payload
 * is ignored. */
int chat__on_rooms_list(chat_req *r, json_t *payload)
{
    chat__req_store(r);
    store_room_list(r->c->store, chat_rooms_listed, r);
    return CHAT__PENDING;
}
