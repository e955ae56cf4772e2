/* fuzz_ws.c - libFuzzer target for the WebSocket codec (src/ws/ws_codec.c).
 *
 * Input layout: byte 0 chooses how the stream is cut (bits 0-5: chunk size,
 * bit 6: require_mask, bit 7: varying chunk sizes), byte 1 the message limit
 * (x4, so 0..1020 bytes and TOO_BIG is easy to reach), byte 2 the event at
 * which a callback asks to stop (0: never); the rest is the byte stream.
 *
 * The stream is parsed twice: in one feed, and cut into chunks that each
 * live in their own exact-size heap block (so ASan sees any read past a
 * chunk). Both runs must give the same result and the same events, every
 * event must honour the header's promises (text is UTF-8, sizes within the
 * limits, close codes valid), and the parser must own nothing after an error
 * or a reset. Any breach aborts.
 *
 * Build and run (corpus: tests/fuzz/corpus/ws, dictionary: tests/fuzz/ws.dict;
 * give the fuzzer a scratch copy of the corpus, it writes new inputs there):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *     $(pkg-config --cflags libcrypto) tests/fuzz/fuzz_ws.c src/ws/ws_codec.c \
 *     src/ws/ws_handshake.c src/util/mem.c src/util/buf.c src/util/b64.c \
 *     $(pkg-config --libs libcrypto) -o /tmp/fuzz_ws
 *   cp -r tests/fuzz/corpus/ws /tmp/ws-corpus
 *   /tmp/fuzz_ws -dict=tests/fuzz/ws.dict -max_total_time=30 /tmp/ws-corpus */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util/mem.h"
#include "ws/ws_codec.h"
#include "ws/ws_handshake.h"

typedef struct {
    uint64_t hash;
    size_t events;
    size_t stop_at;
    uint64_t max_message;
} fuzz_run;


static void fuzz_mix(fuzz_run *r, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        r->hash = (r->hash ^ b[i]) * UINT64_C(0x100000001b3);
}

static int fuzz_event(fuzz_run *r, int type, int extra, const void *data, size_t len)
{
    FUZZ_CHECK(data != NULL);
    fuzz_mix(r, &type, sizeof(type));
    fuzz_mix(r, &extra, sizeof(extra));
    fuzz_mix(r, &len, sizeof(len));
    fuzz_mix(r, data, len);
    r->events++;
    return r->stop_at != 0 && r->events == r->stop_at;
}

static int fuzz_on_message(void *ud, int opcode, uint8_t *data, size_t len)
{
    fuzz_run *r = ud;
    FUZZ_CHECK(opcode == WS_OP_TEXT || opcode == WS_OP_BINARY);
    FUZZ_CHECK(len <= r->max_message);
    if (opcode == WS_OP_TEXT)
        FUZZ_CHECK(ws_utf8_valid(data, len));
    if (len)
        data[0] ^= 0xFF; /* the callee may write to it */
    return fuzz_event(r, 1, opcode, data, len);
}

static int fuzz_on_ping(void *ud, uint8_t *data, size_t len)
{
    FUZZ_CHECK(len <= 125);
    return fuzz_event(ud, 2, 0, data, len);
}

static int fuzz_on_pong(void *ud, uint8_t *data, size_t len)
{
    FUZZ_CHECK(len <= 125);
    return fuzz_event(ud, 3, 0, data, len);
}

static int fuzz_on_close(void *ud, uint16_t code, const char *reason, size_t len)
{
    FUZZ_CHECK(len <= 123);
    FUZZ_CHECK(ws_utf8_valid((const uint8_t *)reason, len));
    FUZZ_CHECK(code == WS_CLOSE_NO_STATUS ? len == 0
                                          : (code >= 1000 && code <= 1003) ||
                                                (code >= 1007 && code <= 1014) ||
                                                (code >= 3000 && code <= 4999));
    return fuzz_event(ud, 4, code, reason, len);
}

static const ws_callbacks fuzz_cb = {fuzz_on_message, fuzz_on_ping, fuzz_on_pong, fuzz_on_close};

/* Feeds one chunk from an exact-size copy. */
static int fuzz_feed(ws_parser *p, const uint8_t *data, size_t n, const ws_limits *lim,
                     fuzz_run *r)
{
    uint8_t *copy = mem_alloc(n);
    if (n)
        memcpy(copy, data, n);
    int rc = ws_parser_feed(p, copy, n, lim, &fuzz_cb, r);
    mem_free(copy);
    return rc;
}

static void fuzz_check_result(const ws_parser *p, int rc)
{
    FUZZ_CHECK(rc == 0 || rc == WS_STOPPED || rc == WS_CLOSE_PROTOCOL ||
               rc == WS_CLOSE_INVALID_DATA || rc == WS_CLOSE_TOO_BIG);
    if (rc != 0)
        FUZZ_CHECK(p->pending == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint8_t cfg = data[0];
    ws_limits lim = {(uint64_t)data[1] * 4, (cfg >> 6) & 1};
    size_t stop_at = data[2];
    data += 3;
    size = size - 3;

    /* Run 1: the whole stream at once. */
    ws_parser p1 = {0};
    fuzz_run r1 = {UINT64_C(0xcbf29ce484222325), 0, stop_at, lim.max_message};
    int rc1 = fuzz_feed(&p1, data, size, &lim, &r1);
    fuzz_check_result(&p1, rc1);

    /* Run 2: in chunks. */
    ws_parser p2 = {0};
    fuzz_run r2 = {UINT64_C(0xcbf29ce484222325), 0, stop_at, lim.max_message};
    uint32_t rnd = cfg * 2654435761u + 1;
    size_t off = 0;
    int rc2 = 0;
    do {
        size_t chunk = (cfg & 0x3F) + 1;
        if (cfg & 0x80) {
            rnd = rnd * 1103515245u + 12345u;
            chunk = (rnd >> 16) % (2 * chunk + 1); /* empty chunks too */
        }
        if (chunk > size - off)
            chunk = size - off;
        rc2 = fuzz_feed(&p2, data + off, chunk, &lim, &r2);
        fuzz_check_result(&p2, rc2);
        off += chunk;
    } while (rc2 == 0 && off < size);

    FUZZ_CHECK(rc1 == rc2);
    FUZZ_CHECK(r1.events == r2.events);
    FUZZ_CHECK(r1.hash == r2.hash);

    ws_parser_reset(&p1);
    ws_parser_reset(&p2);
    FUZZ_CHECK(p1.pending == NULL && p2.pending == NULL);

    /* The handshake key check on the same bytes: must not crash, and a key
     * it takes must give a 28-character answer. */
    if (size >= 24) {
        char out[WS_ACCEPT_LEN + 1];
        if (ws_accept_key((const char *)data, 24, out) == 0)
            FUZZ_CHECK(strlen(out) == WS_ACCEPT_LEN);
    }
    return 0;
}
