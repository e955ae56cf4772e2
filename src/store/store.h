/* store.h - the storage interface of the chat layer: rooms, message history
 * of rooms and private conversations, and clientId de-duplication.
 *
 * The chat layer talks to an opaque store_t through the inline wrappers
 * below, whatever the backend: the embedded SQLite store (store_sqlite.c)
 * today, a Redis Cluster store later. A backend embeds `struct store` as the
 * first member of its own struct and fills in a store_ops_t.
 *
 * Calls are synchronous in every backend so far: when a call returns, its
 * work is done. To let an asynchronous backend implement the same contract
 * later (each call becoming a request with a completion callback), callers
 * keep to this discipline now:
 *   - everything a call produces comes back through its out-parameters, as
 *     copies the caller owns and frees with the matching store_*_free;
 *   - no call keeps a pointer to its arguments after it returns;
 *   - a message is delivered to clients only after store_msg_append (or the
 *     store_commit of its batch) has returned 0: that is the durability
 *     point of the contract ("stored before they are delivered").
 *
 * Errors: every call returns 0 (or a count, where said) or one of the
 * negative STORE_E* codes. Memory: the store's own allocations abort on OOM
 * (mem.h); a backend library's reported failures, OOM included, become
 * STORE_EIO.
 *
 * Conversations. Messages belong to a conversation named by a string made
 * with store_conv_room or store_conv_private from comparison keys
 * (chat_name_t.key). Message ids are opaque strings (< STORE_ID_MAX bytes),
 * unique within their conversation and increasing in the order messages
 * were appended; clients must not interpret them, and neither should the
 * chat layer beyond passing one back as `before`. */
#ifndef PARLEY_STORE_STORE_H
#define PARLEY_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/mem.h"

#define STORE_EIO       (-1) /* the backend failed: answer `internal` */
#define STORE_ENOTFOUND (-2) /* no such room / no such dedupe entry */
#define STORE_EBADID    (-3) /* `before` is malformed or not an id of that
                                conversation: answer `invalid_payload` */
#define STORE_EINVAL    (-4) /* a bad argument or a transaction misuse (a
                                bug in the caller) */
#define STORE_ESCHEMA   (-5) /* open: the data was written by a newer schema */

/* Bytes that hold any message id, its NUL included. */
#define STORE_ID_MAX 48
/* How long the contract asks a clientId to be remembered, at least. */
#define STORE_DEDUPE_TTL_MS ((int64_t)10 * 60 * 1000)
/* Largest history page a backend must serve. */
#define STORE_HISTORY_LIMIT_MAX 1000

typedef struct store store_t;

typedef struct {
    char *key;  /* comparison key */
    char *name; /* display name, as first created */
} store_room_t;

/* A message to append; nothing in it is kept after the call. */
typedef struct {
    const char *conv;    /* store_conv_room / store_conv_private */
    const char *from;    /* sender's display name */
    const char *to;      /* recipient's display name (private), or NULL */
    const char *content; /* content[0..content_len), validated content */
    size_t content_len;
    int64_t ts_ms;       /* ms since the epoch, set by the server */
} store_msg_in_t;

/* A stored message, owned by the store_history_t that holds it. */
typedef struct {
    char id[STORE_ID_MAX];
    char *from;
    char *to;            /* NULL for room messages */
    char *content;       /* NUL-terminated; content_len excludes the NUL */
    size_t content_len;
    int64_t ts_ms;
} store_msg_t;

typedef struct {
    store_msg_t *msgs;   /* oldest first */
    size_t n;
    int has_more;        /* older messages exist before msgs[0] */
} store_history_t;

/* What a clientId was first used for. */
typedef struct {
    char id[STORE_ID_MAX]; /* the message id */
    int64_t ts_ms;         /* its timestamp */
    char *conv;            /* its conversation (owned; store_dedupe_free) */
} store_dedupe_t;

typedef struct {
    void (*close)(store_t *s);
    int (*begin)(store_t *s);
    int (*commit)(store_t *s);
    int (*rollback)(store_t *s);
    int (*room_create)(store_t *s, const char *key, const char *name, char **name_out,
                       int *created);
    int (*room_get)(store_t *s, const char *key, char **name_out);
    int (*room_list)(store_t *s, store_room_t **rooms, size_t *n);
    int (*msg_append)(store_t *s, const store_msg_in_t *m, char id_out[STORE_ID_MAX]);
    int (*history)(store_t *s, const char *conv, const char *before, size_t limit,
                   store_history_t *out);
    int (*dedupe_put)(store_t *s, const char *user_key, const char *client_id,
                      size_t client_id_len, const char *msg_id, int64_t ts_ms,
                      const char *conv, int64_t expires_ms);
    int (*dedupe_get)(store_t *s, const char *user_key, const char *client_id,
                      size_t client_id_len, int64_t now_ms, store_dedupe_t *out);
    int (*dedupe_purge)(store_t *s, int64_t now_ms);
} store_ops_t;

/* The part every backend shares; backends put it first in their struct. */
struct store {
    const store_ops_t *ops;
};

/* ---- backends ----------------------------------------------------------- */

/* Opens (creating when missing) the SQLite store <dir>/parley.db, creating
 * dir (and its parents, mode 0700) when missing, and migrates its schema.
 * Returns 0 and sets *out (close it with store_close); STORE_EINVAL for an
 * empty dir; STORE_ESCHEMA when the file is from a newer version; STORE_EIO
 * for anything else (logged). On error *out is NULL. One store_t serves one
 * thread (the loop's). */
int store_sqlite_open(const char *dir, store_t **out);

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

/* ---- the interface ------------------------------------------------------ */

