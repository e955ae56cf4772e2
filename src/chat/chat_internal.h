/* chat_internal.h - what the files of the chat module share, and nothing
 * outside it includes.
 *
 * Layout of the module:
 *   chat_server.c    creation, the sio handlers, event dispatch, rate limit,
 *                    replies and errors
 *   chat_users.c     identity (user:join: claim, rename) and the local users
 *   chat_connect.c   the CONNECT: a resume token or a JWT, the user read
 *                    from the store before the reply (asynchronous)
 *   chat_presence.c  the one timer that coalesces users:update/rooms:update
 *   chat_rooms.c     rooms: create, join, leave, list, counts
 *   chat_messages.c  message:room and message:private (dedupe, store, deliver)
 *   chat_history.c   history:fetch and room:history
 *   chat_typing.c    typing
 *   chat_read.c      read state: read:mark, read:update, conversations:list
 *   chat_cluster.c   what crosses to the other nodes through the bus:
 *                    deliveries out and in, this node's presence reports
 *   chat_seen.c      what a bus topic missed while its subscription was
 *                    lost (a Redis failover), read back from the store
 *   chat_restore.c   a session of a dead node, continued here
 *
 * Socket.IO rooms carry the fan-out: every connection of a user is in the
 * sio room "u:<user id>" (the store's id), every member of a chat room in "r:<room key>"
 * (the room's store conversation name, reused as its sio room name). So a
 * private message is one sio_broadcast to two rooms, and "every connection
 * of the sender" is one sio_except. The same names are the bus's topics
 * (bus.h): a delivery is made locally, then published to the topic of each
 * room it went to, and every other node that watches that topic makes the
 * same local delivery (chat_cluster.c). With the local bus the publication
 * goes nowhere, so a lone node pays nothing for it.
 *
 * Error convention: handlers return 0 or -CHAT_ERR_x (chat_validate.h), the
 * first error of the contract's precedence order they meet, or CHAT__PENDING
 * when they wait for the store (chat_server.c has the ordering rule).
 * Memory: our own allocations abort on OOM (mem.h); jansson's failures
 * (OOM, invalid UTF-8) are checked and answered `internal`. */
#ifndef PARLEY_CHAT_INTERNAL_H
#define PARLEY_CHAT_INTERNAL_H

#include <jansson.h>
#include <stdint.h>
#include "util/uthash_oom.h" /* uthash on mem.h: aborts on OOM */

#include "bus/bus.h"
#include "chat/chat.h"
#include "chat/chat_validate.h"
#include "util/ratelimit.h"
#include "util/metrics.h"

/* Messages sent in room:history. */
#define CHAT__ROOM_HISTORY 50
/* history:fetch limits. */
#define CHAT__FETCH_DEFAULT 50
#define CHAT__FETCH_MAX     100

/* ---- chat_seen.c: the messages a bus topic delivered lately ---- */
typedef struct {
    char id[STORE_ID_MAX];
    int64_t ts;
} chat_seen_id;

typedef struct chat_replay chat_replay;

/* Kept per bus topic with local members (a room's, a user's), in cluster
 * mode: see chat_seen.c. All zero: not started (nothing recorded). */
typedef struct {
    int64_t floor;        /* ms: every message stamped after it that was
                             delivered here is in ids; 0: not started */
    int64_t newest;       /* the highest ts in ids */
    chat_seen_id *ids;    /* a ring in delivery order: head, n of cap */
    uint32_t head, n, cap;
    uint32_t ndups;       /* ids replayed lately: bus deliveries of them ... */
    chat_seen_id *dups;
    uint64_t dups_until;  /* ... are dropped until then (uv_now) */
    chat_replay *rp;      /* the replay in flight, or NULL */
    uint8_t lost;         /* lost and not replayed yet: no id leaves */
    uint8_t down;         /* lost and not resumed yet */
} chat_seen;

/* A user with connections here (live or kept for recovery): one entry
 * however many it holds, shared by them. The store owns the identity (id,
 * name); this is its local copy, kept while the user has connections
 * here, renamed when the store renames it (here, or on another node: a
 * control message on its topic, chat_cluster.c). */
