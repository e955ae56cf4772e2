/* store_sqlite.c - the embedded store: store.h on one SQLite file,
 * <dir>/parley.db.
 *
 * Durability. The database runs in WAL mode with synchronous=NORMAL: a
 * commit appends to the WAL and returns without fsync. Killing the process
 * (kill -9, a crash) loses nothing that was committed, because the bytes
 * are already in the kernel; only an OS crash or power loss can drop the
 * last commits (never corrupting the file). That is the contract's promise
 * for a server restart at a fraction of the cost of synchronous=FULL.
 *
 * Schema. Versioned in schema_migrations (one row per applied version);
 * open applies the missing versions in one transaction, so a half-migrated
 * file cannot exist. Messages of all conversations share one table, keyed
 * by an AUTOINCREMENT rowid (never reused, so ids only grow) and read by
 * the index (conv_id, id): a history page is one index range scan.
 *
 * Every statement is prepared once at open and reset after each use.
 * Errors from SQLite are logged here and returned as STORE_EIO. */
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "util/log.h"
#include "util/mem.h"

#define STORE__BUSY_TIMEOUT_MS 5000

/* ---- schema ------------------------------------------------------------- */

static const char *const store__migrations[] = {
    /* version 1: the initial schema */
    "CREATE TABLE rooms ("
    "  id   INTEGER PRIMARY KEY,"
    "  key  TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL);"
    "CREATE TABLE conversations ("
    "  id  INTEGER PRIMARY KEY,"
    "  key TEXT NOT NULL UNIQUE);"
    "CREATE TABLE messages ("
    "  id        INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  conv_id   INTEGER NOT NULL REFERENCES conversations(id),"
    "  sender    TEXT NOT NULL,"
    "  recipient TEXT,"
    "  content   TEXT NOT NULL,"
    "  ts_ms     INTEGER NOT NULL);"
    "CREATE INDEX messages_conv_id ON messages(conv_id, id);"
    "CREATE TABLE dedupe ("
    "  user_key   TEXT NOT NULL,"
    "  client_id  BLOB NOT NULL,"
    "  msg_id     TEXT NOT NULL,"
    "  ts_ms      INTEGER NOT NULL,"
    "  conv       TEXT NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (user_key, client_id)) WITHOUT ROWID;"
    "CREATE INDEX dedupe_expires ON dedupe(expires_ms);",
};
#define STORE__SCHEMA_VERSION ((int)(sizeof(store__migrations) / sizeof(store__migrations[0])))

/* ---- statements --------------------------------------------------------- */

enum {
    STORE__BEGIN,
    STORE__COMMIT,
    STORE__ROLLBACK,
    STORE__ROOM_ADD,
    STORE__ROOM_GET,
    STORE__ROOM_LIST,
    STORE__CONV_GET,
    STORE__CONV_ADD,
    STORE__MSG_ADD,
    STORE__MSG_CONV,
    STORE__HISTORY,
    STORE__DEDUPE_PUT,
    STORE__DEDUPE_GET,
    STORE__DEDUPE_PURGE,
    STORE__NSTMT
};

