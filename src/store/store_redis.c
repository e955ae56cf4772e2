/* store_redis.c - store.h on a Redis Cluster, through the rc client
 * (src/redis/rc.h): what lets several parley backends share rooms, history
 * and clientIds.
 *
 * Keys. Every operation touches keys of one hash slot per step, and the
 * keys are spread so that no single one is hit by every operation:
 *   parley:{<conv>}:msgs        a conversation's messages: a Stream, one
 *                               entry per message (fields ts, from, to when
 *                               private, fid when the sender has a user
 *                               id, content), trimmed with
 *                               XADD MAXLEN ~ <maxlen>
 *   parley:room:{<key>}         a room: a hash {name, listed, private,
 *                               topic}
 *   parley:{rooms}:names        the room index: key -> name (a hash) ...
 *   parley:{rooms}:order        ... and keys in creation order (a list);
 *                               written once per room, read by room_list
 *   parley:<n>:{u:<user>}:cid:<clientId>
 *                               a clientId entry, "<expires_ms> <ts_ms> <id>"
 *                               with PX expires_ms - ts_ms; n is strlen(user),
 *                               so no user/clientId pair can spell another's
 *                               key; the hash tag puts a user's entries in
 *                               one slot, users spread over the cluster.
 *   parley:{u:<user>}:pconv     a user's private conversations, for
 *                               recovery: a sorted set, member the
 *                               conversation's name, score the ts_ms of its
 *                               newest message; entries a day older than
 *                               the message being written are trimmed at
 *                               each write, and the key expires a day after
 *                               the last one. The user's slot (the tag of
 *                               its clientIds); no other key can spell it:
 *                               after "parley:" it has "{u:", a clientId
 *                               key a digit, a conversation's "{r:" or
 *                               "{p:", the room keys "room:" or "{rooms}";
 *                               the one other "{u:" key, the bus's claim
 *                               (bus_redis_claim.c), ends in "}:claim".
 * Contract v2 (store_redis_users.c), each family with a tag of its own
 * ("{i:", "{nm:", "{secret:", "{users}": none of this file's nor the
 * bus's, which has "{n:" and "{s:"), every key ending in a suffix no other
 * key ends in:
 *   parley:{i:<id>}:user        a user: a hash {key, name, created, seen,
 *                               guest}; in the same slot, what it owns:
 *   parley:{i:<id>}:rooms, :rjoin, :rname
 *                               its rooms in join order (a sorted set, the
 *                               score a counter kept in :rjoin), join times
 *                               and display names (hashes);
 *   parley:{i:<id>}:read        its read marks, conversation -> stream id;
 *   parley:{i:<id>}:dconv       its direct conversations (a set, added to
 *                               by each direct append, like pconv).
 *   parley:{nm:<key>}:owner     a name: its owner's id.
 *   parley:{users}:guests       guest users by seen_ms (a sorted set): what
 *                               a purge reads. Shared, written by guest
 *                               claims and touches only.
 *   parley:{r:<room>}:members, :joined, :roles, :flags
 *                               a room's members in join order, join times,
 *                               roles, bans/mutes/invitations
 *                               (store_redis_rooms.c): the slot of the
 *                               room's messages.
 *   parley:{secret:<name>}:bytes a shared secret (SET NX in a script).
 * Messages that live (store_redis_msgs.c), in a conversation's slot:
 *   parley:{<conv>}:mx, :tomb   edits, reactions and tombstones; the
 *                               tombstones in id order. Every read of
 *                               messages (history, since, get) is one
 *                               script merging them with the stream.
 * Users: what is atomic and what is not. A name changes owner with one
 * script on its key (taken only when it is free or still the owner read
 * before: two servers claiming at once get one winner); a read mark only
 * moves forward (a script on the user's marks); a membership is added or
 * removed by one script per side. Everything else spans slots and is
 * written in steps, ordered so that a crash in between leaves nothing a
 * reader can reach: a new user is written (with its guests entry) before
 * its name points to it (a claim that then loses the name deletes it; an
 * ensure that loses leaves an unreachable record); a rename takes the new
 * name, then updates the user, then frees the old name (a reader finding
 * a name whose owner no longer holds that key treats it as free); a
 * membership is written on the room's side, then the user's (the next add
 * or remove of the pair repairs a half-written one); a purge deletes the
 * user's memberships, direct conversations (their streams and the peers'
 * index entries) and name, then its own keys, and its guests entry last,
 * so an interrupted purge is finished by the next one. While a purge runs,
 * readers may see part of it (a peer's list naming a conversation already
 * empty). The lanes of these ops: the user's hash or the name's key, the
 * room's members key, the conversation (read state); a purge's fan-out
 * writes join none (an expired guest has no connection to race with,
 * and a claim of its name holds the name's lane).
 * The rooms index is the one shared key, and only room creation (rare) and
 * room lists (one per presence window) touch it; joins, messages and
 * history never do. A room is created in two writes (its hash, then the
 * index); when the second fails the create answers STORE_EIO and the room
 * is not listed until the next create of that key, which sees `listed`
 * missing and writes the index again (idempotent). A busy conversation is
 * one key on one master: its order needs that. Keys may hold '}': Redis
 * then hashes a shorter tag, the same for every key built from it.
 *
 * Ids. A message id is its stream entry id "<ms>-<seq>" followed by
 * ".<tag>", the conversation's 32-bit FNV-1a hash in 8 hex digits: unique
 * in its conversation and increasing (Redis never goes back on a stream's
 * last id, not even when a promoted replica's clock is behind). Stream ids
 * of different conversations often coincide; the tag is what tells an id
 * of another conversation (wrong tag: STORE_EBADID with no round trip),
 * short of a 1 in 2^32 hash collision between two conversations that also
 * share a stream id. `before` must then be an id still in that stream
 * or a tombstone of it (checked by the read script): one trimmed by
 * MAXLEN is STORE_EBADID. A
 * message's ts_ms is the server-provided one, stored as a field (the id's
 * ms part is Redis' clock, used for nothing but order).
 *
 * Order. rc_command gives no order across a retry or a redirection, so the
 * store serializes by itself: every operation joins the lane (a FIFO,
 * src/util/lanes.h) of each key it touches (the conversation; the sending user's clientIds for an
 * append with a clientId; the room key; not the pconv indexes, see
 * Recovery) and starts only when it heads every one of its lanes, its
 * steps chained one after the other (but the last round trip of an
 * append, whose commands go out together). Lanes are joined in start
 * order, so an operation waits only for older ones and none waits forever:
 * every step has rc's deadline. Hence, per conversation, room and
 * user: operations take effect one at a time, in start order, and complete
 * in that order. Different keys run concurrently. The lanes are this
 * process's: two parley servers appending the same user's clientId at the
 * same moment (one round trip apart) can both miss it and store twice.
 *
 * Durability. An append is reported once Redis acknowledged the XADD and,
 * with wait_replicas > 0 (--redis-wait-replicas), a WAIT for that many
 * replicas returned (bounded at STORE_REDIS__WAIT_MS: while replicas are missing
 * the append still succeeds, on the master alone, logged, and WAIT is
 * skipped for STORE_REDIS__WAIT_SKIP_MS after one fell short). With the
 * cluster's appendonly, a restart loses at most the last fsync second of a
 * node that had no replica in sync; a failover loses nothing that WAIT saw
 * replicated. A clientId entry is written after its message (see
 * store_msg_append): a failure to write it is logged, and the append still
 * succeeds, because the message is stored.
 *
 * Recovery. store_since reads the conversation's stream from the id time
 * since_ms - STORE_REDIS__SKEW_MS (ids are Redis' clock, ts the server's: the
 * margin lets them disagree by that much), in XRANGE chunks, dropping the
 * entries whose ts is not after since_ms, each chunk starting just after
 * the last entry read, until it has limit + 1 entries (the last one only
 * says has_more) or the stream ends. A message whose id is more than the
 * margin behind its ts is missed. store_private_convs reads the user's
 * pconv index (ZRANGEBYSCORE (since_ms +inf). An append to a private
 * conversation writes the index of both users after the message is stored
 * (like the clientId entry: an entry never names a conversation without
 * that message; a failed write is logged, the append still succeeds, and
 * the conversation is missing from that index until its next message) and
 * before its callback runs, so a private_convs started after that
 * callback sees it. private_convs joins no lane: it may also see the entry
 * of an append whose callback has not run yet.
 *
 * Cost. Round trips, each of one command to one master: room_get,
 * room_list, private_convs and a history page (the read script, with or
 * without `before`): 1; msg_get, msg_edit, msg_delete, a reaction: 1;
 * member_rooms: 2 (the list, then every room's role of the user at once);
 * room_create: 1, 3 the first time; since: 1 per chunk of up
 * to max(limit + 1, STORE_REDIS__SINCE_CHUNK) entries, usually 1. An append: a
 * GET (with a clientId), the XADD, a WAIT (with wait_replicas), then
 * together, in one more round trip, the SET of the clientId (with one)
 * and, in a private conversation, one EVAL (ZADD GT, ZREMRANGEBYSCORE,
 * PEXPIRE) per user of the pair: two commands more than a room message
 * (one for a user's conversation with itself), on the two users' masters;
 * a direct conversation ("d:") the same with one SADD per user instead.
 *
 * Completion. Callbacks run later, from rc's reply callbacks, or from the
 * store's turn hook (TURN_STORE, util/turn.h) for operations that fail
 * before reaching Redis (bad limit,
 * malformed id, rc refusing a command). Each kind of operation has its
 * own start (a store_redis__kind: store_redis__run_append, ...) and one
 * reply handler per step (store_redis__on_xadded, ...), which sends the
 * next step's command or finishes the operation; every reply passes
 * through store_redis__on_reply first (bookkeeping, errors logged and
 * given to the handler as NULL). Finishing goes through store_op.h, which
 * the SQLite store shares.
 *
 * Read state. A message carries its sender's id (field fid). read_get
 * and read_mark walk the conversation back from its newest message to the
 * user's mark in XREVRANGE chunks of STORE_REDIS__READ_CHUNK (see
 * store_redis_users.c), stopping at the user's own newest message: round
 * trips grow with the unread count, appends write nothing for it.
 *
 * Files: this one (op records, lanes, commands, replies; rooms and
 * messages), store_redis_users.c (contract v2), store_redis_msgs.c
 * (messages that live: the read script, edits, deletes, reactions,
 * replies), store_redis_rooms.c (roles and owners), store_redis_int.h
 * what they share.
 *
 * Memory: every allocation of this file and of the lanes goes through
 * mem.h and aborts on OOM (no uthash here); hiredis' and rc's reported
 * failures, OOM included, become STORE_EIO, logged. */
