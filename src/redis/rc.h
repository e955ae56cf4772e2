/* rc.h - a Redis Cluster client on one libuv loop (hiredis has none).
 *
 * One rc_cluster talks to one Redis Cluster: it reads the slot map with
 * CLUSTER SLOTS, keeps one hiredis async connection per master, routes each
 * command by its key's hash slot, follows -MOVED and -ASK, retries
 * -TRYAGAIN / -CLUSTERDOWN / -LOADING until the command's deadline, re-reads
 * the map after a redirection or a lost connection (and keeps re-reading it
 * while a slot has no reachable master, which is how a failover is noticed),
 * and reconnects with exponential backoff. Commands for a slot whose master
 * is not reachable wait in a bounded queue.
 *
 * Sharded pub/sub (Redis 7: SSUBSCRIBE, SPUBLISH) runs on a second
 * connection per master that this module drives itself (raw libuv TCP and
 * hiredis' reply reader; the hiredis async API cannot parse ssubscribe
 * replies). A subscription follows its slot's master across failovers and
 * resharding: it is moved and subscribed again by itself, and its callback
 * is told when it was lost and when it is active again.
 *
 * Reads go to masters only: replicas are used for nothing but finding the
 * cluster again when every master address fails.
 *
 * Threading and re-entrancy: everything runs on the loop given to
 * rc_create. Callbacks never run inside the rc_* call that registered them;
 * from inside any callback every rc_* function may be called, rc_free
 * included.
 *
 * Errors: functions return 0 or a negative RC_E* code. Client-side failures
 * of a command reach its callback as `err`, one of the RC_ERR_* strings
 * (compare with strcmp); Redis' own error replies (-ERR, -WRONGTYPE,
 * -CROSSSLOT...) arrive as a reply of type REDIS_REPLY_ERROR with err NULL.
 *
 * Memory: this module's allocations abort on OOM (util/mem.h); hiredis'
 * reported failures (OOM included) are checked and treated as a failed
 * connection or a failed send. */
#ifndef PARLEY_REDIS_RC_H
#define PARLEY_REDIS_RC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <hiredis/hiredis.h>

#include "util/buf.h"
#include "util/err.h"

#define RC_EINVAL ERR_INVAL /* a bad argument (a bug in the caller) */
#define RC_ECLOSED ERR_CLOSED /* rc_free has been called */
#define RC_EEXIST ERR_EXIST /* already subscribed to that channel */
#define RC_ENOENT ERR_NOTFOUND /* not subscribed to that channel */

/* The `err` a command callback can get. */
#define RC_ERR_TIMEOUT "timeout"              /* no answer within timeout_ms */
#define RC_ERR_QUEUE_FULL "queue full"        /* max_queued commands already wait */
#define RC_ERR_DISCONNECTED "connection lost" /* sent, then the connection died:
                                                 it may or may not have run */
#define RC_ERR_CLOSED "client closed"         /* rc_free ran first */
#define RC_ERR_REDIRECTS "too many redirects" /* the cluster kept moving it */
#define RC_ERR_SEND "send failed"             /* hiredis refused it (OOM) */

/* Slots in a Redis Cluster. */
#define RC_SLOTS 16384

typedef struct rc_cluster rc_cluster;

/* Zero fields take the default shown. */
typedef struct {
    uint32_t timeout_ms;     /* 2000: every command, from rc_command to its
                                callback, redirections and retries included */
    uint32_t max_queued;     /* 10000: commands waiting for a reachable master */
    uint32_t backoff_min_ms; /* 50: first reconnect delay; also the first
                                delay before retrying -TRYAGAIN/-CLUSTERDOWN */
    uint32_t backoff_max_ms; /* 2000: reconnect delays double up to this */
    uint32_t refresh_ms;     /* 500: how often the slot map is re-read while
                                some slot has no reachable master */
} rc_config;

/* Creates a client for the cluster reachable at one of `seeds`, a list
 * "host:port,host:port" (IPv6 as "[addr]:port"; hosts other than IP
 * literals are resolved with a blocking lookup, and subscriptions need the
 * cluster to announce IP addresses). cfg may be NULL. It starts connecting
 * at once; commands sent before the map is known wait in the queue.
 * Returns 0 and sets *out, or RC_EINVAL for an empty or malformed seed
 * list (*out is then NULL). Free with rc_free. */