static const char *const store__sql[STORE__NSTMT] = {
    /* IMMEDIATE takes the write lock now: a batch never fails half-way for
     * want of upgrading a read lock. */
    [STORE__BEGIN] = "BEGIN IMMEDIATE",
    [STORE__COMMIT] = "COMMIT",
    [STORE__ROLLBACK] = "ROLLBACK",
    [STORE__ROOM_ADD] = "INSERT INTO rooms(key, name) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING",
    [STORE__ROOM_GET] = "SELECT name FROM rooms WHERE key = ?1",
    [STORE__ROOM_LIST] = "SELECT key, name FROM rooms ORDER BY id",
    [STORE__CONV_GET] = "SELECT id FROM conversations WHERE key = ?1",
    [STORE__CONV_ADD] = "INSERT INTO conversations(key) VALUES (?1)",
    [STORE__MSG_ADD] = "INSERT INTO messages(conv_id, sender, recipient, content, ts_ms)"
                       " VALUES (?1, ?2, ?3, ?4, ?5)",
    [STORE__MSG_CONV] = "SELECT conv_id FROM messages WHERE id = ?1",
    /* ?2 is the `before` id, or INT64_MAX for the newest page; ?3 is the
     * limit plus one, the extra row telling whether more exist. INDEXED BY
     * pins the plan: with statistics saying most rows share one conv_id,
     * the planner would otherwise walk the rowids backwards and filter,
     * which reads the whole table for a quiet conversation. */
    [STORE__HISTORY] = "SELECT id, sender, recipient, content, ts_ms"
                       " FROM messages INDEXED BY messages_conv_id"
                       " WHERE conv_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    [STORE__DEDUPE_PUT] = "INSERT OR REPLACE INTO dedupe"
                          "(user_key, client_id, msg_id, ts_ms, conv, expires_ms)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [STORE__DEDUPE_GET] = "SELECT msg_id, ts_ms, conv FROM dedupe"
                          " WHERE user_key = ?1 AND client_id = ?2 AND expires_ms > ?3",
    [STORE__DEDUPE_PURGE] = "DELETE FROM dedupe WHERE expires_ms <= ?1",
};

typedef struct {
    struct store base; /* first: a store_t * is a store__sqlite_t * */
    sqlite3 *db;
    sqlite3_stmt *stmt[STORE__NSTMT];
    int in_batch;
} store__sqlite_t;

static store__sqlite_t *store__self(store_t *s)
{
    return (store__sqlite_t *)s;
}

/* Logs the database's last error for `what`; returns STORE_EIO. */
static int store__fail(sqlite3 *db, const char *what)
{
    log_error("store error", "op=%s code=%d err=\"%s\"", what, sqlite3_extended_errcode(db),
              sqlite3_errmsg(db));
    return STORE_EIO;
}

/* The statement `which`, reset and unbound, ready for new bindings. */
static sqlite3_stmt *store__stmt(store__sqlite_t *st, int which)
{
    sqlite3_stmt *stmt = st->stmt[which];
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return stmt;
}

/* Releases the statement's locks and result so that it does not hold a
 * read transaction open between calls. */
static void store__done(sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
}

static int store__bind_text(sqlite3_stmt *stmt, int i, const char *s, size_t n)
{
    if (n > INT32_MAX)
        return SQLITE_TOOBIG;
    return sqlite3_bind_text(stmt, i, s, (int)n, SQLITE_TRANSIENT);
}

/* A caller-owned copy of text column i, or NULL for SQL NULL. Returns 0, or
 * -1 when SQLite failed to produce the text (its OOM). */
static int store__column_text(sqlite3_stmt *stmt, int i, char **out, size_t *len)
{
    *out = NULL;
    if (sqlite3_column_type(stmt, i) == SQLITE_NULL)
        return 0;
    const unsigned char *t = sqlite3_column_text(stmt, i);
    if (t == NULL)
        return -1;
    size_t n = (size_t)sqlite3_column_bytes(stmt, i);
    *out = mem_strndup((const char *)t, n);
    if (len)
        *len = n;
    return 0;
}

/* Runs a statement that returns no row. Returns 0 or STORE_EIO. */
static int store__exec(store__sqlite_t *st, sqlite3_stmt *stmt, const char *what)
{
    int rc = sqlite3_step(stmt);
    store__done(stmt);
    return rc == SQLITE_DONE ? 0 : store__fail(st->db, what);
}

/* A message id as this backend writes it: the decimal rowid. */
static void store__format_id(int64_t rowid, char out[STORE_ID_MAX])
{
    snprintf(out, STORE_ID_MAX, "%" PRId64, rowid);
}

/* Parses an id in exactly the form store__format_id writes (no sign, no
 * leading zero, no space, 1..INT64_MAX). Returns 0 or -1. */
