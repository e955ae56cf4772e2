/* rc_test.c - integration tests of the Redis Cluster client (src/redis)
 * against real redis-server processes: a 3-master, 3-replica cluster that
 * tests/redis/run.sh starts with scripts/redis-cluster.sh and describes in
 * the environment (RC_TEST_DIR: its directory with the redis-PORT.pid
 * files; RC_TEST_BASE: its first port). redis-cli moves slots and the test
 * kills a master itself; run.sh restarts that node (it rejoins as a
 * replica) before it runs another program on the same cluster.
 *
 * Every wait is bounded and polls the loop (a 10 ms tick keeps it
 * turning); nothing sleeps blindly. Prints one line per check that fails,
 * one per test, and finally "N passed, N failed"; exits 1 on any failure. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <uv.h>

#include "harness.h"
#include "redis/rc_internal.h"
#include "util/log.h"

static char last_reply[512];

/* On failure, also what the last command (cmd()) got back. */

/* ---- the loop ----------------------------------------------------------- */

/* Runs the loop until *counter >= want or ms pass; returns whether it got
 * there. */
/* ---- commands ----------------------------------------------------------- */

typedef struct {
    int done;
    char err[64];
    int type;
    long long integer;
    char str[256];
    size_t elements;
    char el[4][64];
} res_t;

static void copy_str(char *dst, size_t n, const char *s, size_t len)
{
    if (len >= n)
        len = n - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

static void res_cb(void *ud, const redisReply *r, const char *err)
{
    res_t *x = ud;
    x->done++;
    if (err) {
        snprintf(x->err, sizeof(x->err), "%s", err);
        return;
    }
    x->type = r->type;
    x->integer = r->integer;
    if (r->str)
        copy_str(x->str, sizeof(x->str), r->str, r->len);
    x->elements = r->elements;
    for (size_t i = 0; i < r->elements && i < 4; i++) {
        if (r->element[i]->str)
            copy_str(x->el[i], sizeof(x->el[i]), r->element[i]->str, r->element[i]->len);
    }
}

/* Sends argv (NULL-terminated list of strings) and waits for the reply. */
static res_t cmd(rc_cluster *c, const char *key, ...)
{
    const char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, key);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 16)
        argv[argc++] = a;
    va_end(ap);
    res_t r;
    memset(&r, 0, sizeof(r));
    if (rc_command(c, key, argc, argv, NULL, res_cb, &r) != 0) {
        snprintf(r.err, sizeof(r.err), "rc_command refused");
        return r;
    }
    wait_for(&r.done, 1, 15000);
    if (!r.done)
        snprintf(r.err, sizeof(r.err), "no callback");
    snprintf(last_reply, sizeof(last_reply), "%s: err=\"%s\" type=%d int=%lld str=\"%s\"",
             argv[0], r.err, r.type, r.integer, r.str);
    return r;
}

static int is_ok(const res_t *r)
{
    return r->done == 1 && r->err[0] == '\0' && r->type == REDIS_REPLY_STATUS &&
           strcmp(r->str, "OK") == 0;
}

/* ---- redis-cli ---------------------------------------------------------- */

/* Runs a shell command, puts its output (trimmed) in out; returns status. */
static void node_id(int port, char id[64])
{
    sh(id, 64, "redis-cli -h 127.0.0.1 -p %d cluster myid", port);
}

/* ---- subscriptions ------------------------------------------------------ */

typedef struct {
    int subscribed, lost, messages;
    char last[128];
    char channel[64];
} subst_t;

static void sub_cb(void *ud, rc_sub_event ev, const char *channel, const char *msg, size_t len)
{
    subst_t *s = ud;
    snprintf(s->channel, sizeof(s->channel), "%s", channel);
    if (ev == RC_SUB_SUBSCRIBED)
        s->subscribed++;
    else if (ev == RC_SUB_LOST)
        s->lost++;
    else {
        s->messages++;
        copy_str(s->last, sizeof(s->last), msg, len);
    }
}

