/* test_ws.c - unit tests for the WebSocket codec (src/ws/ws_codec.c) and the
 * opening-handshake key (src/ws/ws_handshake.c).
 *
 * The parser is driven with scripted byte streams: built with the codec's
 * own encoders, or spelled out byte by byte where the RFC gives them. A
 * recorder callback set copies every event so that runs over the same
 * stream cut in different places can be compared. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/buf.h"
#include "util/mem.h"
#include "ws/ws_codec.h"
#include "ws/ws_handshake.h"

/* ---- recorder ----------------------------------------------------------- */

enum { EV_MESSAGE = 1, EV_PING, EV_PONG, EV_CLOSE };

typedef struct {
    int type;
    int opcode;    /* EV_MESSAGE */
    uint16_t code; /* EV_CLOSE */
    uint8_t *data; /* copy of the payload or the close reason */
    size_t len;
} event;

typedef struct {
    event *ev;
    size_t n;
    size_t cap;
    size_t stop_at;        /* a callback returns 1 when it records event #stop_at (1-based); 0: never */
    const uint8_t *last;   /* where the last message's bytes were */
    int null_data;         /* a callback saw data == NULL */
} rec;

static int rec_add(rec *r, int type, int opcode, uint16_t code, const void *data, size_t len)
{
    if (data == NULL)
        r->null_data = 1;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->ev = mem_realloc(r->ev, r->cap * sizeof(*r->ev));
    }
    event *e = &r->ev[r->n++];
    e->type = type;
    e->opcode = opcode;
    e->code = code;
    e->len = len;
    e->data = mem_alloc(len + 1);
    if (len)
        memcpy(e->data, data, len);
    e->data[len] = 0;
    return r->stop_at != 0 && r->n == r->stop_at;
}

static int rec_message(void *ud, int opcode, uint8_t *data, size_t len)
{
    rec *r = ud;
    r->last = data;
    return rec_add(r, EV_MESSAGE, opcode, 0, data, len);
}

static int rec_ping(void *ud, uint8_t *data, size_t len)
{
    return rec_add(ud, EV_PING, 0, 0, data, len);
}

static int rec_pong(void *ud, uint8_t *data, size_t len)
{
    return rec_add(ud, EV_PONG, 0, 0, data, len);
}

static int rec_close(void *ud, uint16_t code, const char *reason, size_t len)
{
    return rec_add(ud, EV_CLOSE, 0, code, reason, len);
}

static const ws_callbacks rec_cb = {rec_message, rec_ping, rec_pong, rec_close};

static void rec_free(rec *r)
{
    for (size_t i = 0; i < r->n; i++)
        mem_free(r->ev[i].data);
    mem_free(r->ev);
    memset(r, 0, sizeof(*r));
}

static void assert_same_events(const rec *a, const rec *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->ev[i].type, b->ev[i].type);
        assert_int_equal(a->ev[i].opcode, b->ev[i].opcode);
        assert_int_equal(a->ev[i].code, b->ev[i].code);
        assert_int_equal(a->ev[i].len, b->ev[i].len);
        assert_memory_equal(a->ev[i].data, b->ev[i].data, a->ev[i].len);
    }
}

static void assert_event(const rec *r, size_t i, int type, int opcode, const void *data, size_t len)
{
    assert_true(i < r->n);
    assert_int_equal(r->ev[i].type, type);
    assert_int_equal(r->ev[i].opcode, opcode);
    assert_int_equal(r->ev[i].len, len);
    if (len)
        assert_memory_equal(r->ev[i].data, data, len);
}

#define assert_msg(r, i, op, lit) assert_event(r, i, EV_MESSAGE, op, lit, sizeof(lit) - 1)

/* ---- stream building and feeding ---------------------------------------- */

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d}; /* RFC 6455 5.7 */

static const ws_limits SERVER = {1 << 20, 1};
static const ws_limits LAX = {1 << 20, 0};

/* A byte stream of frames, with the offsets where frames end and whether a
 * fragmented message is in progress there. */
typedef struct {
    buf_t b;
    size_t bound[64];
    int in_msg_at[64];
    size_t nb;
    int in_msg;
} stream;

static void add_frame(stream *s, int op, int fin, const void *pl, size_t len, int masked)
{
    uint8_t h[WS_MAX_HEADER];
    size_t hl = masked ? ws_encode_header_masked(h, op, fin, len, MASK)
                       : ws_encode_header(h, op, fin, len);
    buf_append(&s->b, h, hl);
    size_t at = s->b.len;
    buf_append(&s->b, pl, len);
    if (masked)
        ws_mask((uint8_t *)s->b.data + at, len, MASK, 0);
    if (!(op & 0x8))
        s->in_msg = !fin;
    assert_true(s->nb < 64);
    s->bound[s->nb] = s->b.len;
    s->in_msg_at[s->nb++] = s->in_msg;
}

#define add_str(s, op, fin, lit, masked) add_frame(s, op, fin, lit, sizeof(lit) - 1, masked)

/* Feeds stream[0..n) in chunks ending at cuts[0..ncuts) (ascending, inside
 * (0, n)), each from its own exact-size heap copy so that ASan catches a
 * read past a chunk. Returns the first nonzero result, or 0. */
static int feed_cuts(ws_parser *p, const uint8_t *stream_bytes, size_t n, const size_t *cuts,
                     size_t ncuts, const ws_limits *lim, rec *r)
{
    size_t start = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        uint8_t *chunk = mem_alloc(end - start);
        memcpy(chunk, stream_bytes + start, end - start);
        int rc = ws_parser_feed(p, chunk, end - start, lim, &rec_cb, r);
        mem_free(chunk);
        if (rc)
            return rc;
        start = end;
    }
    return 0;
}

static int feed_whole(ws_parser *p, const void *bytes, size_t n, const ws_limits *lim, rec *r)
{
    return feed_cuts(p, bytes, n, NULL, 0, lim, r);
}

static int feed_bytewise(ws_parser *p, const void *bytes, size_t n, const ws_limits *lim, rec *r)
{
    const uint8_t *b = bytes;
    for (size_t i = 0; i < n; i++) {
        int rc = feed_cuts(p, b + i, 1, NULL, 0, lim, r);
        if (rc)
            return rc;
    }
    return 0;
}

#define FEED(p, lit, lim, r) feed_whole(p, lit, sizeof(lit) - 1, lim, r)

/* Runs a literal stream on a fresh parser, whole and byte by byte, checks
 * both give the same result and events and that an error leaves the parser
 * empty; returns the result. */
static int run_both(const void *bytes, size_t n, const ws_limits *lim)
{
    ws_parser p1 = {0}, p2 = {0};
    rec r1 = {0}, r2 = {0};
    int rc1 = feed_whole(&p1, bytes, n, lim, &r1);
    int rc2 = feed_bytewise(&p2, bytes, n, lim, &r2);
    assert_int_equal(rc1, rc2);
    assert_same_events(&r1, &r2);
    if (rc1 != 0) {
        assert_null(p1.pending);
        assert_null(p2.pending);
    }
    ws_parser_reset(&p1);
    ws_parser_reset(&p2);
    rec_free(&r1);
    rec_free(&r2);
    return rc1;
}

