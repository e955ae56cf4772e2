/* store_redis_rooms.c - rooms with owners, on the Redis store: the room's
 * side of a membership with its role (store_redis_users.c writes both
 * sides), the succession of owners, store_member_role_set, a new room's
 * owner, its settings (fields private and topic of the room's hash),
 * flags (bans, mutes, invitations) and store_room_delete.
 *
 * Keys, in the room's slot (the tag of its messages):
 *   parley:{r:<room>}:members, :joined   members in join order, join times
 *                                        (store_redis_users.c);
 *   parley:{r:<room>}:roles              user id -> "owner" or "moderator"
 *                                        (a member without an entry is a
 *                                        plain member);
 *   parley:{r:<room>}:flags              "<kind>:<user id>" -> deadline
 *                                        (ms, 0 for none), checked when
 *                                        read.
 * A delete takes the room's hash first (the room is gone for every read),
 * then its slot in one script (members, roles, flags, and the history:
 * the conversation "r:<room>" has the same tag), then, at once, the index
 * entry and each member's room list and read mark. A read mark of a
 * former member stays; it names a stream id older than any of a room
 * created again with that key, so it hides nothing.
 * Every change of a room's members and roles is one script on these keys,
 * so a room never has two owners, and the succession (an owner leaving:
 * its longest-standing moderator, else member, becomes the owner) happens
 * in the same script as the leave. The first member of a room without
 * members becomes its owner. The roles live in the room's slot only: a
 * user's room list (store_member_rooms, read in the user's slot) asks each
 * room for the user's role afterwards, all at once (one more round trip;
 * each reply names its room, as replies of different nodes come in any
 * order). */
#include "store/store_redis_int.h"

#include <inttypes.h>
#include <stdio.h>

#include "util/mem.h"

/* STORE_FLAG_INVITE, in the flags' fields. */
#define STORE_REDIS__INVITE_TXT "3"
_Static_assert(STORE_FLAG_INVITE == 3, "STORE_REDIS__INVITE_TXT");

/* Joins: KEYS = members, joined, roles, flags; ARGV = user, now. 1 if
 * added; an invitation is used by the join. */
const char store_redis__lua_room_join[] =
    "if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end "
    "redis.call('HDEL', KEYS[4], '" STORE_REDIS__INVITE_TXT ":' .. ARGV[1]) "
    "local first = redis.call('ZCARD', KEYS[1]) == 0 "
    "local n = redis.call('HINCRBY', KEYS[2], '\\31seq', 1) "
    "redis.call('ZADD', KEYS[1], n, ARGV[1]) redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) "
    "if first then redis.call('HSET', KEYS[3], ARGV[1], 'owner') end return 1";
/* Leaves, with the succession: KEYS as join; ARGV = user. 1 if removed. */
const char store_redis__lua_room_leave[] =
    "if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end "
    "redis.call('ZREM', KEYS[1], ARGV[1]) "
    "local role = redis.call('HGET', KEYS[3], ARGV[1]) redis.call('HDEL', KEYS[3], ARGV[1]) "
    "if role == 'owner' then local m = redis.call('ZRANGE', KEYS[1], 0, -1) local pick = m[1] "
    "for _, x in ipairs(m) do if redis.call('HGET', KEYS[3], x) == 'moderator' then "
    "pick = x break end end "
    "if pick then redis.call('HSET', KEYS[3], pick, 'owner') end end return 1";
/* Members in join order: member, joined, role... */
const char store_redis__lua_room_members[] =
    "local m = redis.call('ZRANGE', KEYS[1], 0, -1) local r = {} "
    "for _, x in ipairs(m) do r[#r + 1] = x r[#r + 1] = redis.call('HGET', KEYS[2], x) or '0' "
    "r[#r + 1] = redis.call('HGET', KEYS[3], x) or 'member' end return r";
/* A role: KEYS as join; ARGV = user, role. 1 changed, 0 the same, -1 not a
 * member, -2 the owner's role taken away. */
