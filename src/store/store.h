/* store.h - the storage interface of the chat layer: rooms, message history
 * of rooms and private conversations, clientId de-duplication, and the
 * foundations of contract v2: users (identities owning a name, guests
 * expiring), shared secrets, room membership per user, read state, a
 * user's conversation list, messages that live (replies, edits,
 * tombstones, reactions: every read shows a message as it is now,
 * system messages), and rooms with owners (roles, settings, bans, mutes,
 * invitations, deletion).
 *
 * The chat layer talks to an opaque store_t through the inline wrappers
 * below, whatever the backend: the embedded SQLite store (store_sqlite.c)
 * or the Redis Cluster store (store_redis.c). A backend embeds `struct
 * store` as the first member of its own struct and fills in a store_ops_t;
 * what the backends share about an operation (its kind, its typed
 * callback, the refusal after store_close, completing it) is in
 * store_op.h.
 *
 * Asynchronous. Every operation takes a completion callback and returns
 * nothing; the callback runs exactly once, with 0 or a negative STORE_E*
 * code and the operation's result. When it runs depends on the backend:
 *   - later, from the store's loop (never inside the call): the SQLite store
 *     opened with a turn, and the Redis store;
 *   - inline, before the call returns: the SQLite store opened without a
 *     turn (tools and tests), and any operation started from inside a
 *     callback that store_close is running (STORE_ECLOSED).
 * A caller must be correct either way: after starting an operation it
 * touches nothing that the callback may have freed or changed already.
 * Errors always arrive through the callback, never as a return value.
 *
 * Arguments are copied or used before the call returns: nothing the caller
 * passes is kept. Results are lent to the callback: they are valid during
 * the call only and the store frees them after it returns, except where a
 * callback is allowed to take them (history and since pages, the room list
 * and the conversation list: move the contents out and zero the struct).
 *
 * Order. Operations on the same conversation (or room key, or sending
 * user's clientIds) take effect one at a time, and their callbacks run in
 * the order they took effect; a read sees exactly the writes whose
 * callbacks run before its own. An operation started after another one's
 * callback ran takes effect after it. The chat layer relies on both: a
 * joiner reads a room's history, then joins it, so each message of that
 * room is either in the page or delivered after the join, never both and
 * never neither; and one connection's events, run one after the other,
 * take effect in the order they were sent. Operations on different keys
 * may complete in any order. The v2 operations order the same way per
 * user id, per name key (claim, ensure, find, rename), per room (its
 * members) and per conversation and user (read state); the message
 * operations (get, edit, delete, reactions) per conversation, with its
 * appends and reads; store_user_purge
 * and store_conversations, which touch many keys, are ordered only after
 * what completed before they started. The SQLite store does more: every operation
 * takes effect when it is started, and callbacks run in start order.
 *
 * Durability. A message is delivered to clients only after the callback of
 * its store_msg_append got 0: that is the durability point of the contract
 * ("stored before they are delivered"). Writes that fail are not visible:
 * an operation is atomic on its own.
 *
 * Errors: STORE_E* below. Memory: the store's own allocations abort on OOM
 * (mem.h); a backend library's reported failures, OOM included, become
 * STORE_EIO.
 *
 * Conversations. Messages belong to a conversation named by a string made
 * with store_conv_room (a room's comparison key), store_conv_direct (two
 * user ids: contract v2) or store_conv_private (two comparison keys,
 * chat_name_t.key: v1, kept until the chat layer names users by id; v2
 * code never reaches those). A message may carry its sender's user id
 * (from_id), which read state relies on. Message ids are opaque strings (< STORE_ID_MAX bytes),
 * unique within their conversation and increasing in the order messages
 * were appended; clients must not interpret them, and neither should the
 * chat layer beyond passing one back as `before`. */
#ifndef PARLEY_STORE_STORE_H
#define PARLEY_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "util/mem.h"
#include "util/turn.h"
#include "util/err.h"
#include "util/rand.h"

#define STORE_EIO       ERR_IO /* the backend failed: answer `internal`. For a
                                write, a backend that cannot know (a Redis
                                timeout) may have applied it: see
                                store_msg_append */
#define STORE_ENOTFOUND ERR_NOTFOUND /* no such room */
#define STORE_EBADID    ERR_BADID /* `before` is malformed or not an id of that
                                conversation: answer `invalid_payload` */
#define STORE_EINVAL    ERR_INVAL /* a bad argument (a bug in the caller) */
#define STORE_ESCHEMA   ERR_SCHEMA /* open: the data was written by a newer schema */
#define STORE_ECLOSED   ERR_CLOSED /* store_close ran before the operation finished:
                                see store_close */
#define STORE_ETAKEN    ERR_TAKEN /* a name a live user owns: answer
                                `username_taken` */
#define STORE_ELIMIT    ERR_LIMITED /* a reaction: the message has
                                STORE_REACTION_EMOJI_MAX distinct emoji
                                already: answer `limit_reached` */

/* Bytes that hold any message id, its NUL included. */
#define STORE_ID_MAX 48
/* How long the contract asks a clientId to be remembered, at least. */
#define STORE_DEDUPE_TTL_MS ((int64_t)10 * 60 * 1000)
/* Largest history page a backend must serve. */
#define STORE_HISTORY_LIMIT_MAX 1000
/* Distinct emoji a message may carry; reactors named per emoji. */
#define STORE_REACTION_EMOJI_MAX 20
#define STORE_REACTION_USERS_MAX 20
/* Code points of a reply's excerpt of the message replied to. */
#define STORE_EXCERPT_CP 100

typedef struct store store_t;

typedef struct {
    char *key;  /* comparison key */
    char *name; /* display name, as first created */
    int64_t joined_ms; /* store_member_rooms: when the user joined it;
                          store_room_list: 0 */
    int role;          /* store_member_rooms: the user's role in it;
                          store_room_list: 0 */
} store_room_t;

