/* chat_rooms.c - rooms: room:create, room:join, room:leave, rooms:list, and
 * the [{name, users}] list of rooms:update.
 *
 * The store holds the rooms (they survive restarts); this file keeps a cache
 * of the ones seen (key -> display name and conversation) so the hot paths
 * (every message:room, typing) do not read the store. Membership is the sio
 * room named by the room's conversation, so a room's count is
 * sio_room_size of it. */
#include "chat/chat_internal.h"

#include <string.h>

#include "util/mem.h"

static chat_room *chat_room_cache(chat_server *c, const char *key, const char *name)
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
        mem_free(room->key);
        mem_free(room->name);
        mem_free(room->conv);
        mem_free(room);
    }
}

int chat__room_find(chat_server *c, const char *key, chat_room **out)
{
    chat_room *room = NULL;
    HASH_FIND_STR(c->rooms, key, room);
    if (room == NULL) {
        char *name = NULL;
        uint64_t t0 = uv_hrtime();
        int rc = store_room_get(c->store, key, &name);
        chat__store_timed(c, CHAT__LAT_ROOM, t0);
        if (rc == STORE_ENOTFOUND)
            return -CHAT_ERR_ROOM_NOT_FOUND;
        if (rc != 0)
            return -CHAT_ERR_INTERNAL;
        room = chat_room_cache(c, key, name);
        mem_free(name);
    }
    *out = room;
    return 0;
}

int chat__room_of_member(chat_req *r, const char *key, chat_room **out)
{
    int rc = chat__room_find(r->c, key, out);
    if (rc == 0 && !sio_in_room(r->sock, (*out)->conv))
        rc = -CHAT_ERR_NOT_IN_ROOM;
    return rc;
}

static json_t *chat_room_json(chat_server *c, const chat_room *room)
{
    return json_pack("{s:s,s:I}", "name", room->name, "users",
                     (json_int_t)sio_room_size(c->nsp, room->conv));
}

int chat__rooms_json(chat_server *c, json_t **out)
{
    store_room_t *rooms = NULL;
    size_t n = 0;
    *out = NULL;
    uint64_t t0 = uv_hrtime();
    int lrc = store_room_list(c->store, &rooms, &n);
    chat__store_timed(c, CHAT__LAT_ROOM, t0);
    if (lrc != 0)
        return -CHAT_ERR_INTERNAL;
    json_t *list = json_array();
    for (size_t i = 0; i < n && list; i++) {
        chat_room *room = chat_room_cache(c, rooms[i].key, rooms[i].name);
        if (json_array_append_new(list, chat_room_json(c, room)) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    store_rooms_free(rooms, n);
    *out = list;
    return list ? 0 : -CHAT_ERR_INTERNAL;
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
    if (r->c->cfg.max_rooms == 0 || (conv && sio_in_room(r->sock, conv)))
        return 0;
    sio_socket_rooms(r->sock, chat_count_room, &in);
    return in >= r->c->cfg.max_rooms ? -CHAT_ERR_FORBIDDEN : 0;
}

/* Joins r's connection to room (again is fine): room:history to it, the
 * ack's room:{name, users}, rooms:update to all. --max-rooms and
 * --max-members refuse with `forbidden`. */
static int chat_room_enter(chat_req *r, chat_room *room)
{
    json_t *history = NULL;
    int rc = chat_room_quota(r, room->conv);
    if (rc != 0)
        return rc;
    if (r->c->cfg.max_members && !sio_in_room(r->sock, room->conv) &&
        sio_room_size(r->c->nsp, room->conv) >= r->c->cfg.max_members)
        return -CHAT_ERR_FORBIDDEN;
    rc = chat__room_history(r->c, room, &history);
    if (rc != 0)
        return rc;
    sio_join(r->sock, room->conv);
    chat__presence_changed(r->c, CHAT__ROOMS);
    json_t *args = json_pack("[o]", history);
    if (args)
        sio_emit(r->sock, "room:history", args);
    json_decref(args);
    return chat__result_set(r, "room", chat_room_json(r->c, room));
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

int chat__on_room_create(chat_req *r, json_t *payload)
{
    chat_name_t n = {0};
    char *name = NULL;
    int rc = chat_room_name(r, payload, &n);
    if (rc != 0)
        goto cleanup;
    /* Before creating anything: a connection at its quota creates no room. */
    char *conv = store_conv_room(n.key);
    rc = chat_room_quota(r, conv);
    mem_free(conv);
    if (rc != 0)
        goto cleanup;
    uint64_t t0 = uv_hrtime();
    int crc = store_room_create(r->c->store, n.key, n.display, &name, NULL);
    chat__store_timed(r->c, CHAT__LAT_ROOM, t0);
    if (crc != 0) {
        rc = -CHAT_ERR_INTERNAL;
        goto cleanup;
    }
    rc = chat_room_enter(r, chat_room_cache(r->c, n.key, name));
cleanup:
    mem_free(name);
    chat_name_free(&n);
    return rc;
}

int chat__on_room_join(chat_req *r, json_t *payload)
{
    chat_name_t n = {0};
    chat_room *room;
    int rc = chat_room_name(r, payload, &n);
    if (rc == 0)
        rc = chat__room_find(r->c, n.key, &room);
    if (rc == 0)
        rc = chat_room_enter(r, room);
    chat_name_free(&n);
    return rc;
}

int chat__on_room_leave(chat_req *r, json_t *payload)
{
    chat_name_t n = {0};
    chat_room *room;
    int rc = chat_room_name(r, payload, &n);
    if (rc == 0)
        rc = chat__room_of_member(r, n.key, &room);
    if (rc == 0) {
        sio_leave(r->sock, room->conv);
        chat__presence_changed(r->c, CHAT__ROOMS);
    }
    chat_name_free(&n);
    return rc;
}

/* rooms:list: the only event an unnamed connection may send; any payload
 * is ignored. */
int chat__on_rooms_list(chat_req *r, json_t *payload)
{
    json_t *list = NULL;
    int rc = chat__rooms_json(r->c, &list);
    if (rc != 0)
        return rc;
    json_t *args = json_pack("[O]", list);
    if (args)
        sio_emit(r->sock, "rooms:update", args);
    json_decref(args);
    return chat__result_set(r, "rooms", list);
}
