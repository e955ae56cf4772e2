/* store_op.h - what both store backends (store_sqlite.c, store_redis.c)
 * share about one operation: its kind, its typed completion callback, its
 * result, the "store closed" refusal, and completing it (calling the
 * callback with an empty result on error, then freeing what the callback
 * left). Internal to src/store: the chat layer sees store.h only.
 *
 * A backend keeps a store_op_call and a store_op_result in its own op
 * record (no allocation of its own here: completion is on the hot path of
 * every message) and completes it with store_op__complete. */
#ifndef PARLEY_STORE_STORE_OP_H
#define PARLEY_STORE_STORE_OP_H

#include "store/store.h"

/* The kinds of operation, one per callback type of store.h. */
typedef enum {
    STORE_OP_ROOM,   /* store_room_cb: room_create, room_get */
    STORE_OP_LIST,   /* store_room_list_cb: room_list */
    STORE_OP_APPEND, /* store_append_cb: msg_append */
    STORE_OP_PAGE,   /* store_history_cb: history, since */
    STORE_OP_COUNT,  /* store_count_cb: dedupe_purge */
    STORE_OP_CONVS,  /* store_conv_list_cb: private_convs, direct_convs */
    STORE_OP_USER,   /* store_user_cb: user_claim, _ensure, _get, _find, _rename */
    STORE_OP_SECRET, /* store_secret_cb: secret_get */
    STORE_OP_MEMBERS, /* store_member_list_cb: room_members */
    STORE_OP_READ,   /* store_read_cb: read_mark, read_get */
    STORE_OP_MSG,    /* store_msg_cb: msg_get, msg_edit, msg_delete, reaction */
    STORE_OP_INFO,   /* store_room_info_cb: room_info */
} store_op_kind;

/* Who gets the result: the caller's callback, of the kind's type, and ud. */
typedef struct {
    store_op_kind kind;
    union {
        store_room_cb room;
        store_room_list_cb list;
        store_append_cb append;
        store_history_cb page;
        store_count_cb count;
        store_conv_list_cb convs;
        store_user_cb user;
        store_secret_cb secret;
        store_member_list_cb members;
        store_read_cb read;
        store_msg_cb msg;
        store_room_info_cb info;
    } cb;
    void *ud;
} store_op_call;

/* Initialisers of a store_op_call, one per kind. */
#define STORE_OP_CALL_ROOM(f, u) ((store_op_call){STORE_OP_ROOM, {.room = (f)}, (u)})
#define STORE_OP_CALL_LIST(f, u) ((store_op_call){STORE_OP_LIST, {.list = (f)}, (u)})
#define STORE_OP_CALL_APPEND(f, u) ((store_op_call){STORE_OP_APPEND, {.append = (f)}, (u)})
#define STORE_OP_CALL_PAGE(f, u) ((store_op_call){STORE_OP_PAGE, {.page = (f)}, (u)})
#define STORE_OP_CALL_COUNT(f, u) ((store_op_call){STORE_OP_COUNT, {.count = (f)}, (u)})
#define STORE_OP_CALL_CONVS(f, u) ((store_op_call){STORE_OP_CONVS, {.convs = (f)}, (u)})
#define STORE_OP_CALL_USER(f, u) ((store_op_call){STORE_OP_USER, {.user = (f)}, (u)})
#define STORE_OP_CALL_SECRET(f, u) ((store_op_call){STORE_OP_SECRET, {.secret = (f)}, (u)})
#define STORE_OP_CALL_MEMBERS(f, u) ((store_op_call){STORE_OP_MEMBERS, {.members = (f)}, (u)})
#define STORE_OP_CALL_READ(f, u) ((store_op_call){STORE_OP_READ, {.read = (f)}, (u)})
#define STORE_OP_CALL_MSG(f, u) ((store_op_call){STORE_OP_MSG, {.msg = (f)}, (u)})
#define STORE_OP_CALL_INFO(f, u) ((store_op_call){STORE_OP_INFO, {.info = (f)}, (u)})

/* The result of an operation, the member of its kind; owned by the op
 * record until completion lends it to the callback. */
typedef union {
    struct {
        char *name; /* display name (mem_alloc'd), NULL on error */
        int created;
    } room;
    store_room_list_t list;
    store_appended_t append;
    store_history_t page;
    uint64_t count;
    store_conv_list_t convs;
    store_user_t user; /* key and name mem_alloc'd; id "" on error */
    struct {
        uint8_t *bytes; /* mem_alloc'd */
        size_t len;
    } secret;
    store_member_list_t members;
    store_read_t read;
    struct {
        store_msg_t msg;
        int changed;
    } msg;
    store_room_info_t info; /* name and topic mem_alloc'd */
} store_op_result;

/* Frees what res holds for `kind` and zeroes it: the empty result. */
void store_op__clear(store_op_kind kind, store_op_result *res);

/* Completes an operation: with rc != 0, empties res first (a callback
 * never sees a partial result); runs call's callback with rc and res;
 * then frees what the callback left in res (it may have taken a list or
 * page), so res is empty afterwards. */
void store_op__complete(const store_op_call *call, int rc, store_op_result *res);

/* A reply's excerpt of content[0..len): its first STORE_EXCERPT_CP code
 * points (UTF-8, validated when stored), mem_alloc'd. */
char *store_op__excerpt(const char *content, size_t len);

/* Adds one reaction (emoji by username, in reaction order) to m's summary:
 * a new emoji goes last; users keep the first STORE_REACTION_USERS_MAX. */
void store_op__reaction_push(store_msg_t *m, const char *emoji, size_t emoji_len,
                             const char *username, size_t username_len);

/* store_conversations for every backend (store_conversations.c): composed
 * of the backend's member_rooms, direct_convs, read_get, history and
 * user_get, so a backend's ops table points at it. */
void store_op__conversations(store_t *s, const char *user_id, store_conversations_cb cb,
                             void *ud);

/* The refusal every entry point starts with: when store_close has run on
 * s, completes call inline with STORE_ECLOSED and an empty result and
 * returns 1; else returns 0 and the backend goes on. */
static inline int store_op__refused(const store_t *s, const store_op_call *call)
{
    if (!s->closed)
        return 0;
    store_op_result none;
    memset(&none, 0, sizeof(none));
    store_op__complete(call, STORE_ECLOSED, &none);
    return 1;
}

#endif
