/* store_sqlite_int.h - the SQLite store's internals shared by its files:
 * store_sqlite.c (open, the turn's transaction and completion FIFO, rooms
 * and messages), store_sqlite_users.c (contract v2: users, secrets,
 * membership, read state, roles) and store_sqlite_msgs.c (messages that
 * live). Internal to src/store/: the chat layer sees store.h only. The
 * statements' SQL is in store_sqlite.c (up to STORE_SQLITE__ROOMS_FIRST)
 * and store_sqlite_rooms.c (from it on), prepared at open in the order of
 * the enum below. */
#ifndef PARLEY_STORE_SQLITE_INT_H
#define PARLEY_STORE_SQLITE_INT_H

#include <sqlite3.h>

#include "store/store.h"
#include "store/store_op.h"
#include "store/store_sqlite_ckpt.h"

/* The prepared statements (store_sqlite__sql). */
enum {
    STORE_SQLITE__BEGIN,
    STORE_SQLITE__COMMIT,
    STORE_SQLITE__ROLLBACK,
    STORE_SQLITE__SAVEPOINT,
    STORE_SQLITE__RELEASE,
    STORE_SQLITE__ROLLBACK_TO,
    STORE_SQLITE__ROOM_ADD,
    STORE_SQLITE__ROOM_GET,
    STORE_SQLITE__ROOM_LIST,
    STORE_SQLITE__CONV_GET,
    STORE_SQLITE__CONV_ADD,
    STORE_SQLITE__MSG_ADD,
    STORE_SQLITE__MSG_CONV,
    STORE_SQLITE__HISTORY,
    STORE_SQLITE__DEDUPE_PUT,
    STORE_SQLITE__DEDUPE_GET,
    STORE_SQLITE__DEDUPE_PURGE,
    STORE_SQLITE__SINCE,
    STORE_SQLITE__PRIVATE_CONVS,
    /* contract v2 (store_sqlite_users.c) */
    STORE_SQLITE__USER_BY_ID,
    STORE_SQLITE__USER_BY_KEY,
    STORE_SQLITE__USER_ADD,
    STORE_SQLITE__USER_SEEN,
    STORE_SQLITE__USER_RENAME,
    STORE_SQLITE__USER_EXPIRED,
    STORE_SQLITE__USER_DEL,
    STORE_SQLITE__USER_DEL_MEMBERS,
    STORE_SQLITE__USER_DEL_READS,
    STORE_SQLITE__CONV_DEL_MSGS,
    STORE_SQLITE__CONV_DEL_READS,
    STORE_SQLITE__CONV_DEL,
    STORE_SQLITE__SECRET_GET,
    STORE_SQLITE__SECRET_ADD,
    STORE_SQLITE__MEMBER_ADD,
    STORE_SQLITE__MEMBER_DEL,
    STORE_SQLITE__MEMBER_ROOMS,
    STORE_SQLITE__ROOM_MEMBERS,
    STORE_SQLITE__DIRECT_CONVS,
    STORE_SQLITE__MSG_NEWEST,
    STORE_SQLITE__READ_GET,
    STORE_SQLITE__READ_PUT,
    STORE_SQLITE__READ_SCAN,
    /* from here on, the SQL is in store_sqlite_rooms.c: messages that
     * live (store_sqlite_msgs.c), roles (store_sqlite_users.c), rooms'
     * settings, flags and deletion (store_sqlite_rooms.c) */
    STORE_SQLITE__ROOMS_FIRST,
    STORE_SQLITE__MSG_GET = STORE_SQLITE__ROOMS_FIRST,
    STORE_SQLITE__MSG_STATE,
    STORE_SQLITE__MSG_EDIT,
    STORE_SQLITE__MSG_DELETE,
    STORE_SQLITE__MSG_REACTS,
    STORE_SQLITE__REACT_GET,
    STORE_SQLITE__REACT_EMOJI,
    STORE_SQLITE__REACT_ADD,
    STORE_SQLITE__REACT_DEL,
    STORE_SQLITE__REACT_DEL_ALL,
    STORE_SQLITE__MEMBER_SUCCEED,
    STORE_SQLITE__USER_SUCCEED,
    STORE_SQLITE__MEMBER_ROLE,
    STORE_SQLITE__ROLE_PUT,
    STORE_SQLITE__ROLE_DEMOTE,
    STORE_SQLITE__ROOM_SET,
    STORE_SQLITE__ROOM_INFO,
    STORE_SQLITE__ROOM_TOPIC,
    STORE_SQLITE__FLAG_SET,
    STORE_SQLITE__FLAG_DEL,
    STORE_SQLITE__FLAG_GET,
    STORE_SQLITE__ROOM_DEL,
    STORE_SQLITE__ROOM_DEL_MEMBERS,
    STORE_SQLITE__ROOM_DEL_FLAGS,
    STORE_SQLITE__FLAG_INVITE_USED,
    STORE_SQLITE__NSTMT
};