#define RUN(lit, lim) run_both(lit, sizeof(lit) - 1, lim)

/* ---- RFC 6455 section 5.7 examples -------------------------------------- */

static void test_rfc_hello_unmasked(void **state)
{
    (void)state;
    static const uint8_t frame[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    uint8_t h[WS_MAX_HEADER];
    assert_int_equal(ws_encode_header(h, WS_OP_TEXT, 1, 5), 2);
    assert_memory_equal(h, frame, 2);

    ws_parser p = {0};
    rec r = {0};
    assert_int_equal(feed_whole(&p, frame, sizeof(frame), &LAX, &r), 0);
    assert_int_equal(r.n, 1);
    assert_msg(&r, 0, WS_OP_TEXT, "Hello");
    assert_null(p.pending);
    rec_free(&r);

    /* The server role refuses it: clients must mask. */
    assert_int_equal(feed_whole(&p, frame, sizeof(frame), &SERVER, &r), WS_CLOSE_PROTOCOL);
    assert_int_equal(r.n, 0);
    rec_free(&r);
}

static void test_rfc_hello_masked(void **state)
{
    (void)state;
    uint8_t frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    uint8_t h[WS_MAX_HEADER];
    assert_int_equal(ws_encode_header_masked(h, WS_OP_TEXT, 1, 5, MASK), 6);
    assert_memory_equal(h, frame, 6);

    ws_parser p = {0};
    rec r = {0};
    /* Fed straight from our buffer: delivered from it, unmasked in place. */
    assert_int_equal(ws_parser_feed(&p, frame, sizeof(frame), &SERVER, &rec_cb, &r), 0);
    assert_int_equal(r.n, 1);
    assert_msg(&r, 0, WS_OP_TEXT, "Hello");
    assert_ptr_equal(r.last, frame + 6);
    assert_memory_equal(frame + 6, "Hello", 5);
    assert_null(p.pending);
    rec_free(&r);
}

static void test_rfc_fragmented_unmasked(void **state)
{
    (void)state;
    static const uint8_t frames[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
    ws_parser p = {0};
    rec r = {0};
    assert_int_equal(feed_whole(&p, frames, 5, &LAX, &r), 0);
    assert_int_equal(r.n, 0);
    assert_non_null(p.pending); /* "Hel" kept until the message ends */
    assert_int_equal(feed_whole(&p, frames + 5, 4, &LAX, &r), 0);
    assert_int_equal(r.n, 1);
    assert_msg(&r, 0, WS_OP_TEXT, "Hello");
    assert_null(p.pending);
    rec_free(&r);
    assert_int_equal(run_both(frames, sizeof(frames), &LAX), 0);
}

static void test_rfc_ping_pong(void **state)
{
    (void)state;
    static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    ws_parser p = {0};
    rec r = {0};
    assert_int_equal(feed_whole(&p, ping, sizeof(ping), &LAX, &r), 0);
    assert_int_equal(feed_whole(&p, pong, sizeof(pong), &LAX, &r), 0);
    assert_int_equal(r.n, 2);
    assert_event(&r, 0, EV_PING, 0, "Hello", 5);
    assert_event(&r, 1, EV_PONG, 0, "Hello", 5);
    assert_null(p.pending);
    rec_free(&r);
}

static void test_rfc_256_and_64k(void **state)
{
    (void)state;
    /* 256 bytes: 0x82 0x7E 0x0100; 64 KiB: 0x82 0x7F 0x0000000000010000. */
    static const uint8_t h256[] = {0x82, 0x7E, 0x01, 0x00};
    static const uint8_t h64k[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
    uint8_t h[WS_MAX_HEADER];
    assert_int_equal(ws_encode_header(h, WS_OP_BINARY, 1, 256), 4);
    assert_memory_equal(h, h256, 4);
    assert_int_equal(ws_encode_header(h, WS_OP_BINARY, 1, 65536), 10);
    assert_memory_equal(h, h64k, 10);

    size_t sizes[] = {256, 65536};
    const uint8_t *hdrs[] = {h256, h64k};
    size_t hlens[] = {sizeof(h256), sizeof(h64k)};
    for (int k = 0; k < 2; k++) {
        size_t n = hlens[k] + sizes[k];
        uint8_t *f = mem_alloc(n);
        memcpy(f, hdrs[k], hlens[k]);
        for (size_t i = 0; i < sizes[k]; i++)
            f[hlens[k] + i] = (uint8_t)(i * 7);
        ws_parser p = {0};
        rec r = {0};
        assert_int_equal(feed_whole(&p, f, n, &LAX, &r), 0);
        assert_int_equal(r.n, 1);
        assert_event(&r, 0, EV_MESSAGE, WS_OP_BINARY, f + hlens[k], sizes[k]);
        rec_free(&r);
        /* Cut after the header and in the middle of the payload. */
        size_t cuts[] = {hlens[k] - 1, hlens[k] + 100};
        assert_int_equal(feed_cuts(&p, f, n, cuts, 2, &LAX, &r), 0);
        assert_int_equal(r.n, 1);
        assert_event(&r, 0, EV_MESSAGE, WS_OP_BINARY, f + hlens[k], sizes[k]);
        assert_null(p.pending);
        rec_free(&r);
        mem_free(f);
    }
}

/* ---- header length classes ---------------------------------------------- */

static void test_encode_header_classes(void **state)
{
    (void)state;
    struct {
        uint64_t len;
        size_t hl;
        uint8_t bytes[10];
    } cases[] = {
        {0, 2, {0x82, 0}},
        {1, 2, {0x82, 1}},
        {125, 2, {0x82, 125}},
        {126, 4, {0x82, 126, 0x00, 0x7E}},
        {65535, 4, {0x82, 126, 0xFF, 0xFF}},
        {65536, 10, {0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
        {UINT64_C(0x0123456789ABCDEF), 10, {0x82, 127, 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF}},
        {UINT64_C(0x7FFFFFFFFFFFFFFF), 10, {0x82, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t h[WS_MAX_HEADER];
        assert_int_equal(ws_encode_header(h, WS_OP_BINARY, 1, cases[i].len), cases[i].hl);
        assert_memory_equal(h, cases[i].bytes, cases[i].hl);
        memset(h, 0, sizeof(h));
        assert_int_equal(ws_encode_header_masked(h, WS_OP_BINARY, 1, cases[i].len, MASK),
                         cases[i].hl + 4);
        assert_int_equal(h[0], cases[i].bytes[0]);
        assert_int_equal(h[1], cases[i].bytes[1] | 0x80);
        assert_memory_equal(h + 2, cases[i].bytes + 2, cases[i].hl - 2);
        assert_memory_equal(h + cases[i].hl, MASK, 4);
    }
    /* fin = 0 and every opcode go into the first byte. */
    uint8_t h[WS_MAX_HEADER];
    ws_encode_header(h, WS_OP_CONT, 0, 3);
    assert_int_equal(h[0], 0x00);
    ws_encode_header(h, WS_OP_PONG, 1, 3);
    assert_int_equal(h[0], 0x8A);
}

static void test_parse_length_classes(void **state)
{
    (void)state;
    size_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 65537, (size_t)1 << 20};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (int masked = 0; masked <= 1; masked++) {
            uint8_t *pl = mem_alloc(lens[i] + 1);
            for (size_t j = 0; j < lens[i]; j++)
                pl[j] = (uint8_t)('a' + j % 26);
            stream s = {0};
            add_frame(&s, WS_OP_TEXT, 1, pl, lens[i], masked);
            size_t hl = s.b.len - lens[i];
            assert_int_equal(hl, (lens[i] < 126 ? 2u : lens[i] < 65536 ? 4u : 10u) + (masked ? 4u : 0u));

            ws_parser p = {0};
            rec r = {0};
            const ws_limits *lim = masked ? &SERVER : &LAX;
            assert_int_equal(feed_whole(&p, s.b.data, s.b.len, lim, &r), 0);
            assert_int_equal(r.n, 1);
            assert_event(&r, 0, EV_MESSAGE, WS_OP_TEXT, pl, lens[i]);
            assert_null(p.pending);
            rec_free(&r);

            /* The same with the header split from the payload, and with
             * the input cut one byte before the end. */
            size_t cuts[] = {hl / 2, hl, s.b.len > hl + 1 ? s.b.len - 1 : hl};
            size_t ncuts = lens[i] >= 2 ? 3 : 2;
            assert_int_equal(feed_cuts(&p, (uint8_t *)s.b.data, s.b.len, cuts, ncuts, lim, &r), 0);
            assert_int_equal(r.n, 1);
            assert_event(&r, 0, EV_MESSAGE, WS_OP_TEXT, pl, lens[i]);
            assert_null(p.pending);
            rec_free(&r);

            /* Exactly at the limit is fine, one byte over is not. */
            ws_limits tight = {lens[i], masked};
            assert_int_equal(feed_whole(&p, s.b.data, s.b.len, &tight, &r), 0);
            assert_int_equal(r.n, 1);
            rec_free(&r);
            if (lens[i] > 0) {
                tight.max_message = lens[i] - 1;
                assert_int_equal(feed_whole(&p, s.b.data, hl, &tight, &r), WS_CLOSE_TOO_BIG);
                assert_null(p.pending);
            }
            buf_free(&s.b);
            mem_free(pl);
        }
    }
}

static void test_parse_large_length_header_only(void **state)
{
    (void)state;
    /* A 2^40-byte frame: refused from its header alone. */
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_encode_header_masked(h, WS_OP_BINARY, 1, UINT64_C(1) << 40, MASK);
    ws_parser p = {0};
    rec r = {0};
    assert_int_equal(feed_whole(&p, h, hl, &SERVER, &r), WS_CLOSE_TOO_BIG);
    assert_null(p.pending);
    /* Byte by byte: nothing happens until the header is complete. */
    for (size_t i = 0; i + 1 < hl; i++)
        assert_int_equal(feed_whole(&p, h + i, 1, &SERVER, &r), 0);
    assert_non_null(p.pending);
    assert_int_equal(feed_whole(&p, h + hl - 1, 1, &SERVER, &r), WS_CLOSE_TOO_BIG);
    assert_null(p.pending);
    assert_int_equal(r.n, 0);
    /* With no limit to speak of, the frame is accepted and waits for data. */
    ws_limits huge = {UINT64_MAX, 1};
    assert_int_equal(feed_whole(&p, h, hl, &huge, &r), 0);
    assert_non_null(p.pending);
    ws_parser_reset(&p);
    assert_null(p.pending);
    rec_free(&r);
}

/* ---- splitting ---------------------------------------------------------- */

/* A stream with a bit of everything: one-frame messages, a text message in
 * three fragments with a ping and a pong between them and a multibyte
 * character cut across fragments, 16-bit lengths, empty frames, a close. */
static void build_mixed(stream *s, int masked)
{
    uint8_t big[300];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(255 - i);
    add_str(s, WS_OP_TEXT, 1, "Hello", masked);
    add_str(s, WS_OP_TEXT, 0, "Hel", masked);
    add_str(s, WS_OP_PING, 1, "p1", masked);
    add_str(s, WS_OP_CONT, 0, "lo, w\xC3", masked);
    add_str(s, WS_OP_PONG, 1, "", masked);
    add_str(s, WS_OP_CONT, 1, "\xB6rld \xE2\x82\xAC", masked);
    add_frame(s, WS_OP_BINARY, 1, big, sizeof(big), masked);
    add_str(s, WS_OP_BINARY, 0, "", masked);
    add_str(s, WS_OP_CONT, 1, "\x00\xFF", masked);
    add_str(s, WS_OP_TEXT, 1, "", masked);
    add_str(s, WS_OP_CLOSE, 1, "\x03\xE8" "bye", masked);
}

static void check_mixed(const rec *r)
{
    assert_int_equal(r->n, 8);
    assert_msg(r, 0, WS_OP_TEXT, "Hello");
    assert_event(r, 1, EV_PING, 0, "p1", 2);
    assert_event(r, 2, EV_PONG, 0, "", 0);
    assert_msg(r, 3, WS_OP_TEXT, "Hello, w\xC3\xB6rld \xE2\x82\xAC");
    assert_int_equal(r->ev[4].type, EV_MESSAGE);
    assert_int_equal(r->ev[4].opcode, WS_OP_BINARY);
    assert_int_equal(r->ev[4].len, 300);
    assert_int_equal(r->ev[4].data[299], (uint8_t)(255 - 299));
    assert_msg(r, 5, WS_OP_BINARY, "\x00\xFF");
    assert_msg(r, 6, WS_OP_TEXT, "");
    assert_int_equal(r->ev[7].type, EV_CLOSE);
    assert_int_equal(r->ev[7].code, 1000);
    assert_int_equal(r->ev[7].len, 3);
    assert_memory_equal(r->ev[7].data, "bye", 3);
    assert_false(r->null_data);
}

static int idle_at(const stream *s, size_t off)
{
    if (off == 0)
        return 1;
    for (size_t i = 0; i < s->nb; i++)
        if (s->bound[i] == off)
            return !s->in_msg_at[i];
    return 0; /* inside a frame */
}

static void test_split_every_boundary(void **state)
{
    (void)state;
    for (int masked = 0; masked <= 1; masked++) {
        const ws_limits *lim = masked ? &SERVER : &LAX;
        stream s = {0};
        build_mixed(&s, masked);
        const uint8_t *b = (const uint8_t *)s.b.data;
        ws_parser p = {0};
        rec ref = {0};
        assert_int_equal(feed_whole(&p, b, s.b.len, lim, &ref), 0);
        check_mixed(&ref);
        assert_null(p.pending);

        /* One byte at a time, checking ownership after every byte. */
        rec r = {0};
        for (size_t i = 0; i < s.b.len; i++) {
            assert_int_equal(feed_whole(&p, b + i, 1, lim, &r), 0);
            if (idle_at(&s, i + 1))
                assert_null(p.pending);
            else
                assert_non_null(p.pending);
        }
        assert_same_events(&ref, &r);
        rec_free(&r);

        /* Every two-way split. */
        for (size_t cut = 1; cut < s.b.len; cut++) {
            assert_int_equal(feed_whole(&p, b, cut, lim, &r), 0);
            if (idle_at(&s, cut))
                assert_null(p.pending);
            else
                assert_non_null(p.pending);
            assert_int_equal(feed_whole(&p, b + cut, s.b.len - cut, lim, &r), 0);
            assert_null(p.pending);
            assert_same_events(&ref, &r);
            rec_free(&r);
        }
        rec_free(&ref);
        buf_free(&s.b);
    }
}

static void test_split_three_ways(void **state)
{
    (void)state;
    /* Every three-way split of the fragmented part (ping between fragments,
     * a character cut across them). */
    stream s = {0};
    add_str(&s, WS_OP_TEXT, 0, "a\xE2", 1);
    add_str(&s, WS_OP_PING, 1, "x", 1);
    add_str(&s, WS_OP_CONT, 0, "\x82", 1);
    add_str(&s, WS_OP_CONT, 1, "\xAC" "b", 1);
    const uint8_t *b = (const uint8_t *)s.b.data;
    ws_parser p = {0};
    rec ref = {0};
    assert_int_equal(feed_whole(&p, b, s.b.len, &SERVER, &ref), 0);
    assert_int_equal(ref.n, 2);
    assert_event(&ref, 0, EV_PING, 0, "x", 1);
    assert_msg(&ref, 1, WS_OP_TEXT, "a\xE2\x82\xAC" "b");
    for (size_t c1 = 1; c1 < s.b.len; c1++) {
        for (size_t c2 = c1 + 1; c2 < s.b.len; c2++) {
            rec r = {0};
            size_t cuts[] = {c1, c2};
            assert_int_equal(feed_cuts(&p, b, s.b.len, cuts, 2, &SERVER, &r), 0);
            assert_same_events(&ref, &r);
            assert_null(p.pending);
            rec_free(&r);
        }
    }
    rec_free(&ref);
    buf_free(&s.b);
}

static void test_several_frames_one_feed_in_place(void **state)
{
    (void)state;
    stream s = {0};
    add_str(&s, WS_OP_TEXT, 1, "one", 1);
    add_str(&s, WS_OP_BINARY, 1, "two", 1);
    add_str(&s, WS_OP_PING, 1, "", 1);
    add_str(&s, WS_OP_TEXT, 1, "three", 1);
    ws_parser p = {0};
    rec r = {0};
    uint8_t *b = (uint8_t *)s.b.data;
    assert_int_equal(ws_parser_feed(&p, b, s.b.len, &SERVER, &rec_cb, &r), 0);
    assert_int_equal(r.n, 4);
    assert_msg(&r, 0, WS_OP_TEXT, "one");
    assert_msg(&r, 1, WS_OP_BINARY, "two");
    assert_event(&r, 2, EV_PING, 0, "", 0);
    assert_msg(&r, 3, WS_OP_TEXT, "three");
    /* The last message came straight from the input buffer. */
    assert_ptr_equal(r.last, b + s.b.len - 5);
    assert_null(p.pending);
    rec_free(&r);
    buf_free(&s.b);
}

static void test_only_tail_is_copied(void **state)
{
    (void)state;
    stream s = {0};
    add_str(&s, WS_OP_TEXT, 1, "first", 1);
    add_str(&s, WS_OP_TEXT, 1, "second", 1);
    uint8_t *b = (uint8_t *)s.b.data;
    size_t first = s.bound[0];
    ws_parser p = {0};
    rec r = {0};
    /* Input 1: frame one whole plus three header bytes of frame two. */
    assert_int_equal(ws_parser_feed(&p, b, first + 3, &SERVER, &rec_cb, &r), 0);
    assert_int_equal(r.n, 1);
    assert_ptr_equal(r.last, b + first - 5); /* in place */
    assert_non_null(p.pending);
    /* Input 2: the rest of the header and the whole payload: the payload is
     * delivered in place too, only the header bytes were kept. */
    assert_int_equal(ws_parser_feed(&p, b + first + 3, s.b.len - first - 3, &SERVER, &rec_cb, &r), 0);
    assert_int_equal(r.n, 2);
    assert_msg(&r, 1, WS_OP_TEXT, "second");
    assert_ptr_equal(r.last, b + s.b.len - 6);
    assert_null(p.pending);
    rec_free(&r);
    buf_free(&s.b);
}

/* ---- fragmentation ------------------------------------------------------ */

static void test_fragments_with_ping(void **state)
{
    (void)state;
    stream s = {0};
    add_str(&s, WS_OP_TEXT, 0, "frag1 ", 1);
    add_str(&s, WS_OP_CONT, 0, "frag2 ", 1);
    add_str(&s, WS_OP_PING, 1, "are you there", 1);
    add_str(&s, WS_OP_CONT, 1, "frag3", 1);
    ws_parser p = {0};
    rec r = {0};
    uint8_t *b = (uint8_t *)s.b.data;
    /* Feed frame by frame: the ping comes out at once, mid-message. */
    size_t at = 0;
    for (size_t i = 0; i < s.nb; i++) {
        assert_int_equal(feed_whole(&p, b + at, s.bound[i] - at, &SERVER, &r), 0);
        at = s.bound[i];
        if (i < 2)
            assert_int_equal(r.n, 0);
        if (i == 2) {
            assert_int_equal(r.n, 1);
            assert_event(&r, 0, EV_PING, 0, "are you there", 13);
        }
        if (i < 3)
            assert_non_null(p.pending);
    }
    assert_int_equal(r.n, 2);
    assert_msg(&r, 1, WS_OP_TEXT, "frag1 frag2 frag3");
    assert_null(p.pending);
    rec_free(&r);
    buf_free(&s.b);
}

static void test_fragment_multibyte_split(void **state)
{
    (void)state;
    /* U+1F600 (F0 9F 98 80) with one byte per fragment. */
    stream s = {0};
    add_str(&s, WS_OP_TEXT, 0, "\xF0", 1);
    add_str(&s, WS_OP_CONT, 0, "\x9F", 1);
    add_str(&s, WS_OP_CONT, 0, "", 1);
    add_str(&s, WS_OP_CONT, 0, "\x98", 1);
    add_str(&s, WS_OP_CONT, 1, "\x80", 1);
    ws_parser p = {0};
    rec r = {0};
    assert_int_equal(feed_whole(&p, s.b.data, s.b.len, &SERVER, &r), 0);
    assert_int_equal(r.n, 1);
    assert_msg(&r, 0, WS_OP_TEXT, "\xF0\x9F\x98\x80");
    rec_free(&r);
    buf_free(&s.b);
    assert_int_equal(RUN("\x01\x02" "a\xE2" "\x00\x01\x82" "\x80\x02\xAC" "b", &LAX), 0);
}

static void test_fragmented_binary_and_empty(void **state)
{
    (void)state;
    stream s = {0};
    add_str(&s, WS_OP_BINARY, 0, "", 1);
    add_str(&s, WS_OP_CONT, 0, "", 1);
    add_str(&s, WS_OP_CONT, 1, "", 1);
    add_str(&s, WS_OP_TEXT, 0, "", 1);
    add_str(&s, WS_OP_CONT, 1, "", 1);
    add_str(&s, WS_OP_BINARY, 0, "\xFF\xFE", 1);
    add_str(&s, WS_OP_CONT, 1, "\xC0\x80", 1);
    ws_parser p = {0};
    rec r = {0};
    assert_int_equal(feed_whole(&p, s.b.data, s.b.len, &SERVER, &r), 0);
    assert_int_equal(r.n, 3);
    assert_msg(&r, 0, WS_OP_BINARY, "");
    assert_msg(&r, 1, WS_OP_TEXT, "");
    assert_msg(&r, 2, WS_OP_BINARY, "\xFF\xFE\xC0\x80");
    assert_false(r.null_data);
    assert_null(p.pending);
    rec_free(&r);
    buf_free(&s.b);
}

/* ---- protocol errors ---------------------------------------------------- */

static void test_error_rsv_bits(void **state)
{
    (void)state;
    assert_int_equal(RUN("\xC1\x00", &LAX), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\xA1\x00", &LAX), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\x91\x00", &LAX), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\xF1\x00", &LAX), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\xC9\x00", &LAX), WS_CLOSE_PROTOCOL); /* on a ping too */
    assert_int_equal(RUN("\x81\x01" "a" "\xC1\x00", &LAX), WS_CLOSE_PROTOCOL);
}

static void test_error_unknown_opcodes(void **state)
{
    (void)state;
    for (int op = 0; op < 16; op++) {
        uint8_t f[] = {(uint8_t)(0x80 | op), 0x00};
        int known = op <= 2 || (op >= 8 && op <= 10);
        int rc = run_both(f, sizeof(f), &LAX);
        if (op == WS_OP_CONT)
            assert_int_equal(rc, WS_CLOSE_PROTOCOL); /* no message to continue */
        else
            assert_int_equal(rc, known ? 0 : WS_CLOSE_PROTOCOL);
    }
}

static void test_error_control_frames(void **state)
{
    (void)state;
    /* FIN = 0 on a control frame. */
    assert_int_equal(RUN("\x09\x00", &LAX), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\x0A\x00", &LAX), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\x08\x02\x03\xE8", &LAX), WS_CLOSE_PROTOCOL);
    /* Payload over 125: refused from the header, before any payload. */
    assert_int_equal(RUN("\x89\x7E\x00\x7E", &LAX), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\x8A\x7E\x00\x7E", &LAX), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\x88\x7F\x00\x00\x00\x00\x00\x00\x00\x7E", &LAX), WS_CLOSE_PROTOCOL);
    /* 125 is fine, even with the 16-bit length form. */
    uint8_t f[4 + 125] = {0x89, 0x7E, 0x00, 0x7D};
    memset(f + 4, 'x', 125);
    assert_int_equal(run_both(f, sizeof(f), &LAX), 0);
}

static void test_error_unmasked_in_server_role(void **state)
{
    (void)state;
    assert_int_equal(RUN("\x81\x00", &SERVER), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\x89\x00", &SERVER), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\x81\x80\x01\x02\x03\x04", &SERVER), 0);
    /* The lax role takes both. */
    assert_int_equal(RUN("\x81\x00\x81\x80\x01\x02\x03\x04", &LAX), 0);
}