/* ---- the clients -------------------------------------------------------- */

static rc_cluster *client(uint32_t timeout_ms)
{
    char seeds[128];
    snprintf(seeds, sizeof(seeds), "127.0.0.1:%d,127.0.0.1:%d", base_port + 3, base_port);
    rc_config cfg = {.timeout_ms = timeout_ms, .backoff_min_ms = 50, .backoff_max_ms = 400,
                     .refresh_ms = 200};
    rc_cluster *c = NULL;
    if (rc_create(&loop, seeds, &cfg, &c) != 0)
        return NULL;
    return c;
}

static rc_cluster *A, *B; /* A subscribes, B publishes */

static int master_of(rc_cluster *c, const char *key)
{
    rc__node *n = c->slots[rc_slot(key, strlen(key))];
    return n ? n->port : -1;
}

/* ---- tests -------------------------------------------------------------- */

static void test_set_get_spread(void)
{
    enum { N = 300 };
    static res_t set[N], get[N];
    char keys[N][32], vals[N][32];
    const char *argv[3];
    memset(set, 0, sizeof(set));
    memset(get, 0, sizeof(get));
    int done = 0;
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "spread:%d", i);
        snprintf(vals[i], sizeof(vals[i]), "value-%d", i);
        argv[0] = "SET";
        argv[1] = keys[i];
        argv[2] = vals[i];
        CHECK(rc_command(A, keys[i], 3, argv, NULL, res_cb, &set[i]) == 0);
    }
    /* All in flight at once; wait for every callback. */
    for (int i = 0; i < N; i++) {
        wait_for(&set[i].done, 1, 10000);
        done += is_ok(&set[i]);
    }
    CHECK(done == N);
    done = 0;
    for (int i = 0; i < N; i++) {
        argv[0] = "GET";
        argv[1] = keys[i];
        CHECK(rc_command(A, keys[i], 2, argv, NULL, res_cb, &get[i]) == 0);
    }
    for (int i = 0; i < N; i++) {
        wait_for(&get[i].done, 1, 10000);
        done += get[i].type == REDIS_REPLY_STRING && strcmp(get[i].str, vals[i]) == 0;
    }
    CHECK(done == N);
    /* The keys were spread over the three masters. */
    int ports[3] = {0}, distinct = 0;
    for (int i = 0; i < N; i++) {
        int p = master_of(A, keys[i]), seen = 0;
        for (int j = 0; j < distinct; j++)
            seen |= ports[j] == p;
        if (!seen && distinct < 3)
            ports[distinct++] = p;
    }
    CHECK(distinct == 3);
    /* A keyless command goes to some master. */
    res_t r = cmd(A, NULL, "PING", NULL);
    CHECK(r.type == REDIS_REPLY_STATUS && strcmp(r.str, "PONG") == 0);
}

static void test_hash_tag_multikey(void)
{
    res_t r = cmd(A, "{user:1}", "MSET", "{user:1}.name", "alice", "{user:1}.mail", "a@example",
                  NULL);
    CHECK(is_ok(&r));
    r = cmd(A, "{user:1}", "MGET", "{user:1}.name", "{user:1}.mail", NULL);
    CHECK(r.type == REDIS_REPLY_ARRAY && r.elements == 2);
    CHECK(strcmp(r.el[0], "alice") == 0 && strcmp(r.el[1], "a@example") == 0);
    /* Keys in different slots: Redis' own error comes back as a reply. */
    r = cmd(A, "a", "MSET", "a", "1", "b", "2", NULL);
    CHECK(r.err[0] == '\0' && r.type == REDIS_REPLY_ERROR && strncmp(r.str, "CROSSSLOT", 9) == 0);
}

