/* store_sqlite.c - the embedded store: store.h on one SQLite file,
 * <dir>/parley.db (with store_sqlite_users.c).
 *
 * Durability. The database runs in WAL mode with synchronous=NORMAL: a
 * commit appends to the WAL and returns without fsync. Killing the process
 * (kill -9, a crash) loses nothing that was committed, because the bytes
 * are already in the kernel; only an OS crash or power loss can drop the
 * last commits (never corrupting the file). That is the contract's promise
 * for a server restart at a fraction of the cost of synchronous=FULL.
 *
 * Completion. SQLite is fast enough to run on the loop thread, so an
 * operation does its work inside the call and only its completion waits:
 * the op record (result included) joins a FIFO, and the first write of a
 * loop turn opens a transaction (BEGIN IMMEDIATE) that every later
 * operation of the turn runs in. The store's turn hook (TURN_STORE,
 * util/turn.h: the first phase at the end of the loop turn, before anything
 * is written to a socket) then commits that transaction once and runs the
 * callbacks in start order: nothing is reported, let alone delivered,
 * before the commit that makes it durable. Each write runs inside a savepoint, so a failing
 * one is undone alone and the rest of the turn still commits; if SQLite
 * ends the whole transaction (an I/O error) or the commit fails, every op
 * of that transaction fails with STORE_EIO, reads included (they may have
 * seen its writes). Ops started by callbacks form the next batch, drained
 * in the same pass. The hook is armed only while ops wait, and the store
 * owns no libuv handle: store_close frees everything at once. Op records are recycled, so the hot path (an append) does
 * not allocate.
 *
 * Schema. Versioned in schema_migrations (one row per applied version);
 * open applies the missing versions in one transaction, so a half-migrated
 * file cannot exist. Messages of all conversations share one table, keyed
 * by the rowid and read by the index (conv_id, id): a history page is one
 * index range scan. Ids only grow within a conversation: SQLite takes the
 * largest rowid plus one, and the only messages ever deleted are those of
 * a purged user's direct conversations (store_user_purge), whose names are
 * never used again (they hold the user's id); when one of them held the
 * largest rowid, that id may come back in another conversation, always
 * above every id of it. A retention feature would have to keep the newest
 * row or bring a counter back. Version 4 (contract v2) adds the sender's
 * user id to messages and the tables of store_sqlite_users.c; version 5
 * what store_sqlite_msgs.c needs (a delete overwrites a row, it never
 * deletes one); version 6 what store_sqlite_rooms.c needs. A deleted
 * room's messages go (store_room_delete), and its key may come back as a
 * new conversation: its ids are above every id stored, as above.
 * Recovery reads by time walk that index back from a conversation's newest
 * message (ts_ms is the server's clock, which may step back, so the
 * messages newer than a moment are not quite a suffix of the ids: see
 * STORE_SQLITE__SINCE_FLOOR); an index by time would cost every message one more
 * page write. An expression index on the second key of private
 * conversation names finds a user's conversations in which it is the
 * second of the pair (the name's own index serves the first).
 *
 * Checkpoints (copying the WAL back into the database file) run on a
 * thread of their own: store_sqlite_ckpt.c.
 *
 * Files: this one (open, the turn's transaction and completion FIFO,
 * rooms, messages); store_sqlite_users.c (contract v2: users, secrets,
 * membership, read state, roles); store_sqlite_msgs.c (messages that
 * live: a message as it is now, edits, deletes and what they guarantee,
 * replies, reactions); store_sqlite_rooms.c (rooms' settings, flags,
 * deletion, a new room's owner); store_sqlite_int.h what they share.
 *
 * Every statement is prepared once at open and reset after each use.
 * Errors from SQLite are logged here and returned as STORE_EIO. Op records
 * complete through store_op.h, which the Redis store shares.
 *
 * Memory: this file's allocations go through mem.h and abort on OOM (no
 * uthash here); SQLite's reported failures, OOM included, become
 * STORE_EIO. */
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "store/store_sqlite_int.h"
#include "util/log.h"
#include "util/mem.h"

#define STORE_SQLITE__BUSY_TIMEOUT_MS 5000
/* Op records kept for reuse. */
#define STORE_SQLITE__SPARE_MAX 256
/* Batches drained per run of the turn hook before the other phases get
 * theirs (ops that callbacks keep starting wait for the turn's next pass). */
#define STORE_SQLITE__ROUNDS_MAX 1024

/* ---- schema ------------------------------------------------------------- */

static const char *const store_sqlite__migrations[] = {
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
    /* version 2: connection state recovery (store_since,
     * store_private_convs). Two indexes and no data rewritten: the cost of
     * the upgrade is one index build over messages, paid once at open. */
    "CREATE INDEX messages_conv_ts ON messages(conv_id, ts_ms);"
    "CREATE INDEX conversations_peer"
    "  ON conversations(substr(key, instr(key, char(31)) + 1))"
    "  WHERE key >= 'p:' AND key < 'p;';",
    /* version 3: cheaper appends. Recovery reads by time go through
     * messages_conv_id (see STORE_SQLITE__SINCE_FLOOR): the time index cost every
     * message a page written at a random place of the file, for reads that
     * only cluster mode (on the Redis store) makes. And the table loses
     * AUTOINCREMENT, which cost every insert an update of sqlite_sequence
     * (a third B-tree write): messages are never deleted, so the largest
     * id plus one, SQLite's choice without it, is never a reused id. The
     * table is copied once; dropping the old one drops both indexes. */
    "CREATE TABLE messages_v3 ("
    "  id        INTEGER PRIMARY KEY,"
    "  conv_id   INTEGER NOT NULL REFERENCES conversations(id),"
    "  sender    TEXT NOT NULL,"
    "  recipient TEXT,"
    "  content   TEXT NOT NULL,"
    "  ts_ms     INTEGER NOT NULL);"
    "INSERT INTO messages_v3 SELECT id, conv_id, sender, recipient, content, ts_ms"
    "  FROM messages ORDER BY id;"
    "DROP TABLE messages;"
    "ALTER TABLE messages_v3 RENAME TO messages;"
    "DELETE FROM sqlite_sequence WHERE name = 'messages';"
    "CREATE INDEX messages_conv_id ON messages(conv_id, id);",
    /* version 4: contract v2 (store_sqlite_users.c). New tables and one
     * column added, nothing rewritten: the upgrade is instant. v1 private
     * conversations ("p:", keyed by names) stay as they are; v2 code names
     * direct conversations by user ids ("d:") and never reaches them.
     * members.role is for roles (a later version); members.id is the join
     * order. conversations_dpeer is conversations_peer for "d:" names. */
    "ALTER TABLE messages ADD COLUMN sender_id TEXT;"
    "CREATE TABLE users ("
    "  id         TEXT PRIMARY KEY,"
    "  key        TEXT NOT NULL UNIQUE,"
    "  name       TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  seen_ms    INTEGER NOT NULL,"
    "  guest      INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX users_guest_seen ON users(seen_ms) WHERE guest = 1;"
    "CREATE TABLE secrets ("
    "  name  TEXT PRIMARY KEY,"
    "  bytes BLOB NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE members ("
    "  id        INTEGER PRIMARY KEY,"
    "  room_key  TEXT NOT NULL,"
    "  user_id   TEXT NOT NULL,"
    "  joined_ms INTEGER NOT NULL,"
    "  role      TEXT NOT NULL DEFAULT 'member',"
    "  UNIQUE (room_key, user_id));"
    "CREATE INDEX members_user ON members(user_id, id);"
    "CREATE TABLE read_state ("
    "  user_id   TEXT NOT NULL,"
    "  conv_id   INTEGER NOT NULL REFERENCES conversations(id),"
    "  last_read INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, conv_id)) WITHOUT ROWID;"
    "CREATE INDEX read_state_conv ON read_state(conv_id);"
    "CREATE INDEX conversations_dpeer"
    "  ON conversations(substr(key, instr(key, char(31)) + 1))"
    "  WHERE key >= 'd:' AND key < 'd;';",
    /* version 5: messages that live (store_sqlite_msgs.c). Columns added
     * with constant defaults and a new table: nothing rewritten, the
     * upgrade is instant. reacts counts a message's reactions, so that a
     * page reads the reactions table only for messages that have some;
     * the trigger takes a message's reactions with it when a purge
     * deletes its conversation. */
    "ALTER TABLE messages ADD COLUMN reply_to INTEGER;"
    "ALTER TABLE messages ADD COLUMN edited_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN reacts INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE reactions ("
    "  id       INTEGER PRIMARY KEY,"
    "  msg_id   INTEGER NOT NULL,"
    "  emoji    TEXT NOT NULL,"
    "  user_id  TEXT NOT NULL,"
    "  username TEXT NOT NULL,"
    "  UNIQUE (msg_id, emoji, user_id));"
    "CREATE TRIGGER messages_reactions AFTER DELETE ON messages"
    "  WHEN old.reacts > 0 BEGIN DELETE FROM reactions WHERE msg_id = old.id; END;",
    /* version 6: rooms with owners (store_sqlite_rooms.c): a room's
     * settings, the bans, mutes and invitations per room and user, and
     * system messages (a message's action and the user it concerns).
     * Roles are members.role (version 4); v1 never recorded a creator, so
     * existing rooms have no owner (an administrator sets one:
     * `parley admin set-owner`). Instant: nothing rewritten. */
    "ALTER TABLE rooms ADD COLUMN private INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rooms ADD COLUMN topic TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE room_flags ("
    "  room_key TEXT NOT NULL,"
    "  user_id  TEXT NOT NULL,"
    "  kind     INTEGER NOT NULL,"
    "  until_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (room_key, user_id, kind)) WITHOUT ROWID;"
    "ALTER TABLE messages ADD COLUMN action TEXT;"
    "ALTER TABLE messages ADD COLUMN target TEXT;",
};
#define STORE_SQLITE__SCHEMA_VERSION \
    ((int)(sizeof(store_sqlite__migrations) / sizeof(store_sqlite__migrations[0])))


