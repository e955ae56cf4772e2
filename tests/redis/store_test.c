/* store_test.c - the Redis Cluster store (src/store/store_redis.c) against
 * the live 3-master, 3-replica cluster that tests/redis/run.sh store_test
 * starts (STORE_TEST_BASE: its first port; STORE_TEST_DIR: its directory
 * with the redis-PORT.pid files). First the store contract suite
 * (tests/store/store_contract.c, which the SQLite store runs too), each
 * test on a flushed cluster; then what only the Redis store has: its keys
 * (the room index, the clientId entries' expiry, the pconv index, the
 * contract v2 keys with an interrupted purge and a stale name), its id
 * form, the time margin of store_since and its chunks, open's checks, and
 * a master killed with -9 (last: run.sh restarts that node before it runs
 * another program on the same cluster).
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
#include "../store/store_contract.c"
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
    store_msg_in_t m = {conv, from, to, text, strlen(text), ts, NULL, NULL, NULL, NULL};
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

static char *seeds(void)
{
    static char s[64];
    snprintf(s, sizeof(s), "127.0.0.1:%d,127.0.0.1:%d", base_port + 3, base_port);
    return s;
}

/* ---- the contract suite on this backend ----------------------------------- */

void sc_failed(const char *expr, const char *file, int line)
{
    fprintf(stderr, "  check failed: %s (%s:%d)\n", expr, file, line);
    failures++;
}

/* Empties the cluster: FLUSHALL on every node (replicas refuse it and
 * follow their master). */
static void flush_all(void)
{
    char out[256];
    for (int i = 0; i < 6; i++)
        sh(out, sizeof(out), "redis-cli -h 127.0.0.1 -p %d FLUSHALL 2>&1", base_port + i);
}

static int redis_wait(sc_env *env, const int *calls, int want)
{
    (void)env;
    return wait_for(calls, want, 20000);
}

static void redis_close(sc_env *env)
{
    store_close(env->s);
    env->s = NULL;
    uv_run(&loop, UV_RUN_NOWAIT); /* close callbacks free the rest */
}

static int redis_reopen(sc_env *env)
{
    (void)env;
    return store_redis_open(&turn, seeds(), 1000, 0, 1, &env->s);
}

static int redis_open2(sc_env *env, store_t **out)
{
    (void)env;
    return store_redis_open(&turn, seeds(), 1000, 0, 1, out);
}

