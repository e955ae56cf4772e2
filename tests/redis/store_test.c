/* store_test.c - the Redis Cluster store (src/store/store_redis.c) through
 * store.h, against the live 3-master, 3-replica cluster that
 * tests/redis/run.sh store_test starts (STORE_TEST_BASE: its first port;
 * STORE_TEST_DIR: its directory with the redis-PORT.pid files). The same
 * behaviours as tests/unit/test_store_sqlite.c, plus completion order on a
 * network backend, close with commands out, and a master killed with -9.
 * The last test kills a master, so the cluster is spent afterwards.
 *
 * Every wait is bounded and polls the loop (a 10 ms tick keeps it
 * turning). Prints one line per failed check, one per test, and finally
 * "N passed, N failed"; exits 1 on any failure. */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <uv.h>

#include "harness.h"
#include "store/store.h"
#include "util/log.h"
#include "util/mem.h"

static store_t *S;


/* ---- recording callbacks ------------------------------------------------- */

static int seq; /* completion counter, to check order */

typedef struct {
    int calls, rc, created, order;
    char name[64];
    store_appended_t app;
    store_history_t page;
    store_room_list_t list;
} res_t;

static void room_cb(void *ud, int rc, const char *name, int created)
{
    res_t *r = ud;
    r->calls++;
    r->rc = rc;
    r->created = created;
    r->order = seq++;
    snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
}

static void list_cb(void *ud, int rc, store_room_list_t *l)
{
    res_t *r = ud;
    r->calls++;
    r->rc = rc;
    r->order = seq++;
    r->list = *l; /* taken */
    l->rooms = NULL;
    l->n = 0;
}

static void append_cb(void *ud, int rc, const store_appended_t *a)
{
    res_t *r = ud;
    r->calls++;
    r->rc = rc;
    r->order = seq++;
    r->app = *a;
}

static void history_cb(void *ud, int rc, store_history_t *h)
{
    res_t *r = ud;
    r->calls++;
    r->rc = rc;
    r->order = seq++;
    r->page = *h; /* taken */
    memset(h, 0, sizeof(*h));
}

static void count_cb(void *ud, int rc, uint64_t n)
{
    res_t *r = ud;
    r->calls++;
    r->rc = rc;
    r->order = (int)n;
}

/* ---- synchronous wrappers ------------------------------------------------ */

static int room_create(const char *key, const char *name, char *out, int *created)
{
    res_t r;
    memset(&r, 0, sizeof(r));
    store_room_create(S, key, name, room_cb, &r);
    CHECK(r.calls == 0); /* never inline */
    CHECK(wait_for(&r.calls, 1, 10000));
    if (out)
        strcpy(out, r.name);
    if (created)
        *created = r.created;
    return r.rc;
}

static int room_get(const char *key, char *out)
{
    res_t r;
    memset(&r, 0, sizeof(r));
    store_room_get(S, key, room_cb, &r);
    CHECK(wait_for(&r.calls, 1, 10000));
    if (out)
        strcpy(out, r.name);
    return r.rc;
}

static int append_full(const char *conv, const char *from, const char *to, const char *text,
                       int64_t ts, const char *user, const char *cid, size_t cid_len,
                       int64_t exp, store_appended_t *out)
{
    res_t r;
    memset(&r, 0, sizeof(r));
    store_msg_in_t m = {conv, from, to, text, strlen(text), ts};
    store_dedupe_in_t d = {user, cid, cid_len, exp};
    store_msg_append(S, &m, cid ? &d : NULL, append_cb, &r);
    CHECK(r.calls == 0);
    CHECK(wait_for(&r.calls, 1, 10000));
    if (out)
        *out = r.app;
    return r.rc;
}

static void append(const char *conv, const char *from, const char *to, const char *text,
                   int64_t ts, char id[STORE_ID_MAX])
{
    store_appended_t a;
    CHECK(append_full(conv, from, to, text, ts, NULL, NULL, 0, 0, &a) == 0);
    CHECK(!a.duplicate);
    strcpy(id, a.id);
}

