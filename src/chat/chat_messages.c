/* chat_messages.c - message:room and message:private.
 *
 * Both take {<target>, content, clientId?} and share one path once the
 * target is checked: one store_msg_append with the clientId, after which
 * either the clientId was seen before from the same user (the ack carries
 * the first message's id and timestamp; nothing stored, nothing delivered)
 * or the message is durable, and only then is message:receive broadcast
 * (one encoding) to the room, or to the "u:<id>" rooms of both users
 * (online or not: a private message goes to the direct conversation of
 * the two user ids, store_conv_direct), so each
 * connection of the sender and of the recipient gets it once; then the
 * same delivery is published on the bus to the topic of each of those
 * rooms, for the other nodes' connections (chat_cluster.c). The
 * message:receive is built before the store op (with the names as they are
 * when it is stored) and gets its id when the store answers.
 *
 * Checks follow the contract's order: shape (content empty or with a
 * refused control, a bad clientId: invalid_payload), not_joined, the
 * target's name, content_too_long, existence, membership. */
#include "chat/chat_internal.h"

#include <string.h>

#include "util/log.h"
#include "util/mem.h"

json_t *chat__msg_json(const char *id, const char *room, const char *to, const char *from,
                       const char *content, size_t content_len, int64_t ts_ms)
{
    json_t *m = json_pack("{s:s,s:s}", "id", id, "type", room ? "room" : "private");
    if (m == NULL)
        return NULL;
    int bad = 0;
    if (room)
        bad |= json_object_set_new(m, "room", json_string(room));
    else
        bad |= json_object_set_new(m, "to", json_string(to ? to : ""));
    bad |= json_object_set_new(m, "from", json_string(from));
    bad |= json_object_set_new(m, "content", json_stringn(content, content_len));
    bad |= json_object_set_new(m, "timestamp", json_integer(ts_ms));
    if (bad) {
        json_decref(m);
        return NULL;
    }
    return m;
}

/* The invalid_payload part of content and clientId. p must be an object
 * (any other type has been refused already). */
static int chat_body_parse(chat_server *c, json_t *p, chat_body *b)
{
    json_t *content = json_object_get(p, "content");
    json_t *cid = chat__field(p, "clientId");
    if (!json_is_string(content) || (cid && !json_is_string(cid)))
        return -CHAT_ERR_INVALID_PAYLOAD;
    b->content = json_string_value(content);
    b->content_len = json_string_length(content);
    int rc = chat_content_check(b->content, b->content_len, c->cfg.max_content);
    b->too_long = rc == CHAT_VALID_TOO_LONG;
    if (rc < 0 && !b->too_long)
        return -(int)chat_validate_err(CHAT_FIELD_CONTENT, rc);
    if (cid) {
        b->client_id = json_string_value(cid);
        b->client_id_len = json_string_length(cid);
        rc = chat_client_id_check(b->client_id, b->client_id_len);
        if (rc < 0)
            return -(int)chat_validate_err(CHAT_FIELD_CLIENT_ID, rc);
    }
    return 0;
}

static int chat_ack_sent(chat_req *r, const char *id, int64_t ts_ms)
{
    int rc = chat__result_set(r, "id", json_string(id));
    return rc ? rc : chat__result_set(r, "timestamp", json_integer(ts_ms));
}

/* Cluster mode: the topics of the local delivery record it, so that a
 * replay after a lost subscription does not deliver it again (chat_seen.c). */
static void chat_sent_seen(chat_req *r, const store_appended_t *res)
{
    chat_server *c = r->c;
    if (!bus_clustered(c->bus))
        return;
    if (r->room) {
        chat__seen_add(&r->room->seen, res->id, res->ts_ms);
        return;
    }
    chat_user *from = r->conn->user, *to = chat__user_find(c, r->peer_room + 2);
    if (from)
        chat__seen_add(&from->seen, res->id, res->ts_ms);
    if (to && to != from)
        chat__seen_add(&to->seen, res->id, res->ts_ms);
}