#include "store/store_redis_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "redis/rc.h"
#include "util/lanes.h"
#include "util/log.h"
#include "util/mem.h"

#define STORE_REDIS__MAXLEN_DEFAULT 10000
#define STORE_REDIS__WAIT_MS "500"
/* After a WAIT that timed out, appends skip WAIT for this long: a master
 * without a replica costs one 100 ms wait per second, not one per message
 * (a conversation's appends run one at a time). */
#define STORE_REDIS__WAIT_SKIP_MS 1000
/* store_since starts this much before since_ms in stream id time (Redis'
 * clock) to find the messages whose ts (the server's clock) is after it. */
#define STORE_REDIS__SKEW_MS 10000
/* Entries store_since asks for at least, per XRANGE: the margin's
 * entries are read and dropped, so asking for just limit + 1 would often
 * cost a second round trip. */
#define STORE_REDIS__SINCE_CHUNK 64
/* How long a user's pconv index remembers a conversation. */
#define STORE_REDIS__PCONV_KEEP_MS ((int64_t)86400000)

/* Creates the room unless it exists, with its settings (ARGV = name,
 * private, topic): {created, name, listed}. */
static const char store_redis__lua_room_create[] =
    "local c = redis.call('HSETNX', KEYS[1], 'name', ARGV[1]) "
    "if c == 1 then redis.call('HSET', KEYS[1], 'private', ARGV[2], 'topic', ARGV[3]) end "
    "return {c, redis.call('HGET', KEYS[1], 'name'), redis.call('HEXISTS', KEYS[1], 'listed')}";
/* Adds a room to the index once: KEYS = names, order. */
static const char store_redis__lua_index_add[] =
    "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then "
    "redis.call('RPUSH', KEYS[2], ARGV[1]) end return 1";
/* Every room, in creation order: key, name, key, name... */
static const char store_redis__lua_room_list[] =
    "local k = redis.call('LRANGE', KEYS[2], 0, -1) local r = {} "
    "for i, x in ipairs(k) do r[2*i-1] = x r[2*i] = redis.call('HGET', KEYS[1], x) or x end "
    "return r";

/* Notes a private conversation in a user's index: KEYS = the index; ARGV =
 * ts_ms, conversation, ts_ms - STORE_REDIS__PCONV_KEEP_MS, STORE_REDIS__PCONV_KEEP_MS.
 * GT keeps the newest time when two servers' appends cross. */
static const char store_redis__lua_pconv_add[] =
    "redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[2]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3]) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[4]) return 1";

static const char store_redis__names_key[] = "parley:{rooms}:names";
static const char store_redis__order_key[] = "parley:{rooms}:order";


static void store_redis__complete_ready(void *ud);
static void store_redis__on_reply(void *ud, const redisReply *r, const char *err);
/* (defined with the kinds' start functions, below) */
static const store_redis__kind store_redis__history_kind, store_redis__since_kind;

/* ---- op records ---------------------------------------------------------- */

store_redis__op *store_redis__op_new(store_redis *st, const store_redis__kind *kind,
                                            store_op_call call)
{
    store_redis__op *op = mem_calloc(1, sizeof(*op));
    op->st = st;
    op->kind = kind;
    op->call = call;
    op->prev = st->last;
    if (st->last)
        st->last->next = op;
    else
        st->first = op;
    st->last = op;
    return op;
}