static int store__parse_id(const char *s, int64_t *out)
{
    int64_t v = 0;
    size_t i = 0;
    if (s[0] < '1' || s[0] > '9')
        return -1;
    for (; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 19)
            return -1;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* ---- open, migrate, close ------------------------------------------------ */

/* mkdir -p with mode 0700 for the directories it creates. */
static int store__mkdirs(const char *dir)
{
    char *p = mem_strdup(dir);
    int rc = 0;
    for (char *c = p + 1; ; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        char saved = *c;
        *c = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            log_error("store cannot create directory", "dir=\"%s\" err=\"%s\"", p,
                      strerror(errno));
            rc = STORE_EIO;
            break;
        }
        *c = saved;
        if (saved == '\0')
            break;
    }
    mem_free(p);
    return rc;
}

/* Runs SQL text without results (pragmas, migrations). */
static int store__exec_sql(sqlite3 *db, const char *sql, const char *what)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        log_error("store error", "op=%s err=\"%s\"", what, err ? err : "?");
        sqlite3_free(err);
        return STORE_EIO;
    }
    return 0;
}

/* Reads one integer from `sql` (its first column of its first row) into
 * *out; no row gives 0. Returns 0 or STORE_EIO. */
static int store__query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *stmt = NULL;
    int rc = STORE_EIO;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        goto cleanup;
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        *out = sqlite3_column_int64(stmt, 0);
    else if (step == SQLITE_DONE)
        *out = 0;
    else
        goto cleanup;
    rc = 0;
cleanup:
    if (rc < 0)
        store__fail(db, sql);
    sqlite3_finalize(stmt);
    return rc;
}

/* Switches to WAL; *wal says whether it is the mode in force afterwards
 * (the pragma answers with the mode it ended up in: a file system without
 * shared memory keeps the old one). Returns 0 or STORE_EIO. */
static int store__use_wal(sqlite3 *db, int *wal)
{
    sqlite3_stmt *stmt = NULL;
    int rc = STORE_EIO;
    *wal = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW) {
        store__fail(db, "journal_mode");
        goto cleanup;
    }
    const unsigned char *mode = sqlite3_column_text(stmt, 0);
    *wal = mode != NULL && strcmp((const char *)mode, "wal") == 0;
    rc = 0;
cleanup:
    sqlite3_finalize(stmt);
    return rc;
}