static void redis_close2(sc_env *env, store_t *s)
{
    (void)env;
    store_close(s);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* Runs every contract test on S, each on an empty cluster, printing as
 * harness_run does; returns the number that failed, adds the others to
 * *passed. */
static int run_contract(int *passed)
{
    sc_env env = {.loop = &loop, .s = S, .wait = redis_wait, .close = redis_close,
                  .reopen = redis_reopen, .open2 = redis_open2, .close2 = redis_close2,
                  .concurrent2 = 1};
    int failed = 0;
    for (size_t i = 0; i < SC_NTESTS; i++) {
        flush_all();
        failures = 0;
        uv_update_time(&loop);
        uint64_t t0 = uv_now(&loop);
        printf("== contract: %s\n", sc_tests[i].name);
        sc_tests[i].fn(&env);
        if (env.s == NULL && redis_reopen(&env) != 0)
            failures++;
        uv_update_time(&loop);
        printf("%s contract: %s (%llu ms)\n", failures ? "FAIL" : "ok  ", sc_tests[i].name,
               (unsigned long long)(uv_now(&loop) - t0));
        if (failures)
            failed++;
        else
            (*passed)++;
    }
    S = env.s;
    return failed;
}

/* A room whose index entry was never written (a failure between the two
 * writes of a create) is indexed by the next create of that key. */
static void test_room_index_repaired(void)
{
    char out[256], name[64];
    int created = -1;
    flush_all();
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
    CHECK(r.rc == 0 && r.list.n == 1);
    if (r.list.n == 1)
        CHECK(strcmp(r.list.rooms[0].key, "orphan") == 0 &&
              strcmp(r.list.rooms[0].name, "Orphan") == 0);
    store_room_list_free(&r.list);
    CHECK(room_create("orphan", "x", NULL, NULL) == 0); /* indexed once */
    memset(&r, 0, sizeof(r));
    store_room_list(S, list_cb, &r);
    CHECK(wait_for(&r.calls, 1, 10000));
    CHECK(r.rc == 0 && r.list.n == 1);
    store_room_list_free(&r.list);
}

/* ---- Redis only ---------------------------------------------------------- */

/* This backend's id form "<ms>-<seq>.<tag>": ids of another conversation
 * (the tag says so), stream ids without their tag, stream ids out of
 * range, malformed stream ids. */
static void test_bad_before_ids(void)
{
    char *a = store_conv_room("a"), *b = store_conv_room("b");
    char ida[STORE_ID_MAX], idb[STORE_ID_MAX], swapped[STORE_ID_MAX + 8];
    store_history_t h;
    append(a, "x", NULL, "in a", 1, ida);
    append(b, "x", NULL, "in b", 2, idb);
    CHECK(history(a, "18446744073709551615-18446744073709551615", 10, &h) == STORE_EBADID);
    /* the stream id of a's message with b's tag, and the other way */
    snprintf(swapped, sizeof(swapped), "%.*s%s", (int)(strrchr(ida, '.') - ida), ida,
             strrchr(idb, '.'));
    CHECK(history(a, swapped, 10, &h) == STORE_EBADID);
    CHECK(history(b, swapped, 10, &h) == STORE_EBADID ||
          strncmp(ida, idb, (size_t)(strrchr(ida, '.') - ida)) == 0);
    /* a's id without its tag */
    snprintf(swapped, sizeof(swapped), "%.*s", (int)(strrchr(ida, '.') - ida), ida);
    CHECK(history(a, swapped, 10, &h) == STORE_EBADID);
    const char *bad[] = {"1-", "-", "01-1", "1-01", "1-1-1", "1-+1", "1-a", "(1-1", "+",
                         "18446744073709551616-0", "99999999999999999999999-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char tagged[STORE_ID_MAX + 16];
        snprintf(tagged, sizeof(tagged), "%s%s", bad[i], strrchr(ida, '.'));
        int rc = history(a, tagged, 10, &h);
        if (rc != STORE_EBADID)
            fprintf(stderr, "  before \"%s\": %d\n", tagged, rc);
        CHECK(rc == STORE_EBADID);
    }
    CHECK(history(a, ida, 10, &h) == 0 && h.n == 0);
    store_history_free(&h);
    mem_free(a);
    mem_free(b);
}

/* Redis expires clientId entries by itself (PX), and the purge has
 * nothing to do (it says 0). */
static void test_dedupe_expiry(void)
{
    const int64_t now = 1700000000000;
    char *conv = store_conv_room("dd");
    store_appended_t a;
    CHECK(append_full(conv, "Alice", NULL, "t1", now, "alice", "short", 5, now + 300, &a) == 0);
    CHECK(!a.duplicate);
    CHECK(append_full(conv, "Alice", NULL, "t2", now + 1, "alice", "short", 5, now + 301, &a) ==
          0);
    CHECK(a.duplicate);
    char out[256];
    sh(out, sizeof(out), "redis-cli -c -h 127.0.0.1 -p %d PTTL 'parley:5:{u:alice}:cid:short'",
       base_port);
    CHECK(atoll(out) > 0 && atoll(out) <= 300);
    spin(600);
    CHECK(append_full(conv, "Alice", NULL, "t3", now + 2, "alice", "short", 5, now + 302, &a) ==
          0);
    CHECK(!a.duplicate);

    res_t r;
    memset(&r, 0, sizeof(r));
    r.order = -1;
    store_dedupe_purge(S, now + 3 * STORE_DEDUPE_TTL_MS, count_cb, &r);
    CHECK(r.calls == 0);
    CHECK(wait_for(&r.calls, 1, 5000) && r.rc == 0 && r.order == 0);
    mem_free(conv);
}

/* store_since finds messages by stream id time (Redis' clock) with a
 * margin: a message whose ts is ahead of it by less than the margin is
 * found; by more, missed (the documented limit). Ids as history's. */
static void test_since_skew(void)
{
    char *skew = store_conv_room("since-skew");
    char scratch[STORE_ID_MAX], id[STORE_ID_MAX];
    store_history_t h;
    int64_t now = wall_ms();
    append(skew, "A", NULL, "5 s ahead", now + 5000, scratch);
    append(skew, "A", NULL, "60 s ahead", now + 60000, id);
    CHECK(since(skew, now + 4000, 50, &h) == 0 && h.n == 2);
    store_history_free(&h);
    CHECK(since(skew, now + 59000, 50, &h) == 0 && h.n == 0);
    store_history_free(&h);
    mem_free(skew);
}

/* The pconv index: its key, type, score and expiry; the newest time wins;
 * a day's trim; an index that cannot be written does not fail the append
 * (nor the clientId written with it). */
static void test_pconv_index(void)
{
    char *ab = store_conv_private("ben", "ann"), *ac = store_conv_private("cat", "ann");
    char *bc = store_conv_private("ben", "cat");
    char id[STORE_ID_MAX], out[256], want[64];
    store_conv_list_t l;
    const int64_t t0 = wall_ms();
    append(ab, "Ann", "Ben", "hi ben", t0 + 100, id);
    append(ac, "Cat", "Ann", "hi ann", t0 + 200, id);
    append(bc, "Ben", "Cat", "hi cat", t0 + 300, id);

    sh(out, sizeof(out), "redis-cli -c -h 127.0.0.1 -p %d TYPE 'parley:{u:ben}:pconv'", base_port);
    CHECK(strcmp(out, "zset") == 0);
    sh(out, sizeof(out), "redis-cli -c -h 127.0.0.1 -p %d ZCARD 'parley:{u:ben}:pconv'", base_port);
    CHECK(strcmp(out, "2") == 0);
    sh(out, sizeof(out), "redis-cli -c -h 127.0.0.1 -p %d ZRANGE 'parley:{u:ben}:pconv' 0 0 "
                         "WITHSCORES", base_port);
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
    mem_free(ef);
}

/* ---- contract v2 keys ------------------------------------------------------ */

/* redis-cli on the cluster (-c follows redirections): the first line of
 * the answer into out. */
static void cli(char *out, size_t n, const char *args)
{
    sh(out, n, "redis-cli -c -h 127.0.0.1 -p %d %s", base_port, args);
}

static void users_keys(sc_env *env)
{
    const int64_t t = 1700000000000;
    sc_res a, c, r;
    uint64_t n;
    char out[256], cmd[256], id[STORE_ID_MAX];
    store_member_list_t ml;
    SC_ASSERT(sc_claim(env, "ann", "Ann", t, &a) == 0);
    SC_ASSERT(sc_member(env, 1, "r", a.user.id, t, &n) == 0 && n == 1);
    char *d = store_conv_direct(a.user.id, "BBBBBBBBBBBBBBBBBBBB");
    SC_ASSERT(sc_append_from(env, d, a.user.id, "hi", t + 1, id) == 0);
    /* the layout of store_redis.c's top comment */
    snprintf(cmd, sizeof(cmd), "HGET 'parley:{i:%s}:user' key", a.user.id);
    cli(out, sizeof(out), cmd);
    SC_ASSERT(strcmp(out, "ann") == 0);
    cli(out, sizeof(out), "GET 'parley:{nm:ann}:owner'");
    SC_ASSERT(strcmp(out, a.user.id) == 0);
    snprintf(cmd, sizeof(cmd), "ZSCORE 'parley:{users}:guests' %s", a.user.id);
    cli(out, sizeof(out), cmd);
    SC_ASSERT(strcmp(out, "1700000000000") == 0);
    snprintf(cmd, sizeof(cmd), "ZRANK 'parley:{r:r}:members' %s", a.user.id);
    cli(out, sizeof(out), cmd);
    SC_ASSERT(strcmp(out, "0") == 0);
    snprintf(cmd, sizeof(cmd), "SCARD 'parley:{i:%s}:dconv'", a.user.id);
    cli(out, sizeof(out), cmd);
    SC_ASSERT(strcmp(out, "1") == 0);
    snprintf(cmd, sizeof(cmd), "SCARD 'parley:{i:BBBBBBBBBBBBBBBBBBBB}:dconv'");
    cli(out, sizeof(out), cmd);
    SC_ASSERT(strcmp(out, "1") == 0);

    /* a purge interrupted after the user's record went (the rest of its
     * keys and its guests entry left): the next purge finishes it */
    snprintf(cmd, sizeof(cmd), "DEL 'parley:{i:%s}:user'", a.user.id);
    cli(out, sizeof(out), cmd);
    SC_ASSERT(strcmp(out, "1") == 0);
    SC_ASSERT(sc_purge(env, t + SC_TTL, &n) == 0 && n == 1);
    SC_ASSERT(sc_room_members(env, "r", &ml) == 0 && ml.n == 0);
    snprintf(cmd, sizeof(cmd), "EXISTS 'parley:{i:%s}:rooms' 'parley:{i:%s}:dconv'", a.user.id,
             a.user.id);
    cli(out, sizeof(out), cmd);
    SC_ASSERT(strcmp(out, "0") == 0);
    cli(out, sizeof(out), "ZCARD 'parley:{users}:guests'");
    SC_ASSERT(strcmp(out, "0") == 0);
    cli(out, sizeof(out), "SCARD 'parley:{i:BBBBBBBBBBBBBBBBBBBB}:dconv'");
    SC_ASSERT(strcmp(out, "0") == 0);
    store_history_t h;
    SC_ASSERT(sc_history(env, d, NULL, 10, &h) == 0 && h.n == 0);

    /* a name whose owner's record is gone is free */
    SC_ASSERT(sc_claim(env, "cat", "Cat", t, &c) == 0);
    snprintf(cmd, sizeof(cmd), "DEL 'parley:{i:%s}:user'", c.user.id);
    cli(out, sizeof(out), cmd);
    SC_ASSERT(sc_user_find(env, "cat", t, &r) == STORE_ENOTFOUND);
    SC_ASSERT(sc_claim(env, "cat", "Cat", t, &r) == 0 && strcmp(r.user.id, c.user.id) != 0);
    cli(out, sizeof(out), "GET 'parley:{nm:cat}:owner'");
    SC_ASSERT(strcmp(out, r.user.id) == 0);
    mem_free(d);
}

static void test_users_keys(void)
{
    flush_all();
    sc_env env = {.loop = &loop, .s = S, .wait = redis_wait, .close = redis_close,
                  .reopen = redis_reopen};
    users_keys(&env);
}

/* open refuses what it cannot honour, and keeps nothing then: a
 * wait_replicas over the maximum (it used to be taken modulo 1000), a
 * missing loop or seed list. */
static void test_open_checks(void)
{
    store_t *s = (store_t *)1;
    CHECK(store_redis_open(&turn, seeds(), 1000, 0, STORE_REDIS_WAIT_REPLICAS_MAX + 1, &s) ==
          STORE_EINVAL);
    CHECK(s == NULL);
    s = (store_t *)1;
    CHECK(store_redis_open(&turn, seeds(), 1000, 0, 1000, &s) == STORE_EINVAL && s == NULL);
    s = (store_t *)1;
    CHECK(store_redis_open(NULL, seeds(), 1000, 0, 0, &s) == STORE_EINVAL && s == NULL);
    s = (store_t *)1;
    CHECK(store_redis_open(&turn, NULL, 1000, 0, 0, &s) == STORE_EINVAL && s == NULL);
    /* the largest is fine */
    CHECK(store_redis_open(&turn, seeds(), 1000, 0, STORE_REDIS_WAIT_REPLICAS_MAX, &s) == 0);
    store_close(s);
    uv_run(&loop, UV_RUN_NOWAIT);
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
            bad += strcmp(h.msgs[i].content, text) != 0 ||
                   strcmp(h.msgs[i].id, ids[total + i]) != 0;
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
        store_msg_in_t m = {conv, "A", NULL, "during", 6, 2 + i, NULL, NULL, NULL, NULL};
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
        store_msg_in_t m = {conv, "A", NULL, "after", 5, 100, NULL, NULL, NULL, NULL};
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
    if (store_redis_open(&turn, seeds(), 1000, 0, 1, &S) != 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    static const harness_test tests[] = {
        {"a room missing from the index is indexed by the next create",
         test_room_index_repaired},
        {"ids: this backend's forms", test_bad_before_ids},
        {"clientIds: expired by Redis, purge says 0", test_dedupe_expiry},
        {"since: the clock margin", test_since_skew},
        {"since: the margin in chunks, paging", test_since_chunks},
        {"the pconv index", test_pconv_index},
        {"contract v2 keys, an interrupted purge, a stale name", test_users_keys},
        {"open refuses what it cannot honour", test_open_checks},
        {"failover: a master killed with -9", test_failover},
    };
    int passed = 0;
    int failed = run_contract(&passed);
    failed += harness_run(tests, sizeof(tests) / sizeof(tests[0]), &passed);
    store_close(S);
    return harness_finish(passed, failed);
}
