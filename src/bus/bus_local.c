/* bus_local.c - bus.h for a lone process (the embedded mode): there is no
 * other node, so a publication reaches nobody, a watch is active at once,
 * every claim succeeds (the chat layer checks its own connections first),
 * a lookup finds no other node's claim, and the mirror of other nodes
 * stays empty. */
#include "bus/bus.h"

#include <openssl/rand.h>

#include "util/mem.h"

static void bus_local_close(bus_t *b)
{
    mem_free(b);
}

static void bus_local_set_handlers(bus_t *b, const bus_handlers *h, void *ud)
{
    (void)b, (void)h, (void)ud;
}

static const char *bus_local_node_id(const bus_t *b)
{
    (void)b;
    return "local";
}

static void bus_local_publish(bus_t *b, const char *topic, const char *data, size_t len)
{
    (void)b, (void)topic, (void)data, (void)len;
}

static void bus_local_watch(bus_t *b, const char *topic, bus_done_cb cb, void *ud)
{
    (void)b, (void)topic;
    if (cb)
        cb(ud, 0);
}

static void bus_local_unwatch(bus_t *b, const char *topic)
{
    (void)b, (void)topic;
}

static void bus_local_claim(bus_t *b, const char *user_key, int exclusive, const char *takeover,
                            bus_done_cb cb, void *ud)
{
    (void)b, (void)user_key, (void)exclusive, (void)takeover;
    if (cb)
        cb(ud, 0);
}

static void bus_local_release(bus_t *b, const char *user_key)
{
    (void)b, (void)user_key;
}

/* No other node can hold a name. */
static void bus_local_user_lookup(bus_t *b, const char *user_key, bus_done_cb cb, void *ud)
{
    (void)b, (void)user_key;
    if (cb)
        cb(ud, BUS_ENOTFOUND);
}

static void bus_local_user_set(bus_t *b, const char *user_key, const char *name,
                               bus_user_state_t st)
{
    (void)b, (void)user_key, (void)name, (void)st;
}

static void bus_local_room_set(bus_t *b, const char *room_key, uint32_t count)
{
    (void)b, (void)room_key, (void)count;
}

static bus_user_state_t bus_local_user_state(const bus_t *b, const char *user_key,
                                             const char **name)
{
    (void)b, (void)user_key, (void)name;
    return BUS_USER_GONE;
}

static void bus_local_users_each(const bus_t *b,
                                 void (*fn)(void *ud, const char *key, const char *name),
                                 void *ud)
{
    (void)b, (void)fn, (void)ud;
}

static uint64_t bus_local_room_count(const bus_t *b, const char *room_key)
{
    (void)b, (void)room_key;
    return 0;
}

static void bus_local_metrics(const bus_t *b, buf_t *out)
{
    (void)b, (void)out;
}

/* A lone node restores only the sessions it kept itself (sio does that):
 * any secret works, and there are no records to keep. */
static void bus_local_shared_key(bus_t *b, bus_data_cb cb, void *ud)
{
    (void)b;
    unsigned char key[32];
    if (RAND_bytes(key, sizeof(key)) != 1) {
        cb(ud, BUS_EIO, NULL, 0);
        return;
    }
    cb(ud, 0, (const char *)key, sizeof(key));
}

static void bus_local_session_put(bus_t *b, const char *pid, const char *data, size_t len,
                                  uint32_t ttl_ms)
{
    (void)b, (void)pid, (void)data, (void)len, (void)ttl_ms;
}

static void bus_local_session_keep(bus_t *b, const char *pid, uint32_t ttl_ms)
{
    (void)b, (void)pid, (void)ttl_ms;
}

static void bus_local_session_del(bus_t *b, const char *pid)
{
    (void)b, (void)pid;
}

static void bus_local_session_take(bus_t *b, const char *pid, bus_data_cb cb, void *ud)
{
    (void)b, (void)pid;
    cb(ud, BUS_ENOTFOUND, NULL, 0);
}

static const bus_ops_t bus_local_ops = {
    .close = bus_local_close,
    .set_handlers = bus_local_set_handlers,
    .node_id = bus_local_node_id,
    .publish = bus_local_publish,
    .watch = bus_local_watch,
    .unwatch = bus_local_unwatch,
    .claim = bus_local_claim,
    .release = bus_local_release,
    .user_lookup = bus_local_user_lookup,
    .user_set = bus_local_user_set,
    .room_set = bus_local_room_set,
    .user_state = bus_local_user_state,
    .users_each = bus_local_users_each,
    .room_count = bus_local_room_count,
    .metrics = bus_local_metrics,
    .shared_key = bus_local_shared_key,
    .session_put = bus_local_session_put,
    .session_keep = bus_local_session_keep,
    .session_del = bus_local_session_del,
    .session_take = bus_local_session_take,
};

bus_t *bus_local_new(void)
{
    bus_t *b = mem_calloc(1, sizeof(*b));
    b->ops = &bus_local_ops;
    b->clustered = 0;
    return b;
}
