/* store_redis_users.c - contract v2 on the Redis store: users, shared
 * secrets, room membership, direct conversations by user id and read
 * state. Keys, atomicity and what is not atomic: see the top of
 * store_redis.c ("Users (contract v2)"). Ops run on store_redis.c's
 * machinery (store_redis_int.h): lanes, one reply handler per step; a
 * step that writes to several slots at once ("fan-out") sends its
 * commands together and goes on when the last one answered.
 *
 * State of an op beyond the shared record: a store_redis__u (op->x). */
#include "store/store_redis_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/rand.h>

#include "util/log.h"
#include "util/mem.h"

/* How many entries a read state walk asks for per XREVRANGE. */
#define STORE_REDIS__READ_CHUNK 128

static const char store_redis__guests_key[] = "parley:{users}:guests";

/* Sets a name's owner when it has none or the one expected: KEYS = the
 * name; ARGV = the new owner, the expected one ("" for none). */
static const char store_redis__lua_name_take[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == false or v == ARGV[2] then redis.call('SET', KEYS[1], ARGV[1]) return 1 end "
    "return 0";
/* Deletes a name if it is still ARGV[1]'s. */
static const char store_redis__lua_name_drop[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end "
    "return 0";
/* seen = ARGV[1] on an existing user: its fields, or nil. */
static const char store_redis__lua_touch[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return false end "
    "redis.call('HSET', KEYS[1], 'seen', ARGV[1]) "
    "return redis.call('HMGET', KEYS[1], 'key', 'name', 'created', 'seen', 'guest')";
/* An ordered set: KEYS = order (zset, score a counter), value hash [, a
 * second value hash]; ARGV = member, value [, second value]. 1 if added. */
const char store_redis__lua_oset_add[] =
    "if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end "
    "local n = redis.call('HINCRBY', KEYS[2], '\\31seq', 1) "
    "redis.call('ZADD', KEYS[1], n, ARGV[1]) redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) "
    "if KEYS[3] then redis.call('HSET', KEYS[3], ARGV[1], ARGV[3]) end return 1";
const char store_redis__lua_oset_del[] =
    "if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end "
    "redis.call('ZREM', KEYS[1], ARGV[1]) "
    "if KEYS[3] then redis.call('HDEL', KEYS[3], ARGV[1]) end return 1";
/* Members in order, each followed by its value(s). */
static const char store_redis__lua_oset_list[] =
    "local m = redis.call('ZRANGE', KEYS[1], 0, -1) local r = {} "
    "for _, x in ipairs(m) do r[#r+1] = x r[#r+1] = redis.call('HGET', KEYS[2], x) or '0' "
    "if KEYS[3] then r[#r+1] = redis.call('HGET', KEYS[3], x) or x end end return r";
/* What a purge needs of a user: {key, guest, seen, rooms, direct convs}. */
static const char store_redis__lua_owned[] =
    "local u = redis.call('HMGET', KEYS[1], 'key', 'guest', 'seen') "
    "return {u[1] or '', u[2] or '', u[3] or '', redis.call('ZRANGE', KEYS[2], 0, -1), "
    "redis.call('SMEMBERS', KEYS[3])}";
/* A read mark that never moves back: KEYS = the user's marks; ARGV =
 * conversation, stream id. */
static const char store_redis__lua_mark[] =
    "local function p(x) local a, b = string.match(x, '^(%d+)-(%d+)$') "
    "return tonumber(a), tonumber(b) end "
    "local c = redis.call('HGET', KEYS[1], ARGV[1]) "
    "if c then local a, b = p(c) local x, y = p(ARGV[2]) "
    "if a and (x < a or (x == a and y <= b)) then return 0 end end "
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1";
/* Get or create a secret: ARGV = new random bytes. */
static const char store_redis__lua_secret[] =
    "redis.call('SET', KEYS[1], ARGV[1], 'NX') return redis.call('GET', KEYS[1])";

typedef struct store_redis__u store_redis__u;
typedef void (*store_redis__next_fn)(store_redis__op *op);

struct store_redis__u {
    char *id;           /* the user (input or created) */
    char *key, *name;   /* a name's key and display form */
    char *room, *conv;
    char *name_key;     /* "parley:{nm:<key>}:owner" */
    char *other;        /* the other owner of a name, or "" */
    int64_t now, ttl;
    size_t len;         /* secret */
    int guest;          /* claim: 1, ensure: 0 */
    int tries;
    int failed;         /* a command of the current fan-out failed */
    int added;          /* member_add / remove: the room side's answer */
    store_redis__next_fn fan_next; /* after the fan-out */
    /* purge */
    char *victim;
    int check;          /* user_purge: skip a victim touched since */
    store_redis__next_fn then; /* after purging victim */
    char **ids;
    size_t nids, next;
    uint64_t count;
    /* read state */
    int mark_op;
    char target[STORE_ID_MAX]; /* stream id marked to, "" none */
    char mark[STORE_ID_MAX];   /* stored mark, "" none */
    char eff[STORE_ID_MAX];    /* effective read point, "" none */
    char cursor[STORE_ID_MAX + 1];
    uint64_t unread, after;
};

static void store_redis__u_free(void *x)
{
    store_redis__u *u = x;
    mem_free(u->id);
    mem_free(u->key);
    mem_free(u->name);
    mem_free(u->room);
    mem_free(u->conv);
    mem_free(u->name_key);
    mem_free(u->other);
    mem_free(u->victim);
    for (size_t i = 0; i < u->nids; i++)
        mem_free(u->ids[i]);
    mem_free(u->ids);
    mem_free(u);
}

static store_redis__u *store_redis__u_of(store_redis__op *op)
{
    return op->x;
}

/* A v2 op of kind: its record and state. */
static store_redis__op *store_redis__u_op(store_t *s, const store_redis__kind *kind,
                                          store_op_call call)
{
    store_redis__op *op = store_redis__op_new(store_redis__self(s), kind, call);
    op->x = mem_calloc(1, sizeof(store_redis__u));
    op->x_free = store_redis__u_free;
    return op;
}

char *store_redis__fmt(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *k = mem_alloc(n);
    snprintf(k, n, "%s%s%s", a, b, c);
    return k;
}

char *store_redis__user_key(const char *id, const char *suffix)
{
    return store_redis__fmt("parley:{i:", id, suffix[0] ? suffix : "}:user");
}

/* (user_key's suffix includes the tag's end) */
#define SRU_K(id, s) store_redis__user_key((id), "}:" s)

static char *store_redis__name_key(const char *key)
{
    return store_redis__fmt("parley:{nm:", key, "}:owner");
}

static char *store_redis__int_txt(int64_t v)
{
    char b[24];
    snprintf(b, sizeof(b), "%" PRId64, v);
    return mem_strdup(b);
}

/* ---- fan-out steps ------------------------------------------------------- */

static void store_redis__on_fan(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    if (r == NULL)
        u->failed = 1;
    if (op->inflight > 0)
        return;
    if (u->failed) {
        store_redis__fail(op, NULL);
        return;
    }
    u->fan_next(op);
}

/* Sends one command of a fan-out step (whose end runs u->fan_next). */
static void store_redis__fan(store_redis__op *op, const char *key, int argc, const char **argv,
                             const size_t *len)
{
    if (store_redis__command(op, store_redis__on_fan, key, argc, argv, len) != 0)
        store_redis__u_of(op)->failed = 1;
}

/* After sending a fan-out step's commands: when none is out (none sent,
 * or all refused), what would follow their replies happens now. */
static void store_redis__fan_end(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    if (op->inflight > 0)
        return;
    if (u->failed)
        store_redis__ready(op, STORE_EIO);
    else
        u->fan_next(op);
}

/* ---- reading users ------------------------------------------------------- */

/* HMGET key name created seen guest (or the touch script) into *out:
 * 0, STORE_ENOTFOUND (no such user), STORE_EIO. */
static int store_redis__user_parse(const redisReply *r, const char *id, store_user_t *out)
{
    int64_t created = 0, seen = 0, guest = 0;
    if (r == NULL)
        return STORE_EIO;
    if (r->type == REDIS_REPLY_NIL)
        return STORE_ENOTFOUND;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5)
        return STORE_EIO;
    if (r->element[0]->type == REDIS_REPLY_NIL)
        return STORE_ENOTFOUND;
    if (strlen(id) >= STORE_USER_ID_MAX ||
        store_redis__reply_i64(r->element[2], &created) != 0 ||
        store_redis__reply_i64(r->element[3], &seen) != 0 ||
        store_redis__reply_i64(r->element[4], &guest) != 0)
        return STORE_EIO;
    char *key = store_redis__dup_reply(r->element[0]), *name = store_redis__dup_reply(r->element[1]);
    if (key == NULL || name == NULL) {
        mem_free(key);
        mem_free(name);
        return STORE_EIO;
    }
    mem_free(out->key);
    mem_free(out->name);
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "%s", id);
    out->key = key;
    out->name = name;
    out->created_ms = created;
    out->seen_ms = seen;
    out->guest = guest != 0;
    return 0;
}

static int store_redis__expired(const store_user_t *u, int64_t now, int64_t ttl)
{
    return u->guest && u->seen_ms <= now - ttl;
}

static void store_redis__hmget_user(store_redis__op *op, const char *id,
                                    store_redis__reply_fn fn)
{
    char *k = store_redis__user_key(id, "");
    const char *argv[] = {"HMGET", k, "key", "name", "created", "seen", "guest"};
    store_redis__send(op, fn, k, 7, argv, NULL);
    mem_free(k);
}

/* ---- purging one user ---------------------------------------------------- */

static void store_redis__purge_owned(store_redis__op *op, const redisReply *r);

/* Purges u->victim with everything it owns, then runs u->then (with
 * u->count one more when it was purged). */
static void store_redis__purge_one(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    char *k = store_redis__user_key(u->victim, ""), *kr = SRU_K(u->victim, "rooms");
    char *kd = SRU_K(u->victim, "dconv");
    const char *argv[] = {"EVAL", store_redis__lua_owned, "3", k, kr, kd};
    store_redis__send(op, store_redis__purge_owned, k, 6, argv, NULL);
    mem_free(k);
    mem_free(kr);
    mem_free(kd);
}

static void store_redis__purge_last(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    u->count++;
    u->then(op);
}

/* Deletes the user's own keys and its guests entry. */
static void store_redis__purge_keys(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    const char *sfx[] = {"", "}:rooms", "}:rjoin", "}:rname", "}:read", "}:dconv"};
    char *keys[6];
    const char *argv[7] = {"DEL"};
    for (int i = 0; i < 6; i++)
        argv[i + 1] = keys[i] = store_redis__user_key(u->victim, sfx[i]);
    u->fan_next = store_redis__purge_last;
    store_redis__fan(op, keys[0], 7, argv, NULL);
    const char *zrem[] = {"ZREM", store_redis__guests_key, u->victim};
    store_redis__fan(op, store_redis__guests_key, 3, zrem, NULL);
    for (int i = 0; i < 6; i++)
        mem_free(keys[i]);
    store_redis__fan_end(op);
}

/* One direct conversation of the victim: its stream, the peer's entry. */
static void store_redis__purge_conv(store_redis__op *op, const redisReply *c)
{
    store_redis__u *u = store_redis__u_of(op);
    char *conv = store_redis__dup_reply(c);
    if (conv == NULL || strncmp(conv, "d:", 2) != 0 || strchr(conv, '\x1f') == NULL) {
        mem_free(conv);
        return;
    }
    char *stream = store_redis__stream_key(conv);
    char *mx = store_redis__conv_key(conv, "mx"), *tomb = store_redis__conv_key(conv, "tomb");
    const char *del[] = {"DEL", stream, mx, tomb}; /* one slot */
    store_redis__fan(op, stream, 4, del, NULL);
    mem_free(mx);
    mem_free(tomb);
    const char *a = conv + 2, *sep = strchr(a, '\x1f');
    size_t na = (size_t)(sep - a);
    char *peer = strlen(u->victim) == na && memcmp(a, u->victim, na) == 0
                     ? mem_strdup(sep + 1)
                     : mem_strndup(a, na);
    char *pk = SRU_K(peer, "dconv");
    const char *srem[] = {"SREM", pk, conv};
    store_redis__fan(op, pk, 3, srem, NULL);
    mem_free(pk);
    mem_free(peer);
    mem_free(stream);
    mem_free(conv);
}

/* The owned script's {key, guest, seen, rooms, convs}. */
static void store_redis__purge_owned(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    int64_t guest = 0, seen = 0;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 5 ||
        r->element[3]->type != REDIS_REPLY_ARRAY || r->element[4]->type != REDIS_REPLY_ARRAY) {
        store_redis__fail(op, r);
        return;
    }
    const redisReply *key = r->element[0];
    int exists = key->type == REDIS_REPLY_STRING && key->len > 0;
    if (exists && u->check && (store_redis__reply_i64(r->element[1], &guest) != 0 || guest != 1 ||
                               store_redis__reply_i64(r->element[2], &seen) != 0 ||
                               seen > u->now - u->ttl)) {
        /* touched since the guests index said so: fix the index, keep it */
        const char *argv[] = {"ZREM", store_redis__guests_key, u->victim};
        char *s = store_redis__int_txt(seen);
        const char *zadd[] = {"ZADD", store_redis__guests_key, s, u->victim};
        u->fan_next = u->then;
        if (guest == 1)
            store_redis__fan(op, store_redis__guests_key, 4, zadd, NULL);
        else
            store_redis__fan(op, store_redis__guests_key, 3, argv, NULL);
        mem_free(s);
        store_redis__fan_end(op);
        return;
    }
    u->fan_next = store_redis__purge_keys;
    const redisReply *rooms = r->element[3], *convs = r->element[4];
    for (size_t i = 0; i < rooms->elements; i++) {
        char *room = store_redis__dup_reply(rooms->element[i]);
        if (room == NULL)
            continue;
        char *k[3];
        store_redis__room_keys(room, k); /* an owner's room passes on */
        const char *argv[] = {"EVAL", store_redis__lua_room_leave, "3", k[0], k[1], k[2],
                              u->victim};
        store_redis__fan(op, k[0], 7, argv, NULL);
        for (int j = 0; j < 3; j++)
            mem_free(k[j]);
        mem_free(room);
    }
    for (size_t i = 0; i < convs->elements; i++)
        store_redis__purge_conv(op, convs->element[i]);
    if (exists) {
        char *k = store_redis__dup_reply(key), *nk = store_redis__name_key(k);
        const char *argv[] = {"EVAL", store_redis__lua_name_drop, "1", nk, u->victim};
        store_redis__fan(op, nk, 5, argv, NULL);
        mem_free(nk);
        mem_free(k);
    }
    store_redis__fan_end(op);
}