static int history(const char *conv, const char *before, size_t limit, store_history_t *h)
{
    res_t r;
    memset(&r, 0, sizeof(r));
    store_history(S, conv, before, limit, history_cb, &r);
    CHECK(r.calls == 0);
    CHECK(wait_for(&r.calls, 1, 10000));
    *h = r.page;
    return r.rc;
}

/* ---- tests --------------------------------------------------------------- */

static void test_rooms(void)
{
    char name[64];
    int created = -1;
    CHECK(room_create("general", "General", name, &created) == 0);
    CHECK(created == 1 && strcmp(name, "General") == 0);
    CHECK(room_create("general", "GENERAL", name, &created) == 0);
    CHECK(created == 0 && strcmp(name, "General") == 0);
    CHECK(room_create("random", "Random", NULL, NULL) == 0);
    CHECK(room_get("general", name) == 0 && strcmp(name, "General") == 0);
    CHECK(room_get("random", name) == 0 && strcmp(name, "Random") == 0);
    CHECK(room_get("nope", name) == STORE_ENOTFOUND && name[0] == '\0');

    res_t r;
    memset(&r, 0, sizeof(r));
    store_room_list(S, list_cb, &r);
    CHECK(wait_for(&r.calls, 1, 10000));
    CHECK(r.rc == 0 && r.list.n == 2);
    if (r.list.n == 2) {
        CHECK(strcmp(r.list.rooms[0].key, "general") == 0);
        CHECK(strcmp(r.list.rooms[0].name, "General") == 0);
        CHECK(strcmp(r.list.rooms[1].key, "random") == 0);
        CHECK(strcmp(r.list.rooms[1].name, "Random") == 0);
    }
    store_room_list_free(&r.list);
}


/* A room whose index entry was never written (a failure between the two
 * writes of a create) is indexed by the next create of that key. */
static void test_room_index_repaired(void)
{
    char out[256], name[64];
    int created = -1;
    sh(out, sizeof(out), "redis-cli -c -h 127.0.0.1 -p %d HSET 'parley:room:{orphan}' name Orphan",
       base_port);
    CHECK(strcmp(out, "1") == 0);
    CHECK(room_get("orphan", name) == 0 && strcmp(name, "Orphan") == 0);
    CHECK(room_create("orphan", "ORPHAN", name, &created) == 0);
    CHECK(created == 0 && strcmp(name, "Orphan") == 0);
    res_t r;
    memset(&r, 0, sizeof(r));
    store_room_list(S, list_cb, &r);
    CHECK(wait_for(&r.calls, 1, 10000));
    CHECK(r.rc == 0 && r.list.n == 3);
    if (r.list.n == 3)
        CHECK(strcmp(r.list.rooms[2].key, "orphan") == 0 &&
              strcmp(r.list.rooms[2].name, "Orphan") == 0);
    store_room_list_free(&r.list);
    CHECK(room_create("orphan", "x", NULL, NULL) == 0); /* indexed once */
    memset(&r, 0, sizeof(r));
    store_room_list(S, list_cb, &r);
    CHECK(wait_for(&r.calls, 1, 10000));
    CHECK(r.rc == 0 && r.list.n == 3);
    store_room_list_free(&r.list);
}

static void test_append_and_history(void)
{
    char *a = store_conv_room("general"), *b = store_conv_room("random");
    char ids[5][STORE_ID_MAX];
    append(a, "Alice", NULL, "hello", 1000, ids[0]);
    append(b, "Bob", NULL, "elsewhere", 1001, ids[1]);
    append(a, "Bob", NULL, "h\xc3\xa9llo\tthere\nsecond line", 1002, ids[2]);
    append(a, "Alice", NULL, "\xf0\x9f\x98\x80", 1003, ids[3]);
    append(b, "Bob", NULL, "again", 1004, ids[4]);
    CHECK(strcmp(ids[0], ids[2]) != 0 && strcmp(ids[2], ids[3]) != 0);

    store_history_t h;
    CHECK(history(a, NULL, 50, &h) == 0);
    CHECK(h.n == 3 && !h.has_more);
    if (h.n == 3) {
        CHECK(strcmp(h.msgs[0].id, ids[0]) == 0);
        CHECK(strcmp(h.msgs[0].from, "Alice") == 0 && h.msgs[0].to == NULL);
        CHECK(strcmp(h.msgs[0].content, "hello") == 0 && h.msgs[0].content_len == 5);
        CHECK(h.msgs[0].ts_ms == 1000);
        CHECK(strcmp(h.msgs[1].id, ids[2]) == 0);
        CHECK(strcmp(h.msgs[1].content, "h\xc3\xa9llo\tthere\nsecond line") == 0);
        CHECK(strcmp(h.msgs[2].id, ids[3]) == 0 && h.msgs[2].ts_ms == 1003);
    }
    store_history_free(&h);
    CHECK(history(b, NULL, 1, &h) == 0);
    CHECK(h.n == 1 && h.has_more && strcmp(h.msgs[0].id, ids[4]) == 0);
    store_history_free(&h);
    char *c = store_conv_room("empty");
    CHECK(history(c, NULL, 50, &h) == 0 && h.n == 0 && !h.has_more);
    store_history_free(&h);
    mem_free(a);
    mem_free(b);
    mem_free(c);
}

