/* test_sio_packet.c - unit tests for the Socket.IO packet codec
 * (src/sio/sio_packet.c): every packet type both ways, namespaces with and
 * without ',', ack ids at the 2^53 boundary, attachment counts, every
 * malformed shape the header lists, placeholders, round trips, UTF-8 and
 * U+0000 in strings. The examples come from the protocol description and
 * the official conformance suite (the leading Engine.IO '4' removed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sio/sio_packet.h"
#include "util/mem.h"

/* --- helpers ------------------------------------------------------------- */

#define PH0 "{\"_placeholder\":true,\"num\":0}"
#define PH1 "{\"_placeholder\":true,\"num\":1}"
#define PH(n) "{\"_placeholder\":true,\"num\":" #n "}"

static json_t *parse(const char *json)
{
    json_error_t err;
    json_t *j = json_loadb(json, strlen(json), JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (j == NULL)
        fail_msg("bad JSON in test: %s (%s)", json, err.text);
    return j;
}

/* Decodes s[0..n), which must be well formed, into *p. */
static void dec_ok_n(const char *s, size_t n, sio_packet *p)
{
    if (sio_packet_decode(s, n, p) != 0)
        fail_msg("refused: %.*s", (int)n, s);
}

#define DEC_OK(lit, p) dec_ok_n(lit, sizeof(lit) - 1, p)

static void expect_data(const sio_packet *p, const char *json)
{
    if (json == NULL) {
        assert_null(p->data);
        return;
    }
    json_t *want = parse(json);
    assert_non_null(p->data);
    if (!json_equal(p->data, want)) {
        char *got = json_dumps(p->data, JSON_ENCODE_ANY | JSON_COMPACT);
        fail_msg("data %s, expected %s", got, json);
    }
    json_decref(want);
}

static void expect_packet(const char *s, size_t n, sio_ptype type, const char *nsp,
                          int64_t ack, unsigned att, const char *json)
{
    sio_packet p;
    dec_ok_n(s, n, &p);
    assert_int_equal(p.type, type);
    assert_string_equal(p.nsp, nsp);
    assert_true(p.ack_id == ack);
    assert_int_equal(p.attachments, att);
    expect_data(&p, json);
    sio_packet_clear(&p);
    assert_null(p.data);
}

#define EXPECT(lit, type, nsp, ack, att, json) \
    expect_packet(lit, sizeof(lit) - 1, type, nsp, ack, att, json)

static void expect_malformed(const char *s, size_t n)
{
    sio_packet p;
    memset(&p, 0x5a, sizeof(p));
    if (sio_packet_decode(s, n, &p) != SIO_PACKET_EMALFORMED)
        fail_msg("accepted: %.*s", (int)n, s);
    /* A refused packet holds nothing to release. */
    assert_null(p.data);
    assert_string_equal(p.nsp, "/");
    sio_packet_clear(&p);
}

#define MALFORMED(lit) expect_malformed(lit, sizeof(lit) - 1)

/* Encodes and compares with want (NULL: encoding must fail). */
static void expect_encode(sio_ptype type, const char *nsp, int64_t ack, unsigned att,
                          const char *json, const char *want)
{
    buf_t out = {0};
    json_t *data = json ? parse(json) : NULL;
    buf_append_str(&out, "pre|");
    int rc = sio_packet_encode(&out, type, nsp, ack, att, data);
    if (want == NULL) {
        assert_int_equal(rc, SIO_PACKET_EINVAL);
        assert_string_equal(out.data, "pre|");
    } else {
        assert_int_equal(rc, 0);
        assert_string_equal(out.data + 4, want);
        assert_int_equal(out.len, 4 + strlen(want));
    }
    json_decref(data);
    buf_free(&out);
}

/* decode(s) then encode must give s back byte for byte. */
static void expect_round_trip(const char *s, size_t n)
{
    sio_packet p;
    buf_t out = {0};
    dec_ok_n(s, n, &p);
    assert_int_equal(sio_packet_encode(&out, p.type, p.nsp, p.ack_id, p.attachments, p.data), 0);
    if (out.len != n || memcmp(out.data, s, n) != 0)
        fail_msg("round trip of %.*s gave %s", (int)n, s, out.data);
    sio_packet_clear(&p);
    buf_free(&out);
}

#define ROUND_TRIP(lit) expect_round_trip(lit, sizeof(lit) - 1)

/* --- decoding: well-formed packets --------------------------------------- */

static void test_decode_connect(void **state)
{
    (void)state;
    EXPECT("0", SIO_CONNECT, "/", -1, 0, NULL);
    EXPECT("0{}", SIO_CONNECT, "/", -1, 0, "{}");
    EXPECT("0{\"token\":\"123\"}", SIO_CONNECT, "/", -1, 0, "{\"token\":\"123\"}");
    EXPECT("0/custom,", SIO_CONNECT, "/custom", -1, 0, NULL);
    EXPECT("0/custom", SIO_CONNECT, "/custom", -1, 0, NULL);
    EXPECT("0/custom,{\"token\":\"abc\"}", SIO_CONNECT, "/custom", -1, 0, "{\"token\":\"abc\"}");
    EXPECT("0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", SIO_CONNECT, "/admin", -1, 0,
           "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}");
    EXPECT("0/random", SIO_CONNECT, "/random", -1, 0, NULL);
}

static void test_decode_disconnect(void **state)
{
    (void)state;
    EXPECT("1", SIO_DISCONNECT, "/", -1, 0, NULL);
    EXPECT("1/admin,", SIO_DISCONNECT, "/admin", -1, 0, NULL);
    EXPECT("1/custom", SIO_DISCONNECT, "/custom", -1, 0, NULL);
}

static void test_decode_event(void **state)
{
    (void)state;
    EXPECT("2[\"foo\"]", SIO_EVENT, "/", -1, 0, "[\"foo\"]");
    EXPECT("2/admin,[\"bar\"]", SIO_EVENT, "/admin", -1, 0, "[\"bar\"]");
    EXPECT("212[\"foo\"]", SIO_EVENT, "/", 12, 0, "[\"foo\"]");
    EXPECT("2/admin,13[\"x\"]", SIO_EVENT, "/admin", 13, 0, "[\"x\"]");
    EXPECT("2[\"message\",1,\"2\",{\"3\":[true]}]", SIO_EVENT, "/", -1, 0,
           "[\"message\",1,\"2\",{\"3\":[true]}]");
    EXPECT("2456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", SIO_EVENT, "/", 456, 0,
           "[\"message-with-ack\",1,\"2\",{\"3\":[false]}]");
    EXPECT("20[\"x\"]", SIO_EVENT, "/", 0, 0, "[\"x\"]");
    /* JSON.parse allows white space after the value. */
    EXPECT("2[\"x\"] \n", SIO_EVENT, "/", -1, 0, "[\"x\"]");
    /* Leading zeros: the reference reads the number, so does the codec. */
    EXPECT("2007[\"x\"]", SIO_EVENT, "/", 7, 0, "[\"x\"]");
}

static void test_decode_ack(void **state)
{
    (void)state;
    EXPECT("3/admin,13[\"bar\"]", SIO_ACK, "/admin", 13, 0, "[\"bar\"]");
    EXPECT("312[]", SIO_ACK, "/", 12, 0, "[]");
    EXPECT("3456[1,\"2\",{\"3\":[false]}]", SIO_ACK, "/", 456, 0, "[1,\"2\",{\"3\":[false]}]");
    EXPECT("3[]", SIO_ACK, "/", -1, 0, "[]");
}

static void test_decode_connect_error(void **state)
{
    (void)state;
    EXPECT("4{\"message\":\"Not authorized\"}", SIO_CONNECT_ERROR, "/", -1, 0,
           "{\"message\":\"Not authorized\"}");
    EXPECT("4/random,{\"message\":\"Invalid namespace\"}", SIO_CONNECT_ERROR, "/random", -1, 0,
           "{\"message\":\"Invalid namespace\"}");
    EXPECT("4\"Not authorized\"", SIO_CONNECT_ERROR, "/", -1, 0, "\"Not authorized\"");
}

static void test_decode_binary(void **state)
{
    (void)state;
    EXPECT("51-[\"baz\"," PH0 "]", SIO_BINARY_EVENT, "/", -1, 1, "[\"baz\"," PH0 "]");
    EXPECT("52-/admin,[\"baz\"," PH0 "," PH1 "]", SIO_BINARY_EVENT, "/admin", -1, 2,
           "[\"baz\"," PH0 "," PH1 "]");
    /* From the conformance suite. */
    EXPECT("52-[\"message\"," PH0 "," PH1 "]", SIO_BINARY_EVENT, "/", -1, 2,
           "[\"message\"," PH0 "," PH1 "]");
    EXPECT("52-789[\"message-with-ack\"," PH0 "," PH1 "]", SIO_BINARY_EVENT, "/", 789, 2,
           "[\"message-with-ack\"," PH0 "," PH1 "]");
    EXPECT("62-789[" PH0 "," PH1 "]", SIO_BINARY_ACK, "/", 789, 2, "[" PH0 "," PH1 "]");
    EXPECT("61-15[\"bar\"," PH0 "]", SIO_BINARY_ACK, "/", 15, 1, "[\"bar\"," PH0 "]");
    EXPECT("61-/admin,1[" PH0 "]", SIO_BINARY_ACK, "/admin", 1, 1, "[" PH0 "]");
    /* Counts: zero, the maximum, leading zeros. */
    EXPECT("50-[\"x\"]", SIO_BINARY_EVENT, "/", -1, 0, "[\"x\"]");
    EXPECT("564-[\"x\"]", SIO_BINARY_EVENT, "/", -1, SIO_MAX_ATTACHMENTS, "[\"x\"]");
    EXPECT("60-[]", SIO_BINARY_ACK, "/", -1, 0, "[]");
    EXPECT("5000000000000000000000064-[\"x\"]", SIO_BINARY_EVENT, "/", -1, 64, "[\"x\"]");
}

static void test_decode_namespace(void **state)
{
    (void)state;
    /* The namespace runs to the first ',' or to the end. */
    EXPECT("0/a/b/c,", SIO_CONNECT, "/a/b/c", -1, 0, NULL);
    EXPECT("0/admin{}", SIO_CONNECT, "/admin{}", -1, 0, NULL);
    EXPECT("0/,", SIO_CONNECT, "/", -1, 0, NULL);
    EXPECT("0/", SIO_CONNECT, "/", -1, 0, NULL);
    EXPECT("0/a b?c=d&e,{}", SIO_CONNECT, "/a b?c=d&e", -1, 0, "{}");
    EXPECT("2/x,[\"a,b\"]", SIO_EVENT, "/x", -1, 0, "[\"a,b\"]");
    /* Only the first ',' ends it: the rest is ack id and JSON. */
    MALFORMED("2/x,1,[\"a\"]");
}

static void test_decode_namespace_edge(void **state)
{
    (void)state;
    char s[200];
    sio_packet p;

    /* The longest namespace that fits: 127 bytes. */
    s[0] = '0';
    s[1] = '/';
    memset(s + 2, 'n', 126);
    s[128] = ',';
    dec_ok_n(s, 129, &p);
    assert_int_equal(strlen(p.nsp), 127);
    assert_memory_equal(p.nsp, s + 1, 127);
    sio_packet_clear(&p);
    dec_ok_n(s, 128, &p); /* without the ',' */
    assert_int_equal(strlen(p.nsp), 127);
    sio_packet_clear(&p);

    /* One more does not fit. */
    memset(s + 2, 'n', 127);
    s[129] = ',';
    expect_malformed(s, 130);
    expect_malformed(s, 129);

    /* UTF-8 namespaces are fine. */
    EXPECT("0/\xc3\xbcn\xc3\xaf\xe2\x82\xac\xf0\x9f\x98\x80,", SIO_CONNECT,
           "/\xc3\xbcn\xc3\xaf\xe2\x82\xac\xf0\x9f\x98\x80", -1, 0, NULL);
}

static void test_decode_ack_id_boundary(void **state)
{
    (void)state;
    /* 2^53 is the largest ack id a JavaScript peer holds exactly. */
    EXPECT("29007199254740992[\"x\"]", SIO_EVENT, "/", 9007199254740992LL, 0, "[\"x\"]");
    EXPECT("29007199254740991[\"x\"]", SIO_EVENT, "/", 9007199254740991LL, 0, "[\"x\"]");
    EXPECT("3/a,9007199254740992[]", SIO_ACK, "/a", 9007199254740992LL, 0, "[]");
    EXPECT("51-9007199254740992[\"x\"," PH0 "]", SIO_BINARY_EVENT, "/", 9007199254740992LL, 1,
           "[\"x\"," PH0 "]");
    EXPECT("200000000000000000000000009007199254740992[\"x\"]", SIO_EVENT, "/",
           9007199254740992LL, 0, "[\"x\"]");
    MALFORMED("29007199254740993[\"x\"]");
    MALFORMED("29007199254740999[\"x\"]");
    MALFORMED("29999999999999999999999999999[\"x\"]");
    MALFORMED("3/a,18446744073709551617[]");
    MALFORMED("29223372036854775808[\"x\"]");
}

static void test_decode_strings(void **state)
{
    (void)state;
    sio_packet p;

    /* UTF-8 kept as is. */
    DEC_OK("2[\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"]", &p);
    assert_string_equal(json_string_value(json_array_get(p.data, 0)),
                        "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
    sio_packet_clear(&p);

    /* Escapes, including surrogate pairs, become UTF-8. */
    DEC_OK("2[\"\\u00e9\\u20ac\\ud83d\\ude00\"]", &p);
    assert_string_equal(json_string_value(json_array_get(p.data, 0)),
                        "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    sio_packet_clear(&p);

    /* U+0000 inside a string value. */
    DEC_OK("2[\"a\\u0000b\",{\"k\":\"\\u0000\"}]", &p);
    const json_t *s = json_array_get(p.data, 0);
    assert_int_equal(json_string_length(s), 3);
    assert_memory_equal(json_string_value(s), "a\0b", 4);
    s = json_object_get(json_array_get(p.data, 1), "k");
    assert_int_equal(json_string_length(s), 1);
    assert_int_equal(json_string_value(s)[0], '\0');
    sio_packet_clear(&p);
    /* ...but not in an object key: jansson keys are C strings (JSON.parse
     * would accept it; no client is known to send one). */
    MALFORMED("2[\"a\",{\"k\\u0000\":1}]");

    /* Duplicate keys: the last one wins, as in JSON.parse. */
    DEC_OK("0{\"a\":1,\"b\":2,\"a\":3}", &p);
    assert_int_equal(json_object_size(p.data), 2);
    assert_int_equal(json_integer_value(json_object_get(p.data, "a")), 3);
    sio_packet_clear(&p);
}

/* Decoding into a packet that was decoded into and cleared before. */
static void test_decode_reuse(void **state)
{
    (void)state;
    sio_packet p;
    DEC_OK("2/x,5[\"a\"]", &p);
    sio_packet_clear(&p);
    DEC_OK("0", &p);
    assert_int_equal(p.type, SIO_CONNECT);
    assert_string_equal(p.nsp, "/");
    assert_true(p.ack_id == -1);
    assert_null(p.data);
    sio_packet_clear(&p);
    sio_packet_clear(&p); /* twice is harmless */
}

/* --- decoding: malformed packets ----------------------------------------- */

static void test_malformed_type(void **state)
{
    (void)state;
    expect_malformed("", 0);
    MALFORMED("7");
    MALFORMED("8[\"x\"]");
    MALFORMED("9");
    MALFORMED("abc");   /* the suite's "4abc" without the Engine.IO type */
    MALFORMED("a");
    MALFORMED("/");
    MALFORMED("-");
    MALFORMED(" 2[\"x\"]");
    MALFORMED("\0" "2[\"x\"]");
    MALFORMED("[\"x\"]");
}

static void test_malformed_attachments(void **state)
{
    (void)state;
    MALFORMED("5");
    MALFORMED("6");
    MALFORMED("5-[\"x\"]");        /* missing count */
    MALFORMED("6-[]");
    MALFORMED("5a-[\"x\"]");       /* not numeric */
    MALFORMED("5 1-[\"x\"]");
    MALFORMED("51[\"x\"]");        /* no '-' */
    MALFORMED("51");
    MALFORMED("51/a,[\"x\"]");
    MALFORMED("565-[\"x\"]");      /* over SIO_MAX_ATTACHMENTS */
    MALFORMED("5100-[\"x\"]");
    MALFORMED("54294967297-[\"x\"]");
    MALFORMED("599999999999999999999999-[\"x\"]");
    MALFORMED("5-1-[\"x\"]");
    MALFORMED("5+1-[\"x\"]");
    MALFORMED("51e1-[\"x\"]");
}

static void test_malformed_namespace(void **state)
{
    (void)state;
    /* Not starting with '/': the text is then read as JSON and fails. */
    MALFORMED("0admin,{}");
    MALFORMED("2admin,[\"x\"]");
    MALFORMED("51-admin,[\"x\"," PH0 "]");
    /* Without ',' the namespace swallows the rest: an EVENT with no data. */
    MALFORMED("2/admin[\"x\"]");
    MALFORMED("2/admin13[\"x\"]");
    /* NUL, invalid UTF-8 (bad byte, truncated, overlong, surrogate, past
     * U+10FFFF) cannot be a namespace. */
    MALFORMED("0/a\0b,");
    MALFORMED("0/\0,");
    MALFORMED("0/\xff,");
    MALFORMED("0/\xc3,");
    MALFORMED("0/\xe2\x82,");
    MALFORMED("0/\xc0\xaf,");
    MALFORMED("0/\xe0\x80\xaf,");
    MALFORMED("0/\xed\xa0\x80,");
    MALFORMED("0/\xf4\x90\x80\x80,");
    MALFORMED("0/\x80,");
}

static void test_malformed_ack_id(void **state)
{
    (void)state;
    MALFORMED("2abc[\"x\"]");     /* the suite's 42abc[...]: not digits */
    MALFORMED("2abc[\"message-with-ack\",1,\"2\",{\"3\":[false]}]");
    MALFORMED("212a[\"x\"]");
    MALFORMED("2-1[\"x\"]");
    MALFORMED("21.5[\"x\"]");
    MALFORMED("21e3[\"x\"]");
    /* Types that cannot carry an ack id. */
    MALFORMED("01");
    MALFORMED("01{}");
    MALFORMED("0/a,1");
    MALFORMED("11");
    MALFORMED("1/a,12");
    MALFORMED("41{\"message\":\"x\"}");
    MALFORMED("4/a,1\"x\"");
}

static void test_malformed_json(void **state)
{
    (void)state;
    MALFORMED("2[\"x\"");
    MALFORMED("2[\"x\"]]");
    MALFORMED("2[\"x\"] x");
    MALFORMED("2[\"x\"][\"y\"]");
    MALFORMED("2[\"x\",]");
    MALFORMED("2['x']");
    MALFORMED("2[\"x\"]\0");
    MALFORMED("2[\"x\0\"]");
    MALFORMED("2[\"\xff\"]");            /* invalid UTF-8 in a string */
    MALFORMED("2[\"\xed\xa0\x80\"]");
    MALFORMED("2[\"\\ud800\"]");         /* lone surrogate escape */
    MALFORMED("2[\"\\x\"]");
    MALFORMED("2 ");
    MALFORMED("2[\"x\",NaN]");
    MALFORMED("0{\"a\":1,}");
    MALFORMED("0{a:1}");
}

static void test_malformed_shape(void **state)
{
    (void)state;
    /* CONNECT: an object or nothing. */
    MALFORMED("0[]");
    MALFORMED("0\"x\"");
    MALFORMED("0null");
    MALFORMED("01");
    MALFORMED("0/a,[]");
    MALFORMED("0true");
    /* DISCONNECT: nothing. */
    MALFORMED("1{}");
    MALFORMED("1[]");
    MALFORMED("1/a,\"x\"");
    MALFORMED("1null");
    /* EVENT / BINARY_EVENT: a non-empty array starting with a string. */
    MALFORMED("2");
    MALFORMED("2/a,");
    MALFORMED("212");
    MALFORMED("2{}");              /* the suite's 42{} */
    MALFORMED("2[]");
    MALFORMED("2[1]");
    MALFORMED("2[null]");
    MALFORMED("2[[\"x\"]]");
    MALFORMED("2[{\"x\":1}]");
    MALFORMED("2\"x\"");
    MALFORMED("2null");
    MALFORMED("21");
    MALFORMED("51-");
    MALFORMED("51-{}");
    MALFORMED("51-[]");
    MALFORMED("51-[" PH0 "]");
    MALFORMED("51-\"x\"");
    /* ACK / BINARY_ACK: an array. */
    MALFORMED("3");
    MALFORMED("312");
    MALFORMED("3{}");
    MALFORMED("312\"x\"");
    MALFORMED("3/a,1null");
    MALFORMED("61-");
    MALFORMED("61-1{}");
    /* CONNECT_ERROR: an object or a string. */
    MALFORMED("4");
    MALFORMED("4/a,");
    MALFORMED("4[]");
    MALFORMED("41");
    MALFORMED("4null");
    MALFORMED("4/random,[\"Invalid namespace\"]");
}

/* "<prefix><depth x open><middle><depth x close><suffix>" in a new block;
 * *n gets its length. */
static char *deep_packet(const char *prefix, size_t depth, char open, const char *middle,
                         char close, const char *suffix, size_t *n)
{
    size_t lp = strlen(prefix), lm = strlen(middle), ls = strlen(suffix);
    char *s = mem_alloc(lp + 2 * depth + lm + ls + 1);
    memcpy(s, prefix, lp);
    memset(s + lp, open, depth);
    memcpy(s + lp + depth, middle, lm);
    memset(s + lp + depth + lm, close, depth);
    memcpy(s + lp + 2 * depth + lm, suffix, ls);
    *n = lp + 2 * depth + lm + ls;
    return s;
}

/* Decodes s[0..n) and expects SIO_PACKET_ETOODEEP with this header and
 * data (JSON text, or NULL). */
static void expect_too_deep(char *s, size_t n, sio_ptype type, const char *nsp, int64_t ack,
                            unsigned att, const char *json)
{
    sio_packet p;
    if (sio_packet_decode(s, n, &p) != SIO_PACKET_ETOODEEP)
        fail_msg("not too deep: %.40s...", s);
    assert_int_equal(p.type, type);
    assert_string_equal(p.nsp, nsp);
    assert_true(p.ack_id == ack);
    assert_int_equal(p.attachments, att);
    assert_int_equal(p.too_deep, 1);
    expect_data(&p, json);
    sio_packet_clear(&p);
    assert_null(p.data);
    mem_free(s);
}

/* deep_packet(...) must be malformed. */
static void expect_deep_malformed(const char *prefix, size_t depth, char open,
                                  const char *middle, char close, const char *suffix)
{
    size_t n;
    char *s = deep_packet(prefix, depth, open, middle, close, suffix, &n);
    expect_malformed(s, n);
    mem_free(s);
}

static void test_decode_too_deep(void **state)
{
    (void)state;
    size_t n, deep = 100000, over = JSON_PARSER_MAX_DEPTH + 10;

    /* Valid JSON deeper than jansson parses: the header and the event
     * name, nothing else (JSON.parse would read it: not malformed). */
    char *s = deep_packet("2[\"x\",", deep, '[', "", ']', "]", &n);
    expect_too_deep(s, n, SIO_EVENT, "/", -1, 0, "[\"x\"]");
    s = deep_packet("2/chat,17[\"a\\u0000\\\"b\" , ", over, '[', "1,{\"k\":[null,true]}", ']',
                    " ] ", &n);
    expect_too_deep(s, n, SIO_EVENT, "/chat", 17, 0, "[\"a\\u0000\\\"b\"]");
    s = deep_packet("2[\"m\",{\"a\":", over, '[', "-0.5e+3,\"\\u00e9\"", ']', "}]", &n);
    expect_too_deep(s, n, SIO_EVENT, "/", -1, 0, "[\"m\"]");
    s = deep_packet("51-3[\"up\",{\"_placeholder\":true,\"num\":0},", over, '[', "", ']', "]",
                    &n);
    expect_too_deep(s, n, SIO_BINARY_EVENT, "/", 3, 1, "[\"up\"]");
    s = deep_packet("35[", over, '[', "", ']', "]", &n);
    expect_too_deep(s, n, SIO_ACK, "/", 5, 0, NULL);

    /* Just within the limit: parsed as usual. */
    s = deep_packet("2[\"x\",", JSON_PARSER_MAX_DEPTH - 2, '[', "", ']', "]", &n);
    sio_packet p;
    dec_ok_n(s, n, &p);
    assert_int_equal(p.too_deep, 0);
    assert_int_equal(json_array_size(p.data), 2);
    sio_packet_clear(&p);
    mem_free(s);

    /* Deep and broken, or of the wrong shape: malformed as before. */
    expect_deep_malformed("2[\"x\",", deep, '[', "", ']', "");
    expect_deep_malformed("2[\"x\",", deep, '[', "", ']', "]]");
    expect_deep_malformed("2[\"x\",", over, '[', "1,", ']', "]");
    expect_deep_malformed("2[\"x\",", over, '[', "tru", ']', "]");
    expect_deep_malformed("2[\"x\",", over, '[', "01", ']', "]");
    expect_deep_malformed("2[\"x\",", over, '[', "\"\t\"", ']', "]");
    expect_deep_malformed("2[\"x\",", over, '[', "\"\\x\"", ']', "]");
    expect_deep_malformed("2[\"x\",", over, '[', "\"\xff\"", ']', "]");
    expect_deep_malformed("2[\"x\",", over, '{', "", '}', "]");
    expect_deep_malformed("2[\"x\",{\"a\":", over, '[', "", '}', "}]");
    expect_deep_malformed("2[1,", over, '[', "", ']', "]");
    expect_deep_malformed("2", over, '[', "", ']', "");
    expect_deep_malformed("2{\"a\":", over, '[', "", ']', "}");
    expect_deep_malformed("0{\"a\":", over, '[', "", ']', "}");
    expect_deep_malformed("4{\"a\":", over, '[', "", ']', "}");
    expect_deep_malformed("3", over, '[', "", ']', " x");
}

/* --- encoding ------------------------------------------------------------ */

static void test_encode_every_type(void **state)
{
    (void)state;
    expect_encode(SIO_CONNECT, NULL, -1, 0, NULL, "0");
    expect_encode(SIO_CONNECT, "/", -1, 0, NULL, "0");
    expect_encode(SIO_CONNECT, "/admin", -1, 0, "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}",
                  "0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}");
    expect_encode(SIO_CONNECT, "/", -1, 0, "{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}",
                  "0{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}");
    expect_encode(SIO_DISCONNECT, "/", -1, 0, NULL, "1");
    expect_encode(SIO_DISCONNECT, "/admin", -1, 0, NULL, "1/admin,");
    expect_encode(SIO_EVENT, "/", -1, 0, "[\"foo\"]", "2[\"foo\"]");
    expect_encode(SIO_EVENT, "/admin", -1, 0, "[\"bar\"]", "2/admin,[\"bar\"]");
    expect_encode(SIO_EVENT, NULL, 12, 0, "[\"foo\"]", "212[\"foo\"]");
    expect_encode(SIO_EVENT, "/custom", -1, 0, "[\"auth\",{\"token\":\"abc\"}]",
                  "2/custom,[\"auth\",{\"token\":\"abc\"}]");
    expect_encode(SIO_EVENT, "/", -1, 0, "[\"message-back\",1,\"2\",{\"3\":[true]}]",
                  "2[\"message-back\",1,\"2\",{\"3\":[true]}]");
    expect_encode(SIO_ACK, "/admin", 13, 0, "[\"bar\"]", "3/admin,13[\"bar\"]");
    expect_encode(SIO_ACK, "/", 456, 0, "[1,\"2\",{\"3\":[false]}]",
                  "3456[1,\"2\",{\"3\":[false]}]");
    expect_encode(SIO_ACK, "/", 12, 0, "[]", "312[]");
    expect_encode(SIO_CONNECT_ERROR, "/", -1, 0, "{\"message\":\"Not authorized\"}",
                  "4{\"message\":\"Not authorized\"}");
    expect_encode(SIO_CONNECT_ERROR, "/random", -1, 0, "{\"message\":\"Invalid namespace\"}",
                  "4/random,{\"message\":\"Invalid namespace\"}");
    expect_encode(SIO_BINARY_EVENT, "/", -1, 1, "[\"baz\"," PH0 "]",
                  "51-[\"baz\"," PH0 "]");
    expect_encode(SIO_BINARY_EVENT, "/admin", -1, 2, "[\"baz\"," PH0 "," PH1 "]",
                  "52-/admin,[\"baz\"," PH0 "," PH1 "]");
    expect_encode(SIO_BINARY_EVENT, "/", -1, 2, "[\"message-back\"," PH0 "," PH1 "]",
                  "52-[\"message-back\"," PH0 "," PH1 "]");
    expect_encode(SIO_BINARY_ACK, "/", 15, 1, "[\"bar\"," PH0 "]", "61-15[\"bar\"," PH0 "]");
    expect_encode(SIO_BINARY_ACK, "/", 789, 2, "[" PH0 "," PH1 "]",
                  "62-789[" PH0 "," PH1 "]");
    expect_encode(SIO_BINARY_ACK, "/admin", 1, 1, "[" PH0 "]", "61-/admin,1[" PH0 "]");
}

static void test_encode_fields(void **state)
{
    (void)state;
    /* "" is the main namespace, as in the reference encoder. */
    expect_encode(SIO_CONNECT, "", -1, 0, NULL, "0");
    /* Attachments only on binary types; zero is written. */
    expect_encode(SIO_EVENT, "/", -1, 3, "[\"x\"]", "2[\"x\"]");
    expect_encode(SIO_BINARY_EVENT, "/", -1, 0, "[\"x\"]", "50-[\"x\"]");
    expect_encode(SIO_BINARY_EVENT, "/", -1, 64, "[\"x\"]", "564-[\"x\"]");
    /* Ack ids: zero, 2^53. */
    expect_encode(SIO_EVENT, "/", 0, 0, "[\"x\"]", "20[\"x\"]");
    expect_encode(SIO_EVENT, "/", 9007199254740992LL, 0, "[\"x\"]", "29007199254740992[\"x\"]");
    expect_encode(SIO_ACK, "/a", 9007199254740992LL, 0, "[]", "3/a,9007199254740992[]");
    /* Any JSON value is written; shape rules are for decoding. */
    expect_encode(SIO_CONNECT_ERROR, "/", -1, 0, "\"Not authorized\"", "4\"Not authorized\"");
    expect_encode(SIO_EVENT, "/", -1, 0, "null", "2null");
}

static void test_encode_json_like_js(void **state)
{
    (void)state;
    /* Compact, UTF-8 kept, '/' not escaped, quotes and backslashes and
     * control characters escaped. */
    expect_encode(SIO_EVENT, "/", -1, 0, "[\"a/b\", {\"k\" : [1, 2] }]",
                  "2[\"a/b\",{\"k\":[1,2]}]");
    expect_encode(SIO_EVENT, "/", -1, 0, "[\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"]",
                  "2[\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"]");
    expect_encode(SIO_EVENT, "/", -1, 0, "[\"\\u00e9\\ud83d\\ude00\"]",
                  "2[\"\xc3\xa9\xf0\x9f\x98\x80\"]");
    expect_encode(SIO_EVENT, "/", -1, 0, "[\"q\\\"b\\\\n\\n\\t\\r\\b\\f\"]",
                  "2[\"q\\\"b\\\\n\\n\\t\\r\\b\\f\"]");
    expect_encode(SIO_EVENT, "/", -1, 0, "[\"a\\u0000b\\u0001\"]",
                  "2[\"a\\u0000b\\u0001\"]");
    /* Key order as given. */
    expect_encode(SIO_CONNECT, "/", -1, 0, "{\"b\":1,\"a\":2,\"c\":{\"z\":0,\"y\":1}}",
                  "0{\"b\":1,\"a\":2,\"c\":{\"z\":0,\"y\":1}}");
    /* Literals and integers. */
    expect_encode(SIO_EVENT, "/", -1, 0, "[\"n\",true,false,null,0,-1,9007199254740993]",
                  "2[\"n\",true,false,null,0,-1,9007199254740993]");
}

/* Every byte below 0x20 escaped (the short forms where JSON has them),
 * DEL and UTF-8 kept, keys escaped like values, integers to the int64
 * ends; and what was written reads back equal. */
static void test_encode_escapes_and_keys(void **state)
{
    (void)state;
    char raw[0x20 + 2];
    for (int c = 1; c < 0x20; c++)
        raw[c - 1] = (char)c;
    raw[0x1f] = 0x7f;
    raw[0x20] = '\0';
    json_t *data = json_pack("[s{s:I,s:I}]", raw, "k\"\\\n\x01", (json_int_t)INT64_MIN,
                             "\xc3\xa9", (json_int_t)INT64_MAX);
    buf_t out = {0};
    assert_int_equal(sio_packet_encode(&out, SIO_EVENT, NULL, -1, 0, data), 0);
    assert_string_equal(out.data,
                        "2[\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n"
                        "\\u000B\\f\\r\\u000E\\u000F\\u0010\\u0011\\u0012\\u0013\\u0014"
                        "\\u0015\\u0016\\u0017\\u0018\\u0019\\u001A\\u001B\\u001C\\u001D"
                        "\\u001E\\u001F\x7f\","
                        "{\"k\\\"\\\\\\n\\u0001\":-9223372036854775808,"
                        "\"\xc3\xa9\":9223372036854775807}]");
    sio_packet p;
    dec_ok_n(out.data, out.len, &p);
    assert_true(json_equal(p.data, data));
    sio_packet_clear(&p);
    buf_free(&out);
    json_decref(data);

    /* a key of invalid UTF-8 (set without jansson's check) fails too */
    json_t *obj = json_object();
    json_object_setn_new_nocheck(obj, "\xc3(", 2, json_true());
    assert_int_equal(sio_packet_encode(&out, SIO_CONNECT, NULL, -1, 0, obj), SIO_PACKET_EINVAL);
    assert_int_equal(out.len, 0);
    buf_free(&out);
    json_decref(obj);
}

static void test_encode_reals(void **state)
{
    (void)state;
    /* Reals in the shortest form that reads back exactly, as JavaScript
     * prints them (jansson alone writes 0.1 as 0.10000000000000001). */
    expect_encode(SIO_EVENT, "/", -1, 0, "[\"r\",0.1,3.14,-2.5,0.5]",
                  "2[\"r\",0.1,3.14,-2.5,0.5]");
    expect_encode(SIO_EVENT, "/", -1, 0, "[\"r\",0.1,0.3333333333333333]",
                  "2[\"r\",0.1,0.3333333333333333]");
    expect_encode(SIO_EVENT, "/", -1, 0, "[\"r\",{\"lat\":48.8566,\"lng\":2.3522}]",
                  "2[\"r\",{\"lat\":48.8566,\"lng\":2.3522}]");
    /* Whole reals stay reals (jansson keeps ".0"), without an exponent. */
    expect_encode(SIO_EVENT, "/", -1, 0, "[\"r\",100.0,1.0]", "2[\"r\",100.0,1.0]");
    expect_encode(SIO_EVENT, "/", -1, 0, "[\"r\",1e300,2.5e-7]", "2[\"r\",1e300,2.5e-7]");

    /* Every real decodes back to the same double. */
    static const double v[] = {0.1, 0.2, 0.30000000000000004, 1.0 / 3, 2.0 / 3, 123456.789,
                               1e-300, 5e-324, 1.7976931348623157e308, -0.0, 4503599627370496.5,
                               9007199254740993.0, 1e21, 1e22, 12345678901234567890.0};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        json_t *arr = json_pack("[sf]", "r", v[i]);
        json_array_append_new(arr, json_real(0.1));
        buf_t out = {0};
        assert_int_equal(sio_packet_encode(&out, SIO_EVENT, NULL, -1, 0, arr), 0);
        sio_packet p;
        dec_ok_n(out.data, out.len, &p);
        assert_true(json_is_real(json_array_get(p.data, 1)));
        assert_true(json_real_value(json_array_get(p.data, 1)) == v[i]);
        assert_true(json_real_value(json_array_get(p.data, 2)) == 0.1);
        sio_packet_clear(&p);
        buf_free(&out);
        json_decref(arr);
    }
}

static void test_encode_failures(void **state)
{
    (void)state;
    buf_t out = {0};

    /* Unknown type, or a namespace that could not be decoded back. */
    expect_encode((sio_ptype)7, "/", -1, 0, NULL, NULL);
    expect_encode((sio_ptype)-1, "/", -1, 0, NULL, NULL);
    expect_encode(SIO_CONNECT, "admin", -1, 0, NULL, NULL);
    expect_encode(SIO_EVENT, "/a,b", -1, 0, "[\"x\"]", NULL);

    /* Data that cannot be written: invalid UTF-8, a cycle. The buffer is
     * left as it was, also when it started empty. */
    json_t *bad = json_pack("[so]", "x", json_stringn_nocheck("\xff", 1));
    buf_append_str(&out, "keep");
    assert_int_equal(sio_packet_encode(&out, SIO_EVENT, "/a", 5, 0, bad), SIO_PACKET_EINVAL);
    assert_int_equal(out.len, 4);
    assert_string_equal(out.data, "keep");
    buf_free(&out);
    assert_int_equal(sio_packet_encode(&out, SIO_BINARY_EVENT, "/a", 5, 1, bad), SIO_PACKET_EINVAL);
    assert_int_equal(out.len, 0);
    assert_true(out.data == NULL || out.data[0] == '\0');
    buf_free(&out);
    json_decref(bad);

    json_t *obj = json_object(), *arr = json_array();
    json_array_append_new(arr, json_string("x"));
    json_array_append(arr, obj);
    json_object_set(obj, "loop", arr);
    assert_int_equal(sio_packet_encode(&out, SIO_EVENT, NULL, -1, 0, arr), SIO_PACKET_EINVAL);
    assert_true(out.len == 0);
    json_object_del(obj, "loop"); /* break the cycle so both are freed */
    json_decref(obj);
    json_decref(arr);
    buf_free(&out);
}

/* --- round trips ----------------------------------------------------------- */

static void test_round_trips(void **state)
{
    (void)state;
    ROUND_TRIP("0");
    ROUND_TRIP("0{\"token\":\"123\"}");
    ROUND_TRIP("0/custom,");
    ROUND_TRIP("0/custom,{\"token\":\"abc\"}");
    ROUND_TRIP("1");
    ROUND_TRIP("1/admin,");
    ROUND_TRIP("2[\"foo\"]");
    ROUND_TRIP("2/admin,13[\"x\"]");
    ROUND_TRIP("29007199254740992[\"x\"]");
    ROUND_TRIP("3/admin,13[\"bar\"]");
    ROUND_TRIP("312[]");
    ROUND_TRIP("4{\"message\":\"Not authorized\"}");
    ROUND_TRIP("4/random,{\"message\":\"Invalid namespace\"}");
    ROUND_TRIP("4\"x\"");
    ROUND_TRIP("51-[\"baz\"," PH0 "]");
    ROUND_TRIP("52-/admin,[\"baz\"," PH0 "," PH1 "]");
    ROUND_TRIP("52-789[\"message-with-ack\"," PH0 "," PH1 "]");
    ROUND_TRIP("62-789[" PH0 "," PH1 "]");
    ROUND_TRIP("61-/admin,1[" PH0 "]");
    ROUND_TRIP("2[\"message\",1,\"2\",{\"3\":[true]}]");
    ROUND_TRIP("2[\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"]");
    ROUND_TRIP("2/\xc3\xbc,[\"a\\u0000b\"]");
    ROUND_TRIP("2[\"r\",0.1,-3.5e-9,100.0,{\"a\":[[],{}]}]");
    ROUND_TRIP("0{\"a\":{\"b\":{\"c\":[null,true,false,\"\"]}}}");
}

/* encode(decode(x)) decodes to an equal packet, also for inputs that are
 * not in the canonical form. */
static void test_round_trip_equal(void **state)
{
    (void)state;
    static const char *in[] = {
        "0/custom",
        "2007[\"x\"]",
        "2[ \"x\" , 1.50 , {\"a\" : 1, \"a\": 2} ]\n",
        "5000000000000000000000064-[\"x\"]",
        "2[\"\\u00e9\\/\\ud83d\\ude00\"]",
        "0/,{}",
        "200000000000000000000000009007199254740992[\"x\"]",
    };
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        sio_packet a, b;
        buf_t out = {0};
        dec_ok_n(in[i], strlen(in[i]), &a);
        assert_int_equal(
            sio_packet_encode(&out, a.type, a.nsp, a.ack_id, a.attachments, a.data), 0);
        dec_ok_n(out.data, out.len, &b);
        assert_int_equal(a.type, b.type);
        assert_string_equal(a.nsp, b.nsp);
        assert_true(a.ack_id == b.ack_id);
        assert_int_equal(a.attachments, b.attachments);
        assert_true((a.data == NULL && b.data == NULL) || json_equal(a.data, b.data));
        sio_packet_clear(&a);
        sio_packet_clear(&b);
        buf_free(&out);
    }
}

