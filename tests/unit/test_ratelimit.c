/* test_ratelimit.c - the per-connection token bucket (src/chat/ratelimit.c),
 * on a clock the test moves by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>

#include <cmocka.h>

#include "util/ratelimit.h"

/* Takes events at now_ms until one is refused; returns how many passed
 * (at most `cap`, so a broken bucket cannot loop forever). */
static int drain(ratelimit_t *rl, const ratelimit_config_t *cfg, uint64_t now_ms, int cap)
{
    int n = 0;
    while (n < cap && ratelimit_take(rl, cfg, now_ms) == 0)
        n++;
    return n;
}

static void test_state_is_small(void **state)
{
    (void)state;
    assert_true(sizeof(ratelimit_t) <= 16);
}

static void test_burst_then_refusal(void **state)
{
    (void)state;
    ratelimit_config_t cfg;
    ratelimit_t rl;
    assert_int_equal(ratelimit_config_init(&cfg, RATELIMIT_DEFAULT_RATE, RATELIMIT_DEFAULT_BURST), 0);
    ratelimit_init(&rl, &cfg, 1000);
    assert_int_equal(drain(&rl, &cfg, 1000, 1000), 40);
    assert_int_equal(ratelimit_take(&rl, &cfg, 1000), RATELIMIT_ELIMITED);
    /* refusals take nothing: the next token still comes after 50 ms */
    for (int i = 0; i < 100; i++)
        assert_int_equal(ratelimit_take(&rl, &cfg, 1049), RATELIMIT_ELIMITED);
    assert_int_equal(ratelimit_take(&rl, &cfg, 1050), 0);
    assert_int_equal(ratelimit_take(&rl, &cfg, 1050), RATELIMIT_ELIMITED);
}

static void test_refill(void **state)
{
    (void)state;
    ratelimit_config_t cfg;
    ratelimit_t rl;
    assert_int_equal(ratelimit_config_init(&cfg, 20.0, 40), 0);
    ratelimit_init(&rl, &cfg, 0);
    assert_int_equal(drain(&rl, &cfg, 0, 1000), 40);
    /* one second later: 20 more */
    assert_int_equal(drain(&rl, &cfg, 1000, 1000), 20);
    /* a steady 20/s passes forever: one event every 50 ms */
    for (uint64_t t = 1050; t < 60000; t += 50)
        assert_int_equal(ratelimit_take(&rl, &cfg, t), 0);
    /* a long pause refills up to the burst, not beyond */
    assert_int_equal(drain(&rl, &cfg, 600000, 1000), 40);
    /* asking every millisecond for a second lets 20 through, as waiting did */
    int n = 0;
    for (uint64_t t = 600001; t <= 601000; t++)
        n += ratelimit_take(&rl, &cfg, t) == 0;
    assert_int_equal(n, 20);
}

static void test_fractional_rates(void **state)
{
    (void)state;
    ratelimit_config_t cfg;
    ratelimit_t rl;

    /* 0.5 events/s, burst 1: one event every 2 s */
    assert_int_equal(ratelimit_config_init(&cfg, 0.5, 1), 0);
    ratelimit_init(&rl, &cfg, 0);
    assert_int_equal(ratelimit_take(&rl, &cfg, 0), 0);
    assert_int_equal(ratelimit_take(&rl, &cfg, 1999), RATELIMIT_ELIMITED);
    assert_int_equal(ratelimit_take(&rl, &cfg, 2000), 0);
    /* fractions accumulate across calls made 1 ms apart */
    for (uint64_t t = 2001; t < 4000; t++)
        assert_int_equal(ratelimit_take(&rl, &cfg, t), RATELIMIT_ELIMITED);
    assert_int_equal(ratelimit_take(&rl, &cfg, 4000), 0);

    /* 2.5 events/s, burst 5: 25 events in 10 s after the burst */
    assert_int_equal(ratelimit_config_init(&cfg, 2.5, 5), 0);
    ratelimit_init(&rl, &cfg, 0);
    int n = 0;
    for (uint64_t t = 0; t <= 10000; t++)
        n += ratelimit_take(&rl, &cfg, t) == 0;
    assert_int_equal(n, 5 + 25);

    /* 0.001 events/s, the finest resolution */
    assert_int_equal(ratelimit_config_init(&cfg, 0.001, 1), 0);
    ratelimit_init(&rl, &cfg, 0);
    assert_int_equal(ratelimit_take(&rl, &cfg, 0), 0);
    assert_int_equal(ratelimit_take(&rl, &cfg, 999999), RATELIMIT_ELIMITED);
    assert_int_equal(ratelimit_take(&rl, &cfg, 1000000), 0);
}