/* Rooms: every room in creation order (store_room_list), or a user's in
 * join order (store_member_rooms). */
typedef struct {
    store_room_t *rooms; /* NULL when n is 0 */
    size_t n;
} store_room_list_t;

/* A message to append; nothing in it is kept after the call. */
typedef struct {
    const char *conv;    /* store_conv_room / store_conv_direct (v1:
                            store_conv_private) */
    const char *from;    /* sender's display name */
    const char *to;      /* recipient's display name (private), or NULL */
    const char *content; /* content[0..content_len), validated content */
    size_t content_len;
    int64_t ts_ms;       /* ms since the epoch, set by the server; also the
                            "now" at which a clientId entry is looked up */
    const char *from_id; /* the sender's user id (store_user_t.id), or NULL
                            (a message of no user: system messages, v1);
                            read state counts a user's own messages read */
    const char *action;  /* a system message (type system): its action
                            ("kick", "ban", "topic", "notice", ...), else
                            NULL; from is then who acted ("" for none) */
    const char *user;    /* a system message: the user it concerns, or NULL */
    const char *reply_to; /* the id of a message of the same conversation
                             this one replies to, or NULL: checked by the
                             append (STORE_EBADID malformed, STORE_ENOTFOUND
                             not a message of conv; a tombstone is one) */
} store_msg_in_t;

/* The clientId of a message to append, per sending user across every
 * conversation; nothing in it is kept after the call. */
typedef struct {
    const char *user_key;  /* the sender's comparison key */
    const char *client_id; /* client_id[0..client_id_len): exact bytes, may
                              hold U+0000 */
    size_t client_id_len;
    int64_t expires_ms;    /* remembered until then (ts_ms +
                              STORE_DEDUPE_TTL_MS) */
} store_dedupe_in_t;

/* What store_msg_append did. */
typedef struct {
    char id[STORE_ID_MAX]; /* the message's id, NUL-terminated */
    int64_t ts_ms;         /* its timestamp */
    int duplicate;         /* 1: the clientId was seen; id and ts_ms are the
                              first message's and nothing was stored */
} store_appended_t;

/* One emoji's reactions to a message. */
typedef struct {
    char *emoji;
    uint64_t count;  /* how many users reacted with it */
    char **users;    /* the first reactors' usernames (as they reacted), at
                        most STORE_REACTION_USERS_MAX, in reaction order */
    size_t nusers;
} store_reaction_t;

/* A stored message as it is now (edits, deletion, reactions applied),
 * owned by the store_history_t (or the result) that holds it. */
typedef struct {
    char id[STORE_ID_MAX];
    char *from;
    char *to;            /* NULL for room messages */
    char *content;       /* NUL-terminated; content_len excludes the NUL;
                            "" for a tombstone */
    size_t content_len;
    int64_t ts_ms;
    char *from_id;       /* the sender's user id, NULL when none */
    int64_t edited_ms;   /* its last edit; 0: never edited (or deleted) */
    int deleted;         /* a tombstone: id, from, from_id, to, ts_ms and
                            content "" only, nothing else */
    char *reply_id;      /* the message it replies to, or NULL; then: */
    char *reply_from;    /* that message's sender ("" when it is gone) */
    char *reply_excerpt; /* the first STORE_EXCERPT_CP code points of its
                            content now: "" once it is deleted */
    store_reaction_t *reactions; /* in order of first use; NULL when none */
    size_t nreactions;
    char *action;        /* a system message's action, else NULL */
    char *user;          /* a system message: the user it concerns, or NULL */
} store_msg_t;

typedef struct {
    store_msg_t *msgs;   /* oldest first; NULL when n is 0 */
    size_t n;
    int has_more;        /* older messages exist before msgs[0] */
} store_history_t;

/* Completion callbacks. ud is the caller's; rc is 0 or a STORE_E* code; the
 * result is lent for the duration of the call (see the top of this file).
 * On an error the result is empty (zeroed, name NULL). */
typedef void (*store_room_cb)(void *ud, int rc, const char *name, int created);

/* What a room is created with (store_room_create_with); nothing kept. */
typedef struct {
    int is_private;       /* 1: a private room */
    const char *topic;    /* its topic (validated), NULL for "" */
    const char *owner_id; /* its creator: made its first member and owner,
                             joined at now_ms; NULL for none */
    int64_t now_ms;
} store_room_opts_t;

/* A room's settings (store_room_info), lent. */
typedef struct {
    char *name;
    int is_private;
    char *topic; /* "" when none */
} store_room_info_t;
typedef void (*store_room_info_cb)(void *ud, int rc, const store_room_info_t *info);

/* Per room and user: a ban, a mute, an invitation (store_flag_set). */
enum { STORE_FLAG_BAN = 1, STORE_FLAG_MUTE = 2, STORE_FLAG_INVITE = 3 };
typedef void (*store_room_list_cb)(void *ud, int rc, store_room_list_t *list);
typedef void (*store_append_cb)(void *ud, int rc, const store_appended_t *res);
typedef void (*store_history_cb)(void *ud, int rc, store_history_t *page);
typedef void (*store_count_cb)(void *ud, int rc, uint64_t n);
/* One message as it is now (NULL on error); changed: whether the operation
 * changed it (see each operation). */
typedef void (*store_msg_cb)(void *ud, int rc, const store_msg_t *msg, int changed);

/* Conversation names (store_conv_private form), owned by the list. */
typedef struct {
    char **convs; /* NULL when n is 0 */
    size_t n;
} store_conv_list_t;
typedef void (*store_conv_list_cb)(void *ud, int rc, store_conv_list_t *list);

/* Bytes that hold a user id (rand_id: RAND_ID_LEN characters), NUL included. */
#define STORE_USER_ID_MAX (RAND_ID_LEN + 1)

/* A user: an identity that owns a name (see store_user_claim). Lent to the
 * callback with its strings. */
