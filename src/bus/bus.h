/* bus.h - what several parley backends share at run time: fan-out of
 * events between them, who is online where (presence), and the claim of a
 * username. The chat layer talks to an opaque bus_t through the inline
 * wrappers below, whatever the backend:
 *   - the local bus (bus_local.c): one process, nothing to share; publish
 *     does nothing, every claim succeeds, no remote node ever shows up;
 *   - the Redis bus (bus_redis.c): sharded pub/sub and a few hashes on the
 *     Redis Cluster that also holds the store (see the top of bus_redis.c
 *     for the keys, channels and cost of each operation).
 *
 * Topics. A topic is a string the chat layer chooses: "r:<room key>" for a
 * room and "u:<user id>" for every connection of a user (the names of the
 * Socket.IO rooms that carry the same fan-out locally). A node receives
 * what other nodes publish to a topic while it watches that topic; it never
 * receives its own publications. Payloads are opaque bytes to the bus.
 * Publications of one node to one topic arrive in the order they were
 * published; nothing else is ordered. Delivery is at most once: a
 * publication made while a watching node's subscription is being restored
 * (a Redis failover, a lost connection) is missed by that node. The bus
 * says when that happens (on_topic: BUS_TOPIC_LOST, then BUS_TOPIC_RESUMED
 * once publications arrive again), so that the chat can read what it
 * missed from the store (chat_seen.c).
 *
 * Presence. Each node reports its own state with absolute values: for each
 * user, BUS_USER_ONLINE (a live connection), BUS_USER_RESERVED (only
 * connections kept for recovery) or BUS_USER_GONE; for each room, the
 * number of its connections on this node. The bus sends the changes to the
 * other nodes (coalesced: the latest value of each entry wins) and keeps a
 * mirror of theirs, which the chat reads with bus_user_state,
 * bus_users_each and bus_room_count; on_presence tells when the mirror
 * changed. A node that stops heartbeating (killed, cut off) is found dead
 * by every other node within its dead time (BUS_NODE_DEAD_MS unless
 * bus_redis_new was given another) plus one heartbeat: its
 * rooms leave the mirror at once, and its users stay in it as
 * BUS_USER_RESERVED (their clients may come back, to any node, within the
 * recovery window) for the reserve window given to bus_redis_new, counted
 * from when this node found it dead, then go. Each node decides this on
 * its own. A dead node that heartbeats again (it was only cut off) has its
 * entries replaced by its real state. The local node's own entries are
 * never in its mirror: the chat adds its own state itself.
 *
 * Claims. (The chat layer of contract v2 claims only user ids, never
 * exclusively: a name's owner is the store's, and a claim just watches
 * the user's topic and registers it; the key of the user functions below
 * is then that id. Exclusive claims, as v1 made of usernames, remain.)
 * An exclusive bus_claim takes the key for this node, refusing it (BUS_ETAKEN)
 * while another live node holds it, or a dead one still in this node's
 * reserve window (unless the claim takes over from that node: a session
 * restored here); the claims of a dead node whose window is over are void.
 * A node claims a name once however many local connections use it, and
 * releases it when the last one is gone (bus_release). Claiming also
 * watches the user's topic "u:<key>" (a private message to a user is
 * published there), and releasing unwatches it. bus_user_lookup asks the
 * cluster itself whether a node holds a claim of a name.
 *
 * Callbacks run on the loop's thread. A callback given to bus_watch,
 * bus_claim or bus_user_lookup may run inline, before the call returns (the
 * local bus, a topic already watched); callers must be correct either
 * way. Memory: the
 * bus's own allocations abort on OOM (util/mem.h). */
#ifndef PARLEY_BUS_BUS_H
#define PARLEY_BUS_BUS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/turn.h"

#define BUS_ETAKEN ERR_TAKEN /* bus_claim: another live node holds the name */
#define BUS_EIO    ERR_IO /* the backend failed (timeout, Redis down) */
#define BUS_ECLOSED ERR_CLOSED /* bus_close ran first */
#define BUS_ENOTFOUND ERR_NOTFOUND /* bus_session_take: no such session;
                              bus_user_lookup: no claim of the name */

/* The production timing of the Redis bus (bus_redis_timing): a node is
 * dead when its last heartbeat is BUS_NODE_DEAD_MS old; a node heartbeats
 * and looks for dead ones every BUS_HEARTBEAT_MS. */
#define BUS_NODE_DEAD_MS 10000
#define BUS_HEARTBEAT_MS 2000