static void store_redis__op_free(store_redis__op *op)
{
    mem_free(op->key);
    mem_free(op->mx_key);
    mem_free(op->tomb_key);
    /* the union's pointers, whichever kind set them (the rest is zero) */
    if (op->call.kind == STORE_OP_ROOM) {
        mem_free(op->in.room_create.key);
        mem_free(op->in.room_create.name);
        mem_free(op->in.room_create.topic);
        mem_free(op->in.room_create.owner);
    } else if (op->call.kind == STORE_OP_APPEND) {
        mem_free(op->in.append.from);
        mem_free(op->in.append.to);
        mem_free(op->in.append.content);
        mem_free(op->in.append.cid_key);
        mem_free(op->in.append.cid_route);
        mem_free(op->in.append.conv);
        mem_free(op->in.append.pconv[0]);
        mem_free(op->in.append.pconv[1]);
        mem_free(op->in.append.from_id);
        mem_free(op->in.append.dconv[0]);
        mem_free(op->in.append.dconv[1]);
        mem_free(op->in.append.reply);
        mem_free(op->in.append.action);
        mem_free(op->in.append.user);
    } else if (op->call.kind == STORE_OP_COUNT && op->x == NULL) { /* store_redis_rooms.c */
        for (int i = 0; i < 3; i++)
            mem_free(op->in.role.keys[i]);
        mem_free(op->in.role.user_id);
    } else if (op->call.kind == STORE_OP_MSG) {
        mem_free(op->in.msg.sid);
        mem_free(op->in.msg.text);
        mem_free(op->in.msg.user_id);
        mem_free(op->in.msg.username);
    } else if (op->kind == &store_redis__history_kind) {
        mem_free(op->in.history.before);
    } else if (op->kind == &store_redis__since_kind) {
        mem_free(op->in.since.after);
    }
    if (op->x_free)
        op->x_free(op->x);
    store_op__clear(op->call.kind, &op->res);
    mem_free(op);
}

/* ---- lanes --------------------------------------------------------------- */

static void store_redis__run(store_redis__op *op)
{
    op->started = 1;
    op->kind->run(op);
}

/* Starts op now if it heads its lanes; else the op ahead starts it. */
void store_redis__submit(store_redis__op *op)
{
    if (lanes_heads(op->ln, op->nlanes))
        store_redis__run(op);
}

void store_redis__lane_join(store_redis__op *op, const char *key)
{
    lanes_join(&op->st->lanes, &op->ln[op->nlanes++], key, op);
}

/* Takes op (the head of each of its lanes) out of them and starts the ops
 * that now head all of theirs (none finishes inside its start). */
static void store_redis__lanes_leave(store_redis__op *op)
{
    store_redis *st = op->st;
    store_redis__op *next[2];
    int nnext = 0;
    for (int i = 0; i < op->nlanes; i++) {
        store_redis__op *n = lanes_leave(&st->lanes, &op->ln[i]);
        if (n)
            next[nnext++] = n;
    }
    op->nlanes = 0;
    for (int i = 0; i < nnext; i++)
        if (!st->base.closed && !next[i]->started && lanes_heads(next[i]->ln, next[i]->nlanes))
            store_redis__run(next[i]);
}

/* ---- finishing ----------------------------------------------------------- */

/* Runs op's callback once with rc and op->res, takes op out of the store,
 * and starts what waited for it. The record lives on while an rc command
 * of it is out. */
void store_redis__finish(store_redis__op *op, int rc)
{
    store_redis *st = op->st;
    op->done = 1;
    if (op->prev)
        op->prev->next = op->next;
    else
        st->first = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        st->last = op->prev;
    op->prev = op->next = NULL;
    store_op__complete(&op->call, rc, &op->res);
    store_redis__lanes_leave(op);
    if (!op->inflight)
        store_redis__op_free(op);
}

/* A reply that is not what the step expects (r not NULL), or a failed
 * command (r NULL, logged already): the op fails with STORE_EIO. */
void store_redis__fail(store_redis__op *op, const redisReply *r)
{
    if (r)
        log_error("store redis unexpected reply", "op=%s cmd=%s type=%d", op->kind->name,
                  op->cmd, r->type);
    store_redis__finish(op, STORE_EIO);
}

/* Completes op at the end of the turn: for failures found before Redis
 * saw it (never inside the call that started it). */
void store_redis__ready(store_redis__op *op, int rc)
{
    store_redis *st = op->st;
    op->ready_rc = rc;
    op->ready_next = NULL;
    if (st->ready_last)
        st->ready_last->ready_next = op;
    else
        st->ready = op;
    st->ready_last = op;
    turn_arm(st->turn, &st->ready_hook);
}

static void store_redis__complete_ready(void *ud)
{
    store_redis *st = ud;
    store_redis__op *op = st->ready;
    st->ready = st->ready_last = NULL;
    while (op) {
        store_redis__op *next = op->ready_next;
        store_redis__finish(op, op->ready_rc);
        op = next;
    }
}

/* ---- commands ------------------------------------------------------------ */

/* Sends one command of op's current step, whose replies go to on_reply.
 * Returns 0, or STORE_EIO when rc refused it (never expected; logged). */
int store_redis__command(store_redis__op *op, store_redis__reply_fn on_reply,
                                const char *key, int argc, const char **argv,
                                const size_t *argvlen)
{
    op->on_reply = on_reply;
    op->cmd = argv[0];
    if (rc_command(op->st->rc, key, argc, argv, argvlen, store_redis__on_reply, op) != 0) {
        log_error("store redis command refused", "op=%s cmd=%s", op->kind->name, argv[0]);
        return STORE_EIO;
    }
    op->inflight++;
    return 0;
}

/* Sends the one command of op's next step; a refusal fails op with
 * STORE_EIO at the end of the turn. */
void store_redis__send(store_redis__op *op, store_redis__reply_fn on_reply,
                              const char *key, int argc, const char **argv,
                              const size_t *argvlen)
{
    if (store_redis__command(op, on_reply, key, argc, argv, argvlen) != 0)
        store_redis__ready(op, STORE_EIO);
}

/* Every reply of the store's commands: bookkeeping, then the step's own
 * handler (with NULL for a failed command). */
static void store_redis__on_reply(void *ud, const redisReply *r, const char *err)
{
    store_redis__op *op = ud;
    op->inflight--;
    if (op->done) { /* closed while this command was out */
        if (op->inflight == 0)
            store_redis__op_free(op);
        return;
    }
    if (err || r == NULL || r->type == REDIS_REPLY_ERROR) {
        log_warn("store redis command failed", "op=%s cmd=%s err=\"%.*s\"", op->kind->name,
                 op->cmd, err ? (int)strlen(err) : r ? (int)r->len : 0,
                 err ? err : r ? r->str : "");
        r = NULL;
    }
    op->on_reply(op, r);
}

/* ---- replies: parsing ---------------------------------------------------- */