static void test_paging_250(void)
{
    char *conv = store_conv_room("big"), *other = store_conv_room("other");
    static char ids[250][STORE_ID_MAX];
    char scratch[STORE_ID_MAX], text[32];
    for (int i = 0; i < 250; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        append(conv, "Alice", NULL, text, 10000 + i, ids[i]);
        if (i % 7 == 0)
            append(other, "Bob", NULL, "noise", 10000 + i, scratch);
    }
    store_history_t h;
    char before[STORE_ID_MAX] = "";
    CHECK(history(conv, NULL, 100, &h) == 0 && h.n == 100 && h.has_more);
    for (size_t i = 0; i < h.n; i++) {
        snprintf(text, sizeof(text), "m%d", 150 + (int)i);
        CHECK(strcmp(h.msgs[i].content, text) == 0);
        CHECK(strcmp(h.msgs[i].id, ids[150 + i]) == 0);
    }
    if (h.n)
        strcpy(before, h.msgs[0].id);
    store_history_free(&h);
    CHECK(history(conv, before, 100, &h) == 0 && h.n == 100 && h.has_more);
    if (h.n == 100) {
        CHECK(strcmp(h.msgs[0].id, ids[50]) == 0 && strcmp(h.msgs[99].id, ids[149]) == 0);
        strcpy(before, h.msgs[0].id);
    }
    store_history_free(&h);
    CHECK(history(conv, before, 100, &h) == 0 && h.n == 50 && !h.has_more);
    if (h.n == 50)
        CHECK(strcmp(h.msgs[0].id, ids[0]) == 0 && strcmp(h.msgs[49].id, ids[49]) == 0);
    store_history_free(&h);
    CHECK(history(conv, NULL, 250, &h) == 0 && h.n == 250 && !h.has_more);
    store_history_free(&h);
    CHECK(history(conv, NULL, 249, &h) == 0 && h.n == 249 && h.has_more);
    if (h.n)
        CHECK(strcmp(h.msgs[0].id, ids[1]) == 0);
    store_history_free(&h);
    CHECK(history(conv, ids[0], 10, &h) == 0 && h.n == 0 && !h.has_more);
    store_history_free(&h);
    CHECK(history(conv, ids[1], 10, &h) == 0 && h.n == 1 && !h.has_more);
    if (h.n)
        CHECK(strcmp(h.msgs[0].content, "m0") == 0);
    store_history_free(&h);
    mem_free(conv);
    mem_free(other);
}

