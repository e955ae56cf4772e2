/* bus_redis.c - bus.h on the Redis Cluster that also holds the store,
 * through a client of its own (src/redis/rc.h): fan-out between parley
 * nodes, a mirror of the other nodes' presence, username claims, and the
 * session records of connection state recovery across nodes.
 * This file owns the bus's creation, its close, the interface table, the
 * metrics and the failure logs; the other parts are in bus_redis_*.c (the
 * list is at the top of bus_redis_internal.h). What follows describes the
 * whole backend.
 *
 * Node. Each bus is a node with a random id of 16 hex digits (<id>).
 * heartbeat_ms and dead_ms below are its bus_redis_timing: in production
 * BUS_HEARTBEAT_MS (2 s) and BUS_NODE_DEAD_MS (10 s).
 *
 * Keys and channels (<T> a topic, <u> a user key):
 *   parley:{<T>}:bus          shard channel of topic T. A payload on it is
 *                             "<id of the publisher>\n" + the data. Redis
 *                             hashes the text up to the first '}' of T:
 *                             still one channel per topic, never parsed
 *                             back (each watch keeps its topic).
 *   parley:nodes              the registry: a sorted set, member <id>,
 *                             score the node's expiry (wall-clock ms:
 *                             last heartbeat + its dead_ms). A dead
 *                             node's member stays until its expiry + the
 *                             reserve window has passed (see "Dead
 *                             nodes"), removed then by any survivor.
 *   parley:{n:<id>}           a node's presence: a hash, "u:<u>" ->
 *                             "<state digit><display name>" (1 reserved,
 *                             2 online), "r:<room>" -> its connection
 *                             count, and '#seq', the number of the last
 *                             change published. Deleted by its node's
 *                             close, or with a dead node's registry
 *                             member (it is what a survivor that did not
 *                             know the node reads its users from).
 *   parley:{n:<id>}:presence  shard channel of the node's changes (the
 *                             same slot as its hash): "<seq>\n<reset 0|1>\n"
 *                             then one "field\x1fvalue\n" per entry ("" for
 *                             a removed one). Keys and names hold no control
 *                             characters, so the separators are safe.
 *   parley:{u:<u>}:claim      the claims of a username: a hash <id> ->
 *                             the Redis time (ms) of the claim. A void
 *                             field (its node dead, window over) stays
 *                             until an exclusive claim removes it.
 *   parley:recovery-key       the secret the nodes share (bus_shared_key):
 *                             32 random bytes, set by the first node that
 *                             asked, never expires.
 *   parley:{s:<pid>}          the record of session <pid> (opaque bytes):
 *                             no expiry while its node lives, a TTL once
 *                             it is kept (keep) or its node died (sweep).
 *   parley:{n:<id>}:sess      a node's index of its persistent records: a
 *                             sorted set, member <pid>, score the recovery
 *                             window (ms) the record gets if the node dies.
 *                             Same slot as the node's presence hash.
 *
 * Commands per operation:
 *   publish    one SPUBLISH to the topic's master.
 *   watch      SSUBSCRIBE through rc, which subscribes again by itself after
 *              a failover or a resharding (on_topic is told of the loss and
 *              of the return); nothing when already watched.
 *   user_set / room_set   nothing at once: the latest value of each entry
 *              waits in `pending`, and the flush (the bus's turn hook,
 *              TURN_BUS in util/turn.h: once per loop turn, after the
 *              store's completions, one in flight at a time) sends one EVAL of bus_redis__lua_presence that bumps
 *              '#seq', writes the hash and SPUBLISHes the change,
 *              atomically. A
 *              reset (the whole state of this node, from `own`) is sent
 *              instead after a failed flush and when the registry says this
 *              node was missing: nothing reported is ever lost for good.
 *   heartbeat  every heartbeat_ms (and at start): ZADD of our expiry,
 *              then ZRANGE of the registry. A live node new to us is
 *              subscribed to (its presence channel) and, once subscribed,
 *              read with HGETALL; an expired one is dead (see "Dead
 *              nodes"); a live node gone from the set is dropped (it
 *              left), unless the expiry we last read for it has passed
 *              (another survivor removed it first: it is dead).
 *   mirror     per remote node: its entries, the seq of the last change
 *              applied, and whether a snapshot is being read. A change
 *              seq == last + 1 applies; older ones were in the snapshot; a
 *              gap (or a new subscription after a lost one) reads the
 *              snapshot again (HGETALL). A reset message replaces the node's
 *              entries. Aggregates over the nodes (per user: a name, the
 *              number of nodes where it is online and reserved; per room:
 *              the sum) are kept as entries change, so the readers cost one
 *              lookup (users_each: one walk of the users). A dead node's
 *              entries are not updated (no subscription): see "Dead
 *              nodes".
 *   claim      one EVAL of bus__lua_claim on the claim hash (exclusive: with
 *              the nodes of the mirror, those the last registry read found
 *              alive and the dead ones in our reserve window; a field of a
 *              node not in that list is void unless younger than
 *              bus__grace_ms, which covers a node started after that read;
 *              the field of the node taken over is removed whatever it
 *              is), then the watch of "u:<u>". An exclusive claim waits for
 *              a registry read younger than two heartbeats (the first one at
 *              start). release: HDEL, and unwatch.
 *   lookup     one HGETALL of the claim hash; a field counts by the same
 *              rules as in an exclusive claim (our own too), judged with
 *              the mirror as it is (no wait for a fresh registry read) and
 *              the local wall clock for the grace.
 *   shared_key one SET parley:recovery-key <32 random bytes> NX GET (Redis
 *              7): nil means ours was set, a string is the first node's.
 *   session_put  SET of the record (a plain SET: it drops a TTL a keep
 *              gave it) and ZADD <window> <pid> to our index. Two slots, so
 *              two commands; fire and forget.
 *   session_keep PEXPIRE of the record and ZREM from our index (it expires
 *              by itself now). session_del: DEL and ZREM. Fire and forget.
 *   session_take one GETDEL: only one node gets a record. The index entry
 *              of the node that put it stays until that node's keep or del,
 *              or its sweep (a PEXPIRE of a missing key does nothing).
 *   sweep      when a registry read finds a node expired (every survivor,
 *              once per dead node, again at the next read while it fails;
 *              one sweep of a node at a time per survivor; idempotent):
 *              per chunk of BUS__SWEEP_CHUNK (1000):
 *              ZRANGE <index> 0 999 WITHSCORES, one PEXPIRE <record>
 *              <score> per member, and once all are answered ZREM of those
 *              members from the index (by member, never by rank: another
 *              survivor may sweep it too). The sweep is done when a ZRANGE
 *              comes back empty, or shorter than a chunk and its ZREM is
 *              done (the index is gone with its last member). Several
 *              survivors may each PEXPIRE a record: its TTL counts from
 *              the last one, a few ms later. The final sweep, once the
 *              node's expiry + our reserve window has passed (at every
 *              read that finds it until it succeeds; usually the index is
 *              empty by then: one ZRANGE), then sends one EVAL of
 *              bus__lua_unlist: ZREM of the node from the registry unless
 *              its score is no longer past (it came back), and when it is
 *              out, DEL of its presence hash.
 *   close      one EVAL (a reset with no entries, then DEL of the hash), ZREM
 *              from the registry, HDEL of every claim. Lookups in flight
 *              get BUS_ECLOSED inside bus_close, like the claims. Session
 *              records are left as they are: the chat keeps or deletes each session
 *              itself at shutdown, and the puts, keeps and dels still out
 *              are waited for like these. The rc client is freed once they
 *              are answered (each within timeout_ms), not at once: rc_free
 *              drops what hiredis has not written yet, and hiredis writes on
 *              the next loop turn, so an immediate rc_free would send none
 *              of them. Takes and shared-key reads in flight get
 *              BUS_ECLOSED inside bus_close.
 *
 * Dead nodes. A node whose registry score (expiry) is past is dead. Each
 * survivor decides on its own, from its own detection time, with its own
 * reserve_ms (the recovery window; bus_redis_new):
 *   - a live node of its mirror found dead: unsubscribed; its users become
 *     RESERVED (on_presence USERS if one was online: users_each stops
 *     listing them) and its rooms go at once (ROOMS); its sessions are
 *     swept once; it stays in the mirror, dead, until detection +
 *     reserve_ms (a timer armed for the earliest end), then its users go
 *     (USERS). With reserve_ms 0 it is dropped at once instead (nothing
 *     reserved).
 *   - an expired node it never saw alive (it started later, or the node
 *     died before its first read): reserved the same way, only if its
 *     expiry + reserve_ms has not passed; its users come from its presence
 *     hash (one HGETALL, every user RESERVED, no rooms).
 *   - a dead node in the mirror counts in every exclusive claim's list, so
 *     its claims block others' for the window, except a claim that takes
 *     over from it (bus_claim_from: a restored session); bus_user_lookup
 *     counts them too. Once the window is over they are void.
 *   - a dead node that appears in the registry alive again (it was only
 *     cut off, or slow) is subscribed to again; its snapshot replaces the
 *     reserved entries (they stay until it arrives). It sends a reset
 *     itself (it finds it missed its heartbeats).
 *   - its registry member and presence hash stay until its expiry +
 *     reserve_ms has passed, then the final sweep of any survivor removes
 *     them. Survivors with different windows do not coordinate: one with
 *     a shorter window removes the member first, and the others, which no
 *     longer find it, keep it dead for the rest of their own window (an
 *     expiry past at the last read tells a dead node from one that left).
 *
 * Failure behaviour. Every command is bounded by rc's timeout. A failed
 * publish is logged and counted (delivery is at most once). A failed
 * flush turns into a reset, retried by the next heartbeat or change. A
 * failed heartbeat changes nothing (a node is judged by its expiry, so a
 * failover shorter than dead_ms drops nobody); after
 * dead_ms without an acknowledged heartbeat, this node assumes
 * others dropped it and sends a reset. A failed snapshot read is retried
 * by the next heartbeat. A watch not active within timeout_ms reports
 * BUS_EIO and keeps trying; the subscriptions follow failovers by
 * themselves (rc). Wall clocks of the nodes must agree to well within
 * dead_ms. A node that was cut off for longer than that comes
 * back with its presence (reset), but claims others took meanwhile stay
 * theirs (within the reserve window only takeovers: sessions restored
 * elsewhere); and its session records keep the TTL the survivors gave them
 * (its index is gone) until the chat puts each session again. A failed
 * put, keep or del is logged and counted (parley_bus_session_errors_total):
 * a record that missed its ZADD is not swept if its node dies, one that
 * missed its DEL or PEXPIRE stays until taken. A failed take or shared-key
 * read reports BUS_EIO, and so does a failed lookup. A failed sweep stops,
 * and the dead node is still in the registry (its final removal comes
 * after its sweep), so the next registry read starts it over; so does a
 * failed read of a dead node's presence hash.
 * Failure logs are limited to one per BUS__LOG_EVERY_MS.
 *
 * Lifetimes. Callbacks from rc get the bus (which lives until its last
 * handle is closed, after rc_free), a remote node (counted in `refs`, freed
 * by the last reply once dropped), a claim operation (freed by its reply
 * once its callback ran), a lookup, a take or shared-key read (likewise)
 * or a sweep (freed by the last reply of its current step). A watch being handed a
 * message is freed after the handler returns. Memory aborts on OOM (util/mem.h); hiredis replies
 * are checked for their type. */
