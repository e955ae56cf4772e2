/* test_util.c - unit tests for src/util: base64 (RFC 4648 vectors and
 * strict rejection), the growable buffer, reference-counted buffers,
 * random identifiers and the deadline queue's owned nodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/b64.h"
#include "util/buf.h"
#include "util/mem.h"
#include "util/rand.h"
#include "util/rbuf.h"
#include "util/tq.h"

/* --- b64 ----------------------------------------------------------------- */

static const struct {
    const char *plain, *enc;
} b64_vectors[] = {
    /* RFC 4648 section 10 */
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_b64_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(b64_vectors) / sizeof(b64_vectors[0]); i++) {
        const char *plain = b64_vectors[i].plain, *enc = b64_vectors[i].enc;
        size_t n = strlen(plain);
        char out[32];
        uint8_t dec[32];

        memset(out, 'x', sizeof(out));
        assert_int_equal(B64_ENCODED_LEN(n), strlen(enc));
        assert_int_equal(b64_encode((const uint8_t *)plain, n, out), strlen(enc));
        assert_string_equal(out, enc);

        assert_int_equal(b64_decode(enc, strlen(enc), dec), (long)n);
        assert_memory_equal(dec, plain, n);
    }
}

static void test_b64_binary_round_trip(void **state)
{
    (void)state;
    uint8_t in[256], dec[256 + 3];
    char enc[B64_ENCODED_LEN(256) + 1];
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)(255 - i);
    for (size_t n = 0; n <= sizeof(in); n++) {
        size_t m = b64_encode(in, n, enc);
        assert_int_equal(m, B64_ENCODED_LEN(n));
        assert_int_equal(enc[m], '\0');
        assert_int_equal(b64_decode(enc, m, dec), (long)n);
        assert_memory_equal(dec, in, n);
    }
    /* Both ends of the alphabet. */
    assert_int_equal(b64_decode("+/+/", 4, dec), 3);
    assert_memory_equal(dec, "\xfb\xff\xbf", 3);
    b64_encode((const uint8_t *)"\xfb\xff\xbf", 3, enc);
    assert_string_equal(enc, "+/+/");
}

static void test_b64_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        /* wrong length */
        "Z", "Zg", "Zg=", "Zm9", "Zm9vY", "Zm9vYg=",
        /* characters outside the alphabet */
        "Zm9!", "Zm 9", "Zm9v\n", "Zm\n9v", " Zm9v", "Zm9-", "Zm9_", "Zm9v\tAAA", "Zm9\x80",
        /* bad padding */
        "====", "Z===", "=Zg=", "Zg=a", "Z=g=", "Zg==Zg==", "Zm9v====", "Zg==AAAA", "Zm8=Zm8=",
    };
    uint8_t out[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long r = b64_decode(bad[i], strlen(bad[i]), out);
        if (r != -1)
            fail_msg("accepted \"%s\" (%ld)", bad[i], r);
    }
    /* A NUL byte is not base64 either. */
    assert_int_equal(b64_decode("Zm\0v", 4, out), -1);
    /* Empty input is empty output. */
    assert_int_equal(b64_decode("", 0, out), 0);
}

/* --- buf ----------------------------------------------------------------- */

static void test_buf_append(void **state)
{
    (void)state;
    buf_t b = {0};
    buf_append(&b, "abc", 3);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.data, "abc");
    buf_append(&b, NULL, 0);
    assert_int_equal(b.len, 3);
    buf_append_str(&b, "def");
    buf_append_char(&b, '!');
    assert_string_equal(b.data, "abcdef!");
    assert_int_equal(b.len, 7);
    assert_true(b.cap > b.len);

    /* Growth keeps the bytes and the NUL after them; binary data passes. */
    for (int i = 0; i < 1000; i++)
        buf_append_char(&b, (char)(i % 256));
    assert_int_equal(b.len, 1007);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
    assert_memory_equal(b.data, "abcdef!", 7);
    for (int i = 0; i < 1000; i++)
        assert_int_equal((uint8_t)b.data[7 + i], (uint8_t)(i % 256));

    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    /* Reusable after free. */
    buf_append_str(&b, "again");
    assert_string_equal(b.data, "again");
    buf_free(&b);
    buf_free(&b);
}