typedef struct {
    char id[STORE_USER_ID_MAX]; /* random, opaque, never reused */
    char *key;        /* comparison key of its name */
    char *name;       /* its display name */
    int64_t created_ms;
    int64_t seen_ms;  /* last store_user_touch (or creation) */
    int guest;        /* 1: expires once seen_ms + ttl_ms <= now_ms */
} store_user_t;
typedef void (*store_user_cb)(void *ud, int rc, const store_user_t *user);

/* A shared secret's bytes, lent (NULL and 0 on error). */
typedef void (*store_secret_cb)(void *ud, int rc, const uint8_t *bytes, size_t len);

/* Roles in a room, in order of rights. */
enum { STORE_ROLE_MEMBER = 0, STORE_ROLE_MODERATOR = 1, STORE_ROLE_OWNER = 2 };

/* One member of a room. */
typedef struct {
    char id[STORE_USER_ID_MAX]; /* the user's id */
    int64_t joined_ms;
    int role;                   /* STORE_ROLE_* */
} store_member_t;

/* A room's members, in join order. */
typedef struct {
    store_member_t *members; /* NULL when n is 0 */
    size_t n;
} store_member_list_t;
typedef void (*store_member_list_cb)(void *ud, int rc, store_member_list_t *list);

/* A user's read state in one conversation. */
typedef struct {
    char last_read[STORE_ID_MAX]; /* the effective read point: the later of
                                     the marked message and the user's own
                                     newest message; "" when neither */
    uint64_t unread;  /* messages after it, none of them the user's */
    int changed;      /* store_read_mark: 1 if the mark moved forward */
} store_read_t;
typedef void (*store_read_cb)(void *ud, int rc, const store_read_t *read);

enum { STORE_CONV_ROOM = 1, STORE_CONV_DIRECT = 2 };

/* One conversation of a user's list (store_conversations). */
typedef struct {
    char *conv;       /* its name: store_conv_room / store_conv_direct */
    int type;         /* STORE_CONV_ROOM or STORE_CONV_DIRECT */
    char *key;        /* the room's key, or the peer's user id */
    char *name;       /* the room's display name, or the peer's current one
                         ("" when the peer is gone) */
    int64_t joined_ms; /* a room: when the user joined it; direct: 0 */
    int role;         /* a room: the user's STORE_ROLE_*; direct: 0 */
    uint64_t unread;  /* as store_read_get */
    char last_read[STORE_ID_MAX];
    int has_last;     /* last holds the newest message */
    store_msg_t last;
} store_conversation_t;

typedef struct {
    store_conversation_t *convs; /* rooms in join order, then direct ones;
                                    NULL when n is 0 */
    size_t n;
} store_conversations_t;
typedef void (*store_conversations_cb)(void *ud, int rc, store_conversations_t *list);

typedef struct {
    void (*close)(store_t *s);
    void (*room_create)(store_t *s, const char *key, const char *name,
                        const store_room_opts_t *opts, store_room_cb cb, void *ud);
    void (*room_get)(store_t *s, const char *key, store_room_cb cb, void *ud);
    void (*room_list)(store_t *s, store_room_list_cb cb, void *ud);
    void (*msg_append)(store_t *s, const store_msg_in_t *m, const store_dedupe_in_t *d,
                       store_append_cb cb, void *ud);
    void (*history)(store_t *s, const char *conv, const char *before, size_t limit,
                    store_history_cb cb, void *ud);
    void (*dedupe_purge)(store_t *s, int64_t now_ms, store_count_cb cb, void *ud);
    void (*since)(store_t *s, const char *conv, int64_t since_ms, size_t limit,
                  store_history_cb cb, void *ud);
    void (*private_convs)(store_t *s, const char *user_key, int64_t since_ms,
                          store_conv_list_cb cb, void *ud);
    void (*user_claim)(store_t *s, const char *key, const char *name, int64_t now_ms,
                       int64_t ttl_ms, store_user_cb cb, void *ud);
    void (*user_ensure)(store_t *s, const char *key, const char *name, int64_t now_ms,
                        store_user_cb cb, void *ud);
    void (*user_get)(store_t *s, const char *id, int64_t now_ms, int64_t ttl_ms,
                     store_user_cb cb, void *ud);
    void (*user_find)(store_t *s, const char *key, int64_t now_ms, int64_t ttl_ms,
                      store_user_cb cb, void *ud);
    void (*user_rename)(store_t *s, const char *id, const char *key, const char *name,
                        int64_t now_ms, int64_t ttl_ms, store_user_cb cb, void *ud);
    void (*user_touch)(store_t *s, const char *id, int64_t now_ms, store_count_cb cb, void *ud);
    void (*user_purge)(store_t *s, int64_t now_ms, int64_t ttl_ms, store_count_cb cb, void *ud);
    void (*secret_get)(store_t *s, const char *name, size_t len, store_secret_cb cb, void *ud);
    void (*member_add)(store_t *s, const char *room_key, const char *user_id, int64_t now_ms,
                       store_count_cb cb, void *ud);
    void (*member_remove)(store_t *s, const char *room_key, const char *user_id,
                          store_count_cb cb, void *ud);
    void (*member_rooms)(store_t *s, const char *user_id, store_room_list_cb cb, void *ud);
    void (*room_members)(store_t *s, const char *room_key, store_member_list_cb cb, void *ud);
    void (*direct_convs)(store_t *s, const char *user_id, store_conv_list_cb cb, void *ud);
    void (*read_mark)(store_t *s, const char *user_id, const char *conv, const char *msg_id,
                      store_read_cb cb, void *ud);
    void (*read_get)(store_t *s, const char *user_id, const char *conv, store_read_cb cb,
                     void *ud);
    void (*conversations)(store_t *s, const char *user_id, store_conversations_cb cb, void *ud);
    void (*msg_get)(store_t *s, const char *conv, const char *id, store_msg_cb cb, void *ud);
    void (*msg_edit)(store_t *s, const char *conv, const char *id, const char *content,
                     size_t content_len, int64_t now_ms, store_msg_cb cb, void *ud);
    void (*msg_delete)(store_t *s, const char *conv, const char *id, store_msg_cb cb, void *ud);
    void (*reaction)(store_t *s, const char *conv, const char *id, const char *user_id,
                     const char *username, const char *emoji, int add, store_msg_cb cb,
                     void *ud);
    void (*member_role_set)(store_t *s, const char *room_key, const char *user_id, int role,
                            store_count_cb cb, void *ud);
    void (*room_info)(store_t *s, const char *key, store_room_info_cb cb, void *ud);
    void (*room_topic)(store_t *s, const char *key, const char *topic, store_count_cb cb,
                       void *ud);
    void (*flag)(store_t *s, const char *room_key, const char *user_id, int kind, int op,
                 int64_t ms, store_count_cb cb, void *ud);
    void (*room_delete)(store_t *s, const char *key, store_count_cb cb, void *ud);
} store_ops_t;

