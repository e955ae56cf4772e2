/* test_store_sqlite.c - what only the embedded store (src/store/
 * store_sqlite.c) can show, through the asynchronous store.h interface on
 * a libuv loop of the test's own: turns and their one commit, failures
 * undone alone, inline completion without a turn, the migration table,
 * WAL mode and checkpoints, the query plans, its id form and purge counts,
 * and when writes become visible to another connection. What every
 * backend must do is the contract suite (tests/store/store_contract.c),
 * which test_store_contract.c runs on this store.
 *
 * Most tests go through small wrappers that start one op, check that its
 * callback did not run inline, run the loop until it is idle, and check
 * that the callback ran exactly once. Teardown closes the store, the turn
 * and then the loop, which fails if anything left a handle behind. Each test gets a
 * fresh directory.
 *
 * The .c is included to reach its statement table (house style allows it);
 * libparley.a's copy is then never linked in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store_sqlite.c"


typedef struct {
    char root[64]; /* mkdtemp result, removed at teardown */
    char dir[128]; /* root/data/db: open must create it */
    uv_loop_t loop;
    turn_t turn;
    store_t *s;
} fixture_t;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture_t *f = mem_calloc(1, sizeof(*f));
    strcpy(f->root, "/tmp/parley-store-XXXXXX");
    if (mkdtemp(f->root) == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/data/db", f->root);
    if (uv_loop_init(&f->loop) != 0 || turn_init(&f->loop, &f->turn) != 0)
        return -1;
    if (store_sqlite_open(&f->turn, f->dir, &f->s) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    store_close(f->s);
    turn_close(&f->turn);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the turn's close callbacks */
    assert_int_equal(uv_loop_close(&f->loop), 0); /* no handle left behind */
    nftw(f->root, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    mem_free(f);
    return 0;
}

static void reopen(fixture_t *f)
{
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(store_sqlite_open(&f->turn, f->dir, &f->s), 0);
}

/* ---- callbacks that record, and synchronous wrappers ---------------------- */

typedef struct {
    int calls;
    int rc;
    int order;                /* value of *seq when it ran */
    int *seq;                 /* shared counter, may be NULL */
    char *name;
    int created;
    store_room_list_t list;   /* taken from the callback */
    store_appended_t app;
    store_history_t h;        /* taken from the callback */
    uint64_t count;
    store_conv_list_t convs;  /* taken from the callback */
    void (*then)(void *arg);  /* run inside the callback, may be NULL */
    void *then_arg;
} result_t;

static void got(result_t *r, int rc)
{
    r->calls++;
    r->rc = rc;
    if (r->seq)
        r->order = (*r->seq)++;
    if (r->then)
        r->then(r->then_arg);
}

static void on_room(void *ud, int rc, const char *name, int created)
{
    result_t *r = ud;
    if (rc != 0)
        assert_null(name);
    r->name = name ? mem_strdup(name) : NULL;
    r->created = created;
    got(r, rc);
}


static void on_append(void *ud, int rc, const store_appended_t *res)
{
    result_t *r = ud;
    r->app = *res;
    got(r, rc);
}

static void on_history(void *ud, int rc, store_history_t *h)
{
    result_t *r = ud;
    r->h = *h;
    memset(h, 0, sizeof(*h));
    got(r, rc);
}

static void on_count(void *ud, int rc, uint64_t n)
{
    result_t *r = ud;
    r->count = n;
    got(r, rc);
}

static void on_convs(void *ud, int rc, store_conv_list_t *l)
{
    result_t *r = ud;
    r->convs = *l; /* take it: the store frees what we leave */
    memset(l, 0, sizeof(*l));
    got(r, rc);
}

/* The op was started: its callback must not have run yet; it runs once when
 * the loop turns, and nothing of the store's keeps the loop alive once it
 * is idle again. */
static void wait_for(fixture_t *f, result_t *r)
{
    assert_int_equal(r->calls, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r->calls, 1);
    assert_false(uv_loop_alive(&f->loop));
}




static int history(fixture_t *f, const char *conv, const char *before, size_t limit,
                   store_history_t *out)
{
    result_t r = {0};
    store_history(f->s, conv, before, limit, on_history, &r);
    wait_for(f, &r);
    *out = r.h;
    if (r.rc != 0) { /* an error gives an empty page */
        assert_null(out->msgs);
        assert_int_equal(out->n, 0);
        assert_false(out->has_more);
    }
    return r.rc;
}

static int since(fixture_t *f, const char *conv, int64_t since_ms, size_t limit,
                 store_history_t *out)
{
    result_t r = {0};
    store_since(f->s, conv, since_ms, limit, on_history, &r);
    wait_for(f, &r);
    *out = r.h;
    if (r.rc != 0) {
        assert_null(out->msgs);
        assert_int_equal(out->n, 0);
        assert_false(out->has_more);
    }
    return r.rc;
}

static int private_convs(fixture_t *f, const char *user_key, int64_t since_ms,
                         store_conv_list_t *out)
{
    result_t r = {0};
    store_private_convs(f->s, user_key, since_ms, on_convs, &r);
    wait_for(f, &r);
    *out = r.convs;
    if (r.rc != 0) {
        assert_null(out->convs);
        assert_int_equal(out->n, 0);
    }
    return r.rc;
}

/* Appends with an optional clientId (cid NULL: none; expiry ts + TTL). */
static int append_cid(fixture_t *f, const char *conv, const char *from, const char *to,
                      const char *content, int64_t ts, const char *user, const char *cid,
                      size_t cid_len, store_appended_t *out)
{
    result_t r = {0};
    store_msg_in_t m = {conv, from, to, content, strlen(content), ts, NULL, NULL, NULL, NULL};
    store_dedupe_in_t d = {user, cid, cid_len, ts + STORE_DEDUPE_TTL_MS};
    store_msg_append(f->s, &m, cid ? &d : NULL, on_append, &r);
    wait_for(f, &r);
    *out = r.app;
    return r.rc;
}

static void append(fixture_t *f, const char *conv, const char *from, const char *to,
                   const char *content, int64_t ts, char id[STORE_ID_MAX])
{
    store_appended_t a;
    assert_int_equal(append_cid(f, conv, from, to, content, ts, NULL, NULL, 0, &a), 0);
    assert_false(a.duplicate);
    assert_int_equal(a.ts_ms, ts);
    assert_true(a.id[0] != '\0');
    memcpy(id, a.id, STORE_ID_MAX);
}

static int purge(fixture_t *f, int64_t now, uint64_t *n)
{
    result_t r = {0};
    store_dedupe_purge(f->s, now, on_count, &r);
    wait_for(f, &r);
    *n = r.count;
    return r.rc;
}


/* Opens the fixture's file directly with SQLite: another connection, which
 * sees only what the store has committed. */
static sqlite3 *raw_open(fixture_t *f)
{
    char path[256];
    sqlite3 *db = NULL;
    snprintf(path, sizeof(path), "%s/parley.db", f->dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    return db;
}

static int64_t raw_count(sqlite3 *db, const char *table)
{
    char sql[128];
    int64_t n = -1;
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
    assert_int_equal(store_sqlite__query_int(db, sql, &n), 0);
    return n;
}

/* ---- rooms -------------------------------------------------------------- */



/* ---- messages ----------------------------------------------------------- */



/* The decimal rowid form of this backend's ids: the largest is unknown,
 * one more does not parse (the contract suite has the common cases). */
static void test_bad_before_ids(void **state)
{
    fixture_t *f = *state;
    char *a = store_conv_room("a"), id[STORE_ID_MAX];
    store_history_t h;
    append(f, a, "x", NULL, "in a", 1, id);
    assert_string_equal(id, "1");
    assert_int_equal(history(f, a, "9223372036854775807", 10, &h), STORE_EBADID);
    assert_int_equal(history(f, a, "9223372036854775808", 10, &h), STORE_EBADID);
    assert_int_equal(history(f, a, "1", 10, &h), 0);
    assert_int_equal(h.n, 0);
    assert_null(h.msgs);
    mem_free(a);
}


/* ---- clientId de-duplication -------------------------------------------- */

/* The purge deletes what expired at its time, and only that, and counts
 * it (the contract suite has what a clientId does). */
static void test_dedupe_purge_counts(void **state)
{
    fixture_t *f = *state;
    const int64_t now = 1700000000000;
    const int64_t exp = now + STORE_DEDUPE_TTL_MS;
    char *conv = store_conv_room("general");
    store_appended_t a;
    uint64_t n = 99;
    assert_int_equal(append_cid(f, conv, "Alice", NULL, "one", now, "alice", "c1", 2, &a), 0);
    assert_int_equal(append_cid(f, conv, "Alice", NULL, "two", now + 1, "alice", "c2", 2, &a), 0);
    assert_int_equal(append_cid(f, conv, "Bob", NULL, "three", now + 5, "bob", "c1", 2, &a), 0);
    assert_int_equal(purge(f, now, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(purge(f, exp + 1, &n), 0); /* alice's two */
    assert_int_equal(n, 2);
    assert_int_equal(append_cid(f, conv, "Bob", NULL, "again", exp + 2, "bob", "c1", 2, &a), 0);
    assert_true(a.duplicate); /* bob's lives on */
    assert_int_equal(purge(f, exp + 5, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(purge(f, exp + 5, &n), 0);
    assert_int_equal(n, 0);
    mem_free(conv);
}

/* ---- what a client missed ------------------------------------------------ */

/* Whether list l holds conv, and how many times. */
static int conv_count(const store_conv_list_t *l, const char *conv)
{
    int n = 0;
    for (size_t i = 0; i < l->n; i++)
        n += strcmp(l->convs[i], conv) == 0;
    return n;
}



/* A private_convs started after an append in the same turn sees it (the
 * SQLite store does each operation when it starts). */
static void test_private_convs_same_turn(void **state)
{
    fixture_t *f = *state;
    result_t w = {0}, rd = {0};
    int seq = 0;
    w.seq = rd.seq = &seq;
    char *dn = store_conv_private("dave", "nina");
    store_msg_in_t m = {dn, "Dave", "Nina", "hello", 5, 700, NULL, NULL, NULL, NULL};
    store_msg_append(f->s, &m, NULL, on_append, &w);
    store_private_convs(f->s, "nina", 699, on_convs, &rd);
    assert_int_equal(rd.calls, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(w.rc, 0);
    assert_int_equal(rd.rc, 0);
    assert_true(w.order < rd.order);
    assert_int_equal(rd.convs.n, 1);
    assert_string_equal(rd.convs.convs[0], dn);
    store_conv_list_free(&rd.convs);
    assert_false(uv_loop_alive(&f->loop));
    mem_free(dn);
}

/* ---- completion: batches, order, close, failures ------------------------ */

static void test_turn_is_one_commit(void **state)
{
    fixture_t *f = *state;
    char *conv = store_conv_room("turn");
    int seq = 0;
    result_t w[3] = {{0}}, rd = {0}, rm = {0};
    sqlite3 *raw = raw_open(f);

    /* One turn: three appends, a room, then a read of the conversation. */
    for (int i = 0; i < 3; i++) {
        w[i].seq = &seq;
        store_msg_in_t m = {conv, "a", NULL, "x", 1, i, NULL, NULL, NULL, NULL};
        store_msg_append(f->s, &m, NULL, on_append, &w[i]);
    }
    rm.seq = &seq;
    store_room_create(f->s, "turn", "Turn", on_room, &rm);
    rd.seq = &seq;
    store_history(f->s, conv, NULL, 10, on_history, &rd);
    /* Nothing reported, nothing committed yet: another connection sees none. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(w[i].calls, 0);
    assert_int_equal(rd.calls, 0);
    assert_int_equal(raw_count(raw, "messages"), 0);
    assert_true(uv_loop_alive(&f->loop));

    uv_run(&f->loop, UV_RUN_DEFAULT);
    /* One commit, then every callback in start order. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(w[i].calls, 1);
        assert_int_equal(w[i].rc, 0);
        assert_int_equal(w[i].order, i);
    }
    assert_int_equal(rm.order, 3);
    assert_int_equal(rm.created, 1);
    mem_free(rm.name);
    assert_int_equal(rd.order, 4);
    assert_int_equal(rd.rc, 0);
    assert_int_equal(rd.h.n, 3); /* the read saw the turn's writes */
    assert_string_equal(rd.h.msgs[2].id, w[2].app.id);
    store_history_free(&rd.h);
    assert_int_equal(raw_count(raw, "messages"), 3);
    assert_int_equal(raw_count(raw, "rooms"), 1);
    assert_false(uv_loop_alive(&f->loop)); /* nothing of the store's is armed */
    assert_int_equal(sqlite3_close(raw), SQLITE_OK);
    mem_free(conv);
}

typedef struct {
    fixture_t *f;
    result_t *next; /* the op to start */
    const char *conv;
} chain_t;

static void start_append(void *arg)
{
    chain_t *c = arg;
    store_msg_in_t m = {c->conv, "a", NULL, "chained", 7, 2, NULL, NULL, NULL, NULL};
    store_msg_append(c->f->s, &m, NULL, on_append, c->next);
}

static void test_callback_starts_op(void **state)
{
    fixture_t *f = *state;
    char *conv = store_conv_room("chain");
    int seq = 0;
    result_t first = {.seq = &seq}, second = {.seq = &seq}, other = {.seq = &seq};
    chain_t chain = {f, &second, conv};
    first.then = start_append;
    first.then_arg = &chain;

    store_msg_in_t m = {conv, "a", NULL, "first", 5, 1, NULL, NULL, NULL, NULL};
    store_msg_append(f->s, &m, NULL, on_append, &first);
    store_room_get(f->s, "nope", on_room, &other);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    /* the op started from a callback completes in the same run, after the
     * ops started before it */
    assert_int_equal(first.order, 0);
    assert_int_equal(other.order, 1);
    assert_int_equal(other.rc, STORE_ENOTFOUND);
    assert_int_equal(second.calls, 1);
    assert_int_equal(second.order, 2);
    assert_int_equal(second.rc, 0);
    store_history_t h;
    assert_int_equal(history(f, conv, NULL, 10, &h), 0);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.msgs[1].content, "chained");
    store_history_free(&h);
    mem_free(conv);
}

/* store_close rolls the turn's open transaction back: the pending write
 * is not in the file (the contract suite has the callbacks' side). */
static void test_close_rolls_back_the_turn(void **state)
{
    fixture_t *f = *state;
    char *conv = store_conv_room("closing");
    char id[STORE_ID_MAX];
    append(f, conv, "a", NULL, "kept", 1, id);
    result_t w = {0};
    store_msg_in_t m = {conv, "a", NULL, "lost", 4, 2, NULL, NULL, NULL, NULL};
    store_msg_append(f->s, &m, NULL, on_append, &w);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.rc, STORE_ECLOSED);
    assert_false(uv_loop_alive(&f->loop)); /* the store's hook is disarmed */
    assert_int_equal(store_sqlite_open(&f->turn, f->dir, &f->s), 0);
    store_history_t h;
    assert_int_equal(history(f, conv, NULL, 10, &h), 0);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.msgs[0].content, "kept");
    store_history_free(&h);
    mem_free(conv);
}

typedef struct {
    fixture_t *f;
    result_t *r;
} timer_ctx_t;

static void start_from_timer(uv_timer_t *t)
{
    timer_ctx_t *ctx = t->data;
    store_room_get(ctx->f->s, "nope", on_room, ctx->r);
}

/* An op started from a timer (before the loop's poll) completes in the same
 * turn, before the poll: the store does not wait for I/O that may take
 * seconds to come. One turn that does not block (UV_RUN_NOWAIT) is enough. */
static void test_op_from_timer_does_not_wait_for_io(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    timer_ctx_t ctx = {f, &r};
    uv_timer_t now, later;
    uv_timer_init(&f->loop, &now);
    uv_timer_init(&f->loop, &later);
    now.data = &ctx;
    uv_timer_start(&now, start_from_timer, 0, 0);
    uv_timer_start(&later, start_from_timer, 10000, 0); /* keeps the loop alive */
    uint64_t t0 = uv_hrtime();
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.rc, STORE_ENOTFOUND);
    assert_true(uv_hrtime() - t0 < (uint64_t)2000000000);
    uv_close((uv_handle_t *)&now, NULL);
    uv_close((uv_handle_t *)&later, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_false(uv_loop_alive(&f->loop));
}

/* A failing op is undone alone: the others of its turn commit. */
/* "before", middle (with d, if any) and "after" appended to conv in one
 * turn, stamped ts, ts+1, ts+2: the middle one must fail alone. */
static void turn_with_failing_middle(fixture_t *f, const char *conv, const char *middle,
                                     const store_dedupe_in_t *d, int64_t ts)
{
    result_t r[3] = {{0}};
    store_msg_in_t m[3] = {{conv, "a", NULL, "before", 6, ts, NULL, NULL, NULL, NULL},
                           {conv, "a", NULL, middle, strlen(middle), ts + 1, NULL, NULL, NULL,
                            NULL},
                           {conv, "a", NULL, "after", 5, ts + 2, NULL, NULL, NULL, NULL}};
    for (int i = 0; i < 3; i++)
        store_msg_append(f->s, &m[i], i == 1 ? d : NULL, on_append, &r[i]);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r[0].rc, 0);
    assert_int_equal(r[1].rc, STORE_EIO);
    assert_string_equal(r[1].app.id, "");
    assert_int_equal(r[2].rc, 0);
}

static void test_failure_stays_in_its_op(void **state)
{
    fixture_t *f = *state;
    char *conv = store_conv_room("fragile");
    sqlite3 *raw = raw_open(f);
    assert_int_equal(sqlite3_exec(raw, "DROP TABLE dedupe", NULL, NULL, NULL), SQLITE_OK);

    store_dedupe_in_t d = {"a", "c1", 2, 1000};
    turn_with_failing_middle(f, conv, "with clientId", &d, 1);

    store_history_t h;
    assert_int_equal(history(f, conv, NULL, 10, &h), 0);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.msgs[0].content, "before");
    assert_string_equal(h.msgs[1].content, "after");
    store_history_free(&h);
    assert_int_equal(raw_count(raw, "messages"), 2);
    assert_int_equal(sqlite3_close(raw), SQLITE_OK);
    mem_free(conv);
}

/* The same for a plain append (no clientId, a known conversation), which
 * is one statement without a savepoint of its own: a trigger refuses one
 * message of the turn, and only that one is missing. */
static void test_failed_plain_append_stays_in_its_op(void **state)
{
    fixture_t *f = *state;
    char *conv = store_conv_room("fragile"), id[STORE_ID_MAX];
    append(f, conv, "a", NULL, "first", 1, id); /* the conversation exists */
    sqlite3 *raw = raw_open(f);
    assert_int_equal(sqlite3_exec(raw,
                                  "CREATE TRIGGER refuse BEFORE INSERT ON messages"
                                  " WHEN NEW.content = 'boom' BEGIN SELECT RAISE(ABORT, 'no'); END",
                                  NULL, NULL, NULL), SQLITE_OK);
    turn_with_failing_middle(f, conv, "boom", NULL, 2);
    store_history_t h;
    assert_int_equal(history(f, conv, NULL, 10, &h), 0);
    assert_int_equal(h.n, 3);
    assert_string_equal(h.msgs[0].content, "first");
    assert_string_equal(h.msgs[1].content, "before");
    assert_string_equal(h.msgs[2].content, "after");
    store_history_free(&h);
    assert_int_equal(sqlite3_close(raw), SQLITE_OK);
    mem_free(conv);
}

/* Without a loop, every op is its own transaction and completes inline. */
static void test_inline_without_loop(void **state)
{
    fixture_t *f = *state;
    store_close(f->s);
    assert_int_equal(store_sqlite_open(NULL, f->dir, &f->s), 0);
    char *conv = store_conv_room("inline");
    sqlite3 *raw = raw_open(f);

    result_t w = {0}, dup = {0}, rd = {0}, rm = {0};
    store_msg_in_t m = {conv, "a", NULL, "now", 3, 1, NULL, NULL, NULL, NULL};
    store_dedupe_in_t d = {"a", "c", 1, 1000};
    store_msg_append(f->s, &m, &d, on_append, &w);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.rc, 0);
    assert_int_equal(raw_count(raw, "messages"), 1); /* committed already */
    store_msg_append(f->s, &m, &d, on_append, &dup);
    assert_int_equal(dup.calls, 1);
    assert_true(dup.app.duplicate);
    assert_string_equal(dup.app.id, w.app.id);
    store_history(f->s, conv, NULL, 10, on_history, &rd);
    assert_int_equal(rd.calls, 1);
    assert_int_equal(rd.h.n, 1);
    store_history_free(&rd.h);
    store_room_create(f->s, "inline", "Inline", on_room, &rm);
    assert_int_equal(rm.calls, 1);
    assert_string_equal(rm.name, "Inline");
    mem_free(rm.name);
    assert_false(uv_loop_alive(&f->loop));
    assert_int_equal(sqlite3_close(raw), SQLITE_OK);
    mem_free(conv);
}

/* ---- persistence and schema --------------------------------------------- */


static void test_schema_migrations(void **state)
{
    fixture_t *f = *state;
    reopen(f); /* a second open must not migrate again */

    sqlite3 *db = raw_open(f);
    sqlite3_stmt *stmt;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_migrations ORDER BY 1",
                                        -1, &stmt, NULL), SQLITE_OK);
    for (int v = 1; v <= STORE_SQLITE__SCHEMA_VERSION; v++) {
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(stmt, 0), v);
    }
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
    assert_int_equal(STORE_SQLITE__SCHEMA_VERSION, 6);

    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);

    /* a file from a newer version is refused, not touched */
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_migrations VALUES (7, 0)", NULL, NULL,
                                  NULL), SQLITE_OK);
    store_t *s = (store_t *)1;
    assert_int_equal(store_sqlite_open(&f->turn, f->dir, &s), STORE_ESCHEMA);
    assert_null(s);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM schema_migrations WHERE version = 7", NULL,
                                  NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    assert_int_equal(store_sqlite_open(&f->turn, f->dir, &f->s), 0);
}

