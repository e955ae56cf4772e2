/* chat_history.c - stored history out to clients: history:fetch (a page of
 * a room or of a private conversation) and the room:history a joiner gets.
 *
 * Pages come from the store oldest first with has_more; message ids are the
 * store's, opaque, and a `before` id is handed back to the store untouched,
 * which alone can tell whether it belongs to the conversation. */
#include "chat/chat_internal.h"

#include <string.h>

#include "util/mem.h"

/* The messages of h as JSON, oldest first; room is the display name for a
 * room conversation, NULL for a private one. NULL when jansson fails. */
static json_t *chat_history_json(const store_history_t *h, const char *room)
{
    json_t *list = json_array();
    for (size_t i = 0; i < h->n && list; i++) {
        const store_msg_t *m = &h->msgs[i];
        json_t *e = chat__msg_json(m->id, room, m->to, m->from, m->content, m->content_len,
                                   m->ts_ms);
        if (json_array_append_new(list, e) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    return list;
}

/* Reads a page of conv: 0 and *messages / *has_more, or a contract error. */
static int chat_history_page(chat_server *c, const char *conv, const char *room,
                             const char *before, size_t limit, json_t **messages, int *has_more)
{
    store_history_t h;
    uint64_t t0 = uv_hrtime();
    int rc = store_history(c->store, conv, before, limit, &h);
    chat__store_timed(c, CHAT__LAT_HISTORY, t0);
    *messages = NULL;
    if (rc == 0) {
        *messages = chat_history_json(&h, room);
        *has_more = h.has_more;
        rc = *messages ? 0 : -CHAT_ERR_INTERNAL;
    } else {
        rc = rc == STORE_EBADID ? -CHAT_ERR_INVALID_PAYLOAD : -CHAT_ERR_INTERNAL;
    }
    store_history_free(&h);
    return rc;
}

int chat__room_history(chat_server *c, const chat_room *room, json_t **out)
{
    json_t *messages;
    int has_more = 0;
    *out = NULL;
    int rc = chat_history_page(c, room->conv, room->name, NULL, CHAT__ROOM_HISTORY, &messages,
                               &has_more);
    if (rc != 0)
        return rc;
    *out = json_pack("{s:s,s:o,s:b}", "room", room->name, "messages", messages, "hasMore",
                     has_more);
    return *out ? 0 : -CHAT_ERR_INTERNAL;
}

/* Shape of {room} | {with}, before?, limit?: 0 or invalid_payload. */
static int chat_fetch_shape(json_t *p, json_t **room, json_t **with, const char **before,
                            size_t *limit)
{
    if (!json_is_object(p))
        return -CHAT_ERR_INVALID_PAYLOAD;
    *room = chat__field(p, "room");
    *with = chat__field(p, "with");
    json_t *b = chat__field(p, "before");
    json_t *l = chat__field(p, "limit");
    if ((*room == NULL) == (*with == NULL) || (*room && !json_is_string(*room)) ||
        (*with && !json_is_string(*with)))
        return -CHAT_ERR_INVALID_PAYLOAD;
    *before = NULL;
    if (b) {
        /* Beyond this, only the store knows whether it is an id of ours. */
        if (!json_is_string(b) || json_string_length(b) == 0 ||
            json_string_length(b) >= STORE_ID_MAX ||
            strlen(json_string_value(b)) != json_string_length(b))
            return -CHAT_ERR_INVALID_PAYLOAD;
        *before = json_string_value(b);
    }
    *limit = CHAT__FETCH_DEFAULT;
    if (l) {
        if (!json_is_integer(l) || json_integer_value(l) < 1 ||
            json_integer_value(l) > CHAT__FETCH_MAX)
            return -CHAT_ERR_INVALID_PAYLOAD;
        *limit = (size_t)json_integer_value(l);
    }
    return 0;
}

int chat__on_history_fetch(chat_req *r, json_t *payload)
{
    json_t *room_s, *with_s, *messages = NULL;
    const char *before;
    size_t limit;
    chat_name_t n = {0};
    chat_room *room = NULL;
    char *conv = NULL;
    int has_more = 0;
    int rc = chat_fetch_shape(payload, &room_s, &with_s, &before, &limit);
    if (rc == 0 && r->conn->user == NULL)
        rc = -CHAT_ERR_NOT_JOINED;
    if (rc != 0)
        goto cleanup;
    if (room_s) {
        rc = chat__parse_name(room_s, chat_room_parse, CHAT_ERR_INVALID_ROOM, &n);
        if (rc == 0)
            rc = chat__room_of_member(r, n.key, &room);
        if (rc == 0)
            rc = chat_history_page(r->c, room->conv, room->name, before, limit, &messages,
                                   &has_more);
    } else {
        /* A user never seen has an empty conversation: no existence check. */
        rc = chat__parse_name(with_s, chat_username_parse, CHAT_ERR_INVALID_USERNAME, &n);
        if (rc == 0) {
            conv = store_conv_private(r->conn->user->key, n.key);
            rc = chat_history_page(r->c, conv, NULL, before, limit, &messages, &has_more);
        }
    }
    if (rc == 0) {
        rc = chat__result_set(r, "messages", messages); /* stolen either way */
        messages = NULL;
    }
    if (rc == 0)
        rc = chat__result_set(r, "hasMore", json_boolean(has_more));
cleanup:
    json_decref(messages);
    mem_free(conv);
    chat_name_free(&n);
    return rc;
}
