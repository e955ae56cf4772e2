/* bus_test.c - the Redis bus (src/bus/bus_redis.c) through bus.h, against
 * the live 3-master, 3-replica cluster that tests/redis/run.sh bus_test
 * starts (BUS_TEST_BASE: its first port; BUS_TEST_DIR: its directory with
 * the redis-PORT.pid files). Several buses share the test's loop, each one
 * a node of its own; one more node runs in a child process (this program
 * again, with --child) so that it can die without a word (SIGKILL). Every
 * node heartbeats faster than in production, and the one that gets killed
 * is found dead in 2 s instead of 10 (HEARTBEAT_MS and CHILD_DEAD_MS
 * below). The last test kills a master; run.sh restarts it (it rejoins as
 * a replica) before it runs another program on the same cluster.
 *
 * Everything is observed through bus.h (metrics included); nothing reaches
 * into the bus. Every wait is bounded and polls the loop (a 10 ms tick
 * keeps it turning). Prints one line per failed check, one per test, and
 * finally "N passed, N failed"; exits 1 on any failure. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "harness.h"
#include "bus/bus.h"
#include "util/buf.h"
#include "util/log.h"

#define TIMEOUT_MS 1000
/* Every node here heartbeats 8 times as often as in production
 * (bus_redis_timing), so nodes meet, leave and are found dead in a fraction
 * of the time. The nodes of the test's own process keep the production
 * dead time (10 s): a failover (test_failover: several seconds during
 * which Redis answers every slot with CLUSTERDOWN) must drop nobody, as in
 * production. The child, the one node that gets killed, writes a short
 * dead time into the registry, where each node is judged by its own: it is
 * found dead in about 2 s instead of 10. */
#define HEARTBEAT_MS 250
#define CHILD_DEAD_MS 2000
static const bus_redis_timing timing = {HEARTBEAT_MS, BUS_NODE_DEAD_MS};
static const bus_redis_timing child_timing = {HEARTBEAT_MS, CHILD_DEAD_MS};
/* Slack in the bound of a wait for what heartbeats bring: Redis round
 * trips, a sweep's commands, a busy machine (as much as the production
 * heartbeat gave: bounds are never looser than with it). */
#define SLACK_MS 3000
/* The reserve window of the test's nodes (the child's is longer). */
#define RESERVE_MS 3000
/* How long the child may take to be found dead (bus.h: its dead time plus
 * one heartbeat), plus one more heartbeat and 1 s for the loop and the
 * registry read in flight. */
#define DEAD_BOUND_MS (CHILD_DEAD_MS + 2 * HEARTBEAT_MS + 1000)
/* How long after it was found dead its reserved users may take to go: the
 * window, plus slack. */
#define RESERVE_BOUND_MS (RESERVE_MS + 500)

/* Runs the loop until cond holds or ms pass; ok gets the last value. */
#define WAIT_UNTIL(ok, cond, ms)                                                  \
    do {                                                                          \
        uv_update_time(&loop);                                                    \
        uint64_t end_ = uv_now(&loop) + (ms);                                     \
        while (!((ok) = (cond)) && uv_now(&loop) < end_)                          \
            uv_run(&loop, UV_RUN_ONCE);                                           \
    } while (0)

/* ---- nodes --------------------------------------------------------------- */

typedef struct {
    bus_t *bus;
    int messages;
    char topic[128];
    char data[256];
    size_t len;
    int presence;
    unsigned what;
    const char *want; /* counts the messages to this topic in wanted */
    int wanted;
    const char *watch_topic; /* counts its on_topic events: */
    int lost, resumed;       /* BUS_TOPIC_LOST, BUS_TOPIC_RESUMED */
    int topic_bad;           /* a RESUMED without a LOST before it, or an
                                event for never_lost */
    const char *never_lost;  /* a topic that must get no on_topic */
} node_t;

static node_t A, B, C;

static void on_message(void *ud, const char *topic, const char *data, size_t len)
{
    node_t *n = ud;
    n->messages++;
    snprintf(n->topic, sizeof(n->topic), "%s", topic);
    n->len = len < sizeof(n->data) ? len : sizeof(n->data);
    memcpy(n->data, data, n->len);
    if (n->want && strcmp(topic, n->want) == 0)
        n->wanted++;
}

static void on_topic(void *ud, const char *topic, bus_topic_event ev)
{
    node_t *n = ud;
    if (n->never_lost && strcmp(topic, n->never_lost) == 0)
        n->topic_bad++;
    if (n->watch_topic == NULL || strcmp(topic, n->watch_topic) != 0)
        return;
    if (ev == BUS_TOPIC_LOST) {
        n->lost++;
    } else {
        n->resumed++;
        if (n->resumed > n->lost)
            n->topic_bad++;
    }
}

static void on_presence(void *ud, unsigned what)
{
    node_t *n = ud;
    n->presence++;
    n->what |= what;
}

static const char *seeds(void)
{
    static char s[64];
    snprintf(s, sizeof(s), "127.0.0.1:%d,127.0.0.1:%d", base_port + 3, base_port);
    return s;
}

static int node_open_reserve(node_t *n, uint32_t reserve_ms)
{
    memset(n, 0, sizeof(*n));
    if (bus_redis_new(&turn, seeds(), TIMEOUT_MS, reserve_ms, &timing, &n->bus) != 0)
        return -1;
    bus_handlers h = {on_message, on_presence, on_topic};
    bus_set_handlers(n->bus, &h, n);
    return 0;
}

static int node_open(node_t *n)
{
    return node_open_reserve(n, RESERVE_MS);
}

static void node_close(node_t *n)
{
    bus_close(n->bus);
    n->bus = NULL;
}

/* The value of a metric without labels, or -1. */
static double metric(bus_t *b, const char *name)
{
    buf_t out = {0};
    bus_metrics(b, &out);
    double v = -1;
    size_t n = strlen(name);
    for (const char *p = out.data; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ') {
            v = atof(p + n + 1);
            break;
        }
    }
    buf_free(&out);
    return v;
}

static int nodes_seen(bus_t *b)
{
    return (int)metric(b, "parley_bus_nodes");
}

/* ---- synchronous wrappers -------------------------------------------------- */

typedef struct {
    int calls, rc;
} done_t;

static void done_cb(void *ud, int rc)
{
    done_t *d = ud;
    d->calls++;
    d->rc = rc;
}

/* -100: no callback in time. */
static int watch_sync(bus_t *b, const char *topic, int *inline_cb)
{
    done_t d = {0, 0};
    bus_watch(b, topic, done_cb, &d);
    if (inline_cb)
        *inline_cb = d.calls == 1;
    wait_for(&d.calls, 1, 5000);
    return d.calls == 1 ? d.rc : -100;
}

static int claim_sync(bus_t *b, const char *key, int exclusive)
{
    done_t d = {0, 0};
    bus_claim(b, key, exclusive, done_cb, &d);
    wait_for(&d.calls, 1, 8000);
    spin(5);
    return d.calls == 1 ? d.rc : -100;
}

static int claim_from_sync(bus_t *b, const char *key, const char *takeover)
{
    done_t d = {0, 0};
    bus_claim_from(b, key, 1, takeover, done_cb, &d);
    wait_for(&d.calls, 1, 8000);
    spin(5);
    return d.calls == 1 ? d.rc : -100;
}

/* bus_user_lookup's result; -100: no callback in time. */
static int lookup_sync(bus_t *b, const char *key)
{
    done_t d = {0, 0};
    bus_user_lookup(b, key, done_cb, &d);
    wait_for(&d.calls, 1, 5000);
    return d.calls == 1 ? d.rc : -100;
}

/* The wall clock in ms (registry scores). */
static unsigned long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

/* A bus_data_cb's result; data copied (malloc'ed). */
typedef struct {
    int calls, rc;
    char *data;
    size_t len;
    bus_t *again; /* not NULL: the callback takes "again" from it (inside close) */
    int again_rc;
} data_t;