/* ---- statements --------------------------------------------------------- */

/* Reads by time (store_since, store_private_convs) walk a conversation's
 * messages by id from its newest one back to the first stamped at least
 * STORE_SQLITE__STEP_BACK_MS before the moment asked for; a message that old is
 * never newer than the moment, nor is any before it, unless the server's
 * clock stepped back by more than that between them. The walk covers the
 * messages of the recovery window plus that margin. CONV is the
 * conversation's id, SINCE the moment, both SQL expressions. */
#define STORE_SQLITE__STEP_BACK_MS "10000"
/* (a row of conversations has a message newer than ?2) */
#define STORE_SQLITE__NEWER_EXISTS                                                                \
    "EXISTS (SELECT 1 FROM messages AS m INDEXED BY messages_conv_id"                       \
    " WHERE m.conv_id = conversations.id AND m.id > "                                      \
    STORE_SQLITE__SINCE_FLOOR("conversations.id", "?2") " AND m.ts_ms > ?2)"
#define STORE_SQLITE__SINCE_FLOOR(CONV, SINCE)                                                    \
    "COALESCE((SELECT id FROM messages INDEXED BY messages_conv_id WHERE conv_id = " CONV \
    " AND ts_ms <= " SINCE " - " STORE_SQLITE__STEP_BACK_MS " ORDER BY id DESC LIMIT 1), 0)"