static void test_bad_before_ids(void)
{
    char *a = store_conv_room("a"), *b = store_conv_room("b"), *none = store_conv_room("none");
    char ida[STORE_ID_MAX], idb[STORE_ID_MAX], big[STORE_ID_MAX + 8];
    store_history_t h;
    append(a, "x", NULL, "in a", 1, ida);
    append(b, "x", NULL, "in b", 2, idb);
    CHECK(history(a, idb, 10, &h) == STORE_EBADID && h.n == 0);
    CHECK(history(b, ida, 10, &h) == STORE_EBADID);
    CHECK(history(none, ida, 10, &h) == STORE_EBADID);
    snprintf(big, sizeof(big), "%s0", idb);
    CHECK(history(a, big, 10, &h) == STORE_EBADID);
    CHECK(history(a, "18446744073709551615-18446744073709551615", 10, &h) == STORE_EBADID);
    /* the stream id of a's message with b's tag, and the other way */
    char swapped[STORE_ID_MAX + 8];
    snprintf(swapped, sizeof(swapped), "%.*s%s", (int)(strrchr(ida, '.') - ida), ida,
             strrchr(idb, '.'));
    CHECK(history(a, swapped, 10, &h) == STORE_EBADID);
    CHECK(history(b, swapped, 10, &h) == STORE_EBADID || strncmp(ida, idb, strrchr(ida, '.') - ida) == 0);
    /* a's id without its tag */
    snprintf(swapped, sizeof(swapped), "%.*s", (int)(strrchr(ida, '.') - ida), ida);
    CHECK(history(a, swapped, 10, &h) == STORE_EBADID);
    const char *bad[] = {"", "0", "01", "-1", "+1", " 1", "1 ", "1.0", "1e3", "abc", "0x1",
                         "1-", "-", "01-1", "1-01", "1-1-1", "1-+1", "1-a", "(1-1", "+", "-",
                         "18446744073709551616-0", "99999999999999999999999-1",
                         "1234567890123456789012345678901234567890123456789-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = history(a, bad[i], 10, &h);
        if (rc != STORE_EBADID)
            fprintf(stderr, "  before \"%s\": %d\n", bad[i], rc);
        CHECK(rc == STORE_EBADID);
    }
    CHECK(history(a, ida, 10, &h) == 0 && h.n == 0);
    store_history_free(&h);
    CHECK(history(a, NULL, 0, &h) == STORE_EINVAL);
    CHECK(history(a, NULL, STORE_HISTORY_LIMIT_MAX + 1, &h) == STORE_EINVAL);
    mem_free(a);
    mem_free(b);
    mem_free(none);
}

static void test_private_conversations(void)
{
    char *ab = store_conv_private("alice", "bob"), *ba = store_conv_private("bob", "alice");
    char *room = store_conv_room("alice\x1f" "bob");
    char id[STORE_ID_MAX];
    CHECK(strcmp(ab, ba) == 0);
    append(ab, "ALICE", "bob", "hi bob", 5, id);
    append(ba, "bob", "ALICE", "hi alice", 6, id);
    store_history_t h;
    CHECK(history(ba, NULL, 50, &h) == 0 && h.n == 2);
    if (h.n == 2) {
        CHECK(strcmp(h.msgs[0].from, "ALICE") == 0 && strcmp(h.msgs[0].to, "bob") == 0);
        CHECK(strcmp(h.msgs[1].from, "bob") == 0 && strcmp(h.msgs[1].to, "ALICE") == 0);
    }
    store_history_free(&h);
    CHECK(history(room, NULL, 50, &h) == 0 && h.n == 0);
    store_history_free(&h);
    mem_free(ab);
    mem_free(ba);
    mem_free(room);
}