/* How a Redis bus node heartbeats (bus_redis_new; NULL there, or a 0
 * field, takes the production value above). heartbeat_ms: how often it
 * writes its expiry into the registry and reads the registry; dead_ms:
 * the expiry it writes, now + dead_ms. Each node is judged by the expiry it
 * wrote, so nodes may differ. dead_ms must be above heartbeat_ms, and
 * should be several heartbeats and longer than a Redis failover (while a
 * master is replaced the cluster refuses every command, heartbeats
 * included), so that a late heartbeat or a failover drops nobody. Shorter
 * values are for tests, which would otherwise wait 10 s for each death. */
typedef struct {
    uint32_t heartbeat_ms; /* 0: BUS_HEARTBEAT_MS */
    uint32_t dead_ms;      /* 0: BUS_NODE_DEAD_MS */
} bus_redis_timing;

typedef enum {
    BUS_USER_GONE = 0,
    BUS_USER_RESERVED = 1,
    BUS_USER_ONLINE = 2,
} bus_user_state_t;

/* What the mirror of the other nodes' presence holds. */
#define BUS_PRESENCE_USERS 1u
#define BUS_PRESENCE_ROOMS 2u

/* What on_topic reports about a watched topic. */
typedef enum {
    BUS_TOPIC_LOST,    /* its subscription is gone (a Redis failover, a lost
                          connection): publications are missed from now on;
                          the bus is already subscribing again */
    BUS_TOPIC_RESUMED, /* after a LOST: publications arrive again; those
                          made in between were missed by this node */
} bus_topic_event;

typedef struct {
    /* Another node published data[0..len) to topic, which this node
     * watches. Both are valid during the call only. */
    void (*on_message)(void *ud, const char *topic, const char *data, size_t len);
    /* The mirror changed: BUS_PRESENCE_USERS and/or BUS_PRESENCE_ROOMS. */
    void (*on_presence)(void *ud, unsigned what);
    /* A watched topic's subscription was lost, or is active again after a
     * loss (may be NULL; never for the local bus). Only for a topic that
     * had been active: the first activation of a watch is bus_watch's
     * callback. A RESUMED always follows a LOST of the same topic, unless
     * the topic is unwatched first. topic is valid during the call only;
     * the handler may watch, unwatch or publish. */
    void (*on_topic)(void *ud, const char *topic, bus_topic_event ev);
} bus_handlers;

typedef struct bus bus_t;

typedef void (*bus_done_cb)(void *ud, int rc); /* rc: 0 or BUS_E* */
/* rc 0 and data[0..len) (valid during the call only), or BUS_E* with
 * data NULL. */
typedef void (*bus_data_cb)(void *ud, int rc, const char *data, size_t len);

typedef struct {
    void (*close)(bus_t *b);
    void (*set_handlers)(bus_t *b, const bus_handlers *h, void *ud);
    const char *(*node_id)(const bus_t *b);
    void (*publish)(bus_t *b, const char *topic, const char *data, size_t len);
    void (*watch)(bus_t *b, const char *topic, bus_done_cb cb, void *ud);
    void (*unwatch)(bus_t *b, const char *topic);
    void (*claim)(bus_t *b, const char *user_key, int exclusive, const char *takeover,
                  bus_done_cb cb, void *ud);
    void (*release)(bus_t *b, const char *user_key);
    void (*user_lookup)(bus_t *b, const char *user_key, bus_done_cb cb, void *ud);
    void (*user_set)(bus_t *b, const char *user_key, const char *name, bus_user_state_t st);
    void (*room_set)(bus_t *b, const char *room_key, uint32_t count);
    bus_user_state_t (*user_state)(const bus_t *b, const char *user_key, const char **name);
    void (*users_each)(const bus_t *b,
                       void (*fn)(void *ud, const char *key, const char *name), void *ud);
    uint64_t (*room_count)(const bus_t *b, const char *room_key);
    void (*metrics)(const bus_t *b, buf_t *out);
    void (*shared_key)(bus_t *b, bus_data_cb cb, void *ud);
    void (*session_put)(bus_t *b, const char *pid, const char *data, size_t len,
                        uint32_t ttl_ms);
    void (*session_keep)(bus_t *b, const char *pid, uint32_t ttl_ms);
    void (*session_del)(bus_t *b, const char *pid);
    void (*session_take)(bus_t *b, const char *pid, bus_data_cb cb, void *ud);
} bus_ops_t;

/* The part every backend shares; backends put it first in their struct. */
struct bus {
    const bus_ops_t *ops;
    int clustered; /* 1: other nodes may exist (the Redis bus) */
};

/* ---- backends ------------------------------------------------------------ */