/* ---- get, find, touch ---------------------------------------------------- */

static void store_redis__on_user_got(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    int rc = store_redis__user_parse(r, u->id, &op->res.user);
    if (rc == 0 && u->key && strcmp(op->res.user.key, u->key) != 0)
        rc = STORE_ENOTFOUND; /* find: a name left behind by a rename */
    if (rc == 0 && store_redis__expired(&op->res.user, u->now, u->ttl))
        rc = STORE_ENOTFOUND;
    if (rc == STORE_EIO)
        store_redis__fail(op, r);
    else
        store_redis__finish(op, rc);
}

static void store_redis__run_user_get(store_redis__op *op)
{
    store_redis__hmget_user(op, store_redis__u_of(op)->id, store_redis__on_user_got);
}

static const store_redis__kind store_redis__user_get_kind = {"user_get",
                                                             store_redis__run_user_get};

void store_redis__user_get(store_t *s, const char *id, int64_t now_ms, int64_t ttl_ms,
                           store_user_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_USER(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__u_op(s, &store_redis__user_get_kind, call);
    store_redis__u *u = store_redis__u_of(op);
    u->id = mem_strdup(id);
    u->now = now_ms;
    u->ttl = ttl_ms;
    op->key = store_redis__user_key(id, "");
    store_redis__lane_join(op, op->key);
    store_redis__submit(op);
}

static void store_redis__on_find_owner(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    if (r && r->type == REDIS_REPLY_NIL) {
        store_redis__finish(op, STORE_ENOTFOUND);
        return;
    }
    if ((u->id = store_redis__dup_reply(r)) == NULL) {
        store_redis__fail(op, r);
        return;
    }
    store_redis__hmget_user(op, u->id, store_redis__on_user_got);
}

static void store_redis__run_user_find(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    const char *argv[] = {"GET", u->name_key};
    store_redis__send(op, store_redis__on_find_owner, u->name_key, 2, argv, NULL);
}

static const store_redis__kind store_redis__user_find_kind = {"user_find",
                                                              store_redis__run_user_find};

void store_redis__user_find(store_t *s, const char *key, int64_t now_ms, int64_t ttl_ms,
                            store_user_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_USER(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__u_op(s, &store_redis__user_find_kind, call);
    store_redis__u *u = store_redis__u_of(op);
    u->key = mem_strdup(key);
    u->name_key = store_redis__name_key(key);
    u->now = now_ms;
    u->ttl = ttl_ms;
    store_redis__lane_join(op, u->name_key);
    store_redis__submit(op);
}

static void store_redis__touch_done(store_redis__op *op)
{
    op->res.count = 1;
    store_redis__finish(op, 0);
}

static void store_redis__on_touched(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    store_user_t user;
    memset(&user, 0, sizeof(user));
    int rc = store_redis__user_parse(r, u->id, &user);
    int guest = user.guest;
    mem_free(user.key);
    mem_free(user.name);
    if (rc == STORE_EIO) {
        store_redis__fail(op, r);
        return;
    }
    if (rc != 0 || !guest) {
        if (rc == 0)
            op->res.count = 1;
        store_redis__finish(op, rc);
        return;
    }
    char *now = store_redis__int_txt(u->now);
    const char *argv[] = {"ZADD", store_redis__guests_key, now, u->id};
    u->fan_next = store_redis__touch_done;
    store_redis__fan(op, store_redis__guests_key, 4, argv, NULL);
    mem_free(now);
    store_redis__fan_end(op);
}

static void store_redis__run_user_touch(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    char *now = store_redis__int_txt(u->now);
    const char *argv[] = {"EVAL", store_redis__lua_touch, "1", op->key, now};
    store_redis__send(op, store_redis__on_touched, op->key, 5, argv, NULL);
    mem_free(now);
}

static const store_redis__kind store_redis__user_touch_kind = {"user_touch",
                                                               store_redis__run_user_touch};

void store_redis__user_touch(store_t *s, const char *id, int64_t now_ms, store_count_cb cb,
                             void *ud)
{
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__u_op(s, &store_redis__user_touch_kind, call);
    store_redis__u *u = store_redis__u_of(op);
    u->id = mem_strdup(id);
    u->now = now_ms;
    op->key = store_redis__user_key(id, "");
    store_redis__lane_join(op, op->key);
    store_redis__submit(op);
}

/* ---- claim and ensure ---------------------------------------------------- */

static void store_redis__run_user_claim(store_redis__op *op);

/* The name is ours: done. Lost to another server's claim meanwhile: the
 * user just made is deleted (best effort) and the claim is
 * STORE_ETAKEN, or ensure starts over (a few times). */
static void store_redis__on_name_taken(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    int64_t took = 0;
    if (store_redis__reply_i64(r, &took) != 0) {
        store_redis__fail(op, r);
        return;
    }
    if (took == 1) {
        store_redis__finish(op, 0);
        return;
    }
    if (u->guest) { /* the claim lost: its user goes (best effort) */
        char *k = store_redis__user_key(u->id, "");
        const char *del[] = {"DEL", k};
        (void)store_redis__command(op, store_redis__on_fan, k, 2, del, NULL);
        const char *zrem[] = {"ZREM", store_redis__guests_key, u->id};
        (void)store_redis__command(op, store_redis__on_fan, store_redis__guests_key, 3, zrem,
                                   NULL);
        mem_free(k);
        store_redis__finish(op, STORE_ETAKEN);
        return;
    }
    /* ensure lost to another server's: its user is left unreachable (a
     * token-mode user is never purged; rare) and ensure starts over */
    log_warn("store ensure raced", "key=\"%s\" tries=%d", u->key, u->tries + 1);
    if (++u->tries >= 3) {
        store_redis__finish(op, STORE_EIO);
        return;
    }
    mem_free(u->id);
    u->id = NULL;
    mem_free(op->res.user.key);
    mem_free(op->res.user.name);
    memset(&op->res.user, 0, sizeof(op->res.user));
    store_redis__run_user_claim(op); /* ensure: once more from the start */
}

/* The new user is written: take the name. */
static void store_redis__name_take(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    const char *argv[] = {"EVAL", store_redis__lua_name_take, "1", u->name_key, u->id,
                          u->other ? u->other : ""};
    store_redis__send(op, store_redis__on_name_taken, u->name_key, 6, argv, NULL);
}

/* Writes a new user (a guest for claim) and its guests entry, then takes
 * the name: a user whose name could not be taken is never reachable, and
 * a guest one is purged in time if its deletion fails. */
static void store_redis__user_create(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    store_user_t *out = &op->res.user;
    char id[STORE_USER_ID_MAX];
    rand_id(id);
    u->id = mem_strdup(id);
    memcpy(out->id, id, sizeof(id));
    out->key = mem_strdup(u->key);
    out->name = mem_strdup(u->name);
    out->created_ms = out->seen_ms = u->now;
    out->guest = u->guest;
    char *k = store_redis__user_key(id, ""), *now = store_redis__int_txt(u->now);
    const char *argv[] = {"HSET", k, "key", u->key, "name", u->name, "created", now,
                          "seen", now, "guest", u->guest ? "1" : "0"};
    u->fan_next = store_redis__name_take;
    store_redis__fan(op, k, 12, argv, NULL);
    if (u->guest) {
        const char *zadd[] = {"ZADD", store_redis__guests_key, now, id};
        store_redis__fan(op, store_redis__guests_key, 4, zadd, NULL);
    }
    mem_free(k);
    mem_free(now);
    store_redis__fan_end(op);
}

/* What the record of a name's owner (u->other), as read, says of the name. */
typedef enum {
    STORE_REDIS__OWNER_UNREADABLE, /* an error: fail the op */
    STORE_REDIS__OWNER_GONE,       /* no record: the name is free */
    STORE_REDIS__OWNER_LIVE,       /* it holds the name */
    STORE_REDIS__OWNER_EXPIRED,    /* an expired guest: purge it first */
} store_redis__owner;

/* Only a record that is gone frees the name. A record whose key is another
 * name may be a rename in flight (the name is taken before the record is
 * written): treating it as moved on let a claim on another backend take
 * the same name (tests/cluster/shared.test.mjs, the race). A name whose
 * drop failed after a rename stays held until its user expires: never two
 * owners. */
static store_redis__owner store_redis__owner_of(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    store_user_t owner;
    memset(&owner, 0, sizeof(owner));
    int rc = store_redis__user_parse(r, u->other, &owner);
    int expired = rc == 0 && store_redis__expired(&owner, u->now, u->ttl);
    mem_free(owner.key);
    mem_free(owner.name);
    if (rc == STORE_ENOTFOUND)
        return STORE_REDIS__OWNER_GONE;
    if (rc != 0)
        return STORE_REDIS__OWNER_UNREADABLE;
    return expired ? STORE_REDIS__OWNER_EXPIRED : STORE_REDIS__OWNER_LIVE;
}

/* The name's owner (claim: u->other) as read: taken, free (none, or one
 * whose record is gone), or expired (purged first). */
static void store_redis__on_claim_owner(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    store_redis__owner st = store_redis__owner_of(op, r);
    int expired = st == STORE_REDIS__OWNER_EXPIRED;
    if (st == STORE_REDIS__OWNER_UNREADABLE) {
        store_redis__fail(op, r);
    } else if (st == STORE_REDIS__OWNER_GONE) {
        store_redis__user_create(op);
    } else if (!u->guest) { /* ensure: that user, seen now */
        char *k = store_redis__user_key(u->other, ""), *now = store_redis__int_txt(u->now);
        const char *argv[] = {"EVAL", store_redis__lua_touch, "1", k, now};
        u->id = mem_strdup(u->other);
        store_redis__send(op, store_redis__on_user_got, k, 5, argv, NULL);
        mem_free(k);
        mem_free(now);
    } else if (!expired) {
        store_redis__finish(op, STORE_ETAKEN);
    } else {
        u->victim = mem_strdup(u->other);
        u->then = store_redis__user_create;
        store_redis__purge_one(op);
    }
}

static void store_redis__on_claim_name(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    mem_free(u->other);
    u->other = NULL;
    if (r && r->type == REDIS_REPLY_NIL) {
        store_redis__user_create(op);
        return;
    }
    if ((u->other = store_redis__dup_reply(r)) == NULL) {
        store_redis__fail(op, r);
        return;
    }
    store_redis__hmget_user(op, u->other, store_redis__on_claim_owner);
}

static void store_redis__run_user_claim(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    const char *argv[] = {"GET", u->name_key};
    store_redis__send(op, store_redis__on_claim_name, u->name_key, 2, argv, NULL);
}

static const store_redis__kind store_redis__user_claim_kind = {"user_claim",
                                                               store_redis__run_user_claim};

static void store_redis__claim_start(store_t *s, const char *key, const char *name,
                                     int64_t now_ms, int64_t ttl_ms, int guest, store_user_cb cb,
                                     void *ud)
{
    store_op_call call = STORE_OP_CALL_USER(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__u_op(s, &store_redis__user_claim_kind, call);
    store_redis__u *u = store_redis__u_of(op);
    u->key = mem_strdup(key);
    u->name = mem_strdup(name);
    u->name_key = store_redis__name_key(key);
    u->now = now_ms;
    u->ttl = ttl_ms;
    u->guest = guest;
    store_redis__lane_join(op, u->name_key);
    store_redis__submit(op);
}

void store_redis__user_claim(store_t *s, const char *key, const char *name, int64_t now_ms,
                             int64_t ttl_ms, store_user_cb cb, void *ud)
{
    store_redis__claim_start(s, key, name, now_ms, ttl_ms, 1, cb, ud);
}

void store_redis__user_ensure(store_t *s, const char *key, const char *name, int64_t now_ms,
                              store_user_cb cb, void *ud)
{
    /* ensure's users never expire: a ttl no seen_ms is that far behind */
    store_redis__claim_start(s, key, name, now_ms, INT64_MAX / 4, 0, cb, ud);
}

/* ---- rename -------------------------------------------------------------- */

static void store_redis__rename_done(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    store_user_t *out = &op->res.user;
    mem_free(out->key);
    mem_free(out->name);
    out->key = mem_strdup(u->key);
    out->name = mem_strdup(u->name);
    out->seen_ms = u->now;
    store_redis__finish(op, 0);
}

/* The user's record takes the new name (and the old name goes when it
 * differs: u->other is then the old key). */
static void store_redis__rename_write(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    char *k = store_redis__user_key(u->id, ""), *now = store_redis__int_txt(u->now);
    const char *argv[] = {"HSET", k, "key", u->key, "name", u->name, "seen", now};
    u->fan_next = store_redis__rename_done;
    store_redis__fan(op, k, 8, argv, NULL);
    if (op->res.user.guest) {
        const char *zadd[] = {"ZADD", store_redis__guests_key, now, u->id};
        store_redis__fan(op, store_redis__guests_key, 4, zadd, NULL);
    }
    if (strcmp(op->res.user.key, u->key) != 0) {
        char *ok = store_redis__name_key(op->res.user.key);
        const char *drop[] = {"EVAL", store_redis__lua_name_drop, "1", ok, u->id};
        store_redis__fan(op, ok, 5, drop, NULL);
        mem_free(ok);
    }
    mem_free(k);
    mem_free(now);
    store_redis__fan_end(op);
}

static void store_redis__on_rename_taken(store_redis__op *op, const redisReply *r)
{
    int64_t took = 0;
    if (store_redis__reply_i64(r, &took) != 0)
        store_redis__fail(op, r);
    else if (took != 1)
        store_redis__finish(op, STORE_ETAKEN);
    else
        store_redis__rename_write(op);
}

static void store_redis__rename_take(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    const char *argv[] = {"EVAL", store_redis__lua_name_take, "1", u->name_key, u->id,
                          u->other ? u->other : ""};
    store_redis__send(op, store_redis__on_rename_taken, u->name_key, 6, argv, NULL);
}

static void store_redis__on_rename_owner(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    store_redis__owner st = store_redis__owner_of(op, r);
    int expired = st == STORE_REDIS__OWNER_EXPIRED;
    if (st == STORE_REDIS__OWNER_UNREADABLE) {
        store_redis__fail(op, r);
    } else if (st == STORE_REDIS__OWNER_GONE) {
        store_redis__rename_take(op);
    } else if (!expired) {
        store_redis__finish(op, STORE_ETAKEN);
    } else {
        u->victim = mem_strdup(u->other);
        u->then = store_redis__rename_take;
        store_redis__purge_one(op);
    }
}

static void store_redis__on_rename_name(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    if (r && r->type == REDIS_REPLY_NIL) {
        store_redis__rename_take(op);
        return;
    }
    if ((u->other = store_redis__dup_reply(r)) == NULL) {
        store_redis__fail(op, r);
        return;
    }
    if (strcmp(u->other, u->id) == 0)
        store_redis__rename_take(op);
    else
        store_redis__hmget_user(op, u->other, store_redis__on_rename_owner);
}

static void store_redis__on_rename_user(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    int rc = store_redis__user_parse(r, u->id, &op->res.user);
    if (rc == 0 && store_redis__expired(&op->res.user, u->now, u->ttl))
        rc = STORE_ENOTFOUND;
    if (rc == STORE_EIO) {
        store_redis__fail(op, r);
    } else if (rc != 0) {
        store_redis__finish(op, rc);
    } else if (strcmp(op->res.user.key, u->key) == 0) {
        store_redis__rename_write(op); /* the display only */
    } else {
        const char *argv[] = {"GET", u->name_key};
        store_redis__send(op, store_redis__on_rename_name, u->name_key, 2, argv, NULL);
    }
}

static void store_redis__run_user_rename(store_redis__op *op)
{
    store_redis__hmget_user(op, store_redis__u_of(op)->id, store_redis__on_rename_user);
}

static const store_redis__kind store_redis__user_rename_kind = {"user_rename",
                                                                store_redis__run_user_rename};

void store_redis__user_rename(store_t *s, const char *id, const char *key, const char *name,
                              int64_t now_ms, int64_t ttl_ms, store_user_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_USER(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__u_op(s, &store_redis__user_rename_kind, call);
    store_redis__u *u = store_redis__u_of(op);
    u->id = mem_strdup(id);
    u->key = mem_strdup(key);
    u->name = mem_strdup(name);
    u->name_key = store_redis__name_key(key);
    u->now = now_ms;
    u->ttl = ttl_ms;
    op->key = store_redis__user_key(id, "");
    store_redis__lane_join(op, op->key);
    store_redis__lane_join(op, u->name_key);
    store_redis__submit(op);
}

/* ---- purge --------------------------------------------------------------- */

/* The next expired guest, or the end. */
static void store_redis__purge_next(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    if (u->next == u->nids) {
        op->res.count = u->count;
        store_redis__finish(op, 0);
        return;
    }
    mem_free(u->victim);
    u->victim = mem_strdup(u->ids[u->next++]);
    u->then = store_redis__purge_next;
    store_redis__purge_one(op);
}

static void store_redis__on_expired(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        store_redis__fail(op, r);
        return;
    }
    if (r->elements)
        u->ids = mem_calloc(r->elements, sizeof(*u->ids));
    for (size_t i = 0; i < r->elements; i++)
        if ((u->ids[u->nids] = store_redis__dup_reply(r->element[i])) != NULL)
            u->nids++;
    store_redis__purge_next(op);
}

static void store_redis__run_user_purge(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    char *max = store_redis__int_txt(u->now - u->ttl);
    const char *argv[] = {"ZRANGEBYSCORE", store_redis__guests_key, "-inf", max};
    store_redis__send(op, store_redis__on_expired, store_redis__guests_key, 4, argv, NULL);
    mem_free(max);
}

static const store_redis__kind store_redis__user_purge_kind = {"user_purge",
                                                               store_redis__run_user_purge};

/* A purge count: each expired user purged (one whose purge a claim ran
 * meanwhile is found gone and not counted again: see purge_owned). */
void store_redis__user_purge(store_t *s, int64_t now_ms, int64_t ttl_ms, store_count_cb cb,
                             void *ud)
{
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__u_op(s, &store_redis__user_purge_kind, call);
    store_redis__u *u = store_redis__u_of(op);
    u->now = now_ms;
    u->ttl = ttl_ms;
    u->check = 1;
    store_redis__lane_join(op, store_redis__guests_key);
    store_redis__submit(op);
}

/* ---- secrets ------------------------------------------------------------- */

static void store_redis__on_secret(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        store_redis__fail(op, r);
        return;
    }
    if (r->len != u->len) {
        log_error("store secret of another length", "stored=%zu asked=%zu", r->len, u->len);
        store_redis__finish(op, STORE_EIO);
        return;
    }
    op->res.secret.bytes = mem_alloc(r->len);
    memcpy(op->res.secret.bytes, r->str, r->len);
    op->res.secret.len = r->len;
    store_redis__finish(op, 0);
}

static void store_redis__run_secret(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    uint8_t bytes[STORE_SECRET_MAX];
    if (u->len < 1 || u->len > STORE_SECRET_MAX) {
        store_redis__ready(op, STORE_EINVAL);
        return;
    }
    if (RAND_bytes(bytes, (int)u->len) != 1) {
        log_error("store secret: RAND_bytes failed", "len=%zu", u->len);
        store_redis__ready(op, STORE_EIO);
        return;
    }
    const char *argv[] = {"EVAL", store_redis__lua_secret, "1", op->key, (const char *)bytes};
    size_t len[] = {4, strlen(store_redis__lua_secret), 1, strlen(op->key), u->len};
    store_redis__send(op, store_redis__on_secret, op->key, 5, argv, len);
}

static const store_redis__kind store_redis__secret_kind = {"secret_get", store_redis__run_secret};

void store_redis__secret_get(store_t *s, const char *name, size_t len, store_secret_cb cb,
                             void *ud)
{
    store_op_call call = STORE_OP_CALL_SECRET(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__u_op(s, &store_redis__secret_kind, call);
    store_redis__u_of(op)->len = len;
    op->key = store_redis__fmt("parley:{secret:", name, "}:bytes");
    store_redis__submit(op);
}

/* ---- membership ---------------------------------------------------------- */

/* The room's side (KEYS {r:<room>}:members, :joined) and the user's
 * ({i:<id>}:rooms, :rjoin, :rname): two writes, room first; the room's
 * answer is the op's. A failure between them leaves the user's side
 * behind; the next add or remove of that pair writes both again. */
static void store_redis__member_keys(store_redis__op *op, int room_side, char *k[3])
{
    store_redis__u *u = store_redis__u_of(op);
    if (room_side) {
        store_redis__room_keys(u->room, k); /* with its roles (store_redis_rooms.c) */
    } else {
        k[0] = SRU_K(u->id, "rooms");
        k[1] = SRU_K(u->id, "rjoin");
        k[2] = SRU_K(u->id, "rname");
    }
}

static void store_redis__on_member_user(store_redis__op *op, const redisReply *r)
{
    int64_t v = 0;
    if (store_redis__reply_i64(r, &v) != 0) {
        store_redis__fail(op, r);
        return;
    }
    op->res.count = (uint64_t)store_redis__u_of(op)->added;
    store_redis__finish(op, 0);
}

static void store_redis__on_member_room(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    int64_t v = 0;
    if (store_redis__reply_i64(r, &v) != 0) {
        store_redis__fail(op, r);
        return;
    }
    u->added = v == 1;
    char *k[3], *now = store_redis__int_txt(u->now);
    store_redis__member_keys(op, 0, k);
    const char *argv[] = {"EVAL", u->name ? store_redis__lua_oset_add : store_redis__lua_oset_del,
                          "3", k[0], k[1], k[2], u->room, now, u->name};
    store_redis__send(op, store_redis__on_member_user, k[0], u->name ? 9 : 7, argv, NULL);
    for (int i = 0; i < 3; i++)
        mem_free(k[i]);
    mem_free(now);
}

static void store_redis__member_room_write(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    char *k[4], *now = store_redis__int_txt(u->now);
    store_redis__member_keys(op, 1, k);
    k[3] = store_redis__fmt("parley:{r:", u->room, "}:flags"); /* a join uses an invitation */
    const char *argv[] = {"EVAL",
                          u->name ? store_redis__lua_room_join : store_redis__lua_room_leave,
                          "4", k[0], k[1], k[2], k[3], u->id, now};
    store_redis__send(op, store_redis__on_member_room, k[0], u->name ? 9 : 8, argv, NULL);
    for (int i = 0; i < 4; i++)
        mem_free(k[i]);
    mem_free(now);
}

/* add: the room's display name, kept with the membership for lists */
static void store_redis__on_member_name(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    if (r == NULL) {
        store_redis__fail(op, r);
        return;
    }
    u->name = r->type == REDIS_REPLY_NIL ? mem_strdup(u->room) : store_redis__dup_reply(r);
    if (u->name == NULL) {
        store_redis__fail(op, r);
        return;
    }
    store_redis__member_room_write(op);
}

static void store_redis__run_member(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    if (!u->guest) { /* remove */
        store_redis__member_room_write(op);
        return;
    }
    char *k = store_redis__fmt("parley:room:{", u->room, "}");
    const char *argv[] = {"HGET", k, "name"};
    store_redis__send(op, store_redis__on_member_name, k, 3, argv, NULL);
    mem_free(k);
}

static const store_redis__kind store_redis__member_kind = {"member", store_redis__run_member};

static void store_redis__member_start(store_t *s, int add, const char *room_key,
                                      const char *user_id, int64_t now_ms, store_count_cb cb,
                                      void *ud)
{
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__u_op(s, &store_redis__member_kind, call);
    store_redis__u *u = store_redis__u_of(op);
    u->room = mem_strdup(room_key);
    u->id = mem_strdup(user_id);
    u->now = now_ms;
    u->guest = add; /* (this op's flag: add or remove) */
    op->key = store_redis__fmt("parley:{r:", room_key, "}:members");
    u->name_key = store_redis__user_key(user_id, "");
    store_redis__lane_join(op, op->key);
    store_redis__lane_join(op, u->name_key);
    store_redis__submit(op);
}

void store_redis__member_add(store_t *s, const char *room_key, const char *user_id,
                             int64_t now_ms, store_count_cb cb, void *ud)
{
    store_redis__member_start(s, 1, room_key, user_id, now_ms, cb, ud);
}

void store_redis__member_remove(store_t *s, const char *room_key, const char *user_id,
                                store_count_cb cb, void *ud)
{
    store_redis__member_start(s, 0, room_key, user_id, 0, cb, ud);
}

/* The list script's member, joined[, name]... */
static void store_redis__on_member_rooms(store_redis__op *op, const redisReply *r)
{
    store_room_list_t *l = &op->res.list;
    int64_t joined = 0;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % 3) {
        store_redis__fail(op, r);
        return;
    }
    if (r->elements)
        l->rooms = mem_calloc(r->elements / 3, sizeof(*l->rooms));
    for (size_t i = 0; i < r->elements; i += 3) {
        store_room_t *room = &l->rooms[l->n++];
        room->key = store_redis__dup_reply(r->element[i]);
        room->name = store_redis__dup_reply(r->element[i + 2]);
        if (room->key == NULL || room->name == NULL ||
            store_redis__reply_i64(r->element[i + 1], &joined) != 0) {
            store_redis__fail(op, r);
            return;
        }
        room->joined_ms = joined;
    }
    store_redis__member_roles(op, store_redis__u_of(op)->id); /* store_redis_rooms.c */
}

static void store_redis__on_room_members(store_redis__op *op, const redisReply *r)
{
    store_member_list_t *l = &op->res.members;
    int64_t joined = 0;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % 3) {
        store_redis__fail(op, r);
        return;
    }
    if (r->elements)
        l->members = mem_calloc(r->elements / 3, sizeof(*l->members));
    for (size_t i = 0; i < r->elements; i += 3) {
        store_member_t *m = &l->members[l->n++];
        const redisReply *id = r->element[i];
        if (id->type != REDIS_REPLY_STRING || id->len >= STORE_USER_ID_MAX ||
            store_redis__reply_i64(r->element[i + 1], &joined) != 0) {
            store_redis__fail(op, r);
            return;
        }
        memcpy(m->id, id->str, id->len);
        m->id[id->len] = '\0';
        m->joined_ms = joined;
        m->role = store_redis__role_parse(r->element[i + 2]);
    }
    store_redis__finish(op, 0);
}

static void store_redis__run_oset_list(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    char *k[3];
    int user = u->id != NULL;
    store_redis__member_keys(op, !user, k);
    const char *list = user ? store_redis__lua_oset_list : store_redis__lua_room_members;
    const char *argv[] = {"EVAL", list, "3", k[0], k[1], k[2]};
    store_redis__send(op, user ? store_redis__on_member_rooms : store_redis__on_room_members,
                      k[0], 6, argv, NULL);
    for (int i = 0; i < 3; i++)
        mem_free(k[i]);
}

static const store_redis__kind store_redis__oset_list_kind = {"member_list",
                                                              store_redis__run_oset_list};

void store_redis__member_rooms(store_t *s, const char *user_id, store_room_list_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_LIST(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__u_op(s, &store_redis__oset_list_kind, call);
    store_redis__u_of(op)->id = mem_strdup(user_id);
    op->key = store_redis__user_key(user_id, "");
    store_redis__lane_join(op, op->key);
    store_redis__submit(op);
}

void store_redis__room_members(store_t *s, const char *room_key, store_member_list_cb cb,
                               void *ud)
{
    store_op_call call = STORE_OP_CALL_MEMBERS(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__u_op(s, &store_redis__oset_list_kind, call);
    store_redis__u_of(op)->room = mem_strdup(room_key);
    op->key = store_redis__fmt("parley:{r:", room_key, "}:members");
    store_redis__lane_join(op, op->key);
    store_redis__submit(op);
}

/* ---- direct conversations ------------------------------------------------ */

static void store_redis__on_dconvs(store_redis__op *op, const redisReply *r)
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
            store_redis__fail(op, r);
            return;
        }
        l->n++;
    }
    store_redis__finish(op, 0);
}

