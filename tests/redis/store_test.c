/* store_test.c - the Redis Cluster store (src/store/store_redis.c) through
 * store.h, against the live 3-master, 3-replica cluster that
 * tests/redis/run.sh store_test starts (STORE_TEST_BASE: its first port;
 * STORE_TEST_DIR: its directory with the redis-PORT.pid files). The same
 * behaviours as tests/unit/test_store_sqlite.c, plus completion order on a
 * network backend, close with commands out, and a master killed with -9.
 * The last test kills a master; run.sh restarts that node (it rejoins as
 * a replica) before it runs another program on the same cluster.
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
#include <time.h>
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
    store_conv_list_t convs;
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

/* The same for store_since, which promises ids of the history's form. */
static void since_cb_check(void *ud, int rc, store_history_t *h)
{
    for (size_t i = 0; i < h->n; i++)
        CHECK(strchr(h->msgs[i].id, '.') != NULL && strlen(h->msgs[i].id) < STORE_ID_MAX);
    history_cb(ud, rc, h);
}

static void convs_cb(void *ud, int rc, store_conv_list_t *l)
{
    res_t *r = ud;
    r->calls++;
    r->rc = rc;
    r->order = seq++;
    r->convs = *l; /* taken */
    l->convs = NULL;
    l->n = 0;
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

static int since(const char *conv, int64_t since_ms, size_t limit, store_history_t *h)
{
    res_t r;
    memset(&r, 0, sizeof(r));
    store_since(S, conv, since_ms, limit, since_cb_check, &r);
    CHECK(r.calls == 0);
    CHECK(wait_for(&r.calls, 1, 10000));
    *h = r.page;
    if (r.rc != 0)
        CHECK(h->msgs == NULL && h->n == 0 && !h->has_more);
    return r.rc;
}

static int private_convs(const char *user, int64_t since_ms, store_conv_list_t *l)
{
    res_t r;
    memset(&r, 0, sizeof(r));
    store_private_convs(S, user, since_ms, convs_cb, &r);
    CHECK(r.calls == 0);
    CHECK(wait_for(&r.calls, 1, 10000));
    *l = r.convs;
    if (r.rc != 0)
        CHECK(l->convs == NULL && l->n == 0);
    return r.rc;
}

/* How many times l holds conv. */
static int conv_count(const store_conv_list_t *l, const char *conv)
{
    int n = 0;
    for (size_t i = 0; i < l->n; i++)
        n += strcmp(l->convs[i], conv) == 0;
    return n;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
 * a read (history or since) sees exactly the writes started before it. */
static void test_order_one_conversation(void)
{
    enum { N = 60 };
    char *conv = store_conv_room("order");
    static res_t w[N], rd[N], rs[N];
    char text[16];
    memset(w, 0, sizeof(w));
    memset(rd, 0, sizeof(rd));
    memset(rs, 0, sizeof(rs));
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
        store_since(S, conv, 499, 1000, history_cb, &rs[i]);
    }
    for (int i = 0; i < N; i++)
        total += w[i].calls == 0 && rd[i].calls == 0 && rs[i].calls == 0;
    CHECK(total == N); /* nothing inline */
    for (int i = 0; i < N; i++) {
        CHECK(wait_for(&w[i].calls, 1, 20000));
        CHECK(wait_for(&rd[i].calls, 1, 20000));
        CHECK(wait_for(&rs[i].calls, 1, 20000));
    }
    spin(50);
    int stored = 0, bad_order = 0, bad_view = 0, dups = 0;
    for (int i = 0; i < N; i++) {
        CHECK(w[i].calls == 1 && rd[i].calls == 1 && rs[i].calls == 1);
        CHECK(w[i].rc == 0 && rd[i].rc == 0 && rs[i].rc == 0);
        if (w[i].order != 3 * i || rd[i].order != 3 * i + 1 || rs[i].order != 3 * i + 2)
            bad_order++;
        if (w[i].app.duplicate)
            dups++;
        else
            stored++;
        if (rd[i].page.n != (size_t)stored)
            bad_view++;
        else if (!w[i].app.duplicate && strcmp(rd[i].page.msgs[stored - 1].id, w[i].app.id) != 0)
            bad_view++;
        if (rs[i].page.n != (size_t)stored || rs[i].page.has_more)
            bad_view++;
        else if (strcmp(rs[i].page.msgs[stored - 1].id, rd[i].page.msgs[stored - 1].id) != 0)
            bad_view++;
        store_history_free(&rd[i].page);
        store_history_free(&rs[i].page);
    }
    CHECK(bad_order == 0);
    CHECK(bad_view == 0);
    CHECK(dups > 0);
    printf("  %d appends (%d duplicates) and %d reads completed in start order\n", N, dups,
           2 * N);
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
        else if (i % 5 == 0)
            store_msg_append(closing, &m, NULL, append_cb, &r[i]);
        else if (i % 5 == 1)
            store_history(closing, conv, NULL, 10, history_cb, &r[i]);
        else if (i % 5 == 2)
            store_room_create(closing, "closing-room", "C", room_cb, &r[i]);
        else if (i % 5 == 3)
            store_since(closing, conv, 0, 10, history_cb, &r[i]);
        else
            store_private_convs(closing, "closer", 0, convs_cb, &r[i]);
    }
    store_close(closing);
    int once = 0, eclosed = 0, inorder = 1;
    for (int i = 0; i < N; i++) {
        once += r[i].calls == 1;
        eclosed += r[i].rc == STORE_ECLOSED;
        if (r[i].order != i)
            inorder = 0;
        CHECK(r[i].page.n == 0 && r[i].convs.n == 0 && r[i].convs.convs == NULL);
        store_history_free(&r[i].page);
        store_conv_list_free(&r[i].convs);
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

/* ---- what a client missed ------------------------------------------------ */

static void test_since(void)
{
    char *a = store_conv_room("since-a"), *b = store_conv_room("since-b");
    char *none = store_conv_room("since-none"), *pm = store_conv_private("sa", "sb");
    char ids[6][STORE_ID_MAX], scratch[STORE_ID_MAX];
    store_history_t h;
    const int64_t t0 = wall_ms(); /* stream ids are Redis' clock: about the same */

    /* a conversation nobody wrote to */
    CHECK(since(none, t0, 50, &h) == 0 && h.n == 0 && h.msgs == NULL && !h.has_more);
    CHECK(since(none, 0, 50, &h) == 0 && h.n == 0);

    append(a, "Alice", NULL, "t100", t0 + 100, ids[0]);
    append(b, "Bob", NULL, "other", t0 + 250, scratch);
    append(a, "Bob", NULL, "t200", t0 + 200, ids[1]);
    append(a, "Alice", NULL, "t200 again", t0 + 200, ids[2]);
    append(b, "Bob", NULL, "other", t0 + 350, scratch);
    append(a, "Bob", NULL, "t300", t0 + 300, ids[3]);
    append(a, "Alice", NULL, "t400", t0 + 400, ids[4]);

    /* nothing newer */
    CHECK(since(a, t0 + 400, 50, &h) == 0 && h.n == 0 && h.msgs == NULL && !h.has_more);
    CHECK(since(a, t0 + 3600000, 50, &h) == 0 && h.n == 0);
    /* the boundary is exclusive */
    CHECK(since(a, t0 + 300, 50, &h) == 0 && h.n == 1 && !h.has_more);
    if (h.n == 1) {
        CHECK(strcmp(h.msgs[0].id, ids[4]) == 0);
        CHECK(strcmp(h.msgs[0].from, "Alice") == 0 && h.msgs[0].to == NULL);
        CHECK(strcmp(h.msgs[0].content, "t400") == 0 && h.msgs[0].content_len == 4);
        CHECK(h.msgs[0].ts_ms == t0 + 400);
    }
    store_history_free(&h);
    CHECK(since(a, t0 + 200, 50, &h) == 0 && h.n == 2);
    if (h.n == 2)
        CHECK(strcmp(h.msgs[0].id, ids[3]) == 0 && strcmp(h.msgs[1].id, ids[4]) == 0);
    store_history_free(&h);
    CHECK(since(a, t0 + 199, 50, &h) == 0 && h.n == 4 && !h.has_more);
    for (size_t i = 0; i < h.n && h.n == 4; i++)
        CHECK(strcmp(h.msgs[i].id, ids[1 + i]) == 0);
    store_history_free(&h);
    /* from long ago: the whole stream, from its start */
    CHECK(since(a, 0, 50, &h) == 0 && h.n == 5 && !h.has_more);
    store_history_free(&h);

    /* limit and has_more */
    CHECK(since(a, t0, 2, &h) == 0 && h.n == 2 && h.has_more);
    if (h.n == 2)
        CHECK(strcmp(h.msgs[0].id, ids[0]) == 0 && strcmp(h.msgs[1].id, ids[1]) == 0);
    store_history_free(&h);
    CHECK(since(a, t0, 5, &h) == 0 && h.n == 5 && !h.has_more);
    store_history_free(&h);
    CHECK(since(a, t0, 4, &h) == 0 && h.n == 4 && h.has_more);
    if (h.n == 4)
        CHECK(strcmp(h.msgs[3].id, ids[3]) == 0);
    store_history_free(&h);

    /* the server's clock behind Redis' (a time older than the ids): found,
     * in store order */
    append(a, "Bob", NULL, "t150", t0 + 150, ids[5]);
    CHECK(since(a, t0 + 140, 50, &h) == 0 && h.n == 5);
    if (h.n == 5)
        CHECK(strcmp(h.msgs[0].id, ids[1]) == 0 && strcmp(h.msgs[4].id, ids[5]) == 0 &&
              h.msgs[4].ts_ms == t0 + 150);
    store_history_free(&h);
    /* ahead of it by less than the margin: found; by more: missed (the
     * documented limit) */
    char *skew = store_conv_room("since-skew");
    int64_t now = wall_ms();
    append(skew, "A", NULL, "5 s ahead", now + 5000, scratch);
    append(skew, "A", NULL, "60 s ahead", now + 60000, ids[5]);
    CHECK(since(skew, now + 4000, 50, &h) == 0 && h.n == 2);
    store_history_free(&h);
    CHECK(since(skew, now + 59000, 50, &h) == 0 && h.n == 0);
    store_history_free(&h);

    /* a private message keeps its recipient; same ids as history */
    append(pm, "SA", "sb", "psst", t0 + 500, scratch);
    CHECK(since(pm, t0 + 499, 50, &h) == 0 && h.n == 1);
    if (h.n == 1)
        CHECK(strcmp(h.msgs[0].to, "sb") == 0 && strcmp(h.msgs[0].id, scratch) == 0);
    store_history_free(&h);

    /* limits */
    CHECK(since(a, 0, 0, &h) == STORE_EINVAL);
    CHECK(since(a, 0, STORE_HISTORY_LIMIT_MAX + 1, &h) == STORE_EINVAL);
    CHECK(since(none, 0, 0, &h) == STORE_EINVAL);
    mem_free(a);
    mem_free(b);
    mem_free(none);
    mem_free(pm);
    mem_free(skew);
}

/* Many entries in the margin (older than since_ms, newer than since_ms -
 * the margin): read in several chunks and dropped; then paging 250
 * messages by the last page's time. */
static void test_since_chunks(void)
{
    char *conv = store_conv_room("since-chunks"), *other = store_conv_room("since-noise");
    static char ids[250][STORE_ID_MAX];
    char scratch[STORE_ID_MAX], text[32];
    const int64_t t0 = wall_ms();
    for (int i = 0; i < 200; i++) /* all in the margin of since t0 */
        append(conv, "A", NULL, "old", t0 - 1 - i % 3, scratch);
    for (int i = 0; i < 250; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        append(conv, "A", NULL, text, t0 + 1 + i, ids[i]);
        if (i % 7 == 0)
            append(other, "B", NULL, "noise", t0 + 1 + i, scratch);
    }
    store_history_t h;
    CHECK(since(conv, t0, 2, &h) == 0 && h.n == 2 && h.has_more);
    if (h.n == 2)
        CHECK(strcmp(h.msgs[0].id, ids[0]) == 0 && strcmp(h.msgs[1].id, ids[1]) == 0);
    store_history_free(&h);
    CHECK(since(conv, t0 + 248, 2, &h) == 0 && h.n == 2 && !h.has_more);
    store_history_free(&h);
    CHECK(since(conv, t0 + 247, 2, &h) == 0 && h.n == 2 && h.has_more);
    store_history_free(&h);

    int64_t from = t0;
    size_t total = 0;
    const size_t sizes[] = {100, 100, 50};
    for (int page = 0; page < 3; page++) {
        CHECK(since(conv, from, 100, &h) == 0 && h.n == sizes[page]);
        CHECK(h.has_more == (page < 2));
        int bad = 0;
        for (size_t i = 0; i < h.n && total + i < 250; i++) {
            snprintf(text, sizeof(text), "m%zu", total + i);
            bad += strcmp(h.msgs[i].content, text) != 0 || strcmp(h.msgs[i].id, ids[total + i]) != 0;
        }
        CHECK(bad == 0);
        total += h.n;
        if (h.n)
            from = h.msgs[h.n - 1].ts_ms;
        store_history_free(&h);
    }
    CHECK(total == 250);
    CHECK(since(conv, from, 100, &h) == 0 && h.n == 0 && !h.has_more);
    CHECK(since(conv, t0, STORE_HISTORY_LIMIT_MAX, &h) == 0 && h.n == 250 && !h.has_more);
    store_history_free(&h);
    mem_free(conv);
    mem_free(other);
}

static void test_private_convs(void)
{
    char *ab = store_conv_private("ben", "ann"), *ac = store_conv_private("cat", "ann");
    char *bc = store_conv_private("ben", "cat"), *aa = store_conv_private("ann", "ann");
    char *lookalike = store_conv_room("ann\x1f" "ben"), *room = store_conv_room("pc-room");
    char id[STORE_ID_MAX], out[256];
    store_conv_list_t l;
    const int64_t t0 = wall_ms();

    CHECK(private_convs("ann", 0, &l) == 0 && l.n == 0 && l.convs == NULL);

    append(ab, "Ann", "Ben", "hi ben", t0 + 100, id);
    append(ac, "Cat", "Ann", "hi ann", t0 + 200, id);
    append(bc, "Ben", "Cat", "hi cat", t0 + 300, id);
    append(room, "Ann", NULL, "in a room", t0 + 400, id);
    append(aa, "Ann", "Ann", "note to self", t0 + 500, id);
    append(lookalike, "Dan", NULL, "a room named like a pair", t0 + 600, id);

    /* the sender and the recipient, the self conversation once, no room */
    CHECK(private_convs("ann", t0, &l) == 0 && l.n == 3);
    CHECK(conv_count(&l, ab) == 1 && conv_count(&l, ac) == 1 && conv_count(&l, aa) == 1);
    store_conv_list_free(&l);
    CHECK(l.convs == NULL && l.n == 0);
    CHECK(private_convs("ben", t0, &l) == 0 && l.n == 2);
    CHECK(conv_count(&l, ab) == 1 && conv_count(&l, bc) == 1);
    store_conv_list_free(&l);
    CHECK(private_convs("cat", t0, &l) == 0 && l.n == 2);
    CHECK(conv_count(&l, ac) == 1 && conv_count(&l, bc) == 1);
    store_conv_list_free(&l);
    /* since filters, exclusively */
    CHECK(private_convs("ann", t0 + 100, &l) == 0 && l.n == 2);
    CHECK(conv_count(&l, ac) == 1 && conv_count(&l, aa) == 1);
    store_conv_list_free(&l);
    CHECK(private_convs("ann", t0 + 499, &l) == 0 && l.n == 1);
    CHECK(l.n == 1 && strcmp(l.convs[0], aa) == 0);
    store_conv_list_free(&l);
    CHECK(private_convs("ann", t0 + 500, &l) == 0 && l.n == 0 && l.convs == NULL);
    CHECK(private_convs("ben", t0 + 300, &l) == 0 && l.n == 0);
    /* users with none */
    const char *nobody[] = {"dan", "an", "ann\x1f" "ben", "pc-room", ""};
    for (size_t i = 0; i < sizeof(nobody) / sizeof(nobody[0]); i++) {
        CHECK(private_convs(nobody[i], 0, &l) == 0 && l.n == 0 && l.convs == NULL);
        store_conv_list_free(&l);
    }

    /* the key, its type, its score and its expiry */
    sh(out, sizeof(out), "redis-cli -c -h 127.0.0.1 -p %d TYPE 'parley:{u:ben}:pconv'", base_port);
    CHECK(strcmp(out, "zset") == 0);
    sh(out, sizeof(out), "redis-cli -c -h 127.0.0.1 -p %d ZCARD 'parley:{u:ben}:pconv'", base_port);
    CHECK(strcmp(out, "2") == 0);
    sh(out, sizeof(out), "redis-cli -c -h 127.0.0.1 -p %d ZRANGE 'parley:{u:ben}:pconv' 0 0 "
                         "WITHSCORES", base_port);
    char want[64];
    snprintf(want, sizeof(want), "\n%" PRId64, t0 + 100);
    CHECK(strstr(out, want) != NULL);
    sh(out, sizeof(out), "redis-cli -c -h 127.0.0.1 -p %d PTTL 'parley:{u:ben}:pconv'", base_port);
    long long pttl = atoll(out);
    CHECK(pttl > 86400000 - 60000 && pttl <= 86400000);

    /* the score is the newest message's, even when an older time comes
     * later (another server's clock) */
    append(ab, "Ben", "Ann", "again", t0 + 700, id);
    append(ab, "Ann", "Ben", "clock behind", t0 + 50, id);
    CHECK(private_convs("ben", t0 + 650, &l) == 0 && l.n == 1 && conv_count(&l, ab) == 1);
    store_conv_list_free(&l);

    /* entries a day older than a new one go */
    append(ab, "Ann", "Ben", "two days later", t0 + 2 * 86400000LL, id);
    CHECK(private_convs("ann", 0, &l) == 0 && l.n == 1 && conv_count(&l, ab) == 1);
    store_conv_list_free(&l);
    CHECK(private_convs("cat", 0, &l) == 0 && l.n == 2); /* cat's index is untouched */
    store_conv_list_free(&l);

    /* an index that cannot be written does not fail the append */
    sh(out, sizeof(out), "redis-cli -c -h 127.0.0.1 -p %d SET 'parley:{u:eve}:pconv' x", base_port);
    CHECK(strcmp(out, "OK") == 0);
    char *ef = store_conv_private("eve", "fay");
    store_appended_t ap;
    CHECK(append_full(ef, "Eve", "Fay", "still stored", t0 + 800, "eve", "ef1", 3,
                      t0 + 800 + STORE_DEDUPE_TTL_MS, &ap) == 0 && !ap.duplicate);
    store_history_t h;
    CHECK(history(ef, NULL, 10, &h) == 0 && h.n == 1);
    store_history_free(&h);
    CHECK(private_convs("fay", t0, &l) == 0 && l.n == 1 && conv_count(&l, ef) == 1);
    store_conv_list_free(&l);
    CHECK(private_convs("eve", t0, &l) == STORE_EIO); /* not a sorted set */
    /* the clientId went out with the index writes: recognised */
    CHECK(append_full(ef, "Eve", "Fay", "retry", t0 + 900, "eve", "ef1", 3,
                      t0 + 900 + STORE_DEDUPE_TTL_MS, &ap) == 0 && ap.duplicate);

    mem_free(ab);
    mem_free(ac);
    mem_free(bc);
    mem_free(aa);
    mem_free(lookalike);
    mem_free(room);
    mem_free(ef);
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
        {"since: messages after a time", test_since},
        {"since: the margin in chunks, paging", test_since_chunks},
        {"private conversations of a user", test_private_convs},
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
