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

#include "util/turn.h"

/* A log of which hook ran, as letters. */
typedef struct {
    char log[256];
    size_t n;
    turn_t *t;
    turn_hook hooks[6];
    int rearm[6];      /* times hook i arms itself again */
    int arm_other[6];  /* hook i arms hook arm_other[i] - 1 (0: none) */
    int disarm_other[6];
} fixture;

typedef struct {
    fixture *f;
    int i;
} who;

static who whos[6];

static void on_hook(void *ud)
{
    who *w = ud;
    fixture *f = w->f;
    int i = w->i;
    f->log[f->n++] = (char)('a' + i);
    if (f->rearm[i] > 0) {
        f->rearm[i]--;
        turn_arm(f->t, &f->hooks[i]);
    }
    if (f->arm_other[i]) {
        turn_arm(f->t, &f->hooks[f->arm_other[i] - 1]);
        f->arm_other[i] = 0;
    }
    if (f->disarm_other[i])
        turn_disarm(f->t, &f->hooks[f->disarm_other[i] - 1]);
}

/* Hooks a..f: a, b in TURN_NET; c in TURN_STORE; d in TURN_BUS; e in
 * TURN_EIO; f in TURN_STORE. */
static void setup_fixture(fixture *f, turn_t *t)
{
    static const turn_phase phases[6] = {TURN_NET, TURN_NET, TURN_STORE,
                                         TURN_BUS, TURN_EIO, TURN_STORE};
    memset(f, 0, sizeof(*f));
    f->t = t;
    for (int i = 0; i < 6; i++) {
        whos[i] = (who){f, i};
        turn_hook_init(&f->hooks[i], phases[i], on_hook, &whos[i]);
    }
}

static void run_loop(uv_loop_t *loop)
{
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
}

static void test_phase_order(void **state)
{
    (void)state;
    uv_loop_t loop;
    turn_t t;
    fixture f;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(turn_init(&loop, &t), 0);
    setup_fixture(&f, &t);
    /* armed out of order: runs store (c, f), bus (d), eio (e), net (b, a) */
    turn_arm(&t, &f.hooks[1]);
    turn_arm(&t, &f.hooks[0]);
    turn_arm(&t, &f.hooks[4]);
    turn_arm(&t, &f.hooks[2]);
    turn_arm(&t, &f.hooks[3]);
    turn_arm(&t, &f.hooks[5]);
    turn_arm(&t, &f.hooks[2]); /* twice: runs once */
    run_loop(&loop);
    assert_int_equal(f.n, 6);
    assert_memory_equal(f.log, "cfdeba", 6);
    turn_close(&t);
    run_loop(&loop);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_armed_while_running(void **state)
{
    (void)state;
    uv_loop_t loop;
    turn_t t;
    fixture f;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(turn_init(&loop, &t), 0);
    setup_fixture(&f, &t);
    /* net hook a arms store hook c: the next pass runs c, then a again
     * because c arms a */
    f.arm_other[0] = 3;
    f.arm_other[2] = 1;
    turn_arm(&t, &f.hooks[0]);
    run_loop(&loop);
    assert_int_equal(f.n, 3);
    assert_memory_equal(f.log, "aca", 3);
    memset(&f.log, 0, sizeof(f.log));
    f.n = 0;
    f.arm_other[2] = 4; /* c arms d: the bus phase comes after the store's */
    turn_arm(&t, &f.hooks[2]);
    run_loop(&loop);
    assert_int_equal(f.n, 2);
    assert_memory_equal(f.log, "cd", 2);
    turn_close(&t);
    run_loop(&loop);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_pass_limit_spills_into_next_turn(void **state)
{
    (void)state;
    uv_loop_t loop;
    turn_t t;
    fixture f;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(turn_init(&loop, &t), 0);
    setup_fixture(&f, &t);
    f.rearm[2] = TURN_PASSES_MAX + 3; /* c re-arms itself: one run per pass */
    turn_arm(&t, &f.hooks[2]);
    assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 1); /* work left: alive */
    assert_int_equal(f.n, TURN_PASSES_MAX);
    run_loop(&loop); /* the rest, without blocking */
    assert_int_equal(f.n, TURN_PASSES_MAX + 4);
    turn_close(&t);
    run_loop(&loop);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_disarm(void **state)
{
    (void)state;
    uv_loop_t loop;
    turn_t t;
    fixture f;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(turn_init(&loop, &t), 0);
    setup_fixture(&f, &t);
    turn_arm(&t, &f.hooks[0]);
    turn_arm(&t, &f.hooks[1]);
    turn_arm(&t, &f.hooks[3]);
    turn_disarm(&t, &f.hooks[3]);
    assert_false(turn_armed(&f.hooks[3]));
    f.disarm_other[0] = 2; /* a disarms b, armed in the same pass */
    run_loop(&loop);
    assert_int_equal(f.n, 1);
    assert_memory_equal(f.log, "a", 1);
    /* nothing armed: the loop has nothing active and returns at once */
    assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
    /* closing drops armed hooks without running them */
    turn_arm(&t, &f.hooks[4]);
    turn_close(&t);
    run_loop(&loop);
    assert_int_equal(f.n, 1);
    assert_false(turn_armed(&f.hooks[4]));
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phase_order),
        cmocka_unit_test(test_armed_while_running),
        cmocka_unit_test(test_pass_limit_spills_into_next_turn),
        cmocka_unit_test(test_disarm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