static void store_redis__run_dconvs(store_redis__op *op)
{
    const char *argv[] = {"SMEMBERS", op->key};
    store_redis__send(op, store_redis__on_dconvs, op->key, 2, argv, NULL);
}

static const store_redis__kind store_redis__dconvs_kind = {"direct_convs",
                                                           store_redis__run_dconvs};

/* The user's index, written with each direct append before its callback
 * (see store_redis.c), so no lane: like private_convs. */
void store_redis__direct_convs(store_t *s, const char *user_id, store_conv_list_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_CONVS(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__u_op(s, &store_redis__dconvs_kind, call);
    op->key = SRU_K(user_id, "dconv");
    store_redis__submit(op);
}

/* ---- read state ---------------------------------------------------------- */

/* Compares two stream ids "<ms>-<seq>" ("" is before every id). */
static int store_redis__sid_cmp(const char *a, const char *b)
{
    if (a[0] == '\0' || b[0] == '\0')
        return (a[0] != '\0') - (b[0] != '\0');
    char *ea, *eb;
    unsigned long long ma = strtoull(a, &ea, 10), mb = strtoull(b, &eb, 10);
    if (ma != mb)
        return ma < mb ? -1 : 1;
    unsigned long long sa = *ea == '-' ? strtoull(ea + 1, NULL, 10) : 0;
    unsigned long long sb = *eb == '-' ? strtoull(eb + 1, NULL, 10) : 0;
    return sa < sb ? -1 : sa > sb;
}

/* The stream id of an entry [id, fields] into out; its "fid" field
 * compared with user (1: the user's own message). -1: malformed. */
static int store_redis__entry_own(const redisReply *e, const char *user, char out[STORE_ID_MAX])
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= STORE_ID_MAX ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return -1;
    memcpy(out, e->element[0]->str, e->element[0]->len);
    out[e->element[0]->len] = '\0';
    const redisReply *f = e->element[1];
    size_t ulen = strlen(user);
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && k->len == 3 && memcmp(k->str, "fid", 3) == 0)
            return v->type == REDIS_REPLY_STRING && v->len == ulen &&
                   memcmp(v->str, user, ulen) == 0;
    }
    return 0;
}