static int64_t store__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Brings the schema to STORE__SCHEMA_VERSION in one transaction. */
static int store__migrate(sqlite3 *db)
{
    int64_t version = 0;
    int rc = store__exec_sql(db, "BEGIN IMMEDIATE", "migrate begin");
    if (rc < 0)
        return rc;
    rc = store__exec_sql(db,
                         "CREATE TABLE IF NOT EXISTS schema_migrations ("
                         "  version    INTEGER PRIMARY KEY,"
                         "  applied_ms INTEGER NOT NULL)",
                         "migrate table");
    if (rc < 0)
        goto cleanup;
    rc = store__query_int(db, "SELECT MAX(version) FROM schema_migrations", &version);
    if (rc < 0)
        goto cleanup;
    if (version > STORE__SCHEMA_VERSION) {
        log_error("store schema is newer than this server", "version=%" PRId64 " known=%d",
                  version, STORE__SCHEMA_VERSION);
        rc = STORE_ESCHEMA;
        goto cleanup;
    }
    for (int v = (int)version + 1; v <= STORE__SCHEMA_VERSION; v++) {
        char sql[128];
        rc = store__exec_sql(db, store__migrations[v - 1], "migrate");
        if (rc < 0)
            goto cleanup;
        snprintf(sql, sizeof(sql),
                 "INSERT INTO schema_migrations(version, applied_ms) VALUES (%d, %" PRId64 ")",
                 v, store__wall_ms());
        rc = store__exec_sql(db, sql, "migrate record");
        if (rc < 0)
            goto cleanup;
        log_info("store schema migrated", "version=%d", v);
    }
    rc = store__exec_sql(db, "COMMIT", "migrate commit");
cleanup:
    if (rc < 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static void store__close(store_t *s)
{
    store__sqlite_t *st = store__self(s);
    if (st->in_batch)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < STORE__NSTMT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (sqlite3_close(st->db) != SQLITE_OK)
        store__fail(st->db, "close");
    mem_free(st);
}

static const store_ops_t store__sqlite_ops;

int store_sqlite_open(const char *dir, store_t **out)
{
    store__sqlite_t *st = NULL;
    char *path = NULL;
    int wal = 0;
    int rc;

    *out = NULL;
    if (dir[0] == '\0')
        return STORE_EINVAL;
    rc = store__mkdirs(dir);
    if (rc < 0)
        return rc;
    size_t n = strlen(dir);
    path = mem_alloc(n + sizeof("/parley.db"));
    memcpy(path, dir, n);
    memcpy(path + n, "/parley.db", sizeof("/parley.db"));

    st = mem_calloc(1, sizeof(*st));
    st->base.ops = &store__sqlite_ops;
    /* NOMUTEX: one store per thread (the loop's), so SQLite's own locks
     * would only cost time. */
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        if (st->db)
            store__fail(st->db, "open");
        else
            log_error("store cannot open", "path=\"%s\" err=out-of-memory", path);
        rc = STORE_EIO;
        goto cleanup;
    }
    sqlite3_extended_result_codes(st->db, 1);
    if (sqlite3_busy_timeout(st->db, STORE__BUSY_TIMEOUT_MS) != SQLITE_OK) {
        rc = store__fail(st->db, "busy_timeout");
        goto cleanup;
    }
    rc = store__use_wal(st->db, &wal);
    if (rc < 0)
        goto cleanup;
    if (!wal) {
        log_error("store cannot use WAL mode", "path=\"%s\"", path);
        rc = STORE_EIO;
        goto cleanup;
    }
    rc = store__exec_sql(st->db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                         "pragmas");
    if (rc < 0)
        goto cleanup;
    rc = store__migrate(st->db);
    if (rc < 0)
        goto cleanup;
    for (int i = 0; i < STORE__NSTMT; i++) {
        if (sqlite3_prepare_v3(st->db, store__sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &st->stmt[i], NULL) != SQLITE_OK) {
            rc = store__fail(st->db, store__sql[i]);
            goto cleanup;
        }
    }
    *out = &st->base;
    st = NULL;
    rc = 0;

cleanup:
    if (st) {
        for (int i = 0; i < STORE__NSTMT; i++)
            sqlite3_finalize(st->stmt[i]);
        sqlite3_close(st->db);
        mem_free(st);
    }
    mem_free(path);
    return rc;
}

/* ---- batches ------------------------------------------------------------ */

static int store__begin(store_t *s)
{
    store__sqlite_t *st = store__self(s);
    if (st->in_batch)
        return STORE_EINVAL;
    int rc = store__exec(st, store__stmt(st, STORE__BEGIN), "begin");
    if (rc == 0)
        st->in_batch = 1;
    return rc;
}

static int store__commit(store_t *s)
{
    store__sqlite_t *st = store__self(s);
    if (!st->in_batch)
        return STORE_EINVAL;
    int rc = store__exec(st, store__stmt(st, STORE__COMMIT), "commit");
    /* A failed COMMIT leaves the transaction open: the caller rolls back. */
    if (rc == 0 || sqlite3_get_autocommit(st->db))
        st->in_batch = 0;
    return rc;
}

static int store__rollback(store_t *s)
{
    store__sqlite_t *st = store__self(s);
    if (!st->in_batch)
        return STORE_EINVAL;
    st->in_batch = 0;
    if (sqlite3_get_autocommit(st->db)) /* SQLite already rolled it back */
        return 0;
    return store__exec(st, store__stmt(st, STORE__ROLLBACK), "rollback");
}

/* ---- rooms -------------------------------------------------------------- */

static int store__room_get(store_t *s, const char *key, char **name_out)
{
    store__sqlite_t *st = store__self(s);
    sqlite3_stmt *stmt = store__stmt(st, STORE__ROOM_GET);
    int rc;

    if (name_out)
        *name_out = NULL;
    if (store__bind_text(stmt, 1, key, strlen(key)) != SQLITE_OK) {
        rc = store__fail(st->db, "room get bind");
        goto cleanup;
    }
    int step = sqlite3_step(stmt);
    if (step == SQLITE_DONE) {
        rc = STORE_ENOTFOUND;
    } else if (step != SQLITE_ROW) {
        rc = store__fail(st->db, "room get");
    } else if (name_out && store__column_text(stmt, 0, name_out, NULL) < 0) {
        rc = store__fail(st->db, "room get column");
    } else {
        rc = 0;
    }
cleanup:
    store__done(stmt);
    return rc;
}

static int store__room_create(store_t *s, const char *key, const char *name, char **name_out,
                              int *created)
{
    store__sqlite_t *st = store__self(s);
    sqlite3_stmt *stmt = store__stmt(st, STORE__ROOM_ADD);
    int rc;

    if (name_out)
        *name_out = NULL;
    if (created)
        *created = 0;
    if (store__bind_text(stmt, 1, key, strlen(key)) != SQLITE_OK ||
        store__bind_text(stmt, 2, name, strlen(name)) != SQLITE_OK) {
        store__done(stmt);
        return store__fail(st->db, "room create bind");
    }
    rc = store__exec(st, stmt, "room create");
    if (rc < 0)
        return rc;
    if (created)
        *created = sqlite3_changes(st->db) == 1;
    /* Read the name back: on a conflict it is the first creator's. */
    rc = store__room_get(s, key, name_out);
    return rc == STORE_ENOTFOUND ? STORE_EIO : rc;
}

static int store__room_list(store_t *s, store_room_t **rooms, size_t *n)
{
    store__sqlite_t *st = store__self(s);
    sqlite3_stmt *stmt = store__stmt(st, STORE__ROOM_LIST);
    store_room_t *v = NULL;
    size_t len = 0, cap = 0;
    int rc, step;

    *rooms = NULL;
    *n = 0;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            v = mem_realloc(v, cap * sizeof(*v));
        }
        store_room_t *r = &v[len];
        r->key = r->name = NULL;
        len++;
        if (store__column_text(stmt, 0, &r->key, NULL) < 0 ||
            store__column_text(stmt, 1, &r->name, NULL) < 0 || !r->key || !r->name) {
            rc = store__fail(st->db, "room list column");
            goto cleanup;
        }
    }
    if (step != SQLITE_DONE) {
        rc = store__fail(st->db, "room list");
        goto cleanup;
    }
    *rooms = len ? v : NULL;
    *n = len;
    if (!len)
        mem_free(v);
    v = NULL;
    rc = 0;