static void test_error_fragment_sequence(void **state)
{
    (void)state;
    /* CONT with nothing in progress, also after a finished message. */
    assert_int_equal(RUN("\x80\x01" "a", &LAX), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\x00\x01" "a", &LAX), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\x01\x01" "a" "\x80\x01" "b" "\x80\x01" "c", &LAX), WS_CLOSE_PROTOCOL);
    /* A new data message while one is in progress. */
    assert_int_equal(RUN("\x01\x01" "a" "\x81\x01" "b", &LAX), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\x01\x01" "a" "\x82\x01" "b", &LAX), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\x02\x01" "a" "\x01\x01" "b", &LAX), WS_CLOSE_PROTOCOL);
    /* Events before the error stand. */
    ws_parser p = {0};
    rec r = {0};
    assert_int_equal(FEED(&p, "\x81\x01" "a" "\x89\x00" "\x01\x01" "b" "\x82\x00", &LAX, &r),
                     WS_CLOSE_PROTOCOL);
    assert_int_equal(r.n, 2);
    assert_msg(&r, 0, WS_OP_TEXT, "a");
    assert_int_equal(r.ev[1].type, EV_PING);
    assert_null(p.pending);
    rec_free(&r);
}

static void test_error_length_top_bit(void **state)
{
    (void)state;
    assert_int_equal(RUN("\x82\x7F\x80\x00\x00\x00\x00\x00\x00\x00", &LAX), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\x82\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x01\x02\x03\x04", &SERVER),
                     WS_CLOSE_PROTOCOL);
    ws_limits any = {UINT64_MAX, 0};
    assert_int_equal(RUN("\x82\x7F\x80\x00\x00\x00\x00\x00\x00\x01", &any), WS_CLOSE_PROTOCOL);
}

