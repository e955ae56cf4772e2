/* admin.c - `parley admin set-owner ROOM USER`: the administrator's path
 * to a room's owner, for rooms from before owners existed (schema 6 of
 * the SQLite store, and every Redis room of before, have none) or whose
 * owner must change. It reads parley's configuration like the server
 * (the same options pick the store: --data for SQLite, --redis for a
 * Redis Cluster), opens the store on a loop of its own, runs the store
 * operations one after the other (the user by name, the room, the
 * membership, the role) and exits. Safe while servers run: each operation
 * is the store's own, atomic as store.h says. */
#include "admin.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "chat/chat_validate.h"
#include "config.h"
#include "store/store.h"
#include "util/mem.h"
#include "util/turn.h"

/* How long a command may wait for the store. */
#define PARLEY_ADMIN_TIMEOUT_MS 15000

typedef struct {
    uv_loop_t loop;
    turn_t turn;
    uv_timer_t timer;
    store_t *store;
    int done, rc, timed_out;
    uint64_t count;
    char user_id[STORE_USER_ID_MAX];
} parley_admin;

int parley_admin_wanted(int argc, char **argv)
{
    return argc >= 2 && strcmp(argv[1], "admin") == 0;
}

static void parley_admin_on_timeout(uv_timer_t *t)
{
    parley_admin *a = t->data;
    a->timed_out = 1;
    uv_stop(&a->loop);
}

/* Runs the loop until the started operation's callback ran (each
 * callback stops the loop, so that it does not sleep until the timeout). */
static int parley_admin_wait(parley_admin *a)
{
    while (!a->done && !a->timed_out)
        uv_run(&a->loop, UV_RUN_DEFAULT);
    if (!a->done)
        return STORE_EIO;
    a->done = 0;
    return a->rc;
}

static void parley_admin_on_user(void *ud, int rc, const store_user_t *u)
{
    parley_admin *a = ud;
    a->done = 1;
    a->rc = rc;
    uv_stop(&a->loop);
    if (u)
        snprintf(a->user_id, sizeof(a->user_id), "%s", u->id);
}

static void parley_admin_on_room(void *ud, int rc, const char *name, int created)
{
    parley_admin *a = ud;
    a->done = 1;
    a->rc = rc;
    uv_stop(&a->loop);
}

static void parley_admin_on_count(void *ud, int rc, uint64_t n)
{
    parley_admin *a = ud;
    a->done = 1;
    a->rc = rc;
    uv_stop(&a->loop);
    a->count = n;
}

static int64_t parley_admin_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The store operations of set-owner; a message on failure. */
static int parley_admin_set_owner(parley_admin *a, const chat_name_t *room,
                                  const chat_name_t *user)
{
    int64_t now = parley_admin_now_ms();
    /* expired guests count as gone: a ttl the store's reads never reach */
    store_user_find(a->store, user->key, now, INT64_MAX / 4, parley_admin_on_user, a);
    int rc = parley_admin_wait(a);
    if (rc != 0) {
        fprintf(stderr, "parley admin: no user %s (%s)\n", user->display, err_str(rc));
        return 1;
    }
    store_room_get(a->store, room->key, parley_admin_on_room, a);
    if ((rc = parley_admin_wait(a)) != 0) {
        fprintf(stderr, "parley admin: no room %s (%s)\n", room->display, err_str(rc));
        return 1;
    }
    store_member_add(a->store, room->key, a->user_id, now, parley_admin_on_count, a);
    if ((rc = parley_admin_wait(a)) == 0) {
        store_member_role_set(a->store, room->key, a->user_id, STORE_ROLE_OWNER,
                              parley_admin_on_count, a);
        rc = parley_admin_wait(a);
    }
    if (rc != 0) {
        fprintf(stderr, "parley admin: set-owner failed (%s)\n", err_str(rc));
        return 1;
    }
    printf("%s is the owner of %s\n", user->display, room->display);
    return 0;
}

/* Opens the configured store on a's loop: 0 or an error printed. */
static int parley_admin_open(parley_admin *a, const parley_config *cfg)
{
    int rc = cfg->redis[0] ? store_redis_open(&a->turn, cfg->redis, 0, 0, 0, &a->store)
                           : store_sqlite_open(&a->turn, cfg->data_dir, &a->store);
    if (rc != 0)
        fprintf(stderr, "parley admin: cannot open the store %s (%s)\n",
                cfg->redis[0] ? cfg->redis : cfg->data_dir, err_str(rc));
    return rc;
}

int parley_admin_main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[2], "set-owner") != 0) {
        fprintf(stderr, "usage: parley admin set-owner ROOM USER [options]\n");
        return 2;
    }
    chat_name_t room = {0}, user = {0};
    if (chat_room_parse(argv[3], strlen(argv[3]), &room) != 0 ||
        chat_username_parse(argv[4], strlen(argv[4]), &user) != 0) {
        fprintf(stderr, "parley admin: not a room name and a username: %s %s\n", argv[3],
                argv[4]);
        chat_name_free(&room);
        chat_name_free(&user);
        return 2;
    }
    /* parley's own options follow: argv without "admin set-owner ROOM USER" */
    char **rest = mem_calloc((size_t)argc - 3, sizeof(*rest));
    rest[0] = argv[0];
    for (int i = 5; i < argc; i++)
        rest[i - 4] = argv[i];
    parley_config cfg;
    int status = 2, r = parley_configure(&cfg, argc - 4, rest);
    parley_admin *a = mem_calloc(1, sizeof(*a));
    if (r != 0)
        goto cleanup;
    status = 1;
    if (uv_loop_init(&a->loop) != 0 || turn_init(&a->loop, &a->turn) != 0 ||
        uv_timer_init(&a->loop, &a->timer) != 0)
        goto cleanup;
    a->timer.data = a;
    if (uv_timer_start(&a->timer, parley_admin_on_timeout, PARLEY_ADMIN_TIMEOUT_MS, 0) != 0 ||
        parley_admin_open(a, &cfg) != 0)
        goto close;
    status = parley_admin_set_owner(a, &room, &user);
    store_close(a->store);
close:
    uv_close((uv_handle_t *)&a->timer, NULL);
    turn_close(&a->turn);
    uv_run(&a->loop, UV_RUN_DEFAULT); /* close callbacks */
    uv_loop_close(&a->loop);
cleanup:
    parley_config_free(&cfg);
    mem_free(a);
    mem_free(rest);
    chat_name_free(&room);
    chat_name_free(&user);
    return status;
}