/* Closes the store; s is invalid afterwards. A batch still open is rolled
 * back. s may be NULL. */
static inline void store_close(store_t *s)
{
    if (s)
        s->ops->close(s);
}

/* Batches. Between store_begin and store_commit the writes of one loop turn
 * are grouped (one transaction in SQLite: far fewer syncs than one per
 * write). Nothing written in the batch is durable, nor may it be delivered
 * to clients, before store_commit returns 0. Batches do not nest: begin
 * inside a batch, and commit or rollback outside one, return STORE_EINVAL.
 * If any write in the batch fails, or the commit itself fails, call
 * store_rollback: every write of the batch is then undone. Reads inside a
 * batch see its writes. Without a batch each write is durable on its own
 * when its call returns 0. A backend without transactions may implement
 * these as plain write grouping, as long as the durability points hold. */
static inline int store_begin(store_t *s) { return s->ops->begin(s); }
static inline int store_commit(store_t *s) { return s->ops->commit(s); }
static inline int store_rollback(store_t *s) { return s->ops->rollback(s); }

/* Rooms. store_room_create creates the room `key` with display `name`
 * unless a room with that key exists. Either way it returns 0 and sets
 * *name_out to the room's display name (the first creator's: a caller-owned
 * copy) and *created to 1 if this call created it, else 0. name_out and
 * created may be NULL. */
static inline int store_room_create(store_t *s, const char *key, const char *name,
                                    char **name_out, int *created)
{
    return s->ops->room_create(s, key, name, name_out, created);
}

/* Returns 0 and sets *name_out (caller-owned; name_out may be NULL, making
 * this an existence test) when the room exists, or STORE_ENOTFOUND. */
static inline int store_room_get(store_t *s, const char *key, char **name_out)
{
    return s->ops->room_get(s, key, name_out);
}

/* Every room, in creation order. Returns 0 and sets *rooms (free with
 * store_rooms_free; NULL when *n is 0) and *n. */
static inline int store_room_list(store_t *s, store_room_t **rooms, size_t *n)
{
    return s->ops->room_list(s, rooms, n);
}

static inline void store_rooms_free(store_room_t *rooms, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mem_free(rooms[i].key);
        mem_free(rooms[i].name);
    }
    mem_free(rooms);
}

/* Messages. Appends m to its conversation (creating the conversation on
 * first use) and writes the new message's id, NUL-terminated, to id_out.
 * Returns 0 or STORE_EIO. */
static inline int store_msg_append(store_t *s, const store_msg_in_t *m,
                                   char id_out[STORE_ID_MAX])
{
    return s->ops->msg_append(s, m, id_out);
}

/* Reads the newest `limit` (1..STORE_HISTORY_LIMIT_MAX, else STORE_EINVAL)
 * messages of conversation `conv` that are older than message `before`
 * (all of them when before is NULL), into *out oldest first, with has_more
 * set when older ones remain. A conversation with no message gives an empty
 * list. Returns 0, STORE_EBADID when before is not an id of a message of
 * this conversation (malformed, unknown or from another conversation), or
 * STORE_EIO. *out is always initialized; free it with store_history_free. */
static inline int store_history(store_t *s, const char *conv, const char *before,
                                size_t limit, store_history_t *out)
{
    return s->ops->history(s, conv, before, limit, out);
}

/* Frees the messages of h and empties it; an empty h is fine. */
static inline void store_history_free(store_history_t *h)
{
    for (size_t i = 0; i < h->n; i++) {
        mem_free(h->msgs[i].from);
        mem_free(h->msgs[i].to);
        mem_free(h->msgs[i].content);
    }
    mem_free(h->msgs);
    h->msgs = NULL;
    h->n = 0;
    h->has_more = 0;
}

/* clientId de-duplication, per sending user (user_key) across every
 * conversation. client_id[0..client_id_len) is compared as exact bytes (it
 * may hold U+0000). The usual flow for a send with a clientId:
 *   store_dedupe_get -> hit: ack with its id and ts_ms, store nothing;
 *                    -> miss: store_msg_append, then store_dedupe_put with
 *                       expires_ms = now + STORE_DEDUPE_TTL_MS (same batch).
 * store_dedupe_put remembers (replacing any earlier entry for that pair)
 * until expires_ms. Returns 0 or STORE_EIO. */
static inline int store_dedupe_put(store_t *s, const char *user_key, const char *client_id,
                                   size_t client_id_len, const char *msg_id, int64_t ts_ms,
                                   const char *conv, int64_t expires_ms)
{
    return s->ops->dedupe_put(s, user_key, client_id, client_id_len, msg_id, ts_ms, conv,
                              expires_ms);
}

/* Looks up an entry that has not expired at now_ms (expires_ms > now_ms).
 * Returns 0 and fills *out (free with store_dedupe_free), STORE_ENOTFOUND
 * (out zeroed), or STORE_EIO. Expired entries are never returned, whether
 * or not they have been purged yet. */
static inline int store_dedupe_get(store_t *s, const char *user_key, const char *client_id,
                                   size_t client_id_len, int64_t now_ms, store_dedupe_t *out)
{
    return s->ops->dedupe_get(s, user_key, client_id, client_id_len, now_ms, out);
}

static inline void store_dedupe_free(store_dedupe_t *d)
{
    mem_free(d->conv);
    d->conv = NULL;
}

/* Deletes the entries expired at now_ms; call it from a periodic timer (a
 * minute is plenty) to bound the table. Returns how many were deleted
 * (>= 0; a backend that expires entries by itself may return 0), or
 * STORE_EIO. */
static inline int store_dedupe_purge(store_t *s, int64_t now_ms)
{
    return s->ops->dedupe_purge(s, now_ms);
}

#endif