/* The part every backend shares; backends put it first in their struct. */
struct store {
    const store_ops_t *ops;
    int closed; /* store_close has run: every operation gets STORE_ECLOSED
                   (store_op__refused) */
};

/* ---- backends ----------------------------------------------------------- */

/* Opens (creating when missing) the SQLite store <dir>/parley.db, creating
 * dir (and its parents, mode 0700) when missing, and migrates its schema.
 * Returns 0 and sets *out (close it with store_close); STORE_EINVAL for an
 * empty dir; STORE_ESCHEMA when the file is from a newer version; STORE_EIO
 * for anything else (logged). On error *out is NULL. One store_t serves one
 * thread (the loop's).
 *
 * Completion. The work of an operation is done inside the call, in a
 * transaction that stays open for the rest of the loop turn: every write
 * started in one turn is committed together (one WAL append instead of one
 * per write), and only after that commit do the callbacks run, in start
 * order, from the store's hook in the TURN_STORE phase of `turn`
 * (util/turn.h: before anything of the turn is written to a socket). The
 * store owns no libuv handle. With turn NULL every operation is its own
 * transaction and its callback runs inline, before the call returns. */
int store_sqlite_open(turn_t *turn, const char *dir, store_t **out);

/* Opens the Redis Cluster store (store_redis.c) on turn's loop: an rc client for
 * the cluster reachable at `seeds` ("host:port,host:port", see rc_create),
 * every command bounded by timeout_ms (0: rc's 2000), each conversation's
 * stream trimmed to about maxlen messages (0: 10000), an append reported
 * once wait_replicas replicas have it (WAIT; 0: once the master has it;
 * see store_redis.c for what happens while replicas are missing; at most
 * STORE_REDIS_WAIT_REPLICAS_MAX). It connects in the background:
 * operations started meanwhile wait (within their timeout). Returns 0 and
 * sets *out (close it with store_close), or STORE_EINVAL for a NULL turn,
 * an empty or malformed seed list or a wait_replicas over the maximum
 * (*out is then NULL, nothing is kept).
 * Callbacks always run later, from the loop (rc's replies, or the turn's
 * TURN_STORE phase for failures found before Redis saw the command);
 * order and durability are described at the top of store_redis.c.
 * store_close leaves rc's connections to libuv close callbacks: run the
 * loop once more before closing it. */
int store_redis_open(turn_t *turn, const char *seeds, uint32_t timeout_ms, uint32_t maxlen,
                     uint32_t wait_replicas, store_t **out);

/* The same on an rc client the caller made (rc_create) and keeps: the store
 * borrows it, so that the caller can read the client's metrics (main.c
 * does, for /metrics; the Redis bus has a client of its own). The caller
 * frees rc after store_close, before running the loop again (rc_free
 * completes the store's commands still out). Returns 0 and sets *out, or
 * STORE_EINVAL for a NULL turn or rc or a wait_replicas over the maximum
 * (*out is then NULL). */
#define STORE_REDIS_WAIT_REPLICAS_MAX 100
struct rc_cluster;
int store_redis_open_rc(turn_t *turn, struct rc_cluster *rc, uint32_t maxlen,
                        uint32_t wait_replicas, store_t **out);

/* ---- conversation names ------------------------------------------------- */

/* The conversation of a room: "r:" + its key. Caller frees (mem_free). */
static inline char *store_conv_room(const char *room_key)
{
    size_t n = strlen(room_key);
    char *c = mem_alloc(n + 3);
    memcpy(c, "r:", 2);
    memcpy(c + 2, room_key, n + 1);
    return c;
}

/* The private conversation of two users, the same whichever order they are
 * given in: "p:" + the smaller key (bytewise) + U+001F + the other. Keys
 * from chat_name_parse hold no control character, so the pair can be split
 * back without ambiguity. A user's conversation with itself is allowed.
 * Caller frees (mem_free). */
static inline char *store_conv_private(const char *user_key_a, const char *user_key_b)
{
    if (strcmp(user_key_a, user_key_b) > 0) {
        const char *t = user_key_a;
        user_key_a = user_key_b;
        user_key_b = t;
    }
    size_t na = strlen(user_key_a), nb = strlen(user_key_b);
    char *c = mem_alloc(na + nb + 4);
    memcpy(c, "p:", 2);
    memcpy(c + 2, user_key_a, na);
    c[2 + na] = '\x1f';
    memcpy(c + 3 + na, user_key_b, nb + 1);
    return c;
}

/* The direct (private) conversation of two users by id (contract v2), the
 * same whichever order they are given in: "d:" + the smaller id (bytewise)
 * + U+001F + the other. A prefix of its own: v1 conversations ("p:", keyed
 * by names) are never reachable from ids. A user's conversation with
 * itself is allowed. Caller frees (mem_free). */
static inline char *store_conv_direct(const char *user_id_a, const char *user_id_b)
{
    char *c = store_conv_private(user_id_a, user_id_b);
    c[0] = 'd';
    return c;
}