static void test_close_frames(void **state)
{
    (void)state;
    ws_parser p = {0};
    rec r = {0};
    assert_int_equal(FEED(&p, "\x88\x00", &LAX, &r), 0);
    assert_int_equal(FEED(&p, "\x88\x02\x03\xE8", &LAX, &r), 0);
    assert_int_equal(FEED(&p, "\x88\x05\x0F\xA0" "bye", &LAX, &r), 0);
    assert_int_equal(FEED(&p, "\x88\x84\x01\x02\x03\x04\x02\xEB\x6B\x6D", &SERVER, &r), 0);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.ev[0].type, EV_CLOSE);
    assert_int_equal(r.ev[0].code, WS_CLOSE_NO_STATUS);
    assert_int_equal(r.ev[0].len, 0);
    assert_int_equal(r.ev[1].code, 1000);
    assert_int_equal(r.ev[1].len, 0);
    assert_int_equal(r.ev[2].code, 4000);
    assert_int_equal(r.ev[2].len, 3);
    assert_memory_equal(r.ev[2].data, "bye", 3);
    assert_int_equal(r.ev[3].code, 1001); /* 03 E9 ^ 01 02 */
    assert_memory_equal(r.ev[3].data, "hi", 2);
    assert_false(r.null_data);
    rec_free(&r);

    /* A close between fragments is delivered at once. */
    assert_int_equal(FEED(&p, "\x01\x01" "a" "\x88\x02\x03\xE9", &LAX, &r), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].code, 1001);
    ws_parser_reset(&p);
    rec_free(&r);

    /* Body of one byte; reason that is not UTF-8. */
    assert_int_equal(RUN("\x88\x01\x03", &LAX), WS_CLOSE_PROTOCOL);
    assert_int_equal(RUN("\x88\x04\x03\xE8\xC0\xAF", &LAX), WS_CLOSE_INVALID_DATA);
    assert_int_equal(RUN("\x88\x03\x03\xE8\xE2", &LAX), WS_CLOSE_INVALID_DATA);
    assert_int_equal(RUN("\x88\x05\x03\xE8\xED\xA0\x80", &LAX), WS_CLOSE_INVALID_DATA);
}

