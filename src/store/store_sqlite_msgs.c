/* store_sqlite_msgs.c - messages that live, on the SQLite store (contract
 * v2): a message as it is now (edits, tombstones, replies, reactions),
 * store_msg_get, store_msg_edit, store_msg_delete and the reactions. The
 * statements are in store_sqlite.c; a message row carries reply_to,
 * edited_ms, deleted and reacts (its count of reactions, so that a page
 * reads the reactions table only for messages that have some); the
 * reactions table holds one row per user and emoji, its rowid the order of
 * use. An edit or a reaction is one savepoint; counts are the database's
 * (a transaction per write), so two stores on one file never lose one.
 *
 * What a delete guarantees (the deleted text is gone from the store):
 * the row's content, reply and edit time are overwritten and its reactions
 * deleted in one transaction; PRAGMA secure_delete (set at open) makes
 * SQLite overwrite the freed bytes with zeros in the page, and in the
 * overflow pages a long text had; the commit of a delete is followed by a
 * TRUNCATE checkpoint (store_sqlite__scrub in store_sqlite.c), which
 * copies the zeroed pages into parley.db and empties parley.db-wal, where
 * older frames still held the text. When that checkpoint cannot run (a
 * reader of another process holds the WAL) it is retried after each
 * commit until it does; until then the text is still in the WAL file.
 * Not covered: copies outside the database (backups, file system
 * snapshots, blocks of the truncated WAL the file system has not reused),
 * and the content an edit replaced, which secure_delete zeroes in the
 * page but the WAL keeps until it is restarted by the checkpointer. */
#include "store/store_sqlite_int.h"

#include "util/log.h"
#include "util/mem.h"

/* Reads the reactions of message msg_id into m's summary. */
static int store_sqlite__reactions_read(store_sqlite *st, int64_t msg_id, store_msg_t *m)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__REACT_GET);
    int rc = 0, step;
    if (sqlite3_bind_int64(stmt, 1, msg_id) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "reactions bind");
    }
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        const unsigned char *e = sqlite3_column_text(stmt, 0);
        size_t en = (size_t)sqlite3_column_bytes(stmt, 0);
        const unsigned char *u = sqlite3_column_text(stmt, 1);
        size_t un = (size_t)sqlite3_column_bytes(stmt, 1);
        if (e == NULL || u == NULL) {
            step = SQLITE_ERROR;
            break;
        }
        store_op__reaction_push(m, (const char *)e, en, (const char *)u, un);
    }
    if (step != SQLITE_DONE)
        rc = store_sqlite__fail(st->db, "reactions");
    store_sqlite__done(stmt);
    return rc;
}

/* The reply part of a row: reply_to (6), o.sender (10), o.content (11),
 * o.deleted (12). */
static int store_sqlite__reply_cols(sqlite3_stmt *stmt, store_msg_t *m)
{
    if (sqlite3_column_type(stmt, 6) == SQLITE_NULL)
        return 0;
    char id[STORE_ID_MAX];
    store_sqlite__format_id(sqlite3_column_int64(stmt, 6), id);
    m->reply_id = mem_strdup(id);
    if (sqlite3_column_type(stmt, 10) == SQLITE_NULL) { /* gone */
        m->reply_from = mem_strdup("");
        m->reply_excerpt = mem_strdup("");
        return 0;
    }
    if (store_sqlite__column_text(stmt, 10, &m->reply_from, NULL) < 0 || !m->reply_from)
        return STORE_EIO;
    if (sqlite3_column_int64(stmt, 12)) {
        m->reply_excerpt = mem_strdup("");
        return 0;
    }
    const unsigned char *c = sqlite3_column_text(stmt, 11);
    if (c == NULL)
        return STORE_EIO;
    m->reply_excerpt =
        store_op__excerpt((const char *)c, (size_t)sqlite3_column_bytes(stmt, 11));
    return 0;
}

int store_sqlite__msg_row(store_sqlite *st, sqlite3_stmt *stmt, store_msg_t *m)
{
    int64_t rowid = sqlite3_column_int64(stmt, 0);
    store_sqlite__format_id(rowid, m->id);
    m->ts_ms = sqlite3_column_int64(stmt, 4);
    m->edited_ms = sqlite3_column_int64(stmt, 7);
    m->deleted = sqlite3_column_int64(stmt, 8) != 0;
    if (store_sqlite__column_text(stmt, 1, &m->from, NULL) < 0 ||
        store_sqlite__column_text(stmt, 2, &m->to, NULL) < 0 ||
        store_sqlite__column_text(stmt, 3, &m->content, &m->content_len) < 0 ||
        store_sqlite__column_text(stmt, 5, &m->from_id, NULL) < 0 || !m->from ||
        !m->content || store_sqlite__reply_cols(stmt, m) < 0 ||
        store_sqlite__column_text(stmt, 13, &m->action, NULL) < 0 ||
        store_sqlite__column_text(stmt, 14, &m->user, NULL) < 0)
        return STORE_EIO;
    if (sqlite3_column_int64(stmt, 9) > 0)
        return store_sqlite__reactions_read(st, rowid, m);
    return 0;
}