static void test_dedupe(void)
{
    const int64_t now = 1700000000000;
    const int64_t exp = now + STORE_DEDUPE_TTL_MS;
    char *conv = store_conv_room("dd"), *pm = store_conv_private("a", "b");
    store_appended_t first, a;
    store_history_t h;

    CHECK(append_full(conv, "Alice", NULL, "one", now, "alice", "c1", 2, exp, &first) == 0);
    CHECK(!first.duplicate);
    CHECK(append_full(pm, "Alice", "B", "two", now + 1, "alice", "c1\0x", 4, exp + 1, &a) == 0);
    CHECK(!a.duplicate);
    /* the retry, in another conversation: the first's id and time */
    CHECK(append_full(pm, "Alice", "B", "one again", now + 5, "alice", "c1", 2, exp + 5, &a) ==
          0);
    CHECK(a.duplicate && strcmp(a.id, first.id) == 0 && a.ts_ms == now);
    CHECK(history(pm, NULL, 50, &h) == 0 && h.n == 1);
    if (h.n == 1)
        CHECK(strcmp(h.msgs[0].content, "two") == 0);
    store_history_free(&h);
    /* per user, per exact clientId */
    CHECK(append_full(conv, "Bob", NULL, "b", now, "bob", "c1", 2, exp, &a) == 0 && !a.duplicate);
    CHECK(append_full(conv, "Alice", NULL, "c", now, "alice", "c1\0", 3, exp, &a) == 0 &&
          !a.duplicate);
    /* a user key that spells another's key prefix */
    CHECK(append_full(conv, "X", NULL, "d", now, "alice}:cid:c", "1", 1, exp, &a) == 0 &&
          !a.duplicate);
    /* alive until expires_ms at the message's time, gone at it */
    CHECK(append_full(conv, "Alice", NULL, "x", exp - 1, "alice", "c1", 2, exp + 9, &a) == 0);
    CHECK(a.duplicate);
    CHECK(append_full(conv, "Alice", NULL, "late", exp, "alice", "c1", 2, exp * 2, &a) == 0);
    CHECK(!a.duplicate && strcmp(a.id, first.id) != 0);
    char renewed[STORE_ID_MAX];
    strcpy(renewed, a.id);
    CHECK(append_full(conv, "Alice", NULL, "y", exp + 1, "alice", "c1", 2, exp * 2, &a) == 0);
    CHECK(a.duplicate && strcmp(a.id, renewed) == 0);

    /* Redis expires entries itself (PX): a 300 ms entry is gone after 600 */
    CHECK(append_full(conv, "Alice", NULL, "t1", now, "alice", "short", 5, now + 300, &a) == 0);
    CHECK(!a.duplicate);
    CHECK(append_full(conv, "Alice", NULL, "t2", now + 1, "alice", "short", 5, now + 301, &a) ==
          0);
    CHECK(a.duplicate);
    spin(600);
    CHECK(append_full(conv, "Alice", NULL, "t3", now + 2, "alice", "short", 5, now + 302, &a) ==
          0);
    CHECK(!a.duplicate);

    res_t r;
    memset(&r, 0, sizeof(r));
    r.order = -1;
    store_dedupe_purge(S, exp * 3, count_cb, &r);
    CHECK(r.calls == 0);
    CHECK(wait_for(&r.calls, 1, 5000) && r.rc == 0 && r.order == 0);
    mem_free(conv);
    mem_free(pm);
}

/* Ops on one conversation complete in start order, each exactly once, and
 * a read sees exactly the writes started before it. */
static void test_order_one_conversation(void)
{
    enum { N = 60 };
    char *conv = store_conv_room("order");
    static res_t w[N], rd[N];
    char text[16];
    memset(w, 0, sizeof(w));
    memset(rd, 0, sizeof(rd));
    int total = 0;
    seq = 0;
    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof(text), "o%d", i);
        store_msg_in_t m = {conv, "Alice", NULL, text, strlen(text), 500 + i};
        char cid[16];
        snprintf(cid, sizeof(cid), "k%d", i % 3 ? i : 0); /* some retries */
        store_dedupe_in_t d = {"orderer", cid, strlen(cid), 500 + i + 60000};
        store_msg_append(S, &m, i % 2 ? &d : NULL, append_cb, &w[i]);
        store_history(S, conv, NULL, 1000, history_cb, &rd[i]);
    }
    for (int i = 0; i < N; i++)
        total += w[i].calls == 0 && rd[i].calls == 0;
    CHECK(total == N); /* nothing inline */
    for (int i = 0; i < N; i++) {
        CHECK(wait_for(&w[i].calls, 1, 20000));
        CHECK(wait_for(&rd[i].calls, 1, 20000));
    }
    spin(50);
    int stored = 0, bad_order = 0, bad_view = 0, dups = 0;
    for (int i = 0; i < N; i++) {
        CHECK(w[i].calls == 1 && rd[i].calls == 1);
        CHECK(w[i].rc == 0 && rd[i].rc == 0);
        if (w[i].order != 2 * i || rd[i].order != 2 * i + 1)
            bad_order++;
        if (w[i].app.duplicate)
            dups++;
        else
            stored++;
        if (rd[i].page.n != (size_t)stored)
            bad_view++;
        else if (!w[i].app.duplicate && strcmp(rd[i].page.msgs[stored - 1].id, w[i].app.id) != 0)
            bad_view++;
        store_history_free(&rd[i].page);
    }
    CHECK(bad_order == 0);
    CHECK(bad_view == 0);
    CHECK(dups > 0);
    printf("  %d appends (%d duplicates) and %d reads completed in start order\n", N, dups, N);
    mem_free(conv);
}