/* The bus of a lone process. Never fails; close it with bus_close. */
bus_t *bus_local_new(void);

/* The Redis bus on the cluster reachable at `seeds` ("host:port,..."; see
 * rc_create), on turn's loop (its presence changes go out in the turn's
 * TURN_BUS phase, util/turn.h), every command bounded by timeout_ms (0:
 * 2000). reserve_ms:
 * how long the users of a node found dead stay reserved after this node
 * found it dead (their mirror entries RESERVED, their claims blocking
 * others': the recovery window); 0: not at all (they go at once, their
 * claims are void). timing: the heartbeat and dead time (NULL: the
 * production BUS_HEARTBEAT_MS and BUS_NODE_DEAD_MS; copied). It has its own
 * rc client (its subscriptions do not compete with the store's commands),
 * registers this node at once and heartbeats every heartbeat_ms. Returns
 * 0 and *out, or BUS_EIO for a malformed seed list or a dead time not above
 * the heartbeat (*out NULL). bus_close sends its last commands (leave the
 * registry, drop the presence and the claims) and frees the client and the
 * memory once they are answered, within timeout_ms: keep running the loop
 * until then (uv_run with UV_RUN_DEFAULT returns when it is done; a single
 * UV_RUN_NOWAIT is not enough). */
int bus_redis_new(turn_t *turn, const char *seeds, uint32_t timeout_ms, uint32_t reserve_ms,
                  const bus_redis_timing *timing, bus_t **out);

/* ---- the interface --------------------------------------------------------- */

/* Stops heartbeating, removes this node's presence and claims from the
 * cluster as far as it can without waiting (the other nodes see its users
 * go at once, or at the latest when its heartbeat expires), and frees the
 * bus. Pending bus_watch, bus_claim, bus_user_lookup, bus_session_take
 * and bus_shared_key callbacks run with BUS_ECLOSED inside the call. b may
 * be NULL. */
static inline void bus_close(bus_t *b)
{
    if (b)
        b->ops->close(b);
}

/* Sets who hears about messages and presence changes (before anything
 * else; h is copied). */
static inline void bus_set_handlers(bus_t *b, const bus_handlers *h, void *ud)
{
    b->ops->set_handlers(b, h, ud);
}

static inline int bus_clustered(const bus_t *b)
{
    return b->clustered;
}

/* This node's id in the cluster (random per process, hex), "local" for the
 * local bus. */
static inline const char *bus_node_id(const bus_t *b)
{
    return b->ops->node_id(b);
}

/* Sends data[0..len) to the other nodes that watch topic (copied; fire and
 * forget: a failure is logged and counted). */
static inline void bus_publish(bus_t *b, const char *topic, const char *data, size_t len)
{
    b->ops->publish(b, topic, data, len);
}

/* Watches topic (again is fine: a topic is watched or not, no count). cb,
 * which may be NULL, runs once with 0 as soon as what is published to the
 * topic reaches this node, or with BUS_EIO when that could not be set up
 * within the timeout (the bus keeps trying) or BUS_ECLOSED. */
static inline void bus_watch(bus_t *b, const char *topic, bus_done_cb cb, void *ud)
{
    b->ops->watch(b, topic, cb, ud);
}

/* Stops watching topic (nothing when it is not watched). */
static inline void bus_unwatch(bus_t *b, const char *topic)
{
    b->ops->unwatch(b, topic);
}

/* Claims username user_key for this node and watches "u:<user_key>" (see
 * the top of this file). exclusive 0 (token mode: one user, many
 * connections, maybe on several nodes) only registers and watches (the
 * claim still shows in bus_user_lookup). cb (may be NULL) gets 0,
 * BUS_ETAKEN (a live node, or a dead one in its reserve window, holds it),
 * BUS_EIO or BUS_ECLOSED; on anything but 0 the name is not claimed and
 * the topic not watched. */
static inline void bus_claim(bus_t *b, const char *user_key, int exclusive, bus_done_cb cb,
                             void *ud)
{
    b->ops->claim(b, user_key, exclusive, NULL, cb, ud);
}

/* bus_claim that may also take the name over from node `takeover` (may be
 * NULL), live, or dead and still reserved: a session restored here after
 * its node went away (a client only comes to another node when its own is
 * unreachable). */
static inline void bus_claim_from(bus_t *b, const char *user_key, int exclusive,
                                  const char *takeover, bus_done_cb cb, void *ud)
{
    b->ops->claim(b, user_key, exclusive, takeover, cb, ud);
}

/* Gives the name back and unwatches its topic (fire and forget). */
static inline void bus_release(bus_t *b, const char *user_key)
{
    b->ops->release(b, user_key);
}

