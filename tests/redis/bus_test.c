/* bus_test.c - the Redis bus (src/bus/bus_redis.c) through bus.h, against
 * the live 3-master, 3-replica cluster that tests/redis/run.sh bus_test
 * starts (BUS_TEST_BASE: its first port; BUS_TEST_DIR: its directory with
 * the redis-PORT.pid files). Several buses share the test's loop, each one
 * a node of its own; one more node runs in a child process (this program
 * again, with --child) so that it can die without a word (SIGKILL). The
 * last test kills a master, so the cluster is spent afterwards.
 *
 * Everything is observed through bus.h (metrics included); nothing reaches
 * into the bus. Every wait is bounded and polls the loop (a 10 ms tick
 * keeps it turning). Prints one line per failed check, one per test, and
 * finally "N passed, N failed"; exits 1 on any failure. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "harness.h"
#include "bus/bus.h"
#include "util/buf.h"
#include "util/log.h"

#define TIMEOUT_MS 1000
/* How long a dead node may take to leave the mirrors (bus.h), plus slack
 * for the loop and the registry read in flight. */
#define DEAD_BOUND_MS (BUS_NODE_DEAD_MS + 2 * BUS_HEARTBEAT_MS)

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

static int node_open(node_t *n)
{
    memset(n, 0, sizeof(*n));
    if (bus_redis_new(&loop, seeds(), TIMEOUT_MS, &n->bus) != 0)
        return -1;
    bus_handlers h = {on_message, on_presence};
    bus_set_handlers(n->bus, &h, n);
    return 0;
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
               3 * BUS_HEARTBEAT_MS);
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
    CHECK(bus_room_count(A.bus, "general") == 2); /* C's only */
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
               3 * BUS_HEARTBEAT_MS);
    CHECK(ok);
    /* B may have dropped A meanwhile; it has it back, state included */
    WAIT_UNTIL(ok,
               nodes_seen(B.bus) == 2 && state_of(&B, "ivy") == BUS_USER_ONLINE &&
                   bus_room_count(B.bus, "attic") == 4,
               3 * BUS_HEARTBEAT_MS);
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
               3 * BUS_HEARTBEAT_MS);
    CHECK(ok);
    CHECK(D.presence > 0);
    WAIT_UNTIL(ok, nodes_seen(D.bus) == 3 && nodes_seen(B.bus) == 3, 3 * BUS_HEARTBEAT_MS);
    CHECK(ok);
    node_close(&D); /* leaves the registry: gone at the others' next read */
    WAIT_UNTIL(ok, nodes_seen(B.bus) == 2, BUS_HEARTBEAT_MS + 1000);
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

/* Closing: callbacks due get BUS_ECLOSED inside the call; the others see
 * the node's users go and its claims freed at once, not after
 * BUS_NODE_DEAD_MS. */
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
               3 * BUS_HEARTBEAT_MS);
    CHECK(ok);
    CHECK(claim_sync(B.bus, "erin", 1) == BUS_ETAKEN);

    done_t w = {0, 0}, c = {0, 0};
    bus_watch(E.bus, "r:closing", done_cb, &w);
    bus_claim(E.bus, "frank", 1, done_cb, &c);
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    node_close(&E);
    CHECK(w.calls == 1 && w.rc == BUS_ECLOSED);
    CHECK(c.calls == 1 && c.rc == BUS_ECLOSED);

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
    WAIT_UNTIL(ok, nodes_seen(B.bus) == 2, 2 * BUS_HEARTBEAT_MS + 500);
    CHECK(ok);
}

/* ---- a node in a child process -------------------------------------------- */

/* The child: a bus that claims "dave", reports him online and waits to be
 * killed. Writes its node id and "\n" to fd 3 once that is done. */
static int child_main(void)
{
    if (harness_start("BUS_TEST", LOG_ERROR) != 0)
        return 2;
    bus_t *b = NULL;
    if (bus_redis_new(&loop, seeds(), TIMEOUT_MS, &b) != 0)
        return 1;
    if (claim_sync(b, "dave", 1) != 0)
        return 1;
    bus_user_set(b, "dave", "Dave", BUS_USER_ONLINE);
    bus_room_set(b, "den", 1);
    spin(100);
    char line[32];
    int n = snprintf(line, sizeof(line), "%s\n", bus_node_id(b));
    if (write(3, line, (size_t)n) != n)
        return 1;
    close(3);
    for (;;)
        uv_run(&loop, UV_RUN_DEFAULT);
}

/* Starts the child; returns its pid and its node id, or -1. */
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
    while (got < 17 && poll(&p, 1, 10000) == 1) {
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

static void test_dead_node(void)
{
    int ok;
    char id[32];
    pid_t pid = child_start(id);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    printf("  child node %s (pid %d)\n", id, (int)pid);
    WAIT_UNTIL(ok, state_of(&B, "dave") == BUS_USER_ONLINE && bus_room_count(B.bus, "den") == 1,
               3 * BUS_HEARTBEAT_MS);
    CHECK(ok);
    CHECK(nodes_seen(B.bus) == 3);
    CHECK(claim_sync(B.bus, "dave", 1) == BUS_ETAKEN);

    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    CHECK(kill(pid, SIGKILL) == 0);
    waitpid(pid, NULL, 0);
    WAIT_UNTIL(ok, state_of(&B, "dave") == BUS_USER_GONE && state_of(&C, "dave") == 0,
               DEAD_BOUND_MS + 1000);
    uv_update_time(&loop);
    uint64_t took = uv_now(&loop) - t0;
    printf("  killed with -9; dropped from the mirrors after %llu ms\n",
           (unsigned long long)took);
    CHECK(ok);
    CHECK(took <= DEAD_BOUND_MS);
    CHECK(bus_room_count(B.bus, "den") == 0);
    CHECK(nodes_seen(B.bus) == 2);
    CHECK(claim_sync(B.bus, "dave", 1) == 0); /* a dead node's claim is void */
    bus_release(B.bus, "dave");
}

/* ---- failover ------------------------------------------------------------- */

static void test_failover(void)
{
    int ok;
    CHECK(watch_sync(B.bus, "r:fo", NULL) == 0);
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

    /* Presence still flows and nobody was taken for dead. */
    bus_user_set(A.bus, "after", "After", BUS_USER_ONLINE);
    bus_user_set(C.bus, "after2", "After2", BUS_USER_ONLINE);
    WAIT_UNTIL(ok, state_of(&B, "after") == BUS_USER_ONLINE &&
                       state_of(&B, "after2") == BUS_USER_ONLINE,
               15000);
    CHECK(ok);
    CHECK(nodes_seen(B.bus) == 2);
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
        {"close: users and claims go at once", test_close},
        {"a node killed with -9 is dropped", test_dead_node},
        {"failover: watches, publications and presence recover", test_failover},
    };
    int passed = 0;
    int failed = harness_run(tests, sizeof(tests) / sizeof(tests[0]), &passed);
    node_close(&A);
    node_close(&B);
    node_close(&C);
    return harness_finish(passed, failed);
}