char *store_redis__dup_reply(const redisReply *r)
{
    if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS))
        return NULL;
    return mem_strndup(r->str, r->len);
}

/* Parses a decimal int64 in s[0..n), all of it: 0 or STORE_EIO. */
int store_redis__parse_i64(const char *s, size_t n, int64_t *out)
{
    char buf[32];
    if (n == 0 || n >= sizeof(buf))
        return STORE_EIO;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end)
        return STORE_EIO;
    *out = v;
    return 0;
}

/* An integer reply, or a string one holding an integer: 0 or STORE_EIO. */
int store_redis__reply_i64(const redisReply *r, int64_t *out)
{
    if (r && r->type == REDIS_REPLY_INTEGER) {
        *out = r->integer;
        return 0;
    }
    if (r == NULL || r->type != REDIS_REPLY_STRING)
        return STORE_EIO;
    return store_redis__parse_i64(r->str, r->len, out);
}

/* The tag of a conversation in its message ids: FNV-1a, 32 bits. */
uint32_t store_redis__conv_tag(const char *conv)
{
    uint32_t h = 2166136261u;
    while (*conv)
        h = (h ^ (unsigned char)*conv++) * 16777619u;
    return h;
}

/* "<ms>-<seq>", both decimal without sign or leading zero, each fitting
 * in 64 bits: the form of a stream id, checked before Redis sees it. */
int store_redis__stream_id_valid(const char *s)
{
    for (int part = 0; part < 2; part++) {
        const char *p = s;
        while (*s >= '0' && *s <= '9')
            s++;
        size_t n = (size_t)(s - p);
        if (n == 0 || n > 20 || (n > 1 && p[0] == '0'))
            return 0;
        if (n == 20 && memcmp(p, "18446744073709551615", 20) > 0)
            return 0;
        if (part == 0) {
            if (*s != '-')
                return 0;
            s++;
        }
    }
    return *s == '\0';
}

/* A message id "<stream id>.<tag as 8 hex digits>" of the conversation
 * tagged `tag`: cuts the tag off (leaving the stream id in s) and says
 * whether it is one. */
int store_redis__id_split(char *s, uint32_t tag)
{
    char want[16];
    char *dot = strrchr(s, '.');
    snprintf(want, sizeof(want), ".%08" PRIx32, tag);
    if (dot == NULL || strcmp(dot, want) != 0)
        return 0;
    *dot = '\0';
    return store_redis__stream_id_valid(s);
}

/* Appends the tag to a stream id (into id[STORE_ID_MAX]): 0, or STORE_EIO
 * when the id is too long to be one of ours. */
int store_redis__id_make(char id[STORE_ID_MAX], const char *sid, size_t len, uint32_t tag)
{
    if (len + 10 > STORE_ID_MAX)
        return STORE_EIO;
    memcpy(id, sid, len);
    snprintf(id + len, STORE_ID_MAX - len, ".%08" PRIx32, tag);
    return 0;
}

/* One stream entry [id, [field, value...]] (or a read script's item,
 * which starts the same) into *m (zeroed by the caller): 0 or STORE_EIO
 * (m may then hold fields to free). */
int store_redis__parse_entry(const redisReply *e, uint32_t tag, store_msg_t *m)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY ||
        store_redis__id_make(m->id, e->element[0]->str, e->element[0]->len, tag) != 0)
        return STORE_EIO;
    const redisReply *f = e->element[1];
    int has_ts = 0;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return STORE_EIO;
        if (k->len == 2 && memcmp(k->str, "ts", 2) == 0) {
            if (store_redis__parse_i64(v->str, v->len, &m->ts_ms) != 0)
                return STORE_EIO;
            has_ts = 1;
        } else if (k->len == 4 && memcmp(k->str, "from", 4) == 0 && !m->from) {
            m->from = mem_strndup(v->str, v->len);
        } else if (k->len == 2 && memcmp(k->str, "to", 2) == 0 && !m->to) {
            m->to = mem_strndup(v->str, v->len);
        } else if (k->len == 3 && memcmp(k->str, "fid", 3) == 0 && !m->from_id) {
            m->from_id = mem_strndup(v->str, v->len);
        } else if (k->len == 3 && memcmp(k->str, "act", 3) == 0 && !m->action) {
            m->action = mem_strndup(v->str, v->len);
        } else if (k->len == 3 && memcmp(k->str, "usr", 3) == 0 && !m->user) {
            m->user = mem_strndup(v->str, v->len);
        } else if (k->len == 7 && memcmp(k->str, "content", 7) == 0 && !m->content) {
            m->content = mem_strndup(v->str, v->len);
            m->content_len = v->len;
        }
    }
    return has_ts && m->from && m->content ? 0 : STORE_EIO;
}

static void store_redis__msg_free(store_msg_t *m)
{
    store_msg_free(m);
}

/* "<expires_ms> <ts_ms> <id>" (what store_redis__append_after writes)
 * into *out when the entry is alive at now: 1; else 0 (expired, or not
 * in that form: logged, and the append goes on as if it were missing). */
static int store_redis__parse_cid(const redisReply *r, int64_t now, store_appended_t *out)
{
    const char *s = NULL, *end = NULL, *sp1 = NULL, *sp2 = NULL;
    if (r->type == REDIS_REPLY_STRING && r->len > 0) {
        s = r->str;
        end = s + r->len;
        sp1 = memchr(s, ' ', r->len);
        sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    }
    int64_t exp, ts;
    size_t idlen = sp2 ? (size_t)(end - sp2 - 1) : 0;
    if (sp2 == NULL || store_redis__parse_i64(s, (size_t)(sp1 - s), &exp) != 0 ||
        store_redis__parse_i64(sp1 + 1, (size_t)(sp2 - sp1 - 1), &ts) != 0 || idlen == 0 ||
        idlen >= STORE_ID_MAX) {
        log_warn("store redis clientId entry malformed", "type=%d", r->type);
        return 0;
    }
    if (exp <= now)
        return 0;
    memcpy(out->id, sp2 + 1, idlen);
    out->id[idlen] = '\0';
    out->ts_ms = ts;
    out->duplicate = 1;
    return 1;
}

/* ---- rooms --------------------------------------------------------------- */

static void store_redis__on_room_listed(store_redis__op *op, const redisReply *r)
{
    if (r == NULL)
        store_redis__fail(op, r);
    else
        store_redis__room_owned(op);
}

/* The index has the room: mark the room listed (see the top of the file). */
static void store_redis__on_room_indexed(store_redis__op *op, const redisReply *r)
{
    if (r == NULL) {
        store_redis__fail(op, r);
        return;
    }
    const char *argv[] = {"HSET", op->key, "listed", "1"};
    store_redis__send(op, store_redis__on_room_listed, op->key, 4, argv, NULL);
}