#include "bus/bus_redis_internal.h"

#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/metrics.h"

#define BUS__TIMEOUT_DEFAULT 2000
#define BUS__LOG_EVERY_MS 1000

/* ---- helpers ------------------------------------------------------------- */

/* a + b + c in one new string (the caller frees it). */
char *bus_redis__cat(const char *a, const char *b, const char *c)
{
    size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
    char *s = mem_alloc(na + nb + nc + 1);
    memcpy(s, a, na);
    memcpy(s + na, b, nb);
    memcpy(s + na + nb, c, nc + 1);
    return s;
}

/* A failure worth a warning, at most one per BUS__LOG_EVERY_MS (a failover
 * fails every command of a master at once). */
void bus_redis__warn(bus__redis *b, const char *what, const redisReply *r, const char *err)
{
    uint64_t now = uv_now(b->loop);
    if (b->warn_at && now - b->warn_at < BUS__LOG_EVERY_MS) {
        b->warn_suppressed++;
        return;
    }
    char text[128];
    if (err)
        snprintf(text, sizeof(text), "%s", err);
    else if (r && r->type == REDIS_REPLY_ERROR)
        snprintf(text, sizeof(text), "%.*s", (int)(r->len < 100 ? r->len : 100), r->str);
    else
        snprintf(text, sizeof(text), "unexpected reply type %d", r ? r->type : -1);
    for (char *p = text; *p; p++) {
        if (*p == '"' || (unsigned char)*p < 0x20)
            *p = '\'';
    }
    log_warn("bus redis failure", "node=%s op=%s err=\"%s\" suppressed=%u", b->id, what, text,
             b->warn_suppressed);
    b->warn_at = now;
    b->warn_suppressed = 0;
}