/* A message as it is now (store_sqlite__msg_row): the row m, and o, the
 * message it replies to (same conversation), for the excerpt. */
#define STORE_SQLITE__MSG_COLS                                                              \
    "SELECT m.id, m.sender, m.recipient, m.content, m.ts_ms, m.sender_id, m.reply_to,"     \
    " m.edited_ms, m.deleted, m.reacts, o.sender, o.content, o.deleted, m.action, m.target"  \
    " FROM messages AS m"
#define STORE_SQLITE__MSG_REPLY                                                             \
    " LEFT JOIN messages AS o ON o.id = m.reply_to AND o.conv_id = m.conv_id"

/* One operation, done, waiting for its commit and callback. */
typedef struct store_sqlite__op {
    struct store_sqlite__op *next;
    uint64_t batch; /* serial of the transaction it ran in; 0: none */
    int rc;
    store_op_call call;
    store_op_result res;
} store_sqlite__op;

typedef struct {
    struct store base; /* first: a store_t * is a store_sqlite * */
    sqlite3 *db;
    sqlite3_stmt *stmt[STORE_SQLITE__NSTMT];
    store_sqlite__ckpt *ckpt;       /* WAL checkpoints on their own thread */
    turn_t *turn;           /* NULL: ops complete inline */
    turn_hook drain;        /* TURN_STORE: commit, then complete */
    uint64_t batch;         /* serial of the open transaction; 0: none */
    uint64_t batches;       /* serials given so far */
    store_sqlite__op *head, *tail; /* done, waiting (start order) */
    store_sqlite__op *spare;       /* recycled records */
    unsigned nspare;
    int scrub;              /* a delete ran: truncate the WAL after the
                               commit (store_sqlite_msgs.c) */
} store_sqlite;

static inline store_sqlite *store_sqlite__self(store_t *s)
{
    return (store_sqlite *)s;
}

/* Logs the database's last error for `what`; returns STORE_EIO. */
int store_sqlite__fail(sqlite3 *db, const char *what);
/* The statement `which`, reset and unbound, ready for new bindings. */
sqlite3_stmt *store_sqlite__stmt(store_sqlite *st, int which);
/* Resets stmt: no read transaction held open between calls. */
void store_sqlite__done(sqlite3_stmt *stmt);
int store_sqlite__bind_text(sqlite3_stmt *stmt, int i, const char *s, size_t n);
/* A caller-owned copy of text column i, or NULL for SQL NULL: 0 or
 * STORE_EIO. */
int store_sqlite__column_text(sqlite3_stmt *stmt, int i, char **out, size_t *len);
/* Runs a statement that returns no row: 0 or STORE_EIO. */
int store_sqlite__exec(store_sqlite *st, sqlite3_stmt *stmt, const char *what);
/* Steps stmt to its end, one element of `size` bytes per row (see
 * store_sqlite.c). */
int store_sqlite__collect(store_sqlite *st, sqlite3_stmt *stmt, size_t size,
                          int (*row)(sqlite3_stmt *, void *), const char *what, void **out,
                          size_t *n);
/* The same on statement `which` with `key` bound as its one parameter
 * (a failed bind is logged as "<what> bind" and is STORE_EIO). */
int store_sqlite__collect_by_key(store_sqlite *st, int which, const char *key, size_t size,
                                 int (*row)(sqlite3_stmt *, void *), const char *what,
                                 void **out, size_t *n);
/* Message ids: the decimal rowid, and its strict parse (STORE_EBADID). */
void store_sqlite__format_id(int64_t rowid, char out[STORE_ID_MAX]);
int store_sqlite__parse_id(const char *s, int64_t *out);
/* Op records: a new one for call; its result emptied; submitted once done
 * (it then waits for the turn's commit and its callback). */
store_sqlite__op *store_sqlite__op_new(store_sqlite *st, store_op_call call);
void store_sqlite__op_clear(store_sqlite__op *op);
void store_sqlite__submit(store_sqlite *st, store_sqlite__op *op);
/* A write op runs between these two (a savepoint in the turn's
 * transaction): write_end keeps its writes (rc 0) or undoes them. */
int store_sqlite__write_begin(store_sqlite *st);
int store_sqlite__write_end(store_sqlite *st, int rc);
int store_sqlite__batch_begin(store_sqlite *st);
/* The id of conversation conv: 0, STORE_ENOTFOUND or STORE_EIO. */
int store_sqlite__conv_get(store_sqlite *st, const char *conv, int64_t *id);
/* A row of STORE_SQLITE__MSG_COLS into m, zeroed, the message as it is
 * now (its reactions read with REACT_GET): 0 or STORE_EIO
 * (store_sqlite_msgs.c). */
