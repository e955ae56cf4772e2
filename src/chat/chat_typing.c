/* chat_typing.c - typing: {room, isTyping} to the room's other members or
 * {to, isTyping} to one user, never stored. "Other" means every connection
 * but the sender's own: the broadcast skips the sender's "u:" room, so a
 * user's other tabs in the room are skipped too. */
#include "chat/chat_internal.h"

int chat__on_typing(chat_req *r, json_t *payload)
{
    chat_name_t n = {0};
    chat_room *room = NULL;
    chat_user *peer = NULL;
    json_t *room_s = chat__field(payload, "room");
    json_t *to_s = chat__field(payload, "to");
    json_t *typing = json_object_get(payload, "isTyping");
    if (!json_is_object(payload) || !json_is_boolean(typing) ||
        (room_s == NULL) == (to_s == NULL) || (room_s && !json_is_string(room_s)) ||
        (to_s && !json_is_string(to_s)))
        return -CHAT_ERR_INVALID_PAYLOAD;
    const chat_user *me = r->conn->user;
    if (me == NULL)
        return -CHAT_ERR_NOT_JOINED;
    int rc;
    if (room_s) {
        rc = chat__parse_name(room_s, chat_room_parse, CHAT_ERR_INVALID_ROOM, &n);
        if (rc == 0)
            rc = chat__room_of_member(r, n.key, &room);
    } else {
        rc = chat__parse_name(to_s, chat_username_parse, CHAT_ERR_INVALID_USERNAME, &n);
        if (rc == 0 && (peer = chat__user_find(r->c, n.key)) == NULL)
            rc = -CHAT_ERR_USER_NOT_FOUND;
    }
    if (rc != 0)
        goto cleanup;
    json_t *args = room ? json_pack("[{s:s,s:s,s:O}]", "room", room->name, "from", me->name,
                                    "isTyping", typing)
                        : json_pack("[{s:s,s:O}]", "from", me->name, "isTyping", typing);
    if (args == NULL) {
        rc = -CHAT_ERR_INTERNAL;
        goto cleanup;
    }
    const char *target = room ? room->conv : peer->room;
    sio_except except = {.room = me->room};
    r->c->out_typing += sio_broadcast(r->c->nsp, &target, 1, &except, "typing", args);
    json_decref(args);
cleanup:
    chat_name_free(&n);
    return rc;
}