/* Sends a command whose reply only matters when it failed (logged). */
static void bus__on_reply_logged(void *ud, const redisReply *r, const char *err)
{
    bus__redis *b = ud;
    if (!b->closed && bus_redis__failed(r, err))
        bus_redis__warn(b, "cleanup", r, err);
}

void bus_redis__send_logged(bus__redis *b, const char *key, int argc, const char **argv)
{
    if (rc_command(b->rc, key, argc, argv, NULL, bus__on_reply_logged, b) != 0)
        log_warn("bus redis command refused", "node=%s cmd=%s", b->id, argv[0]);
}

/* ---- close ------------------------------------------------------------------- */

static void bus__free_all(bus__redis *b)
{
    bus_redis__watches_free(b);
    bus_redis__mirror_free(b);
    bus_redis__claims_free(b);
    bus_redis__own_free(b);
    bus_redis__sweeps_free(b);
    mem_free(b->hkey);
    mem_free(b->skey);
    mem_free(b->pchan);
    mem_free(b);
}

static void bus__on_handle_closed(uv_handle_t *h)
{
    bus__redis *b = h->data;
    if (--b->open_handles == 0)
        bus__free_all(b);
}

/* The last commands are answered: frees the client (whatever else is out
 * completes with RC_ERR_CLOSED inside), then the handles. */