cleanup:
    store__done(stmt);
    if (v)
        store_rooms_free(v, len);
    return rc;
}

/* ---- messages ----------------------------------------------------------- */

/* Looks up the id of conversation `conv`. Returns 0 (and *id), or
 * STORE_ENOTFOUND, or STORE_EIO. */
static int store__conv_get(store__sqlite_t *st, const char *conv, int64_t *id)
{
    sqlite3_stmt *stmt = store__stmt(st, STORE__CONV_GET);
    int rc;
    if (store__bind_text(stmt, 1, conv, strlen(conv)) != SQLITE_OK) {
        rc = store__fail(st->db, "conversation bind");
        goto cleanup;
    }
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        *id = sqlite3_column_int64(stmt, 0);
        rc = 0;
    } else {
        rc = step == SQLITE_DONE ? STORE_ENOTFOUND : store__fail(st->db, "conversation get");
    }
cleanup:
    store__done(stmt);
    return rc;
}

static int store__msg_append(store_t *s, const store_msg_in_t *m, char id_out[STORE_ID_MAX])
{
    store__sqlite_t *st = store__self(s);
    sqlite3_stmt *stmt;
    int64_t conv_id = 0;
    int rc;

    id_out[0] = '\0';
    rc = store__conv_get(st, m->conv, &conv_id);
    if (rc == STORE_ENOTFOUND) {
        stmt = store__stmt(st, STORE__CONV_ADD);
        if (store__bind_text(stmt, 1, m->conv, strlen(m->conv)) != SQLITE_OK) {
            store__done(stmt);
            return store__fail(st->db, "conversation add bind");
        }
        rc = store__exec(st, stmt, "conversation add");
        if (rc < 0)
            return rc;
        conv_id = sqlite3_last_insert_rowid(st->db);
    } else if (rc < 0) {
        return rc;
    }

    stmt = store__stmt(st, STORE__MSG_ADD);
    if (sqlite3_bind_int64(stmt, 1, conv_id) != SQLITE_OK ||
        store__bind_text(stmt, 2, m->from, strlen(m->from)) != SQLITE_OK ||
        (m->to && store__bind_text(stmt, 3, m->to, strlen(m->to)) != SQLITE_OK) ||
        store__bind_text(stmt, 4, m->content, m->content_len) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 5, m->ts_ms) != SQLITE_OK) {
        store__done(stmt);
        return store__fail(st->db, "message bind");
    }
    rc = store__exec(st, stmt, "message add");
    if (rc < 0)
        return rc;
    store__format_id(sqlite3_last_insert_rowid(st->db), id_out);
    return 0;
}