/* The room script's {created, name, listed}: done, or index the room. */
static void store_redis__on_room_created(store_redis__op *op, const redisReply *r)
{
    int64_t created = 0, listed = 0;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        store_redis__reply_i64(r->element[0], &created) != 0 ||
        store_redis__reply_i64(r->element[2], &listed) != 0 ||
        (op->res.room.name = store_redis__dup_reply(r->element[1])) == NULL) {
        store_redis__fail(op, r);
        return;
    }
    op->res.room.created = created == 1;
    if (listed) {
        store_redis__room_owned(op);
        return;
    }
    const char *argv[] = {"EVAL", store_redis__lua_index_add, "2", store_redis__names_key,
                          store_redis__order_key, op->in.room_create.key, op->res.room.name};
    store_redis__send(op, store_redis__on_room_indexed, store_redis__order_key, 7, argv, NULL);
}

static void store_redis__run_room_create(store_redis__op *op)
{
    const char *argv[] = {"EVAL", store_redis__lua_room_create, "1", op->key,
                          op->in.room_create.name, op->in.room_create.is_private ? "1" : "0",
                          op->in.room_create.topic ? op->in.room_create.topic : ""};
    store_redis__send(op, store_redis__on_room_created, op->key, 7, argv, NULL);
}

static void store_redis__on_room_got(store_redis__op *op, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_NIL)
        store_redis__finish(op, STORE_ENOTFOUND);
    else if ((op->res.room.name = store_redis__dup_reply(r)) == NULL)
        store_redis__fail(op, r);
    else
        store_redis__finish(op, 0);
}

static void store_redis__run_room_get(store_redis__op *op)
{
    const char *argv[] = {"HGET", op->key, "name"};
    store_redis__send(op, store_redis__on_room_got, op->key, 3, argv, NULL);
}

/* The list script's key, name, key, name... */
static void store_redis__on_room_list(store_redis__op *op, const redisReply *r)
{
    store_room_list_t *l = &op->res.list;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        store_redis__fail(op, r);
        return;
    }
    if (r->elements)
        l->rooms = mem_calloc(r->elements / 2, sizeof(*l->rooms));
    for (size_t i = 0; i < r->elements; i += 2) {
        store_room_t *room = &l->rooms[l->n++];
        room->key = store_redis__dup_reply(r->element[i]);
        room->name = store_redis__dup_reply(r->element[i + 1]);
        if (room->key == NULL || room->name == NULL) {
            store_redis__fail(op, r); /* frees the part read */
            return;
        }
    }
    store_redis__finish(op, 0);
}

static void store_redis__run_room_list(store_redis__op *op)
{
    const char *argv[] = {"EVAL", store_redis__lua_room_list, "2", store_redis__names_key,
                          store_redis__order_key};
    store_redis__send(op, store_redis__on_room_list, store_redis__order_key, 5, argv, NULL);
}

/* ---- appends ------------------------------------------------------------- */

/* Each reply of the append's last round trip: whatever it says (a failure
 * is logged), the message is stored; the last one completes the append. */
static void store_redis__on_append_after(store_redis__op *op, const redisReply *r)
{
    (void)r;
    if (op->inflight == 0)
        store_redis__finish(op, 0);
}

/* The message is stored: writes the clientId entry (with one) and the
 * pconv index of each user (private conversation) at once, and completes
 * the append when they all answered, whatever they answered (see the top
 * of the file). A refused command counts as a failed write. */
static void store_redis__append_after(store_redis__op *op)
{
    const store_appended_t *res = &op->res.append;
    if (op->in.append.cid_key) {
        char val[96], px[24];
        int64_t ttl = op->in.append.cid_expires_ms - op->in.append.ts_ms;
        snprintf(val, sizeof(val), "%" PRId64 " %" PRId64 " %s", op->in.append.cid_expires_ms,
                 res->ts_ms, res->id);
        snprintf(px, sizeof(px), "%" PRId64, ttl > 0 ? ttl : 1);
        const char *argv[] = {"SET", op->in.append.cid_key, val, "PX", px};
        size_t len[] = {3, op->in.append.cid_key_len, strlen(val), 2, strlen(px)};
        (void)store_redis__command(op, store_redis__on_append_after, op->in.append.cid_route, 5,
                                   argv, len);
    }
    if (op->in.append.npconv) {
        char ts[24], cut[24], keep[24];
        snprintf(ts, sizeof(ts), "%" PRId64, op->in.append.ts_ms);
        snprintf(cut, sizeof(cut), "%" PRId64, op->in.append.ts_ms - STORE_REDIS__PCONV_KEEP_MS);
        snprintf(keep, sizeof(keep), "%" PRId64, STORE_REDIS__PCONV_KEEP_MS);
        for (int i = 0; i < op->in.append.npconv; i++) {
            const char *argv[] = {"EVAL", store_redis__lua_pconv_add, "1", op->in.append.pconv[i],
                                  ts, op->in.append.conv, cut, keep};
            (void)store_redis__command(op, store_redis__on_append_after,
                                       op->in.append.pconv[i], 8, argv, NULL);
        }
    }
    for (int i = 0; i < op->in.append.ndconv; i++) {
        const char *argv[] = {"SADD", op->in.append.dconv[i], op->in.append.conv};
        (void)store_redis__command(op, store_redis__on_append_after, op->in.append.dconv[i], 3,
                                   argv, NULL);
    }
    if (op->inflight == 0)
        store_redis__finish(op, 0);
}

/* WAIT's count of replicas: short of wait_replicas (or a failed WAIT),
 * the append still succeeds; WAIT is skipped for a while. */
static void store_redis__on_waited(store_redis__op *op, const redisReply *r)
{
    store_redis *st = op->st;
    if (r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer < (long long)st->wait_replicas) {
        log_warn("store redis append not replicated in time", "id=%s", op->res.append.id);
        st->wait_skip_until = uv_now(st->loop) + STORE_REDIS__WAIT_SKIP_MS;
    }
    store_redis__append_after(op);
}

/* XADD's stream id: the message is stored. */
void store_redis__on_xadded(store_redis__op *op, const redisReply *r)
{
    store_redis *st = op->st;
    if (r == NULL || r->type != REDIS_REPLY_STRING ||
        store_redis__id_make(op->res.append.id, r->str, r->len, op->tag) != 0) {
        store_redis__fail(op, r);
        return;
    }
    op->res.append.ts_ms = op->in.append.ts_ms;
    if (st->wait_replicas && uv_now(st->loop) >= st->wait_skip_until) {
        const char *argv[] = {"WAIT", st->wait_txt, STORE_REDIS__WAIT_MS};
        store_redis__send(op, store_redis__on_waited, op->key, 3, argv, NULL);
        return;
    }
    store_redis__append_after(op); /* no WAIT, or replicas are missing */
}