/* The result: last_read as a message id (the tag added). */
static void store_redis__read_result(store_redis__op *op, const char *sid, uint64_t unread,
                                     int changed)
{
    store_read_t *out = &op->res.read;
    if (sid[0] && store_redis__id_make(out->last_read, sid, strlen(sid), op->tag) != 0) {
        store_redis__finish(op, STORE_EIO);
        return;
    }
    out->unread = unread;
    out->changed = changed;
    store_redis__finish(op, 0);
}

static void store_redis__on_marked(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    int64_t v = 0;
    if (store_redis__reply_i64(r, &v) != 0) {
        store_redis__fail(op, r);
        return;
    }
    store_redis__read_result(op, u->target, u->after, v == 1);
}

/* The walk is over: u->eff and u->unread are known. */
static void store_redis__read_walked(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    if (!u->mark_op || u->target[0] == '\0' || store_redis__sid_cmp(u->target, u->eff) <= 0) {
        store_redis__read_result(op, u->eff, u->unread, 0);
        return;
    }
    char *k = SRU_K(u->id, "read");
    const char *argv[] = {"EVAL", store_redis__lua_mark, "1", k, u->conv, u->target};
    store_redis__send(op, store_redis__on_marked, k, 6, argv, NULL);
    mem_free(k);
}