static void data_again_cb(void *ud, int rc, const char *data, size_t len)
{
    data_t *d = ud;
    d->again_rc = rc;
    (void)data, (void)len;
}

static void data_cb(void *ud, int rc, const char *data, size_t len)
{
    data_t *d = ud;
    d->calls++;
    d->rc = rc;
    free(d->data);
    d->data = NULL;
    d->len = len;
    if (rc == 0) {
        d->data = malloc(len ? len : 1);
        memcpy(d->data, data, len);
    } else if (data != NULL || len != 0) {
        d->rc = -200; /* the contract: NULL and 0 with an error */
    }
    if (d->again) {
        d->again_rc = -100;
        bus_session_take(d->again, "again", data_again_cb, d);
    }
}

static void data_reset(data_t *d)
{
    free(d->data);
    memset(d, 0, sizeof(*d));
}

/* -100: no callback in time; d keeps the data. */
static int take_sync(bus_t *b, const char *pid, data_t *d)
{
    data_reset(d);
    bus_session_take(b, pid, data_cb, d);
    wait_for(&d->calls, 1, 5000);
    return d->calls == 1 ? d->rc : -100;
}

static bus_user_state_t state_of(node_t *n, const char *key)
{
    return bus_user_state(n->bus, key, NULL);
}

typedef struct {
    const char *key;
    int found;
    char name[64];
    int total;
} each_t;

static void each_cb(void *ud, const char *key, const char *name)
{
    each_t *e = ud;
    e->total++;
    if (strcmp(key, e->key) == 0) {
        e->found++;
        snprintf(e->name, sizeof(e->name), "%s", name);
    }
}

static each_t users_each_find(node_t *n, const char *key)
{
    each_t e;
    memset(&e, 0, sizeof(e));
    e.key = key;
    bus_users_each(n->bus, each_cb, &e);
    return e;
}

/* ---- raw commands (redis-cli) ---------------------------------------------- */

/* The port of the master that holds key's slot: the one that answers EXISTS
 * with 1 after the key was written (the others redirect), or -1. */
static int master_holding(const char *key)
{
    char out[256];
    sh(out, sizeof(out), "redis-cli -c -h 127.0.0.1 -p %d SET '%s' 1", base_port, key);
    for (int i = 0; i < 6; i++) {
        sh(out, sizeof(out), "redis-cli -h 127.0.0.1 -p %d EXISTS '%s' 2>&1", base_port + i, key);
        if (strcmp(out, "1") == 0)
            return base_port + i;
    }
    return -1;
}

/* Runs redis-cli -c with the arguments fmt makes (quote keys with braces)
 * on the first master; out gets its output ("" for nil). */
