/* test_store_sqlite.c - the embedded store (src/store/store_sqlite.c) through
 * the store.h interface, plus what only SQLite can show: the migration
 * table, WAL mode and the query plans. Each test gets a fresh directory.
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
#include <unistd.h>

#include <cmocka.h>

#include "store/store_sqlite.c"

#include "chat/chat_validate.h"

typedef struct {
    char root[64]; /* mkdtemp result, removed at teardown */
    char dir[128]; /* root/data/db: open must create it */
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
    if (store_sqlite_open(f->dir, &f->s) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    store_close(f->s);
    nftw(f->root, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    mem_free(f);
    return 0;
}

static void reopen(fixture_t *f)
{
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(store_sqlite_open(f->dir, &f->s), 0);
}

/* The key of a room name, through the real validator. Caller frees. */
static char *room_key(const char *name, char **display)
{
    chat_name_t n;
    assert_int_equal(chat_room_parse(name, strlen(name), &n), 0);
    if (display)
        *display = n.display;
    else
        mem_free(n.display);
    return n.key;
}

static void append(store_t *s, const char *conv, const char *from, const char *to,
                   const char *content, int64_t ts, char id[STORE_ID_MAX])
{
    store_msg_in_t m = {conv, from, to, content, strlen(content), ts};
    assert_int_equal(store_msg_append(s, &m, id), 0);
    assert_true(id[0] != '\0');
}

/* ---- rooms -------------------------------------------------------------- */

static void test_rooms(void **state)
{
    fixture_t *f = *state;
    char *display, *name = NULL;
    int created = -1;

    char *k1 = room_key("  General ", &display);
    assert_int_equal(store_room_create(f->s, k1, display, &name, &created), 0);
    assert_int_equal(created, 1);
    assert_string_equal(name, "General");
    mem_free(name);
    mem_free(display);

    /* the same room by another spelling: not created, first name kept */
    char *k2 = room_key("ＧＥＮＥＲＡＬ", &display);
    assert_string_equal(k1, k2);
    assert_int_equal(store_room_create(f->s, k2, display, &name, &created), 0);
    assert_int_equal(created, 0);
    assert_string_equal(name, "General");
    mem_free(name);
    mem_free(display);
    mem_free(k2);

    char *k3 = room_key("Random", &display);
    assert_int_equal(store_room_create(f->s, k3, display, NULL, NULL), 0);
    mem_free(display);

    /* exists */
    assert_int_equal(store_room_get(f->s, k1, NULL), 0);
    assert_int_equal(store_room_get(f->s, "random", &name), 0);
    assert_string_equal(name, "Random");
    mem_free(name);
    name = (char *)"untouched";
    assert_int_equal(store_room_get(f->s, "nope", &name), STORE_ENOTFOUND);
    assert_null(name);

    /* list, in creation order */
    store_room_t *rooms;
    size_t n;
    assert_int_equal(store_room_list(f->s, &rooms, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rooms[0].key, "general");
    assert_string_equal(rooms[0].name, "General");
    assert_string_equal(rooms[1].key, "random");
    assert_string_equal(rooms[1].name, "Random");
    store_rooms_free(rooms, n);
    mem_free(k1);
    mem_free(k3);
}

static void test_room_list_empty(void **state)
{
    fixture_t *f = *state;
    store_room_t *rooms = (store_room_t *)1;
    size_t n = 99;
    assert_int_equal(store_room_list(f->s, &rooms, &n), 0);
    assert_null(rooms);
    assert_int_equal(n, 0);
    store_rooms_free(rooms, n);
}

/* ---- messages ----------------------------------------------------------- */

static void test_append_and_history(void **state)
{
    fixture_t *f = *state;
    char *a = store_conv_room("general"), *b = store_conv_room("random");
    char ids[5][STORE_ID_MAX];

    append(f->s, a, "Alice", NULL, "hello", 1000, ids[0]);
    append(f->s, b, "Bob", NULL, "elsewhere", 1001, ids[1]);
    append(f->s, a, "Bob", NULL, "h\xc3\xa9llo\tthere\nsecond line", 1002, ids[2]);
    append(f->s, a, "Alice", NULL, "\xf0\x9f\x98\x80", 1003, ids[3]);
    append(f->s, b, "Bob", NULL, "again", 1004, ids[4]);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            assert_string_not_equal(ids[i], ids[j]);

    store_history_t h;
    assert_int_equal(store_history(f->s, a, NULL, 50, &h), 0);
    assert_int_equal(h.n, 3);
    assert_false(h.has_more);
    assert_string_equal(h.msgs[0].id, ids[0]);
    assert_string_equal(h.msgs[0].from, "Alice");
    assert_null(h.msgs[0].to);
    assert_string_equal(h.msgs[0].content, "hello");
    assert_int_equal(h.msgs[0].content_len, 5);
    assert_int_equal(h.msgs[0].ts_ms, 1000);
    assert_string_equal(h.msgs[1].id, ids[2]);
    assert_string_equal(h.msgs[1].content, "h\xc3\xa9llo\tthere\nsecond line");
    assert_string_equal(h.msgs[2].id, ids[3]);
    assert_string_equal(h.msgs[2].content, "\xf0\x9f\x98\x80");
    assert_int_equal(h.msgs[2].ts_ms, 1003);
    store_history_free(&h);
    assert_null(h.msgs);
    assert_int_equal(h.n, 0);

    assert_int_equal(store_history(f->s, b, NULL, 1, &h), 0);
    assert_int_equal(h.n, 1);
    assert_true(h.has_more);
    assert_string_equal(h.msgs[0].id, ids[4]);
    store_history_free(&h);

    /* a conversation nobody wrote to */
    char *c = store_conv_room("empty");
    assert_int_equal(store_history(f->s, c, NULL, 50, &h), 0);
    assert_int_equal(h.n, 0);
    assert_false(h.has_more);
    store_history_free(&h);
    mem_free(c);
    mem_free(a);
    mem_free(b);
}

static void test_paging_250(void **state)
{
    fixture_t *f = *state;
    char *conv = store_conv_room("big"), *other = store_conv_room("other");
    char ids[250][STORE_ID_MAX], scratch[STORE_ID_MAX], text[32];

    for (int i = 0; i < 250; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        append(f->s, conv, "Alice", NULL, text, 10000 + i, ids[i]);
        if (i % 7 == 0) /* interleave another conversation */
            append(f->s, other, "Bob", NULL, "noise", 10000 + i, scratch);
    }

    /* newest 100, then the 100 before, then the last 50 */
    store_history_t h;
    assert_int_equal(store_history(f->s, conv, NULL, 100, &h), 0);
    assert_int_equal(h.n, 100);
    assert_true(h.has_more);
    for (int i = 0; i < 100; i++) {
        snprintf(text, sizeof(text), "m%d", 150 + i);
        assert_string_equal(h.msgs[i].content, text);
        assert_string_equal(h.msgs[i].id, ids[150 + i]);
    }
    char before[STORE_ID_MAX];
    strcpy(before, h.msgs[0].id);
    store_history_free(&h);

    assert_int_equal(store_history(f->s, conv, before, 100, &h), 0);
    assert_int_equal(h.n, 100);
    assert_true(h.has_more);
    assert_string_equal(h.msgs[0].id, ids[50]);
    assert_string_equal(h.msgs[99].id, ids[149]);
    strcpy(before, h.msgs[0].id);
    store_history_free(&h);

    assert_int_equal(store_history(f->s, conv, before, 100, &h), 0);
    assert_int_equal(h.n, 50);
    assert_false(h.has_more);
    assert_string_equal(h.msgs[0].id, ids[0]);
    assert_string_equal(h.msgs[49].id, ids[49]);
    store_history_free(&h);

    /* exactly all of them: no more */
    assert_int_equal(store_history(f->s, conv, NULL, 250, &h), 0);
    assert_int_equal(h.n, 250);
    assert_false(h.has_more);
    store_history_free(&h);
    /* one short of all: more */
    assert_int_equal(store_history(f->s, conv, NULL, 249, &h), 0);
    assert_int_equal(h.n, 249);
    assert_true(h.has_more);
    assert_string_equal(h.msgs[0].id, ids[1]);
    store_history_free(&h);
    /* before the oldest: empty page */
    assert_int_equal(store_history(f->s, conv, ids[0], 10, &h), 0);
    assert_int_equal(h.n, 0);
    assert_false(h.has_more);
    store_history_free(&h);
    /* before the second: just the first */
    assert_int_equal(store_history(f->s, conv, ids[1], 10, &h), 0);
    assert_int_equal(h.n, 1);
    assert_false(h.has_more);
    assert_string_equal(h.msgs[0].content, "m0");
    store_history_free(&h);
    /* the default page of the contract */
    assert_int_equal(store_history(f->s, conv, NULL, 50, &h), 0);
    assert_int_equal(h.n, 50);
    assert_true(h.has_more);
    assert_string_equal(h.msgs[49].content, "m249");
    store_history_free(&h);

    mem_free(conv);
    mem_free(other);
}

static void test_bad_before_ids(void **state)
{
    fixture_t *f = *state;
    char *a = store_conv_room("a"), *b = store_conv_room("b"), *none = store_conv_room("none");
    char ida[STORE_ID_MAX], idb[STORE_ID_MAX], big[STORE_ID_MAX + 1];
    store_history_t h;

    append(f->s, a, "x", NULL, "in a", 1, ida);
    append(f->s, b, "x", NULL, "in b", 2, idb);

    /* an id of another conversation */
    assert_int_equal(store_history(f->s, a, idb, 10, &h), STORE_EBADID);
    assert_int_equal(h.n, 0);
    assert_null(h.msgs);
    assert_int_equal(store_history(f->s, b, ida, 10, &h), STORE_EBADID);
    /* any id, for a conversation that does not exist */
    assert_int_equal(store_history(f->s, none, ida, 10, &h), STORE_EBADID);
    /* well-formed but unknown */
    snprintf(big, sizeof(big), "%s0", idb);
    assert_int_equal(store_history(f->s, a, big, 10, &h), STORE_EBADID);
    assert_int_equal(store_history(f->s, a, "9223372036854775807", 10, &h), STORE_EBADID);
    /* malformed */
    const char *bad[] = {"", "0", "01", "-1", "+1", " 1", "1 ", "1.0", "1e3", "abc", "0x1",
                         "9223372036854775808", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(store_history(f->s, a, bad[i], 10, &h), STORE_EBADID);
    /* its own id is fine */
    assert_int_equal(store_history(f->s, a, ida, 10, &h), 0);
    store_history_free(&h);
    /* limits */
    assert_int_equal(store_history(f->s, a, NULL, 0, &h), STORE_EINVAL);
    assert_int_equal(store_history(f->s, a, NULL, STORE_HISTORY_LIMIT_MAX + 1, &h), STORE_EINVAL);
    mem_free(a);
    mem_free(b);
    mem_free(none);
}

static void test_private_conversations(void **state)
{
    fixture_t *f = *state;
    chat_name_t alice, bob;
    assert_int_equal(chat_username_parse("ALICE", 5, &alice), 0);
    assert_int_equal(chat_username_parse("bob", 3, &bob), 0);

    char *ab = store_conv_private(alice.key, bob.key);
    char *ba = store_conv_private(bob.key, alice.key);
    assert_string_equal(ab, ba);
    assert_string_equal(ab, "p:alice\x1f" "bob");
    char *room = store_conv_room("alice\x1f" "bob");
    assert_string_not_equal(ab, room);
    char *self = store_conv_private("alice", "alice");
    assert_string_equal(self, "p:alice\x1f" "alice");

    char id[STORE_ID_MAX];
    append(f->s, ab, alice.display, bob.display, "hi bob", 5, id);
    append(f->s, ba, bob.display, alice.display, "hi alice", 6, id);

    store_history_t h;
    assert_int_equal(store_history(f->s, ba, NULL, 50, &h), 0);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.msgs[0].from, "ALICE");
    assert_string_equal(h.msgs[0].to, "bob");
    assert_string_equal(h.msgs[1].from, "bob");
    assert_string_equal(h.msgs[1].to, "ALICE");
    store_history_free(&h);
    /* the room whose name looks alike sees nothing */
    assert_int_equal(store_history(f->s, room, NULL, 50, &h), 0);
    assert_int_equal(h.n, 0);
    store_history_free(&h);

    mem_free(ab);
    mem_free(ba);
    mem_free(room);
    mem_free(self);
    chat_name_free(&alice);
    chat_name_free(&bob);
}

/* ---- dedupe ------------------------------------------------------------- */

static void test_dedupe(void **state)
{
    fixture_t *f = *state;
    const int64_t now = 1700000000000;
    const int64_t exp = now + STORE_DEDUPE_TTL_MS;
    store_dedupe_t d;

    assert_int_equal(store_dedupe_get(f->s, "alice", "c1", 2, now, &d), STORE_ENOTFOUND);
    assert_null(d.conv);
    assert_int_equal(store_dedupe_put(f->s, "alice", "c1", 2, "17", now, "r:general", exp), 0);
    /* clientIds are bytes: with a NUL inside, a different id */
    assert_int_equal(store_dedupe_put(f->s, "alice", "c1\0x", 4, "18", now + 1, "p:a\x1f" "b",
                                      exp + 1), 0);

    assert_int_equal(store_dedupe_get(f->s, "alice", "c1", 2, now, &d), 0);
    assert_string_equal(d.id, "17");
    assert_int_equal(d.ts_ms, now);
    assert_string_equal(d.conv, "r:general");
    store_dedupe_free(&d);
    assert_int_equal(store_dedupe_get(f->s, "alice", "c1\0x", 4, now, &d), 0);
    assert_string_equal(d.id, "18");
    store_dedupe_free(&d);

    /* per user, per exact clientId */
    assert_int_equal(store_dedupe_get(f->s, "bob", "c1", 2, now, &d), STORE_ENOTFOUND);
    assert_int_equal(store_dedupe_get(f->s, "alice", "c2", 2, now, &d), STORE_ENOTFOUND);
    assert_int_equal(store_dedupe_get(f->s, "alice", "c1\0", 3, now, &d), STORE_ENOTFOUND);

    /* still there just before 10 minutes, gone at expiry even unpurged */
    assert_int_equal(store_dedupe_get(f->s, "alice", "c1", 2, exp - 1, &d), 0);
    store_dedupe_free(&d);
    assert_int_equal(store_dedupe_get(f->s, "alice", "c1", 2, exp, &d), STORE_ENOTFOUND);

    /* purging removes what expired, and only that */
    assert_int_equal(store_dedupe_purge(f->s, now), 0);
    assert_int_equal(store_dedupe_purge(f->s, exp), 1);
    assert_int_equal(store_dedupe_get(f->s, "alice", "c1\0x", 4, exp, &d), 0);
    store_dedupe_free(&d);
    assert_int_equal(store_dedupe_purge(f->s, exp + 1), 1);
    assert_int_equal(store_dedupe_get(f->s, "alice", "c1\0x", 4, now, &d), STORE_ENOTFOUND);

    /* a new put replaces an old entry */
    assert_int_equal(store_dedupe_put(f->s, "alice", "c1", 2, "20", now, "r:x", exp), 0);
    assert_int_equal(store_dedupe_put(f->s, "alice", "c1", 2, "21", now, "r:y", exp), 0);
    assert_int_equal(store_dedupe_get(f->s, "alice", "c1", 2, now, &d), 0);
    assert_string_equal(d.id, "21");
    assert_string_equal(d.conv, "r:y");
    store_dedupe_free(&d);
}

/* ---- batches ------------------------------------------------------------ */

static void test_batches(void **state)
{
    fixture_t *f = *state;
    char *conv = store_conv_room("batch");
    char id[STORE_ID_MAX];
    store_history_t h;

    assert_int_equal(store_commit(f->s), STORE_EINVAL);
    assert_int_equal(store_rollback(f->s), STORE_EINVAL);

    /* rolled back: nothing stays, rooms and dedupe included */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_begin(f->s), STORE_EINVAL);
    append(f->s, conv, "a", NULL, "one", 1, id);
    assert_int_equal(store_room_create(f->s, "batch", "Batch", NULL, NULL), 0);
    assert_int_equal(store_dedupe_put(f->s, "a", "c", 1, id, 1, conv, 100), 0);
    assert_int_equal(store_history(f->s, conv, NULL, 10, &h), 0); /* reads see the batch */
    assert_int_equal(h.n, 1);
    store_history_free(&h);
    assert_int_equal(store_rollback(f->s), 0);
    assert_int_equal(store_history(f->s, conv, NULL, 10, &h), 0);
    assert_int_equal(h.n, 0);
    store_history_free(&h);
    assert_int_equal(store_room_get(f->s, "batch", NULL), STORE_ENOTFOUND);
    store_dedupe_t d;
    assert_int_equal(store_dedupe_get(f->s, "a", "c", 1, 0, &d), STORE_ENOTFOUND);

    /* committed: all of it stays, across a reopen */
    assert_int_equal(store_begin(f->s), 0);
    for (int i = 0; i < 10; i++)
        append(f->s, conv, "a", NULL, "many", i, id);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_commit(f->s), STORE_EINVAL);
    reopen(f);
    assert_int_equal(store_history(f->s, conv, NULL, 100, &h), 0);
    assert_int_equal(h.n, 10);
    store_history_free(&h);

    /* closing with a batch open rolls it back */
    assert_int_equal(store_begin(f->s), 0);
    append(f->s, conv, "a", NULL, "lost", 99, id);
    reopen(f);
    assert_int_equal(store_history(f->s, conv, NULL, 100, &h), 0);
    assert_int_equal(h.n, 10);
    store_history_free(&h);
    mem_free(conv);
}

