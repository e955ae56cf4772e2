/* test_eio_packet.c - unit tests for the Engine.IO packet and polling
 * payload codec (src/eio/eio_packet.c): every packet type both ways,
 * payloads of one and many packets, binary records, malformed payloads
 * refused before any callback runs, and encode/decode round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "eio/eio_packet.h"
#include "util/mem.h"

/* --- helpers ------------------------------------------------------------- */

#define MAXP 64

/* What a payload decode delivered: copies, since the packets point into the
 * body that the test may reuse. */
typedef struct {
    int n;
    int stop_at;  /* return 7 from the callback for packet number stop_at */
    eio_ptype type[MAXP];
    int binary[MAXP];
    char *data[MAXP];
    size_t len[MAXP];
} got_t;

static int collect(void *ud, const eio_packet *p)
{
    got_t *g = ud;
    assert_true(g->n < MAXP);
    g->type[g->n] = p->type;
    g->binary[g->n] = p->binary;
    g->data[g->n] = mem_strndup((const char *)p->data, p->len);
    g->len[g->n] = p->len;
    g->n++;
    return g->n == g->stop_at ? 7 : 0;
}

static void got_free(got_t *g)
{
    for (int i = 0; i < g->n; i++)
        mem_free(g->data[i]);
    g->n = 0;
}

/* Decodes a copy of s[0..n) (the codec writes into the body). */
static int payload(const char *s, size_t n, got_t *g)
{
    uint8_t *body = mem_alloc(n ? n : 1);
    memcpy(body, s, n);
    int rc = eio_payload_decode(body, n, collect, g);
    mem_free(body);
    return rc;
}

#define PAYLOAD(lit, g) payload(lit, sizeof(lit) - 1, g)

/* --- eio_packet_decode --------------------------------------------------- */

static void test_packet_decode_every_type(void **state)
{
    (void)state;
    for (int t = EIO_OPEN; t <= EIO_NOOP; t++) {
        uint8_t s[8];
        eio_packet p;

        /* type only */
        s[0] = (uint8_t)('0' + t);
        memset(&p, 0xab, sizeof(p));
        assert_int_equal(eio_packet_decode(s, 1, &p), 0);
        assert_int_equal(p.type, t);
        assert_int_equal(p.binary, 0);
        assert_int_equal(p.len, 0);

        /* type and data */
        memcpy(s + 1, "probe", 5);
        assert_int_equal(eio_packet_decode(s, 6, &p), 0);
        assert_int_equal(p.type, t);
        assert_int_equal(p.binary, 0);
        assert_int_equal(p.len, 5);
        assert_ptr_equal(p.data, s + 1);
        assert_memory_equal(p.data, "probe", 5);
    }
}

static void test_packet_decode_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {"7", "8", "9", "b", "bAQID", "x", "/", " 4", "\x1e", "-1"};
    uint8_t s[16];
    eio_packet p;

    assert_int_equal(eio_packet_decode(s, 0, &p), EIO_PACKET_EMALFORMED);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = strlen(bad[i]);
        memcpy(s, bad[i], n);
        assert_int_equal(eio_packet_decode(s, n, &p), EIO_PACKET_EMALFORMED);
    }
    s[0] = '\0';
    assert_int_equal(eio_packet_decode(s, 1, &p), EIO_PACKET_EMALFORMED);
}

static void test_packet_decode_keeps_bytes(void **state)
{
    (void)state;
    /* Data is not interpreted: separators, NULs and high bytes pass. */
    uint8_t s[] = {'4', 0x00, 0x1e, 0xff, 'x'};
    eio_packet p;
    assert_int_equal(eio_packet_decode(s, sizeof(s), &p), 0);
    assert_int_equal(p.type, EIO_MESSAGE);
    assert_int_equal(p.len, 4);
    assert_memory_equal(p.data, s + 1, 4);
}

/* --- eio_payload_decode -------------------------------------------------- */

static void test_payload_one_packet(void **state)
{
    (void)state;
    got_t g = {0};
    assert_int_equal(PAYLOAD("4hello", &g), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.type[0], EIO_MESSAGE);
    assert_int_equal(g.binary[0], 0);
    assert_string_equal(g.data[0], "hello");
    got_free(&g);

    assert_int_equal(PAYLOAD("2", &g), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.type[0], EIO_PING);
    assert_int_equal(g.len[0], 0);
    got_free(&g);

    assert_int_equal(PAYLOAD("40/admin,", &g), 0);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.data[0], "0/admin,");
    got_free(&g);
}