static void store_redis__read_next(store_redis__op *op);

/* One chunk of the walk, newest first. */
static void store_redis__on_read_chunk(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    char sid[STORE_ID_MAX];
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        store_redis__fail(op, r);
        return;
    }
    for (size_t i = 0; i < r->elements; i++) {
        int own = store_redis__entry_own(r->element[i], u->id, sid);
        if (own < 0) {
            store_redis__fail(op, r);
            return;
        }
        if (own) {
            memcpy(u->eff, sid, STORE_ID_MAX);
            store_redis__read_walked(op);
            return;
        }
        u->unread++;
        if (u->target[0] && store_redis__sid_cmp(sid, u->target) > 0)
            u->after++;
    }
    if (r->elements < STORE_REDIS__READ_CHUNK) {
        store_redis__read_walked(op);
        return;
    }
    snprintf(u->cursor, sizeof(u->cursor), "(%s", sid);
    store_redis__read_next(op);
}

static void store_redis__read_next(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    char low[STORE_ID_MAX + 1], count[16];
    snprintf(low, sizeof(low), "(%s", u->mark);
    snprintf(count, sizeof(count), "%d", STORE_REDIS__READ_CHUNK);
    const char *argv[] = {"XREVRANGE", op->key, u->cursor, u->mark[0] ? low : "-", "COUNT",
                          count};
    store_redis__send(op, store_redis__on_read_chunk, op->key, 6, argv, NULL);
}