int store_sqlite__reply_check(store_sqlite *st, int64_t conv_id, const char *reply_to,
                              int64_t *out)
{
    if (store_sqlite__parse_id(reply_to, out) < 0)
        return STORE_EBADID;
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__MSG_STATE);
    int rc;
    if (sqlite3_bind_int64(stmt, 1, *out) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, conv_id) != SQLITE_OK) {
        rc = store_sqlite__fail(st->db, "message state bind");
    } else {
        int step = sqlite3_step(stmt);
        rc = step == SQLITE_ROW    ? 0
             : step == SQLITE_DONE ? STORE_ENOTFOUND
                                   : store_sqlite__fail(st->db, "message state");
    }
    store_sqlite__done(stmt);
    return rc;
}

/* Where an op finds its message: the conversation's id and the message's
 * rowid, or STORE_EBADID / STORE_ENOTFOUND / STORE_EIO. */
static int store_sqlite__msg_locate(store_sqlite *st, const char *conv, const char *id,
                                    int64_t *conv_id, int64_t *rowid)
{
    if (store_sqlite__parse_id(id, rowid) < 0)
        return STORE_EBADID;
    return store_sqlite__conv_get(st, conv, conv_id);
}

/* The message rowid of conv_id as it is now into *m: 0, STORE_ENOTFOUND
 * or STORE_EIO. */
static int store_sqlite__msg_read(store_sqlite *st, int64_t conv_id, int64_t rowid,
                                  store_msg_t *m)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__MSG_GET);
    int rc;
    memset(m, 0, sizeof(*m));
    if (sqlite3_bind_int64(stmt, 1, rowid) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, conv_id) != SQLITE_OK) {
        rc = store_sqlite__fail(st->db, "message get bind");
        goto cleanup;
    }
    int step = sqlite3_step(stmt);
    if (step == SQLITE_DONE)
        rc = STORE_ENOTFOUND;
    else if (step != SQLITE_ROW)
        rc = store_sqlite__fail(st->db, "message get");
    else if (store_sqlite__msg_row(st, stmt, m) < 0)
        rc = store_sqlite__fail(st->db, "message get column");
    else
        rc = 0;
cleanup:
    store_sqlite__done(stmt);
    if (rc < 0)
        store_msg_free(m);
    return rc;
}

/* Completes op after a write (rc from the write; the message read back). */
static void store_sqlite__msg_done(store_sqlite *st, store_sqlite__op *op, int rc)
{
    op->rc = store_sqlite__write_end(st, rc);
    if (op->rc != 0)
        store_sqlite__op_clear(op);
    store_sqlite__submit(st, op);
}

void store_sqlite__msg_get(store_t *s, const char *conv, const char *id, store_msg_cb cb,
                           void *ud)
{
    store_op_call call = STORE_OP_CALL_MSG(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    int64_t conv_id = 0, rowid = 0;
    op->rc = store_sqlite__msg_locate(st, conv, id, &conv_id, &rowid);
    if (op->rc == 0)
        op->rc = store_sqlite__msg_read(st, conv_id, rowid, &op->res.msg.msg);
    if (op->rc != 0)
        store_sqlite__op_clear(op);
    store_sqlite__submit(st, op);
}

/* Runs an UPDATE of message rowid (?1) of conv_id (?2), bound further by
 * the caller; no row changed: STORE_ENOTFOUND. */
static int store_sqlite__msg_update(store_sqlite *st, sqlite3_stmt *stmt, int64_t conv_id,
                                    int64_t rowid, const char *what)
{
    if (sqlite3_bind_int64(stmt, 1, rowid) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, conv_id) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, what);
    }
    int rc = store_sqlite__exec(st, stmt, what);
    if (rc == 0 && sqlite3_changes(st->db) == 0)
        rc = STORE_ENOTFOUND;
    return rc;
}

void store_sqlite__msg_edit(store_t *s, const char *conv, const char *id, const char *content,
                            size_t content_len, int64_t now_ms, store_msg_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_MSG(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    int64_t conv_id = 0, rowid = 0;
    int rc = store_sqlite__write_begin(st);
    if (rc == 0)
        rc = store_sqlite__msg_locate(st, conv, id, &conv_id, &rowid);
    if (rc == 0) {
        sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__MSG_EDIT);
        if (store_sqlite__bind_text(stmt, 3, content, content_len) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 4, now_ms) != SQLITE_OK) {
            store_sqlite__done(stmt);
            rc = store_sqlite__fail(st->db, "message edit bind");
        } else {
            rc = store_sqlite__msg_update(st, stmt, conv_id, rowid, "message edit");
        }
    }
    if (rc == 0)
        rc = store_sqlite__msg_read(st, conv_id, rowid, &op->res.msg.msg);
    op->res.msg.changed = rc == 0;
    store_sqlite__msg_done(st, op, rc);
}

/* Deletes the reactions of message rowid. */
static int store_sqlite__reactions_drop(store_sqlite *st, int64_t rowid)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__REACT_DEL_ALL);
    if (sqlite3_bind_int64(stmt, 1, rowid) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "reactions drop bind");
    }
    return store_sqlite__exec(st, stmt, "reactions drop");
}

