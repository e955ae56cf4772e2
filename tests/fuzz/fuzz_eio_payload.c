/* fuzz_eio_payload.c - libFuzzer target for the Engine.IO codec
 * (src/eio/eio_packet.c).
 *
 * The input is a polling payload body. It is decoded from its own
 * exact-size heap block (so ASan sees any read past it); then:
 *   - a refused body (EIO_PACKET_EMALFORMED) must not have reached the
 *     callback, and must be left byte for byte as it was;
 *   - every delivered packet must honour the header (type in range, binary
 *     only for messages, data inside the body);
 *   - the packets, encoded again with eio_payload_append, must decode to
 *     the same packets (base64 is not always canonical in the input, so the
 *     bytes may differ, the packets may not);
 *   - a callback that stops at packet k stops the decode there.
 * The input is also given to eio_packet_decode as one WebSocket text frame.
 * Any breach aborts.
 *
 * Build and run (corpus: tests/fuzz/corpus/eio_payload, dictionary:
 * tests/fuzz/eio.dict; give the fuzzer a scratch copy of the corpus):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *     $(pkg-config --cflags libcrypto) tests/fuzz/fuzz_eio_payload.c \
 *     src/eio/eio_packet.c src/util/mem.c src/util/buf.c src/util/b64.c \
 *     $(pkg-config --libs libcrypto) -o /tmp/fuzz_eio
 *   cp -r tests/fuzz/corpus/eio_payload /tmp/eio-corpus
 *   /tmp/fuzz_eio -dict=tests/fuzz/eio.dict -max_total_time=30 /tmp/eio-corpus */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "eio/eio_packet.h"
#include "util/mem.h"


typedef struct {
    const uint8_t *body;  /* bounds the packets' data must lie in */
    size_t n;
    size_t count;         /* packets delivered */
    size_t stop_at;       /* return 1 at this packet (0: never) */
    buf_t list;           /* the packets, serialized for comparison */
    buf_t reencoded;      /* the packets, appended to a new payload */
} fuzz_run;

static int on_packet(void *ud, const eio_packet *p)
{
    fuzz_run *r = ud;
    FUZZ_CHECK(p->type >= EIO_OPEN && p->type <= EIO_NOOP);
    FUZZ_CHECK(p->binary == 0 || p->binary == 1);
    FUZZ_CHECK(!p->binary || p->type == EIO_MESSAGE);
    if (r->body != NULL) {
        FUZZ_CHECK(p->data >= r->body && p->data + p->len <= r->body + r->n);
    }
    uint8_t head[2] = {(uint8_t)p->type, (uint8_t)p->binary};
    buf_append(&r->list, head, 2);
    buf_append(&r->list, &p->len, sizeof(p->len));
    buf_append(&r->list, p->data, p->len);
    eio_payload_append(&r->reencoded, p->type, p->binary, p->data, p->len);
    r->count++;
    return r->count == r->stop_at ? 1 : 0;
}

static void run_free(fuzz_run *r)
{
    buf_free(&r->list);
    buf_free(&r->reencoded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *body = mem_alloc(size ? size : 1);
    fuzz_run r = {0}, again = {0}, stop = {0};
    buf_t copy = {0};
    eio_packet p;

    /* One WebSocket text frame. */
    if (size)
        memcpy(body, data, size);
    if (eio_packet_decode(body, size, &p) == 0) {
        FUZZ_CHECK(size > 0 && data[0] >= '0' && data[0] <= '6');
        FUZZ_CHECK(p.type == (eio_ptype)(data[0] - '0') && !p.binary);
        FUZZ_CHECK(p.data == body + 1 && p.len == size - 1);
    } else {
        FUZZ_CHECK(size == 0 || data[0] < '0' || data[0] > '6');
    }

    /* A polling body. */
    r.body = body;
    r.n = size;
    int rc = eio_payload_decode(body, size, on_packet, &r);
    if (rc != 0) {
        FUZZ_CHECK(rc == EIO_PACKET_EMALFORMED && r.count == 0);
        FUZZ_CHECK(size == 0 || memcmp(body, data, size) == 0);
        goto cleanup;
    }
    FUZZ_CHECK(r.count >= 1);

    /* Encode again and decode: the same packets. */
    buf_append(&copy, r.reencoded.data, r.reencoded.len);
    again.body = (const uint8_t *)copy.data;
    again.n = copy.len;
    FUZZ_CHECK(eio_payload_decode((uint8_t *)copy.data, copy.len, on_packet, &again) == 0);
    FUZZ_CHECK(again.count == r.count);
    FUZZ_CHECK(again.list.len == r.list.len &&
               memcmp(again.list.data, r.list.data, r.list.len) == 0);
    /* ...and that encoding is canonical: it encodes to itself. */
    FUZZ_CHECK(again.reencoded.len == r.reencoded.len &&
               memcmp(again.reencoded.data, r.reencoded.data, r.reencoded.len) == 0);

    /* A callback that stops early stops the decode there. */
    memcpy(body, data, size);
    stop.body = body;
    stop.n = size;
    stop.stop_at = (size_t)data[size - 1] % r.count + 1;
    FUZZ_CHECK(eio_payload_decode(body, size, on_packet, &stop) == 1);
    FUZZ_CHECK(stop.count == stop.stop_at);
    FUZZ_CHECK(stop.list.len <= r.list.len &&
               memcmp(stop.list.data, r.list.data, stop.list.len) == 0);

cleanup:
    buf_free(&copy);
    run_free(&r);
    run_free(&again);
    run_free(&stop);
    mem_free(body);
    return 0;
}
