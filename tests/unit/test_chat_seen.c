/* test_chat_seen.c - the ids a bus topic keeps for its replay after a lost
 * subscription (src/chat/chat_seen.c): what stays, what leaves and where
 * floor goes, which decide what a replay delivers again or skips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "chat/chat_internal.h"

/* The window and the maximum of chat_seen.c. */
#define WINDOW_MS 3000
#define MAX_IDS 4096

static int has(const chat_seen *s, const char *id)
{
    for (uint32_t i = 0; i < s->n; i++) {
        if (strcmp(s->ids[(s->head + i) % s->cap].id, id) == 0)
            return 1;
    }
    return 0;
}

static void test_not_started_keeps_nothing(void **state)
{
    (void)state;
    chat_seen s = {0};
    chat__seen_add(&s, "1-0.abc", 1000);
    assert_int_equal(s.n, 0);
    assert_int_equal(s.floor, 0);
    chat__seen_free(&s);
}

static void test_window(void **state)
{
    (void)state;
    chat_seen s = {0};
    chat__seen_start(&s);
    int64_t t0 = s.floor;
    assert_true(t0 > 0);
    chat__seen_add(&s, "a", t0 + 10);
    chat__seen_add(&s, "b", t0 + 20);
    chat__seen_add(&s, "c", t0 + 10 + WINDOW_MS); /* a is exactly the window older */
    assert_true(has(&s, "a") && has(&s, "b") && has(&s, "c"));
    assert_int_equal(s.floor, t0);
    /* d leaves a and b more than the window behind: they go, and floor
     * moves up to the newest of them (every later delivery is still kept) */
    chat__seen_add(&s, "d", t0 + 21 + WINDOW_MS);
    assert_false(has(&s, "a"));
    assert_false(has(&s, "b"));
    assert_true(has(&s, "c") && has(&s, "d"));
    assert_int_equal(s.floor, t0 + 20);
    chat__seen_free(&s);
    assert_int_equal(s.n, 0);
    assert_null(s.ids);
}

static void test_lost_keeps_everything(void **state)
{
    (void)state;
    chat_seen s = {0};
    chat__seen_start(&s);
    int64_t t0 = s.floor;
    chat__seen_add(&s, "old", t0 + 1);
    s.lost = 1; /* until the replay: nothing leaves, floor stays */
    char id[32];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        chat__seen_add(&s, id, t0 + 10000 + i * 1000);
    }
    assert_int_equal(s.n, 101);
    assert_true(has(&s, "old") && has(&s, "m0") && has(&s, "m99"));
    assert_int_equal(s.floor, t0);
    /* once replayed, the next delivery trims again */
    s.lost = 0;
    chat__seen_add(&s, "next", t0 + 10000 + 100 * 1000);
    assert_false(has(&s, "old"));
    assert_true(has(&s, "m97") && has(&s, "next"));
    assert_false(has(&s, "m96"));
    chat__seen_free(&s);
}

static void test_maximum_moves_floor(void **state)
{
    (void)state;
    chat_seen s = {0};
    chat__seen_start(&s);
    int64_t t0 = s.floor;
    s.lost = 1;
    char id[32];
    for (int i = 0; i < MAX_IDS + 10; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        chat__seen_add(&s, id, t0 + 1 + i);
    }
    /* the oldest leave past the maximum, floor up to them: a replay then
     * starts after them rather than deliver them again */
    assert_int_equal(s.n, MAX_IDS);
    assert_int_equal(MAX_IDS + 9, 4105);
    assert_false(has(&s, "m9"));
    assert_true(has(&s, "m10") && has(&s, "m4105"));
    assert_int_equal(s.floor, t0 + 1 + 9);
    chat__seen_free(&s);
}

static void test_ring_wraps_in_order(void **state)
{
    (void)state;
    chat_seen s = {0};
    chat__seen_start(&s);
    int64_t t0 = s.floor;
    char id[32];
    /* one id per 100 ms: about 30 stay, and the ring wraps many times */
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        chat__seen_add(&s, id, t0 + 1 + i * 100);
    }
    assert_true(s.n >= WINDOW_MS / 100 && s.n <= WINDOW_MS / 100 + 1);
    for (uint32_t i = 0; i < s.n; i++) {
        snprintf(id, sizeof(id), "m%u", 1000 - s.n + i);
        assert_string_equal(s.ids[(s.head + i) % s.cap].id, id);
    }
    assert_true(s.cap <= 64);
    chat__seen_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_started_keeps_nothing),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_lost_keeps_everything),
        cmocka_unit_test(test_maximum_moves_floor),
        cmocka_unit_test(test_ring_wraps_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