/* The stored mark (nil: none): the walk starts from the newest message. */
static void store_redis__on_read_mark(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    if (r == NULL || (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STRING) ||
        (r->type == REDIS_REPLY_STRING && r->len >= STORE_ID_MAX)) {
        store_redis__fail(op, r);
        return;
    }
    if (r->type == REDIS_REPLY_STRING) {
        memcpy(u->mark, r->str, r->len);
        u->mark[r->len] = '\0';
    }
    memcpy(u->eff, u->mark, STORE_ID_MAX);
    strcpy(u->cursor, "+");
    store_redis__read_next(op);
}

static void store_redis__read_mark_get(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    char *k = SRU_K(u->id, "read");
    const char *argv[] = {"HGET", k, u->conv};
    store_redis__send(op, store_redis__on_read_mark, k, 3, argv, NULL);
    mem_free(k);
}

/* The message to mark (XRANGE id id, or the newest): must exist. */
static void store_redis__on_read_target(store_redis__op *op, const redisReply *r)
{
    store_redis__u *u = store_redis__u_of(op);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        store_redis__fail(op, r);
        return;
    }
    if (r->elements == 0) { /* none: not in this conversation, or it is empty */
        store_redis__finish(op, u->target[0] ? STORE_ENOTFOUND : 0);
        return;
    }
    const redisReply *e = r->element[0];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= STORE_ID_MAX) {
        store_redis__fail(op, r);
        return;
    }
    memcpy(u->target, e->element[0]->str, e->element[0]->len);
    u->target[e->element[0]->len] = '\0';
    store_redis__read_mark_get(op);
}