static int store__history(store_t *s, const char *conv, const char *before, size_t limit,
                          store_history_t *out)
{
    store__sqlite_t *st = store__self(s);
    sqlite3_stmt *stmt = NULL;
    int64_t conv_id = 0, before_id = INT64_MAX;
    store_msg_t *v = NULL;
    size_t len = 0;
    int rc, step;

    memset(out, 0, sizeof(*out));
    if (limit < 1 || limit > STORE_HISTORY_LIMIT_MAX)
        return STORE_EINVAL;
    if (before && store__parse_id(before, &before_id) < 0)
        return STORE_EBADID;

    rc = store__conv_get(st, conv, &conv_id);
    if (rc == STORE_ENOTFOUND) /* nobody ever wrote there: no id can be its */
        return before ? STORE_EBADID : 0;
    if (rc < 0)
        return rc;

    if (before) {
        stmt = store__stmt(st, STORE__MSG_CONV);
        if (sqlite3_bind_int64(stmt, 1, before_id) != SQLITE_OK) {
            rc = store__fail(st->db, "history before bind");
            goto cleanup;
        }
        step = sqlite3_step(stmt);
        if (step == SQLITE_DONE || (step == SQLITE_ROW && sqlite3_column_int64(stmt, 0) != conv_id)) {
            rc = STORE_EBADID;
            goto cleanup;
        }
        if (step != SQLITE_ROW) {
            rc = store__fail(st->db, "history before");
            goto cleanup;
        }
        store__done(stmt);
    }

    stmt = store__stmt(st, STORE__HISTORY);
    if (sqlite3_bind_int64(stmt, 1, conv_id) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, before_id) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 3, (int64_t)limit + 1) != SQLITE_OK) {
        rc = store__fail(st->db, "history bind");
        goto cleanup;
    }
    /* Rows come newest first; fill the array from its end so that it ends
     * up oldest first. The (limit+1)-th row only says "more". */
    v = mem_calloc(limit, sizeof(*v));
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (len == limit) {
            out->has_more = 1;
            break;
        }
        store_msg_t *m = &v[limit - 1 - len];
        len++;
        store__format_id(sqlite3_column_int64(stmt, 0), m->id);
        m->ts_ms = sqlite3_column_int64(stmt, 4);
        if (store__column_text(stmt, 1, &m->from, NULL) < 0 ||
            store__column_text(stmt, 2, &m->to, NULL) < 0 ||
            store__column_text(stmt, 3, &m->content, &m->content_len) < 0 || !m->from ||
            !m->content) {
            rc = store__fail(st->db, "history column");
            goto cleanup;
        }
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = store__fail(st->db, "history");
        goto cleanup;
    }
    if (len < limit) /* move the filled tail to the front */
        memmove(v, v + (limit - len), len * sizeof(*v));
    out->msgs = v;
    out->n = len;
    v = NULL;
    rc = 0;

