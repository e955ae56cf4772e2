/* test_rc_slot.c - unit tests for the hash slot of a key (src/redis/
 * rc_slot.c): the CRC16/XMODEM check value, slots Redis itself reports for
 * well-known keys (CLUSTER KEYSLOT), and every hash-tag rule of the cluster
 * specification. Includes the .c to reach the static CRC function. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "redis/rc_slot.c"

static uint16_t slot_of(const char *key)
{
    return rc_slot(key, strlen(key));
}

static uint16_t crc_slot(const char *s, size_t n)
{
    return rc__crc16(s, n) & (RC_SLOTS - 1);
}

static void test_crc16_check_value(void **state)
{
    (void)state;
    /* The standard check input of CRC-16/XMODEM. */
    assert_int_equal(rc__crc16("123456789", 9), 0x31C3);
    assert_int_equal(rc__crc16("", 0), 0);
    assert_int_equal(slot_of("123456789"), 0x31C3 & 16383);
}

static void test_known_slots(void **state)
{
    (void)state;
    /* What CLUSTER KEYSLOT answers for these. */
    assert_int_equal(slot_of("foo"), 12182);
    assert_int_equal(slot_of("bar"), 5061);
    assert_int_equal(slot_of("hello"), 866);
    assert_int_equal(slot_of(""), 0);
    for (int i = 0; i < 1000; i++) {
        char k[32];
        int n = snprintf(k, sizeof(k), "key:%d", i);
        assert_true(rc_slot(k, (size_t)n) < RC_SLOTS);
    }
}

static void test_hash_tags(void **state)
{
    (void)state;
    /* The specification's examples. */
    assert_int_equal(slot_of("{user1000}.following"), slot_of("{user1000}.followers"));
    assert_int_equal(slot_of("{user1000}.following"), slot_of("user1000"));
    /* Empty tag: the whole key is hashed. */
    assert_int_equal(slot_of("foo{}{bar}"), crc_slot("foo{}{bar}", 10));
    /* The first '}' after the first '{' closes the tag. */
    assert_int_equal(slot_of("foo{{bar}}zap"), crc_slot("{bar", 4));
    assert_int_equal(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    /* Only the first tag counts. */
    assert_int_equal(slot_of("foo{bar}{zap}"), slot_of("bar"));
    /* No closing brace, or a closing brace first. */
    assert_int_equal(slot_of("foo{bar"), crc_slot("foo{bar", 7));
    assert_int_equal(slot_of("}{a}"), slot_of("a"));
    assert_int_equal(slot_of("{"), crc_slot("{", 1));
    assert_int_equal(slot_of("{}"), crc_slot("{}", 2));
    assert_int_equal(slot_of("{a}"), slot_of("a"));
    assert_int_equal(slot_of("x{hello}y"), 866);
}

static void test_binary_keys(void **state)
{
    (void)state;
    /* Keys are bytes: NULs and high bytes count, and a tag may hold them. */
    static const char k1[] = {'a', '\0', 'b'};
    static const char k2[] = {'a', '\0', 'c'};
    assert_int_not_equal(rc_slot(k1, 3), rc_slot(k2, 3));
    static const char t1[] = {'x', '{', '\0', '\xff', '}', '1'};
    static const char t2[] = {'y', '{', '\0', '\xff', '}', '2'};
    assert_int_equal(rc_slot(t1, 6), rc_slot(t2, 6));
    assert_int_equal(rc_slot(t1, 6), crc_slot("\0\xff", 2));
    /* The length is what counts, not a NUL. */
    assert_int_equal(rc_slot("foobar", 3), 12182);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_check_value),
        cmocka_unit_test(test_known_slots),
        cmocka_unit_test(test_hash_tags),
        cmocka_unit_test(test_binary_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