void store_sqlite__msg_delete(store_t *s, const char *conv, const char *id, store_msg_cb cb,
                              void *ud)
{
    store_op_call call = STORE_OP_CALL_MSG(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    int64_t conv_id = 0, rowid = 0;
    int rc = store_sqlite__write_begin(st);
    if (rc == 0)
        rc = store_sqlite__msg_locate(st, conv, id, &conv_id, &rowid);
    if (rc == 0) {
        rc = store_sqlite__msg_update(st, store_sqlite__stmt(st, STORE_SQLITE__MSG_DELETE),
                                      conv_id, rowid, "message delete");
        if (rc == 0) {
            op->res.msg.changed = 1;
            st->scrub = 1;
            rc = store_sqlite__reactions_drop(st, rowid);
        } else if (rc == STORE_ENOTFOUND) { /* unknown, or a tombstone already */
            rc = 0;
        }
    }
    if (rc == 0)
        rc = store_sqlite__msg_read(st, conv_id, rowid, &op->res.msg.msg);
    store_sqlite__msg_done(st, op, rc);
}

/* The message's state for a reaction: 0 (a live message), STORE_ENOTFOUND
 * (none, or a tombstone) or STORE_EIO. */
static int store_sqlite__msg_live(store_sqlite *st, int64_t conv_id, int64_t rowid)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__MSG_STATE);
    int rc;
    if (sqlite3_bind_int64(stmt, 1, rowid) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, conv_id) != SQLITE_OK) {
        rc = store_sqlite__fail(st->db, "message state bind");
    } else {
        int step = sqlite3_step(stmt);
        if (step == SQLITE_ROW)
            rc = sqlite3_column_int64(stmt, 0) ? STORE_ENOTFOUND : 0;
        else
            rc = step == SQLITE_DONE ? STORE_ENOTFOUND
                                     : store_sqlite__fail(st->db, "message state");
    }
    store_sqlite__done(stmt);
    return rc;
}

/* How many distinct emoji message rowid has, and whether emoji is one. */
static int store_sqlite__emoji_count(store_sqlite *st, int64_t rowid, const char *emoji,
                                     int64_t *distinct, int64_t *has)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__REACT_EMOJI);
    int rc = 0;
    if (sqlite3_bind_int64(stmt, 1, rowid) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 2, emoji, strlen(emoji)) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW) {
        rc = store_sqlite__fail(st->db, "reaction emoji");
    } else {
        *distinct = sqlite3_column_int64(stmt, 0);
        *has = sqlite3_column_int64(stmt, 1);
    }
    store_sqlite__done(stmt);
    return rc;
}

/* Adds (add) or removes the reaction; *changed says whether it did. */
static int store_sqlite__reaction_write(store_sqlite *st, int64_t rowid, const char *user_id,
                                        const char *username, const char *emoji, int add,
                                        int *changed)
{
    int64_t distinct = 0, has = 0;
    int rc;
    if (add) {
        rc = store_sqlite__emoji_count(st, rowid, emoji, &distinct, &has);
        if (rc == 0 && !has && distinct >= STORE_REACTION_EMOJI_MAX)
            return STORE_ELIMIT;
        if (rc < 0)
            return rc;
    }
    sqlite3_stmt *stmt =
        store_sqlite__stmt(st, add ? STORE_SQLITE__REACT_ADD : STORE_SQLITE__REACT_DEL);
    if (sqlite3_bind_int64(stmt, 1, rowid) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 2, emoji, strlen(emoji)) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 3, user_id, strlen(user_id)) != SQLITE_OK ||
        (add && store_sqlite__bind_text(stmt, 4, username, strlen(username)) != SQLITE_OK)) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "reaction bind");
    }
    rc = store_sqlite__exec(st, stmt, "reaction");
    if (rc < 0 || sqlite3_changes(st->db) == 0)
        return rc;
    *changed = 1;
    stmt = store_sqlite__stmt(st, STORE_SQLITE__MSG_REACTS);
    if (sqlite3_bind_int64(stmt, 1, rowid) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, add ? 1 : -1) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "reaction count bind");
    }
    return store_sqlite__exec(st, stmt, "reaction count");
}

void store_sqlite__reaction(store_t *s, const char *conv, const char *id, const char *user_id,
                            const char *username, const char *emoji, int add, store_msg_cb cb,
                            void *ud)
{
    store_op_call call = STORE_OP_CALL_MSG(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    int64_t conv_id = 0, rowid = 0;
    int rc = store_sqlite__write_begin(st);
    if (rc == 0)
        rc = store_sqlite__msg_locate(st, conv, id, &conv_id, &rowid);
    if (rc == 0)
        rc = store_sqlite__msg_live(st, conv_id, rowid);
    if (rc == 0)
        rc = store_sqlite__reaction_write(st, rowid, user_id, username, emoji, add,
                                          &op->res.msg.changed);
    if (rc == 0)
        rc = store_sqlite__msg_read(st, conv_id, rowid, &op->res.msg.msg);
    store_sqlite__msg_done(st, op, rc);
}
