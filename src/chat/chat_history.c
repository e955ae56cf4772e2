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

static void chat_history_read(void *ud, int rc, store_history_t *h)
{
    chat_req *r = ud;
    if (chat__req_resume(r, CHAT__LAT_HISTORY))
        return;
    json_t *messages = NULL;
    if (rc == 0) {
        messages = chat_history_json(h, r->page_room);
        rc = messages ? 0 : -CHAT_ERR_INTERNAL;
    } else {
        rc = rc == STORE_EBADID ? -CHAT_ERR_INVALID_PAYLOAD : -CHAT_ERR_INTERNAL;
    }
    r->page_fn(r, rc, messages, rc == 0 && h->has_more);
}

void chat__history_page(chat_req *r, const char *conv, const char *room, const char *before,
                        size_t limit, chat_page_fn fn)
{
    r->page_fn = fn;
    r->page_room = room;
    chat__req_store(r);
    store_history(r->c->store, conv, before, limit, chat_history_read, r);
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

static void chat_fetched(chat_req *r, int rc, json_t *messages, int has_more)
{
    if (rc == 0)
        rc = chat__result_set(r, "messages", messages); /* stolen either way */
    else
        json_decref(messages);
    if (rc == 0)
        rc = chat__result_set(r, "hasMore", json_boolean(has_more));
    chat__req_done(r, rc);
}

static void chat_fetch_room(chat_req *r, int rc, chat_room *room)
{
    if (rc != 0) {
        chat__req_done(r, rc);
        return;
    }
    chat__history_page(r, room->conv, room->name, r->before, r->limit, chat_fetched);
}

/* `with` resolved: its direct conversation with us; a name nobody owns
 * has none (an empty page, as for a user never talked to). */
static void chat_fetch_with(chat_req *r, int rc, const char *peer_id, const char *peer_name)
{
    if (rc == -CHAT_ERR_USER_NOT_FOUND) {
        chat_fetched(r, 0, json_array(), 0);
        return;
    }
    if (rc != 0) {
        chat__req_done(r, rc);
        return;
    }
    r->conv = store_conv_direct(r->conn->user->id, peer_id);
    chat__history_page(r, r->conv, NULL, r->before, r->limit, chat_fetched);
}

int chat__on_history_fetch(chat_req *r, json_t *payload)
{
    json_t *room_s, *with_s;
    int rc = chat_fetch_shape(payload, &room_s, &with_s, &r->before, &r->limit);
    if (rc == 0 && r->conn->user == NULL)
        rc = -CHAT_ERR_NOT_JOINED;
    if (rc != 0)
        return rc;
    if (room_s) {
        rc = chat__parse_name(room_s, chat_room_parse, CHAT_ERR_INVALID_ROOM, &r->name);
        if (rc != 0)
            return rc;
        chat__room_lookup(r, 1, chat_fetch_room);
        return CHAT__PENDING;
    }
    rc = chat__parse_name(with_s, chat_username_parse, CHAT_ERR_INVALID_USERNAME, &r->name);
    if (rc != 0)
        return rc;
    chat__user_resolve(r, chat_fetch_with);
    return CHAT__PENDING;
}
