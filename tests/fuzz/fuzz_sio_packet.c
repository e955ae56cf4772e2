/* fuzz_sio_packet.c - libFuzzer target for the Socket.IO codec
 * (src/sio/sio_packet.c).
 *
 * The input is one packet, decoded from its own exact-size heap block (so
 * ASan sees any read past it). A decoded packet must honour the header
 * (type in range, namespace a '/'-led C string that fits, attachments only
 * on binary types and at most SIO_MAX_ATTACHMENTS, ack id within 2^53 and
 * only on types that carry one); then encode(decode(x)) must succeed,
 * decode again to an equal packet (json_equal on the data), and encode to
 * the same bytes a second time. The placeholder check runs on every
 * decoded packet (its result is free, it must not crash), and encoding
 * into a non-empty buffer must keep what was there. A payload too deep for
 * jansson must come back as an event's name alone (or an ack's header).
 * Any breach aborts.
 *
 * Build and run (corpus: tests/fuzz/corpus/sio_packet, dictionary:
 * tests/fuzz/sio.dict; give the fuzzer a scratch copy of the corpus):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *     $(pkg-config --cflags jansson libcrypto) tests/fuzz/fuzz_sio_packet.c \
 *     src/sio/sio_packet.c src/util/mem.c src/util/buf.c \
 *     $(pkg-config --libs jansson libcrypto) -o /tmp/fuzz_sio
 *   cp -r tests/fuzz/corpus/sio_packet /tmp/sio-corpus
 *   /tmp/fuzz_sio -dict=tests/fuzz/sio.dict -max_total_time=30 /tmp/sio-corpus */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sio/sio_packet.h"
#include "util/mem.h"


static void check_packet(const sio_packet *p)
{
    size_t nsp_len = strnlen(p->nsp, sizeof(p->nsp));
    int binary = p->type == SIO_BINARY_EVENT || p->type == SIO_BINARY_ACK;

    FUZZ_CHECK(p->type >= SIO_CONNECT && p->type <= SIO_BINARY_ACK);
    FUZZ_CHECK(nsp_len > 0 && nsp_len < sizeof(p->nsp) && p->nsp[0] == '/');
    FUZZ_CHECK(strchr(p->nsp, ',') == NULL);
    FUZZ_CHECK(p->attachments <= SIO_MAX_ATTACHMENTS);
    FUZZ_CHECK(binary || p->attachments == 0);
    FUZZ_CHECK(p->ack_id >= -1 && p->ack_id <= 9007199254740992LL);
    switch (p->type) {
    case SIO_CONNECT:
        FUZZ_CHECK(p->ack_id == -1 && (p->data == NULL || json_is_object(p->data)));
        break;
    case SIO_DISCONNECT:
        FUZZ_CHECK(p->ack_id == -1 && p->data == NULL);
        break;
    case SIO_CONNECT_ERROR:
        FUZZ_CHECK(p->ack_id == -1 && (json_is_object(p->data) || json_is_string(p->data)));
        break;
    case SIO_EVENT:
    case SIO_BINARY_EVENT:
        FUZZ_CHECK(json_is_array(p->data) && json_is_string(json_array_get(p->data, 0)));
        break;
    case SIO_ACK:
    case SIO_BINARY_ACK:
        FUZZ_CHECK(json_is_array(p->data));
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = mem_alloc(size ? size : 1);
    sio_packet a, b;
    buf_t out1 = {0}, out2 = {0};

    if (size)
        memcpy(in, data, size);
    int rc = sio_packet_decode(in, size, &a);
    if (rc == SIO_PACKET_ETOODEEP) {
        /* Valid JSON too deep to build: the header and, for an event, its
         * name alone; nothing to encode back. */
        int event = a.type == SIO_EVENT || a.type == SIO_BINARY_EVENT;
        FUZZ_CHECK(a.too_deep == 1);
        FUZZ_CHECK(event || a.type == SIO_ACK || a.type == SIO_BINARY_ACK);
        FUZZ_CHECK(event ? json_array_size(a.data) == 1 &&
                               json_is_string(json_array_get(a.data, 0))
                         : a.data == NULL);
        sio_packet_clear(&a);
        goto cleanup;
    }
    if (rc != 0) {
        FUZZ_CHECK(rc == SIO_PACKET_EMALFORMED && a.data == NULL && a.too_deep == 0);
        goto cleanup;
    }
    FUZZ_CHECK(a.too_deep == 0);
    check_packet(&a);
    int ph = sio_placeholders_check(a.data, a.attachments);
    FUZZ_CHECK(ph == 0 || ph == SIO_PACKET_EMALFORMED);

    /* encode(decode(x)), after something already in the buffer. */
    buf_append_str(&out1, "keep");
    FUZZ_CHECK(sio_packet_encode(&out1, a.type, a.nsp, a.ack_id, a.attachments, a.data) == 0);
    FUZZ_CHECK(memcmp(out1.data, "keep", 4) == 0 && out1.len > 4);
    FUZZ_CHECK(strlen(out1.data) <= out1.len && out1.data[out1.len] == '\0');

    /* ...decodes to an equal packet... */
    FUZZ_CHECK(sio_packet_decode(out1.data + 4, out1.len - 4, &b) == 0);
    check_packet(&b);
    FUZZ_CHECK(a.type == b.type);
    FUZZ_CHECK(strcmp(a.nsp, b.nsp) == 0);
    FUZZ_CHECK(a.ack_id == b.ack_id);
    FUZZ_CHECK(a.attachments == b.attachments);
    FUZZ_CHECK((a.data == NULL && b.data == NULL) ||
               (a.data != NULL && b.data != NULL && json_equal(a.data, b.data)));
    FUZZ_CHECK(sio_placeholders_check(b.data, b.attachments) == ph);

    /* ...that encodes to the same bytes. */
    FUZZ_CHECK(sio_packet_encode(&out2, b.type, b.nsp, b.ack_id, b.attachments, b.data) == 0);
    FUZZ_CHECK(out2.len == out1.len - 4 && memcmp(out2.data, out1.data + 4, out2.len) == 0);

    sio_packet_clear(&b);
    sio_packet_clear(&a);
cleanup:
    buf_free(&out1);
    buf_free(&out2);
    mem_free(in);
    return 0;
}