static const char *const store_sqlite__sql[STORE_SQLITE__NSTMT] = {
    /* IMMEDIATE takes the write lock now: a batch never fails half-way for
     * want of upgrading a read lock. */
    [STORE_SQLITE__BEGIN] = "BEGIN IMMEDIATE",
    [STORE_SQLITE__COMMIT] = "COMMIT",
    [STORE_SQLITE__ROLLBACK] = "ROLLBACK",
    /* One write op inside the turn's transaction. */
    [STORE_SQLITE__SAVEPOINT] = "SAVEPOINT op",
    [STORE_SQLITE__RELEASE] = "RELEASE op",
    [STORE_SQLITE__ROLLBACK_TO] = "ROLLBACK TO op",
    [STORE_SQLITE__ROOM_ADD] =
        "INSERT INTO rooms(key, name) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING",
    [STORE_SQLITE__ROOM_GET] = "SELECT name FROM rooms WHERE key = ?1",
    [STORE_SQLITE__ROOM_LIST] = "SELECT key, name FROM rooms ORDER BY id",
    [STORE_SQLITE__CONV_GET] = "SELECT id FROM conversations WHERE key = ?1",
    [STORE_SQLITE__CONV_ADD] = "INSERT INTO conversations(key) VALUES (?1)",
    [STORE_SQLITE__MSG_ADD] = "INSERT INTO messages(conv_id, sender, recipient, content, ts_ms,"
                       " sender_id, reply_to, action, target)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [STORE_SQLITE__MSG_CONV] = "SELECT conv_id FROM messages WHERE id = ?1",
    /* ?2 is the `before` id, or INT64_MAX for the newest page; ?3 is the
     * limit plus one, the extra row telling whether more exist. INDEXED BY
     * pins the plan: with statistics saying most rows share one conv_id,
     * the planner would otherwise walk the rowids backwards and filter,
     * which reads the whole table for a quiet conversation. */
    [STORE_SQLITE__HISTORY] = STORE_SQLITE__MSG_COLS " INDEXED BY messages_conv_id"
                       STORE_SQLITE__MSG_REPLY
                       " WHERE m.conv_id = ?1 AND m.id < ?2 ORDER BY m.id DESC LIMIT ?3",
    [STORE_SQLITE__DEDUPE_PUT] = "INSERT OR REPLACE INTO dedupe"
                          "(user_key, client_id, msg_id, ts_ms, conv, expires_ms)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [STORE_SQLITE__DEDUPE_GET] = "SELECT msg_id, ts_ms FROM dedupe"
                          " WHERE user_key = ?1 AND client_id = ?2 AND expires_ms > ?3",
    [STORE_SQLITE__DEDUPE_PURGE] = "DELETE FROM dedupe WHERE expires_ms <= ?1",
    /* ?3 is the limit plus one. The rows after the floor are few (a
     * recovery window), filtered by time in id order. */
    [STORE_SQLITE__SINCE] = STORE_SQLITE__MSG_COLS " INDEXED BY messages_conv_id"
                     STORE_SQLITE__MSG_REPLY
                     " WHERE m.conv_id = ?1 AND m.id > " STORE_SQLITE__SINCE_FLOOR("?1", "?2")
                     " AND m.ts_ms > ?2 ORDER BY m.id LIMIT ?3",
    /* The names "p:" ?1 U+001F ... (a range of the name's unique index)
     * and "p:" ... U+001F ?1 (conversations_peer, pinned: statistics of a
     * file with few private conversations make the planner prefer a walk
     * over all of them; the expression and the partial index's condition
     * are spelled as in its definition), each once (UNION: the self
     * conversation matches both), that have a message newer than ?2 (a
     * walk back from the newest message of each; one step for a
     * conversation quiet since before ?2). Keys hold no control character,
     * so U+001F is the separator. */
    [STORE_SQLITE__PRIVATE_CONVS] =
        "SELECT key FROM conversations"
        " WHERE key >= 'p:' || ?1 || char(31) AND key < 'p:' || ?1 || char(32)"
        " AND " STORE_SQLITE__NEWER_EXISTS
        " UNION "
        "SELECT key FROM conversations INDEXED BY conversations_peer"
        " WHERE substr(key, instr(key, char(31)) + 1) = ?1 AND key >= 'p:' AND key < 'p;'"
        " AND " STORE_SQLITE__NEWER_EXISTS,
    [STORE_SQLITE__USER_BY_ID] =
        "SELECT id, key, name, created_ms, seen_ms, guest FROM users WHERE id = ?1",
    [STORE_SQLITE__USER_BY_KEY] =
        "SELECT id, key, name, created_ms, seen_ms, guest FROM users WHERE key = ?1",
    [STORE_SQLITE__USER_ADD] = "INSERT INTO users(id, key, name, created_ms, seen_ms, guest)"
                               " VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
    [STORE_SQLITE__USER_SEEN] = "UPDATE users SET seen_ms = ?2 WHERE id = ?1",
    [STORE_SQLITE__USER_RENAME] =
        "UPDATE users SET key = ?2, name = ?3, seen_ms = ?4 WHERE id = ?1",
    /* ?1 is now - ttl: seen_ms + ttl <= now, without overflow */
    [STORE_SQLITE__USER_EXPIRED] = "SELECT id FROM users WHERE guest = 1 AND seen_ms <= ?1",
    [STORE_SQLITE__USER_DEL] = "DELETE FROM users WHERE id = ?1",
    [STORE_SQLITE__USER_DEL_MEMBERS] = "DELETE FROM members WHERE user_id = ?1",
    [STORE_SQLITE__USER_DEL_READS] = "DELETE FROM read_state WHERE user_id = ?1",
    [STORE_SQLITE__CONV_DEL_MSGS] = "DELETE FROM messages WHERE conv_id = ?1",
    [STORE_SQLITE__CONV_DEL_READS] = "DELETE FROM read_state WHERE conv_id = ?1",
    [STORE_SQLITE__CONV_DEL] = "DELETE FROM conversations WHERE id = ?1",
    [STORE_SQLITE__SECRET_GET] = "SELECT bytes FROM secrets WHERE name = ?1",
    [STORE_SQLITE__SECRET_ADD] =
        "INSERT INTO secrets(name, bytes) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
    /* a room's first member (a new room, or one left empty) is its owner */
    [STORE_SQLITE__MEMBER_ADD] = "INSERT INTO members(room_key, user_id, joined_ms, role)"
                                 " VALUES (?1, ?2, ?3, CASE WHEN EXISTS (SELECT 1 FROM members"
                                 " WHERE room_key = ?1) THEN 'member' ELSE 'owner' END)"
                                 " ON CONFLICT(room_key, user_id) DO NOTHING",
    [STORE_SQLITE__MEMBER_DEL] = "DELETE FROM members WHERE room_key = ?1 AND user_id = ?2",
    [STORE_SQLITE__MEMBER_ROOMS] =
        "SELECT m.room_key, COALESCE(r.name, m.room_key), m.joined_ms, m.role"
        " FROM members AS m LEFT JOIN rooms AS r ON r.key = m.room_key"
        " WHERE m.user_id = ?1 ORDER BY m.id",
    [STORE_SQLITE__ROOM_MEMBERS] =
        "SELECT user_id, joined_ms, role FROM members WHERE room_key = ?1 ORDER BY id",
    /* As PRIVATE_CONVS for "d:" names, whatever their age: the name's
     * index for the first id of the pair, conversations_dpeer (pinned) for
     * the second; the key and the row id. */
    [STORE_SQLITE__DIRECT_CONVS] =
        "SELECT key, id FROM conversations"
        " WHERE key >= 'd:' || ?1 || char(31) AND key < 'd:' || ?1 || char(32)"
        " UNION "
        "SELECT key, id FROM conversations INDEXED BY conversations_dpeer"
        " WHERE substr(key, instr(key, char(31)) + 1) = ?1 AND key >= 'd:' AND key < 'd;'",
    [STORE_SQLITE__MSG_NEWEST] = "SELECT MAX(id) FROM messages WHERE conv_id = ?1",
    [STORE_SQLITE__READ_GET] =
        "SELECT last_read FROM read_state WHERE user_id = ?1 AND conv_id = ?2",
    /* never back: a mark only replaces an older one */
    [STORE_SQLITE__READ_PUT] =
        "INSERT INTO read_state(user_id, conv_id, last_read) VALUES (?1, ?2, ?3)"
        " ON CONFLICT(user_id, conv_id) DO UPDATE SET last_read = excluded.last_read"
        " WHERE excluded.last_read > read_state.last_read",
    /* from the newest message back to the mark ?2; the caller stops at the
     * user's own newest message */
    [STORE_SQLITE__READ_SCAN] = "SELECT id, sender_id FROM messages INDEXED BY messages_conv_id"
                                " WHERE conv_id = ?1 AND id > ?2 ORDER BY id DESC",
};

/* ---- ops waiting for their completion ----------------------------------- */


/* Logs the database's last error for `what`; returns STORE_EIO. */
int store_sqlite__fail(sqlite3 *db, const char *what)
{
    log_error("store error", "op=%s code=%d err=\"%s\"", what, sqlite3_extended_errcode(db),
              sqlite3_errmsg(db));
    return STORE_EIO;
}

/* The statement `which`, reset and unbound, ready for new bindings. */
sqlite3_stmt *store_sqlite__stmt(store_sqlite *st, int which)
{
    sqlite3_stmt *stmt = st->stmt[which];
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return stmt;
}

/* Releases the statement's locks and result so that it does not hold a
 * read transaction open between calls. */
void store_sqlite__done(sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
}

int store_sqlite__bind_text(sqlite3_stmt *stmt, int i, const char *s, size_t n)
{
    if (n > INT32_MAX)
        return SQLITE_TOOBIG;
    return sqlite3_bind_text(stmt, i, s, (int)n, SQLITE_TRANSIENT);
}

/* A caller-owned copy of text column i, or NULL for SQL NULL. Returns 0, or
 * STORE_EIO when SQLite failed to produce the text (its OOM). */
int store_sqlite__column_text(sqlite3_stmt *stmt, int i, char **out, size_t *len)
{
    *out = NULL;
    if (sqlite3_column_type(stmt, i) == SQLITE_NULL)
        return 0;
    const unsigned char *t = sqlite3_column_text(stmt, i);
    if (t == NULL)
        return STORE_EIO;
    size_t n = (size_t)sqlite3_column_bytes(stmt, i);
    *out = mem_strndup((const char *)t, n);
    if (len)
        *len = n;
    return 0;
}

/* Runs a statement that returns no row. Returns 0 or STORE_EIO. */
int store_sqlite__exec(store_sqlite *st, sqlite3_stmt *stmt, const char *what)
{
    int rc = sqlite3_step(stmt);
    store_sqlite__done(stmt);
    return rc == SQLITE_DONE ? 0 : store_sqlite__fail(st->db, what);
}