static void store_redis__xadd(store_redis__op *op)
{
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRId64, op->in.append.ts_ms);
    const char *argv[24] = {"XADD", op->key, "MAXLEN", "~", op->st->maxlen_txt, "*",
                            "ts", ts, "from", op->in.append.from};
    size_t len[24];
    int argc = 10;
    if (op->in.append.to) {
        argv[argc++] = "to";
        argv[argc++] = op->in.append.to;
    }
    if (op->in.append.from_id) {
        argv[argc++] = "fid";
        argv[argc++] = op->in.append.from_id;
    }
    if (op->in.append.reply) {
        argv[argc++] = "rt";
        argv[argc++] = op->in.append.reply;
    }
    if (op->in.append.action) { /* a system message */
        argv[argc++] = "act";
        argv[argc++] = op->in.append.action;
        if (op->in.append.user) {
            argv[argc++] = "usr";
            argv[argc++] = op->in.append.user;
        }
    }
    argv[argc++] = "content";
    argv[argc++] = op->in.append.content;
    for (int i = 0; i < argc; i++)
        len[i] = strlen(argv[i]);
    len[argc - 1] = op->in.append.content_len;
    if (op->in.append.reply) /* one script: the target checked, then XADD */
        store_redis__reply_xadd(op, argc, argv, len);
    else
        store_redis__send(op, store_redis__on_xadded, op->key, argc, argv, len);
}

/* The clientId entry, if any: a live one answers the append as a
 * duplicate; else the message is added. */
static void store_redis__on_cid_got(store_redis__op *op, const redisReply *r)
{
    if (r == NULL) {
        store_redis__fail(op, r);
        return;
    }
    if (r->type != REDIS_REPLY_NIL &&
        store_redis__parse_cid(r, op->in.append.ts_ms, &op->res.append)) {
        store_redis__finish(op, 0);
        return;
    }
    store_redis__xadd(op);
}

static void store_redis__run_append(store_redis__op *op)
{
    if (op->in.append.reply_rc != 0) {
        store_redis__ready(op, op->in.append.reply_rc);
        return;
    }
    if (op->in.append.cid_key == NULL) {
        store_redis__xadd(op);
        return;
    }
    const char *argv[] = {"GET", op->in.append.cid_key};
    size_t len[] = {3, op->in.append.cid_key_len};
    store_redis__send(op, store_redis__on_cid_got, op->in.append.cid_route, 2, argv, len);
}

/* ---- history ------------------------------------------------------------- */

/* The read script's messages (newest first, up to limit + 1) as the page;
 * 0: `before` is not a message of the conversation. */
static void store_redis__on_page(store_redis__op *op, const redisReply *r)
{
    store_history_t *page = &op->res.page;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        store_redis__finish(op, STORE_EBADID);
        return;
    }
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        store_redis__fail(op, r);
        return;
    }
    size_t n = r->elements;
    if (n > op->in.history.limit) {
        page->has_more = 1;
        n = op->in.history.limit;
    }
    if (n)
        page->msgs = mem_calloc(n, sizeof(*page->msgs));
    page->n = n;
    for (size_t i = 0; i < n; i++) {
        if (store_redis__parse_item(r->element[i], op->tag, &page->msgs[n - 1 - i]) != 0) {
            store_redis__fail(op, r); /* frees the page */
            return;
        }
    }
    store_redis__finish(op, 0);
}

static void store_redis__run_history(store_redis__op *op)
{
    char *before = op->in.history.before;
    if (op->in.history.limit < 1 || op->in.history.limit > STORE_HISTORY_LIMIT_MAX) {
        store_redis__ready(op, STORE_EINVAL);
    } else if (before && !store_redis__id_split(before, op->tag)) {
        store_redis__ready(op, STORE_EBADID);
    } else { /* the script checks that `before` is a message of the stream */
        store_redis__read_send(op, store_redis__on_page, "rev", before ? before : "",
                               op->in.history.limit + 1);
    }
}

/* ---- what a client missed ------------------------------------------------ */

static void store_redis__on_since_chunk(store_redis__op *op, const redisReply *r);

/* Asks for store_since's next chunk: from the margin before since_ms
 * (ms only: its first sequence), then from just after the last entry read
 * (in.since.after). Enough for what is missing, and at least
 * STORE_REDIS__SINCE_CHUNK. */
static void store_redis__since_next(store_redis__op *op)
{
    char start[24];
    size_t want = op->in.since.limit + 1 - op->res.page.n;
    op->in.since.asked = want < STORE_REDIS__SINCE_CHUNK ? STORE_REDIS__SINCE_CHUNK : want;
    if (op->in.since.since_ms > STORE_REDIS__SKEW_MS)
        snprintf(start, sizeof(start), "%" PRId64, op->in.since.since_ms - STORE_REDIS__SKEW_MS);
    else
        strcpy(start, "-");
    store_redis__read_send(op, store_redis__on_since_chunk, "fwd",
                           op->in.since.after ? op->in.since.after : start, op->in.since.asked);
}

/* Adds one entry of since's XRANGE to the page unless it is in the margin
 * (ts not after since_ms). Returns 1 when the page is full (the entry then
 * only set has_more), 0 to go on, or STORE_EIO for a malformed entry. */
static int store_redis__since_take(store_redis__op *op, const redisReply *e)
{
    store_history_t *page = &op->res.page;
    store_msg_t m;
    memset(&m, 0, sizeof(m));
    if (store_redis__parse_item(e, op->tag, &m) != 0) {
        store_redis__msg_free(&m);
        return STORE_EIO;
    }
    if (m.ts_ms <= op->in.since.since_ms) {
        store_redis__msg_free(&m);
        return 0;
    }
    if (page->n == op->in.since.limit) {
        store_redis__msg_free(&m);
        page->has_more = 1;
        return 1;
    }
    if (page->n == op->in.since.cap) {
        size_t cap = op->in.since.cap ? op->in.since.cap * 2 : 16;
        op->in.since.cap = cap > op->in.since.limit ? op->in.since.limit : cap;
        page->msgs = mem_realloc(page->msgs, op->in.since.cap * sizeof(*page->msgs));
    }
    page->msgs[page->n++] = m;
    return 0;
}

/* One XRANGE reply of store_since: its entries into the page, then the
 * next chunk, or the end (a full page, or the stream's end). */
static void store_redis__on_since_chunk(store_redis__op *op, const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        store_redis__fail(op, r);
        return;
    }
    for (size_t i = 0; i < r->elements; i++) {
        int full = store_redis__since_take(op, r->element[i]);
        if (full < 0) {
            store_redis__fail(op, r);
            return;
        }
        if (full) {
            store_redis__finish(op, 0);
            return;
        }
    }
    if (r->elements < op->in.since.asked) { /* the end of the stream */
        store_redis__finish(op, 0);
        return;
    }
    const redisReply *last = r->element[r->elements - 1]->element[0];
    mem_free(op->in.since.after);
    op->in.since.after = mem_alloc(last->len + 2);
    op->in.since.after[0] = '(';
    memcpy(op->in.since.after + 1, last->str, last->len);
    op->in.since.after[last->len + 1] = '\0';
    store_redis__since_next(op);
}

static void store_redis__run_since(store_redis__op *op)
{
    if (op->in.since.limit < 1 || op->in.since.limit > STORE_HISTORY_LIMIT_MAX)
        store_redis__ready(op, STORE_EINVAL);
    else
        store_redis__since_next(op);
}