static void test_close_codes(void **state)
{
    (void)state;
    static const unsigned valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                     1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    static const unsigned invalid[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1016,
                                       1100, 2000, 2999, 5000, 5001, 65535};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        uint8_t f[] = {0x88, 0x02, (uint8_t)(valid[i] >> 8), (uint8_t)valid[i]};
        ws_parser p = {0};
        rec r = {0};
        assert_int_equal(feed_whole(&p, f, sizeof(f), &LAX, &r), 0);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.ev[0].code, valid[i]);
        rec_free(&r);
    }
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        uint8_t f[] = {0x88, 0x02, (uint8_t)(invalid[i] >> 8), (uint8_t)invalid[i]};
        assert_int_equal(run_both(f, sizeof(f), &LAX), WS_CLOSE_PROTOCOL);
    }
}

/* ---- UTF-8 -------------------------------------------------------------- */

static void test_text_invalid_utf8(void **state)
{
    (void)state;
    /* One frame: whole, in place. */
    assert_int_equal(RUN("\x81\x01\xFF", &LAX), WS_CLOSE_INVALID_DATA);
    assert_int_equal(RUN("\x81\x02\xC0\xAF", &LAX), WS_CLOSE_INVALID_DATA);
    assert_int_equal(RUN("\x81\x03\xED\xA0\x80", &LAX), WS_CLOSE_INVALID_DATA);
    assert_int_equal(RUN("\x81\x02\xE2\x82", &LAX), WS_CLOSE_INVALID_DATA); /* truncated */
    /* Fragmented: fails at the fragment that breaks it, before the end. */
    assert_int_equal(RUN("\x01\x02" "a\xFF", &LAX), WS_CLOSE_INVALID_DATA);
    assert_int_equal(RUN("\x01\x01\xE2" "\x00\x01\x28", &LAX), WS_CLOSE_INVALID_DATA);
    /* ... or at the end, when it stops inside a character. */
    ws_parser p = {0};
    rec r = {0};
    assert_int_equal(FEED(&p, "\x01\x01" "a" "\x00\x01\xE2", &LAX, &r), 0);
    assert_int_equal(FEED(&p, "\x80\x01\x82", &LAX, &r), WS_CLOSE_INVALID_DATA);
    assert_int_equal(r.n, 0);
    assert_null(p.pending);
    /* A frame cut by the end of the input is checked as it arrives. */
    assert_int_equal(FEED(&p, "\x81\x0A" "ab\xFF", &LAX, &r), WS_CLOSE_INVALID_DATA);
    assert_null(p.pending);
    rec_free(&r);
    /* The same bytes in binary messages are fine. */
    assert_int_equal(RUN("\x82\x01\xFF", &LAX), 0);
    assert_int_equal(RUN("\x02\x01\xE2" "\x80\x01\x28", &LAX), 0);
    assert_int_equal(RUN("\x82\x03\xED\xA0\x80", &LAX), 0);
    /* A ping with junk is not text. */
    assert_int_equal(RUN("\x89\x01\xFF", &LAX), 0);
}