/* Whether user_key is online anywhere, asking the cluster rather than the
 * mirror (which lags a few ms behind a join on another node): cb (may be
 * NULL) gets 0 when some node holds a claim of the name (exclusive or not,
 * so both modes) and is live, dead but in this node's reserve window, or
 * too recent to judge (claimed within the last few seconds by a node this
 * node has not seen yet); this node's own claim counts. BUS_ENOTFOUND when
 * there is none, BUS_EIO on a failure, BUS_ECLOSED after bus_close. One
 * read of the name's claims. cb may run inline (the local bus:
 * BUS_ENOTFOUND; a closed bus). */
static inline void bus_user_lookup(bus_t *b, const char *user_key, bus_done_cb cb, void *ud)
{
    b->ops->user_lookup(b, user_key, cb, ud);
}

/* Reports this node's state of a user (name: display name, ignored for
 * BUS_USER_GONE) and of a room (its local connections; 0 removes it). */
static inline void bus_user_set(bus_t *b, const char *user_key, const char *name,
                                bus_user_state_t st)
{
    b->ops->user_set(b, user_key, name, st);
}

static inline void bus_room_set(bus_t *b, const char *room_key, uint32_t count)
{
    b->ops->room_set(b, room_key, count);
}

/* The mirror: the best state of a user over the other live nodes and
 * the dead ones in their reserve window (RESERVED there). When
 * name is not NULL and the state is not GONE, *name is set to the user's
 * display name (the bus's: valid until the bus next runs a callback). */
static inline bus_user_state_t bus_user_state(const bus_t *b, const char *user_key,
                                              const char **name)
{
    return b->ops->user_state(b, user_key, name);
}

/* Calls fn once per user ONLINE on at least one other live node (key and
 * a display name), in no particular order; not the users only reserved
 * (a dead node's included). */
static inline void bus_users_each(const bus_t *b,
                                  void (*fn)(void *ud, const char *key, const char *name),
                                  void *ud)
{
    b->ops->users_each(b, fn, ud);
}

/* Connections of the room on the other live nodes (a dead node's count
 * goes as soon as it is found dead). */
static inline uint64_t bus_room_count(const bus_t *b, const char *room_key)
{
    return b->ops->room_count(b, room_key);
}

/* Appends the bus's metrics (Prometheus text) to out; nothing for the
 * local bus. */
static inline void bus_metrics(const bus_t *b, buf_t *out)
{
    b->ops->metrics(b, out);
}

/* ---- connection state recovery across nodes --------------------------------
 * A socket kept for recovery by a node that then dies can be restored by
 * another node: the node that owns a session writes its state (an opaque
 * record the chat layer makes) under the session's pid, and the node a
 * client comes back to takes it. Only one node can take a record. */

/* cb gets 0 and a secret shared by every node of the cluster (32 random
 * bytes made by the first node that asked, kept in Redis), BUS_EIO or
 * BUS_ECLOSED; the local bus gives fresh random bytes. cb may run inline. The nodes derive their recovery pids
 * from it, so that any node can restore a session another one made. */
static inline void bus_shared_key(bus_t *b, bus_data_cb cb, void *ud)
{
    b->ops->shared_key(b, cb, ud);
}

/* Writes (replaces) the record of session pid, owned by this node while it
 * lives: no expiry while this node heartbeats; if it dies, the survivors
 * make the record expire ttl_ms later (the recovery window). Fire and
 * forget; nothing for the local bus. */
static inline void bus_session_put(bus_t *b, const char *pid, const char *data, size_t len,
                                   uint32_t ttl_ms)
{
    b->ops->session_put(b, pid, data, len, ttl_ms);
}

/* The session was lost by its client and is kept here: its record expires
 * ttl_ms from now unless it is taken or put again. */
static inline void bus_session_keep(bus_t *b, const char *pid, uint32_t ttl_ms)
{
    b->ops->session_keep(b, pid, ttl_ms);
}

/* The session ended (a goodbye, a recovery window that ran out): its record
 * goes. */
static inline void bus_session_del(bus_t *b, const char *pid)
{
    b->ops->session_del(b, pid);
}

/* Reads and deletes the record of session pid in one step (GETDEL): cb gets
 * 0 and the record, BUS_ENOTFOUND, BUS_EIO or BUS_ECLOSED. The local bus
 * answers BUS_ENOTFOUND. cb may run inline. */
static inline void bus_session_take(bus_t *b, const char *pid, bus_data_cb cb, void *ud)
{
    b->ops->session_take(b, pid, cb, ud);
}

#endif
