/* test_turn.c - the end-of-loop-turn hooks (src/util/turn.c) on a real
 * libuv loop: phase order, hooks armed while the turn runs, the pass limit,
 * disarming, and a loop that runs until idle once nothing is armed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "util/mem.h"
#include "util/turn.h"

#define NHOOKS 6

typedef struct fixture fixture;

/* Who a hook is, for its callback. */
typedef struct {
    fixture *f;
    int i;
} who;

/* A loop, its turn, and hooks a..f that log their letter when they run:
 * a, b in TURN_NET; c, f in TURN_STORE; d in TURN_BUS; e in TURN_EIO. */
struct fixture {
    uv_loop_t loop;
    turn_t t;
    turn_hook hooks[NHOOKS];
    who whos[NHOOKS];
    char log[256];
    size_t n;
    int rearm[NHOOKS];        /* times hook i arms itself again */
    int arm_other[NHOOKS];    /* hook i arms hook arm_other[i] - 1 once (0: none) */
    int disarm_other[NHOOKS]; /* hook i disarms hook disarm_other[i] - 1 */
    int closed;               /* turn_close ran (teardown skips it) */
};

static void on_hook(void *ud)
{
    who *w = ud;
    fixture *f = w->f;
    int i = w->i;
    f->log[f->n++] = (char)('a' + i);
    if (f->rearm[i] > 0) {
        f->rearm[i]--;
        turn_arm(&f->t, &f->hooks[i]);
    }
    if (f->arm_other[i]) {
        turn_arm(&f->t, &f->hooks[f->arm_other[i] - 1]);
        f->arm_other[i] = 0;
    }
    if (f->disarm_other[i])
        turn_disarm(&f->t, &f->hooks[f->disarm_other[i] - 1]);
}

static int setup(void **state)
{
    static const turn_phase phases[NHOOKS] = {TURN_NET, TURN_NET, TURN_STORE,
                                              TURN_BUS, TURN_EIO, TURN_STORE};
    fixture *f = mem_calloc(1, sizeof(*f));
    if (uv_loop_init(&f->loop) != 0 || turn_init(&f->loop, &f->t) != 0)
        return -1;
    for (int i = 0; i < NHOOKS; i++) {
        f->whos[i] = (who){f, i};
        turn_hook_init(&f->hooks[i], phases[i], on_hook, &f->whos[i]);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (!f->closed)
        turn_close(&f->t);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* nothing left behind */
    mem_free(f);
    return 0;
}

static void run_loop(fixture *f)
{
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

/* The log is exactly `want`; then it is emptied. */
static void log_is(fixture *f, const char *want)
{
    assert_int_equal(f->n, strlen(want));
    assert_memory_equal(f->log, want, f->n);
    f->n = 0;
}

static void test_phase_order(void **state)
{
    fixture *f = *state;
    /* armed out of order: runs store (c, f), bus (d), eio (e), net (b, a) */
    static const int order[] = {1, 0, 4, 2, 3, 5, 2}; /* c twice: runs once */
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        turn_arm(&f->t, &f->hooks[order[i]]);
    run_loop(f);
    log_is(f, "cfdeba");
}

static void test_armed_while_running(void **state)
{
    fixture *f = *state;
    /* net hook a arms store hook c: the next pass runs c, which arms a */
    f->arm_other[0] = 3;
    f->arm_other[2] = 1;
    turn_arm(&f->t, &f->hooks[0]);
    run_loop(f);
    log_is(f, "aca");
    /* c arms d: the bus phase comes after the store's, in the same pass */
    f->arm_other[2] = 4;
    turn_arm(&f->t, &f->hooks[2]);
    run_loop(f);
    log_is(f, "cd");
}

static void test_pass_limit_spills_into_next_turn(void **state)
{
    fixture *f = *state;
    f->rearm[2] = TURN_PASSES_MAX + 3; /* c re-arms itself: one run per pass */
    turn_arm(&f->t, &f->hooks[2]);
    assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 1); /* work left: alive */
    assert_int_equal(f->n, TURN_PASSES_MAX);
    run_loop(f); /* the rest, without blocking */
    assert_int_equal(f->n, TURN_PASSES_MAX + 4);
}

static void test_disarm(void **state)
{
    fixture *f = *state;
    turn_arm(&f->t, &f->hooks[0]);
    turn_arm(&f->t, &f->hooks[1]);
    turn_arm(&f->t, &f->hooks[3]);
    turn_disarm(&f->t, &f->hooks[3]);
    assert_false(turn_armed(&f->hooks[3]));
    f->disarm_other[0] = 2; /* a disarms b, armed in the same pass */
    run_loop(f);
    log_is(f, "a");
    /* nothing armed: the loop has nothing active and returns at once */
    assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 0);
    /* closing drops armed hooks without running them */
    turn_arm(&f->t, &f->hooks[4]);
    turn_close(&f->t);
    f->closed = 1;
    run_loop(f);
    log_is(f, "");
    assert_false(turn_armed(&f->hooks[4]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_phase_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_armed_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_limit_spills_into_next_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disarm, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
