/* fuzz_resp.c - libFuzzer target for what the Redis Cluster client builds
 * on hiredis' reply reader (src/redis/rc_subproto.c, rc_slot.c): the
 * subscriber protocol engine (replies matched to the SSUBSCRIBE /
 * SUNSUBSCRIBE commands sent, smessage and kicks), our capped reply
 * objects, and the interpretation of any reply as a redirection
 * (-MOVED/-ASK), a verdict, or a CLUSTER SLOTS map.
 *
 * Input layout: byte 0: bits 0-3 the number of commands "sent" before the
 * bytes arrive (their kinds and channels come from the next bytes: bit 0
 * kind, bits 1-3 channel), bits 4-7 the chunk size (0: byte by byte, else
 * 2^k bytes); byte 1: the event at which the callback asks to stop (0:
 * never); the rest is what the server sends.
 *
 * The stream goes through the engine twice, in one piece and in chunks
 * that each live in an exact-size heap block (so ASan sees any read past
 * one); both runs must give the same result and the same events. Every
 * event must be well formed (a channel; data exactly for messages and
 * refusals; a subscribed/unsubscribed/refused channel that was sent and
 * is answered once). The stream is also read into replies with the capped
 * reader, and each reply is classified and parsed as CLUSTER SLOTS, whose
 * ranges must be valid. Any breach aborts.
 *
 * Build and run (corpus: tests/fuzz/corpus/resp, dictionary:
 * tests/fuzz/resp.dict; `make build-fuzz/fuzz_resp` builds it against the
 * whole library):
 *   make build-fuzz/fuzz_resp && scripts/fuzz.sh 30 build-fuzz/fuzz_resp */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "redis/rc_internal.h"
#include "util/buf.h"
#include "util/mem.h"


static const char *const channels[8] = {"a", "b", "room:1", "{x}y", "", "a\r\nb", "zz", "q"};

typedef struct {
    uint64_t hash;
    size_t events;
    size_t stop_at;
    /* what was sent, oldest first, and how many were answered */
    int kinds[16];
    int chans[16];
    size_t nsent, answered;
} run_t;

static void mix(run_t *r, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        r->hash = (r->hash ^ b[i]) * 0x100000001b3ULL;
}

static int on_event(void *ud, const rc__ev *ev)
{
    run_t *r = ud;
    FUZZ_CHECK(ev->channel != NULL);
    FUZZ_CHECK(ev->kind >= RC__EV_SUBSCRIBED && ev->kind <= RC__EV_REFUSED);
    /* Messages and refusals carry data, an UNSUBSCRIBED may (the error
     * text when the SUNSUBSCRIBE was refused), the others never do. */
    if (ev->kind == RC__EV_MESSAGE || ev->kind == RC__EV_REFUSED)
        FUZZ_CHECK(ev->data != NULL);
    else if (ev->kind != RC__EV_UNSUBSCRIBED)
        FUZZ_CHECK(ev->data == NULL && ev->len == 0);
    if (ev->kind == RC__EV_SUBSCRIBED || ev->kind == RC__EV_UNSUBSCRIBED ||
        ev->kind == RC__EV_REFUSED) {
        /* It answers the oldest command not answered yet. */
        FUZZ_CHECK(r->answered < r->nsent);
        int kind = r->kinds[r->answered];
        const char *ch = channels[r->chans[r->answered]];
        r->answered++;
        FUZZ_CHECK(ev->channel_len == strlen(ch) && memcmp(ev->channel, ch, ev->channel_len) == 0);
        if (ev->kind == RC__EV_SUBSCRIBED || ev->kind == RC__EV_REFUSED)
            FUZZ_CHECK(kind == RC__OP_SSUBSCRIBE);
        if (ev->kind == RC__EV_UNSUBSCRIBED && ev->data == NULL)
            FUZZ_CHECK(kind == RC__OP_SUNSUBSCRIBE);
    }
    mix(r, &ev->kind, sizeof(ev->kind));
    mix(r, ev->channel, ev->channel_len);
    if (ev->data)
        mix(r, ev->data, ev->len);
    r->events++;
    return r->stop_at && r->events >= r->stop_at;
}

/* Feeds data[0..n) in chunks of `chunk` bytes (0: the whole at once);
 * returns the engine's last result. */
