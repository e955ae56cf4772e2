/* test_store_contract.c - the store contract suite (tests/store/
 * store_contract.c) on the SQLite store, as a cmocka test per contract
 * test. Each gets a fresh directory and a store on a loop of its own;
 * waiting runs that loop until it is idle, and teardown checks that the
 * store left no handle behind. SQLite-only behaviour is in
 * test_store_sqlite.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "../store/store_contract.c"
#include "util/log.h"

typedef struct {
    sc_env env;
    const sc_test *test;
    char root[64]; /* mkdtemp result, removed at teardown */
    char dir[128]; /* root/data/db: open creates it */
    uv_loop_t loop;
    turn_t turn;
} sqlite_fixture;

void sc_failed(const char *expr, const char *file, int line)
{
    print_error("%s\n", expr);
    _fail(file, line); /* cmocka: prints the location; does not return */
}

/* Runs the loop until it is idle: every started op has completed, and
 * nothing of the store's is armed. */
static int sqlite_wait(sc_env *env, const int *calls, int want)
{
    uv_run(env->loop, UV_RUN_DEFAULT);
    return *calls >= want && !uv_loop_alive(env->loop);
}

static void sqlite_close(sc_env *env)
{
    store_close(env->s);
    env->s = NULL;
}

static int sqlite_reopen(sc_env *env)
{
    sqlite_fixture *f = env->backend;
    return store_sqlite_open(&f->turn, f->dir, &env->s);
}

static int sqlite_open2(sc_env *env, store_t **out)
{
    sqlite_fixture *f = env->backend;
    return store_sqlite_open(&f->turn, f->dir, out);
}

static void sqlite_close2(sc_env *env, store_t *s)
{
    (void)env;
    store_close(s);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    sqlite_fixture *f = mem_calloc(1, sizeof(*f));
    f->test = *state; /* the initial state: the contract test */
    strcpy(f->root, "/tmp/parley-contract-XXXXXX");
    if (mkdtemp(f->root) == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/data/db", f->root);
    if (uv_loop_init(&f->loop) != 0 || turn_init(&f->loop, &f->turn) != 0)
        return -1;
    f->env = (sc_env){.loop = &f->loop, .wait = sqlite_wait, .close = sqlite_close,
                      .reopen = sqlite_reopen, .open2 = sqlite_open2,
                      .close2 = sqlite_close2, .backend = f};
    if (sqlite_reopen(&f->env) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    sqlite_fixture *f = *state;
    if (f->env.s)
        sqlite_close(&f->env);
    turn_close(&f->turn);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the turn's close callbacks */
    assert_int_equal(uv_loop_close(&f->loop), 0); /* no handle left behind */
    nftw(f->root, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    mem_free(f);
    return 0;
}

static void run_contract_test(void **state)
{
    sqlite_fixture *f = *state;
    f->test->fn(&f->env);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    struct CMUnitTest tests[SC_NTESTS];
    for (size_t i = 0; i < SC_NTESTS; i++)
        tests[i] = (struct CMUnitTest){sc_tests[i].name, run_contract_test, setup, teardown,
                                       (void *)&sc_tests[i]};
    return _cmocka_run_group_tests("store contract (sqlite)", tests, SC_NTESTS, NULL, NULL);
}