int rc_create(uv_loop_t *loop, const char *seeds, const rc_config *cfg, rc_cluster **out);

/* Closes every connection. The callback of each pending command runs with
 * RC_ERR_CLOSED before rc_free returns; subscription callbacks never run
 * again. Memory is released by libuv close callbacks, so the loop must run
 * once more afterwards (uv_run(loop, UV_RUN_NOWAIT) is enough) before it
 * can be closed. c is invalid after the call for every rc_* function; a
 * callback running inside rc_free that calls one gets RC_ECLOSED. c may be
 * NULL. */
void rc_free(rc_cluster *c);

/* The hash slot of a key: CRC16 (XMODEM) mod 16384 of the key, or of the
 * part between the first '{' and the next '}' when that part is not
 * empty (a hash tag: "{user1}.a" and "{user1}.b" share a slot). */
uint16_t rc_slot(const char *key, size_t len);

/* The reply to a command: exactly one of reply and err is non-NULL. reply
 * (and everything it points to) is valid only during the call. */
typedef void (*rc_reply_cb)(void *ud, const redisReply *reply, const char *err);

/* Sends the command argv[0..argc) (argvlen[i] bytes each; argvlen NULL:
 * NUL-terminated strings) to the master of `key`'s slot, or to any master
 * when key is NULL. Every key of a multi-key command must hash to the same
 * slot (choose them with a hash tag), or Redis answers -CROSSSLOT. The
 * arguments are copied: nothing is kept after the call. SPUBLISH goes
 * through here with the channel as key.
 * Returns 0, and then cb runs exactly once, later, never from inside
 * rc_command; or RC_EINVAL (argc < 1, cb NULL, or a (p|s)subscribe /
 * unsubscribe / monitor command, which would break the connection) or
 * RC_ECLOSED, and then cb never runs.
 * A command that timed out may still run on the server; when nothing at
 * all came back on its connection during its timeout, that connection is
 * considered hung and reconnected (the other commands on it fail with
 * RC_ERR_DISCONNECTED). A command is sent again after -MOVED/-ASK (at most
 * 5 hops) and after -TRYAGAIN/-CLUSTERDOWN/-LOADING (with backoff from
 * backoff_min_ms, until its deadline), never after a lost connection:
 * that is RC_ERR_DISCONNECTED. Commands to one slot are sent in order;
 * a redirected or retried one may be overtaken by later ones. */
int rc_command(rc_cluster *c, const char *key, int argc, const char **argv,
               const size_t *argvlen, rc_reply_cb cb, void *ud);

typedef enum {
    RC_SUB_MESSAGE,    /* msg[0..len) was published to channel */
    RC_SUB_SUBSCRIBED, /* the server confirmed the subscription: messages
                          published from now on arrive (again) */
    RC_SUB_LOST,       /* the subscription is gone (connection lost, slot
                          moved, failover); messages published until the
                          next RC_SUB_SUBSCRIBED are missed. The client is
                          already subscribing again. */
} rc_sub_event;

/* channel is the subscription's NUL-terminated name; msg and len are set
 * for RC_SUB_MESSAGE only (msg is not NUL-terminated). Both are valid
 * only during the call. */
typedef void (*rc_sub_cb)(void *ud, rc_sub_event ev, const char *channel, const char *msg,
                          size_t len);

/* Subscribes to the shard channel `channel` (NUL-terminated; copied) with
 * SSUBSCRIBE on the master of its slot, for as long as it takes: it is
 * subscribed again after every loss until rc_sunsubscribe. cb gets
 * RC_SUB_SUBSCRIBED once the server confirms, then messages. Returns 0,
 * RC_EEXIST when already subscribed to it (one callback per channel),
 * RC_EINVAL (channel or cb NULL) or RC_ECLOSED. */
int rc_ssubscribe(rc_cluster *c, const char *channel, rc_sub_cb cb, void *ud);

/* Ends the subscription to `channel`; its callback never runs again, even
 * when called from inside it. Returns 0, RC_ENOENT or RC_ECLOSED. */
int rc_sunsubscribe(rc_cluster *c, const char *channel);

/* Appends the client's metrics (Prometheus text) to out: commands
 * completed, by outcome, their latency (rc_command to callback, redirections
 * and retries included), redirections, slot map reads. */
void rc_metrics(const rc_cluster *c, buf_t *out);

#endif