/* --- placeholders ---------------------------------------------------------- */

static int ph(const char *json, unsigned expected)
{
    json_t *j = parse(json);
    int rc = sio_placeholders_check(j, expected);
    json_decref(j);
    return rc;
}

static void test_placeholders_ok(void **state)
{
    (void)state;
    assert_int_equal(sio_placeholders_check(NULL, 0), 0);
    assert_int_equal(ph("[\"x\"]", 0), 0);
    assert_int_equal(ph("[\"x\",{\"a\":1}]", 0), 0);
    assert_int_equal(ph("[\"baz\"," PH0 "]", 1), 0);
    assert_int_equal(ph("[\"baz\"," PH0 "," PH1 "]", 2), 0);
    assert_int_equal(ph("[\"baz\"," PH1 "," PH0 "]", 2), 0);
    /* Nested in arrays and objects, keys in either order. */
    assert_int_equal(ph("[\"x\",{\"a\":[{\"num\":1,\"_placeholder\":true}]},[[" PH0 "]]]", 2), 0);
    assert_int_equal(ph("{\"f\":" PH0 "}", 1), 0);
    /* "_placeholder" other than true: an ordinary object. */
    assert_int_equal(ph("[\"x\",{\"_placeholder\":false,\"num\":0}]", 0), 0);
    assert_int_equal(ph("[\"x\",{\"_placeholder\":1,\"num\":0}]", 0), 0);
    assert_int_equal(ph("[\"x\",{\"_placeholder\":\"true\"}]", 0), 0);
    assert_int_equal(ph("[\"x\",{\"_placeholder\":false,\"in\":" PH0 "}]", 1), 0);
    /* The maximum count. */
    buf_t b = {0};
    buf_append_str(&b, "[\"x\"");
    for (int i = SIO_MAX_ATTACHMENTS - 1; i >= 0; i--)
        buf_appendf(&b, ",{\"_placeholder\":true,\"num\":%d}", i);
    buf_append_str(&b, "]");
    assert_int_equal(ph(b.data, SIO_MAX_ATTACHMENTS), 0);
    assert_int_equal(ph(b.data, SIO_MAX_ATTACHMENTS + 1), SIO_PACKET_EMALFORMED);
    assert_int_equal(ph(b.data, SIO_MAX_ATTACHMENTS - 1), SIO_PACKET_EMALFORMED);
    buf_free(&b);
}