static void test_payload_many_packets(void **state)
{
    (void)state;
    got_t g = {0};
    /* The example of the protocol description. */
    assert_int_equal(PAYLOAD("4hello\x1e" "2\x1e" "4world", &g), 0);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.type[0], EIO_MESSAGE);
    assert_string_equal(g.data[0], "hello");
    assert_int_equal(g.type[1], EIO_PING);
    assert_int_equal(g.len[1], 0);
    assert_int_equal(g.type[2], EIO_MESSAGE);
    assert_string_equal(g.data[2], "world");
    got_free(&g);

    /* Every type in one payload, in order. */
    assert_int_equal(PAYLOAD("0{}\x1e" "1\x1e" "2probe\x1e" "3probe\x1e"
                             "42[\"hello\"]\x1e" "5\x1e" "6", &g), 0);
    assert_int_equal(g.n, 7);
    for (int t = 0; t < 7; t++) {
        assert_int_equal(g.type[t], t);
        assert_int_equal(g.binary[t], 0);
    }
    assert_string_equal(g.data[0], "{}");
    assert_string_equal(g.data[2], "probe");
    assert_string_equal(g.data[3], "probe");
    assert_string_equal(g.data[4], "2[\"hello\"]");
    got_free(&g);
}

static void test_payload_binary(void **state)
{
    (void)state;
    got_t g = {0};
    static const char body[] = "4hello\x1e" "bAQIDBA==";
    uint8_t copy[sizeof(body) - 1];

    assert_int_equal(PAYLOAD(body, &g), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.type[0], EIO_MESSAGE);
    assert_int_equal(g.binary[0], 0);
    assert_string_equal(g.data[0], "hello");
    assert_int_equal(g.type[1], EIO_MESSAGE);
    assert_int_equal(g.binary[1], 1);
    assert_int_equal(g.len[1], 4);
    assert_memory_equal(g.data[1], "\x01\x02\x03\x04", 4);

    /* Re-encoding gives the same bytes. */
    buf_t out = {0};
    for (int i = 0; i < g.n; i++)
        eio_payload_append(&out, g.type[i], g.binary[i], (const uint8_t *)g.data[i], g.len[i]);
    assert_int_equal(out.len, sizeof(body) - 1);
    assert_memory_equal(out.data, body, sizeof(body) - 1);
    buf_free(&out);
    got_free(&g);

    /* Decoded in place: the bytes sit right after the 'b'. */
    memcpy(copy, body, sizeof(copy));
    assert_int_equal(eio_payload_decode(copy, sizeof(copy), collect, &g), 0);
    assert_memory_equal(copy + 8, "\x01\x02\x03\x04", 4);
    got_free(&g);
}

static void test_payload_binary_shapes(void **state)
{
    (void)state;
    got_t g = {0};

    /* Empty binary message, one and two padding characters, no padding. */
    assert_int_equal(PAYLOAD("b\x1e" "bAA==\x1e" "bAAA=\x1e" "bAAAA", &g), 0);
    assert_int_equal(g.n, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(g.binary[i], 1);
        assert_int_equal(g.type[i], EIO_MESSAGE);
        assert_int_equal(g.len[i], (size_t)i);
    }
    got_free(&g);

    /* Decoded bytes equal to the separator do not confuse the split:
     * 1e 1e 1e is "Hh4e". */
    assert_int_equal(PAYLOAD("bHh4e\x1e" "4a\x1e" "bHh4e\x1e" "6", &g), 0);
    assert_int_equal(g.n, 4);
    assert_memory_equal(g.data[0], "\x1e\x1e\x1e", 3);
    assert_string_equal(g.data[1], "a");
    assert_memory_equal(g.data[2], "\x1e\x1e\x1e", 3);
    assert_int_equal(g.type[3], EIO_NOOP);
    got_free(&g);
}

/* Sizes around the codec's internal base64 chunk (1024 characters = 768
 * bytes), with and without padding, round trip. */