int store_sqlite__msg_row(store_sqlite *st, sqlite3_stmt *stmt, store_msg_t *m);
/* A reply's target: reply_to must be a message of conversation conv_id.
 * 0 and its rowid, STORE_EBADID (malformed), STORE_ENOTFOUND, STORE_EIO. */
int store_sqlite__reply_check(store_sqlite *st, int64_t conv_id, const char *reply_to,
                              int64_t *out);

/* The v2 operations (store_sqlite_users.c), for the ops table. */
void store_sqlite__user_claim(store_t *s, const char *key, const char *name, int64_t now_ms,
                              int64_t ttl_ms, store_user_cb cb, void *ud);
void store_sqlite__user_ensure(store_t *s, const char *key, const char *name, int64_t now_ms,
                               store_user_cb cb, void *ud);
void store_sqlite__user_get(store_t *s, const char *id, int64_t now_ms, int64_t ttl_ms,
                            store_user_cb cb, void *ud);
void store_sqlite__user_find(store_t *s, const char *key, int64_t now_ms, int64_t ttl_ms,
                             store_user_cb cb, void *ud);
void store_sqlite__user_rename(store_t *s, const char *id, const char *key, const char *name,
                               int64_t now_ms, int64_t ttl_ms, store_user_cb cb, void *ud);
void store_sqlite__user_touch(store_t *s, const char *id, int64_t now_ms, store_count_cb cb,
                              void *ud);
void store_sqlite__user_purge(store_t *s, int64_t now_ms, int64_t ttl_ms, store_count_cb cb,
                              void *ud);
void store_sqlite__secret_get(store_t *s, const char *name, size_t len, store_secret_cb cb,
                              void *ud);
void store_sqlite__member_add(store_t *s, const char *room_key, const char *user_id,
                              int64_t now_ms, store_count_cb cb, void *ud);
void store_sqlite__member_remove(store_t *s, const char *room_key, const char *user_id,
                                 store_count_cb cb, void *ud);
void store_sqlite__member_rooms(store_t *s, const char *user_id, store_room_list_cb cb,
                                void *ud);
void store_sqlite__room_members(store_t *s, const char *room_key, store_member_list_cb cb,
                                void *ud);
void store_sqlite__direct_convs(store_t *s, const char *user_id, store_conv_list_cb cb,
                                void *ud);
void store_sqlite__read_mark(store_t *s, const char *user_id, const char *conv,
                             const char *msg_id, store_read_cb cb, void *ud);
void store_sqlite__read_get(store_t *s, const char *user_id, const char *conv,
                            store_read_cb cb, void *ud);
/* The SQL of the statements from STORE_SQLITE__ROOMS_FIRST on. */
extern const char *const store_sqlite__sql_rooms[];
/* A room just created: its settings and owner (store_room_create_with). */
int store_sqlite__room_settle(store_sqlite *st, const char *key, const store_room_opts_t *opts);
void store_sqlite__room_info(store_t *s, const char *key, store_room_info_cb cb, void *ud);
void store_sqlite__room_topic(store_t *s, const char *key, const char *topic, store_count_cb cb,
                              void *ud);
void store_sqlite__room_delete(store_t *s, const char *key, store_count_cb cb, void *ud);
void store_sqlite__flag(store_t *s, const char *room_key, const char *user_id, int kind, int op,
                        int64_t ms, store_count_cb cb, void *ud);
/* Runs `which` bound to text ?1: 0 or STORE_EIO (store_sqlite_users.c). */
int store_sqlite__exec_text(store_sqlite *st, int which, const char *v, const char *what);
void store_sqlite__member_role_set(store_t *s, const char *room_key, const char *user_id,
                                   int role, store_count_cb cb, void *ud);
/* Messages that live (store_sqlite_msgs.c). */
void store_sqlite__msg_get(store_t *s, const char *conv, const char *id, store_msg_cb cb,
                           void *ud);
void store_sqlite__msg_edit(store_t *s, const char *conv, const char *id, const char *content,
                            size_t content_len, int64_t now_ms, store_msg_cb cb, void *ud);
void store_sqlite__msg_delete(store_t *s, const char *conv, const char *id, store_msg_cb cb,
                              void *ud);
void store_sqlite__reaction(store_t *s, const char *conv, const char *id, const char *user_id,
                            const char *username, const char *emoji, int add, store_msg_cb cb,
                            void *ud);

#endif