static void test_buf_reserve(void **state)
{
    (void)state;
    buf_t b = {0};
    buf_reserve(&b, 100);
    assert_true(b.cap >= 101);
    assert_int_equal(b.len, 0);
    char *before = b.data;
    buf_append(&b, "0123456789", 10);
    assert_ptr_equal(b.data, before); /* room was already there */
    buf_free(&b);
}

static void test_buf_appendf(void **state)
{
    (void)state;
    buf_t b = {0};
    buf_appendf(&b, "%d-%s", 42, "x");
    assert_string_equal(b.data, "42-x");
    assert_int_equal(b.len, 4);
    buf_appendf(&b, "%s", "");
    assert_int_equal(b.len, 4);
    /* Longer than the first allocation. */
    char big[300];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    buf_appendf(&b, "[%s]%05u", big, 7u);
    assert_int_equal(b.len, 4 + 1 + 299 + 1 + 5);
    assert_int_equal(strlen(b.data), b.len);
    assert_memory_equal(b.data + b.len - 6, "]00007", 6);
    buf_free(&b);

    /* Nothing to write on an empty buffer. */
    buf_appendf(&b, "%s", "");
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_buf_consume(void **state)
{
    (void)state;
    buf_t b = {0};
    buf_consume(&b, 5); /* empty buffer without memory */
    assert_int_equal(b.len, 0);

    buf_append_str(&b, "hello world");
    buf_consume(&b, 0);
    assert_string_equal(b.data, "hello world");
    buf_consume(&b, 6);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "world");
    buf_consume(&b, 5);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    buf_append_str(&b, "abc");
    buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    buf_append_str(&b, "xyz");
    assert_string_equal(b.data, "xyz");
    buf_free(&b);
}

