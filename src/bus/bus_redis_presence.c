/* bus_redis_presence.c - this node's presence on the Redis bus: user_set
 * and room_set record the latest value of each entry (`own`, and `pending`
 * for the flush), and the flush (the bus's turn hook, TURN_BUS: once per
 * loop turn, one in flight at a time) sends them with one EVAL of the presence script; a
 * reset sends the whole state instead. The registry asks for a reset when
 * others may have dropped this node; close sends the leave. */
#include "bus/bus_redis_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

/* KEYS: the node's hash, its channel. ARGV[1]: '0' changes, '1' reset (the
 * pairs are the whole state), '2' leave (no pairs; the hash is deleted).
 * ARGV[2..]: field, value ("" removes). Returns the seq. */
const char bus_redis__lua_presence[] =
    "local seq = redis.call('HINCRBY', KEYS[1], '#seq', 1) "
    "local mode = ARGV[1] "
    "if mode ~= '0' then redis.call('DEL', KEYS[1]) "
    "  if mode == '2' then redis.call('SPUBLISH', KEYS[2], seq .. '\\n1\\n') return seq end "
    "  redis.call('HSET', KEYS[1], '#seq', seq) end "
    "local us = string.char(31) "
    "local msg = {seq .. '\\n' .. mode .. '\\n'} "
    "for i = 2, #ARGV - 1, 2 do "
    "  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) "
    "  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end "
    "  msg[#msg + 1] = ARGV[i] .. us .. ARGV[i + 1] .. '\\n' end "
    "redis.call('SPUBLISH', KEYS[2], table.concat(msg)) "
    "return seq";

/* ---- this node's presence ---------------------------------------------------- */

static bus__kv *bus__kv_find(bus__kv *head, const char *field)
{
    bus__kv *e = NULL;
    HASH_FIND_STR(head, field, e);
    return e;
}

static void bus__kv_del(bus__kv **head, bus__kv *e)
{
    HASH_DEL(*head, e);
    mem_free(e->field);
    mem_free(e->value);
    mem_free(e);
}

static void bus__kv_set(bus__kv **head, const char *field, const char *value)
{
    bus__kv *e = bus__kv_find(*head, field);
    if (e == NULL) {
        e = mem_calloc(1, sizeof(*e));
        e->field = mem_strdup(field);
        HASH_ADD_KEYPTR(hh, *head, e->field, strlen(e->field), e);
    } else {
        mem_free(e->value);
    }
    e->value = mem_strdup(value);
}

static void bus__kv_clear(bus__kv **head)
{
    bus__kv *e, *tmp;
    HASH_ITER(hh, *head, e, tmp) {
        bus__kv_del(head, e);
    }
}

void bus_redis__own_free(bus__redis *b)
{
    bus__kv_clear(&b->own);
    bus__kv_clear(&b->pending);
}

/* Records the latest value of one field ("" removes it) for the flush. */
static void bus__own_set(bus__redis *b, const char *field, const char *value)
{
    bus__kv *cur = bus__kv_find(b->own, field);
    int same = cur ? strcmp(cur->value, value) == 0 : value[0] == '\0';
    if (same && bus__kv_find(b->pending, field) == NULL)
        return;
    if (value[0])
        bus__kv_set(&b->own, field, value);
    else if (cur)
        bus__kv_del(&b->own, cur);
    bus__kv_set(&b->pending, field, value);
    bus_redis__flush_arm(b);
}

static void bus__on_flushed(void *ud, const redisReply *r, const char *err)
{
    bus__redis *b = ud;
    b->flush_inflight = 0;
    if (b->closed)
        return;
    if (bus_redis__failed(r, err)) {
        bus_redis__warn(b, "presence", r, err);
        b->reset_needed = 1; /* sent by the next heartbeat or change */
        if (b->pending)
            bus_redis__flush_arm(b);
        return;
    }
    if (b->pending || b->reset_needed)
        bus_redis__flush_arm(b);
}

/* Sends the pending changes, or the whole state when a reset is due. */
static void bus__flush_send(bus__redis *b)
{
    int reset = b->reset_needed;
    bus__kv *src = reset ? b->own : b->pending;
    size_t n = HASH_COUNT(src);
    if (!reset && n == 0)
        return;
    size_t argc = 6 + 2 * n;
    const char **argv = mem_alloc(argc * sizeof(*argv));
    argv[0] = "EVAL";
    argv[1] = bus_redis__lua_presence;
    argv[2] = "2";
    argv[3] = b->hkey;
    argv[4] = b->pchan;
    argv[5] = reset ? "1" : "0";
    size_t i = 6;
    for (bus__kv *e = src; e; e = e->hh.next) {
        argv[i++] = e->field;
        argv[i++] = e->value;
    }
    int rc = rc_command(b->rc, b->hkey, (int)argc, argv, NULL, bus__on_flushed, b);
    mem_free(argv);
    if (rc != 0) {
        log_warn("bus redis command refused", "node=%s cmd=EVAL rc=%d", b->id, rc);
        b->reset_needed = 1;
        return;
    }
    b->flush_inflight = 1;
    b->reset_needed = 0;
    bus__kv_clear(&b->pending);
}

void bus_redis__on_flush(void *ud)
{
    bus__redis *b = ud;
    if (!b->closed && !b->flush_inflight)
        bus__flush_send(b);
}

/* Flushes before the loop sleeps; after the flush in flight if any. */
void bus_redis__flush_arm(bus__redis *b)
{
    if (!b->closed && !b->flush_inflight)
        turn_arm(b->turn, &b->flush);
}

/* ---- the interface: user_set, room_set --------------------------------------- */

void bus_redis__op_user_set(bus_t *bb, const char *user_key, const char *name,
                            bus_user_state_t st)
{
    bus__redis *b = bus_redis__self(bb);
    if (b->closed)
        return;
    char *field = bus_redis__cat("u:", user_key, "");
    char *value;
    if (st == BUS_USER_ONLINE || st == BUS_USER_RESERVED)
        value = bus_redis__cat(st == BUS_USER_ONLINE ? "2" : "1", name ? name : "", "");
    else
        value = mem_strdup("");
    bus__own_set(b, field, value);
    mem_free(field);
    mem_free(value);
}

void bus_redis__op_room_set(bus_t *bb, const char *room_key, uint32_t count)
{
    bus__redis *b = bus_redis__self(bb);
    if (b->closed)
        return;
    char *field = bus_redis__cat("r:", room_key, "");
    char value[16] = "";
    if (count)
        snprintf(value, sizeof(value), "%" PRIu32, count);
    bus__own_set(b, field, value);
    mem_free(field);
}
