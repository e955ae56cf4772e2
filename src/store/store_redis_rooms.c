/* store_redis_rooms.c - rooms with owners, on the Redis store: the room's
 * side of a membership with its role (store_redis_users.c writes both
 * sides), the succession of owners, and store_member_role_set.
 *
 * Keys, in the room's slot (the tag of its messages):
 *   parley:{r:<room>}:members, :joined   members in join order, join times
 *                                        (store_redis_users.c);
 *   parley:{r:<room>}:roles              user id -> "owner" or "moderator"
 *                                        (a member without an entry is a
 *                                        plain member).
 * Every change of a room's members and roles is one script on these keys,
 * so a room never has two owners, and the succession (an owner leaving:
 * its longest-standing moderator, else member, becomes the owner) happens
 * in the same script as the leave. The first member of a room without
 * members becomes its owner. The roles live in the room's slot only: a
 * user's room list (store_member_rooms, the user's slot) says
 * STORE_ROLE_MEMBER; store_room_members has the roles. */
#include "store/store_redis_int.h"

#include "util/mem.h"

/* Joins: KEYS = members, joined, roles; ARGV = user, now. 1 if added. */
const char store_redis__lua_room_join[] =
    "if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end "
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