static void test_payload_binary_large(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 3, 766, 767, 768, 769, 770, 1535, 1536,
                                   1537, 5000, 100000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        uint8_t *bin = mem_alloc(n);
        for (size_t i = 0; i < n; i++)
            bin[i] = (uint8_t)(i * 131 + k);
        buf_t out = {0};
        eio_payload_append(&out, EIO_MESSAGE, 0, (const uint8_t *)"x", 1);
        eio_payload_append(&out, EIO_MESSAGE, 1, bin, n);
        eio_payload_append(&out, EIO_PING, 0, NULL, 0);

        got_t g = {0};
        assert_int_equal(payload(out.data, out.len, &g), 0);
        assert_int_equal(g.n, 3);
        assert_string_equal(g.data[0], "x");
        assert_int_equal(g.binary[1], 1);
        assert_int_equal(g.len[1], n);
        assert_memory_equal(g.data[1], bin, n);
        assert_int_equal(g.type[2], EIO_PING);
        got_free(&g);
        buf_free(&out);
        mem_free(bin);
    }
}

/* A malformed body delivers nothing and is left as it was. */
static void check_rejected(const char *s, size_t n)
{
    got_t g = {0};
    if (n == 0) {
        assert_int_equal(eio_payload_decode((uint8_t *)s, 0, collect, &g), EIO_PACKET_EMALFORMED);
        assert_int_equal(g.n, 0);
        return;
    }
    uint8_t *body = mem_alloc(n);
    memcpy(body, s, n);
    assert_int_equal(eio_payload_decode(body, n, collect, &g), EIO_PACKET_EMALFORMED);
    assert_int_equal(g.n, 0);
    assert_memory_equal(body, s, n);
    mem_free(body);
}

#define REJECTED(lit) check_rejected(lit, sizeof(lit) - 1)

static void test_payload_malformed(void **state)
{
    (void)state;
    check_rejected("", 0);
    check_rejected(NULL, 0);
    /* empty records */
    REJECTED("\x1e");
    REJECTED("\x1e" "4a");
    REJECTED("4a\x1e");            /* trailing separator */
    REJECTED("4a\x1e\x1e" "4b");
    REJECTED("4hello\x1e" "2\x1e");
    /* unknown type, anywhere */
    REJECTED("7");
    REJECTED("4a\x1e" "4b\x1e" "x");
    REJECTED("4a\x1e" "9\x1e" "4b");
    REJECTED("\x00" "4");
    /* bad base64 */
    REJECTED("4hello\x1e" "bAQIDBA=");    /* wrong length */
    REJECTED("bA");
    REJECTED("bAQI");                     /* wrong length (3 chars) */
    REJECTED("bAQ!D");
    REJECTED("bAQ D");
    REJECTED("bAQ-_");                    /* URL-safe alphabet is not base64 */
    REJECTED("bAQ\nDBA==");
    REJECTED("bA===");                    /* too much padding */
    REJECTED("b====");
    REJECTED("bAA=A");                    /* padding before data */
    REJECTED("bAA==AAAA");                /* padding in the middle */
    REJECTED("bAQIDBA\x1e" "4ok");
    REJECTED("4ok\x1e" "bAQIDBA=\x00");
}

/* Padding at the end of the first internal base64 chunk but not at the end
 * of the record is padding in the middle, and must be refused. */
static void test_payload_padding_at_chunk_edge(void **state)
{
    (void)state;
    size_t n = 1 + 1024 + 8;
    char *s = mem_alloc(n);
    s[0] = 'b';
    memset(s + 1, 'A', n - 1);
    memcpy(s + 1 + 1020, "AA==", 4);
    check_rejected(s, n);
    /* The same text with the padding at the real end is fine. */
    memset(s + 1, 'A', n - 1);
    memcpy(s + n - 4, "AA==", 4);
    got_t g = {0};
    assert_int_equal(payload(s, n, &g), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.len[0], (1024 + 8) / 4 * 3 - 2);
    got_free(&g);
    mem_free(s);
}

static void test_payload_callback_stops(void **state)
{
    (void)state;
    got_t g = {0};
    g.stop_at = 2;
    assert_int_equal(PAYLOAD("4a\x1e" "4b\x1e" "4c", &g), 7);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.data[1], "b");
    got_free(&g);
}

/* --- eio_payload_append -------------------------------------------------- */

