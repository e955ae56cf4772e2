/* chat_internal.h - what the files of the chat module share, and nothing
 * outside it includes.
 *
 * Layout of the module:
 *   chat_server.c    creation, the sio handlers, event dispatch, rate limit,
 *                    replies and errors
 *   chat_users.c     identity (token or user:join) and the online users
 *   chat_presence.c  the one timer that coalesces users:update/rooms:update
 *   chat_rooms.c     rooms: create, join, leave, list, counts
 *   chat_messages.c  message:room and message:private (dedupe, store, deliver)
 *   chat_history.c   history:fetch and room:history
 *   chat_typing.c    typing
 *
 * Socket.IO rooms carry the fan-out: every connection of a user is in the
 * sio room "u:<user key>", every member of a chat room in "r:<room key>"
 * (the room's store conversation name, reused as its sio room name). So a
 * private message is one sio_broadcast to two rooms, and "every connection
 * of the sender" is one sio_except.
 *
 * Error convention: handlers return 0 or -CHAT_ERR_x (chat_validate.h), the
 * first error of the contract's precedence order they meet. Memory: our own
 * allocations abort on OOM (mem.h); jansson's failures (OOM, invalid UTF-8)
 * are checked and answered `internal`. */
#ifndef PARLEY_CHAT_INTERNAL_H
#define PARLEY_CHAT_INTERNAL_H

#include <jansson.h>
#include <stdint.h>
#include <uthash.h>

#include "chat/chat.h"
#include "chat/chat_validate.h"
#include "util/ratelimit.h"
#include "util/metrics.h"

/* Hex digits of a user id: the first 16 bytes of SHA-256(key). */
#define CHAT__USER_ID_HEX 32
/* Messages sent in room:history. */
#define CHAT__ROOM_HISTORY 50
/* history:fetch limits. */
#define CHAT__FETCH_DEFAULT 50
#define CHAT__FETCH_MAX     100

/* An online user: one entry however many connections it holds. */
typedef struct chat_user {
    char *key;      /* NFKC case-folded name: the hash key */
    char *name;     /* display name (NFC) */
    char *room;     /* "u:" + key: the sio room of all its connections */
    char id[CHAT__USER_ID_HEX + 1];
    uint32_t nconns;   /* live connections: listed in users:update while > 0 */
    uint32_t nkept;    /* connections lost without a goodbye, kept for
                        * recovery: while the user has only these it is
                        * reserved (not listed, name refused to others,
                        * private messages accepted and replayed) */
    UT_hash_handle hh;
} chat_user;

/* Per-connection state, kept small: no timer, no buffer. */
typedef struct chat_conn {
    sio_socket *sock;
    chat_user *user;               /* NULL until named */
    struct chat_conn *prev, *next; /* chat_server.conns */
    ratelimit_t rl;
    uint8_t gone;                  /* disconnected while its event ran */
    uint8_t kept;                  /* kept by sio for connection state recovery */
} chat_conn;

/* A room this process has seen. Rooms are never renamed nor deleted, so
 * the cache never goes stale; it holds at most every stored room. */
typedef struct chat_room {
    char *key;
    char *name;     /* display name, as first created */
    char *conv;     /* store_conv_room(key); also its sio room name */
    UT_hash_handle hh;
} chat_room;

#define CHAT__USERS 1u
#define CHAT__ROOMS 2u

struct chat_server {
    uv_loop_t *loop;
    sio_server *sio;
    sio_nsp *nsp;
    store_t *store;
    chat_config cfg;            /* cfg.auth_secret is our copy */
    size_t secret_len;
    ratelimit_config_t rl;
    chat_conn *conns;           /* every connection of namespace "/" */
    chat_conn *busy;            /* the connection whose event is running */
    chat_user *users;           /* online users by key */
    chat_room *rooms;           /* rooms seen, by key */
    uv_timer_t presence_timer;
    uv_timer_t purge_timer;
    uint64_t presence_last;     /* uv_now of the last presence broadcast */
    unsigned presence_dirty;    /* CHAT__USERS | CHAT__ROOMS */
    int handles_open;
    int closing;
    /* Metrics (GET /metrics): events in by name (the contract's, then
     * "other"), refusals by code, server events out. */
    uint64_t events_in[16];
    uint64_t errors[16];
    uint64_t out_users, out_rooms, out_messages, out_typing;
    metrics_hist store_latency[4]; /* append, history, room, dedupe */
};