/* ---- reading rows ---------------------------------------------------------- */

/* Steps stmt (bound) to its end, one element of `size` bytes per row in a
 * growing array, filled by row(stmt, element) from zeroed memory (0, or
 * STORE_EIO when a column cannot be read). Resets stmt. Returns 0 with *out (NULL
 * when there was no row) and *n; or STORE_EIO with *out and *n holding
 * the elements so far, the failing one included, for the caller to free
 * with the type's own free. */
int store_sqlite__collect(store_sqlite *st, sqlite3_stmt *stmt, size_t size,
                          int (*row)(sqlite3_stmt *, void *), const char *what, void **out,
                          size_t *n)
{
    char *v = NULL;
    size_t len = 0, cap = 0;
    int rc = 0, step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 8;
            v = mem_realloc(v, cap * size);
        }
        char *elem = v + len * size;
        memset(elem, 0, size);
        len++;
        if (row(stmt, elem) < 0) {
            rc = store_sqlite__fail(st->db, what);
            break;
        }
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = store_sqlite__fail(st->db, what);
    store_sqlite__done(stmt);
    if (rc == 0 && len == 0) {
        mem_free(v);
        v = NULL;
    }
    *out = v;
    *n = len;
    return rc;
}

int store_sqlite__collect_by_key(store_sqlite *st, int which, const char *key, size_t size,
                                 int (*row)(sqlite3_stmt *, void *), const char *what,
                                 void **out, size_t *n)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, which);
    *out = NULL;
    *n = 0;
    if (store_sqlite__bind_text(stmt, 1, key, strlen(key)) != SQLITE_OK) {
        char op[64];
        snprintf(op, sizeof(op), "%s bind", what);
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, op);
    }
    return store_sqlite__collect(st, stmt, size, row, what, out, n);
}

/* A message id as this backend writes it: the decimal rowid. */
void store_sqlite__format_id(int64_t rowid, char out[STORE_ID_MAX])
{
    snprintf(out, STORE_ID_MAX, "%" PRId64, rowid);
}

/* Parses an id in exactly the form store_sqlite__format_id writes (no sign, no
 * leading zero, no space, 1..INT64_MAX). Returns 0 or STORE_EBADID. */
int store_sqlite__parse_id(const char *s, int64_t *out)
{
    int64_t v = 0;
    size_t i = 0;
    if (s[0] < '1' || s[0] > '9')
        return STORE_EBADID;
    for (; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 19)
            return STORE_EBADID;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return STORE_EBADID;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* ---- open, migrate, close ------------------------------------------------ */

/* mkdir -p with mode 0700 for the directories it creates. */
static int store_sqlite__mkdirs(const char *dir)
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
static int store_sqlite__exec_sql(sqlite3 *db, const char *sql, const char *what)
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
static int store_sqlite__query_int(sqlite3 *db, const char *sql, int64_t *out)
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
        store_sqlite__fail(db, sql);
    sqlite3_finalize(stmt);
    return rc;
}

/* Switches to WAL; *wal says whether it is the mode in force afterwards
 * (the pragma answers with the mode it ended up in: a file system without
 * shared memory keeps the old one). Returns 0 or STORE_EIO. */
static int store_sqlite__use_wal(sqlite3 *db, int *wal)
{
    sqlite3_stmt *stmt = NULL;
    int rc = STORE_EIO;
    *wal = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW) {
        store_sqlite__fail(db, "journal_mode");
        goto cleanup;
    }
    const unsigned char *mode = sqlite3_column_text(stmt, 0);
    *wal = mode != NULL && strcmp((const char *)mode, "wal") == 0;
    rc = 0;
cleanup:
    sqlite3_finalize(stmt);
    return rc;
}