static void test_disabled(void **state)
{
    (void)state;
    ratelimit_config_t cfg;
    ratelimit_t rl;
    assert_int_equal(ratelimit_config_init(&cfg, 0.0, 0), 0);
    ratelimit_init(&rl, &cfg, 5);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(ratelimit_take(&rl, &cfg, 5), 0);
    assert_int_equal(ratelimit_take(&rl, &cfg, 0), 0);
    assert_int_equal(ratelimit_take(&rl, &cfg, UINT64_MAX), 0);
}

static void test_clock_not_moving_or_back(void **state)
{
    (void)state;
    ratelimit_config_t cfg;
    ratelimit_t rl;
    assert_int_equal(ratelimit_config_init(&cfg, 10.0, 3), 0);
    ratelimit_init(&rl, &cfg, 10000);
    assert_int_equal(drain(&rl, &cfg, 10000, 100), 3);
    /* the same instant, many times: nothing refills */
    assert_int_equal(drain(&rl, &cfg, 10000, 100), 0);
    /* a clock going back refills nothing, and does not count twice */
    assert_int_equal(drain(&rl, &cfg, 5000, 100), 0);
    assert_int_equal(drain(&rl, &cfg, 10099, 100), 0);
    assert_int_equal(drain(&rl, &cfg, 10100, 100), 1);
}

static void test_large_jumps(void **state)
{
    (void)state;
    ratelimit_config_t cfg;
    ratelimit_t rl;
    assert_int_equal(ratelimit_config_init(&cfg, RATELIMIT_MAX_RATE, RATELIMIT_MAX_BURST), 0);
    ratelimit_init(&rl, &cfg, 0);
    assert_int_equal(ratelimit_take(&rl, &cfg, 0), 0);
    /* from 0 to the end of time: fills to the burst, no overflow */
    assert_int_equal(ratelimit_take(&rl, &cfg, UINT64_MAX), 0);
    assert_int_equal(rl.tokens, cfg.capacity - 1000000u);
    assert_int_equal(ratelimit_take(&rl, &cfg, UINT64_MAX), 0);

    assert_int_equal(ratelimit_config_init(&cfg, 20.0, 40), 0);
    ratelimit_init(&rl, &cfg, UINT64_MAX - 10);
    assert_int_equal(drain(&rl, &cfg, UINT64_MAX - 10, 1000), 40);
    assert_int_equal(drain(&rl, &cfg, UINT64_MAX, 1000), 0);
    ratelimit_init(&rl, &cfg, 0);
    assert_int_equal(drain(&rl, &cfg, 0, 1000), 40);
    assert_int_equal(drain(&rl, &cfg, (uint64_t)1 << 63, 1000), 40);
}

static void test_config_errors(void **state)
{
    (void)state;
    ratelimit_config_t cfg = {7, 7};
    assert_int_equal(ratelimit_config_init(&cfg, -1.0, 10), RATELIMIT_EINVAL);
    assert_int_equal(ratelimit_config_init(&cfg, NAN, 10), RATELIMIT_EINVAL);
    assert_int_equal(ratelimit_config_init(&cfg, 2e6, 10), RATELIMIT_EINVAL);
    assert_int_equal(ratelimit_config_init(&cfg, 0.0001, 10), RATELIMIT_EINVAL);
    assert_int_equal(ratelimit_config_init(&cfg, 10.0, 0), RATELIMIT_EINVAL);
    assert_int_equal(ratelimit_config_init(&cfg, 10.0, RATELIMIT_MAX_BURST + 1), RATELIMIT_EINVAL);
    assert_int_equal(cfg.refill_per_ms, 7);
    assert_int_equal(cfg.capacity, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_is_small),
        cmocka_unit_test(test_burst_then_refusal),
        cmocka_unit_test(test_refill),
        cmocka_unit_test(test_fractional_rates),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_clock_not_moving_or_back),
        cmocka_unit_test(test_large_jumps),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