/* A message id's form: "<stream id>.<8 hex digits>". */
static int store_redis__id_form(const char *id)
{
    const char *dot = strrchr(id, '.');
    if (dot == NULL || strlen(dot + 1) != 8 || strspn(dot + 1, "0123456789abcdef") != 8)
        return 0;
    char sid[STORE_ID_MAX];
    size_t n = (size_t)(dot - id);
    if (n >= sizeof(sid))
        return 0;
    memcpy(sid, id, n);
    sid[n] = '\0';
    return store_redis__stream_id_valid(sid);
}

static void store_redis__run_read(store_redis__op *op)
{
    store_redis__u *u = store_redis__u_of(op);
    if (!u->mark_op) {
        store_redis__read_mark_get(op);
        return;
    }
    if (u->key == NULL) { /* the newest */
        const char *argv[] = {"XREVRANGE", op->key, "+", "-", "COUNT", "1"};
        store_redis__send(op, store_redis__on_read_target, op->key, 6, argv, NULL);
        return;
    }
    if (!store_redis__id_form(u->key)) {
        store_redis__ready(op, STORE_EBADID);
        return;
    }
    if (!store_redis__id_split(u->key, op->tag)) { /* an id of another conversation */
        store_redis__ready(op, STORE_ENOTFOUND);
        return;
    }
    snprintf(u->target, sizeof(u->target), "%s", u->key);
    const char *argv[] = {"XRANGE", op->key, u->key, u->key, "COUNT", "1"};
    store_redis__send(op, store_redis__on_read_target, op->key, 6, argv, NULL);
}