static int64_t store_sqlite__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Brings the schema to STORE_SQLITE__SCHEMA_VERSION in one transaction. */
static int store_sqlite__migrate(sqlite3 *db)
{
    int64_t version = 0;
    int rc = store_sqlite__exec_sql(db, "BEGIN IMMEDIATE", "migrate begin");
    if (rc < 0)
        return rc;
    rc = store_sqlite__exec_sql(db,
                                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                "  version    INTEGER PRIMARY KEY,"
                                "  applied_ms INTEGER NOT NULL)",
                                "migrate table");
    if (rc < 0)
        goto cleanup;
    rc = store_sqlite__query_int(db, "SELECT MAX(version) FROM schema_migrations", &version);
    if (rc < 0)
        goto cleanup;
    if (version > STORE_SQLITE__SCHEMA_VERSION) {
        log_error("store schema is newer than this server", "version=%" PRId64 " known=%d",
                  version, STORE_SQLITE__SCHEMA_VERSION);
        rc = STORE_ESCHEMA;
        goto cleanup;
    }
    for (int v = (int)version + 1; v <= STORE_SQLITE__SCHEMA_VERSION; v++) {
        char sql[128];
        rc = store_sqlite__exec_sql(db, store_sqlite__migrations[v - 1], "migrate");
        if (rc < 0)
            goto cleanup;
        snprintf(sql, sizeof(sql),
                 "INSERT INTO schema_migrations(version, applied_ms) VALUES (%d, %" PRId64 ")",
                 v, store_sqlite__wall_ms());
        rc = store_sqlite__exec_sql(db, sql, "migrate record");
        if (rc < 0)
            goto cleanup;
        log_info("store schema migrated", "version=%d", v);
    }
    rc = store_sqlite__exec_sql(db, "COMMIT", "migrate commit");
cleanup:
    if (rc < 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}


/* ---- the turn's transaction and the completion FIFO ---------------------- */

store_sqlite__op *store_sqlite__op_new(store_sqlite *st, store_op_call call)
{
    store_sqlite__op *op = st->spare;
    if (op) {
        st->spare = op->next;
        st->nspare--;
    } else {
        op = mem_alloc(sizeof(*op));
    }
    memset(op, 0, sizeof(*op));
    op->call = call;
    return op;
}

static void store_sqlite__op_recycle(store_sqlite *st, store_sqlite__op *op)
{
    if (st->nspare >= STORE_SQLITE__SPARE_MAX || st->base.closed) {
        mem_free(op);
        return;
    }
    op->next = st->spare;
    st->spare = op;
    st->nspare++;
}

/* Empties op's result: what a callback gets with an error. */
void store_sqlite__op_clear(store_sqlite__op *op)
{
    store_op__clear(op->call.kind, &op->res);
}

static void store_sqlite__op_fail(store_sqlite__op *op, int rc)
{
    op->rc = rc;
    store_sqlite__op_clear(op);
}

/* Runs op's callback, then frees what the callback left and recycles op. */
static void store_sqlite__op_complete(store_sqlite *st, store_sqlite__op *op)
{
    store_op__complete(&op->call, op->rc, &op->res);
    store_sqlite__op_recycle(st, op);
}

/* The transaction `batch` is gone (rolled back by SQLite or by us): every
 * waiting op that ran in it fails, since its writes are lost and a read in
 * it may have seen them. */
static void store_sqlite__batch_lost(store_sqlite *st, uint64_t batch)
{
    for (store_sqlite__op *op = st->head; op; op = op->next)
        if (op->batch == batch && op->rc == 0)
            store_sqlite__op_fail(op, STORE_EIO);
}

/* After a failed statement: some errors (I/O, a full disk, OOM) make
 * SQLite roll back the whole transaction, not just the statement. */
static void store_sqlite__batch_check(store_sqlite *st)
{
    if (st->batch && sqlite3_get_autocommit(st->db)) {
        log_error("store transaction rolled back", "batch=%" PRIu64, st->batch);
        uint64_t b = st->batch;
        st->batch = 0;
        store_sqlite__batch_lost(st, b);
    }
}

/* Opens the turn's transaction unless one is open. Returns 0 or STORE_EIO. */
int store_sqlite__batch_begin(store_sqlite *st)
{
    if (st->batch)
        return 0;
    int rc = store_sqlite__exec(st, store_sqlite__stmt(st, STORE_SQLITE__BEGIN), "begin");
    if (rc == 0)
        st->batch = ++st->batches;
    return rc;
}

/* After the commit of a delete: a TRUNCATE checkpoint copies every page
 * into the database file (where secure_delete zeroed the deleted text)
 * and empties the WAL, which held the text in older frames; SQLite waits
 * (busy timeout) for a checkpoint of the thread's. On failure the next
 * commit tries again. */
static void store_sqlite__scrub(store_sqlite *st)
{
    int rc = sqlite3_wal_checkpoint_v2(st->db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    if (rc == SQLITE_OK)
        st->scrub = 0;
    else
        log_warn("store WAL truncation failed", "code=%d err=\"%s\" retry=next-commit", rc,
                 sqlite3_errmsg(st->db));
}

/* Commits the open transaction, if any; on failure every op that ran in it
 * fails. */
static void store_sqlite__batch_commit(store_sqlite *st)
{
    uint64_t b = st->batch;
    if (b == 0)
        return;
    st->batch = 0;
    if (store_sqlite__exec(st, store_sqlite__stmt(st, STORE_SQLITE__COMMIT), "commit") == 0) {
        if (st->scrub)
            store_sqlite__scrub(st);
        return;
    }
    if (!sqlite3_get_autocommit(st->db)) /* a failed COMMIT leaves it open */
        store_sqlite__exec(st, store_sqlite__stmt(st, STORE_SQLITE__ROLLBACK), "rollback");
    store_sqlite__batch_lost(st, b);
}

/* A write op: inside the turn's transaction, in a savepoint of its own.
 * Returns 0 or STORE_EIO; either way store_sqlite__write_end follows. */
int store_sqlite__write_begin(store_sqlite *st)
{
    int rc = store_sqlite__batch_begin(st);
    if (rc != 0)
        return rc;
    return store_sqlite__exec(st, store_sqlite__stmt(st, STORE_SQLITE__SAVEPOINT), "savepoint");
}

/* Keeps the op's writes (rc 0) or undoes them alone. Returns rc, or
 * STORE_EIO when keeping them failed. */
int store_sqlite__write_end(store_sqlite *st, int rc)
{
    if (rc == 0) {
        rc = store_sqlite__exec(st, store_sqlite__stmt(st, STORE_SQLITE__RELEASE), "release");
        if (rc == 0)
            return 0;
    }
    if (!sqlite3_get_autocommit(st->db)) {
        store_sqlite__exec(st, store_sqlite__stmt(st, STORE_SQLITE__ROLLBACK_TO), "rollback to");
        store_sqlite__exec(st, store_sqlite__stmt(st, STORE_SQLITE__RELEASE), "release");
    }
    return rc;
}

static void store_sqlite__drain(void *ud);

/* op is done: it waits for the turn's commit and its callback (inline: both
 * happen now). */
void store_sqlite__submit(store_sqlite *st, store_sqlite__op *op)
{
    if (op->rc != 0)
        store_sqlite__batch_check(st);
    op->batch = op->rc == 0 ? st->batch : 0;
    op->next = NULL;
    if (st->tail)
        st->tail->next = op;
    else
        st->head = op;
    st->tail = op;
    if (st->turn == NULL)
        store_sqlite__drain(st);
    else
        turn_arm(st->turn, &st->drain);
}

/* The turn hook: commits and completes, batch after batch, until no op
 * waits (or the round limit: the hook is armed again for the turn's next
 * pass). Inline (no turn): called by store_sqlite__submit. */
static void store_sqlite__drain(void *ud)
{
    store_sqlite *st = ud;
    for (int round = 0; st->head && round < STORE_SQLITE__ROUNDS_MAX; round++) {
        store_sqlite__batch_commit(st);
        store_sqlite__op *list = st->head;
        st->head = st->tail = NULL;
        while (list) {
            store_sqlite__op *op = list;
            list = op->next;
            store_sqlite__op_complete(st, op);
        }
    }
    if (st->head && st->turn)
        turn_arm(st->turn, &st->drain);
}

/* ---- close and open ------------------------------------------------------ */

static void store_sqlite__close(store_t *s)
{
    store_sqlite *st = store_sqlite__self(s);
    st->base.closed = 1;
    if (st->batch) { /* not committed: its ops fail, their writes are undone */
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        st->batch = 0;
    }
    while (st->head) { /* ops started by these callbacks complete inline */
        store_sqlite__op *op = st->head;
        st->head = op->next;
        if (st->head == NULL)
            st->tail = NULL;
        store_sqlite__op_fail(op, STORE_ECLOSED);
        store_sqlite__op_complete(st, op);
    }
    while (st->spare) {
        store_sqlite__op *op = st->spare;
        st->spare = op->next;
        mem_free(op);
    }
    st->nspare = 0;
    store_sqlite__ckpt_stop(st->ckpt);
    st->ckpt = NULL;
    for (int i = 0; i < STORE_SQLITE__NSTMT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (sqlite3_close(st->db) != SQLITE_OK)
        store_sqlite__fail(st->db, "close");
    st->db = NULL;
    if (st->turn)
        turn_disarm(st->turn, &st->drain);
    mem_free(st);
}

static const store_ops_t store_sqlite__ops;

int store_sqlite_open(turn_t *turn, const char *dir, store_t **out)
{
    store_sqlite *st = NULL;
    char *path = NULL;
    int wal = 0;
    int rc;

    *out = NULL;
    if (dir[0] == '\0')
        return STORE_EINVAL;
    rc = store_sqlite__mkdirs(dir);
    if (rc < 0)
        return rc;
    size_t n = strlen(dir);
    path = mem_alloc(n + sizeof("/parley.db"));
    memcpy(path, dir, n);
    memcpy(path + n, "/parley.db", sizeof("/parley.db"));

    st = mem_calloc(1, sizeof(*st));
    st->base.ops = &store_sqlite__ops;
    st->turn = turn;
    turn_hook_init(&st->drain, TURN_STORE, store_sqlite__drain, st);
    /* NOMUTEX: one store per thread (the loop's), so SQLite's own locks
     * would only cost time. */
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        if (st->db)
            store_sqlite__fail(st->db, "open");
        else
            log_error("store cannot open", "path=\"%s\" err=out-of-memory", path);
        rc = STORE_EIO;
        goto cleanup;
    }
    sqlite3_extended_result_codes(st->db, 1);
    if (sqlite3_busy_timeout(st->db, STORE_SQLITE__BUSY_TIMEOUT_MS) != SQLITE_OK) {
        rc = store_sqlite__fail(st->db, "busy_timeout");
        goto cleanup;
    }
    rc = store_sqlite__use_wal(st->db, &wal);
    if (rc < 0)
        goto cleanup;
    if (!wal) {
        log_error("store cannot use WAL mode", "path=\"%s\"", path);
        rc = STORE_EIO;
        goto cleanup;
    }
    /* secure_delete: what a delete or an edit frees is overwritten with
     * zeros (store_sqlite_msgs.c) */
    rc = store_sqlite__exec_sql(st->db,
                                "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                                " PRAGMA secure_delete = ON;",
                                "pragmas");
    if (rc < 0)
        goto cleanup;
    rc = store_sqlite__migrate(st->db);
    if (rc < 0)
        goto cleanup;
    for (int i = 0; i < STORE_SQLITE__NSTMT; i++) {
        const char *sql = i < STORE_SQLITE__ROOMS_FIRST
                              ? store_sqlite__sql[i]
                              : store_sqlite__sql_rooms[i - STORE_SQLITE__ROOMS_FIRST];
        if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
                               NULL) != SQLITE_OK) {
            rc = store_sqlite__fail(st->db, sql);
            goto cleanup;
        }
    }
    st->ckpt = store_sqlite__ckpt_start(st->db, path);
    *out = &st->base;
    st = NULL;
    rc = 0;

cleanup:
    if (st) {
        for (int i = 0; i < STORE_SQLITE__NSTMT; i++)
            sqlite3_finalize(st->stmt[i]);
        sqlite3_close(st->db);
        mem_free(st);
    }
    mem_free(path);
    return rc;
}