static void test_utf8_table(void **state)
{
    (void)state;
    static const char *const good[] = {
        "", "a", "\x7F", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xE1\x80\x80", "\xEC\xBF\xBF",
        "\xED\x80\x80", "\xED\x9F\xBF", "\xEE\x80\x80", "\xEF\xBF\xBF", "\xF0\x90\x80\x80",
        "\xF1\x80\x80\x80", "\xF3\xBF\xBF\xBF", "\xF4\x8F\xBF\xBF",
        "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5", /* kosme */
        "0123456789abcdef\xC3\xA9", ("0123456\xC3\xA9" "89abcdefghijklmnop"),
    };
    static const char *const bad[] = {
        "\x80", "\xBF", "\xC0\x80", "\xC1\xBF", "\xC2", "\xC2\x7F", "\xC2\xC0", "\xE0\x80\x80",
        "\xE0\x9F\xBF", "\xE2\x82", "\xED\xA0\x80", "\xED\xBF\xBF", "\xF0\x80\x80\x80",
        "\xF0\x8F\xBF\xBF", "\xF0\x90\x80", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xF8\x88\x80\x80\x80",
        "\xFE", "\xFF", "abcdefgh\x80", "abcdefghijklmnopq\xE2\x82", ("\xE2\x82" "abcdefghijk"),
        "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80\x65\x64\x69\x74\x65\x64",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(ws_utf8_valid((const uint8_t *)good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(ws_utf8_valid((const uint8_t *)bad[i], strlen(bad[i])));
    /* NUL is a character like any other. */
    assert_true(ws_utf8_valid((const uint8_t *)"a\0b", 3));
}

/* An independent, slow decoder to compare against. */
static int ref_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i];
        size_t k;
        uint32_t min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        if (n - i - 1 < k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            c = c << 6 | (s[i + j] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

static void test_utf8_exhaustive(void **state)
{
    (void)state;
    uint8_t b[4];
    for (unsigned x = 0; x < 0x100; x++) {
        b[0] = (uint8_t)x;
        assert_int_equal(ws_utf8_valid(b, 1), ref_utf8_valid(b, 1));
    }
    for (unsigned x = 0; x < 0x10000; x++) {
        b[0] = (uint8_t)(x >> 8), b[1] = (uint8_t)x;
        assert_int_equal(ws_utf8_valid(b, 2), ref_utf8_valid(b, 2));
    }
    for (unsigned x = 0; x < 0x1000000; x++) {
        b[0] = (uint8_t)(x >> 16), b[1] = (uint8_t)(x >> 8), b[2] = (uint8_t)x;
        if (ws_utf8_valid(b, 3) != ref_utf8_valid(b, 3))
            fail_msg("3-byte mismatch at %02x %02x %02x", b[0], b[1], b[2]);
    }
    /* Four bytes: every lead, second and third byte from F0 up, last byte
     * at the edges. */
    static const uint8_t last[] = {0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xFF};
    for (unsigned x = 0xF00000; x < 0x1000000; x++) {
        b[0] = (uint8_t)(x >> 16), b[1] = (uint8_t)(x >> 8), b[2] = (uint8_t)x;
        for (size_t j = 0; j < sizeof(last); j++) {
            b[3] = last[j];
            if (ws_utf8_valid(b, 4) != ref_utf8_valid(b, 4))
                fail_msg("4-byte mismatch at %02x %02x %02x %02x", b[0], b[1], b[2], b[3]);
        }
    }
}

/* ---- size limits -------------------------------------------------------- */

static void test_too_big_single_frame(void **state)
{
    (void)state;
    ws_limits lim = {100, 1};
    uint8_t h[WS_MAX_HEADER];
    ws_parser p = {0};
    rec r = {0};
    /* The header alone is enough to refuse it. */
    size_t hl = ws_encode_header_masked(h, WS_OP_TEXT, 1, 101, MASK);
    assert_int_equal(feed_whole(&p, h, hl, &lim, &r), WS_CLOSE_TOO_BIG);
    assert_null(p.pending);
    hl = ws_encode_header_masked(h, WS_OP_BINARY, 0, 5000, MASK);
    assert_int_equal(feed_whole(&p, h, hl, &lim, &r), WS_CLOSE_TOO_BIG);
    /* Exactly the limit passes. */
    uint8_t pl[100];
    memset(pl, 'z', sizeof(pl));
    stream s = {0};
    add_frame(&s, WS_OP_TEXT, 1, pl, 100, 1);
    assert_int_equal(feed_whole(&p, s.b.data, s.b.len, &lim, &r), 0);
    assert_int_equal(r.n, 1);
    rec_free(&r);
    buf_free(&s.b);
}

static void test_too_big_fragments(void **state)
{
    (void)state;
    ws_limits lim = {100, 1};
    uint8_t pl[60];
    memset(pl, 'q', sizeof(pl));
    stream s = {0};
    add_frame(&s, WS_OP_TEXT, 0, pl, 60, 1);
    add_frame(&s, WS_OP_CONT, 0, pl, 40, 1);
    add_str(&s, WS_OP_PING, 1, "ok", 1);
    add_frame(&s, WS_OP_CONT, 1, pl, 0, 1); /* 100: still fine */
    add_frame(&s, WS_OP_BINARY, 0, pl, 60, 1);
    size_t before_bad = s.b.len;
    add_frame(&s, WS_OP_CONT, 1, pl, 41, 1); /* 101: too big */
    ws_parser p = {0};
    rec r = {0};
    /* Fed up to the header of the offending fragment only. */
    assert_int_equal(feed_whole(&p, s.b.data, before_bad + 6, &lim, &r), WS_CLOSE_TOO_BIG);
    assert_int_equal(r.n, 2);
    assert_event(&r, 0, EV_PING, 0, "ok", 2);
    assert_int_equal(r.ev[1].len, 100);
    assert_null(p.pending);
    rec_free(&r);
    assert_int_equal(run_both(s.b.data, s.b.len, &lim), WS_CLOSE_TOO_BIG);
    buf_free(&s.b);
}

/* ---- callbacks ---------------------------------------------------------- */

static void test_callback_stop(void **state)
{
    (void)state;
    stream s = {0};
    add_str(&s, WS_OP_TEXT, 1, "a", 1);
    add_str(&s, WS_OP_TEXT, 0, "b", 1);
    add_str(&s, WS_OP_PING, 1, "c", 1);
    add_str(&s, WS_OP_PONG, 1, "d", 1);
    add_str(&s, WS_OP_CONT, 1, "e", 1);
    add_str(&s, WS_OP_CLOSE, 1, "", 1);
    add_str(&s, WS_OP_TEXT, 1, "never", 1);
    /* Stopping at each event in turn: nothing after it is delivered, and
     * the parser is left empty, even mid-message. */
    for (size_t stop = 1; stop <= 5; stop++) {
        for (int bytewise = 0; bytewise <= 1; bytewise++) {
            ws_parser p = {0};
            rec r = {0};
            r.stop_at = stop;
            int rc = bytewise ? feed_bytewise(&p, s.b.data, s.b.len, &SERVER, &r)
                              : feed_whole(&p, s.b.data, s.b.len, &SERVER, &r);
            assert_int_equal(rc, WS_STOPPED);
            assert_int_equal(r.n, stop);
            assert_null(p.pending);
            rec_free(&r);
        }
    }
    buf_free(&s.b);
}

static void test_null_callbacks(void **state)
{
    (void)state;
    ws_callbacks none = {0};
    ws_parser p = {0};
    stream s = {0};
    build_mixed(&s, 1);
    assert_int_equal(ws_parser_feed(&p, (uint8_t *)s.b.data, s.b.len, &SERVER, &none, NULL), 0);
    assert_null(p.pending);
    buf_free(&s.b);
}

/* ---- memory ownership --------------------------------------------------- */

static void test_ownership(void **state)
{
    (void)state;
    ws_parser p = {0};
    rec r = {0};
    /* Nothing fed, nothing owned; an empty feed changes nothing. */
    assert_int_equal(ws_parser_feed(&p, NULL, 0, &SERVER, &rec_cb, &r), 0);
    assert_null(p.pending);
    /* One header byte. */
    assert_int_equal(FEED(&p, "\x81", &LAX, &r), 0);
    assert_non_null(p.pending);
    ws_parser_reset(&p);
    assert_null(p.pending);
    ws_parser_reset(&p); /* twice is harmless */
    /* Part of a payload, then the rest. */
    assert_int_equal(FEED(&p, "\x81\x03" "ab", &LAX, &r), 0);
    assert_non_null(p.pending);
    assert_int_equal(ws_parser_feed(&p, NULL, 0, &SERVER, &rec_cb, &r), 0);
    assert_non_null(p.pending);
    assert_int_equal(FEED(&p, "c", &LAX, &r), 0);
    assert_null(p.pending);
    /* A fragmented message holds memory until its last fragment. */
    assert_int_equal(FEED(&p, "\x01\x01" "a", &LAX, &r), 0);
    assert_non_null(p.pending);
    assert_int_equal(FEED(&p, "\x89\x00", &LAX, &r), 0);
    assert_non_null(p.pending);
    assert_int_equal(FEED(&p, "\x80\x01" "b", &LAX, &r), 0);
    assert_null(p.pending);
    /* Reset mid-message: the next CONT has nothing to continue. */
    assert_int_equal(FEED(&p, "\x01\x01" "a" "\x00\x02" "b", &LAX, &r), 0);
    ws_parser_reset(&p);
    assert_null(p.pending);
    assert_int_equal(FEED(&p, "\x80\x00", &LAX, &r), WS_CLOSE_PROTOCOL);
    /* And a reset parser parses from scratch. */
    assert_int_equal(FEED(&p, "\x81\x02" "ok", &LAX, &r), 0);
    assert_int_equal(r.n, 4);
    assert_msg(&r, 0, WS_OP_TEXT, "abc");
    assert_event(&r, 1, EV_PING, 0, "", 0);
    assert_msg(&r, 2, WS_OP_TEXT, "ab");
    assert_msg(&r, 3, WS_OP_TEXT, "ok");
    rec_free(&r);
}

/* ---- encoders ----------------------------------------------------------- */

static void test_mask(void **state)
{
    (void)state;
    uint8_t a[37], b[37], orig[37];
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = b[i] = orig[i] = (uint8_t)(i * 13 + 1);
    ws_mask(a, sizeof(a), MASK, 0);
    for (size_t i = 0; i < sizeof(a); i++)
        assert_int_equal(a[i], orig[i] ^ MASK[i % 4]);
    /* In pieces, each starting at its offset, gives the same. */
    ws_mask(b, 5, MASK, 0);
    ws_mask(b + 5, 11, MASK, 5);
    ws_mask(b + 16, 21, MASK, 16);
    assert_memory_equal(a, b, sizeof(a));
    ws_mask(a, sizeof(a), MASK, 0);
    assert_memory_equal(a, orig, sizeof(a));
    ws_mask(a, 0, MASK, 3);
    assert_memory_equal(a, orig, sizeof(a));
}

static void test_encode_close(void **state)
{
    (void)state;
    uint8_t out[2 + 125];
    assert_int_equal(ws_encode_close(out, WS_CLOSE_NO_STATUS, "ignored"), 2);
    assert_memory_equal(out, "\x88\x00", 2);
    assert_int_equal(ws_encode_close(out, WS_CLOSE_NORMAL, NULL), 4);
    assert_memory_equal(out, "\x88\x02\x03\xE8", 4);
    assert_int_equal(ws_encode_close(out, WS_CLOSE_TOO_BIG, "too big"), 11);
    assert_memory_equal(out, "\x88\x09\x03\xF1" "too big", 11);

    /* Truncated to 123 bytes... */
    char longr[201];
    memset(longr, 'r', 200);
    longr[200] = 0;
    assert_int_equal(ws_encode_close(out, WS_CLOSE_POLICY, longr), 127);
    assert_int_equal(out[1], 125);
    /* ... before a character that would straddle the limit. */
    memset(longr, 'r', 122);
    memcpy(longr + 122, "\xE2\x82\xAC", 4);
    assert_int_equal(ws_encode_close(out, WS_CLOSE_POLICY, longr), 2 + 2 + 122);
    assert_true(ws_utf8_valid(out + 4, 122));
    memcpy(longr + 121, "\xE2\x82\xAC", 4);
    assert_int_equal(ws_encode_close(out, WS_CLOSE_POLICY, longr), 2 + 2 + 121);
    memcpy(longr + 120, "\xE2\x82\xAC", 4);
    assert_int_equal(ws_encode_close(out, WS_CLOSE_POLICY, longr), 2 + 2 + 123);

    /* What we encode, we parse. */
    ws_parser p = {0};
    rec r = {0};
    size_t n = ws_encode_close(out, WS_CLOSE_GOING_AWAY, "bye \xC3\xA9");
    assert_int_equal(ws_parser_feed(&p, out, n, &LAX, &rec_cb, &r), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].code, WS_CLOSE_GOING_AWAY);
    assert_int_equal(r.ev[0].len, 6);
    assert_memory_equal(r.ev[0].data, "bye \xC3\xA9", 6);
    rec_free(&r);
}

/* ---- handshake ---------------------------------------------------------- */

static void test_accept_key_rfc(void **state)
{
    (void)state;
    char out[WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    /* RFC 6455 1.3 gives the digest, 0xb3 0x7a 0x4f 0x2c 0xc0 0x62 0x4f 0x16
     * 0x90 0xf6 0x46 0x06 0xcf 0x38 0x59 0x45 0xb2 0xbe 0xc4 0xea, and this
     * base64 of it. */
    assert_int_equal(ws_accept_key(key, strlen(key), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* The key need not be NUL-terminated. */
    char buf[40];
    memcpy(buf, "dGhlIHNhbXBsZSBub25jZQ==XYZ", 27);
    assert_int_equal(ws_accept_key(buf, 24, out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* The example on Wikipedia's WebSocket page. */
    key = "x3JJHMbDL1EzLkh9GBhXDw==";
    assert_int_equal(ws_accept_key(key, strlen(key), out), 0);
    assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

static void test_accept_key_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",       /* 23 characters */
        "dGhlIHNhbXBsZSBub25jZQ===",     /* 25 */
        " dGhlIHNhbXBsZSBub25jZQ==",     /* white space */
        "dGhlIHNhbXBsZSBub25jZQ== ",
        "dGhlIHNhbXBsZSBub25jZ===",      /* 24 chars, 15 bytes */
        "dGhlIHNhbXBsZSBub25jZQQ=",      /* 17 bytes */
        "dGhlIHNhbXBsZSBub25jZQQQ",      /* 18 bytes */
        "dGhlIHNhbXBsZSBub25jZR==",      /* stray bits after the 16th byte */
        "dGhlIHNhbXBsZSBub25jZ*==",      /* not base64 */
        "dGhlIHNhbXBs=SBub25jZQ==",      /* padding inside */
        "dGhlIHNhbXBsZSBub25j\nQ==",
        "================",
        "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[WS_ACCEPT_LEN + 1] = "untouched";
        assert_int_equal(ws_accept_key(bad[i], strlen(bad[i]), out), ERR_MALFORMED);
        assert_string_equal(out, "untouched");
    }
    char out[WS_ACCEPT_LEN + 1];
    assert_int_equal(ws_accept_key(NULL, 0, out), ERR_MALFORMED);
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 22, out), ERR_MALFORMED);
    /* An embedded NUL at the right length. */
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub2\0jZQ==", 24, out), ERR_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_hello_unmasked),
        cmocka_unit_test(test_rfc_hello_masked),
        cmocka_unit_test(test_rfc_fragmented_unmasked),
        cmocka_unit_test(test_rfc_ping_pong),
        cmocka_unit_test(test_rfc_256_and_64k),
        cmocka_unit_test(test_encode_header_classes),
        cmocka_unit_test(test_parse_length_classes),
        cmocka_unit_test(test_parse_large_length_header_only),
        cmocka_unit_test(test_split_every_boundary),
        cmocka_unit_test(test_split_three_ways),
        cmocka_unit_test(test_several_frames_one_feed_in_place),
        cmocka_unit_test(test_only_tail_is_copied),
        cmocka_unit_test(test_fragments_with_ping),
        cmocka_unit_test(test_fragment_multibyte_split),
        cmocka_unit_test(test_fragmented_binary_and_empty),
        cmocka_unit_test(test_error_rsv_bits),
        cmocka_unit_test(test_error_unknown_opcodes),
        cmocka_unit_test(test_error_control_frames),
        cmocka_unit_test(test_error_unmasked_in_server_role),
        cmocka_unit_test(test_error_fragment_sequence),
        cmocka_unit_test(test_error_length_top_bit),
        cmocka_unit_test(test_close_frames),
        cmocka_unit_test(test_close_codes),
        cmocka_unit_test(test_text_invalid_utf8),
        cmocka_unit_test(test_utf8_table),
        cmocka_unit_test(test_utf8_exhaustive),
        cmocka_unit_test(test_too_big_single_frame),
        cmocka_unit_test(test_too_big_fragments),
        cmocka_unit_test(test_callback_stop),
        cmocka_unit_test(test_null_callbacks),
        cmocka_unit_test(test_ownership),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_encode_close),
        cmocka_unit_test(test_accept_key_rfc),
        cmocka_unit_test(test_accept_key_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