static void bus__close_finish(bus__redis *b)
{
    if (b->rc_freed)
        return;
    b->rc_freed = 1;
    rc_free(b->rc);
    b->rc = NULL;
    uv_close((uv_handle_t *)&b->hb_timer, bus__on_handle_closed);
    uv_close((uv_handle_t *)&b->wait_timer, bus__on_handle_closed);
    uv_close((uv_handle_t *)&b->reserve_timer, bus__on_handle_closed);
}

void bus_redis__close_check(bus__redis *b)
{
    if (b->closed && b->closing_cmds == 0 && b->session_out == 0)
        bus__close_finish(b);
}

static void bus__on_close_cmd(void *ud, const redisReply *r, const char *err)
{
    bus__redis *b = ud;
    if (bus_redis__failed(r, err) && (err == NULL || strcmp(err, RC_ERR_CLOSED) != 0))
        log_warn("bus close command failed", "node=%s err=\"%s\"", b->id,
                 err ? err : "error reply");
    b->closing_cmds--;
    bus_redis__close_check(b);
}

static void bus__close_cmd(bus__redis *b, const char *key, int argc, const char **argv)
{
    if (rc_command(b->rc, key, argc, argv, NULL, bus__on_close_cmd, b) == 0)
        b->closing_cmds++;
}