static void chat_sent(void *ud, int rc, const store_appended_t *res)
{
    chat_req *r = ud;
    if (chat__req_resume(r, CHAT__LAT_APPEND))
        return;
    chat_server *c = r->c;
    if (rc != 0) {
        log_error("message not stored", "error=%d", rc);
        chat__req_done(r, -CHAT_ERR_INTERNAL);
        return;
    }
    if (res->duplicate) { /* a retry: already stored and delivered */
        chat__req_done(r, chat_ack_sent(r, res->id, res->ts_ms));
        return;
    }
    /* Stored: from here on the message exists, whatever happens. */
    json_t *args = NULL;
    if (json_object_set_new(r->msg, "id", json_string(res->id)) == 0)
        args = json_pack("[O]", r->msg);
    if (args) {
        const char *rooms[2] = {r->room ? r->room->conv : r->conn->user->room, r->peer_room};
        size_t nrooms = r->room || strcmp(rooms[0], rooms[1]) == 0 ? 1 : 2;
        chat_sent_seen(r, res);
        c->out_messages += sio_broadcast(c->nsp, rooms, nrooms, NULL, "message:receive", args);
        chat__publish(c, rooms, nrooms, "message:receive", args, NULL);
    } else {
        log_error("stored message not delivered", "id=%s", res->id);
    }
    json_decref(args);
    chat__req_done(r, chat_ack_sent(r, res->id, res->ts_ms));
}

/* Stores r's message in conv (room: r->room; private: to, whose "u:" room
 * is r->peer_room), then chat_sent delivers it. */
static int chat_send(chat_req *r, const char *conv, const char *to)
{
    const chat_user *from = r->conn->user;
    const chat_body *b = &r->body;
    int64_t ts = chat__now_ms();
    /* "id" first, as in history entries; its value comes with the store's. */
    r->msg = chat__msg_json("", r->room ? r->room->name : NULL, to, from->name, b->content,
                            b->content_len, ts);
    if (r->msg == NULL)
        return -CHAT_ERR_INTERNAL;
    store_msg_in_t m = {
        .conv = conv,
        .from = from->name,
        .to = to,
        .content = b->content,
        .content_len = b->content_len,
        .ts_ms = ts,
        .from_id = from->id,
    };
    store_dedupe_in_t d = {
        .user_key = from->id, /* per user, whatever its name */
        .client_id = b->client_id,
        .client_id_len = b->client_id_len,
        .expires_ms = ts + STORE_DEDUPE_TTL_MS,
    };
    chat__req_store(r);
    store_msg_append(r->c->store, &m, b->client_id ? &d : NULL, chat_sent, r);
    return CHAT__PENDING;
}

static void chat_room_target(chat_req *r, int rc, chat_room *room)
{
    if (rc == 0) {
        r->room = room;
        rc = chat_send(r, room->conv, NULL);
    }
    if (rc != CHAT__PENDING)
        chat__req_done(r, rc);
}

int chat__on_message_room(chat_req *r, json_t *payload)
{
    json_t *name = json_object_get(payload, "room");
    if (!json_is_object(payload) || !json_is_string(name))
        return -CHAT_ERR_INVALID_PAYLOAD;
    int rc = chat_body_parse(r->c, payload, &r->body);
    if (rc == 0 && r->conn->user == NULL)
        rc = -CHAT_ERR_NOT_JOINED;
    if (rc == 0)
        rc = chat__parse_name(name, chat_room_parse, CHAT_ERR_INVALID_ROOM, &r->name);
    if (rc == 0 && r->body.too_long)
        rc = -CHAT_ERR_CONTENT_TOO_LONG;
    if (rc != 0)
        return rc;
    chat__room_lookup(r, 1, chat_room_target);
    return CHAT__PENDING;
}

/* `to` resolved: stores the message in the direct conversation of the two
 * ids. */
static void chat_private_resolved(chat_req *r, int rc, const char *peer_id, const char *peer_name)
{
    if (rc == 0 && r->conn->user) {
        /* The peer may go meanwhile: keep what we need. */
        r->conv = store_conv_direct(r->conn->user->id, peer_id);
        r->peer_room = chat__user_room(peer_id);
        rc = chat_send(r, r->conv, peer_name);
    } else if (rc == 0) {
        rc = -CHAT_ERR_NOT_JOINED;
    }
    if (rc != CHAT__PENDING)
        chat__req_done(r, rc);
}

int chat__on_message_private(chat_req *r, json_t *payload)
{
    json_t *to = json_object_get(payload, "to");
    if (!json_is_object(payload) || !json_is_string(to))
        return -CHAT_ERR_INVALID_PAYLOAD;
    int rc = chat_body_parse(r->c, payload, &r->body);
    if (rc == 0 && r->conn->user == NULL)
        rc = -CHAT_ERR_NOT_JOINED;
    if (rc == 0)
        rc = chat__parse_name(to, chat_username_parse, CHAT_ERR_INVALID_USERNAME, &r->name);
    if (rc == 0 && r->body.too_long)
        rc = -CHAT_ERR_CONTENT_TOO_LONG;
    if (rc != 0)
        return rc;
    /* Online or not: any live user owning the name (cached when it has
     * connections here, else one store read). */
    chat__user_resolve(r, chat_private_resolved);
    return CHAT__PENDING;
}