/* ---- persistence and schema --------------------------------------------- */

static void test_reopen_keeps_everything(void **state)
{
    fixture_t *f = *state;
    char *conv = store_conv_room("general"), *pm = store_conv_private("alice", "bob");
    char id1[STORE_ID_MAX], id2[STORE_ID_MAX], id3[STORE_ID_MAX];

    assert_int_equal(store_room_create(f->s, "general", "General", NULL, NULL), 0);
    append(f->s, conv, "Alice", NULL, "persisted", 42, id1);
    append(f->s, pm, "Alice", "Bob", "secret", 43, id2);
    assert_int_equal(store_dedupe_put(f->s, "alice", "cid", 3, id1, 42, conv, 1000), 0);

    reopen(f);

    char *name = NULL;
    assert_int_equal(store_room_get(f->s, "general", &name), 0);
    assert_string_equal(name, "General");
    mem_free(name);
    store_history_t h;
    assert_int_equal(store_history(f->s, conv, NULL, 50, &h), 0);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.msgs[0].id, id1);
    assert_string_equal(h.msgs[0].content, "persisted");
    assert_int_equal(h.msgs[0].ts_ms, 42);
    store_history_free(&h);
    assert_int_equal(store_history(f->s, pm, NULL, 50, &h), 0);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.msgs[0].to, "Bob");
    store_history_free(&h);
    store_dedupe_t d;
    assert_int_equal(store_dedupe_get(f->s, "alice", "cid", 3, 999, &d), 0);
    assert_string_equal(d.id, id1);
    store_dedupe_free(&d);

    /* ids keep growing after a restart: the new message pages after the old */
    append(f->s, conv, "Bob", NULL, "after restart", 44, id3);
    assert_int_equal(store_history(f->s, conv, id3, 50, &h), 0);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.msgs[0].id, id1);
    store_history_free(&h);
    mem_free(conv);
    mem_free(pm);
}