/* ---- the interface ------------------------------------------------------ */

/* Closes the store; s is invalid afterwards, and s may be NULL. Operations
 * still pending have their callbacks run inside store_close, in start
 * order, with STORE_ECLOSED and an empty result; an operation started from
 * one of those callbacks completes inline with STORE_ECLOSED too. What
 * STORE_ECLOSED means for a write: not applied (SQLite rolls back the
 * turn's open transaction); a backend that had already sent it (Redis) may
 * have applied it. store_close must not be called from inside a store
 * callback. The store's own memory is gone when store_close returns (a
 * Redis store that made its rc client leaves that client's connections to
 * libuv close callbacks: run the loop once more, UV_RUN_NOWAIT is enough,
 * before closing it). */
static inline void store_close(store_t *s)
{
    if (s)
        s->ops->close(s);
}

/* Rooms. store_room_create creates the room `key` with display `name`
 * unless a room with that key exists. Either way cb gets 0, the room's
 * display name (the first creator's) and created = 1 if this call created
 * it, else 0. */
static inline void store_room_create(store_t *s, const char *key, const char *name,
                                     store_room_cb cb, void *ud)
{
    s->ops->room_create(s, key, name, NULL, cb, ud);
}

/* The same with settings, applied only when this call creates the room:
 * private, topic, and its owner (opts->owner_id becomes its first member,
 * role owner, in the same operation; the SQLite store in one savepoint,
 * the Redis store in steps: the room, then the membership, the room's
 * side first). An existing room is left as it is (created 0). */
static inline void store_room_create_with(store_t *s, const char *key, const char *name,
                                          const store_room_opts_t *opts, store_room_cb cb,
                                          void *ud)
{
    s->ops->room_create(s, key, name, opts, cb, ud);
}

/* The settings of room key: 0 and them, or STORE_ENOTFOUND. Rooms created
 * before settings are public, without a topic. */
static inline void store_room_info(store_t *s, const char *key, store_room_info_cb cb, void *ud)
{
    s->ops->room_info(s, key, cb, ud);
}

/* Sets the topic of room key (validated by the chat layer): cb gets 0 and
 * 1, or STORE_ENOTFOUND. */
static inline void store_room_topic_set(store_t *s, const char *key, const char *topic,
                                        store_count_cb cb, void *ud)
{
    s->ops->room_topic(s, key, topic, cb, ud);
}

/* Deletes room key and everything of it: its settings, its history (the
 * conversation store_conv_room(key), its messages and their reactions),
 * its members (both sides), its flags and every member's read state of
 * it. cb gets 0 and 1, or STORE_ENOTFOUND. The SQLite store does it in one
 * savepoint (the deleted text then goes as a message delete's does); the
 * Redis store in steps (the room, then its slot: members, roles, flags,
 * history; then the index, the members' lists and read marks): an
 * interrupted delete leaves the room gone with some of its keys, which the
 * room's next creation does not see. A key created again is a new room
 * with an empty history. */
static inline void store_room_delete(store_t *s, const char *key, store_count_cb cb, void *ud)
{
    s->ops->room_delete(s, key, cb, ud);
}

/* Bans, mutes and invitations: one flag per room, user and kind
 * (STORE_FLAG_*), for a user whether a member or not, with an optional
 * deadline (until_ms; 0: none) checked when read: no timer per flag.
 * store_flag_set sets (or replaces) it: cb gets 0 and 1. store_flag_clear
 * removes it: 0 and 1, or 0 and 0 when there was none. store_flag_check
 * says whether it is in force at now_ms: 0 and 1, or 0 and 0 (none, or
 * past its deadline). An invitation stays until the user joins
 * (store_member_add uses it up), it is cleared, or the room is deleted. */
enum { STORE_FLAG__SET = 1, STORE_FLAG__CLEAR = 2, STORE_FLAG__CHECK = 3 };
static inline void store_flag_set(store_t *s, const char *room_key, const char *user_id,
                                  int kind, int64_t until_ms, store_count_cb cb, void *ud)
{
    s->ops->flag(s, room_key, user_id, kind, STORE_FLAG__SET, until_ms, cb, ud);
}

static inline void store_flag_clear(store_t *s, const char *room_key, const char *user_id,
                                    int kind, store_count_cb cb, void *ud)
{
    s->ops->flag(s, room_key, user_id, kind, STORE_FLAG__CLEAR, 0, cb, ud);
}

static inline void store_flag_check(store_t *s, const char *room_key, const char *user_id,
                                    int kind, int64_t now_ms, store_count_cb cb, void *ud)
{
    s->ops->flag(s, room_key, user_id, kind, STORE_FLAG__CHECK, now_ms, cb, ud);
}

/* cb gets 0 and the room's display name (created 0) when the room exists,
 * or STORE_ENOTFOUND. */
static inline void store_room_get(store_t *s, const char *key, store_room_cb cb, void *ud)
{
    s->ops->room_get(s, key, cb, ud);
}

/* cb gets 0 and every room, in creation order. The callback may take the
 * array (copy *list, then zero it); whatever it leaves is freed with
 * store_room_list_free after it returns. */
static inline void store_room_list(store_t *s, store_room_list_cb cb, void *ud)
{
    s->ops->room_list(s, cb, ud);
}

/* Frees the rooms of l and empties it; an empty l is fine. */
static inline void store_room_list_free(store_room_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        mem_free(l->rooms[i].key);
        mem_free(l->rooms[i].name);
    }
    mem_free(l->rooms);
    l->rooms = NULL;
    l->n = 0;
}