typedef struct chat_user {
    char id[STORE_USER_ID_MAX]; /* the store's id: the hash key */
    char *key;      /* NFKC case-folded name */
    char *name;     /* display name (NFC) */
    char *room;     /* "u:" + id: the sio room of all its connections */
    uint32_t nconns;   /* live connections: listed in users:update while > 0 */
    uint32_t nkept;    /* connections lost without a goodbye, kept for
                        * recovery: while the user has only these it is
                        * reserved (not listed; private messages accepted
                        * and replayed) */
    uint8_t by_key;    /* in c->users_by_key (a newer owner of the same
                        * key, not yet known as renamed, takes the slot) */
    int64_t touched_ms; /* last store_user_touch (wall clock) */
    chat_seen seen;    /* its topic "u:<id>" (cluster mode) */
    UT_hash_handle hh;     /* c->users, by id */
    UT_hash_handle hh_key; /* c->users_by_key, by key */
} chat_user;

typedef struct chat_req chat_req;

/* Per-connection state, kept small: no timer, no buffer. */
typedef struct chat_conn {
    sio_socket *sock;              /* a reference of its own */
    chat_user *user;               /* NULL until named */
    struct chat_conn *prev, *next; /* chat_server.conns */
    ratelimit_t rl;
    chat_req *q;                   /* its events in arrival order: the first
                                      one runs, the others wait for it */
    uint8_t kept;                  /* kept by sio for connection state recovery */
    uint8_t disc;                  /* CHAT__DISC_*: a disconnect that came
                                      while events were in q, applied once q
                                      is empty */
    uint8_t pumping;               /* chat_conn_pump is on the stack */
} chat_conn;

#define CHAT__DISC_KEEP 1 /* recoverable: keep it (chat__user_keep) */
#define CHAT__DISC_DROP 2 /* gone: release it */

/* Events that may wait behind a connection's running one. A burst a client
 * sends back to back arrives in one loop turn, before any store op can
 * complete, so this is sized for a burst, not for a backlog; with the rate
 * limit on (the default) the bucket refuses far fewer events first, and a
 * refused event waits without its payload. Beyond it, events are refused
 * at once with rate_limited, out of order. */
#define CHAT__QUEUE_MAX 256

/* A room this process has seen. Rooms are never renamed nor deleted, so
 * the cache never goes stale; it holds at most every stored room. */
typedef struct chat_room {
    char *key;
    char *name;     /* display name, as first created */
    char *conv;     /* store_conv_room(key); also its sio room name and
                       its bus topic */
    uint64_t empty_since; /* uv_now when it was first seen with no local
                             connection (0: it has some) */
    uint8_t watched;      /* its bus topic is watched */
    chat_seen seen;       /* its topic (cluster mode; started when watched) */
    UT_hash_handle hh;
} chat_room;

#define CHAT__USERS 1u
#define CHAT__ROOMS 2u

struct chat_server {
    uv_loop_t *loop;
    sio_server *sio;
    sio_nsp *nsp;
    store_t *store;
    bus_t *bus;
    chat_config cfg;            /* cfg.auth_secret is our copy */
    size_t secret_len;
    ratelimit_config_t rl;
    chat_conn *conns;           /* every connection of namespace "/" */
    chat_req *spare;            /* recycled requests */
    unsigned nspare;
    uint64_t pending;           /* store ops started and not completed: the
                                   struct outlives them (chat_server_free) */
    chat_user *users;           /* local users by id */
    chat_user *users_by_key;    /* the same by name key: `to` and `with`
                                   resolved without a store read */
    uint8_t token_key[32];      /* resume tokens (guest mode) */
    chat_room *rooms;           /* rooms seen, by key */
    uv_timer_t presence_timer;
    uv_timer_t purge_timer;
    uint64_t presence_last;     /* uv_now of the last presence broadcast */
    unsigned presence_dirty;    /* CHAT__USERS | CHAT__ROOMS */
    int presence_listing;       /* a room list for rooms:update is in flight */
    uint64_t presence_t0, purge_t0;
    int handles_open;
    int closing;
    /* Metrics (GET /metrics): events in by name (the contract's, then
     * "other"), refusals by code, server events out. */
    uint64_t events_in[16];
    uint64_t errors[16];
    uint64_t out_users, out_rooms, out_messages, out_typing;
    metrics_hist store_latency[5]; /* append, history, room, dedupe; then
                                      the bus's claims and watches */
    uint64_t bus_in;               /* deliveries published by other nodes */
    uint64_t bus_bad;              /* ... that could not be read */
    uint64_t replays;              /* topics replayed after a lost subscription */
    uint64_t replayed;             /* messages they delivered */
    uint64_t replay_dups;          /* bus deliveries dropped: replayed already */
};