static void store_redis__on_convs(store_redis__op *op, const redisReply *r)
{
    store_conv_list_t *l = &op->res.convs;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        store_redis__fail(op, r);
        return;
    }
    if (r->elements)
        l->convs = mem_calloc(r->elements, sizeof(*l->convs));
    for (size_t i = 0; i < r->elements; i++) {
        if ((l->convs[l->n] = store_redis__dup_reply(r->element[i])) == NULL) {
            store_redis__fail(op, r); /* frees the part read */
            return;
        }
        l->n++;
    }
    store_redis__finish(op, 0);
}

static void store_redis__run_convs(store_redis__op *op)
{
    char min[24];
    snprintf(min, sizeof(min), "(%" PRId64, op->in.convs.since_ms);
    const char *argv[] = {"ZRANGEBYSCORE", op->key, min, "+inf"};
    store_redis__send(op, store_redis__on_convs, op->key, 4, argv, NULL);
}

static void store_redis__run_purge(store_redis__op *op)
{
    store_redis__ready(op, 0); /* Redis expires clientId entries by itself */
}

static const store_redis__kind store_redis__room_create_kind = {"room_create",
                                                                store_redis__run_room_create};
static const store_redis__kind store_redis__room_get_kind = {"room_get",
                                                             store_redis__run_room_get};
static const store_redis__kind store_redis__room_list_kind = {"room_list",
                                                              store_redis__run_room_list};
static const store_redis__kind store_redis__append_kind = {"msg_append", store_redis__run_append};
static const store_redis__kind store_redis__history_kind = {"history", store_redis__run_history};
static const store_redis__kind store_redis__since_kind = {"since", store_redis__run_since};
static const store_redis__kind store_redis__convs_kind = {"private_convs",
                                                          store_redis__run_convs};
static const store_redis__kind store_redis__purge_kind = {"dedupe_purge", store_redis__run_purge};

/* ---- the interface ------------------------------------------------------- */

store_redis *store_redis__self(store_t *s)
{
    return (store_redis *)s;
}