/* Messages. Appends m to its conversation (creating the conversation on
 * first use); cb gets 0 and the new message's id and timestamp once it is
 * durable. With a clientId (d not NULL): when the same user already used
 * the same clientId and its entry has not expired at m->ts_ms, nothing is
 * stored and cb gets 0 with duplicate set and the first message's id and
 * timestamp; otherwise the message is appended and the clientId remembered
 * until d->expires_ms (replacing any expired entry).
 *
 * The guarantee, which a backend without multi-key transactions (Redis
 * Cluster: the conversation and the clientId live in different slots) can
 * give: the message is written first and the clientId entry only after it,
 * so an entry never names a message that does not exist. An entry lost
 * after its message was stored (a crash between the two, a failed second
 * write) can make a retry with that clientId store a duplicate, never lose
 * a message. The SQLite store writes both in one transaction.
 *
 * rc is 0, or STORE_EIO (or STORE_ECLOSED): then the caller must not
 * deliver the message. The SQLite store then stored nothing; a backend
 * that lost its answer (a timeout) may have stored it, and a retry with
 * the same clientId is then recognised once the entry is written. */
static inline void store_msg_append(store_t *s, const store_msg_in_t *m,
                                    const store_dedupe_in_t *d, store_append_cb cb, void *ud)
{
    s->ops->msg_append(s, m, d, cb, ud);
}

/* Reads the newest `limit` (1..STORE_HISTORY_LIMIT_MAX, else STORE_EINVAL)
 * messages of conversation `conv`, as they are now (tombstones included,
 * at their place; see store_msg_get), that are older than message `before`
 * (all of them when before is NULL), oldest first, with has_more set when
 * older ones remain. A conversation with no message gives an empty page.
 * cb gets 0, STORE_EBADID when before is not an id of a message of this
 * conversation (malformed, unknown or from another conversation), or
 * STORE_EIO. The callback may take the messages (copy *page, then zero
 * it); whatever it leaves is freed with store_history_free after it
 * returns. */
static inline void store_history(store_t *s, const char *conv, const char *before,
                                 size_t limit, store_history_cb cb, void *ud)
{
    s->ops->history(s, conv, before, limit, cb, ud);
}

/* Frees what m holds and zeroes it; a zeroed m is fine. */
static inline void store_msg_free(store_msg_t *m)
{
    mem_free(m->from);
    mem_free(m->to);
    mem_free(m->content);
    mem_free(m->from_id);
    mem_free(m->reply_id);
    mem_free(m->reply_from);
    mem_free(m->reply_excerpt);
    for (size_t i = 0; i < m->nreactions; i++) {
        store_reaction_t *r = &m->reactions[i];
        mem_free(r->emoji);
        for (size_t j = 0; j < r->nusers; j++)
            mem_free(r->users[j]);
        mem_free(r->users);
    }
    mem_free(m->reactions);
    mem_free(m->action);
    mem_free(m->user);
    memset(m, 0, sizeof(*m));
}

/* Frees the messages of h and empties it; an empty h is fine. */
static inline void store_history_free(store_history_t *h)
{
    for (size_t i = 0; i < h->n; i++)
        store_msg_free(&h->msgs[i]);
    mem_free(h->msgs);
    h->msgs = NULL;
    h->n = 0;
    h->has_more = 0;
}

/* ---- messages that live (contract v2: edit, delete, reactions) ---------- */

/* Each of these works on message id of conversation conv and gives cb the
 * message as it is now (as store_history shows it), lent, with changed;
 * STORE_EBADID for a malformed id, STORE_ENOTFOUND for one that is not a
 * message of conv. They check nothing about who asks: authorship (from_id),
 * roles and the edit window are the chat layer's, which reads the message
 * with store_msg_get first. */

/* The message as it is now (changed 0), tombstones included. */
static inline void store_msg_get(store_t *s, const char *conv, const char *id, store_msg_cb cb,
                                 void *ud)
{
    s->ops->msg_get(s, conv, id, cb, ud);
}

/* Replaces the content of a message (content[0..content_len), validated)
 * and sets its edited_ms to now_ms: changed 1. A tombstone is
 * STORE_ENOTFOUND. */
static inline void store_msg_edit(store_t *s, const char *conv, const char *id,
                                  const char *content, size_t content_len, int64_t now_ms,
                                  store_msg_cb cb, void *ud)
{
    s->ops->msg_edit(s, conv, id, content, content_len, now_ms, cb, ud);
}

/* Makes the message a tombstone (changed 1): its content, edits, reply and
 * reactions are gone from the store (what each backend guarantees about
 * the bytes: the top of store_sqlite_msgs.c and store_redis_msgs.c); its
 * id, sender, recipient and timestamp stay, at its place in history. A
 * tombstone again: 0, changed 0. */
static inline void store_msg_delete(store_t *s, const char *conv, const char *id,
                                    store_msg_cb cb, void *ud)
{
    s->ops->msg_delete(s, conv, id, cb, ud);
}

/* The reaction `emoji` of user_id (shown as username) to a message: added
 * (store_reaction_add) or removed, once per user and emoji: changed 0 when
 * it was there already (add) or absent (remove), nothing written. A new
 * emoji beyond STORE_REACTION_EMOJI_MAX distinct ones: STORE_ELIMIT. A
 * tombstone: STORE_ENOTFOUND. Counts are the store's, atomic per message:
 * two servers reacting at once never lose one. */
static inline void store_reaction_add(store_t *s, const char *conv, const char *id,
                                      const char *user_id, const char *username,
                                      const char *emoji, store_msg_cb cb, void *ud)
{
    s->ops->reaction(s, conv, id, user_id, username, emoji, 1, cb, ud);
}

static inline void store_reaction_remove(store_t *s, const char *conv, const char *id,
                                         const char *user_id, const char *username,
                                         const char *emoji, store_msg_cb cb, void *ud)
{
    s->ops->reaction(s, conv, id, user_id, username, emoji, 0, cb, ud);
}

/* Deletes the clientId entries expired at now_ms; call it from a periodic
 * timer (a minute is plenty) to bound them. cb gets 0 and how many were
 * deleted (a backend that expires entries by itself may say 0), or
 * STORE_EIO. Expired entries never count as seen, purged or not. */