static const char store_redis__lua_role_set[] =
    "if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return -1 end "
    "local cur = redis.call('HGET', KEYS[3], ARGV[1]) or 'member' "
    "if cur == ARGV[2] then return 0 end if cur == 'owner' then return -2 end "
    "if ARGV[2] == 'owner' then local all = redis.call('HGETALL', KEYS[3]) "
    "for i = 1, #all, 2 do if all[i + 1] == 'owner' then "
    "redis.call('HSET', KEYS[3], all[i], 'moderator') end end end "
    "if ARGV[2] == 'member' then redis.call('HDEL', KEYS[3], ARGV[1]) "
    "else redis.call('HSET', KEYS[3], ARGV[1], ARGV[2]) end return 1";

static const char *const store_redis__role_names[] = {"member", "moderator", "owner"};

int store_redis__role_parse(const redisReply *r)
{
    for (int i = STORE_ROLE_OWNER; i > STORE_ROLE_MEMBER; i--)
        if (r->type == REDIS_REPLY_STRING && strlen(store_redis__role_names[i]) == r->len &&
            memcmp(r->str, store_redis__role_names[i], r->len) == 0)
            return i;
    return STORE_ROLE_MEMBER;
}

void store_redis__room_keys(const char *room, char *k[3])
{
    k[0] = store_redis__fmt("parley:{r:", room, "}:members");
    k[1] = store_redis__fmt("parley:{r:", room, "}:joined");
    k[2] = store_redis__fmt("parley:{r:", room, "}:roles");
}

static void store_redis__on_role(store_redis__op *op, const redisReply *r)
{
    int64_t v = 0;
    if (store_redis__reply_i64(r, &v) != 0 || v < -2 || v > 1) {
        store_redis__fail(op, r);
        return;
    }
    op->res.count = v == 1;
    store_redis__finish(op, v == -1 ? STORE_ENOTFOUND : v == -2 ? STORE_EINVAL : 0);
}

static void store_redis__run_role(store_redis__op *op)
{
    if (op->in.role.role < STORE_ROLE_MEMBER || op->in.role.role > STORE_ROLE_OWNER) {
        store_redis__ready(op, STORE_EINVAL);
        return;
    }
    const char *argv[] = {"EVAL", store_redis__lua_role_set, "3", op->in.role.keys[0],
                          op->in.role.keys[1], op->in.role.keys[2], op->in.role.user_id,
                          store_redis__role_names[op->in.role.role]};
    store_redis__send(op, store_redis__on_role, op->key, 8, argv, NULL);
}

static const store_redis__kind store_redis__role_kind = {"member_role_set",
                                                         store_redis__run_role};

void store_redis__member_role_set(store_t *s, const char *room_key, const char *user_id,
                                  int role, store_count_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__op_new(store_redis__self(s), &store_redis__role_kind, call);
    store_redis__room_keys(room_key, op->in.role.keys);
    op->in.role.user_id = mem_strdup(user_id);
    op->in.role.role = role;
    op->key = mem_strdup(op->in.role.keys[0]); /* the lane of the room's members */
    store_redis__lane_join(op, op->key);
    store_redis__submit(op);
}

/* ---- a room's creator, settings, flags ----------------------------------- */

/* Makes ARGV[1] a member (joined ARGV[2]) and the owner: KEYS as join. */
static const char store_redis__lua_room_own[] =
    "if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then "
    "local n = redis.call('HINCRBY', KEYS[2], '\\31seq', 1) "
    "redis.call('ZADD', KEYS[1], n, ARGV[1]) redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end "
    "local all = redis.call('HGETALL', KEYS[3]) "
    "for i = 1, #all, 2 do if all[i + 1] == 'owner' and all[i] ~= ARGV[1] then "
    "redis.call('HSET', KEYS[3], all[i], 'moderator') end end "
    "redis.call('HSET', KEYS[3], ARGV[1], 'owner') return 1";
static const char store_redis__lua_topic[] =
    "if redis.call('HEXISTS', KEYS[1], 'name') == 0 then return 0 end "
    "redis.call('HSET', KEYS[1], 'topic', ARGV[1]) return 1";

static void store_redis__on_owner_user(store_redis__op *op, const redisReply *r)
{
    if (r == NULL)
        store_redis__fail(op, r);
    else
        store_redis__finish(op, 0);
}