/* A callback that starts another operation. */
static res_t nested;
static void append_then_get(void *ud, int rc, const store_appended_t *a)
{
    append_cb(ud, rc, a);
    store_room_get(S, "general", room_cb, &nested);
}

static void test_op_from_callback(void)
{
    char *conv = store_conv_room("nest");
    res_t r;
    memset(&r, 0, sizeof(r));
    memset(&nested, 0, sizeof(nested));
    store_msg_in_t m = {conv, "A", NULL, "x", 1, 1};
    store_msg_append(S, &m, NULL, append_then_get, &r);
    CHECK(wait_for(&nested.calls, 1, 10000));
    CHECK(r.calls == 1 && r.rc == 0 && nested.rc == 0 && strcmp(nested.name, "General") == 0);
    mem_free(conv);
}

static char *seeds(void)
{
    static char s[64];
    snprintf(s, sizeof(s), "127.0.0.1:%d,127.0.0.1:%d", base_port + 3, base_port);
    return s;
}

/* store_close with ops pending: each callback once, STORE_ECLOSED, start
 * order; an op started from one of them completes inline the same way. */
static store_t *closing;
static res_t inner;
static void append_then_more(void *ud, int rc, const store_appended_t *a)
{
    append_cb(ud, rc, a);
    store_room_get(closing, "general", room_cb, &inner);
}

static void test_close_with_ops_pending(void)
{
    enum { N = 20 };
    static res_t r[N];
    memset(r, 0, sizeof(r));
    memset(&inner, 0, sizeof(inner));
    CHECK(store_redis_open(&loop, seeds(), 2000, 0, 1, &closing) == 0);
    if (!closing)
        return;
    /* warm up: the slot map is known, so some commands are really out */
    res_t w;
    memset(&w, 0, sizeof(w));
    store_room_get(closing, "general", room_cb, &w);
    CHECK(wait_for(&w.calls, 1, 10000) && w.rc == 0);
    char *conv = store_conv_room("closing");
    seq = 0;
    for (int i = 0; i < N; i++) {
        store_msg_in_t m = {conv, "A", NULL, "x", 1, 1};
        if (i == N - 1)
            store_msg_append(closing, &m, NULL, append_then_more, &r[i]);
        else if (i % 3 == 0)
            store_msg_append(closing, &m, NULL, append_cb, &r[i]);
        else if (i % 3 == 1)
            store_history(closing, conv, NULL, 10, history_cb, &r[i]);
        else
            store_room_create(closing, "closing-room", "C", room_cb, &r[i]);
    }
    store_close(closing);
    int once = 0, eclosed = 0, inorder = 1;
    for (int i = 0; i < N; i++) {
        once += r[i].calls == 1;
        eclosed += r[i].rc == STORE_ECLOSED;
        if (r[i].order != i)
            inorder = 0;
        store_history_free(&r[i].page);
    }
    CHECK(once == N);
    CHECK(eclosed == N);
    CHECK(inorder);
    CHECK(inner.calls == 1 && inner.rc == STORE_ECLOSED);
    uv_run(&loop, UV_RUN_NOWAIT); /* close callbacks free the rest */
    spin(100);
    for (int i = 0; i < N; i++)
        CHECK(r[i].calls == 1);
    mem_free(conv);
}

/* ---- failover ------------------------------------------------------------ */

/* The port of the master that holds `key` (it answers EXISTS without a
 * redirection), or -1. */
static int master_holding(const char *key)
{
    char out[256];
    for (int i = 0; i < 6; i++) {
        sh(out, sizeof(out), "redis-cli -h 127.0.0.1 -p %d EXISTS '%s' 2>&1", base_port + i, key);
        if (strcmp(out, "1") == 0)
            return base_port + i;
    }
    return -1;
}