enum { CHAT__LAT_APPEND, CHAT__LAT_HISTORY, CHAT__LAT_ROOM, CHAT__LAT_DEDUPE, CHAT__LAT_BUS };
/* Records the time since t0 (uv_hrtime) in store_latency[which]. */
void chat__store_timed(chat_server *c, int which, uint64_t t0);

/* The content and clientId of a message, pointing into its payload. */
typedef struct {
    const char *content;
    size_t content_len;
    const char *client_id; /* NULL when absent; may hold U+0000 */
    size_t client_id_len;
    int too_long;          /* content_too_long, reported after the name */
} chat_body;

/* A handler's return value when the event goes on asynchronously: a
 * continuation finishes it with chat__req_done, exactly once, maybe even
 * before the handler returns (a store that completes inline, a cached
 * room). The handler touches r no more after starting that. */
#define CHAT__PENDING 1

/* Handles r with its payload (borrowed from r->args): 0 or -CHAT_ERR_x to
 * reply now, or CHAT__PENDING. */
typedef int (*chat_handler_fn)(chat_req *r, json_t *payload);
typedef void (*chat_room_fn)(chat_req *r, int rc, chat_room *room);
typedef void (*chat_page_fn)(chat_req *r, int rc, json_t *messages, int has_more);

/* One client event, from its arrival to its reply. Lives in its
 * connection's FIFO, holds its socket and its arguments, and carries the
 * state a handler needs across store ops (released with it). */
struct chat_req {
    chat_server *c;
    chat_conn *conn;
    sio_socket *sock;           /* a reference of its own */
    const char *event;          /* the contract's name (static) */
    chat_handler_fn fn;
    json_t *args;               /* the arguments (a reference); NULL when
                                   refused on arrival */
    json_t *result;             /* the success ack, {"ok":true, ...} */
    int64_t ack_id;
    int verdict;                /* 0, or the refusal decided on arrival */
    int started;
    uint64_t t0;                /* uv_hrtime when its store op started */
    chat_req *next;             /* the connection's FIFO; the spare list */
    /* FIFO bookkeeping, kept in the first request of the FIFO only */
    chat_req *qtail;
    uint32_t qlen;
    char **snap;                /* rooms of a disconnected socket (see
                                   chat__in_room) */
    size_t nsnap;
    /* handler state */
    chat_name_t name;           /* the parsed room or user name */
    chat_room *room;
    char *conv;                 /* owned conversation name */
    char *peer_room;            /* owned: the recipient's "u:" room */
    json_t *msg;                /* message:receive, built before storing */
    chat_body body;
    const char *before;         /* history:fetch, pointing into args */
    size_t limit;
    chat_room_fn room_fn;
    int room_member;            /* chat__room_lookup's `member` */
    chat_page_fn page_fn;
    const char *page_room;      /* display name for history entries */
};

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
/* Finishes r (which must have been started and not finished): the reply
 * for rc (see chat_server.c), then r is released and its connection's next
 * event starts. r is invalid afterwards. */
void chat__req_done(chat_req *r, int rc);
/* Before a request starts a store op: counts it (the server outlives it)
 * and stamps r->t0. */
void chat__req_store(chat_req *r);
/* First thing in every store callback of a request: uncounts the op; when
 * the server is shutting down, finishes r quietly and returns 1 (touch
 * nothing more), else returns 0 after recording the op's latency. */
int chat__req_resume(chat_req *r, int which);
/* Frees the server once it is closing and nothing references it. */
void chat__server_maybe_free(chat_server *c);
/* A chat connection for socket s (connected, or about to be). */
chat_conn *chat__conn_new(chat_server *c, sio_socket *s);
/* Socket rooms of conn as the chat sees them: sio's while the socket is
 * connected; once it has disconnected with events still to run, the rooms
 * it had then, which those events keep up to date (sio ignores joins of a
 * disconnected socket), so that they run as they would have before. */