static void bus__op_close(bus_t *bb)
{
    bus__redis *b = bus_redis__self(bb);
    if (b->closed)
        return;
    b->closed = 1;
    uv_timer_stop(&b->hb_timer);
    uv_timer_stop(&b->wait_timer);
    uv_timer_stop(&b->reserve_timer);
    turn_disarm(b->turn, &b->flush);
    log_info("bus closing", "node=%s claims=%u session_cmds=%d", b->id, HASH_COUNT(b->claims),
             b->session_out);

    /* Leave: presence (a reset with no entries, then the hash deleted), the
     * registry, the claims. In order behind what is out on each slot. */
    const char *leave[] = {"EVAL", bus_redis__lua_presence, "2", b->hkey, b->pchan, "2"};
    bus__close_cmd(b, b->hkey, 6, leave);
    const char *zrem[] = {"ZREM", BUS__NODES_KEY, b->id};
    bus__close_cmd(b, BUS__NODES_KEY, 3, zrem);
    for (bus__claim *c = b->claims; c; c = c->hh.next) {
        const char *hdel[] = {"HDEL", c->rkey, b->id};
        bus__close_cmd(b, c->rkey, 3, hdel);
    }

    /* Callbacks due: the watches' (claims waiting for theirs included),
     * then the claims', the takes' and the shared-key reads'. New calls
     * from them fail inline. */
    bus_redis__watches_close(b);
    bus_redis__claims_close(b);
    bus_redis__sessions_close(b);

    /* The session records are left (see the top of this file); the puts,
     * keeps and dels still out are waited for like the leave. */
    bus_redis__close_check(b);
}

/* ---- the interface ---------------------------------------------------------- */

static void bus__op_set_handlers(bus_t *bb, const bus_handlers *h, void *ud)
{
    bus__redis *b = bus_redis__self(bb);
    b->h = *h;
    b->hud = ud;
}

static const char *bus__op_node_id(const bus_t *bb)
{
    return bus_redis__self(bb)->id;
}

static void bus__op_metrics(const bus_t *bb, buf_t *out)
{
    const bus__redis *b = bus_redis__self(bb);
    metrics_single(out, "parley_bus_published_total", "counter",
                   "Publications this node sent to the other nodes.", (double)b->published);
    metrics_single(out, "parley_bus_received_total", "counter",
                   "Publications of other nodes this node received.", (double)b->received);
    metrics_single(out, "parley_bus_publish_errors_total", "counter",
                   "Publications that failed (refused, timed out, or an error reply).",
                   (double)b->publish_errors);
    metrics_single(out, "parley_bus_nodes", "gauge",
                   "Other live nodes in this node's presence mirror.",
                   (double)bus_redis__live_count(b));
    metrics_single(out, "parley_bus_reserved_nodes", "gauge",
                   "Dead nodes whose users this node still keeps reserved (their reserve "
                   "window is not over).", (double)b->ndead);
    metrics_single(out, "parley_bus_watched_topics", "gauge", "Topics this node watches.",
                   (double)HASH_COUNT(b->watches));
    metrics_single(out, "parley_bus_resyncs_total", "counter",
                   "Presence snapshots of another node read again (gap, lost subscription).",
                   (double)b->resyncs);
    metrics_single(out, "parley_bus_topics_lost_total", "counter",
                   "Subscriptions of watched topics lost (failover, lost connection); the "
                   "chat reads what each missed from the store once it is back.",
                   (double)b->topics_lost);
    metrics_single(out, "parley_bus_sessions_put_total", "counter",
                   "Session records this node wrote for recovery by another node.",
                   (double)b->sessions_put);
    metrics_header(out, "parley_bus_sessions_taken_total", "counter",
                   "Session records this node asked for, by result.");
    metrics_sample(out, "parley_bus_sessions_taken_total", "result=\"found\"",
                   (double)b->sessions_taken[0]);
    metrics_sample(out, "parley_bus_sessions_taken_total", "result=\"missing\"",
                   (double)b->sessions_taken[1]);
    metrics_sample(out, "parley_bus_sessions_taken_total", "result=\"error\"",
                   (double)b->sessions_taken[2]);
    metrics_single(out, "parley_bus_session_errors_total", "counter",
                   "Session commands that failed (put, keep, del, take, the shared key, "
                   "the sweep of a dead node's sessions).", (double)b->session_errors);
    metrics_single(out, "parley_bus_dead_sessions_total", "counter",
                   "Session records of dead nodes this node gave their expiry (every "
                   "survivor may count the same record).", (double)b->sessions_expired);
}