static void test_sharded_pubsub(void)
{
    /* One channel on each master. */
    char chans[3][32];
    int ports[3], n = 0;
    for (int i = 0; n < 3 && i < 1000; i++) {
        char ch[32];
        snprintf(ch, sizeof(ch), "room:%d", i);
        int p = master_of(A, ch), dup = 0;
        for (int j = 0; j < n; j++)
            dup |= ports[j] == p;
        if (!dup && p > 0) {
            ports[n] = p;
            snprintf(chans[n++], sizeof(chans[0]), "%s", ch);
        }
    }
    CHECK(n == 3);
    static subst_t st[3];
    memset(st, 0, sizeof(st));
    for (int i = 0; i < n; i++)
        CHECK(rc_ssubscribe(A, chans[i], sub_cb, &st[i]) == 0);
    CHECK(rc_ssubscribe(A, chans[0], sub_cb, &st[0]) == RC_EEXIST);
    for (int i = 0; i < n; i++)
        CHECK(wait_for(&st[i].subscribed, 1, 5000));

    for (int i = 0; i < n; i++) {
        char msg[128];
        snprintf(msg, sizeof(msg), "hello %s", chans[i]);
        res_t r = cmd(B, chans[i], "SPUBLISH", chans[i], msg, NULL);
        CHECK(r.type == REDIS_REPLY_INTEGER && r.integer == 1);
        CHECK(wait_for(&st[i].messages, 1, 5000));
        CHECK(strcmp(st[i].last, msg) == 0);
    }
    /* Binary payloads pass untouched. */
    const char *argv[] = {"SPUBLISH", chans[1], "a\0b\r\n"};
    size_t lens[] = {8, strlen(chans[1]), 5};
    res_t r;
    memset(&r, 0, sizeof(r));
    CHECK(rc_command(B, chans[1], 3, argv, lens, res_cb, &r) == 0);
    CHECK(wait_for(&st[1].messages, 2, 5000));
    CHECK(memcmp(st[1].last, "a\0b\r\n", 5) == 0);
    wait_for(&r.done, 1, 5000);

    /* After rc_sunsubscribe nobody listens there any more. */
    CHECK(rc_sunsubscribe(A, chans[0]) == 0);
    int zero = 0;
    for (int t = 0; t < 50 && !zero; t++) {
        r = cmd(B, chans[0], "SPUBLISH", chans[0], "anyone?", NULL);
        zero = r.type == REDIS_REPLY_INTEGER && r.integer == 0;
        if (!zero)
            spin(20);
    }
    CHECK(zero);
    CHECK(st[0].messages == 1);
    rc_sunsubscribe(A, chans[1]);
    rc_sunsubscribe(A, chans[2]);
}

/* Moves `slot` from its master to another with redis-cli, the way
 * resharding does: IMPORTING/MIGRATING, then (after `between`) MIGRATE of
 * its keys and SETSLOT NODE on every master. Returns the new port. */
static int move_slot(int slot, int src, void (*between)(int src, int dst))
{
    int dst = -1;
    for (rc__node *n = A->nodes; n; n = n->next) {
        if (n->nslots > 0 && n->port != src)
            dst = n->port;
    }
    if (dst < 0)
        return -1;
    char src_id[64], dst_id[64], out[4096];
    node_id(src, src_id);
    node_id(dst, dst_id);
    sh(out, sizeof(out), "redis-cli -p %d cluster setslot %d importing %s", dst, slot, src_id);
    CHECK(strcmp(out, "OK") == 0);
    sh(out, sizeof(out), "redis-cli -p %d cluster setslot %d migrating %s", src, slot, dst_id);
    CHECK(strcmp(out, "OK") == 0);
    if (between)
        between(src, dst);
    for (int round = 0; round < 100; round++) {
        sh(out, sizeof(out), "redis-cli -p %d cluster getkeysinslot %d 100", src, slot);
        if (out[0] == '\0')
            break;
        for (char *k = strtok(out, "\n"); k; k = strtok(NULL, "\n")) {
            char res[256];
            sh(res, sizeof(res), "redis-cli -p %d migrate 127.0.0.1 %d '%s' 0 5000", src, dst, k);
            CHECK(strcmp(res, "OK") == 0);
        }
    }
    /* The new owner first, then the old one, then everyone else. */
    sh(out, sizeof(out), "redis-cli -p %d cluster setslot %d node %s", dst, slot, dst_id);
    CHECK(strcmp(out, "OK") == 0);
    sh(out, sizeof(out), "redis-cli -p %d cluster setslot %d node %s", src, slot, dst_id);
    CHECK(strcmp(out, "OK") == 0);
    for (rc__node *n = A->nodes; n; n = n->next) {
        if (n->nslots > 0 && n->port != src && n->port != dst)
            sh(out, sizeof(out), "redis-cli -p %d cluster setslot %d node %s", n->port, slot,
               dst_id);
    }
    return dst;
}