static int rcli(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int rcli(char *out, size_t n, const char *fmt, ...)
{
    char args[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    return sh(out, n, "redis-cli -c -h 127.0.0.1 -p %d %s", base_port, args);
}

/* The PTTL of session pid's record: -1 no expiry, -2 no record, -100 failed. */
static long long record_pttl(const char *pid)
{
    char out[64];
    if (rcli(out, sizeof(out), "PTTL 'parley:{s:%s}'", pid) != 0 || out[0] == '\0')
        return -100;
    return atoll(out);
}

/* The score of pid in node id's session index, or -1 when absent. */
static long long index_score(const char *id, const char *pid)
{
    char out[64];
    if (rcli(out, sizeof(out), "ZSCORE 'parley:{n:%s}:sess' '%s'", id, pid) != 0 ||
        out[0] == '\0')
        return -1;
    return atoll(out);
}

/* The expiry node id last wrote in the registry (wall ms), asked of the
 * first node that answers (a master may just have been killed); 0 when
 * none has it. */
static unsigned long long registry_score(const char *id)
{
    char out[256];
    for (int i = 0; i < 6; i++) {
        if (sh(out, sizeof(out), "redis-cli -c -h 127.0.0.1 -p %d ZSCORE parley:nodes %s 2>&1",
               base_port + i, id) != 0)
            continue;
        char *end = NULL;
        double v = strtod(out, &end);
        if (end != out && *end == '\0' && v > 0)
            return (unsigned long long)v;
    }
    return 0;
}

/* ---- tests ----------------------------------------------------------------- */

static void test_nodes_meet(void)
{
    CHECK(node_open(&A) == 0 && node_open(&B) == 0 && node_open(&C) == 0);
    CHECK(bus_clustered(A.bus));
    const char *id = bus_node_id(A.bus);
    CHECK(strlen(id) == 16 && strspn(id, "0123456789abcdef") == 16);
    CHECK(strcmp(id, bus_node_id(B.bus)) != 0);
    int ok;
    WAIT_UNTIL(ok, nodes_seen(A.bus) == 2 && nodes_seen(B.bus) == 2 && nodes_seen(C.bus) == 2,
               3 * HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
}

static void test_publish_watch(void)
{
    int inl = -1;
    CHECK(watch_sync(A.bus, "r:general", &inl) == 0);
    CHECK(inl == 0); /* a new subscription: later */
    CHECK(watch_sync(B.bus, "r:general", NULL) == 0);
    CHECK(watch_sync(B.bus, "r:general", &inl) == 0);
    CHECK(inl == 1); /* already watched: inline */
    CHECK(metric(B.bus, "parley_bus_watched_topics") == 1);

    bus_publish(A.bus, "r:general", "hello", 5);
    CHECK(wait_for(&B.messages, 1, 3000));
    CHECK(strcmp(B.topic, "r:general") == 0 && B.len == 5 && memcmp(B.data, "hello", 5) == 0);
    spin(200);
    CHECK(A.messages == 0); /* not to the publisher */
    CHECK(C.messages == 0); /* not to a node that does not watch */

    /* Binary payloads, and braces in a topic (the hash tag ends early). */
    const char *odd = "r:we{i}rd}";
    CHECK(watch_sync(B.bus, odd, NULL) == 0);
    bus_publish(C.bus, odd, "a\0b\n", 4);
    CHECK(wait_for(&B.messages, 2, 3000));
    CHECK(strcmp(B.topic, odd) == 0 && B.len == 4 && memcmp(B.data, "a\0b\n", 4) == 0);

    /* Order of one publisher on one topic. */
    char text[16];
    for (int i = 0; i < 50; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        bus_publish(A.bus, "r:general", text, strlen(text));
    }
    CHECK(wait_for(&B.messages, 52, 5000));
    CHECK(B.len == 3 && memcmp(B.data, "m49", 3) == 0);

    /* After unwatch: C (now watching) gets it, B does not. */
    bus_unwatch(B.bus, "r:general");
    bus_unwatch(B.bus, "r:never-watched");
    CHECK(metric(B.bus, "parley_bus_watched_topics") == 1);
    CHECK(watch_sync(C.bus, "r:general", NULL) == 0);
    int before = B.messages;
    bus_publish(A.bus, "r:general", "second", 6);
    CHECK(wait_for(&C.messages, 1, 3000));
    CHECK(C.len == 6 && memcmp(C.data, "second", 6) == 0);
    spin(200);
    CHECK(B.messages == before);
    CHECK(metric(A.bus, "parley_bus_published_total") == 52); /* hello, m0..m49, second */
    CHECK(metric(A.bus, "parley_bus_publish_errors_total") == 0);
    CHECK(metric(B.bus, "parley_bus_received_total") == 52);
    bus_unwatch(B.bus, odd);
    bus_unwatch(C.bus, "r:general");
    bus_unwatch(A.bus, "r:general");
}

static void test_presence_users(void)
{
    int ok;
    const char *name = NULL;
    B.presence = 0;
    B.what = 0;
    bus_user_set(A.bus, "alice", "Alice", BUS_USER_ONLINE);
    CHECK(B.presence == 0); /* never from inside user_set */
    WAIT_UNTIL(ok, state_of(&B, "alice") == BUS_USER_ONLINE, 3000);
    CHECK(ok);
    CHECK(B.presence > 0 && (B.what & BUS_PRESENCE_USERS));
    CHECK(bus_user_state(B.bus, "alice", &name) == BUS_USER_ONLINE && name &&
          strcmp(name, "Alice") == 0);
    each_t e = users_each_find(&B, "alice");
    CHECK(e.found == 1 && strcmp(e.name, "Alice") == 0);
    CHECK(state_of(&A, "alice") == BUS_USER_GONE); /* its own are not mirrored */

    bus_user_set(A.bus, "alice", "Alice", BUS_USER_RESERVED);
    WAIT_UNTIL(ok, state_of(&B, "alice") == BUS_USER_RESERVED, 3000);
    CHECK(ok);
    CHECK(users_each_find(&B, "alice").found == 0);
    WAIT_UNTIL(ok, state_of(&C, "alice") == BUS_USER_RESERVED, 3000); /* C hears it apart */
    CHECK(bus_user_state(C.bus, "alice", &name) == BUS_USER_RESERVED && name &&
          strcmp(name, "Alice") == 0);

    bus_user_set(A.bus, "alice", NULL, BUS_USER_GONE);
    WAIT_UNTIL(ok, state_of(&B, "alice") == BUS_USER_GONE, 3000);
    CHECK(ok);

    /* One user on two nodes: online while either is. */
    bus_user_set(A.bus, "bob", "Bob", BUS_USER_ONLINE);
    bus_user_set(C.bus, "bob", "Bob", BUS_USER_ONLINE);
    bus_user_set(C.bus, "bob", "Bob", BUS_USER_RESERVED); /* coalesced: the last wins */
    bus_user_set(C.bus, "bob", "Bob", BUS_USER_ONLINE);
    WAIT_UNTIL(ok, state_of(&B, "bob") == BUS_USER_ONLINE, 3000);
    CHECK(ok);
    int seen = B.presence;
    bus_user_set(A.bus, "bob", NULL, BUS_USER_GONE);
    CHECK(wait_for(&B.presence, seen + 1, 3000));
    spin(100);
    CHECK(state_of(&B, "bob") == BUS_USER_ONLINE);
    e = users_each_find(&B, "bob");
    CHECK(e.found == 1);
    bus_user_set(C.bus, "bob", NULL, BUS_USER_GONE);
    WAIT_UNTIL(ok, state_of(&B, "bob") == BUS_USER_GONE, 3000);
    CHECK(ok);
    CHECK(users_each_find(&B, "bob").found == 0);
}

static void test_presence_rooms(void)
{
    int ok;
    B.what = 0;
    bus_room_set(A.bus, "general", 1);
    bus_room_set(A.bus, "general", 2);
    bus_room_set(A.bus, "general", 3);
    bus_room_set(C.bus, "general", 2);
    WAIT_UNTIL(ok, bus_room_count(B.bus, "general") == 5, 3000);
    CHECK(ok);
    CHECK(B.what & BUS_PRESENCE_ROOMS);
    WAIT_UNTIL(ok, bus_room_count(A.bus, "general") == 2, 3000); /* C's only */
    CHECK(ok);
    bus_room_set(A.bus, "general", 0);
    WAIT_UNTIL(ok, bus_room_count(B.bus, "general") == 2, 3000);
    CHECK(ok);
    bus_room_set(C.bus, "general", 0);
    WAIT_UNTIL(ok, bus_room_count(B.bus, "general") == 0, 3000);
    CHECK(ok);
    CHECK(bus_room_count(B.bus, "nowhere") == 0);
}

/* A message out of sequence (forged on A's channel) makes the others read
 * A's snapshot again; what the forgery said never shows, what A says next
 * does. */
static void test_presence_gap(void)
{
    int ok;
    bus_user_set(A.bus, "gina", "Gina", BUS_USER_ONLINE);
    WAIT_UNTIL(ok, state_of(&B, "gina") == BUS_USER_ONLINE, 3000);
    CHECK(ok);
    double resyncs = metric(B.bus, "parley_bus_resyncs_total");
    char out[256];
    int st = sh(out, sizeof(out),
                "printf '999999\\n0\\nu:zed\\0372Zed\\n' | redis-cli -c -h 127.0.0.1 -p %d -x "
                "SPUBLISH 'parley:{n:%s}:presence'",
                base_port, bus_node_id(A.bus));
    CHECK(st == 0);
    WAIT_UNTIL(ok, metric(B.bus, "parley_bus_resyncs_total") > resyncs, 3000);
    CHECK(ok);
    spin(300);
    CHECK(state_of(&B, "zed") == BUS_USER_GONE);
    CHECK(state_of(&B, "gina") == BUS_USER_ONLINE);
    bus_user_set(A.bus, "gina", NULL, BUS_USER_GONE);
    bus_user_set(A.bus, "hank", "Hank", BUS_USER_ONLINE);
    WAIT_UNTIL(ok, state_of(&B, "hank") == BUS_USER_ONLINE && state_of(&B, "gina") == 0, 3000);
    CHECK(ok);
    bus_user_set(A.bus, "hank", NULL, BUS_USER_GONE);
}

/* A node that others removed (as if they had taken it for dead while it
 * was cut off) finds itself missing at its next heartbeat and sends its
 * whole state again. */
static void test_presence_reset(void)
{
    int ok;
    char out[256];
    const char *id = bus_node_id(A.bus);
    bus_user_set(A.bus, "ivy", "Ivy", BUS_USER_ONLINE);
    bus_room_set(A.bus, "attic", 4);
    WAIT_UNTIL(ok, state_of(&B, "ivy") == BUS_USER_ONLINE, 3000);
    CHECK(ok);
    sh(out, sizeof(out), "redis-cli -c -h 127.0.0.1 -p %d ZREM parley:nodes %s", base_port, id);
    CHECK(strcmp(out, "1") == 0);
    sh(out, sizeof(out), "redis-cli -c -h 127.0.0.1 -p %d DEL 'parley:{n:%s}'", base_port, id);
    CHECK(strcmp(out, "1") == 0);
    WAIT_UNTIL(ok,
               sh(out, sizeof(out), "redis-cli -c -h 127.0.0.1 -p %d HGET 'parley:{n:%s}' u:ivy",
                  base_port, id) == 0 &&
                   strcmp(out, "2Ivy") == 0,
               3 * HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    /* B may have dropped A meanwhile; it has it back, state included */
    WAIT_UNTIL(ok,
               nodes_seen(B.bus) == 2 && state_of(&B, "ivy") == BUS_USER_ONLINE &&
                   bus_room_count(B.bus, "attic") == 4,
               3 * HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    bus_user_set(A.bus, "ivy", NULL, BUS_USER_GONE);
    bus_room_set(A.bus, "attic", 0);
    WAIT_UNTIL(ok, state_of(&B, "ivy") == BUS_USER_GONE && bus_room_count(B.bus, "attic") == 0,
               3000);
    CHECK(ok);
}

/* A node started after A reported gets A's state from the snapshot. */
static void test_late_joiner(void)
{
    int ok;
    bus_user_set(A.bus, "carol", "Carol", BUS_USER_ONLINE);
    bus_user_set(A.bus, "dan", "Dan", BUS_USER_RESERVED);
    bus_room_set(A.bus, "lobby", 7);
    WAIT_UNTIL(ok, bus_room_count(B.bus, "lobby") == 7, 3000);
    CHECK(ok);
    static node_t D;
    CHECK(node_open(&D) == 0);
    if (D.bus == NULL)
        return;
    WAIT_UNTIL(ok,
               state_of(&D, "carol") == BUS_USER_ONLINE &&
                   state_of(&D, "dan") == BUS_USER_RESERVED &&
                   bus_room_count(D.bus, "lobby") == 7,
               3 * HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    CHECK(D.presence > 0);
    WAIT_UNTIL(ok, nodes_seen(D.bus) == 3 && nodes_seen(B.bus) == 3,
               3 * HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    node_close(&D); /* leaves the registry: gone at the others' next read */
    WAIT_UNTIL(ok, nodes_seen(B.bus) == 2, HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    bus_user_set(A.bus, "carol", NULL, BUS_USER_GONE);
    bus_user_set(A.bus, "dan", NULL, BUS_USER_GONE);
    bus_room_set(A.bus, "lobby", 0);
}

static void test_claims(void)
{
    CHECK(claim_sync(A.bus, "alice", 1) == 0);
    CHECK(claim_sync(B.bus, "alice", 1) == BUS_ETAKEN);
    CHECK(claim_sync(C.bus, "alice", 1) == BUS_ETAKEN);
    CHECK(claim_sync(A.bus, "alice", 1) == 0); /* again: still ours */
    CHECK(claim_sync(B.bus, "alice", 0) == 0); /* token mode shares */
    CHECK(claim_sync(C.bus, "alice", 1) == BUS_ETAKEN);

    /* lookups ask the cluster: claims of live nodes, exclusive or not */
    CHECK(lookup_sync(C.bus, "alice") == 0);
    CHECK(lookup_sync(A.bus, "alice") == 0); /* its own claim counts too */
    CHECK(lookup_sync(C.bus, "nobody-here") == BUS_ENOTFOUND);
    CHECK(claim_sync(B.bus, "tok", 0) == 0);
    CHECK(lookup_sync(C.bus, "tok") == 0);
    bus_release(B.bus, "tok");
    int lk = 0;
    for (int i = 0; i < 20 && (lk = lookup_sync(C.bus, "tok")) == 0; i++)
        spin(50); /* B's HDEL is on B's connection */
    CHECK(lk == BUS_ENOTFOUND);
    bus_t *local = bus_local_new();
    done_t l = {0, 0};
    bus_user_lookup(local, "alice", done_cb, &l);
    CHECK(l.calls == 1 && l.rc == BUS_ENOTFOUND); /* the local bus: inline */
    bus_close(local);

    /* the claims watch "u:alice" */
    int before = A.messages, before_b = B.messages;
    bus_publish(C.bus, "u:alice", "pm", 2);
    CHECK(wait_for(&A.messages, before + 1, 3000));
    CHECK(strcmp(A.topic, "u:alice") == 0);
    CHECK(wait_for(&B.messages, before_b + 1, 3000));

    bus_release(B.bus, "alice");
    bus_release(A.bus, "alice");
    /* A's HDEL is on A's connection: B's claim may overtake it once */
    int rc = BUS_ETAKEN;
    for (int i = 0; i < 20 && rc == BUS_ETAKEN; i++) {
        rc = claim_sync(B.bus, "alice", 1);
        if (rc == BUS_ETAKEN)
            spin(50);
    }
    CHECK(rc == 0);
    CHECK(claim_sync(A.bus, "alice", 1) == BUS_ETAKEN);
    before = A.messages;
    before_b = B.messages;
    bus_publish(C.bus, "u:alice", "pm2", 3);
    CHECK(wait_for(&B.messages, before_b + 1, 3000));
    spin(200);
    CHECK(A.messages == before); /* released: unwatched */
    bus_release(B.bus, "alice");
    bus_release(B.bus, "nobody");

    /* claim then release at once: in call order, nothing left behind */
    done_t d = {0, 0};
    bus_claim(C.bus, "quick", 1, done_cb, &d);
    bus_release(C.bus, "quick");
    CHECK(wait_for(&d.calls, 1, 5000));
    CHECK(d.rc != 0);
    CHECK(claim_sync(A.bus, "quick", 1) == 0);
    bus_release(A.bus, "quick");
}

/* Every node gets the same 32 bytes, the first asker's, and again later;
 * never from inside the call. */
static void test_shared_key(void)
{
    data_t ka = {0}, kb = {0}, kc = {0}, ka2 = {0};
    bus_shared_key(A.bus, data_cb, &ka);
    bus_shared_key(B.bus, data_cb, &kb); /* racing A's */
    CHECK(ka.calls == 0 && kb.calls == 0);
    CHECK(wait_for(&ka.calls, 1, 3000) && wait_for(&kb.calls, 1, 3000));
    CHECK(ka.rc == 0 && ka.len == 32 && kb.rc == 0 && kb.len == 32);
    if (ka.rc == 0 && kb.rc == 0 && ka.len == 32 && kb.len == 32)
        CHECK(memcmp(ka.data, kb.data, 32) == 0);
    bus_shared_key(A.bus, data_cb, &ka2);
    bus_shared_key(C.bus, data_cb, &kc);
    CHECK(wait_for(&ka2.calls, 1, 3000) && wait_for(&kc.calls, 1, 3000));
    CHECK(ka2.rc == 0 && ka2.len == 32 && kc.rc == 0 && kc.len == 32);
    if (ka.len == 32 && ka2.len == 32 && kc.len == 32)
        CHECK(memcmp(ka.data, ka2.data, 32) == 0 && memcmp(ka.data, kc.data, 32) == 0);
    char out[64];
    rcli(out, sizeof(out), "STRLEN parley:recovery-key");
    CHECK(strcmp(out, "32") == 0);
    rcli(out, sizeof(out), "PTTL parley:recovery-key");
    CHECK(strcmp(out, "-1") == 0);
    data_reset(&ka);
    data_reset(&kb);
    data_reset(&kc);
    data_reset(&ka2);
}

/* put / take / del / keep, observed through the records and the index in
 * Redis. A's commands and B's take travel on different connections: each
 * step waits until Redis shows the previous one. */
static void test_sessions(void)
{
    int ok;
    char out[64];
    const char *a = bus_node_id(A.bus);
    data_t d = {0};
    double found0 = metric(B.bus, "parley_bus_sessions_taken_total{result=\"found\"}");
    double missing0 = metric(B.bus, "parley_bus_sessions_taken_total{result=\"missing\"}");

    /* put: no expiry, the window in A's index; B takes it once */
    static const char rec[] = "rec\0ord{}\n";
    bus_session_put(A.bus, "s1", rec, sizeof(rec) - 1, 5000);
    WAIT_UNTIL(ok, record_pttl("s1") == -1 && index_score(a, "s1") == 5000, 3000);
    CHECK(ok);
    CHECK(take_sync(B.bus, "s1", &d) == 0);
    CHECK(d.len == sizeof(rec) - 1 && d.data && memcmp(d.data, rec, d.len) == 0);
    CHECK(take_sync(B.bus, "s1", &d) == BUS_ENOTFOUND);
    CHECK(take_sync(A.bus, "s1", &d) == BUS_ENOTFOUND);
    CHECK(record_pttl("s1") == -2);
    CHECK(metric(B.bus, "parley_bus_sessions_taken_total{result=\"found\"}") == found0 + 1);
    CHECK(metric(B.bus, "parley_bus_sessions_taken_total{result=\"missing\"}") ==
          missing0 + 1);
    CHECK(metric(B.bus, "parley_bus_sessions_taken_total{result=\"error\"}") == 0);
    CHECK(metric(A.bus, "parley_bus_sessions_put_total") == 1);
    bus_session_del(A.bus, "s1"); /* its index entry */
    WAIT_UNTIL(ok, index_score(a, "s1") == -1, 3000);
    CHECK(ok);

    /* del: the record and the index entry go */
    bus_session_put(A.bus, "s2", "two", 3, 5000);
    WAIT_UNTIL(ok, record_pttl("s2") == -1, 3000);
    CHECK(ok);
    bus_session_del(A.bus, "s2");
    WAIT_UNTIL(ok, record_pttl("s2") == -2 && index_score(a, "s2") == -1, 3000);
    CHECK(ok);
    CHECK(take_sync(B.bus, "s2", &d) == BUS_ENOTFOUND);

    /* keep: the record expires by itself, out of the index */
    bus_session_put(A.bus, "s3", "three", 5, 60000);
    WAIT_UNTIL(ok, record_pttl("s3") == -1, 3000);
    CHECK(ok);
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    bus_session_keep(A.bus, "s3", 300);
    long long pttl = -1;
    WAIT_UNTIL(ok, (pttl = record_pttl("s3")) != -1, 3000);
    CHECK(ok && (pttl == -2 || (pttl > 0 && pttl <= 300)));
    CHECK(index_score(a, "s3") == -1);
    WAIT_UNTIL(ok, record_pttl("s3") == -2, 3000);
    uv_update_time(&loop);
    uint64_t took = uv_now(&loop) - t0;
    printf("  a kept record with a 300 ms window was gone after %llu ms\n",
           (unsigned long long)took);
    CHECK(ok && took >= 250);
    CHECK(take_sync(B.bus, "s3", &d) == BUS_ENOTFOUND);

    /* put again after a keep: persistent again, back in the index */
    bus_session_put(A.bus, "s4", "four", 4, 60000);
    bus_session_keep(A.bus, "s4", 60000);
    WAIT_UNTIL(ok, record_pttl("s4") > 0 && index_score(a, "s4") == -1, 3000);
    CHECK(ok);
    bus_session_put(A.bus, "s4", "four'", 5, 7000);
    WAIT_UNTIL(ok, record_pttl("s4") == -1 && index_score(a, "s4") == 7000, 3000);
    CHECK(ok);
    CHECK(take_sync(C.bus, "s4", &d) == 0);
    CHECK(d.len == 5 && d.data && memcmp(d.data, "four'", 5) == 0);
    bus_session_del(A.bus, "s4");

    /* a big binary record, and a pid with a brace */
    size_t big = 200000;
    char *blob = malloc(big);
    for (size_t i = 0; i < big; i++)
        blob[i] = (char)(i * 7 + i / 256);
    bus_session_put(B.bus, "s5}x", blob, big, 1000);
    WAIT_UNTIL(ok, index_score(bus_node_id(B.bus), "s5}x") == 1000, 3000);
    CHECK(ok);
    int rc = BUS_ENOTFOUND;
    for (int i = 0; i < 20 && rc == BUS_ENOTFOUND; i++) { /* the SET is on another slot */
        rc = take_sync(A.bus, "s5}x", &d);
        if (rc == BUS_ENOTFOUND)
            spin(50);
    }
    CHECK(rc == 0 && d.len == big && d.data && memcmp(d.data, blob, big) == 0);
    free(blob);
    bus_session_del(B.bus, "s5}x");
    WAIT_UNTIL(ok, index_score(bus_node_id(B.bus), "s5}x") == -1, 3000);
    CHECK(ok);
    CHECK(metric(A.bus, "parley_bus_session_errors_total") == 0);
    CHECK(metric(B.bus, "parley_bus_session_errors_total") == 0);
    rcli(out, sizeof(out), "EXISTS 'parley:{n:%s}:sess'", a);
    CHECK(strcmp(out, "0") == 0); /* every session of A ended */
    data_reset(&d);
}

/* A node the survivors never knew, found expired in the registry with an
 * index of more than one chunk: its records get their windows, then its
 * index and its registry entry go. */
static void test_sessions_sweep(void)
{
    int ok;
    char out[256];
    const char *id = "00000000deadbeef";
    double before = metric(A.bus, "parley_bus_dead_sessions_total") +
                    metric(B.bus, "parley_bus_dead_sessions_total") +
                    metric(C.bus, "parley_bus_dead_sessions_total");
    /* 1500 index members (two chunks), three records; one member has no
     * record */
    CHECK(sh(out, sizeof(out),
             "redis-cli -c -h 127.0.0.1 -p %d EVAL \"for i = 1, 1500 do "
             "redis.call('ZADD', KEYS[1], 60000, 'swept-' .. i) end\" 1 "
             "'parley:{n:%s}:sess' && "
             "redis-cli -c -h 127.0.0.1 -p %d ZADD 'parley:{n:%s}:sess' 700 swept-a 700 swept-b "
             "&& redis-cli -c -h 127.0.0.1 -p %d SET 'parley:{s:swept-a}' x && "
             "redis-cli -c -h 127.0.0.1 -p %d SET 'parley:{s:swept-1500}' x",
             base_port, id, base_port, id, base_port, base_port) == 0);
    CHECK(record_pttl("swept-a") == -1 && record_pttl("swept-1500") == -1);
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    rcli(out, sizeof(out), "ZADD parley:nodes 1 %s", id); /* expired long ago */
    CHECK(strcmp(out, "1") == 0);
    WAIT_UNTIL(ok,
               rcli(out, sizeof(out), "EXISTS 'parley:{n:%s}:sess'", id) == 0 &&
                   strcmp(out, "0") == 0,
               2 * HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    long long pa = record_pttl("swept-a"), pb = record_pttl("swept-1500");
    uv_update_time(&loop);
    printf("  swept after %llu ms; windows left: %lld and %lld ms\n",
           (unsigned long long)(uv_now(&loop) - t0), pa, pb);
    CHECK(pa == -2 || (pa > 0 && pa <= 700));
    CHECK(pb > 1000 && pb <= 60000);
    CHECK(record_pttl("swept-b") == -2); /* no record: nothing made */
    WAIT_UNTIL(ok, rcli(out, sizeof(out), "ZSCORE parley:nodes %s", id) == 0 && out[0] == '\0',
               2000);
    CHECK(ok);
    WAIT_UNTIL(ok, record_pttl("swept-a") == -2, 2000);
    CHECK(ok);
    double after = metric(A.bus, "parley_bus_dead_sessions_total") +
                   metric(B.bus, "parley_bus_dead_sessions_total") +
                   metric(C.bus, "parley_bus_dead_sessions_total");
    CHECK(after - before >= 2); /* the records: swept-a, swept-1500 */
    CHECK(metric(A.bus, "parley_bus_session_errors_total") == 0);
    rcli(out, sizeof(out), "DEL 'parley:{s:swept-1500}'");
}

/* Closing: callbacks due get BUS_ECLOSED inside the call; the others see
 * the node's users go and its claims freed at once, not after its dead
 * time (BUS_NODE_DEAD_MS). */
static void test_close(void)
{
    static node_t E;
    int ok;
    CHECK(node_open(&E) == 0);
    if (E.bus == NULL)
        return;
    CHECK(claim_sync(E.bus, "erin", 1) == 0);
    bus_user_set(E.bus, "erin", "Erin", BUS_USER_ONLINE);
    bus_room_set(E.bus, "lobby", 2);
    WAIT_UNTIL(ok, state_of(&B, "erin") == BUS_USER_ONLINE && nodes_seen(B.bus) == 3,
               3 * HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    CHECK(claim_sync(B.bus, "erin", 1) == BUS_ETAKEN);

    done_t w = {0, 0}, c = {0, 0}, l = {0, 0};
    data_t t = {0}, k = {0};
    bus_watch(E.bus, "r:closing", done_cb, &w);
    bus_claim(E.bus, "frank", 1, done_cb, &c);
    bus_user_lookup(E.bus, "erin", done_cb, &l);
    bus_session_take(E.bus, "closing", data_cb, &t);
    t.again = E.bus; /* its callback takes again: inline BUS_ECLOSED */
    bus_shared_key(E.bus, data_cb, &k);
    /* sent just before the close: the close waits for them */
    bus_session_put(E.bus, "closing-1", "c1", 2, 1000);
    bus_session_put(E.bus, "closing-2", "c2", 2, 1000);
    bus_session_keep(E.bus, "closing-2", 5000);
    char eid[32];
    snprintf(eid, sizeof(eid), "%s", bus_node_id(E.bus));
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    node_close(&E);
    CHECK(w.calls == 1 && w.rc == BUS_ECLOSED);
    CHECK(c.calls == 1 && c.rc == BUS_ECLOSED);
    CHECK(l.calls == 1 && l.rc == BUS_ECLOSED);
    CHECK(t.calls == 1 && t.rc == BUS_ECLOSED && t.again_rc == BUS_ECLOSED);
    CHECK(k.calls == 1 && k.rc == BUS_ECLOSED);
    data_reset(&t);
    data_reset(&k);

    WAIT_UNTIL(ok, state_of(&B, "erin") == BUS_USER_GONE && bus_room_count(B.bus, "lobby") == 0,
               3000);
    uv_update_time(&loop);
    uint64_t took = uv_now(&loop) - t0;
    printf("  the other nodes dropped the closed node's users after %llu ms\n",
           (unsigned long long)took);
    CHECK(ok);
    CHECK(took < 1000);
    CHECK(claim_sync(B.bus, "erin", 1) == 0);
    bus_release(B.bus, "erin");
    WAIT_UNTIL(ok, nodes_seen(B.bus) == 2, 2 * HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    /* the closed node's last session commands landed; its sessions stay */
    CHECK(record_pttl("closing-1") == -1 && index_score(eid, "closing-1") == 1000);
    long long p2 = record_pttl("closing-2");
    CHECK(p2 > 0 && p2 <= 5000 && index_score(eid, "closing-2") == -1);
    char out[64];
    rcli(out, sizeof(out), "DEL 'parley:{s:closing-1}'");
    rcli(out, sizeof(out), "DEL 'parley:{s:closing-2}'");
    rcli(out, sizeof(out), "DEL 'parley:{n:%s}:sess'", eid);
}

/* ---- dead nodes ------------------------------------------------------------ */

/* A node the survivors never saw alive, found expired within their window
 * (it died before they read it, or they started after): its users come
 * from its presence hash, reserved, its rooms do not count, its claims
 * block for the window; its registry member and hash stay until its
 * expiry + the window has passed. */
static void test_dead_unknown(void)
{
    int ok;
    char out[256];
    const char *id = "00000000feedf00d";
    rcli(out, sizeof(out), "HSET 'parley:{n:%s}' u:fay 2Fay u:fred 1Fred r:fayroom 3", id);
    CHECK(strcmp(out, "3") == 0);
    rcli(out, sizeof(out), "HSET 'parley:{u:fay}:claim' %s 1000", id); /* an old claim */
    CHECK(strcmp(out, "1") == 0);
    rcli(out, sizeof(out), "ZADD parley:nodes %llu %s", wall_ms() - 100, id); /* just expired */
    CHECK(strcmp(out, "1") == 0);
    WAIT_UNTIL(ok, state_of(&B, "fay") == BUS_USER_RESERVED &&
                       state_of(&B, "fred") == BUS_USER_RESERVED,
               2 * HEARTBEAT_MS + SLACK_MS);
    uv_update_time(&loop);
    uint64_t t1 = uv_now(&loop);
    CHECK(ok);
    rcli(out, sizeof(out), "ZSCORE parley:nodes %s", id);
    CHECK(out[0] != '\0'); /* its window is not over: still in the registry */
    const char *name = NULL;
    CHECK(bus_user_state(B.bus, "fay", &name) == BUS_USER_RESERVED && name &&
          strcmp(name, "Fay") == 0);
    CHECK(users_each_find(&B, "fay").found == 0);
    CHECK(bus_room_count(B.bus, "fayroom") == 0);
    CHECK(nodes_seen(B.bus) == 2 && metric(B.bus, "parley_bus_reserved_nodes") == 1);
    CHECK(claim_sync(B.bus, "fay", 1) == BUS_ETAKEN);
    CHECK(lookup_sync(B.bus, "fay") == 0);
    CHECK(lookup_sync(B.bus, "fred") == BUS_ENOTFOUND); /* reserved, but no claim */

    WAIT_UNTIL(ok, state_of(&B, "fay") == BUS_USER_GONE && state_of(&B, "fred") == BUS_USER_GONE,
               RESERVE_BOUND_MS);
    uv_update_time(&loop);
    uint64_t held = uv_now(&loop) - t1;
    printf("  reserved for %llu ms (window %d ms)\n", (unsigned long long)held, RESERVE_MS);
    CHECK(ok);
    CHECK(held + 100 >= RESERVE_MS && held <= RESERVE_BOUND_MS);
    CHECK(metric(B.bus, "parley_bus_reserved_nodes") == 0);
    WAIT_UNTIL(ok,
               rcli(out, sizeof(out), "ZSCORE parley:nodes %s", id) == 0 && out[0] == '\0' &&
                   rcli(out, sizeof(out), "EXISTS 'parley:{n:%s}'", id) == 0 &&
                   strcmp(out, "0") == 0,
               HEARTBEAT_MS + SLACK_MS);
    CHECK(ok); /* out of the registry, its hash gone */
    CHECK(lookup_sync(B.bus, "fay") == BUS_ENOTFOUND);
    CHECK(claim_sync(B.bus, "fay", 1) == 0); /* its claim is void now */
    bus_release(B.bus, "fay");
}

/* A node found dead that heartbeats again (it was only cut off): its
 * snapshot replaces the reserved entries, which never go meanwhile. R, with
 * a long window, watches; the node is a registry entry and a hash written
 * here. Its hash changes while it looks alive (unannounced: R does not
 * know), so only the snapshot read on its return can show the change. */
static void test_dead_back(void)
{
    static node_t R;
    int ok, gone = 0;
    char out[256];
    const char *id = "00000000cafebabe";
    CHECK(node_open_reserve(&R, 10000) == 0);
    if (R.bus == NULL)
        return;
    rcli(out, sizeof(out), "HSET 'parley:{n:%s}' u:bea 2Bea u:ben 2Ben r:bayroom 2 '#seq' 1",
         id);
    rcli(out, sizeof(out), "HSET 'parley:{u:bea}:claim' %s 1000", id);
    rcli(out, sizeof(out), "ZADD parley:nodes %llu %s", wall_ms() + 60000, id);
    WAIT_UNTIL(ok,
               state_of(&R, "bea") == BUS_USER_ONLINE && state_of(&R, "ben") == BUS_USER_ONLINE &&
                   bus_room_count(R.bus, "bayroom") == 2,
               3 * HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    rcli(out, sizeof(out), "HDEL 'parley:{n:%s}' u:ben", id);
    rcli(out, sizeof(out), "HSET 'parley:{n:%s}' r:bayroom 5", id);

    /* silent: expired (just: the others, with a short window, would remove
     * it from the registry 3 s later) */
    rcli(out, sizeof(out), "ZADD parley:nodes %llu %s", wall_ms() - 1, id);
    WAIT_UNTIL(ok,
               state_of(&R, "bea") == BUS_USER_RESERVED &&
                   state_of(&R, "ben") == BUS_USER_RESERVED &&
                   bus_room_count(R.bus, "bayroom") == 0,
               HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    CHECK(metric(R.bus, "parley_bus_reserved_nodes") == 1);

    /* back: its real state, without a gap */
    rcli(out, sizeof(out), "ZADD parley:nodes %llu %s", wall_ms() + 60000, id);
    WAIT_UNTIL(ok,
               (gone |= state_of(&R, "bea") == BUS_USER_GONE,
                state_of(&R, "bea") == BUS_USER_ONLINE && state_of(&R, "ben") == BUS_USER_GONE &&
                    bus_room_count(R.bus, "bayroom") == 5),
               HEARTBEAT_MS + SLACK_MS);
    CHECK(ok && !gone);
    CHECK(metric(R.bus, "parley_bus_reserved_nodes") == 0 && nodes_seen(R.bus) == 4);
    CHECK(claim_sync(R.bus, "bea", 1) == BUS_ETAKEN); /* a live node's */
    CHECK(lookup_sync(R.bus, "bea") == 0);

    /* it leaves (no expiry past): gone at once, not reserved */
    rcli(out, sizeof(out), "ZREM parley:nodes %s", id);
    rcli(out, sizeof(out), "DEL 'parley:{n:%s}' 'parley:{u:bea}:claim'", id);
    WAIT_UNTIL(ok, state_of(&R, "bea") == BUS_USER_GONE && state_of(&B, "bea") == BUS_USER_GONE,
               HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    node_close(&R);
    WAIT_UNTIL(ok, nodes_seen(B.bus) == 2, HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
}

/* The child: a bus that claims "dave" and "dot", reports dave online in
 * room "den", puts a session "dead-1" (window DEAD_WINDOW_MS) and
 * DEAD_BULK others (a minute), and waits to be killed. Writes its node id
 * and "\n" to fd 3 once that is sent. */
#define DEAD_WINDOW_MS 1500
#define DEAD_BULK 1100
static int child_main(void)
{
    if (harness_start("BUS_TEST", LOG_ERROR) != 0)
        return 2;
    bus_t *b = NULL;
    if (bus_redis_new(&turn, seeds(), TIMEOUT_MS, 60000, &child_timing, &b) != 0)
        return 1;
    if (claim_sync(b, "dave", 1) != 0 || claim_sync(b, "dot", 1) != 0)
        return 1;
    bus_user_set(b, "dave", "Dave", BUS_USER_ONLINE);
    bus_room_set(b, "den", 1);
    bus_session_put(b, "dead-1", "Dave's", 6, DEAD_WINDOW_MS);
    for (int i = 0; i < DEAD_BULK; i++) {
        char pid[32];
        snprintf(pid, sizeof(pid), "dead-bulk-%d", i);
        bus_session_put(b, pid, "bulk", 4, 60000);
    }
    spin(100);
    char line[32];
    int n = snprintf(line, sizeof(line), "%s\n", bus_node_id(b));
    if (write(3, line, (size_t)n) != n)
        return 1;
    close(3);
    for (;;)
        uv_run(&loop, UV_RUN_DEFAULT);
}

/* Starts the child; returns its pid and its node id, or -1. Waits for the
 * id (10 s at most) with the loop turning: the test's own nodes must keep
 * heartbeating meanwhile, or with the test's short dead time the others
 * could find them dead. */
static pid_t child_start(char id[32])
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* only the pipe's end (as fd 3), not the parent's Redis links */
        if (fds[1] != 3) {
            dup2(fds[1], 3);
            close(fds[1]);
        }
        for (int fd = 4; fd < 4096; fd++)
            close(fd);
        if (fds[0] != 3)
            close(fds[0]);
        execl("/proc/self/exe", "bus_test", "--child", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t got = 0;
    struct pollfd p = {fds[0], POLLIN, 0};
    uv_update_time(&loop);
    uint64_t end = uv_now(&loop) + 10000;
    while (got < 17 && uv_now(&loop) < end) {
        int ready = poll(&p, 1, 0);
        if (ready < 0 && errno != EINTR)
            break;
        if (ready <= 0) {
            uv_run(&loop, UV_RUN_ONCE); /* the 10 ms tick: back here soon */
            continue;
        }
        ssize_t r = read(fds[0], id + got, 31 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fds[0]);
    id[got < 31 ? got : 31] = '\0';
    if (got < 17 || id[16] != '\n') {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    id[16] = '\0';
    return pid;
}

/* The child is killed: A, B and C (window RESERVE_MS) keep its users
 * reserved and its claims blocking for the window, its rooms gone at once;
 * Z (no window) drops it at once and removes it from the registry, which
 * A, B and C, if they had not found it dead yet, must not take for a node
 * that left. Its sessions get their expiry. */
static void test_dead_node(void)
{
    static node_t Z;
    int ok;
    char id[32];
    char out[64];
    CHECK(node_open_reserve(&Z, 0) == 0);
    pid_t pid = child_start(id);
    CHECK(pid > 0);
    if (pid <= 0 || Z.bus == NULL) {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        node_close(&Z);
        return;
    }
    printf("  child node %s (pid %d)\n", id, (int)pid);
    WAIT_UNTIL(ok,
               state_of(&B, "dave") == BUS_USER_ONLINE && bus_room_count(B.bus, "den") == 1 &&
                   state_of(&C, "dave") == BUS_USER_ONLINE &&
                   state_of(&Z, "dave") == BUS_USER_ONLINE && nodes_seen(B.bus) == 4 &&
                   nodes_seen(Z.bus) == 4,
               3 * HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    CHECK(claim_sync(B.bus, "dave", 1) == BUS_ETAKEN);
    CHECK(lookup_sync(B.bus, "dave") == 0); /* claimed on a live node */
    CHECK(lookup_sync(B.bus, "dot") == 0);
    /* its sessions: persistent while it lives */
    WAIT_UNTIL(ok,
               rcli(out, sizeof(out), "ZCARD 'parley:{n:%s}:sess'", id) == 0 &&
                   atoi(out) == DEAD_BULK + 1 && record_pttl("dead-1") == -1 &&
                   record_pttl("dead-bulk-0") == -1,
               5000);
    CHECK(ok);

    B.what = 0;
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    CHECK(kill(pid, SIGKILL) == 0);
    waitpid(pid, NULL, 0);
    WAIT_UNTIL(ok,
               state_of(&B, "dave") == BUS_USER_RESERVED && bus_room_count(B.bus, "den") == 0,
               DEAD_BOUND_MS + 1000);
    uv_update_time(&loop);
    uint64_t tb = uv_now(&loop);
    printf("  killed with -9; reserved in B's mirror after %llu ms\n",
           (unsigned long long)(tb - t0));
    CHECK(ok);
    CHECK(tb - t0 <= DEAD_BOUND_MS);
    CHECK((B.what & BUS_PRESENCE_USERS) && (B.what & BUS_PRESENCE_ROOMS));
    const char *name = NULL;
    CHECK(bus_user_state(B.bus, "dave", &name) == BUS_USER_RESERVED && name &&
          strcmp(name, "Dave") == 0);
    CHECK(users_each_find(&B, "dave").found == 0);
    CHECK(nodes_seen(B.bus) == 3 && metric(B.bus, "parley_bus_reserved_nodes") == 1);
    WAIT_UNTIL(ok,
               state_of(&C, "dave") == BUS_USER_RESERVED && bus_room_count(C.bus, "den") == 0,
               2 * HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);

    /* within the window: its claims block, except a takeover */
    CHECK(claim_sync(C.bus, "dave", 1) == BUS_ETAKEN);
    CHECK(claim_sync(B.bus, "dot", 1) == BUS_ETAKEN);
    CHECK(lookup_sync(B.bus, "dave") == 0);
    CHECK(claim_from_sync(B.bus, "dot", id) == 0); /* a session restored on B */
    CHECK(claim_sync(C.bus, "dot", 1) == BUS_ETAKEN); /* B's now */
    bus_release(B.bus, "dot");
    uv_update_time(&loop);
    CHECK(uv_now(&loop) - tb < RESERVE_MS); /* the checks above ran in B's window */

    /* Z, with no window: gone at once, its claims void */
    WAIT_UNTIL(ok,
               state_of(&Z, "dave") == BUS_USER_GONE && bus_room_count(Z.bus, "den") == 0 &&
                   nodes_seen(Z.bus) == 3,
               2 * HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    CHECK(metric(Z.bus, "parley_bus_reserved_nodes") == 0);
    CHECK(lookup_sync(Z.bus, "dave") == BUS_ENOTFOUND);

    /* its sessions: expiring (the window it asked for), out of its index;
     * gone within the window once every survivor swept */
    WAIT_UNTIL(ok,
               rcli(out, sizeof(out), "EXISTS 'parley:{n:%s}:sess'", id) == 0 &&
                   strcmp(out, "0") == 0,
               HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    long long p1 = record_pttl("dead-1");
    long long pb = record_pttl("dead-bulk-1099");
    CHECK(p1 == -2 || (p1 > 0 && p1 <= DEAD_WINDOW_MS));
    CHECK(pb > 0 && pb <= 60000);
    WAIT_UNTIL(ok, record_pttl("dead-1") == -2, HEARTBEAT_MS + DEAD_WINDOW_MS + 1000);
    uv_update_time(&loop);
    printf("  its session record (window %d ms) was gone %llu ms after the kill\n",
           DEAD_WINDOW_MS, (unsigned long long)(uv_now(&loop) - t0));
    CHECK(ok);

    /* after the window: its users go, its claims are void */
    WAIT_UNTIL(ok, state_of(&B, "dave") == BUS_USER_GONE, RESERVE_BOUND_MS);
    uv_update_time(&loop);
    uint64_t held = uv_now(&loop) - tb;
    printf("  B kept its users reserved for %llu ms (window %d ms)\n", (unsigned long long)held,
           RESERVE_MS);
    CHECK(ok);
    CHECK(held + 100 >= RESERVE_MS && held <= RESERVE_BOUND_MS);
    CHECK(B.what & BUS_PRESENCE_USERS);
    WAIT_UNTIL(ok, state_of(&C, "dave") == BUS_USER_GONE && state_of(&A, "dave") == 0,
               2 * HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    CHECK(metric(B.bus, "parley_bus_reserved_nodes") == 0 && nodes_seen(B.bus) == 3);
    CHECK(lookup_sync(B.bus, "dave") == BUS_ENOTFOUND);
    CHECK(claim_sync(C.bus, "dave", 1) == 0);
    bus_release(C.bus, "dave");
    WAIT_UNTIL(ok, rcli(out, sizeof(out), "ZSCORE parley:nodes %s", id) == 0 && out[0] == '\0',
               HEARTBEAT_MS + SLACK_MS);
    CHECK(ok); /* out of the registry */
    double swept = metric(A.bus, "parley_bus_dead_sessions_total") +
                   metric(B.bus, "parley_bus_dead_sessions_total") +
                   metric(C.bus, "parley_bus_dead_sessions_total") +
                   metric(Z.bus, "parley_bus_dead_sessions_total");
    CHECK(swept >= DEAD_BULK + 1);
    node_close(&Z);
    WAIT_UNTIL(ok, nodes_seen(B.bus) == 2, HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
}

/* ---- failover ------------------------------------------------------------- */

static void test_failover(void)
{
    int ok;
    CHECK(watch_sync(B.bus, "r:fo", NULL) == 0);
    B.watch_topic = "r:fo";
    B.never_lost = "r:fo}y";
    B.lost = B.resumed = B.topic_bad = 0;
    double lost0 = metric(B.bus, "parley_bus_topics_lost_total");
    int victim = master_holding("parley:{r:fo}:probe");
    CHECK(victim > 0);
    pid_t pid = node_pid(victim);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    CHECK(kill(pid, SIGKILL) == 0);
    printf("  killed master 127.0.0.1:%d (pid %d)\n", victim, (int)pid);
    static done_t early;
    memset(&early, 0, sizeof(early));
    bus_watch(B.bus, "r:fo}y", done_cb, &early); /* same slot: "r:fo" */

    /* A publishes until B hears it again: the watch came back by itself. */
    int got = 0, sent = 0;
    char text[32];
    while (!got && uv_now(&loop) - t0 < 25000) {
        snprintf(text, sizeof(text), "fo-%d", sent++);
        int before = B.messages;
        bus_publish(A.bus, "r:fo", text, strlen(text));
        got = wait_for(&B.messages, before + 1, 250) && strcmp(B.topic, "r:fo") == 0;
    }
    uv_update_time(&loop);
    printf("  publications reach the watcher again after %llu ms (%d sent)\n",
           (unsigned long long)(uv_now(&loop) - t0), sent);
    CHECK(got);
    /* B was told that "r:fo" was lost and when it came back (what it
     * missed in between is the chat's to read from the store), each LOST
     * before its RESUMED. "r:fo}y", first active after the promotion, was
     * never lost. */
    WAIT_UNTIL(ok, B.lost >= 1 && B.resumed == B.lost, 3000);
    CHECK(ok && B.topic_bad == 0);
    CHECK(metric(B.bus, "parley_bus_topics_lost_total") >= lost0 + 1);
    printf("  B told: %d lost, %d resumed for r:fo\n", B.lost, B.resumed);
    /* the watch asked for before the promotion reported BUS_EIO in time
     * but kept trying */
    CHECK(early.calls == 1 && (early.rc == BUS_EIO || early.rc == 0));
    printf("  the watch asked for while the master was down: %s\n",
           early.rc == 0 ? "active" : "BUS_EIO after the timeout");
    B.want = "r:fo}y"; /* late "fo-" publications may still arrive */
    B.wanted = 0;
    got = 0;
    for (int i = 0; i < 40 && !got; i++) {
        bus_publish(C.bus, "r:fo}y", "late", 4);
        got = wait_for(&B.wanted, 1, 250);
    }
    CHECK(got);
    B.want = "r:fo}x";
    B.wanted = 0;

    /* A new watch on the promoted master's slot ("r:fo}x" hashes "r:fo"). */
    CHECK(watch_sync(B.bus, "r:fo}x", NULL) == 0);
    bus_publish(C.bus, "r:fo}x", "new", 3);
    CHECK(wait_for(&B.wanted, 1, 3000));
    B.want = NULL;
    CHECK(B.topic_bad == 0);
    B.watch_topic = B.never_lost = NULL;

    /* Presence still flows and nobody was taken for dead. */
    bus_user_set(A.bus, "after", "After", BUS_USER_ONLINE);
    bus_user_set(C.bus, "after2", "After2", BUS_USER_ONLINE);
    WAIT_UNTIL(ok, state_of(&B, "after") == BUS_USER_ONLINE &&
                       state_of(&B, "after2") == BUS_USER_ONLINE,
               15000);
    CHECK(ok);
    CHECK(nodes_seen(B.bus) == 2);
    /* An exclusive claim needs a registry read younger than two heartbeats,
     * and the reads sent while the cluster was down failed (the production
     * heartbeat, 8 times slower, leaves a read fresh for longer). Once a
     * heartbeat of A and one of B sent from now on have landed, each has a
     * read from after the failover (the ZRANGE goes with the ZADD). */
    unsigned long long w0 = wall_ms();
    WAIT_UNTIL(ok,
               registry_score(bus_node_id(A.bus)) >= w0 + BUS_NODE_DEAD_MS &&
                   registry_score(bus_node_id(B.bus)) >= w0 + BUS_NODE_DEAD_MS,
               HEARTBEAT_MS + SLACK_MS);
    CHECK(ok);
    CHECK(claim_sync(A.bus, "after", 1) == 0);
    CHECK(claim_sync(B.bus, "after", 1) == BUS_ETAKEN);
    uv_update_time(&loop);
    CHECK(uv_now(&loop) - t0 < 30000);
}

/* ---- main ------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child") == 0)
        return child_main();
    int r = harness_start("BUS_TEST", LOG_ERROR);
    if (r != 0)
        return r;
    signal(SIGPIPE, SIG_IGN);

    static const harness_test tests[] = {
        {"nodes find each other", test_nodes_meet},
        {"publish reaches watchers only, in order", test_publish_watch},
        {"presence: users", test_presence_users},
        {"presence: rooms", test_presence_rooms},
        {"presence: a gap makes the others read the snapshot", test_presence_gap},
        {"presence: a node removed by others sends its state again", test_presence_reset},
        {"presence: a late joiner reads the snapshot", test_late_joiner},
        {"claims: exclusive, shared, released", test_claims},
        {"sessions: one shared key for every node", test_shared_key},
        {"sessions: put, take, del, keep", test_sessions},
        {"sessions: a dead node's index is swept", test_sessions_sweep},
        {"close: users and claims go at once, sessions stay", test_close},
        {"a dead node never seen alive: reserved from its hash", test_dead_unknown},
        {"a dead node that heartbeats again: its snapshot replaces the reserve", test_dead_back},
        {"a node killed with -9: reserved for the window, then dropped", test_dead_node},
        {"failover: watches, publications and presence recover", test_failover},
    };
    int passed = 0;
    int failed = harness_run(tests, sizeof(tests) / sizeof(tests[0]), &passed);
    node_close(&A);
    node_close(&B);
    node_close(&C);
    return harness_finish(passed, failed);
}