static void test_append_every_type(void **state)
{
    (void)state;
    buf_t out = {0};
    for (int t = EIO_OPEN; t <= EIO_NOOP; t++) {
        eio_payload_append(&out, (eio_ptype)t, 0, NULL, 0);
        char want[2] = {(char)('0' + t), '\0'};
        assert_string_equal(out.data, want);
        buf_free(&out);
    }
    eio_payload_append(&out, EIO_PONG, 0, (const uint8_t *)"probe", 5);
    assert_string_equal(out.data, "3probe");
    buf_free(&out);
}

static void test_append_separators(void **state)
{
    (void)state;
    buf_t out = {0};
    eio_payload_append(&out, EIO_MESSAGE, 0, (const uint8_t *)"hello", 5);
    eio_payload_append(&out, EIO_PING, 0, NULL, 0);
    eio_payload_append(&out, EIO_MESSAGE, 0, (const uint8_t *)"world", 5);
    assert_int_equal(out.len, 15);
    assert_memory_equal(out.data, "4hello\x1e" "2\x1e" "4world", 16); /* with NUL */
    buf_free(&out);

    eio_payload_append(&out, EIO_MESSAGE, 1, (const uint8_t *)"\x01\x02\x03\x04", 4);
    assert_string_equal(out.data, "bAQIDBA==");
    eio_payload_append(&out, EIO_MESSAGE, 1, NULL, 0);
    assert_string_equal(out.data, "bAQIDBA==\x1e" "b");
    eio_payload_append(&out, EIO_MESSAGE, 1, (const uint8_t *)"f", 1);
    assert_string_equal(out.data, "bAQIDBA==\x1e" "b\x1e" "bZg==");
    assert_int_equal(out.len, strlen(out.data));
    buf_free(&out);
}

static void test_round_trip(void **state)
{
    (void)state;
    /* UTF-8 and NUL in text data survive; bytes 0..255 in binary data. */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    static const char utf8[] = "2[\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"]";
    static const char nul[] = "a\0b";

    buf_t out = {0};
    eio_payload_append(&out, EIO_OPEN, 0, (const uint8_t *)"{\"sid\":\"x\"}", 11);
    eio_payload_append(&out, EIO_MESSAGE, 0, (const uint8_t *)utf8, sizeof(utf8) - 1);
    eio_payload_append(&out, EIO_MESSAGE, 1, all, sizeof(all));
    eio_payload_append(&out, EIO_MESSAGE, 0, (const uint8_t *)nul, 3);
    eio_payload_append(&out, EIO_CLOSE, 0, NULL, 0);

    got_t g = {0};
    assert_int_equal(payload(out.data, out.len, &g), 0);
    assert_int_equal(g.n, 5);
    assert_int_equal(g.type[0], EIO_OPEN);
    assert_string_equal(g.data[0], "{\"sid\":\"x\"}");
    assert_int_equal(g.len[1], sizeof(utf8) - 1);
    assert_memory_equal(g.data[1], utf8, sizeof(utf8) - 1);
    assert_int_equal(g.binary[2], 1);
    assert_int_equal(g.len[2], 256);
    assert_memory_equal(g.data[2], all, 256);
    assert_int_equal(g.len[3], 3);
    assert_memory_equal(g.data[3], nul, 3);
    assert_int_equal(g.type[4], EIO_CLOSE);

    /* And back to the same bytes. */
    buf_t again = {0};
    for (int i = 0; i < g.n; i++)
        eio_payload_append(&again, g.type[i], g.binary[i], (const uint8_t *)g.data[i], g.len[i]);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);
    buf_free(&again);
    buf_free(&out);
    got_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packet_decode_every_type),
        cmocka_unit_test(test_packet_decode_rejects),
        cmocka_unit_test(test_packet_decode_keeps_bytes),
        cmocka_unit_test(test_payload_one_packet),
        cmocka_unit_test(test_payload_many_packets),
        cmocka_unit_test(test_payload_binary),
        cmocka_unit_test(test_payload_binary_shapes),
        cmocka_unit_test(test_payload_binary_large),
        cmocka_unit_test(test_payload_malformed),
        cmocka_unit_test(test_payload_padding_at_chunk_edge),
        cmocka_unit_test(test_payload_callback_stops),
        cmocka_unit_test(test_append_every_type),
        cmocka_unit_test(test_append_separators),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