static void test_placeholders_bad(void **state)
{
    (void)state;
    assert_int_equal(sio_placeholders_check(NULL, 1), SIO_PACKET_EMALFORMED);
    /* Missing. */
    assert_int_equal(ph("[\"x\"]", 1), SIO_PACKET_EMALFORMED);
    assert_int_equal(ph("[\"x\"," PH0 "]", 2), SIO_PACKET_EMALFORMED);
    assert_int_equal(ph("[\"x\"," PH1 "]", 2), SIO_PACKET_EMALFORMED);
    /* Too many / out of range. */
    assert_int_equal(ph("[\"x\"," PH0 "]", 0), SIO_PACKET_EMALFORMED);
    assert_int_equal(ph("[\"x\"," PH0 "," PH1 "]", 1), SIO_PACKET_EMALFORMED);
    assert_int_equal(ph("[\"x\"," PH1 "]", 1), SIO_PACKET_EMALFORMED);
    assert_int_equal(ph("[\"x\"," PH(64) "]", 1), SIO_PACKET_EMALFORMED);
    /* Duplicated. */
    assert_int_equal(ph("[\"x\"," PH0 "," PH0 "]", 2), SIO_PACKET_EMALFORMED);
    assert_int_equal(ph("[\"x\"," PH1 ",[" PH1 "]]", 2), SIO_PACKET_EMALFORMED);
    /* Malformed placeholders. */
    assert_int_equal(ph("[\"x\",{\"_placeholder\":true}]", 1), SIO_PACKET_EMALFORMED);
    assert_int_equal(ph("[\"x\",{\"_placeholder\":true,\"num\":\"0\"}]", 1), SIO_PACKET_EMALFORMED);
    assert_int_equal(ph("[\"x\",{\"_placeholder\":true,\"num\":0.0}]", 1), SIO_PACKET_EMALFORMED);
    assert_int_equal(ph("[\"x\",{\"_placeholder\":true,\"num\":-1}]", 1), SIO_PACKET_EMALFORMED);
    assert_int_equal(ph("[\"x\",{\"_placeholder\":true,\"num\":null}]", 1), SIO_PACKET_EMALFORMED);
    assert_int_equal(ph("[\"x\",{\"_placeholder\":true,\"num\":0,\"x\":1}]", 1), SIO_PACKET_EMALFORMED);
    assert_int_equal(ph("[\"x\",{\"_placeholder\":true,\"nom\":0}]", 1), SIO_PACKET_EMALFORMED);
    assert_int_equal(ph("[\"x\",{\"_placeholder\":true,\"num\":9223372036854775807}]", 1), SIO_PACKET_EMALFORMED);
    assert_int_equal(ph("[\"x\",{\"_placeholder\":true,\"num\":-9223372036854775808}]", 1), SIO_PACKET_EMALFORMED);
    /* A malformed one is refused even when it is not counted. */
    assert_int_equal(ph("[\"x\"," PH0 ",{\"_placeholder\":true,\"num\":\"1\"}]", 1), SIO_PACKET_EMALFORMED);
}