/* ---- rooms -------------------------------------------------------------- */

/* The display name of room `key` into *name_out (caller-owned; name_out may
 * be NULL): 0, STORE_ENOTFOUND or STORE_EIO. */
static int store_sqlite__room_read(store_sqlite *st, const char *key, char **name_out)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__ROOM_GET);
    int rc;

    if (name_out)
        *name_out = NULL;
    if (store_sqlite__bind_text(stmt, 1, key, strlen(key)) != SQLITE_OK) {
        rc = store_sqlite__fail(st->db, "room get bind");
        goto cleanup;
    }
    int step = sqlite3_step(stmt);
    if (step == SQLITE_DONE) {
        rc = STORE_ENOTFOUND;
    } else if (step != SQLITE_ROW) {
        rc = store_sqlite__fail(st->db, "room get");
    } else if (name_out && store_sqlite__column_text(stmt, 0, name_out, NULL) < 0) {
        rc = store_sqlite__fail(st->db, "room get column");
    } else {
        rc = 0;
    }
cleanup:
    store_sqlite__done(stmt);
    return rc;
}

static void store_sqlite__room_get(store_t *s, const char *key, store_room_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_ROOM(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    op->rc = store_sqlite__room_read(st, key, &op->res.room.name);
    store_sqlite__submit(st, op);
}

/* Inserts the room unless its key exists; *created says which. */
static int store_sqlite__room_insert(store_sqlite *st, const char *key, const char *name,
                                     int *created)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__ROOM_ADD);
    if (store_sqlite__bind_text(stmt, 1, key, strlen(key)) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 2, name, strlen(name)) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "room create bind");
    }
    int rc = store_sqlite__exec(st, stmt, "room create");
    if (rc == 0)
        *created = sqlite3_changes(st->db) == 1;
    return rc;
}

static void store_sqlite__room_create(store_t *s, const char *key, const char *name,
                                      const store_room_opts_t *opts, store_room_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_ROOM(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    int rc = store_sqlite__write_begin(st);
    if (rc == 0)
        rc = store_sqlite__room_insert(st, key, name, &op->res.room.created);
    if (rc == 0 && opts && op->res.room.created)
        rc = store_sqlite__room_settle(st, key, opts);
    if (rc == 0) {
        /* Read the name back: on a conflict it is the first creator's. */
        rc = store_sqlite__room_read(st, key, &op->res.room.name);
        if (rc == STORE_ENOTFOUND)
            rc = STORE_EIO;
    }
    op->rc = store_sqlite__write_end(st, rc);
    if (op->rc != 0)
        store_sqlite__op_clear(op);
    store_sqlite__submit(st, op);
}

/* One row of ROOM_LIST into a store_room_t. */
static int store_sqlite__room_row(sqlite3_stmt *stmt, void *elem)
{
    store_room_t *r = elem;
    if (store_sqlite__column_text(stmt, 0, &r->key, NULL) < 0 ||
        store_sqlite__column_text(stmt, 1, &r->name, NULL) < 0 || !r->key || !r->name)
        return STORE_EIO;
    return 0;
}

static int store_sqlite__room_rows(store_sqlite *st, store_room_list_t *out)
{
    void *v = NULL;
    size_t n = 0;
    int rc = store_sqlite__collect(st, store_sqlite__stmt(st, STORE_SQLITE__ROOM_LIST),
                                   sizeof(store_room_t),
                                   store_sqlite__room_row, "room list", &v, &n);
    store_room_list_t list = {v, n};
    if (rc < 0) {
        store_room_list_free(&list);
        list = (store_room_list_t){NULL, 0};
    }
    *out = list;
    return rc;
}

static void store_sqlite__room_list(store_t *s, store_room_list_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_LIST(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    op->rc = store_sqlite__room_rows(st, &op->res.list);
    store_sqlite__submit(st, op);
}

/* ---- messages ----------------------------------------------------------- */

/* Looks up the id of conversation `conv`. Returns 0 (and *id), or
 * STORE_ENOTFOUND, or STORE_EIO. */
int store_sqlite__conv_get(store_sqlite *st, const char *conv, int64_t *id)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__CONV_GET);
    int rc;
    if (store_sqlite__bind_text(stmt, 1, conv, strlen(conv)) != SQLITE_OK) {
        rc = store_sqlite__fail(st->db, "conversation bind");
        goto cleanup;
    }
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        *id = sqlite3_column_int64(stmt, 0);
        rc = 0;
    } else {
        rc = step == SQLITE_DONE ? STORE_ENOTFOUND : store_sqlite__fail(st->db, "conversation get");
    }
cleanup:
    store_sqlite__done(stmt);
    return rc;
}

/* Inserts the row of conversation conv_id; its id into id_out. One
 * statement, so atomic alone. Returns 0 or STORE_EIO. */
static int store_sqlite__msg_row_insert(store_sqlite *st, int64_t conv_id, const store_msg_in_t *m,
                                        int64_t reply_to, char id_out[STORE_ID_MAX])
{
    int rc;
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__MSG_ADD);
    if (sqlite3_bind_int64(stmt, 1, conv_id) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 2, m->from, strlen(m->from)) != SQLITE_OK ||
        (m->to && store_sqlite__bind_text(stmt, 3, m->to, strlen(m->to)) != SQLITE_OK) ||
        store_sqlite__bind_text(stmt, 4, m->content, m->content_len) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 5, m->ts_ms) != SQLITE_OK ||
        (m->from_id &&
         store_sqlite__bind_text(stmt, 6, m->from_id, strlen(m->from_id)) != SQLITE_OK) ||
        (reply_to && sqlite3_bind_int64(stmt, 7, reply_to) != SQLITE_OK) ||
        (m->action &&
         store_sqlite__bind_text(stmt, 8, m->action, strlen(m->action)) != SQLITE_OK) ||
        (m->user && store_sqlite__bind_text(stmt, 9, m->user, strlen(m->user)) != SQLITE_OK)) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "message bind");
    }
    rc = store_sqlite__exec(st, stmt, "message add");
    if (rc < 0)
        return rc;
    store_sqlite__format_id(sqlite3_last_insert_rowid(st->db), id_out);
    return 0;
}

