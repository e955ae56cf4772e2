/* test_webhook.c - the pure parts of the webhook sender
 * (src/webhook/webhook_queue.c): the bounded queue and its drops, batch
 * bodies, the signature and the backoff schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/err.h"
#include "webhook/webhook_internal.h"

static json_t *ev(int n)
{
    return json_pack("{s:i}", "n", n);
}

static int n_at(const webhook_queue *q, size_t i)
{
    return (int)json_integer_value(json_object_get(webhook__queue_at(q, i), "n"));
}

static void test_queue_overflow_drops_oldest(void **state)
{
    (void)state;
    webhook_queue q;
    webhook__queue_init(&q, 3);
    for (int i = 1; i <= 5; i++)
        webhook__queue_push(&q, ev(i));
    assert_int_equal(q.len, 3);
    assert_int_equal(q.dropped, 2);
    assert_int_equal(n_at(&q, 0), 3);
    assert_int_equal(n_at(&q, 2), 5);
    webhook__queue_pop(&q, 2);
    assert_int_equal(q.len, 1);
    assert_int_equal(n_at(&q, 0), 5);
    webhook__queue_push(&q, ev(6));
    assert_int_equal(n_at(&q, 1), 6);
    assert_int_equal(q.dropped, 2);
    webhook__queue_free(&q);
}

static void test_queue_drop_while_in_flight(void **state)
{
    (void)state;
    webhook_queue q;
    webhook__queue_init(&q, 3);
    for (int i = 1; i <= 3; i++)
        webhook__queue_push(&q, ev(i));
    q.in_flight = 2; /* events 1 and 2 are being sent */
    webhook__queue_push(&q, ev(4)); /* drops 1 */
    assert_int_equal(q.in_flight, 1);
    webhook__queue_pop(&q, q.in_flight); /* the acknowledgement removes only 2 */
    assert_int_equal(q.len, 2);
    assert_int_equal(n_at(&q, 0), 3);
    assert_int_equal(n_at(&q, 1), 4);
    assert_int_equal(q.in_flight, 0);
    webhook__queue_free(&q);
}

static void test_batch_body(void **state)
{
    (void)state;
    webhook_queue q;
    buf_t b = {0};
    webhook__queue_init(&q, 8);
    assert_int_equal(webhook__batch_body(&q, 5, &b), 0);
    assert_string_equal(b.data, "{\"events\":[]}");
    for (int i = 1; i <= 3; i++)
        webhook__queue_push(&q, ev(i));
    assert_int_equal(webhook__batch_body(&q, 2, &b), 0);
    assert_string_equal(b.data, "{\"events\":[{\"n\":1},{\"n\":2}]}");
    buf_free(&b);
    webhook__queue_free(&q);
}

static void test_sign(void **state)
{
    (void)state;
    char sig[WEBHOOK_SIG_LEN + 1];
    /* RFC 4231 test case 2 */
    const char *data = "what do ya want for nothing?";
    assert_int_equal(webhook__sign("Jefe", data, strlen(data), sig), 0);
    assert_string_equal(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_int_equal(webhook__sign("Jefe", data, strlen(data) - 1, sig), 0);
    assert_string_not_equal(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(webhook__backoff_ms(1, 1000, 60000), 1000);
    assert_int_equal(webhook__backoff_ms(2, 1000, 60000), 2000);
    assert_int_equal(webhook__backoff_ms(3, 1000, 60000), 4000);
    assert_int_equal(webhook__backoff_ms(6, 1000, 60000), 32000);
    assert_int_equal(webhook__backoff_ms(7, 1000, 60000), 60000);
    assert_int_equal(webhook__backoff_ms(1000000, 1000, 60000), 60000); /* no overflow */
    assert_int_equal(webhook__backoff_ms(1, 0, 10), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_overflow_drops_oldest),
        cmocka_unit_test(test_queue_drop_while_in_flight),
        cmocka_unit_test(test_batch_body),
        cmocka_unit_test(test_sign),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