static int run_engine(run_t *r, const uint8_t *ops, size_t nops, const uint8_t *data, size_t n,
                      size_t chunk)
{
    rc__subproto p;
    buf_t out = {0};
    FUZZ_CHECK(rc__subproto_init(&p) == 0);
    for (size_t i = 0; i < nops; i++) {
        rc__op_kind kind = (ops[i] & 1) ? RC__OP_SUNSUBSCRIBE : RC__OP_SSUBSCRIBE;
        int ch = (ops[i] >> 1) & 7;
        rc__subproto_send(&p, kind, channels[ch], strlen(channels[ch]), &out);
        r->kinds[r->nsent] = kind;
        r->chans[r->nsent++] = ch;
    }
    FUZZ_CHECK(p.nops == nops);
    int rc = 0;
    if (chunk == 0)
        chunk = n ? n : 1;
    for (size_t off = 0; off < n && rc == 0; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        char *piece = mem_alloc(len);
        memcpy(piece, data + off, len);
        rc = rc__subproto_feed(&p, piece, len, on_event, r);
        mem_free(piece);
    }
    FUZZ_CHECK(rc == 0 || rc == 1 || rc == ERR_MALFORMED); /* rc_internal.h */
    FUZZ_CHECK(p.nops + r->answered == nops);
    rc__subproto_free(&p);
    buf_free(&out);
    return rc;
}

static void check_reply(const redisReply *rep)
{
    rc__redirect rd;
    rc__verdict v = rc__classify(rep, &rd);
    if (v == RC__REPLY_MOVED || v == RC__REPLY_ASK) {
        FUZZ_CHECK(rep->type == REDIS_REPLY_ERROR);
        FUZZ_CHECK(rd.slot >= 0 && rd.slot < RC_SLOTS);
        FUZZ_CHECK(rd.port >= 1 && rd.port <= 65535);
        FUZZ_CHECK(strlen(rd.host) < RC__HOST_MAX);
    }
    if (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS)
        (void)rc__parse_redirect(rep->str, rep->len, &rd);
    rc__slotmap m;
    if (rc__slots_parse(rep, "192.0.2.1", &m) == 0) {
        for (size_t i = 0; i < m.n; i++) {
            FUZZ_CHECK(m.ranges[i].start >= 0 && m.ranges[i].start <= m.ranges[i].end);
            FUZZ_CHECK(m.ranges[i].end < RC_SLOTS);
            FUZZ_CHECK(m.ranges[i].host != NULL && strlen(m.ranges[i].host) < RC__HOST_MAX);
            FUZZ_CHECK(m.ranges[i].port >= 1 && m.ranges[i].port <= 65535);
        }
        FUZZ_CHECK(m.naddrs <= RC__BOOT_MAX);
        for (size_t i = 0; i < m.naddrs; i++) {
            char host[RC__HOST_MAX];
            int port;
            FUZZ_CHECK(rc__split_addr(m.addrs[i], strlen(m.addrs[i]), host, &port) == 0);
        }
    } else {
        FUZZ_CHECK(m.n == 0 && m.ranges == NULL && m.addrs == NULL);
    }
    rc__slotmap_free(&m);
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        if (rep->element[i])
            check_reply(rep->element[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t nops = data[0] & 15, shift = data[0] >> 4;
    size_t chunk = shift ? (size_t)1 << (shift - 1) : 1;
    size_t stop_at = data[1];
    data += 2;
    size -= 2;
    if (nops > size)
        nops = size;
    const uint8_t *ops = data;
    data += nops;
    size -= nops;

    run_t whole = {.hash = 14695981039346656037ULL, .stop_at = stop_at};
    run_t parts = whole;
    int rc1 = run_engine(&whole, ops, nops, data, size, 0);
    int rc2 = run_engine(&parts, ops, nops, data, size, chunk);
    /* A stream cut anywhere reads the same. */
    FUZZ_CHECK(rc1 == rc2);
    FUZZ_CHECK(whole.events == parts.events);
    FUZZ_CHECK(whole.hash == parts.hash);
    FUZZ_CHECK(whole.answered == parts.answered);

    /* The same bytes as replies of a command link. */
    redisReader *rd = rc__reader_new(1024);
    FUZZ_CHECK(rd != NULL);
    FUZZ_CHECK(redisReaderFeed(rd, (const char *)data, size) == REDIS_OK);
    for (int i = 0; i < 256; i++) {
        void *obj = NULL;
        if (redisReaderGetReply(rd, &obj) != REDIS_OK || obj == NULL)
            break;
        check_reply(obj);
        freeReplyObject(obj);
    }
    redisReaderFree(rd);
    return 0;
}