int chat__in_room(const chat_conn *conn, const char *room);
void chat__join(chat_conn *conn, const char *room);
void chat__leave(chat_conn *conn, const char *room);
void chat__conn_rooms(const chat_conn *conn, void (*fn)(void *ud, const char *room), void *ud);

/* A connection that never connected (its asynchronous CONNECT found the
 * client gone): forgotten as chat_on_disconnect would. */
void chat__conn_gone(chat_server *c, chat_conn *conn);

/* ---- chat_connect.c ---- */
/* sio_handlers.on_connect. */
json_t *chat__on_connect(void *ud, sio_socket *s, json_t *auth);
/* Token mode: verifies auth.token; 0 and *out (the token's name) or -1. */
int chat__token_name(chat_server *c, const json_t *auth, chat_name_t *out);

/* ---- chat_users.c ---- */
/* The local entry of store user su, made (with no connection) when
 * missing; its name follows the store's. */
chat_user *chat__user_get(chat_server *c, const store_user_t *su);
/* Attaches conn to u (its "u:" room, users:update, the store's seen time).
 * conn must be unattached. */
void chat__user_attach(chat_server *c, chat_conn *conn, chat_user *u);
/* u is now called key / name (renamed here, or on another node). */
void chat__user_rename(chat_server *c, chat_user *u, const char *key, const char *name);
/* Touches every local user not touched for a quarter of the guest
 * lifetime, and purges the expired guests from the store. */
void chat__users_tick(chat_server *c);
/* Resolves the user name r->name.key: fn gets 0 with its id and display
 * name (lent for the call), -CHAT_ERR_USER_NOT_FOUND when no live user
 * owns it, or -CHAT_ERR_INTERNAL. A user with connections here is found
 * without a store read (fn runs inline). */
typedef void (*chat_user_fn)(chat_req *r, int rc, const char *id, const char *name);
void chat__user_resolve(chat_req *r, chat_user_fn fn);
/* Unnames conn; the user goes offline with its last connection. */
void chat__user_detach(chat_server *c, chat_conn *conn);
/* conn was lost without a goodbye and is kept for recovery: its user stops
 * counting it as live (reserved when it was the last). */
void chat__user_keep(chat_server *c, chat_conn *conn);
/* conn came back (recovered): live again. */
void chat__user_recover(chat_server *c, chat_conn *conn);
/* A kept conn was not reclaimed in time: the reservation ends with it. */
void chat__user_expire(chat_server *c, chat_conn *conn);
/* The local user with that id, or NULL. */
chat_user *chat__user_find(chat_server *c, const char *id);
/* "u:" + id: the sio room and bus topic of a user's connections. Caller
 * frees (mem_free). */
char *chat__user_room(const char *id);
/* [{id, username, isActive}] of every online user, or NULL (jansson). */
json_t *chat__users_json(chat_server *c);
void chat__users_free(chat_server *c);
int chat__on_user_join(chat_req *r, json_t *payload);

/* ---- chat_presence.c ---- */
void chat__presence_init(chat_server *c);
/* Schedules users:update and/or rooms:update (what: CHAT__USERS|ROOMS). */
void chat__presence_changed(chat_server *c, unsigned what);

/* ---- chat_rooms.c ---- */
/* Finds room r->name.key, from the cache or the store, then calls fn with
 * 0 and the room, -CHAT_ERR_ROOM_NOT_FOUND or -CHAT_ERR_INTERNAL; with
 * `member` set, -CHAT_ERR_NOT_IN_ROOM unless r's connection is in it. fn
 * runs inline when the room is cached. */
void chat__room_lookup(chat_req *r, int member, chat_room_fn fn);
/* The cached room with that key, added with that name when missing. */
chat_room *chat__room_cache(chat_server *c, const char *key, const char *name);
/* A room the user of a connection here is a member of: cached, and its
 * topic watched (without waiting). */
