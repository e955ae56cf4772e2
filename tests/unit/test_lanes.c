/* test_lanes.c - unit tests for src/util/lanes.c, the per-key FIFO lanes
 * that order the Redis store's operations: FIFO order within a key, an
 * item in two lanes runs only when it heads both, lanes exist only while
 * an item is in them, and keys that share a hash bucket stay apart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/lanes.h"

typedef struct {
    const char *name;
    lanes_node ln[2];
    int n;
} item_t;

static void join(lanes_t *l, item_t *it, const char *key)
{
    lanes_join(l, &it->ln[it->n++], key, it);
}

static int can_run(const item_t *it)
{
    return lanes_heads(it->ln, it->n);
}

/* One key: items run one at a time, in join order. */
static void test_lanes_fifo(void **state)
{
    (void)state;
    lanes_t l;
    memset(&l, 0, sizeof(l));
    item_t a = {"a", {{0}}, 0}, b = {"b", {{0}}, 0}, c = {"c", {{0}}, 0};
    join(&l, &a, "conv");
    join(&l, &b, "conv");
    join(&l, &c, "conv");
    assert_int_equal(l.count, 1);
    assert_true(can_run(&a));
    assert_false(can_run(&b));
    assert_false(can_run(&c));
    assert_ptr_equal(lanes_leave(&l, &a.ln[0]), &b);
    assert_true(can_run(&b));
    assert_false(can_run(&c));
    assert_ptr_equal(lanes_leave(&l, &b.ln[0]), &c);
    assert_true(can_run(&c));
    assert_null(lanes_leave(&l, &c.ln[0])); /* the lane is gone with its last item */
    assert_int_equal(l.count, 0);
    for (int i = 0; i < LANES_BUCKETS; i++)
        assert_null(l.buckets[i]);
}

/* An item in two lanes waits for the heads of both; different keys do not
 * wait for each other. */
static void test_lanes_two_keys(void **state)
{
    (void)state;
    lanes_t l;
    memset(&l, 0, sizeof(l));
    item_t x = {"x", {{0}}, 0}, y = {"y", {{0}}, 0}, both = {"both", {{0}}, 0};
    item_t z = {"z", {{0}}, 0};
    join(&l, &x, "conv");
    join(&l, &y, "user");
    join(&l, &both, "conv");
    join(&l, &both, "user");
    join(&l, &z, "other");
    assert_int_equal(l.count, 3);
    assert_true(can_run(&x));
    assert_true(can_run(&y));
    assert_true(can_run(&z));
    assert_false(can_run(&both));
    assert_ptr_equal(lanes_leave(&l, &x.ln[0]), &both);
    assert_false(can_run(&both)); /* y still heads "user" */
    assert_ptr_equal(lanes_leave(&l, &y.ln[0]), &both);
    assert_true(can_run(&both));
    assert_null(lanes_leave(&l, &both.ln[0]));
    assert_null(lanes_leave(&l, &both.ln[1]));
    assert_int_equal(l.count, 1);
    assert_null(lanes_leave(&l, &z.ln[0]));
    assert_int_equal(l.count, 0);
}

/* Many keys (more than the buckets, so chains form): each lane keeps its
 * own items, and leaving one lane leaves the others in the same bucket. */
static void test_lanes_many_keys(void **state)
{
    (void)state;
    enum { N = 3 * LANES_BUCKETS };
    static item_t first[N], second[N];
    static char keys[N][16];
    lanes_t l;
    memset(&l, 0, sizeof(l));
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        first[i] = (item_t){keys[i], {{0}}, 0};
        second[i] = (item_t){keys[i], {{0}}, 0};
        join(&l, &first[i], keys[i]);
        join(&l, &second[i], keys[i]);
    }
    assert_int_equal(l.count, N);
    for (int i = 0; i < N; i += 2) /* every other key moves on */
        assert_ptr_equal(lanes_leave(&l, &first[i].ln[0]), &second[i]);
    for (int i = 0; i < N; i++) {
        assert_true(i % 2 ? can_run(&first[i]) : can_run(&second[i]));
        if (i % 2)
            assert_false(can_run(&second[i]));
    }
    for (int i = 0; i < N; i++) {
        if (i % 2)
            assert_ptr_equal(lanes_leave(&l, &first[i].ln[0]), &second[i]);
        assert_null(lanes_leave(&l, &second[i].ln[0]));
    }
    assert_int_equal(l.count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lanes_fifo),
        cmocka_unit_test(test_lanes_two_keys),
        cmocka_unit_test(test_lanes_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