/* The room's side is written: the user's (its room list). */
static void store_redis__on_owner_room(store_redis__op *op, const redisReply *r)
{
    if (r == NULL) {
        store_redis__fail(op, r);
        return;
    }
    const char *owner = op->in.room_create.owner;
    char now[24];
    snprintf(now, sizeof(now), "%" PRId64, op->in.room_create.now_ms);
    char *k[3] = {store_redis__user_key(owner, "}:rooms"), store_redis__user_key(owner, "}:rjoin"),
                  store_redis__user_key(owner, "}:rname")};
    const char *argv[] = {"EVAL", store_redis__lua_oset_add, "3", k[0], k[1], k[2],
                          op->in.room_create.key, now, op->res.room.name};
    store_redis__send(op, store_redis__on_owner_user, k[0], 9, argv, NULL);
    for (int i = 0; i < 3; i++)
        mem_free(k[i]);
}

void store_redis__room_owned(store_redis__op *op)
{
    if (!op->res.room.created || op->in.room_create.owner == NULL) {
        store_redis__finish(op, 0);
        return;
    }
    char *k[3], now[24];
    snprintf(now, sizeof(now), "%" PRId64, op->in.room_create.now_ms);
    store_redis__room_keys(op->in.room_create.key, k);
    const char *argv[] = {"EVAL", store_redis__lua_room_own, "3", k[0], k[1], k[2],
                          op->in.room_create.owner, now};
    store_redis__send(op, store_redis__on_owner_room, k[0], 8, argv, NULL);
    for (int i = 0; i < 3; i++)
        mem_free(k[i]);
}

/* HMGET name private topic. */
static void store_redis__on_info(store_redis__op *op, const redisReply *r)
{
    store_room_info_t *in = &op->res.info;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_NIL) {
        store_redis__finish(op, STORE_ENOTFOUND);
        return;
    }
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        (in->name = store_redis__dup_reply(r->element[0])) == NULL) {
        store_redis__fail(op, r);
        return;
    }
    in->is_private = r->element[1]->type == REDIS_REPLY_STRING && r->element[1]->len == 1 &&
                     r->element[1]->str[0] == '1';
    in->topic = r->element[2]->type == REDIS_REPLY_STRING ? store_redis__dup_reply(r->element[2])
                                                          : mem_strdup("");
    store_redis__finish(op, 0);
}

static void store_redis__run_info(store_redis__op *op)
{
    const char *argv[] = {"HMGET", op->key, "name", "private", "topic"};
    store_redis__send(op, store_redis__on_info, op->key, 5, argv, NULL);
}

static const store_redis__kind store_redis__info_kind = {"room_info", store_redis__run_info};