/* While the slot is half-way: a key the old owner does not have is asked
 * of the new one (-ASK), for reads and writes. */
static void during_migration(int src, int dst)
{
    (void)src;
    (void)dst;
    res_t r = cmd(A, "{mv}fresh", "GET", "{mv}fresh", NULL);
    CHECK(r.err[0] == '\0' && r.type == REDIS_REPLY_NIL);
    r = cmd(A, "{mv}fresh", "SET", "{mv}fresh", "asked", NULL);
    CHECK(is_ok(&r));
    r = cmd(A, "{mv}fresh", "GET", "{mv}fresh", NULL);
    CHECK(r.type == REDIS_REPLY_STRING && strcmp(r.str, "asked") == 0);
    /* The map still names the old owner: ASK does not change it. */
    CHECK(master_of(A, "{mv}fresh") == src);
}

static void test_moved_ask_resubscribe(void)
{
    const char *key = "{mv}key";
    int slot = rc_slot(key, strlen(key));
    res_t r = cmd(A, key, "SET", key, "moving", NULL);
    CHECK(is_ok(&r));
    static subst_t st;
    memset(&st, 0, sizeof(st));
    CHECK(rc_ssubscribe(A, "{mv}chan", sub_cb, &st) == 0);
    CHECK(wait_for(&st.subscribed, 1, 5000));
    int src = master_of(A, key);
    /* B keeps the old map until its own -MOVED. */
    r = cmd(B, key, "GET", key, NULL);
    CHECK(r.type == REDIS_REPLY_STRING && strcmp(r.str, "moving") == 0);
    unsigned version = B->map_version;

    int dst = move_slot(slot, src, during_migration);
    CHECK(dst > 0);
    /* A stale map: the old owner answers -MOVED, the client follows. */
    r = cmd(B, key, "GET", key, NULL);
    CHECK(r.err[0] == '\0' && r.type == REDIS_REPLY_STRING && strcmp(r.str, "moving") == 0);
    CHECK(master_of(B, key) == dst);
    CHECK(B->map_version > version);
    r = cmd(B, "{mv}fresh", "GET", "{mv}fresh", NULL);
    CHECK(r.type == REDIS_REPLY_STRING && strcmp(r.str, "asked") == 0);

    /* The subscription follows its slot to the new master. */
    CHECK(wait_for(&st.subscribed, 2, 8000));
    CHECK(st.lost >= 1);
    CHECK(A->subs && A->subs->node && A->subs->node->port == dst);
    int got = 0;
    for (int t = 0; t < 20 && !got; t++) {
        r = cmd(B, "{mv}chan", "SPUBLISH", "{mv}chan", "after move", NULL);
        got = wait_for(&st.messages, 1, 500);
    }
    CHECK(got && strcmp(st.last, "after move") == 0);
    rc_sunsubscribe(A, "{mv}chan");
}