chat_room *chat__room_member(chat_server *c, const char *key, const char *name);
/* Every connection of u on this node joins (join 1) or leaves room. */
void chat__user_room_apply(chat_server *c, chat_user *u, chat_room *room, int join);
/* [{name, users}] of the rooms of l (cached on the way), or NULL (jansson). */
json_t *chat__rooms_json(chat_server *c, const store_room_list_t *l);
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
/* Reads a page of conv for r (before may be NULL; room is the display name
 * for room conversations, NULL for private ones), then calls fn with 0, the
 * messages (JSON, oldest first, owned by fn) and has_more, or with
 * -CHAT_ERR_INVALID_PAYLOAD (a bad `before`) / -CHAT_ERR_INTERNAL and NULL.
 * conv and before need only live until the call returns; room is kept
 * until fn runs (a cached room's name, which outlives r). */
void chat__history_page(chat_req *r, const char *conv, const char *room, const char *before,
                        size_t limit, chat_page_fn fn);
int chat__on_history_fetch(chat_req *r, json_t *payload);

/* ---- chat_read.c ---- */
int chat__on_conversations_list(chat_req *r, json_t *payload);
int chat__on_read_mark(chat_req *r, json_t *payload);

/* ---- chat_typing.c ---- */
int chat__on_typing(chat_req *r, json_t *payload);

/* ---- chat_cluster.c ---- */
/* Hands the bus our handlers. */
void chat__cluster_init(chat_server *c);
/* After delivering event/args locally to the sio rooms `topics` (minus
 * the connections of room `except`, may be NULL), makes the other nodes
 * that watch each topic deliver it to theirs. Encoded once for all. */
void chat__publish(chat_server *c, const char *const *topics, size_t ntopics, const char *event,
                   const json_t *args, const char *except);
/* Connections in room across the cluster. */
uint64_t chat__room_size(chat_server *c, const chat_room *room);
/* Reports room's local connections to the bus (the other nodes' counts
 * follow within a round trip; chat__rooms_report catches every change). */
void chat__room_report(chat_server *c, const chat_room *room);
/* Reports each cached room's local connections to the bus, and stops
 * watching the topics of rooms empty here for longer than the recovery
 * window (a kept connection needs the room's messages for its replay). */
void chat__rooms_report(chat_server *c);
/* Reports u's state on this node to the bus. */
void chat__user_report(chat_server *c, const chat_user *u);
/* Tells the other nodes that u was renamed (its topic). */
void chat__user_publish_rename(chat_server *c, const chat_user *u);
/* Tells the other nodes that u joined (join 1) or left room: their
 * connections of u follow. */
void chat__user_publish_room(chat_server *c, const chat_user *u, const chat_room *room, int join);
/* Cluster mode with recovery: writes conn's session record (its socket id,
 * user, rooms and this node) for another node to restore it should this
 * one die (chat_restore.c). Nothing for an unnamed connection. */
void chat__session_save(chat_server *c, const chat_conn *conn);
/* The session of conn ended (a goodbye, an expiry): its record goes. */
void chat__session_end(chat_server *c, const chat_conn *conn);
/* conn was lost and is kept here for the recovery window. */
void chat__session_keep(chat_server *c, const chat_conn *conn);

/* ---- chat_seen.c ---- */
/* Starts s (a topic gets local members): floor = now, no id. */
void chat__seen_start(chat_seen *s);
/* Frees s's ids and zeroes it (not started); a replay in flight is
 * dropped when its reads complete. */
void chat__seen_free(chat_seen *s);
/* A message was delivered to the topic's local connections (nothing when s
 * is not started). */
void chat__seen_add(chat_seen *s, const char *id, int64_t ts);
/* The chat_seen of topic ("r:<room key>" or "u:<user id>"), NULL when the
 * room or user is not here; *room_name (may be NULL) gets the room's
 * display name, NULL for a user. */
chat_seen *chat__seen_of(chat_server *c, const char *topic, const char **room_name);
/* A message:receive from the bus for topic: 1 when it is taken (kept for
 * after the topic's replay, or dropped: replayed already), 0 when the
 * caller delivers it now (it is recorded). */
int chat__seen_bus(chat_server *c, const char *topic, json_t *args);
/* bus_handlers.on_topic: a lost topic is replayed once it resumes. */
void chat__seen_on_topic(void *ud, const char *topic, bus_topic_event ev);

/* ---- chat_restore.c ---- */
/* sio_handlers.on_restore: a session this node does not hold. */
int chat__on_restore(void *ud, sio_restore *req, const char *pid, const char *offset,
                     json_t *auth);

#endif