/* Inserts the message row, and its conversation's first; its id into
 * id_out. Returns 0 or STORE_EIO. */
static int store_sqlite__msg_insert(store_sqlite *st, const store_msg_in_t *m,
                                    char id_out[STORE_ID_MAX])
{
    int64_t conv_id = 0;
    int rc = store_sqlite__conv_get(st, m->conv, &conv_id);
    if (rc == STORE_ENOTFOUND) {
        sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__CONV_ADD);
        if (store_sqlite__bind_text(stmt, 1, m->conv, strlen(m->conv)) != SQLITE_OK) {
            store_sqlite__done(stmt);
            return store_sqlite__fail(st->db, "conversation add bind");
        }
        rc = store_sqlite__exec(st, stmt, "conversation add");
        if (rc < 0)
            return rc;
        conv_id = sqlite3_last_insert_rowid(st->db);
    } else if (rc < 0) {
        return rc;
    }
    int64_t reply_to = 0;
    if (m->reply_to) /* checked here, so only a reply pays for it */
        rc = store_sqlite__reply_check(st, conv_id, m->reply_to, &reply_to);
    return rc < 0 ? rc : store_sqlite__msg_row_insert(st, conv_id, m, reply_to, id_out);
}

/* The live entry of d at now_ms into *out (duplicate set): 0,
 * STORE_ENOTFOUND or STORE_EIO. */
static int store_sqlite__dedupe_find(store_sqlite *st, const store_dedupe_in_t *d, int64_t now_ms,
                                     store_appended_t *out)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__DEDUPE_GET);
    int rc;
    if (d->client_id_len > INT32_MAX ||
        store_sqlite__bind_text(stmt, 1, d->user_key, strlen(d->user_key)) != SQLITE_OK ||
        sqlite3_bind_blob(stmt, 2, d->client_id, (int)d->client_id_len, SQLITE_TRANSIENT) !=
            SQLITE_OK ||
        sqlite3_bind_int64(stmt, 3, now_ms) != SQLITE_OK) {
        rc = store_sqlite__fail(st->db, "dedupe get bind");
        goto cleanup;
    }
    int step = sqlite3_step(stmt);
    if (step == SQLITE_DONE) {
        rc = STORE_ENOTFOUND;
        goto cleanup;
    }
    const unsigned char *id = step == SQLITE_ROW ? sqlite3_column_text(stmt, 0) : NULL;
    size_t id_len = id ? (size_t)sqlite3_column_bytes(stmt, 0) : 0;
    if (id == NULL || id_len == 0 || id_len >= STORE_ID_MAX) {
        rc = store_sqlite__fail(st->db, "dedupe get");
        goto cleanup;
    }
    memcpy(out->id, id, id_len + 1);
    out->ts_ms = sqlite3_column_int64(stmt, 1);
    out->duplicate = 1;
    rc = 0;
cleanup:
    store_sqlite__done(stmt);
    return rc;
}

static int store_sqlite__dedupe_put(store_sqlite *st, const store_dedupe_in_t *d,
                                    const char *msg_id,
                                    int64_t ts_ms, const char *conv)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__DEDUPE_PUT);
    if (d->client_id_len > INT32_MAX ||
        store_sqlite__bind_text(stmt, 1, d->user_key, strlen(d->user_key)) != SQLITE_OK ||
        sqlite3_bind_blob(stmt, 2, d->client_id, (int)d->client_id_len, SQLITE_TRANSIENT) !=
            SQLITE_OK ||
        store_sqlite__bind_text(stmt, 3, msg_id, strlen(msg_id)) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 4, ts_ms) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 5, conv, strlen(conv)) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 6, d->expires_ms) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "dedupe put bind");
    }
    return store_sqlite__exec(st, stmt, "dedupe put");
}

/* The hot path: no allocation once op records are recycled. The clientId
 * lookup, the message and the clientId entry are one savepoint. A message
 * without a clientId to a conversation that exists is one INSERT, atomic
 * alone: it skips the savepoint's two statements. */
static void store_sqlite__msg_append(store_t *s, const store_msg_in_t *m,
                                     const store_dedupe_in_t *d,
                                     store_append_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_APPEND(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    store_appended_t *res = &op->res.append;
    int64_t conv_id = 0;
    int rc = store_sqlite__batch_begin(st);
    if (rc == 0 && d == NULL && m->reply_to == NULL &&
        store_sqlite__conv_get(st, m->conv, &conv_id) == 0) {
        res->ts_ms = m->ts_ms;
        op->rc = store_sqlite__msg_row_insert(st, conv_id, m, 0, res->id);
        if (op->rc != 0)
            store_sqlite__op_clear(op);
        store_sqlite__submit(st, op);
        return;
    }
    if (rc == 0)
        rc = store_sqlite__exec(st, store_sqlite__stmt(st, STORE_SQLITE__SAVEPOINT), "savepoint");
    if (rc == 0 && d) {
        rc = store_sqlite__dedupe_find(st, d, m->ts_ms, res);
        if (rc == STORE_ENOTFOUND)
            rc = 0;
    }
    if (rc == 0 && !res->duplicate) {
        res->ts_ms = m->ts_ms;
        rc = store_sqlite__msg_insert(st, m, res->id);
        if (rc == 0 && d)
            rc = store_sqlite__dedupe_put(st, d, res->id, m->ts_ms, m->conv);
    }
    op->rc = store_sqlite__write_end(st, rc);
    if (op->rc != 0)
        store_sqlite__op_clear(op);
    store_sqlite__submit(st, op);
}


/* A page of conv into *out (see store_history). */
static int store_sqlite__history_read(store_sqlite *st, const char *conv, const char *before,
                                      size_t limit, store_history_t *out)
{
    sqlite3_stmt *stmt = NULL;
    int64_t conv_id = 0, before_id = INT64_MAX;
    store_msg_t *v = NULL;
    size_t len = 0;
    int rc, step;

    memset(out, 0, sizeof(*out));
    if (limit < 1 || limit > STORE_HISTORY_LIMIT_MAX)
        return STORE_EINVAL;
    if (before && store_sqlite__parse_id(before, &before_id) < 0)
        return STORE_EBADID;

    rc = store_sqlite__conv_get(st, conv, &conv_id);
    if (rc == STORE_ENOTFOUND) /* nobody ever wrote there: no id can be its */
        return before ? STORE_EBADID : 0;
    if (rc < 0)
        return rc;

    if (before) {
        stmt = store_sqlite__stmt(st, STORE_SQLITE__MSG_CONV);
        if (sqlite3_bind_int64(stmt, 1, before_id) != SQLITE_OK) {
            rc = store_sqlite__fail(st->db, "history before bind");
            goto cleanup;
        }
        step = sqlite3_step(stmt);
        if (step == SQLITE_DONE ||
            (step == SQLITE_ROW && sqlite3_column_int64(stmt, 0) != conv_id)) {
            rc = STORE_EBADID;
            goto cleanup;
        }
        if (step != SQLITE_ROW) {
            rc = store_sqlite__fail(st->db, "history before");
            goto cleanup;
        }
        store_sqlite__done(stmt);
    }

    stmt = store_sqlite__stmt(st, STORE_SQLITE__HISTORY);
    if (sqlite3_bind_int64(stmt, 1, conv_id) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, before_id) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 3, (int64_t)limit + 1) != SQLITE_OK) {
        rc = store_sqlite__fail(st->db, "history bind");
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
        len++;
        if (store_sqlite__msg_row(st, stmt, &v[limit - len]) < 0) {
            rc = store_sqlite__fail(st->db, "history column");
            goto cleanup;
        }
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = store_sqlite__fail(st->db, "history");
        goto cleanup;
    }
    if (len == 0) { /* an empty page holds no array, as store_since's */
        mem_free(v);
    } else {
        if (len < limit) /* move the filled tail to the front */
            memmove(v, v + (limit - len), len * sizeof(*v));
        out->msgs = v;
        out->n = len;
    }
    v = NULL;
    rc = 0;