static inline void store_dedupe_purge(store_t *s, int64_t now_ms, store_count_cb cb, void *ud)
{
    s->ops->dedupe_purge(s, now_ms, cb, ud);
}

/* ---- what a client missed (connection state recovery) ------------------- */

/* Reads the oldest `limit` (1..STORE_HISTORY_LIMIT_MAX, else STORE_EINVAL)
 * messages of conversation conv whose ts_ms is greater than since_ms, oldest
 * first (store order), with has_more set when more such messages follow. A
 * conversation with none gives an empty page. cb gets 0 or STORE_EIO; the
 * page may be taken as with store_history. Order and visibility as for
 * store_history. (The Redis store finds the start by the stream ids' time,
 * which is Redis' clock, with a margin for clock skew; ts_ms is the
 * server's.) */
static inline void store_since(store_t *s, const char *conv, int64_t since_ms, size_t limit,
                               store_history_cb cb, void *ud)
{
    s->ops->since(s, conv, since_ms, limit, cb, ud);
}

/* The private conversations of user user_key (a comparison key) that got a
 * message with ts_ms greater than since_ms (the user as sender or
 * recipient), in no particular order. cb gets 0 and the list, or STORE_EIO.
 * The callback may take the list (copy *list, then zero it); whatever it
 * leaves is freed with store_conv_list_free after it returns. The Redis
 * store answers from a per-user index written with each private append
 * (ZADD, in the user's slot), trimmed to the last day. */
static inline void store_private_convs(store_t *s, const char *user_key, int64_t since_ms,
                                       store_conv_list_cb cb, void *ud)
{
    s->ops->private_convs(s, user_key, since_ms, cb, ud);
}

/* Frees the names of l and empties it; an empty l is fine. */
static inline void store_conv_list_free(store_conv_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        mem_free(l->convs[i]);
    mem_free(l->convs);
    l->convs = NULL;
    l->n = 0;
}

/* ---- users (contract v2 identity) ---------------------------------------- */

/* A user is an identity: a random id (rand_id), the name it owns (key, its
 * comparison key, unique among users; name, its display form) and what it
 * owns: its memberships, its read state, its direct conversations. A guest
 * user (guest mode) expires once seen_ms + ttl_ms <= now_ms (ttl_ms: the
 * guest lifetime): it is then gone for every operation below (as if
 * purged) and its name is free; store_user_purge deletes it with
 * everything it owns. A non-guest (token mode) never expires. The chat
 * layer must store_user_touch a user that has a connection at least every
 * ttl_ms / 2 (and on connect and disconnect), so that no connected user
 * expires. Every user callback gets 0 and the user (lent, strings
 * included), or an error and NULL. */

/* Guest mode's user:join of a name. When no user owns key, or its owner is
 * an expired guest (purged first, with everything it owns: see
 * store_user_purge), creates a new guest user owning key with display
 * name, created_ms = seen_ms = now_ms: cb gets 0 and it. When a live user
 * owns key (connected or not): STORE_ETAKEN. */
static inline void store_user_claim(store_t *s, const char *key, const char *name,
                                    int64_t now_ms, int64_t ttl_ms, store_user_cb cb, void *ud)
{
    s->ops->user_claim(s, key, name, now_ms, ttl_ms, cb, ud);
}

/* Token mode: the user that owns key, whatever it is (its display name
 * kept), or a new non-guest user owning key with display name when none
 * does; its seen_ms becomes now_ms either way. cb gets 0 and the user. */
static inline void store_user_ensure(store_t *s, const char *key, const char *name,
                                     int64_t now_ms, store_user_cb cb, void *ud)
{
    s->ops->user_ensure(s, key, name, now_ms, cb, ud);
}

/* The user with this id (store_user_get) or owning this key
 * (store_user_find): 0 and the user, or STORE_ENOTFOUND (none, or an
 * expired guest). Nothing is written. */
static inline void store_user_get(store_t *s, const char *id, int64_t now_ms, int64_t ttl_ms,
                                  store_user_cb cb, void *ud)
{
    s->ops->user_get(s, id, now_ms, ttl_ms, cb, ud);
}

static inline void store_user_find(store_t *s, const char *key, int64_t now_ms, int64_t ttl_ms,
                                   store_user_cb cb, void *ud)
{
    s->ops->user_find(s, key, now_ms, ttl_ms, cb, ud);
}

/* Renames user id to key / name: STORE_ENOTFOUND when id is gone;
 * STORE_ETAKEN when another live user owns key (an expired one is purged
 * first, as by store_user_claim); else 0 and the user, same id, now owning
 * key, its old name free at once (the same key with another display form
 * just changes the display). seen_ms becomes now_ms. */
static inline void store_user_rename(store_t *s, const char *id, const char *key,
                                     const char *name, int64_t now_ms, int64_t ttl_ms,
                                     store_user_cb cb, void *ud)
{
    s->ops->user_rename(s, id, key, name, now_ms, ttl_ms, cb, ud);
}

/* Sets the seen_ms of user id to now_ms: cb gets 0 and 1, or
 * STORE_ENOTFOUND when no such user is stored (a guest that expired but is
 * not purged yet is still stored: touch only users that store_user_get
 * found). See the top of this section for when to call it. */
static inline void store_user_touch(store_t *s, const char *id, int64_t now_ms,
                                    store_count_cb cb, void *ud)
{
    s->ops->user_touch(s, id, now_ms, cb, ud);
}

/* Deletes every guest user expired at now_ms with everything it owns: its
 * name, its room memberships, its read state, and its direct conversations
 * (with their messages: the peer loses them too). cb gets 0 and how many
 * users were deleted. A later owner of the name is a new user (another
 * id) and sees nothing of the old one. Call it from a periodic timer. */
static inline void store_user_purge(store_t *s, int64_t now_ms, int64_t ttl_ms,
                                    store_count_cb cb, void *ud)
{
    s->ops->user_purge(s, now_ms, ttl_ms, cb, ud);
}