static void test_timeout(void)
{
    rc_cluster *c = client(300);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    res_t r = cmd(c, "{tmo}", "PING", NULL); /* map known */
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    r = cmd(c, "{tmo}list", "BLPOP", "{tmo}list", "1", NULL);
    uint64_t took = uv_now(&loop) - t0;
    CHECK(strcmp(r.err, RC_ERR_TIMEOUT) == 0);
    CHECK(took >= 250 && took < 1000);
    /* Nothing came back on that connection for a whole timeout: it is
     * taken for hung and reconnected (the late BLPOP reply never comes);
     * commands for the slot succeed again. */
    int ok = 0;
    for (int t = 0; t < 20 && !ok; t++) {
        r = cmd(c, "{tmo}list", "SET", "{tmo}x", "1", NULL);
        ok = is_ok(&r);
    }
    CHECK(ok);
    rc_free(c);
}

static void test_queue_bound(void)
{
    /* Nothing listens on port 1: no master, ever. */
    rc_config cfg = {.timeout_ms = 400, .max_queued = 5, .backoff_min_ms = 20,
                     .backoff_max_ms = 100, .refresh_ms = 50};
    rc_cluster *c = NULL;
    CHECK(rc_create(&loop, "127.0.0.1:1", &cfg, &c) == 0);
    if (c == NULL)
        return;
    static res_t r[10];
    memset(r, 0, sizeof(r));
    const char *argv[] = {"GET", "q"};
    for (int i = 0; i < 10; i++)
        CHECK(rc_command(c, "q", 2, argv, NULL, res_cb, &r[i]) == 0);
    int full = 0, timeouts = 0;
    for (int i = 0; i < 10; i++) {
        CHECK(wait_for(&r[i].done, 1, 3000));
        full += strcmp(r[i].err, RC_ERR_QUEUE_FULL) == 0;
        timeouts += strcmp(r[i].err, RC_ERR_TIMEOUT) == 0;
    }
    CHECK(full == 5 && timeouts == 5);
    /* rc_free runs pending callbacks before it returns. */
    res_t last;
    memset(&last, 0, sizeof(last));
    CHECK(rc_command(c, "q", 2, argv, NULL, res_cb, &last) == 0);
    rc_free(c);
    CHECK(last.done == 1 && strcmp(last.err, RC_ERR_CLOSED) == 0);
}

typedef struct {
    rc_cluster *c; /* freed by the first callback */
    int calls, ok, closed, messages;
} freer_t;

static void free_on_reply(void *ud, const redisReply *r, const char *err)
{
    freer_t *f = ud;
    f->calls++;
    if (err == NULL && r)
        f->ok++;
    else if (err && strcmp(err, RC_ERR_CLOSED) == 0)
        f->closed++;
    if (f->c) {
        rc_cluster *c = f->c;
        f->c = NULL;
        rc_free(c);
    }
}

static void free_on_message(void *ud, rc_sub_event ev, const char *channel, const char *msg,
                            size_t len)
{
    (void)channel, (void)msg, (void)len;
    freer_t *f = ud;
    if (ev == RC_SUB_SUBSCRIBED)
        f->calls++;
    if (ev == RC_SUB_MESSAGE && f->c) {
        f->messages++;
        rc_cluster *c = f->c;
        f->c = NULL;
        rc_free(c);
    }
}