/* Opens the fixture's file directly with SQLite. */
static sqlite3 *raw_open(fixture_t *f)
{
    char path[256];
    sqlite3 *db = NULL;
    snprintf(path, sizeof(path), "%s/parley.db", f->dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    return db;
}

static void test_schema_migrations(void **state)
{
    fixture_t *f = *state;
    reopen(f); /* a second open must not migrate again */

    sqlite3 *db = raw_open(f);
    sqlite3_stmt *stmt;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_migrations", -1, &stmt,
                                        NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(stmt, 0), 1);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);

    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);

    /* a file from a newer version is refused, not touched */
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_migrations VALUES (2, 0)", NULL, NULL,
                                  NULL), SQLITE_OK);
    store_t *s = (store_t *)1;
    assert_int_equal(store_sqlite_open(f->dir, &s), STORE_ESCHEMA);
    assert_null(s);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM schema_migrations WHERE version = 2", NULL,
                                  NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    assert_int_equal(store_sqlite_open(f->dir, &f->s), 0);
}

static void test_open_errors(void **state)
{
    fixture_t *f = *state;
    store_t *s = (store_t *)1;
    char path[256];
    assert_int_equal(store_sqlite_open("", &s), STORE_EINVAL);
    assert_null(s);
    /* a directory where a file is in the way */
    snprintf(path, sizeof(path), "%s/parley.db/sub", f->dir);
    assert_int_equal(store_sqlite_open(path, &s), STORE_EIO);
    assert_null(s);
}

