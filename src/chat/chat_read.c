/* chat_read.c - read state (contract v2): read:mark, the read:update it
 * sends to the user's other connections, and conversations:list.
 *
 * The store keeps, per user and conversation, the last message marked read
 * and computes unread counts when asked (store.h, "read state"); nothing
 * is written per message. read:mark {room, id} or {with, id} marks a
 * conversation of the user read up to a message of it (message_not_found
 * for any other id); when the mark moved, read:update {room | with,
 * lastReadId, unread} goes to every other connection of the user: here
 * through its sio room "u:<id>" minus the sender's socket, on the other
 * nodes through the user's topic (chat_cluster.c accepts read:update).
 * conversations:list answers the user's rooms and direct conversations,
 * most recent activity first. */
#include "chat/chat_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/mem.h"

/* ---- read:mark ---------------------------------------------------------------- */

static void chat_read_marked(void *ud, int rc, const store_read_t *rd)
{
    chat_req *r = ud;
    if (chat__req_resume(r, CHAT__LAT_ROOM))
        return;
    if (rc != 0) {
        chat__req_done(r, rc == STORE_ENOTFOUND || rc == STORE_EBADID
                              ? -CHAT_ERR_MESSAGE_NOT_FOUND
                              : -CHAT_ERR_INTERNAL);
        return;
    }
    if (rd->changed && r->conn->user) {
        chat_server *c = r->c;
        const chat_user *u = r->conn->user;
        json_t *upd = r->room ? json_pack("{s:s}", "room", r->room->name)
                              : json_pack("{s:s}", "with", r->page_room);
        if (upd && json_object_set_new(upd, "lastReadId", json_string(rd->last_read)) == 0 &&
            json_object_set_new(upd, "unread", json_integer((json_int_t)rd->unread)) == 0) {
            json_t *args = json_pack("[o]", upd);
            upd = NULL;
            sio_except except = {.socket = r->sock};
            const char *room = u->room;
            if (args) {
                sio_broadcast(c->nsp, &room, 1, &except, "read:update", args);
                chat__publish(c, &room, 1, "read:update", args, NULL);
            }
            json_decref(args);
        }
        json_decref(upd);
    }
    chat__req_done(r, chat__result_set(r, "unread", json_integer((json_int_t)rd->unread)));
}

static void chat_read_mark_conv(chat_req *r, const char *conv)
{
    chat__req_store(r);
    store_read_mark(r->c->store, r->conn->user->id, conv, r->before, chat_read_marked, r);
}

static void chat_read_room(chat_req *r, int rc, chat_room *room)
{
    if (rc != 0) {
        chat__req_done(r, rc);
        return;
    }
    r->room = room;
    chat_read_mark_conv(r, room->conv);
}

static void chat_read_with(chat_req *r, int rc, const char *peer_id, const char *peer_name)
{
    if (rc != 0) {
        chat__req_done(r, rc);
        return;
    }
    r->conv = store_conv_direct(r->conn->user->id, peer_id);
    /* `with` in read:update: the name the client used for the peer, shown
     * as it is now. */
    r->msg = json_string(peer_name);
    r->page_room = json_string_value(r->msg);
    if (r->page_room == NULL) {
        chat__req_done(r, -CHAT_ERR_INTERNAL);
        return;
    }
    chat_read_mark_conv(r, r->conv);
}

/* read:mark {room, id} | {with, id}. */
int chat__on_read_mark(chat_req *r, json_t *payload)
{
    if (!json_is_object(payload))
        return -CHAT_ERR_INVALID_PAYLOAD;
    json_t *room_s = chat__field(payload, "room");
    json_t *with_s = chat__field(payload, "with");
    json_t *id = json_object_get(payload, "id");
    if ((room_s == NULL) == (with_s == NULL) || (room_s && !json_is_string(room_s)) ||
        (with_s && !json_is_string(with_s)) || !json_is_string(id) ||
        json_string_length(id) == 0 ||
        strlen(json_string_value(id)) != json_string_length(id))
        return -CHAT_ERR_INVALID_PAYLOAD;
    if (r->conn->user == NULL)
        return -CHAT_ERR_NOT_JOINED;
    int rc = room_s ? chat__parse_name(room_s, chat_room_parse, CHAT_ERR_INVALID_ROOM, &r->name)
                    : chat__parse_name(with_s, chat_username_parse, CHAT_ERR_INVALID_USERNAME,
                                       &r->name);
    if (rc != 0)
        return rc;
    if (json_string_length(id) >= STORE_ID_MAX)
        return -CHAT_ERR_MESSAGE_NOT_FOUND; /* no id of ours is that long */
    r->before = json_string_value(id); /* the id to mark, pointing into args */
    if (room_s)
        chat__room_lookup(r, 1, chat_read_room);
    else
        chat__user_resolve(r, chat_read_with);
    return CHAT__PENDING;
}

/* ---- conversations:list ------------------------------------------------------- */

static int64_t chat_conv_activity(const store_conversation_t *cv)
{
    return cv->has_last ? cv->last.ts_ms : cv->joined_ms;
}

static int chat_conv_cmp(const void *a, const void *b)
{
    int64_t ta = chat_conv_activity(a), tb = chat_conv_activity(b);
    return ta > tb ? -1 : ta < tb; /* most recent first */
}

/* One entry: {type, room | with, role?, unread, lastMessage}. */
static json_t *chat_conv_json(chat_server *c, const store_conversation_t *cv)
{
    int room = cv->type == STORE_CONV_ROOM;
    json_t *last = json_null();
    if (cv->has_last) {
        const store_msg_t *m = &cv->last;
        last = chat__msg_json(m->id, room ? cv->name : NULL, m->to, m->from, m->content,
                              m->content_len, m->ts_ms);
    }
    if (last == NULL)
        return NULL;
    static const char *const roles[] = {"member", "moderator", "owner"};
    const char *role = cv->role >= STORE_ROLE_MEMBER && cv->role <= STORE_ROLE_OWNER
                           ? roles[cv->role]
                           : "member";
    json_t *e = room ? json_pack("{s:s,s:s,s:s}", "type", "room", "room", cv->name, "role", role)
                     : json_pack("{s:s,s:s}", "type", "private", "with", cv->name);
    if (e == NULL || json_object_set_new(e, "unread", json_integer((json_int_t)cv->unread)) != 0 ||
        json_object_set_new(e, "lastMessage", last) != 0) {
        json_decref(e);
        return NULL;
    }
    return e;
}

static void chat_conversations_listed(void *ud, int rc, store_conversations_t *l)
{
    chat_req *r = ud;
    if (chat__req_resume(r, CHAT__LAT_HISTORY))
        return;
    if (rc != 0) {
        log_error("conversations not listed", "error=%d", rc);
        chat__req_done(r, -CHAT_ERR_INTERNAL);
        return;
    }
    qsort(l->convs, l->n, sizeof(*l->convs), chat_conv_cmp);
    json_t *list = json_array();
    for (size_t i = 0; i < l->n && list; i++) {
        if (l->convs[i].type == STORE_CONV_DIRECT && l->convs[i].name[0] == '\0')
            continue; /* a peer that is gone */
        if (json_array_append_new(list, chat_conv_json(r->c, &l->convs[i])) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    chat__req_done(r, chat__result_set(r, "conversations", list));
}

int chat__on_conversations_list(chat_req *r, json_t *payload)
{
    if (r->conn->user == NULL)
        return -CHAT_ERR_NOT_JOINED;
    chat__req_store(r);
    store_conversations(r->c->store, r->conn->user->id, chat_conversations_listed, r);
    return CHAT__PENDING;
}