static void test_free_in_callbacks(void)
{
    /* From a reply callback, with commands pending on every master: they
     * all get RC_ERR_CLOSED inside rc_free, the connection whose callback
     * is running is freed when it returns. */
    static freer_t f;
    memset(&f, 0, sizeof(f));
    f.c = client(1000);
    res_t r = cmd(f.c, NULL, "PING", NULL);
    CHECK(r.type == REDIS_REPLY_STATUS);
    char keys[30][32];
    const char *argv[2] = {"GET", NULL};
    for (int i = 0; i < 30; i++) {
        snprintf(keys[i], sizeof(keys[i]), "spread:%d", i);
        argv[1] = keys[i];
        CHECK(rc_command(f.c, keys[i], 2, argv, NULL, free_on_reply, &f) == 0);
    }
    CHECK(wait_for(&f.calls, 30, 5000));
    CHECK(f.ok == 1 && f.closed == 29 && f.calls == 30);

    /* From a message callback, in the middle of the subscriber link's
     * reply parsing. */
    static freer_t g;
    memset(&g, 0, sizeof(g));
    g.c = client(1000);
    CHECK(rc_ssubscribe(g.c, "{free}chan", free_on_message, &g) == 0);
    CHECK(wait_for(&g.calls, 1, 5000));
    r = cmd(B, "{free}chan", "SPUBLISH", "{free}chan", "bye", NULL);
    CHECK(r.type == REDIS_REPLY_INTEGER && r.integer == 1);
    CHECK(wait_for(&g.messages, 1, 5000));
    CHECK(g.c == NULL);
    spin(50); /* close callbacks run; ASan sees any use after free */
}

static void test_failover(void)
{
    const char *key = "{fo}key";
    res_t r = cmd(A, key, "SET", key, "before", NULL);
    CHECK(is_ok(&r));
    static subst_t st;
    memset(&st, 0, sizeof(st));
    CHECK(rc_ssubscribe(A, "{fo}chan", sub_cb, &st) == 0);
    CHECK(wait_for(&st.subscribed, 1, 5000));
    int victim = master_of(A, key);
    CHECK(victim > 0);

    pid_t pid = node_pid(victim);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    CHECK(kill(pid, SIGKILL) == 0);
    printf("  killed master 127.0.0.1:%d (pid %d)\n", victim, (int)pid);

    /* Commands for its slots fail (timeout, lost connection) until its
     * replica is promoted, then succeed. */
    int ok = 0, attempts = 0;
    while (!ok && uv_now(&loop) - t0 < 20000) {
        attempts++;
        r = cmd(A, key, "SET", key, "after", NULL);
        ok = is_ok(&r);
        if (!ok)
            spin(100);
    }
    uint64_t took = uv_now(&loop) - t0;
    printf("  writes succeed again after %llu ms (%d attempts)\n", (unsigned long long)took,
           attempts);
    CHECK(ok);
    CHECK(took < 15000);
    CHECK(master_of(A, key) > 0 && master_of(A, key) != victim);
    r = cmd(A, key, "GET", key, NULL);
    CHECK(r.type == REDIS_REPLY_STRING && strcmp(r.str, "after") == 0);

    /* The subscription was lost and is back, on the new master. */
    CHECK(wait_for(&st.subscribed, 2, 10000));
    CHECK(st.lost >= 1);
    int got = 0;
    for (int t = 0; t < 40 && !got; t++) {
        r = cmd(B, "{fo}chan", "SPUBLISH", "{fo}chan", "after failover", NULL);
        got = wait_for(&st.messages, 1, 250);
    }
    CHECK(got && strcmp(st.last, "after failover") == 0);
    rc_sunsubscribe(A, "{fo}chan");
}

/* ---- main --------------------------------------------------------------- */

int main(void)
{
    int r = harness_start("RC_TEST", LOG_INFO);
    if (r != 0)
        return r;
    A = client(1000);
    B = client(1000);

    static const harness_test tests[] = {
        {"set/get across the three masters", test_set_get_spread},
        {"hash-tag multi-key command", test_hash_tag_multikey},
        {"sharded pub/sub on every master", test_sharded_pubsub},
        {"-MOVED, -ASK and re-subscribe after resharding", test_moved_ask_resubscribe},
        {"command timeout", test_timeout},
        {"queue bound", test_queue_bound},
        {"rc_free from inside callbacks", test_free_in_callbacks},
        {"failover: commands and subscription recover", test_failover},
    };
    int passed = 0;
    int failed = harness_run(tests, sizeof(tests) / sizeof(tests[0]), &passed);
    rc_free(A);
    rc_free(B);
    return harness_finish(passed, failed);
}