/* Many placeholders (bitmap beyond the stack one), and a huge expected
 * count that the tree cannot match. */
static void test_placeholders_large(void **state)
{
    (void)state;
    unsigned n = 1000;
    json_t *arr = json_array();
    json_array_append_new(arr, json_string("x"));
    for (unsigned i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{sbsI}", "_placeholder", 1, "num",
                                             (json_int_t)(n - 1 - i)));
    assert_int_equal(sio_placeholders_check(arr, n), 0);
    assert_int_equal(sio_placeholders_check(arr, n + 1), SIO_PACKET_EMALFORMED);
    assert_int_equal(sio_placeholders_check(arr, 0xffffffffu), SIO_PACKET_EMALFORMED);
    /* One duplicate (and so one missing). */
    json_array_set_new(arr, 1, json_pack("{sbsI}", "_placeholder", 1, "num", (json_int_t)5));
    assert_int_equal(sio_placeholders_check(arr, n), SIO_PACKET_EMALFORMED);
    json_decref(arr);
}

static void test_placeholders_deep(void **state)
{
    (void)state;
    /* A tree deeper than any decoded one is refused, not a stack overflow. */
    json_t *root = json_array(), *cur = root;
    for (int i = 0; i < 10000; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    json_array_append_new(cur, json_pack("{sbsi}", "_placeholder", 1, "num", 0));
    assert_int_equal(sio_placeholders_check(root, 1), SIO_PACKET_EMALFORMED);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_connect),
        cmocka_unit_test(test_decode_disconnect),
        cmocka_unit_test(test_decode_event),
        cmocka_unit_test(test_decode_ack),
        cmocka_unit_test(test_decode_connect_error),
        cmocka_unit_test(test_decode_binary),
        cmocka_unit_test(test_decode_namespace),
        cmocka_unit_test(test_decode_namespace_edge),
        cmocka_unit_test(test_decode_ack_id_boundary),
        cmocka_unit_test(test_decode_strings),
        cmocka_unit_test(test_decode_reuse),
        cmocka_unit_test(test_malformed_type),
        cmocka_unit_test(test_malformed_attachments),
        cmocka_unit_test(test_malformed_namespace),
        cmocka_unit_test(test_malformed_ack_id),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_malformed_shape),
        cmocka_unit_test(test_decode_too_deep),
        cmocka_unit_test(test_encode_every_type),
        cmocka_unit_test(test_encode_fields),
        cmocka_unit_test(test_encode_json_like_js),
        cmocka_unit_test(test_encode_escapes_and_keys),
        cmocka_unit_test(test_encode_reals),
        cmocka_unit_test(test_encode_failures),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_round_trip_equal),
        cmocka_unit_test(test_placeholders_ok),
        cmocka_unit_test(test_placeholders_bad),
        cmocka_unit_test(test_placeholders_large),
        cmocka_unit_test(test_placeholders_deep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