/* ---- shared secrets ------------------------------------------------------ */

/* The secret `name`: len (1..STORE_SECRET_MAX, else STORE_EINVAL) random
 * bytes (RAND_bytes) created on first use, then the same bytes for every
 * backend sharing the store, across restarts. cb gets 0 and the bytes
 * (lent), or an error; a secret stored with another length is STORE_EIO
 * (a name is for one use). */
#define STORE_SECRET_MAX 256
static inline void store_secret_get(store_t *s, const char *name, size_t len,
                                    store_secret_cb cb, void *ud)
{
    s->ops->secret_get(s, name, len, cb, ud);
}

/* ---- room membership ----------------------------------------------------- */

/* Makes user_id a member of room room_key (the room is not checked: the
 * chat layer creates it first), joined at now_ms: cb gets 0 and 1, or 0
 * and 0 when it was a member already (its join time and role kept). The
 * first member of a room without members (a new room, or one its members
 * all left) becomes its owner; the others join as members.
 *
 * Ownership. A room has at most one owner. When its owner leaves
 * (store_member_remove) or is purged (store_user_purge), the
 * longest-standing moderator (join order), else the longest-standing
 * member, becomes the owner, in the same write; a room left without
 * members is kept, ownerless, until its next member. Rooms of before
 * roles have no owner until an administrator sets one
 * (store_member_role_set). */
static inline void store_member_add(store_t *s, const char *room_key, const char *user_id,
                                    int64_t now_ms, store_count_cb cb, void *ud)
{
    s->ops->member_add(s, room_key, user_id, now_ms, cb, ud);
}

/* Ends the membership (the owner's: see Ownership above): cb gets 0 and 1,
 * or 0 and 0 when it was none. */
static inline void store_member_remove(store_t *s, const char *room_key, const char *user_id,
                                       store_count_cb cb, void *ud)
{
    s->ops->member_remove(s, room_key, user_id, cb, ud);
}

/* The rooms user_id is a member of, in join order, each with its key, its
 * display name and joined_ms. The list may be taken as store_room_list's. */
static inline void store_member_rooms(store_t *s, const char *user_id, store_room_list_cb cb,
                                      void *ud)
{
    s->ops->member_rooms(s, user_id, cb, ud);
}

/* Sets the role of member user_id of room_key: cb gets 0 and 1, or 0 and 0
 * when it had that role already. STORE_ROLE_OWNER hands ownership on: the
 * previous owner, if any, becomes a moderator, in the same write.
 * STORE_ENOTFOUND when user_id is not a member; STORE_EINVAL for another
 * role, or to take the owner's role away (hand it on instead). */
static inline void store_member_role_set(store_t *s, const char *room_key, const char *user_id,
                                         int role, store_count_cb cb, void *ud)
{
    s->ops->member_role_set(s, room_key, user_id, role, cb, ud);
}

/* The members of room_key, in join order, with their roles. The callback may take the array
 * (copy *list, then zero it); whatever it leaves is freed with
 * store_member_list_free after it returns. */
static inline void store_room_members(store_t *s, const char *room_key,
                                      store_member_list_cb cb, void *ud)
{
    s->ops->room_members(s, room_key, cb, ud);
}

static inline void store_member_list_free(store_member_list_t *l)
{
    mem_free(l->members);
    l->members = NULL;
    l->n = 0;
}

/* The direct conversations ("d:") of user_id, as sender or recipient, in
 * no particular order, whatever their age; taken as store_private_convs'
 * list. */
static inline void store_direct_convs(store_t *s, const char *user_id, store_conv_list_cb cb,
                                      void *ud)
{
    s->ops->direct_convs(s, user_id, cb, ud);
}

/* ---- read state ---------------------------------------------------------- */

/* Per user and conversation, the last message marked read. The effective
 * read point is the later of that mark and the user's own newest message
 * in the conversation (a message one sends marks everything before it
 * read); unread counts the messages after it (none of them the user's).
 * Computed when read, from the newest message back: O(unread), and no
 * write per message appended. */

/* Marks conv read up to msg_id (NULL: its newest message; nothing when it
 * has none). cb gets 0 and the read state after it, with changed 1 when
 * the mark moved forward; a msg_id not after the effective read point
 * changes nothing (changed 0). STORE_EBADID for a malformed id,
 * STORE_ENOTFOUND for one that is not a message of conv. */
static inline void store_read_mark(store_t *s, const char *user_id, const char *conv,
                                   const char *msg_id, store_read_cb cb, void *ud)
{
    s->ops->read_mark(s, user_id, conv, msg_id, cb, ud);
}

/* The read state of user_id in conv (changed 0); nothing written. */
static inline void store_read_get(store_t *s, const char *user_id, const char *conv,
                                  store_read_cb cb, void *ud)
{
    s->ops->read_get(s, user_id, conv, cb, ud);
}

/* ---- conversation list --------------------------------------------------- */

/* Every room user_id is a member of (join order) then every direct
 * conversation it has, each with its unread count, its read point and its
 * newest message (has_last 0 when none). Sorting by activity is the
 * caller's: last.ts_ms, or joined_ms for a room without messages. The
 * callback may take the list (copy *list, then zero it); whatever it
 * leaves is freed with store_conversations_free after it returns. Composed
 * of the operations above (store_op.c), so it is not one snapshot: a
 * message appended meanwhile may show in one field and not another. */
static inline void store_conversations(store_t *s, const char *user_id,
                                       store_conversations_cb cb, void *ud)
{
    s->ops->conversations(s, user_id, cb, ud);
}

static inline void store_conversations_free(store_conversations_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        store_conversation_t *c = &l->convs[i];
        mem_free(c->conv);
        mem_free(c->key);
        mem_free(c->name);
        store_msg_free(&c->last);
    }
    mem_free(l->convs);
    l->convs = NULL;
    l->n = 0;
}

#endif