/* A file of version 1 (before the recovery indexes), with private and
 * room conversations in it, is upgraded in place at open, and its old
 * messages are found by the new reads. */
static void test_upgrade_from_v1(void **state)
{
    fixture_t *f = *state;
    char path[256];
    store_close(f->s);
    f->s = NULL;
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/parley.db%s", f->dir, suffix[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/parley.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "PRAGMA journal_mode = WAL;"
                                  "CREATE TABLE schema_migrations ("
                                  "  version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL);"
                                  "INSERT INTO schema_migrations VALUES (1, 0);",
                                  NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, store_sqlite__migrations[0], NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO conversations(id, key) VALUES"
                                  " (1, 'p:alice' || char(31) || 'bob'),"
                                  " (2, 'r:general'),"
                                  " (3, 'p:bob' || char(31) || 'carol');"
                                  "INSERT INTO messages(conv_id, sender, recipient, content, ts_ms)"
                                  " VALUES (1, 'Alice', 'Bob', 'old', 100),"
                                  " (2, 'Bob', NULL, 'room', 150),"
                                  " (1, 'Bob', 'Alice', 'newer', 200),"
                                  " (3, 'Carol', 'Bob', 'c', 300);",
                                  NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    assert_int_equal(store_sqlite_open(&f->turn, f->dir, &f->s), 0);
    db = raw_open(f);
    int64_t n = -1;
    assert_int_equal(
        store_sqlite__query_int(db, "SELECT MAX(version) FROM schema_migrations", &n), 0);
    assert_int_equal(n, STORE_SQLITE__SCHEMA_VERSION);
    assert_int_equal(store_sqlite__query_int(db,
                                      "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'"
                                             " AND name = 'conversations_peer'",
                                             &n), 0);
    assert_int_equal(n, 1);
    /* version 3 rebuilt messages without AUTOINCREMENT (ids go on from
     * the largest, below) and took the time index away again */
    assert_int_equal(store_sqlite__query_int(db,
                                      "SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages'"
                                             " AND sql NOT LIKE '%AUTOINCREMENT%'",
                                             &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_sqlite__query_int(db, "SELECT COUNT(*) FROM messages", &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(store_sqlite__query_int(db,
                                      "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'"
                                             " AND name = 'messages_conv_ts'",
                                             &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    char *ab = store_conv_private("alice", "bob"), *bc = store_conv_private("bob", "carol");
    store_history_t h;
    assert_int_equal(since(f, ab, 100, 50, &h), 0);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.msgs[0].content, "newer");
    assert_string_equal(h.msgs[0].id, "3");
    assert_null(h.msgs[0].from_id); /* version 4: v1 messages have no sender id */
    /* version 5: never edited, not deleted, no reply, no reactions */
    assert_int_equal(h.msgs[0].edited_ms, 0);
    assert_false(h.msgs[0].deleted);
    assert_null(h.msgs[0].reply_id);
    assert_int_equal(h.msgs[0].nreactions, 0);
    store_history_free(&h);
    store_conv_list_t l;
    assert_int_equal(private_convs(f, "bob", 0, &l), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(conv_count(&l, ab), 1);
    assert_int_equal(conv_count(&l, bc), 1);
    store_conv_list_free(&l);
    assert_int_equal(private_convs(f, "alice", 200, &l), 0);
    assert_int_equal(l.n, 0);
    /* and the ones written after the upgrade */
    char id[STORE_ID_MAX];
    append(f, ab, "Alice", "Bob", "after", 400, id);
    assert_string_equal(id, "5");
    assert_int_equal(private_convs(f, "alice", 200, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.convs[0], ab);
    store_conv_list_free(&l);
    reopen(f); /* nothing left to migrate */
    mem_free(ab);
    mem_free(bc);
}

static void test_open_errors(void **state)
{
    fixture_t *f = *state;
    store_t *s = (store_t *)1;
    char path[256];
    assert_int_equal(store_sqlite_open(&f->turn, "", &s), STORE_EINVAL);
    assert_null(s);
    /* a directory where a file is in the way */
    snprintf(path, sizeof(path), "%s/parley.db/sub", f->dir);
    assert_int_equal(store_sqlite_open(&f->turn, path, &s), STORE_EIO);
    assert_null(s);
}

/* The plan of statement `which`, one detail per line. Caller frees. */
static int64_t file_size(fixture_t *f, const char *suffix)
{
    char path[300];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/parley.db%s", f->dir, suffix);
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

/* Commits that fill the WAL past the checkpoint threshold several times
 * over: their pages reach the database file itself while the store stays
 * open (checkpoints happen without a close), and everything reads back. */
static void test_checkpoints_while_open(void **state)
{
    fixture_t *f = *state;
    enum { N = 1200, SIZE = 1024 };
    char *content = mem_alloc(SIZE + 1), id[STORE_ID_MAX];
    memset(content, 'x', SIZE);
    content[SIZE] = '\0';
    char *conv[4] = {store_conv_room("c0"), store_conv_room("c1"), store_conv_room("c2"),
                     store_conv_room("c3")};
    int64_t before = file_size(f, "");
    for (int i = 0; i < N; i++) /* one commit each */
        append(f, conv[i % 4], "Alice", NULL, content, i, id);
    /* the thread copies the WAL in the background: wait for it, with a
     * bound, committing one more message per round (a WAL can only
     * restart at a write) */
    int64_t want = before + (int64_t)N * SIZE;
    uint64_t deadline = uv_hrtime() + 10 * (uint64_t)1000000000;
    while (file_size(f, "") < want && uv_hrtime() < deadline) {
        append(f, conv[0], "Alice", NULL, "tick", N, id);
        uv_sleep(5);
    }
    assert_true(file_size(f, "") >= want);
    store_history_t h;
    for (int c = 0; c < 4; c++) {
        assert_int_equal(since(f, conv[c], -1, STORE_HISTORY_LIMIT_MAX, &h), 0);
        assert_true(h.n >= N / 4);
        assert_int_equal(h.msgs[0].content_len, SIZE);
        store_history_free(&h);
        mem_free(conv[c]);
    }
    mem_free(content);
}

/* The SQL of statement `which`, wherever it is kept. */
static const char *stmt_sql(int which)
{
    return which < STORE_SQLITE__ROOMS_FIRST
               ? store_sqlite__sql[which]
               : store_sqlite__sql_rooms[which - STORE_SQLITE__ROOMS_FIRST];
}

static char *plan(fixture_t *f, int which)
{
    store_sqlite *st = store_sqlite__self(f->s);
    char sql[4096];
    sqlite3_stmt *stmt;
    size_t len = 0;
    char *out = mem_calloc(1, 1);

    snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", stmt_sql(which));
    assert_int_equal(sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL), SQLITE_OK);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(stmt, 3);
        size_t n = strlen(d);
        out = mem_realloc(out, len + n + 2);
        memcpy(out + len, d, n);
        len += n;
        out[len++] = '\n';
        out[len] = '\0';
    }
    sqlite3_finalize(stmt);
    return out;
}

static void test_query_plans(void **state)
{
    fixture_t *f = *state;
    /* statistics that make the index look useless (one conversation):
     * the history plan must not change with them */
    char *conv = store_conv_room("r"), id[STORE_ID_MAX];
    for (int i = 0; i < 50; i++)
        append(f, conv, "a", NULL, "x", i, id);
    mem_free(conv);
    assert_int_equal(sqlite3_exec(store_sqlite__self(f->s)->db, "ANALYZE", NULL, NULL, NULL),
                     SQLITE_OK);

    char *p = plan(f, STORE_SQLITE__HISTORY);
    /* "SEARCH messages USING INDEX messages_conv_id (conv_id=? AND id<?)":
     * both terms bound the range (the spelling of the rowid varies) */
    assert_non_null(strstr(p, "SEARCH m USING INDEX messages_conv_id (conv_id=? AND "));
    assert_true(strstr(p, "id<?)") != NULL || strstr(p, "rowid<?)") != NULL);
    /* the message replied to: one lookup by rowid per row */
    assert_non_null(strstr(p, "SEARCH o USING INTEGER PRIMARY KEY (rowid=?)"));
    assert_null(strstr(p, "SCAN"));
    assert_null(strstr(p, "TEMP B-TREE")); /* the index gives the order */
    mem_free(p);

    /* since: the conversation's range of messages_conv_id after the
     * floor, which is a walk of the same index back from the newest; the
     * index gives the order */
    p = plan(f, STORE_SQLITE__SINCE);
    assert_non_null(strstr(p, "USING INDEX messages_conv_id (conv_id=? AND "));
    assert_non_null(strstr(p, "SUBQUERY"));
    assert_non_null(strstr(p, "USING INDEX messages_conv_id (conv_id=?)"));
    assert_null(strstr(p, "SCAN"));
    assert_null(strstr(p, "TEMP B-TREE"));
    mem_free(p);
    /* a user's private conversations: a range of the names for the first
     * key, the expression index for the second, a walk back from the
     * newest message of each */
    p = plan(f, STORE_SQLITE__PRIVATE_CONVS);
    assert_non_null(strstr(p, "sqlite_autoindex_conversations_1 (key>? AND key<?)"));
    assert_non_null(strstr(p, "USING INDEX conversations_peer (<expr>=?)"));
    assert_non_null(strstr(p, "USING INDEX messages_conv_id (conv_id=? AND "));
    assert_null(strstr(p, "SCAN"));
    mem_free(p);

    /* read state: a walk of the conversation's index back to the mark,
     * in the index's order; a user's direct conversations as its private
     * ones, through conversations_dpeer */
    p = plan(f, STORE_SQLITE__READ_SCAN);
    assert_non_null(strstr(p, "USING INDEX messages_conv_id (conv_id=? AND "));
    assert_null(strstr(p, "TEMP B-TREE"));
    mem_free(p);
    p = plan(f, STORE_SQLITE__DIRECT_CONVS);
    assert_non_null(strstr(p, "sqlite_autoindex_conversations_1 (key>? AND key<?)"));
    assert_non_null(strstr(p, "USING INDEX conversations_dpeer (<expr>=?)"));
    mem_free(p);

    /* every other lookup is by key too; only the room list reads it all */
    for (int i = 0; i < STORE_SQLITE__NSTMT; i++) {
        if (i == STORE_SQLITE__ROOM_LIST)
            continue;
        p = plan(f, i);
        if (strstr(p, "SCAN") != NULL)
            fail_msg("statement %d scans: %s\n%s", i, stmt_sql(i), p);
        mem_free(p);
    }
}


/* ---- roles in a user's room list ----------------------------------------- */

static void on_rooms(void *ud, int rc, store_room_list_t *l)
{
    result_t *r = ud;
    r->list = *l;
    memset(l, 0, sizeof(*l));
    got(r, rc);
}

/* store_member_rooms says the user's role in each room, read in the same
 * statement as the list (the contract suite checks the roles too). */
static void test_member_rooms_roles(void **state)
{
    fixture_t *f = *state;
    const char *adds[][2] = {{"a", "u1"}, {"a", "u2"}, {"b", "u2"}, {"c", "u1"}, {"c", "u2"}};
    for (size_t i = 0; i < sizeof(adds) / sizeof(adds[0]); i++) {
        result_t r = {0};
        store_member_add(f->s, adds[i][0], adds[i][1], 1 + (int64_t)i, on_count, &r);
        wait_for(f, &r);
        assert_int_equal(r.rc, 0);
    }
    result_t r = {0};
    store_member_role_set(f->s, "c", "u2", STORE_ROLE_MODERATOR, on_count, &r);
    wait_for(f, &r);
    assert_int_equal(r.rc, 0);
    memset(&r, 0, sizeof(r));
    store_member_rooms(f->s, "u2", on_rooms, &r);
    wait_for(f, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.list.n, 3);
    assert_string_equal(r.list.rooms[0].key, "a");
    assert_int_equal(r.list.rooms[0].role, STORE_ROLE_MEMBER);
    assert_string_equal(r.list.rooms[1].key, "b");
    assert_int_equal(r.list.rooms[1].role, STORE_ROLE_OWNER);
    assert_string_equal(r.list.rooms[2].key, "c");
    assert_int_equal(r.list.rooms[2].role, STORE_ROLE_MODERATOR);
    store_room_list_free(&r.list);
}

/* ---- deleted text is gone from the files -------------------------------- */

typedef struct {
    int calls, rc, changed;
} msg_result_t;

static void on_msg_done(void *ud, int rc, const store_msg_t *m, int changed)
{
    msg_result_t *r = ud;
    r->calls++;
    r->rc = rc;
    r->changed = changed;
}

/* Whether the file at dir/name holds needle (a missing file holds none). */
static int file_has(fixture_t *f, const char *name, const char *needle)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return 0;
    size_t cap = 1 << 16, len = 0, n, nl = strlen(needle);
    char *buf = mem_alloc(cap);
    while ((n = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += n;
        if (len == cap)
            buf = mem_realloc(buf, cap *= 2);
    }
    fclose(fp);
    int found = memmem(buf, len, needle, nl) != NULL;
    mem_free(buf);
    return found;
}

/* A delete overwrites the text in parley.db (secure_delete) and leaves
 * none in parley.db-wal (the TRUNCATE checkpoint after its commit): a
 * short text in its page, a long one in overflow pages. */
static void test_delete_scrubs_files(void **state)
{
    fixture_t *f = *state;
    char *conv = store_conv_room("r"), short_id[STORE_ID_MAX], long_id[STORE_ID_MAX];
    char keep_id[STORE_ID_MAX];
    const char *secret = "sekrit-7c1e-short";
    char *big = mem_alloc(20001);
    for (int i = 0; i < 20000; i++)
        big[i] = "long-sekrit-9f2a-"[i % 17];
    big[20000] = '\0';
    append(f, conv, "a", NULL, secret, 1, short_id);
    append(f, conv, "a", NULL, big, 2, long_id);
    append(f, conv, "a", NULL, "kept-text-41d0", 3, keep_id);
    /* the texts are on disk: in the WAL, then in the database file too */
    assert_true(file_has(f, "parley.db-wal", secret));
    sqlite3 *db = raw_open(f);
    /* (a fresh connection sees WAL mode once it has read the file) */
    assert_int_equal(sqlite3_exec(db, "PRAGMA schema_version", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    assert_true(file_has(f, "parley.db", secret));
    assert_true(file_has(f, "parley.db", "long-sekrit-9f2a-long-sekrit-9f2a-"));
    assert_true(file_has(f, "parley.db-wal", secret));

    const char *ids[] = {short_id, long_id};
    for (int i = 0; i < 2; i++) {
        msg_result_t r = {0};
        store_msg_delete(f->s, conv, ids[i], on_msg_done, &r);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        assert_int_equal(r.calls, 1);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.changed, 1);
    }
    assert_false(file_has(f, "parley.db", secret));
    assert_false(file_has(f, "parley.db-wal", secret));
    assert_false(file_has(f, "parley.db", "long-sekrit-9f2a"));
    assert_false(file_has(f, "parley.db-wal", "long-sekrit-9f2a"));
    assert_true(file_has(f, "parley.db", "kept-text-41d0")); /* the scan does see text */
    mem_free(big);
    mem_free(conv);
}

int main(void)
{
    log_set_level(LOG_ERROR); /* keep the migration notices and the expected
                                 failure of test_failure_stays_in_its_op out */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_before_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_purge_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_private_convs_same_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_turn_is_one_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_starts_op, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_rolls_back_the_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_op_from_timer_does_not_wait_for_io, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_stays_in_its_op, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_plain_append_stays_in_its_op, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_inline_without_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_migrations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_plans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_while_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_scrubs_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_rooms_roles, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