static const bus_ops_t bus__redis_ops = {
    .close = bus__op_close,
    .set_handlers = bus__op_set_handlers,
    .node_id = bus__op_node_id,
    .publish = bus_redis__op_publish,
    .watch = bus_redis__op_watch,
    .unwatch = bus_redis__op_unwatch,
    .claim = bus_redis__op_claim,
    .release = bus_redis__op_release,
    .user_lookup = bus_redis__op_user_lookup,
    .user_set = bus_redis__op_user_set,
    .room_set = bus_redis__op_room_set,
    .user_state = bus_redis__op_user_state,
    .users_each = bus_redis__op_users_each,
    .room_count = bus_redis__op_room_count,
    .metrics = bus__op_metrics,
    .shared_key = bus_redis__op_shared_key,
    .session_put = bus_redis__op_session_put,
    .session_keep = bus_redis__op_session_keep,
    .session_del = bus_redis__op_session_del,
    .session_take = bus_redis__op_session_take,
};

static void bus__new_id(char out[BUS__ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[BUS__ID_LEN / 2];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        fprintf(stderr, "parley: RAND_bytes failed\n");
        abort();
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[BUS__ID_LEN] = '\0';
}

int bus_redis_new(turn_t *turn, const char *seeds, uint32_t timeout_ms, uint32_t reserve_ms,
                  const bus_redis_timing *timing, bus_t **out)
{
    *out = NULL;
    if (turn == NULL || seeds == NULL)
        return BUS_EIO;
    uv_loop_t *loop = turn_loop(turn);
    uint32_t heartbeat_ms = timing && timing->heartbeat_ms ? timing->heartbeat_ms
                                                           : BUS_HEARTBEAT_MS;
    uint32_t dead_ms = timing && timing->dead_ms ? timing->dead_ms : BUS_NODE_DEAD_MS;
    if (dead_ms <= heartbeat_ms)
        return BUS_EIO;
    rc_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.timeout_ms = timeout_ms ? timeout_ms : BUS__TIMEOUT_DEFAULT;
    rc_cluster *rc = NULL;
    if (rc_create(loop, seeds, &cfg, &rc) != 0)
        return BUS_EIO;
    bus__redis *b = mem_calloc(1, sizeof(*b));
    b->base.ops = &bus__redis_ops;
    b->base.clustered = 1;
    b->loop = loop;
    b->turn = turn;
    b->rc = rc;
    b->timeout_ms = cfg.timeout_ms;
    b->reserve_ms = reserve_ms;
    b->heartbeat_ms = heartbeat_ms;
    b->dead_ms = dead_ms;
    bus__new_id(b->id);
    b->hkey = bus_redis__cat("parley:{n:", b->id, "}");
    b->pchan = bus_redis__cat(b->hkey, ":presence", "");
    b->skey = bus_redis__cat(b->hkey, ":sess", "");
    uv_timer_init(loop, &b->hb_timer);
    uv_timer_init(loop, &b->wait_timer);
    uv_timer_init(loop, &b->reserve_timer);
    turn_hook_init(&b->flush, TURN_BUS, bus_redis__on_flush, b);
    b->hb_timer.data = b->wait_timer.data = b->reserve_timer.data = b;
    b->open_handles = 3;
    uv_timer_start(&b->hb_timer, bus_redis__on_heartbeat, 0, heartbeat_ms);
    log_info("bus started",
             "node=%s backend=redis reserve_ms=%" PRIu32 " heartbeat_ms=%" PRIu32
             " dead_ms=%" PRIu32,
             b->id, reserve_ms, heartbeat_ms, dead_ms);
    *out = &b->base;
    return 0;
}
