/* store_contract.h - the store's contract tests (store.h), written once and
 * run against every backend: tests/unit/test_store_contract.c runs them on
 * the SQLite store (cmocka, `scripts/test.sh unit`), tests/redis/store_test.c
 * on the Redis store against a live cluster (`scripts/test.sh redis`).
 *
 * A runner includes store_contract.c (one translation unit per test
 * program, as the Makefile's unit rule and tests/redis/run.sh build them),
 * defines sc_failed, and gives each test a fresh, empty store in an sc_env.
 *
 * Adding a test: write `static void sc_test_NAME(sc_env *env)` in
 * store_contract.c (or, by concept, store_contract_msgs.c for messages
 * that live, store_contract_rooms.c for rooms with owners) with SC_ASSERT
 * and the sc_ wrappers, and add it to sc_tests[] in
 * store_contract_suite.c; both backends then run it. What only one backend can show
 * (SQLite's transactions and schema, Redis' keys and failover) stays in
 * that backend's own test file. */
#ifndef PARLEY_TESTS_STORE_CONTRACT_H
#define PARLEY_TESTS_STORE_CONTRACT_H

#include <stddef.h>
#include <uv.h>

#include "store/store.h"

typedef struct sc_env sc_env;

/* One backend under test, set up by the runner for each test. */
struct sc_env {
    uv_loop_t *loop;
    store_t *s; /* a fresh store on empty data */
    /* Runs the loop until *calls reaches want (bounded by the runner);
     * returns 1 if it did. */
    int (*wait)(sc_env *env, const int *calls, int want);
    /* store_close(env->s), then whatever the backend needs for its memory
     * to go (a loop run); env->s is NULL afterwards. */
    void (*close)(sc_env *env);
    /* Opens env->s again on the same data: 0 or the open's error. */
    int (*reopen)(sc_env *env);
    /* A second store on the same data (open2: 0 or the open's error),
     * and its close; concurrent2: both stores may have writes out at once
     * (else a test waits for each before starting the next). */
    int (*open2)(sc_env *env, store_t **out);
    void (*close2)(sc_env *env, store_t *s);
    int concurrent2;
    void *backend; /* the runner's */
};

typedef struct {
    const char *name;
    void (*fn)(sc_env *env);
} sc_test;

/* Called by SC_ASSERT on a failed check; the runner reports it (cmocka's
 * version does not return; the other one counts it and returns, and the
 * test then returns). */
void sc_failed(const char *expr, const char *file, int line);

/* Checks cond; on failure reports it and ends the test (returns). */
#define SC_ASSERT(cond)                                   \
    do {                                                  \
        if (!(cond)) {                                    \
            sc_failed(#cond, __FILE__, __LINE__);         \
            return;                                       \
        }                                                 \
    } while (0)

#endif