static const store_redis__kind store_redis__read_kind = {"read", store_redis__run_read};

/* The conversation's lane (a read sees the appends before it) and the
 * user's (marks apply in order). u->key holds the id to mark, if any. */
static void store_redis__read_start(store_t *s, int mark, const char *user_id, const char *conv,
                                    const char *msg_id, store_read_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_READ(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__u_op(s, &store_redis__read_kind, call);
    store_redis__u *u = store_redis__u_of(op);
    u->mark_op = mark;
    u->id = mem_strdup(user_id);
    u->conv = mem_strdup(conv);
    if (msg_id) { /* too long for an id: malformed */
        size_t n = strnlen(msg_id, STORE_ID_MAX);
        u->key = n < STORE_ID_MAX ? mem_strndup(msg_id, n) : mem_strdup("x");
    }
    op->key = store_redis__stream_key(conv);
    op->tag = store_redis__conv_tag(conv);
    u->name_key = SRU_K(user_id, "read");
    store_redis__lane_join(op, op->key);
    store_redis__lane_join(op, u->name_key);
    store_redis__submit(op);
}

void store_redis__read_mark(store_t *s, const char *user_id, const char *conv,
                            const char *msg_id, store_read_cb cb, void *ud)
{
    store_redis__read_start(s, 1, user_id, conv, msg_id, cb, ud);
}

void store_redis__read_get(store_t *s, const char *user_id, const char *conv, store_read_cb cb,
                           void *ud)
{
    store_redis__read_start(s, 0, user_id, conv, NULL, cb, ud);
}