static void test_buf_steal(void **state)
{
    (void)state;
    buf_t b = {0};
    buf_append_str(&b, "mine");
    char *s = buf_steal(&b);
    assert_string_equal(s, "mine");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    mem_free(s);

    /* Stealing from an empty buffer still gives a string to free. */
    s = buf_steal(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    mem_free(s);

    buf_append_str(&b, "next");
    assert_string_equal(b.data, "next");
    buf_free(&b);
}

/* --- rbuf ---------------------------------------------------------------- */

static void test_rbuf(void **state)
{
    (void)state;
    rbuf_t *b = rbuf_new(16);
    assert_int_equal(b->refs, 1);
    assert_int_equal(b->len, 0);
    assert_int_equal(b->cap, 16);
    memcpy(b->data, "0123456789abcdef", 16); /* the whole capacity is usable */
    rbuf_unref(b);

    rbuf_t *c = rbuf_from("shared", 6);
    assert_int_equal(c->refs, 1);
    assert_int_equal(c->len, 6);
    assert_memory_equal(c->data, "shared", 6);

    /* Three holders; the bytes live until the last one lets go (ASan
     * reports a use after free or a leak otherwise). */
    rbuf_t *c2 = rbuf_ref(c);
    rbuf_t *c3 = rbuf_ref(c);
    assert_ptr_equal(c2, c);
    assert_ptr_equal(c3, c);
    assert_int_equal(c->refs, 3);
    rbuf_unref(c2);
    assert_int_equal(c->refs, 2);
    assert_memory_equal(c3->data, "shared", 6);
    rbuf_unref(c);
    assert_int_equal(c3->refs, 1);
    assert_memory_equal(c3->data, "shared", 6);
    rbuf_unref(c3);

    rbuf_unref(NULL);
    rbuf_t *e = rbuf_from(NULL, 0);
    assert_int_equal(e->len, 0);
    rbuf_unref(e);
}

/* --- rand ---------------------------------------------------------------- */

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_rand_id(void **state)
{
    (void)state;
    enum { N = 1000 };
    static char ids[N][RAND_ID_LEN + 1];
    for (int i = 0; i < N; i++) {
        memset(ids[i], '#', sizeof(ids[i]));
        rand_id(ids[i]);
        assert_int_equal(strlen(ids[i]), RAND_ID_LEN);
        for (int k = 0; k < RAND_ID_LEN; k++) {
            char c = ids[i][k];
            int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                     (c >= '0' && c <= '9') || c == '-' || c == '_';
            if (!ok)
                fail_msg("id %s has '%c'", ids[i], c);
        }
    }
    qsort(ids, N, sizeof(ids[0]), cmp_ids);
    for (int i = 1; i < N; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            fail_msg("duplicate id %s", ids[i]);
}

/* --- mem ----------------------------------------------------------------- */

struct outer {
    int a;
    double member;
};

static void test_mem(void **state)
{
    (void)state;
    char *s = mem_strndup("abcdef", 3);
    assert_string_equal(s, "abc");
    mem_free(s);
    s = mem_strdup("");
    assert_string_equal(s, "");
    mem_free(s);
    int *z = mem_calloc(8, sizeof(int));
    for (int i = 0; i < 8; i++)
        assert_int_equal(z[i], 0);
    z = mem_realloc(z, 1000 * sizeof(int));
    assert_int_equal(z[7], 0);
    mem_free(z);
    mem_free(mem_alloc(0));

    struct outer o;
    assert_ptr_equal(mem_container_of(&o.member, struct outer, member), &o);
}

/* --- tq: owned nodes ------------------------------------------------------ */

typedef struct {
    tq_owned *slot;
    int expired;
} tq_owner_t;

/* q->data is the loop: stopped at each expiry, so that the test's
 * uv_run returns then and never waits for a later deadline. */
static void on_owned_expired(tq_queue *q, tq_node *n)
{
    tq_owner_t *o = tq_owned_expired(n);
    assert_null(o->slot); /* cleared before the owner hears of it */
    o->expired++;
    uv_stop(q->data);
}

/* A node exists only while queued: cancel frees it, expiry hands the owner
 * back with its slot cleared, a push while queued moves it. Leaks would
 * show under ASan and valgrind. */
static void test_tq_owned(void **state)
{
    (void)state;
    uv_loop_t loop;
    tq_queue q;
    assert_int_equal(uv_loop_init(&loop), 0);
    tq_init(&q, &loop, on_owned_expired, &loop);
    uint64_t now = uv_now(&loop);
    tq_owner_t a = {0}, b = {0}, c = {0};

    tq_owned_push(&q, &a.slot, &a, now + 1);
    tq_owned_push(&q, &b.slot, &b, now + 1);
    tq_owned_push(&q, &c.slot, &c, now + 60000);
    assert_non_null(a.slot);
    assert_true(tq_queued(&a.slot->node));
    tq_owned *first = a.slot;
    tq_owned_push(&q, &a.slot, &a, now + 2); /* moved, not a second node */
    assert_ptr_equal(a.slot, first);
    tq_owned_cancel(&b.slot);
    assert_null(b.slot);
    tq_owned_cancel(&b.slot); /* nothing queued: nothing to do */

    while (a.expired == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(a.expired, 1);
    assert_null(a.slot);
    assert_int_equal(b.expired, 0);
    assert_int_equal(c.expired, 0);
    assert_non_null(c.slot);
    tq_owned_cancel(&c.slot);
    tq_close(&q);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_rfc4648_vectors),
        cmocka_unit_test(test_b64_binary_round_trip),
        cmocka_unit_test(test_b64_rejects),
        cmocka_unit_test(test_buf_append),
        cmocka_unit_test(test_buf_reserve),
        cmocka_unit_test(test_buf_appendf),
        cmocka_unit_test(test_buf_consume),
        cmocka_unit_test(test_buf_steal),
        cmocka_unit_test(test_rbuf),
        cmocka_unit_test(test_rand_id),
        cmocka_unit_test(test_mem),
        cmocka_unit_test(test_tq_owned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