/* The plan of statement `which`, one detail per line. Caller frees. */
static char *plan(fixture_t *f, int which)
{
    store__sqlite_t *st = store__self(f->s);
    char sql[1024];
    sqlite3_stmt *stmt;
    size_t len = 0;
    char *out = mem_calloc(1, 1);

    snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", store__sql[which]);
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
        append(f->s, conv, "a", NULL, "x", i, id);
    mem_free(conv);
    assert_int_equal(sqlite3_exec(store__self(f->s)->db, "ANALYZE", NULL, NULL, NULL), SQLITE_OK);

    char *p = plan(f, STORE__HISTORY);
    /* "SEARCH messages USING INDEX messages_conv_id (conv_id=? AND id<?)":
     * both terms bound the range (the spelling of the rowid varies) */
    assert_non_null(strstr(p, "SEARCH messages USING INDEX messages_conv_id (conv_id=? AND "));
    assert_true(strstr(p, "id<?)") != NULL || strstr(p, "rowid<?)") != NULL);
    assert_null(strstr(p, "SCAN"));
    assert_null(strstr(p, "TEMP B-TREE")); /* the index gives the order */
    mem_free(p);

    /* every other lookup is by key too; only the room list reads it all */
    for (int i = 0; i < STORE__NSTMT; i++) {
        if (i == STORE__ROOM_LIST)
            continue;
        p = plan(f, i);
        if (strstr(p, "SCAN") != NULL)
            fail_msg("statement %d scans: %s\n%s", i, store__sql[i], p);
        mem_free(p);
    }
}

int main(void)
{
    log_set_level(LOG_WARN); /* keep the migration notices out of the output */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rooms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_room_list_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_and_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_250, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_before_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_private_conversations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_migrations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_plans, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