void store_redis__room_info(store_t *s, const char *key, store_room_info_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_INFO(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__op_new(store_redis__self(s), &store_redis__info_kind, call);
    op->key = store_redis__fmt("parley:room:{", key, "}");
    store_redis__lane_join(op, op->key);
    store_redis__submit(op);
}

/* A topic's or a flag's reply: an integer (set, clear, topic) or the
 * flag's deadline (check). */
static void store_redis__on_room_count(store_redis__op *op, const redisReply *r)
{
    int64_t v = 0;
    if (op->in.role.op == STORE_FLAG__CHECK && r && r->type == REDIS_REPLY_NIL) {
        store_redis__finish(op, 0);
        return;
    }
    if (r && op->in.role.op == STORE_FLAG__CHECK && r->type == REDIS_REPLY_STRING &&
        store_redis__parse_i64(r->str, r->len, &v) == 0) {
        op->res.count = v == 0 || v > op->in.role.ms;
        store_redis__finish(op, 0);
        return;
    }
    if (op->in.role.op == STORE_FLAG__CHECK || store_redis__reply_i64(r, &v) != 0) {
        store_redis__fail(op, r);
        return;
    }
    op->res.count = v > 0;
    /* a topic of no room; a flag set over an older one is still set */
    store_redis__finish(op, op->in.role.op == 0 && v == 0 ? STORE_ENOTFOUND : 0);
}

static void store_redis__run_room_count(store_redis__op *op)
{
    char ms[24];
    snprintf(ms, sizeof(ms), "%" PRId64, op->in.role.ms);
    const char *k = op->in.role.keys[0], *f = op->in.role.user_id;
    if (op->in.role.op == 0) { /* the topic */
        const char *argv[] = {"EVAL", store_redis__lua_topic, "1", op->key, f};
        store_redis__send(op, store_redis__on_room_count, op->key, 5, argv, NULL);
    } else if (op->in.role.role < STORE_FLAG_BAN || op->in.role.role > STORE_FLAG_INVITE ||
               op->in.role.op > STORE_FLAG__CHECK) {
        store_redis__ready(op, STORE_EINVAL);
    } else if (op->in.role.op == STORE_FLAG__SET) {
        const char *argv[] = {"EVAL", "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1",
                              "1", k, f, ms};
        store_redis__send(op, store_redis__on_room_count, k, 6, argv, NULL);
    } else {
        const char *argv[] = {op->in.role.op == STORE_FLAG__CLEAR ? "HDEL" : "HGET", k, f};
        store_redis__send(op, store_redis__on_room_count, k, 3, argv, NULL);
    }
}

static const store_redis__kind store_redis__room_count_kind = {"room_flag_topic",
                                                               store_redis__run_room_count};

void store_redis__room_topic(store_t *s, const char *key, const char *topic, store_count_cb cb,
                             void *ud)
{
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op =
        store_redis__op_new(store_redis__self(s), &store_redis__room_count_kind, call);
    op->key = store_redis__fmt("parley:room:{", key, "}");
    op->in.role.user_id = mem_strdup(topic);
    store_redis__lane_join(op, op->key);
    store_redis__submit(op);
}

void store_redis__flag(store_t *s, const char *room_key, const char *user_id, int kind, int op_,
                       int64_t ms, store_count_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op =
        store_redis__op_new(store_redis__self(s), &store_redis__room_count_kind, call);
    char k[16];
    snprintf(k, sizeof(k), "%d:", kind);
    op->in.role.keys[0] = store_redis__fmt("parley:{r:", room_key, "}:flags");
    op->in.role.user_id = store_redis__fmt(k, user_id, "");
    op->in.role.role = kind;
    op->in.role.op = op_ < STORE_FLAG__SET ? 99 : op_;
    op->in.role.ms = ms;
    op->key = store_redis__fmt("parley:{r:", room_key, "}:members"); /* the room's lane */
    store_redis__lane_join(op, op->key);
    store_redis__submit(op);
}

/* ---- store_room_delete --------------------------------------------------- */

/* The room's slot: {members} and everything deleted. */
static const char store_redis__lua_room_wipe[] =
    "local m = redis.call('ZRANGE', KEYS[1], 0, -1) redis.call('DEL', unpack(KEYS)) return m";
/* The index: KEYS = names, order; ARGV = key. */
static const char store_redis__lua_unindex[] =
    "redis.call('HDEL', KEYS[1], ARGV[1]) redis.call('LREM', KEYS[2], 0, ARGV[1]) return 1";

/* Each reply of the last step: a failure is logged (and counted); the
 * last one completes the delete. */
static void store_redis__on_room_unlinked(store_redis__op *op, const redisReply *r)
{
    if (r == NULL)
        op->in.role.op++;
    if (op->inflight == 0)
        store_redis__finish(op, op->in.role.op ? STORE_EIO : 0);
}

/* The room's slot is gone; r lists its members: the index, and each
 * member's room list and read mark, at once. */
static void store_redis__on_room_wiped(store_redis__op *op, const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        store_redis__fail(op, r);
        return;
    }
    const char *key = op->in.role.user_id;
    char *conv = store_conv_room(key);
    const char *ix[] = {"EVAL", store_redis__lua_unindex, "2", "parley:{rooms}:names",
                        "parley:{rooms}:order", key};
    op->res.count = 1;
    if (store_redis__command(op, store_redis__on_room_unlinked, ix[4], 6, ix, NULL) != 0)
        op->in.role.op++;
    for (size_t i = 0; i < r->elements; i++) {
        char *id = store_redis__dup_reply(r->element[i]);
        if (id == NULL)
            continue;
        char *k[4] = {store_redis__user_key(id, "}:rooms"), store_redis__user_key(id, "}:rjoin"),
                      store_redis__user_key(id, "}:rname"), store_redis__user_key(id, "}:read")};
        const char *del[] = {"EVAL", store_redis__lua_oset_del, "3", k[0], k[1], k[2], key};
        const char *hdel[] = {"HDEL", k[3], conv};
        if (store_redis__command(op, store_redis__on_room_unlinked, k[0], 7, del, NULL) != 0 ||
            store_redis__command(op, store_redis__on_room_unlinked, k[3], 3, hdel, NULL) != 0)
            op->in.role.op++;
        for (int j = 0; j < 4; j++)
            mem_free(k[j]);
        mem_free(id);
    }
    mem_free(conv);
    if (op->inflight == 0)
        store_redis__finish(op, op->in.role.op ? STORE_EIO : 0);
}