cleanup:
    if (stmt)
        store__done(stmt);
    if (v) {
        store_history_t partial = {v, limit, 0}; /* unfilled entries are zeroed */
        store_history_free(&partial);
        out->has_more = 0;
    }
    return rc;
}

/* ---- clientId de-duplication -------------------------------------------- */

static int store__dedupe_put(store_t *s, const char *user_key, const char *client_id,
                             size_t client_id_len, const char *msg_id, int64_t ts_ms,
                             const char *conv, int64_t expires_ms)
{
    store__sqlite_t *st = store__self(s);
    sqlite3_stmt *stmt = store__stmt(st, STORE__DEDUPE_PUT);
    if (client_id_len > INT32_MAX ||
        store__bind_text(stmt, 1, user_key, strlen(user_key)) != SQLITE_OK ||
        sqlite3_bind_blob(stmt, 2, client_id, (int)client_id_len, SQLITE_TRANSIENT) != SQLITE_OK ||
        store__bind_text(stmt, 3, msg_id, strlen(msg_id)) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 4, ts_ms) != SQLITE_OK ||
        store__bind_text(stmt, 5, conv, strlen(conv)) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 6, expires_ms) != SQLITE_OK) {
        store__done(stmt);
        return store__fail(st->db, "dedupe put bind");
    }
    return store__exec(st, stmt, "dedupe put");
}

static int store__dedupe_get(store_t *s, const char *user_key, const char *client_id,
                             size_t client_id_len, int64_t now_ms, store_dedupe_t *out)
{
    store__sqlite_t *st = store__self(s);
    sqlite3_stmt *stmt = store__stmt(st, STORE__DEDUPE_GET);
    char *msg_id = NULL;
    size_t id_len = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (client_id_len > INT32_MAX ||
        store__bind_text(stmt, 1, user_key, strlen(user_key)) != SQLITE_OK ||
        sqlite3_bind_blob(stmt, 2, client_id, (int)client_id_len, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 3, now_ms) != SQLITE_OK) {
        rc = store__fail(st->db, "dedupe get bind");
        goto cleanup;
    }
    int step = sqlite3_step(stmt);
    if (step == SQLITE_DONE) {
        rc = STORE_ENOTFOUND;
        goto cleanup;
    }
    if (step != SQLITE_ROW || store__column_text(stmt, 0, &msg_id, &id_len) < 0 ||
        store__column_text(stmt, 2, &out->conv, NULL) < 0 || !msg_id || !out->conv ||
        id_len >= STORE_ID_MAX) {
        rc = store__fail(st->db, "dedupe get");
        goto cleanup;
    }
    memcpy(out->id, msg_id, id_len + 1);
    out->ts_ms = sqlite3_column_int64(stmt, 1);
    rc = 0;
cleanup:
    store__done(stmt);
    mem_free(msg_id);
    if (rc < 0) {
        store_dedupe_free(out);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

static int store__dedupe_purge(store_t *s, int64_t now_ms)
{
    store__sqlite_t *st = store__self(s);
    sqlite3_stmt *stmt = store__stmt(st, STORE__DEDUPE_PURGE);
    if (sqlite3_bind_int64(stmt, 1, now_ms) != SQLITE_OK) {
        store__done(stmt);
        return store__fail(st->db, "dedupe purge bind");
    }
    int rc = store__exec(st, stmt, "dedupe purge");
    if (rc < 0)
        return rc;
    int n = sqlite3_changes(st->db);
    return n < 0 ? 0 : n;
}

static const store_ops_t store__sqlite_ops = {
    .close = store__close,
    .begin = store__begin,
    .commit = store__commit,
    .rollback = store__rollback,
    .room_create = store__room_create,
    .room_get = store__room_get,
    .room_list = store__room_list,
    .msg_append = store__msg_append,
    .history = store__history,
    .dedupe_put = store__dedupe_put,
    .dedupe_get = store__dedupe_get,
    .dedupe_purge = store__dedupe_purge,
};
