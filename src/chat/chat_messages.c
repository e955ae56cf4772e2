/* chat_messages.c - message:room and message:private.
 *
 * Both take {<target>, content, clientId?} and share one path once the
 * target is checked: a clientId seen before from the same user answers with
 * the first message's id and timestamp (nothing stored, nothing delivered);
 * otherwise the message and its clientId are written in one batch, and only
 * once the batch is committed is message:receive broadcast (one encoding)
 * to the room, or to the "u:" rooms of both users, so each connection of
 * the sender and of the recipient gets it once.
 *
 * Checks follow the contract's order: shape (content empty or with a
 * refused control, a bad clientId: invalid_payload), not_joined, the
 * target's name, content_too_long, existence, membership. */
#include "chat/chat_internal.h"

#include "util/log.h"
#include "util/mem.h"

typedef struct {
    const char *content;
    size_t content_len;
    const char *client_id; /* NULL when absent; may hold U+0000 */
    size_t client_id_len;
    int too_long;          /* content_too_long, reported after the name */
} chat_body;

/* Where a checked message goes. */
typedef struct {
    const char *conv;
    const char *room;      /* room display name, or NULL */
    const chat_user *to;   /* recipient, or NULL */
    const char *rooms[2];  /* sio rooms to deliver to */
    size_t nrooms;
} chat_dest;

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

/* Stores (message, then clientId) in one batch; 0 or -CHAT_ERR_INTERNAL. */
static int chat_store(chat_server *c, const chat_user *from, const chat_body *b,
                      const chat_dest *d, int64_t ts, char id[STORE_ID_MAX])
{
    store_msg_in_t m = {
        .conv = d->conv,
        .from = from->name,
        .to = d->to ? d->to->name : NULL,
        .content = b->content,
        .content_len = b->content_len,
        .ts_ms = ts,
    };
    uint64_t t0 = uv_hrtime();
    int rc = store_begin(c->store);
    if (rc != 0)
        goto fail;
    rc = store_msg_append(c->store, &m, id);
    if (rc == 0 && b->client_id)
        rc = store_dedupe_put(c->store, from->key, b->client_id, b->client_id_len, id, ts,
                              d->conv, ts + STORE_DEDUPE_TTL_MS);
    if (rc == 0)
        rc = store_commit(c->store);
    chat__store_timed(c, CHAT__LAT_APPEND, t0);
    if (rc == 0)
        return 0;
    store_rollback(c->store);
fail:
    log_error("message not stored", "error=%d", rc);
    return -CHAT_ERR_INTERNAL;
}

static int chat_send(chat_req *r, const chat_body *b, const chat_dest *d)
{
    chat_server *c = r->c;
    const chat_user *from = r->conn->user;
    char id[STORE_ID_MAX];
    int64_t ts = chat__now_ms();
    if (b->client_id) {
        store_dedupe_t seen = {0};
        uint64_t t0 = uv_hrtime();
        int rc = store_dedupe_get(c->store, from->key, b->client_id, b->client_id_len, ts, &seen);
        chat__store_timed(c, CHAT__LAT_DEDUPE, t0);
        if (rc == 0) {
            rc = chat_ack_sent(r, seen.id, seen.ts_ms);
            store_dedupe_free(&seen);
            return rc; /* a retry: already stored and delivered */
        }
        if (rc != STORE_ENOTFOUND)
            return -CHAT_ERR_INTERNAL;
    }
    int rc = chat_store(c, from, b, d, ts, id);
    if (rc != 0)
        return rc;
    /* Stored: from here on the message exists, whatever happens. */
    json_t *msg = chat__msg_json(id, d->room, d->to ? d->to->name : NULL, from->name, b->content,
                                 b->content_len, ts);
    json_t *args = msg ? json_pack("[o]", msg) : NULL;
    if (args)
        c->out_messages += sio_broadcast(c->nsp, d->rooms, d->nrooms, NULL, "message:receive", args);
    else
        log_error("stored message not delivered", "id=%s", id);
    json_decref(args);
    return chat_ack_sent(r, id, ts);
}

int chat__on_message_room(chat_req *r, json_t *payload)
{
    chat_body b = {0};
    chat_name_t n = {0};
    chat_room *room;
    json_t *name = json_object_get(payload, "room");
    if (!json_is_object(payload) || !json_is_string(name))
        return -CHAT_ERR_INVALID_PAYLOAD;
    int rc = chat_body_parse(r->c, payload, &b);
    if (rc == 0 && r->conn->user == NULL)
        rc = -CHAT_ERR_NOT_JOINED;
    if (rc == 0)
        rc = chat__parse_name(name, chat_room_parse, CHAT_ERR_INVALID_ROOM, &n);
    if (rc == 0 && b.too_long)
        rc = -CHAT_ERR_CONTENT_TOO_LONG;
    if (rc == 0)
        rc = chat__room_of_member(r, n.key, &room);
    if (rc == 0) {
        chat_dest d = {.conv = room->conv, .room = room->name, .rooms = {room->conv}, .nrooms = 1};
        rc = chat_send(r, &b, &d);
    }
    chat_name_free(&n);
    return rc;
}

int chat__on_message_private(chat_req *r, json_t *payload)
{
    chat_body b = {0};
    chat_name_t n = {0};
    char *conv = NULL;
    json_t *to = json_object_get(payload, "to");
    if (!json_is_object(payload) || !json_is_string(to))
        return -CHAT_ERR_INVALID_PAYLOAD;
    int rc = chat_body_parse(r->c, payload, &b);
    if (rc == 0 && r->conn->user == NULL)
        rc = -CHAT_ERR_NOT_JOINED;
    if (rc == 0)
        rc = chat__parse_name(to, chat_username_parse, CHAT_ERR_INVALID_USERNAME, &n);
    if (rc == 0 && b.too_long)
        rc = -CHAT_ERR_CONTENT_TOO_LONG;
    chat_user *peer = rc == 0 ? chat__user_find(r->c, n.key) : NULL;
    if (rc == 0 && peer == NULL)
        rc = -CHAT_ERR_USER_NOT_FOUND;
    if (rc == 0) {
        const chat_user *me = r->conn->user;
        conv = store_conv_private(me->key, peer->key);
        chat_dest d = {.conv = conv, .to = peer, .rooms = {me->room, peer->room}, .nrooms = 2};
        rc = chat_send(r, &b, &d);
    }
    mem_free(conv);
    chat_name_free(&n);
    return rc;
}
