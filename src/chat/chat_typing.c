/* chat_typing.c - typing: {room, isTyping} to the room's other members or
 * {to, isTyping} to one user, never stored. "Other" means every connection
 * but the sender's own: the broadcast skips the sender's "u:" room, so a
 * user's other tabs in the room are skipped too. A room this process has
 * not cached yet is looked up in the store first. */
#include "chat/chat_internal.h"

#include "util/mem.h"

/* Sends typing to `target` (a room's conversation or a user's "u:" room). */
static int chat_typing_send(chat_req *r, const chat_room *room, const char *target)
{
    const chat_user *me = r->conn->user;
    json_t *typing = json_object_get(json_array_get(r->args, 0), "isTyping");
    json_t *args = room ? json_pack("[{s:s,s:s,s:O}]", "room", room->name, "from", me->name,
                                    "isTyping", typing)
                        : json_pack("[{s:s,s:O}]", "from", me->name, "isTyping", typing);
    if (args == NULL)
        return -CHAT_ERR_INTERNAL;
    sio_except except = {.room = me->room};
    r->c->out_typing += sio_broadcast(r->c->nsp, &target, 1, &except, "typing", args);
    chat__publish(r->c, &target, 1, "typing", args, me->room);
    json_decref(args);
    return 0;
}

static void chat_typing_room(chat_req *r, int rc, chat_room *room)
{
    chat__req_done(r, rc == 0 ? chat_typing_send(r, room, room->conv) : rc);
}

/* `to` resolved: its "u:<id>" room. */
static void chat_typing_to(chat_req *r, int rc, const char *peer_id, const char *peer_name)
{
    if (rc == 0) {
        char *target = chat__user_room(peer_id);
        rc = chat_typing_send(r, NULL, target);
        mem_free(target);
    }
    chat__req_done(r, rc);
}

int chat__on_typing(chat_req *r, json_t *payload)
{
    json_t *room_s = chat__field(payload, "room");
    json_t *to_s = chat__field(payload, "to");
    json_t *typing = json_object_get(payload, "isTyping");
    if (!json_is_object(payload) || !json_is_boolean(typing) ||
        (room_s == NULL) == (to_s == NULL) || (room_s && !json_is_string(room_s)) ||
        (to_s && !json_is_string(to_s)))
        return -CHAT_ERR_INVALID_PAYLOAD;
    if (r->conn->user == NULL)
        return -CHAT_ERR_NOT_JOINED;
    if (room_s) {
        int rc = chat__parse_name(room_s, chat_room_parse, CHAT_ERR_INVALID_ROOM, &r->name);
        if (rc != 0)
            return rc;
        chat__room_lookup(r, 1, chat_typing_room);
        return CHAT__PENDING;
    }
    int rc = chat__parse_name(to_s, chat_username_parse, CHAT_ERR_INVALID_USERNAME, &r->name);
    if (rc != 0)
        return rc;
    chat__user_resolve(r, chat_typing_to);
    return CHAT__PENDING;
}