/* The room's hash: gone (1), or there was none (0). */
static void store_redis__on_room_dropped(store_redis__op *op, const redisReply *r)
{
    int64_t v = 0;
    if (store_redis__reply_i64(r, &v) != 0) {
        store_redis__fail(op, r);
        return;
    }
    if (v == 0) {
        store_redis__finish(op, STORE_ENOTFOUND);
        return;
    }
    const char *key = op->in.role.user_id;
    char *conv = store_conv_room(key), *k[7];
    store_redis__room_keys(key, k);
    k[3] = store_redis__fmt("parley:{r:", key, "}:flags");
    k[4] = store_redis__stream_key(conv);
    k[5] = store_redis__conv_key(conv, "mx");
    k[6] = store_redis__conv_key(conv, "tomb");
    const char *argv[] = {"EVAL", store_redis__lua_room_wipe, "7", k[0], k[1], k[2], k[3],
                          k[4], k[5], k[6]};
    store_redis__send(op, store_redis__on_room_wiped, k[0], 10, argv, NULL);
    for (int i = 0; i < 7; i++)
        mem_free(k[i]);
    mem_free(conv);
}

static void store_redis__run_room_delete(store_redis__op *op)
{
    const char *argv[] = {"DEL", op->key};
    store_redis__send(op, store_redis__on_room_dropped, op->key, 2, argv, NULL);
}

static const store_redis__kind store_redis__room_delete_kind = {"room_delete",
                                                                store_redis__run_room_delete};

void store_redis__room_delete(store_t *s, const char *key, store_count_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op =
        store_redis__op_new(store_redis__self(s), &store_redis__room_delete_kind, call);
    op->key = store_redis__fmt("parley:room:{", key, "}");
    op->in.role.user_id = mem_strdup(key);
    op->in.role.keys[0] = store_redis__fmt("parley:{r:", key, "}:members");
    store_redis__lane_join(op, op->key);
    store_redis__lane_join(op, op->in.role.keys[0]);
    store_redis__submit(op);
}

/* ---- a user's roles, for store_member_rooms ------------------------------ */

/* KEYS = a room's roles; ARGV = its index in the list, the user. */
static const char store_redis__lua_role_of[] =
    "return {ARGV[1], redis.call('HGET', KEYS[1], ARGV[2]) or 'member'}";

static void store_redis__on_role_of(store_redis__op *op, const redisReply *r)
{
    store_room_list_t *l = &op->res.list;
    int64_t i = -1;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        store_redis__reply_i64(r->element[0], &i) != 0 || i < 0 || (uint64_t)i >= l->n)
        op->in.role.op++; /* (a failed command was logged) */
    else
        l->rooms[i].role = store_redis__role_parse(r->element[1]);
    if (op->inflight == 0)
        store_redis__finish(op, op->in.role.op ? STORE_EIO : 0);
}

void store_redis__member_roles(store_redis__op *op, const char *user_id)
{
    store_room_list_t *l = &op->res.list;
    for (size_t i = 0; i < l->n; i++) {
        char idx[24], *k = store_redis__fmt("parley:{r:", l->rooms[i].key, "}:roles");
        snprintf(idx, sizeof(idx), "%zu", i);
        const char *argv[] = {"EVAL", store_redis__lua_role_of, "1", k, idx, user_id};
        if (store_redis__command(op, store_redis__on_role_of, k, 6, argv, NULL) != 0)
            op->in.role.op++;
        mem_free(k);
    }
    if (op->inflight == 0)
        store_redis__finish(op, op->in.role.op ? STORE_EIO : 0);
}