cleanup:
    if (stmt)
        store_sqlite__done(stmt);
    if (v) {
        store_history_t partial = {v, limit, 0}; /* unfilled entries are zeroed */
        store_history_free(&partial);
        out->has_more = 0;
    }
    return rc;
}

static void store_sqlite__history(store_t *s, const char *conv, const char *before, size_t limit,
                                  store_history_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_PAGE(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    op->rc = store_sqlite__history_read(st, conv, before, limit, &op->res.page);
    store_sqlite__submit(st, op);
}

/* ---- what a client missed ----------------------------------------------- */

/* The messages of conv newer than since_ms into *out (see store_since). */
static int store_sqlite__since_read(store_sqlite *st, const char *conv, int64_t since_ms,
                                    size_t limit, store_history_t *out)
{
    sqlite3_stmt *stmt = NULL;
    int64_t conv_id = 0;
    store_msg_t *v = NULL;
    size_t len = 0;
    int rc, step;

    memset(out, 0, sizeof(*out));
    if (limit < 1 || limit > STORE_HISTORY_LIMIT_MAX)
        return STORE_EINVAL;
    rc = store_sqlite__conv_get(st, conv, &conv_id);
    if (rc == STORE_ENOTFOUND) /* nobody ever wrote there */
        return 0;
    if (rc < 0)
        return rc;

    stmt = store_sqlite__stmt(st, STORE_SQLITE__SINCE);
    if (sqlite3_bind_int64(stmt, 1, conv_id) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, since_ms) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 3, (int64_t)limit + 1) != SQLITE_OK) {
        rc = store_sqlite__fail(st->db, "since bind");
        goto cleanup;
    }
    /* Rows come oldest first; the (limit+1)-th only says "more". */
    v = mem_calloc(limit, sizeof(*v));
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (len == limit) {
            out->has_more = 1;
            break;
        }
        if (store_sqlite__msg_row(st, stmt, &v[len++]) < 0) {
            rc = store_sqlite__fail(st->db, "since column");
            goto cleanup;
        }
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = store_sqlite__fail(st->db, "since");
        goto cleanup;
    }
    if (len == 0) {
        mem_free(v);
    } else {
        out->msgs = v;
        out->n = len;
    }
    v = NULL;
    rc = 0;

cleanup:
    store_sqlite__done(stmt);
    if (v) {
        store_history_t partial = {v, len, 0};
        store_history_free(&partial);
        out->has_more = 0;
    }
    return rc;
}

static void store_sqlite__since(store_t *s, const char *conv, int64_t since_ms, size_t limit,
                                store_history_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_PAGE(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    op->rc = store_sqlite__since_read(st, conv, since_ms, limit, &op->res.page);
    store_sqlite__submit(st, op);
}

/* One row of PRIVATE_CONVS into a char *. */
static int store_sqlite__conv_row(sqlite3_stmt *stmt, void *elem)
{
    char **key = elem;
    return store_sqlite__column_text(stmt, 0, key, NULL) < 0 || *key == NULL ? STORE_EIO : 0;
}

/* The private conversations of user_key newer than since_ms into *out. */
static int store_sqlite__private_read(store_sqlite *st, const char *user_key, int64_t since_ms,
                                      store_conv_list_t *out)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__PRIVATE_CONVS);
    memset(out, 0, sizeof(*out));
    if (store_sqlite__bind_text(stmt, 1, user_key, strlen(user_key)) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, since_ms) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "private convs bind");
    }
    void *v = NULL;
    size_t n = 0;
    int rc = store_sqlite__collect(st, stmt, sizeof(char *), store_sqlite__conv_row,
                                   "private convs", &v, &n);
    store_conv_list_t list = {v, n};
    if (rc < 0) {
        store_conv_list_free(&list);
        list = (store_conv_list_t){NULL, 0};
    }
    *out = list;
    return rc;
}

static void store_sqlite__private_convs(store_t *s, const char *user_key, int64_t since_ms,
                                        store_conv_list_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_CONVS(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    op->rc = store_sqlite__private_read(st, user_key, since_ms, &op->res.convs);
    store_sqlite__submit(st, op);
}

/* ---- clientId purge ----------------------------------------------------- */

static void store_sqlite__dedupe_purge(store_t *s, int64_t now_ms, store_count_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    int rc = store_sqlite__write_begin(st);
    if (rc == 0) {
        sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__DEDUPE_PURGE);
        if (sqlite3_bind_int64(stmt, 1, now_ms) != SQLITE_OK) {
            store_sqlite__done(stmt);
            rc = store_sqlite__fail(st->db, "dedupe purge bind");
        } else {
            rc = store_sqlite__exec(st, stmt, "dedupe purge");
        }
        if (rc == 0) {
            int n = sqlite3_changes(st->db);
            op->res.count = n < 0 ? 0 : (uint64_t)n;
        }
    }
    op->rc = store_sqlite__write_end(st, rc);
    if (op->rc != 0)
        store_sqlite__op_clear(op);
    store_sqlite__submit(st, op);
}

static const store_ops_t store_sqlite__ops = {
    .close = store_sqlite__close,
    .room_create = store_sqlite__room_create,
    .room_get = store_sqlite__room_get,
    .room_list = store_sqlite__room_list,
    .msg_append = store_sqlite__msg_append,
    .history = store_sqlite__history,
    .dedupe_purge = store_sqlite__dedupe_purge,
    .since = store_sqlite__since,
    .private_convs = store_sqlite__private_convs,
    .user_claim = store_sqlite__user_claim,
    .user_ensure = store_sqlite__user_ensure,
    .user_get = store_sqlite__user_get,
    .user_find = store_sqlite__user_find,
    .user_rename = store_sqlite__user_rename,
    .user_touch = store_sqlite__user_touch,
    .user_purge = store_sqlite__user_purge,
    .secret_get = store_sqlite__secret_get,
    .member_add = store_sqlite__member_add,
    .member_remove = store_sqlite__member_remove,
    .member_rooms = store_sqlite__member_rooms,
    .room_members = store_sqlite__room_members,
    .direct_convs = store_sqlite__direct_convs,
    .read_mark = store_sqlite__read_mark,
    .read_get = store_sqlite__read_get,
    .conversations = store_op__conversations,
    .msg_get = store_sqlite__msg_get,
    .msg_edit = store_sqlite__msg_edit,
    .msg_delete = store_sqlite__msg_delete,
    .reaction = store_sqlite__reaction,
    .member_role_set = store_sqlite__member_role_set,
    .room_info = store_sqlite__room_info,
    .room_topic = store_sqlite__room_topic,
    .flag = store_sqlite__flag,
    .room_delete = store_sqlite__room_delete,
};