static void store_redis__room_create(store_t *s, const char *key, const char *name,
                                     const store_room_opts_t *opts, store_room_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_ROOM(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op =
        store_redis__op_new(store_redis__self(s), &store_redis__room_create_kind, call);
    size_t n = strlen(key) + sizeof("parley:room:{}");
    op->key = mem_alloc(n);
    snprintf(op->key, n, "parley:room:{%s}", key);
    op->in.room_create.key = mem_strdup(key);
    op->in.room_create.name = mem_strdup(name);
    store_redis__lane_join(op, op->key);
    if (opts) {
        op->in.room_create.is_private = opts->is_private;
        op->in.room_create.topic = opts->topic ? mem_strdup(opts->topic) : NULL;
        if (opts->owner_id) { /* and the lane of the room's members */
            op->in.room_create.owner = mem_strdup(opts->owner_id);
            op->in.room_create.now_ms = opts->now_ms;
            char *mk = store_redis__fmt("parley:{r:", key, "}:members");
            store_redis__lane_join(op, mk);
            mem_free(mk);
        }
    }
    store_redis__submit(op);
}

static void store_redis__room_get(store_t *s, const char *key, store_room_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_ROOM(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op =
        store_redis__op_new(store_redis__self(s), &store_redis__room_get_kind, call);
    size_t n = strlen(key) + sizeof("parley:room:{}");
    op->key = mem_alloc(n);
    snprintf(op->key, n, "parley:room:{%s}", key);
    store_redis__lane_join(op, op->key);
    store_redis__submit(op);
}

static void store_redis__room_list(store_t *s, store_room_list_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_LIST(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__submit(
        store_redis__op_new(store_redis__self(s), &store_redis__room_list_kind, call));
}

char *store_redis__stream_key(const char *conv)
{
    size_t n = strlen(conv) + sizeof("parley:{}:msgs");
    char *k = mem_alloc(n);
    snprintf(k, n, "parley:{%s}:msgs", conv);
    return k;
}

/* The key of a user's pconv index (user[0..n)). */
static char *store_redis__pconv_key(const char *user, size_t n)
{
    size_t size = n + sizeof("parley:{u:}:pconv");
    char *k = mem_alloc(size);
    snprintf(k, size, "parley:{u:%.*s}:pconv", (int)n, user);
    return k;
}

/* For an append to a private conversation "p:" A U+001F B: the pconv
 * index keys of A and B (one when A is B). Other names have none. */
static void store_redis__pconv_prepare(store_redis__op *op, const char *conv)
{
    int direct = strncmp(conv, "d:", 2) == 0;
    if (strncmp(conv, "p:", 2) != 0 && !direct)
        return;
    const char *a = conv + 2, *sep = strchr(a, '\x1f');
    if (sep == NULL) /* not made by store_conv_private / store_conv_direct */
        return;
    const char *b = sep + 1;
    size_t na = (size_t)(sep - a), nb = strlen(b);
    int self = na == nb && memcmp(a, b, na) == 0;
    op->in.append.conv = mem_strdup(conv);
    if (direct) {
        char *ida = mem_strndup(a, na);
        op->in.append.dconv[op->in.append.ndconv++] = store_redis__user_key(ida, "}:dconv");
        if (!self)
            op->in.append.dconv[op->in.append.ndconv++] = store_redis__user_key(b, "}:dconv");
        mem_free(ida);
        return;
    }
    op->in.append.pconv[op->in.append.npconv++] = store_redis__pconv_key(a, na);
    if (!self)
        op->in.append.pconv[op->in.append.npconv++] = store_redis__pconv_key(b, nb);
}

/* The clientId entry's key and lane: "parley:<n>:{u:<user>}" (the route,
 * up to the end of the hash tag) + ":cid:" + the clientId's bytes. */
static void store_redis__cid_prepare(store_redis__op *op, const store_dedupe_in_t *d)
{
    size_t un = strlen(d->user_key);
    char prefix[32];
    int pn = snprintf(prefix, sizeof(prefix), "parley:%zu:", un);
    size_t route_size = (size_t)pn + un + 5;
    op->in.append.cid_route = mem_alloc(route_size);
    snprintf(op->in.append.cid_route, route_size, "%s{u:%s}", prefix, d->user_key);
    size_t rn = strlen(op->in.append.cid_route);
    op->in.append.cid_key_len = rn + 5 + d->client_id_len;
    op->in.append.cid_key = mem_alloc(op->in.append.cid_key_len + 1);
    memcpy(op->in.append.cid_key, op->in.append.cid_route, rn);
    memcpy(op->in.append.cid_key + rn, ":cid:", 5);
    memcpy(op->in.append.cid_key + rn + 5, d->client_id, d->client_id_len);
    op->in.append.cid_key[op->in.append.cid_key_len] = '\0';
    op->in.append.cid_expires_ms = d->expires_ms;
}

static void store_redis__msg_append(store_t *s, const store_msg_in_t *m,
                                    const store_dedupe_in_t *d, store_append_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_APPEND(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op =
        store_redis__op_new(store_redis__self(s), &store_redis__append_kind, call);
    store_redis__msg_keys(op, m->conv);
    if (m->reply_to)
        op->in.append.reply_rc = store_redis__id_parse(m->reply_to, op->tag, &op->in.append.reply);
    op->in.append.from = mem_strdup(m->from);
    op->in.append.to = m->to ? mem_strdup(m->to) : NULL;
    op->in.append.content = mem_strndup(m->content, m->content_len);
    op->in.append.content_len = m->content_len;
    op->in.append.ts_ms = m->ts_ms;
    op->in.append.from_id = m->from_id ? mem_strdup(m->from_id) : NULL;
    op->in.append.action = m->action ? mem_strdup(m->action) : NULL;
    op->in.append.user = m->action && m->user ? mem_strdup(m->user) : NULL;
    store_redis__pconv_prepare(op, m->conv);
    store_redis__lane_join(op, op->key);
    if (d) {
        store_redis__cid_prepare(op, d);
        store_redis__lane_join(op, op->in.append.cid_route);
    }
    store_redis__submit(op);
}

static void store_redis__history(store_t *s, const char *conv, const char *before, size_t limit,
                                 store_history_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_PAGE(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op =
        store_redis__op_new(store_redis__self(s), &store_redis__history_kind, call);
    store_redis__msg_keys(op, conv);
    if (before) { /* too long for an id: malformed */
        size_t n = strnlen(before, STORE_ID_MAX);
        op->in.history.before = n < STORE_ID_MAX ? mem_strndup(before, n) : mem_strdup("x");
    }
    op->in.history.limit = limit;
    store_redis__lane_join(op, op->key);
    store_redis__submit(op);
}

static void store_redis__since(store_t *s, const char *conv, int64_t since_ms, size_t limit,
                               store_history_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_PAGE(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op =
        store_redis__op_new(store_redis__self(s), &store_redis__since_kind, call);
    store_redis__msg_keys(op, conv);
    op->in.since.since_ms = since_ms;
    op->in.since.limit = limit;
    store_redis__lane_join(op, op->key);
    store_redis__submit(op);
}

/* Joins no lane: see "Recovery" at the top of the file. */
static void store_redis__private_convs(store_t *s, const char *user_key, int64_t since_ms,
                                       store_conv_list_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_CONVS(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op =
        store_redis__op_new(store_redis__self(s), &store_redis__convs_kind, call);
    op->key = store_redis__pconv_key(user_key, strlen(user_key));
    op->in.convs.since_ms = since_ms;
    store_redis__submit(op);
}

static void store_redis__dedupe_purge(store_t *s, int64_t now_ms, store_count_cb cb, void *ud)
{
    (void)now_ms;
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__submit(
        store_redis__op_new(store_redis__self(s), &store_redis__purge_kind, call));
}

/* ---- close and open ------------------------------------------------------ */

static void store_redis__close(store_t *s)
{
    store_redis *st = store_redis__self(s);
    st->base.closed = 1;
    st->ready = st->ready_last = NULL;
    while (st->first) /* in start order; new ops complete inline */
        store_redis__finish(st->first, STORE_ECLOSED);
    /* rc_free frees the records whose command was out (with a borrowed rc
     * the owner frees it after store_close, before the loop runs again). */
    if (st->owns_rc)
        rc_free(st->rc);
    st->rc = NULL;
    turn_disarm(st->turn, &st->ready_hook);
    mem_free(st);
}

static const store_ops_t store_redis__ops = {
    .close = store_redis__close,
    .room_create = store_redis__room_create,
    .room_get = store_redis__room_get,
    .room_list = store_redis__room_list,
    .msg_append = store_redis__msg_append,
    .history = store_redis__history,
    .dedupe_purge = store_redis__dedupe_purge,
    .since = store_redis__since,
    .private_convs = store_redis__private_convs,
    .user_claim = store_redis__user_claim,
    .user_ensure = store_redis__user_ensure,
    .user_get = store_redis__user_get,
    .user_find = store_redis__user_find,
    .user_rename = store_redis__user_rename,
    .user_touch = store_redis__user_touch,
    .user_purge = store_redis__user_purge,
    .secret_get = store_redis__secret_get,
    .member_add = store_redis__member_add,
    .member_remove = store_redis__member_remove,
    .member_rooms = store_redis__member_rooms,
    .room_members = store_redis__room_members,
    .direct_convs = store_redis__direct_convs,
    .read_mark = store_redis__read_mark,
    .read_get = store_redis__read_get,
    .conversations = store_op__conversations,
    .msg_get = store_redis__msg_get,
    .msg_edit = store_redis__msg_edit,
    .msg_delete = store_redis__msg_delete,
    .reaction = store_redis__reaction,
    .member_role_set = store_redis__member_role_set,
    .room_info = store_redis__room_info,
    .room_topic = store_redis__room_topic,
    .flag = store_redis__flag,
    .room_delete = store_redis__room_delete,
};

int store_redis_open(turn_t *turn, const char *seeds, uint32_t timeout_ms, uint32_t maxlen,
                     uint32_t wait_replicas, store_t **out)
{
    *out = NULL;
    if (turn == NULL || seeds == NULL || wait_replicas > STORE_REDIS_WAIT_REPLICAS_MAX)
        return STORE_EINVAL;
    rc_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.timeout_ms = timeout_ms;
    rc_cluster *rc = NULL;
    if (rc_create(turn_loop(turn), seeds, &cfg, &rc) != 0)
        return STORE_EINVAL;
    int r = store_redis_open_rc(turn, rc, maxlen, wait_replicas, out);
    if (r != 0) { /* not expected: the arguments were checked above */
        rc_free(rc);
        return r;
    }
    store_redis__self(*out)->owns_rc = 1;
    return 0;
}

int store_redis_open_rc(turn_t *turn, rc_cluster *rc, uint32_t maxlen, uint32_t wait_replicas,
                        store_t **out)
{
    *out = NULL;
    if (turn == NULL || rc == NULL)
        return STORE_EINVAL;
    if (wait_replicas > STORE_REDIS_WAIT_REPLICAS_MAX) {
        log_error("store redis wait_replicas too large", "wait_replicas=%" PRIu32 " max=%d",
                  wait_replicas, STORE_REDIS_WAIT_REPLICAS_MAX);
        return STORE_EINVAL;
    }
    store_redis *st = mem_calloc(1, sizeof(*st));
    st->base.ops = &store_redis__ops;
    st->loop = turn_loop(turn);
    st->turn = turn;
    turn_hook_init(&st->ready_hook, TURN_STORE, store_redis__complete_ready, st);
    st->rc = rc;
    snprintf(st->maxlen_txt, sizeof(st->maxlen_txt), "%" PRIu32,
             maxlen ? maxlen : STORE_REDIS__MAXLEN_DEFAULT);
    st->wait_replicas = wait_replicas;
    snprintf(st->wait_txt, sizeof(st->wait_txt), "%" PRIu32, wait_replicas);
    *out = &st->base;
    return 0;
}
