/* test_rc_route.c - unit tests for how the Redis Cluster client routes
 * (src/redis): -MOVED/-ASK parsing and the verdict on each error reply,
 * CLUSTER SLOTS replies (built by hand in RESP and read with hiredis'
 * reader) into a slot map, the routing table a client builds from them and
 * how -MOVED and a failover change it, the subscriber protocol engine
 * (which reply answers which command), and the command queue without a
 * server: its bound, deadlines, and rc_free's callbacks. No Redis needed;
 * addresses are from TEST-NET-1 (never routed) or port 1 (refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "redis/rc_internal.h"
#include "util/log.h"
#include "util/mem.h"

/* One reply from RESP text, read by hiredis' default reader. */
static redisReply *resp(const char *text)
{
    redisReader *r = redisReaderCreate();
    assert_non_null(r);
    assert_int_equal(redisReaderFeed(r, text, strlen(text)), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
    assert_non_null(reply);
    redisReaderFree(r);
    return reply;
}

/* ---- redirections ------------------------------------------------------- */

static void test_parse_redirect(void **state)
{
    (void)state;
    rc__redirect rd;
    const char *m = "MOVED 3999 127.0.0.1:6381";
    assert_int_equal(rc__parse_redirect(m, strlen(m), &rd), RC__REPLY_MOVED);
    assert_int_equal(rd.slot, 3999);
    assert_string_equal(rd.host, "127.0.0.1");
    assert_int_equal(rd.port, 6381);

    const char *a = "ASK 16383 10.1.2.3:7002";
    assert_int_equal(rc__parse_redirect(a, strlen(a), &rd), RC__REPLY_ASK);
    assert_int_equal(rd.slot, 16383);
    assert_string_equal(rd.host, "10.1.2.3");
    assert_int_equal(rd.port, 7002);

    /* IPv6, bare (as Redis writes it) and bracketed; an empty host. */
    const char *v6 = "MOVED 0 ::1:7000";
    assert_int_equal(rc__parse_redirect(v6, strlen(v6), &rd), RC__REPLY_MOVED);
    assert_string_equal(rd.host, "::1");
    assert_int_equal(rd.port, 7000);
    const char *v6b = "ASK 1 [fe80::1]:7001";
    assert_int_equal(rc__parse_redirect(v6b, strlen(v6b), &rd), RC__REPLY_ASK);
    assert_string_equal(rd.host, "fe80::1");
    const char *empty = "MOVED 12 :7003";
    assert_int_equal(rc__parse_redirect(empty, strlen(empty), &rd), RC__REPLY_MOVED);
    assert_string_equal(rd.host, "");
    assert_int_equal(rd.port, 7003);

    /* Only the given length counts. */
    const char *longer = "MOVED 5 h:1234567";
    assert_int_equal(rc__parse_redirect(longer, 14, &rd), RC__REPLY_MOVED);
    assert_int_equal(rd.port, 1234);

    static const char *bad[] = {
        "MOVED", "MOVED ", "MOVED 1", "MOVED 1 ", "MOVED x h:1", "MOVED -1 h:1",
        "MOVED 16384 h:1", "MOVED 1 h:0", "MOVED 1 h:65536", "MOVED 1 h", "MOVED 1 h:",
        "MOVED 1 h:1x", "MOVEDX 1 h:1", "moved 1 h:1", "ASK", "ASK 1 h:99999999",
        "ERR MOVED 1 h:1", "MOVED 1  h:1", "", "MOVED 00000001 h:1", "MOVED 1 a[b:1",
        "MOVED 1 [a b]:1", "MOVED 1 h\r:1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (rc__parse_redirect(bad[i], strlen(bad[i]), &rd) != RC__REPLY_DONE)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void test_classify(void **state)
{
    (void)state;
    static const struct {
        const char *resp;
        rc__verdict v;
    } cases[] = {
        {"-MOVED 12182 10.0.0.2:7001\r\n", RC__REPLY_MOVED},
        {"-ASK 12182 10.0.0.3:7002\r\n", RC__REPLY_ASK},
        {"-TRYAGAIN Multiple keys request during rehashing of slot\r\n", RC__REPLY_RETRY},
        {"-CLUSTERDOWN The cluster is down\r\n", RC__REPLY_RETRY},
        {"-CLUSTERDOWN\r\n", RC__REPLY_RETRY},
        {"-LOADING Redis is loading the dataset in memory\r\n", RC__REPLY_RETRY},
        {"-TRYAGAINX no\r\n", RC__REPLY_DONE},
        {"-ERR unknown command\r\n", RC__REPLY_DONE},
        {"-CROSSSLOT Keys in request don't hash to the same slot\r\n", RC__REPLY_DONE},
        {"-MOVED garbage\r\n", RC__REPLY_DONE},
        {"+MOVED 1 h:1\r\n", RC__REPLY_DONE},
        {"$13\r\nMOVED 1 h:100\r\n", RC__REPLY_DONE},
        {"+OK\r\n", RC__REPLY_DONE},
        {":1\r\n", RC__REPLY_DONE},
        {"*1\r\n-MOVED 1 h:1\r\n", RC__REPLY_DONE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        redisReply *r = resp(cases[i].resp);
        rc__redirect rd;
        if (rc__classify(r, &rd) != cases[i].v)
            fail_msg("case %zu: %s", i, cases[i].resp);
        if (cases[i].v == RC__REPLY_MOVED) {
            assert_int_equal(rd.slot, 12182);
            assert_string_equal(rd.host, "10.0.0.2");
            assert_int_equal(rd.port, 7001);
        }
        freeReplyObject(r);
    }
    rc__redirect rd;
    assert_int_equal(rc__classify(NULL, &rd), RC__REPLY_DONE);
}

/* ---- CLUSTER SLOTS ------------------------------------------------------ */

/* Three masters with a replica each, as Redis 7 writes it (node entries
 * carry an id and a metadata array); the third master's endpoint is empty
 * (the node asked), a fourth range has an unknown endpoint "?". */
static const char slots_reply[] =
    "*4\r\n"
    "*4\r\n:0\r\n:5460\r\n"
    "*4\r\n$9\r\n192.0.2.1\r\n:7000\r\n$4\r\nid-a\r\n*0\r\n"
    "*4\r\n$9\r\n192.0.2.4\r\n:7003\r\n$4\r\nid-d\r\n*0\r\n"
    "*4\r\n:5461\r\n:10922\r\n"
    "*3\r\n$9\r\n192.0.2.2\r\n:7001\r\n$4\r\nid-b\r\n"
    "*3\r\n$9\r\n192.0.2.5\r\n:7004\r\n$4\r\nid-e\r\n"
    "*3\r\n:10923\r\n:16000\r\n"
    "*3\r\n$0\r\n\r\n:7002\r\n$4\r\nid-c\r\n"
    "*3\r\n:16001\r\n:16383\r\n"
    "*3\r\n$1\r\n?\r\n:7005\r\n$4\r\nid-f\r\n";

static void test_slots_parse(void **state)
{
    (void)state;
    redisReply *r = resp(slots_reply);
    rc__slotmap m;
    assert_int_equal(rc__slots_parse(r, "192.0.2.3", &m), 0);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.ranges[0].start, 0);
    assert_int_equal(m.ranges[0].end, 5460);
    assert_string_equal(m.ranges[0].host, "192.0.2.1");
    assert_int_equal(m.ranges[0].port, 7000);
    assert_int_equal(m.ranges[1].start, 5461);
    assert_string_equal(m.ranges[1].host, "192.0.2.2");
    assert_int_equal(m.ranges[2].end, 16000);
    assert_string_equal(m.ranges[2].host, "192.0.2.3"); /* the node asked */
    assert_int_equal(m.ranges[2].port, 7002);
    /* Every usable address, replicas included, once. */
    assert_int_equal(m.naddrs, 5);
    assert_string_equal(m.addrs[1], "192.0.2.4:7003");
    rc__slotmap_free(&m);
    freeReplyObject(r);

    /* A NULL endpoint (RESP nil) also means the node asked. */
    r = resp("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$-1\r\n:7000\r\n");
    assert_int_equal(rc__slots_parse(r, "::1", &m), 0);
    assert_int_equal(m.n, 1);
    assert_string_equal(m.ranges[0].host, "::1");
    assert_string_equal(m.addrs[0], "[::1]:7000");
    rc__slotmap_free(&m);
    freeReplyObject(r);

    r = resp("*0\r\n");
    assert_int_equal(rc__slots_parse(r, "h", &m), 0);
    assert_int_equal(m.n, 0);
    rc__slotmap_free(&m);
    freeReplyObject(r);

    static const char nul_host[] = "*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$3\r\na\0b\r\n:1\r\n";
    static const char *bad[] = {
        "+OK\r\n",
        "-ERR This instance has cluster support disabled\r\n",
        "*1\r\n:1\r\n",
        "*1\r\n*2\r\n:0\r\n:1\r\n",
        "*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n$1\r\na\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\na\r\n:1\r\n",
        "*1\r\n*3\r\n:-1\r\n:3\r\n*2\r\n$1\r\na\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\na\r\n:0\r\n",
        "*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\na\r\n:65536\r\n",
        "*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\na\r\n$4\r\n7000\r\n",
        "*1\r\n*3\r\n:0\r\n:3\r\n*1\r\n$1\r\na\r\n",
        "*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n:1\r\n:1\r\n",
        "*1\r\n*3\r\n$1\r\n0\r\n:3\r\n*2\r\n$1\r\na\r\n:1\r\n",
        "*2\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\na\r\n:1\r\n*0\r\n",
        "*1\r\n*4\r\n:0\r\n:3\r\n*2\r\n$1\r\na\r\n:1\r\n+x\r\n",
        nul_host,
        /* Hosts that could not be written back as host:port (found by
         * fuzz_resp). */
        "*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$9\r\n1*39 [::1\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$5\r\n[::1]\r\n:1\r\n",
        "*1\r\n*4\r\n:0\r\n:3\r\n*2\r\n$1\r\na\r\n:1\r\n*2\r\n$3\r\na b\r\n:2\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        redisReader *rd = redisReaderCreate();
        size_t len = bad[i] == nul_host ? sizeof(nul_host) - 1 : strlen(bad[i]);
        redisReaderFeed(rd, bad[i], len);
        void *obj = NULL;
        assert_int_equal(redisReaderGetReply(rd, &obj), REDIS_OK);
        assert_non_null(obj);
        if (rc__slots_parse(obj, "h", &m) != ERR_MALFORMED)
            fail_msg("accepted bad case %zu", i);
        assert_int_equal(m.n, 0);
        assert_null(m.ranges);
        freeReplyObject(obj);
        redisReaderFree(rd);
    }
    assert_int_equal(rc__slots_parse(NULL, "h", &m), ERR_MALFORMED);
}

/* ---- the routing table -------------------------------------------------- */

static int count_nodes(const rc_cluster *c)
{
    int n = 0;
    for (const rc__node *x = c->nodes; x; x = x->next)
        n++;
    return n;
}

static void drain(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void apply(rc_cluster *c, const char *text, const char *asked)
{
    redisReply *r = resp(text);
    rc__slotmap m;
    assert_int_equal(rc__slots_parse(r, asked, &m), 0);
    rc__map_apply(c, &m, asked);
    rc__slotmap_free(&m);
    freeReplyObject(r);
}

static void never_cb(void *ud, rc_sub_event ev, const char *channel, const char *msg, size_t len)
{
    (void)ud, (void)ev, (void)channel, (void)msg, (void)len;
    fail_msg("no subscription event expected");
}

static void test_routing_table(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rc_cluster *c;
    rc_config cfg = {.timeout_ms = 200};
    assert_int_equal(rc_create(&loop, "127.0.0.1:1", &cfg, &c), 0);
    /* The seed is a node until a map is known. */
    assert_int_equal(count_nodes(c), 1);

    apply(c, slots_reply, "192.0.2.3");
    assert_int_equal(count_nodes(c), 3); /* the seed owns no slot: retired */
    assert_int_equal(c->slots[0]->port, 7000);
    assert_int_equal(c->slots[5460]->port, 7000);
    assert_int_equal(c->slots[5461]->port, 7001);
    assert_int_equal(c->slots[10922]->port, 7001);
    assert_int_equal(c->slots[10923]->port, 7002);
    assert_string_equal(c->slots[10923]->host, "192.0.2.3");
    assert_null(c->slots[16001]); /* unknown endpoint: uncovered */
    assert_int_equal(c->slots[0]->nslots, 5461);
    assert_int_equal(c->slots[12000]->nslots, 16001 - 10923);
    /* Keys route by slot. */
    assert_ptr_equal(c->slots[rc_slot("bar", 3)], c->slots[0]);      /* 5061 */
    assert_ptr_equal(c->slots[rc_slot("foo", 3)], c->slots[10923]);  /* 12182 */
    assert_ptr_equal(c->slots[rc_slot("hello", 5)], c->slots[5460]); /* 866 */
    unsigned version = c->map_version;

    /* -MOVED moves one slot, to a new node or a known one. */
    rc__map_moved(c, 866, "192.0.2.9", 7009);
    assert_int_equal(count_nodes(c), 4);
    assert_string_equal(c->slots[866]->name, "192.0.2.9:7009");
    assert_int_equal(c->slots[866]->nslots, 1);
    assert_int_equal(c->slots[0]->nslots, 5460);
    rc__map_moved(c, 867, "192.0.2.2", 7001);
    assert_ptr_equal(c->slots[867], c->slots[5461]);
    assert_true(c->map_version > version);

    /* A failover: 192.0.2.1:7000's replica takes its slots; a full map
     * brings 866/867 back and retires the old master and the extra node. */
    apply(c,
          "*3\r\n"
          "*3\r\n:0\r\n:5460\r\n*2\r\n$9\r\n192.0.2.4\r\n:7003\r\n"
          "*3\r\n:5461\r\n:10922\r\n*2\r\n$9\r\n192.0.2.2\r\n:7001\r\n"
          "*3\r\n:10923\r\n:16383\r\n*2\r\n$9\r\n192.0.2.3\r\n:7002\r\n",
          "192.0.2.2");
    assert_int_equal(count_nodes(c), 3);
    assert_string_equal(c->slots[0]->name, "192.0.2.4:7003");
    assert_string_equal(c->slots[866]->name, "192.0.2.4:7003");
    assert_string_equal(c->slots[867]->name, "192.0.2.4:7003");
    assert_int_equal(c->slots[16383]->port, 7002);
    assert_null(rc__node_get(c, "192.0.2.1", 7000, 0));
    assert_null(rc__node_get(c, "192.0.2.9", 7009, 0));
    /* Remembered to find the cluster again: the seed and the 5 usable
     * nodes CLUSTER SLOTS named. */
    assert_int_equal(c->nboot, 6);

    /* Subscriptions are placed on their slot's master. */
    assert_int_equal(rc_ssubscribe(c, "{bar}room", never_cb, NULL), 0);
    assert_int_equal(rc_ssubscribe(c, "{bar}room", never_cb, NULL), RC_EEXIST);
    assert_string_equal(c->subs->node->name, "192.0.2.4:7003");
    assert_int_equal(rc_sunsubscribe(c, "nope"), RC_ENOENT);
    assert_int_equal(rc_sunsubscribe(c, "{bar}room"), 0);
    assert_int_equal(rc_sunsubscribe(c, "{bar}room"), RC_ENOENT);

    rc_free(c);
    drain(&loop);
}

/* ---- the queue without a server ----------------------------------------- */

typedef struct {
    int calls, timeouts, full, closed, other;
    rc_cluster *c;
    int reentered; /* what rc_command answered from inside a callback */
} tally_t;

static void tally_cb(void *ud, const redisReply *reply, const char *err)
{
    tally_t *t = ud;
    t->calls++;
    assert_true((reply == NULL) != (err == NULL));
    if (err && strcmp(err, RC_ERR_TIMEOUT) == 0)
        t->timeouts++;
    else if (err && strcmp(err, RC_ERR_QUEUE_FULL) == 0)
        t->full++;
    else if (err && strcmp(err, RC_ERR_CLOSED) == 0)
        t->closed++;
    else
        t->other++;
    if (t->c) {
        static const char *argv[] = {"PING"};
        t->reentered = rc_command(t->c, NULL, 1, argv, NULL, tally_cb, t);
    }
}

static void test_queue_bound_and_timeout(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rc_cluster *c;
    rc_config cfg = {.timeout_ms = 150, .max_queued = 3, .backoff_min_ms = 10,
                     .backoff_max_ms = 40, .refresh_ms = 20};
    assert_int_equal(rc_create(&loop, " 127.0.0.1:1 ", &cfg, &c), 0);
    tally_t t = {0};
    static const char *argv[] = {"GET", "k"};
    for (int i = 0; i < 5; i++)
        assert_int_equal(rc_command(c, "k", 2, argv, NULL, tally_cb, &t), 0);
    assert_int_equal(t.calls, 0); /* never from inside rc_command */
    assert_int_equal(c->nwait, 3);

    uint64_t start = uv_now(&loop);
    while (t.calls < 5)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(t.full, 2);
    assert_int_equal(t.timeouts, 3);
    assert_true(uv_now(&loop) - start >= 140);
    assert_int_equal(c->nwait, 0);

    /* Invalid calls: no callback. */
    static const char *sub[] = {"SSUBSCRIBE", "ch"};
    assert_int_equal(rc_command(c, NULL, 2, sub, NULL, tally_cb, &t), RC_EINVAL);
    static const char *mon[] = {"monitor"};
    assert_int_equal(rc_command(c, NULL, 1, mon, NULL, tally_cb, &t), RC_EINVAL);
    assert_int_equal(rc_command(c, NULL, 0, argv, NULL, tally_cb, &t), RC_EINVAL);
    assert_int_equal(rc_command(c, NULL, 2, argv, NULL, NULL, &t), RC_EINVAL);
    assert_int_equal(rc_ssubscribe(c, "x", NULL, NULL), RC_EINVAL);

    /* rc_free: pending callbacks run inside it, and rc_* there is closed. */
    tally_t u = {.c = c};
    for (int i = 0; i < 3; i++)
        assert_int_equal(rc_command(c, "k", 2, argv, NULL, tally_cb, &u), 0);
    rc_free(c);
    assert_int_equal(u.calls, 3);
    assert_int_equal(u.closed, 3);
    assert_int_equal(u.reentered, RC_ECLOSED);
    drain(&loop);
}

static void stamp_cb(void *ud, const redisReply *reply, const char *err)
{
    (void)reply;
    (void)err;
    *(uint64_t *)ud = uv_hrtime();
}

static void test_deadline_after_blocking(void **state)
{
    (void)state;
    /* A caller that blocked the loop before rc_command still gets the
     * whole timeout (the loop's cached time is stale by then). */
    uv_loop_t loop;
    uv_loop_init(&loop);
    rc_cluster *c;
    rc_config cfg = {.timeout_ms = 150};
    assert_int_equal(rc_create(&loop, "127.0.0.1:1", &cfg, &c), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    struct timespec pause = {0, 300 * 1000000L};
    nanosleep(&pause, NULL);
    uint64_t sent = uv_hrtime(), done = 0;
    static const char *argv[] = {"GET", "k"};
    assert_int_equal(rc_command(c, "k", 2, argv, NULL, stamp_cb, &done), 0);
    while (done == 0)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(done - sent >= 140 * 1000000ULL);
    rc_free(c);
    drain(&loop);
}

static void test_create_rejects(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rc_cluster *c = (rc_cluster *)&loop;
    static const char *bad[] = {"", ",", "host", "host:", ":7000", "h:0", "h:x", "a:1,,b:2",
                                "h:70000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (rc_create(&loop, bad[i], NULL, &c) != RC_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_null(c);
    }
    assert_int_equal(rc_create(&loop, "[::1]:1,127.0.0.1:2", NULL, &c), 0);
    assert_int_equal(c->nboot, 2);
    assert_string_equal(c->boot[0], "[::1]:1");
    rc_free(c);
    rc_free(NULL);
    drain(&loop);
}

/* ---- the subscriber protocol engine ------------------------------------- */

typedef struct {
    char log[2048];
    int stop_after; /* 0: never */
    int n;
} evlog_t;

static int evlog_cb(void *ud, const rc__ev *ev)
{
    static const char *names[] = {"sub", "unsub", "kick", "msg", "refused"};
    evlog_t *l = ud;
    size_t at = strlen(l->log);
    snprintf(l->log + at, sizeof(l->log) - at, "%s:%.*s%s%.*s;", names[ev->kind],
             (int)ev->channel_len, ev->channel, ev->data ? "=" : "", (int)ev->len,
             ev->data ? ev->data : "");
    return l->stop_after && ++l->n >= l->stop_after;
}

static const char sub_script[] =
    "*3\r\n$10\r\nssubscribe\r\n$1\r\na\r\n:1\r\n"
    "*3\r\n$8\r\nsmessage\r\n$1\r\na\r\n$5\r\nhello\r\n"
    "-MOVED 15495 192.0.2.1:7000\r\n"
    "*3\r\n$12\r\nsunsubscribe\r\n$1\r\nz\r\n:0\r\n"
    "*3\r\n$12\r\nsunsubscribe\r\n$1\r\na\r\n:0\r\n"
    "*3\r\n$8\r\nsmessage\r\n$1\r\nq\r\n$0\r\n\r\n";
static const char sub_expect[] =
    "sub:a;msg:a=hello;refused:b=MOVED 15495 192.0.2.1:7000;kick:z;unsub:a;msg:q=;";

static void script_ops(rc__subproto *p, buf_t *out)
{
    rc__subproto_send(p, RC__OP_SSUBSCRIBE, "a", 1, out);
    rc__subproto_send(p, RC__OP_SSUBSCRIBE, "b", 1, out);
    rc__subproto_send(p, RC__OP_SUNSUBSCRIBE, "a", 1, out);
}

static void test_subproto(void **state)
{
    (void)state;
    rc__subproto p;
    buf_t out = {0};
    evlog_t l = {0};

    /* What goes on the wire. */
    assert_int_equal(rc__subproto_init(&p), 0);
    script_ops(&p, &out);
    assert_string_equal(out.data, "*2\r\n$10\r\nSSUBSCRIBE\r\n$1\r\na\r\n"
                                  "*2\r\n$10\r\nSSUBSCRIBE\r\n$1\r\nb\r\n"
                                  "*2\r\n$12\r\nSUNSUBSCRIBE\r\n$1\r\na\r\n");
    assert_int_equal(p.nops, 3);

    /* Whole, then byte by byte: the same events. */
    assert_int_equal(rc__subproto_feed(&p, sub_script, strlen(sub_script), evlog_cb, &l), 0);
    assert_string_equal(l.log, sub_expect);
    assert_int_equal(p.nops, 0);
    rc__subproto_free(&p);

    memset(&l, 0, sizeof(l));
    assert_int_equal(rc__subproto_init(&p), 0);
    script_ops(&p, &out);
    for (size_t i = 0; i < strlen(sub_script); i++)
        assert_int_equal(rc__subproto_feed(&p, sub_script + i, 1, evlog_cb, &l), 0);
    assert_string_equal(l.log, sub_expect);
    rc__subproto_free(&p);

    /* A callback can stop the feed. */
    memset(&l, 0, sizeof(l));
    l.stop_after = 2;
    assert_int_equal(rc__subproto_init(&p), 0);
    script_ops(&p, &out);
    assert_int_equal(rc__subproto_feed(&p, sub_script, strlen(sub_script), evlog_cb, &l), 1);
    assert_string_equal(l.log, "sub:a;msg:a=hello;");
    rc__subproto_free(&p);

    /* Protocol errors: the link must close. */
    static const char *bad[] = {
        "-ERR nobody asked\r\n",                                 /* no command pending */
        "*3\r\n$10\r\nssubscribe\r\n$1\r\nx\r\n:1\r\n",          /* not the one sent */
        "+OK\r\n",
        ":1\r\n",
        "*2\r\n$8\r\nsmessage\r\n$1\r\na\r\n",
        "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n",
        "*3\r\n$8\r\nsmessage\r\n$1\r\na\r\n:1\r\n",
        "*3\r\n$8\r\nsmessage\r\n:1\r\n$1\r\na\r\n",
        "*3\r\n$12\r\nsunsubscribe\r\n$1\r\na\r\n$1\r\n0\r\n",
        "*65\r\n",                                               /* over the array cap */
        "?\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rc__subproto q;
        assert_int_equal(rc__subproto_init(&q), 0);
        if (i > 0)
            rc__subproto_send(&q, RC__OP_SSUBSCRIBE, "a", 1, &out);
        memset(&l, 0, sizeof(l));
        if (rc__subproto_feed(&q, bad[i], strlen(bad[i]), evlog_cb, &l) != ERR_MALFORMED)
            fail_msg("accepted bad case %zu", i);
        rc__subproto_free(&q);
    }
    buf_free(&out);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_redirect),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_slots_parse),
        cmocka_unit_test(test_routing_table),
        cmocka_unit_test(test_queue_bound_and_timeout),
        cmocka_unit_test(test_deadline_after_blocking),
        cmocka_unit_test(test_create_rejects),
        cmocka_unit_test(test_subproto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