enum { CHAT__LAT_APPEND, CHAT__LAT_HISTORY, CHAT__LAT_ROOM, CHAT__LAT_DEDUPE };
/* Records the time since t0 (uv_hrtime) in store_latency[which]. */
void chat__store_timed(chat_server *c, int which, uint64_t t0);

/* One client event being handled. */
typedef struct {
    chat_server *c;
    chat_conn *conn;
    sio_socket *sock;
    json_t *result;             /* the success ack, {"ok":true, ...} */
} chat_req;

typedef int (*chat_handler_fn)(chat_req *r, json_t *payload);

/* ---- chat_server.c ---- */
/* Wall-clock milliseconds since the epoch (message timestamps). */
int64_t chat__now_ms(void);
/* Adds key: v to the success ack (v stolen). Returns 0, or
 * -CHAT_ERR_INTERNAL when v is NULL or jansson fails. */
int chat__result_set(chat_req *r, const char *key, json_t *v);
/* An optional field of an object payload: NULL when absent or JSON null. */
static inline json_t *chat__field(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}
/* Parses a name field (a string) with parse; maps failure to err. */
int chat__parse_name(const json_t *s, int (*parse)(const char *, size_t, chat_name_t *),
                     chat_err_t err, chat_name_t *out);

/* ---- chat_users.c ---- */
/* Token mode: verifies auth.token; 0 and *out (the token's name) or -1. */
int chat__token_name(chat_server *c, const json_t *auth, chat_name_t *out);
/* Names conn as n (creating the user when it is not online), joins its
 * "u:" room and schedules users:update. conn must be unnamed. */
void chat__user_attach(chat_server *c, chat_conn *conn, const chat_name_t *n);
/* Unnames conn; the user goes offline with its last connection. */
void chat__user_detach(chat_server *c, chat_conn *conn);
/* conn was lost without a goodbye and is kept for recovery: its user stops
 * counting it as live (reserved when it was the last). */
void chat__user_keep(chat_server *c, chat_conn *conn);
/* conn came back (recovered): live again. */
void chat__user_recover(chat_server *c, chat_conn *conn);
/* A kept conn was not reclaimed in time: the reservation ends with it. */
void chat__user_expire(chat_server *c, chat_conn *conn);
/* The user with that key, online or reserved, or NULL. */
chat_user *chat__user_find(chat_server *c, const char *key);
/* [{id, username, isActive}] of every online user, or NULL (jansson). */
json_t *chat__users_json(chat_server *c);
void chat__users_free(chat_server *c);
int chat__on_user_join(chat_req *r, json_t *payload);

/* ---- chat_presence.c ---- */
void chat__presence_init(chat_server *c);
/* Schedules users:update and/or rooms:update (what: CHAT__USERS|ROOMS). */
void chat__presence_changed(chat_server *c, unsigned what);

/* ---- chat_rooms.c ---- */
/* The room with that key: 0 and *out, -CHAT_ERR_ROOM_NOT_FOUND or
 * -CHAT_ERR_INTERNAL. */
int chat__room_find(chat_server *c, const char *key, chat_room **out);
/* chat__room_find, then -CHAT_ERR_NOT_IN_ROOM unless r's connection is in it. */
int chat__room_of_member(chat_req *r, const char *key, chat_room **out);
/* [{name, users}] of every stored room: 0 and *out, or -CHAT_ERR_INTERNAL. */
int chat__rooms_json(chat_server *c, json_t **out);
void chat__rooms_free(chat_server *c);
int chat__on_room_create(chat_req *r, json_t *payload);
int chat__on_room_join(chat_req *r, json_t *payload);
int chat__on_room_leave(chat_req *r, json_t *payload);
int chat__on_rooms_list(chat_req *r, json_t *payload);

/* ---- chat_messages.c ---- */
/* A message:receive / history entry; room (display) for room messages, to
 * (display) for private ones. NULL when jansson fails. */
json_t *chat__msg_json(const char *id, const char *room, const char *to, const char *from,
                       const char *content, size_t content_len, int64_t ts_ms);
int chat__on_message_room(chat_req *r, json_t *payload);
int chat__on_message_private(chat_req *r, json_t *payload);

/* ---- chat_history.c ---- */
/* {room, messages, hasMore} of the last CHAT__ROOM_HISTORY messages of
 * room: 0 and *out, or -CHAT_ERR_INTERNAL. */
int chat__room_history(chat_server *c, const chat_room *room, json_t **out);
int chat__on_history_fetch(chat_req *r, json_t *payload);

/* ---- chat_typing.c ---- */
int chat__on_typing(chat_req *r, json_t *payload);

#endif