static void test_failover(void)
{
    char *conv = store_conv_room("fo");
    char id[STORE_ID_MAX];
    append(conv, "A", NULL, "before", 1, id);
    int victim = master_holding("parley:{r:fo}:msgs");
    CHECK(victim > 0);
    pid_t pid = node_pid(victim);
    CHECK(pid > 0);
    if (pid <= 0) {
        mem_free(conv);
        return;
    }

    /* appends in flight when the master dies */
    enum { N = 20 };
    static res_t mid[N];
    memset(mid, 0, sizeof(mid));
    for (int i = 0; i < N; i++) {
        store_msg_in_t m = {conv, "A", NULL, "during", 6, 2 + i};
        store_msg_append(S, &m, NULL, append_cb, &mid[i]);
    }
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    CHECK(kill(pid, SIGKILL) == 0);
    printf("  killed master 127.0.0.1:%d (pid %d)\n", victim, (int)pid);
    int ok_mid = 0, failed_mid = 0;
    for (int i = 0; i < N; i++) {
        CHECK(wait_for(&mid[i].calls, 1, 20000));
        ok_mid += mid[i].rc == 0;
        failed_mid += mid[i].rc == STORE_EIO;
    }
    spin(50);
    for (int i = 0; i < N; i++)
        CHECK(mid[i].calls == 1);
    CHECK(ok_mid + failed_mid == N);

    int ok = 0, attempts = 0, bad_calls = 0;
    store_appended_t a;
    while (!ok && uv_now(&loop) - t0 < 25000) {
        attempts++;
        res_t r;
        memset(&r, 0, sizeof(r));
        store_msg_in_t m = {conv, "A", NULL, "after", 5, 100};
        store_msg_append(S, &m, NULL, append_cb, &r);
        wait_for(&r.calls, 1, 10000);
        spin(5);
        bad_calls += r.calls != 1;
        ok = r.calls == 1 && r.rc == 0;
        a = r.app;
        if (!ok)
            spin(100);
    }
    uint64_t took = uv_now(&loop) - t0;
    printf("  %d of %d in-flight appends succeeded; appends succeed again after %llu ms "
           "(%d attempts)\n",
           ok_mid, N, (unsigned long long)took, attempts);
    CHECK(ok);
    CHECK(bad_calls == 0);
    CHECK(took < 20000);
    store_history_t h;
    CHECK(history(conv, NULL, 1, &h) == 0 && h.n == 1);
    if (ok && h.n == 1)
        CHECK(strcmp(h.msgs[0].id, a.id) == 0 && strcmp(h.msgs[0].content, "after") == 0);
    store_history_free(&h);
    /* every append reported stored survived the failover (WAIT saw it on
     * the replica that took over) */
    CHECK(history(conv, NULL, 1000, &h) == 0);
    int kept = 0;
    for (int i = 0; i < N; i++) {
        if (mid[i].rc != 0)
            continue;
        for (size_t j = 0; j < h.n; j++)
            if (strcmp(h.msgs[j].id, mid[i].app.id) == 0) {
                kept++;
                break;
            }
    }
    printf("  %d of the %d reported stored are in the history\n", kept, ok_mid);
    CHECK(kept == ok_mid);
    store_history_free(&h);
    mem_free(conv);
}

/* ---- main ---------------------------------------------------------------- */

int main(void)
{
    int r = harness_start("STORE_TEST", LOG_ERROR);
    if (r != 0)
        return r;
    if (store_redis_open(&loop, seeds(), 1000, 0, 1, &S) != 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }

    static const harness_test tests[] = {
        {"rooms: create, get, list", test_rooms},
        {"a room missing from the index is indexed by the next create",
         test_room_index_repaired},
        {"append and history", test_append_and_history},
        {"paging over 250 messages", test_paging_250},
        {"bad before ids and limits", test_bad_before_ids},
        {"private conversations", test_private_conversations},
        {"clientId de-duplication", test_dedupe},
        {"one conversation: start order, exactly once", test_order_one_conversation},
        {"an operation started from a callback", test_op_from_callback},
        {"close with operations pending", test_close_with_ops_pending},
        {"failover: a master killed with -9", test_failover},
    };
    int passed = 0;
    int failed = harness_run(tests, sizeof(tests) / sizeof(tests[0]), &passed);
    store_close(S);
    return harness_finish(passed, failed);
}
