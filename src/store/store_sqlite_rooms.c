/* store_sqlite_rooms.c - rooms with owners, on the SQLite store (contract
 * v2): a room's settings (private, topic: columns of rooms, schema 6), its
 * owner at creation, and the flags per room and user (bans, mutes,
 * invitations: the room_flags table, one row per room, user and kind,
 * with a deadline checked when read). Roles and the succession of owners
 * are members.role, written by store_sqlite_users.c. The statements from
 * STORE_SQLITE__ROOMS_FIRST on are here (those of store_sqlite_msgs.c and
 * of the roles too, which did not fit store_sqlite.c), prepared at open
 * with the rest. */
#include "store/store_sqlite_int.h"

#include "util/mem.h"

/* STORE_FLAG_INVITE, in SQL. */
#define STORE_SQLITE__INVITE_TXT "3"
_Static_assert(STORE_FLAG_INVITE == 3, "STORE_SQLITE__INVITE_TXT");
/* The designator of statement NAME in store_sqlite__sql_rooms. */
#define SQ(NAME) [STORE_SQLITE__##NAME - STORE_SQLITE__ROOMS_FIRST]

const char *const store_sqlite__sql_rooms[STORE_SQLITE__NSTMT - STORE_SQLITE__ROOMS_FIRST] = {
    /* messages that live (store_sqlite_msgs.c) */
    SQ(MSG_GET) = STORE_SQLITE__MSG_COLS STORE_SQLITE__MSG_REPLY
        " WHERE m.id = ?1 AND m.conv_id = ?2",
    SQ(MSG_STATE) = "SELECT deleted FROM messages WHERE id = ?1 AND conv_id = ?2",
    SQ(MSG_EDIT) = "UPDATE messages SET content = ?3, edited_ms = ?4"
        " WHERE id = ?1 AND conv_id = ?2 AND deleted = 0",
    SQ(MSG_DELETE) = "UPDATE messages SET content = '', deleted = 1, reply_to = NULL,"
        " edited_ms = 0, reacts = 0"
        " WHERE id = ?1 AND conv_id = ?2 AND deleted = 0",
    SQ(MSG_REACTS) = "UPDATE messages SET reacts = reacts + ?2 WHERE id = ?1",
    SQ(REACT_GET) = "SELECT emoji, username FROM reactions WHERE msg_id = ?1"
        " ORDER BY id",
    SQ(REACT_EMOJI) = "SELECT COUNT(DISTINCT emoji), COALESCE(SUM(emoji = ?2), 0)"
        " FROM reactions WHERE msg_id = ?1",
    SQ(REACT_ADD) = "INSERT INTO reactions(msg_id, emoji, user_id, username)"
        " VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
    SQ(REACT_DEL) = "DELETE FROM reactions"
        " WHERE msg_id = ?1 AND emoji = ?2 AND user_id = ?3",
    SQ(REACT_DEL_ALL) = "DELETE FROM reactions WHERE msg_id = ?1",
    /* before the owner ?2 of ?1 leaves: the longest-standing moderator,
     * else member, becomes the owner */
    SQ(MEMBER_SUCCEED) =
        "UPDATE members SET role = 'owner' WHERE id = (SELECT id FROM members"
        " WHERE room_key = ?1 AND user_id <> ?2 ORDER BY role = 'moderator' DESC, id LIMIT 1)"
        " AND EXISTS (SELECT 1 FROM members WHERE room_key = ?1 AND user_id = ?2"
        " AND role = 'owner')",
    /* the same for every room user ?1 owns, before its memberships go */
    SQ(USER_SUCCEED) =
        "UPDATE members SET role = 'owner' WHERE id IN (SELECT (SELECT n.id FROM members AS n"
        " WHERE n.room_key = o.room_key AND n.user_id <> ?1"
        " ORDER BY n.role = 'moderator' DESC, n.id LIMIT 1)"
        " FROM members AS o WHERE o.user_id = ?1 AND o.role = 'owner')",
    SQ(MEMBER_ROLE) = "SELECT role FROM members WHERE room_key = ?1 AND user_id = ?2",
    SQ(ROLE_PUT) = "UPDATE members SET role = ?3 WHERE room_key = ?1 AND user_id = ?2",
    SQ(ROLE_DEMOTE) = "UPDATE members SET role = 'moderator'"
        " WHERE room_key = ?1 AND role = 'owner'",
    SQ(ROOM_SET) = "UPDATE rooms SET private = ?2, topic = ?3 WHERE key = ?1",
    SQ(ROOM_INFO) = "SELECT name, private, topic FROM rooms WHERE key = ?1",
    SQ(ROOM_TOPIC) = "UPDATE rooms SET topic = ?2 WHERE key = ?1",
    SQ(FLAG_SET) =
        "INSERT INTO room_flags(room_key, user_id, kind, until_ms) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT(room_key, user_id, kind) DO UPDATE SET until_ms = excluded.until_ms",
    SQ(FLAG_DEL) = "DELETE FROM room_flags WHERE room_key = ?1 AND user_id = ?2 AND kind = ?3",
    SQ(FLAG_GET) =
        "SELECT until_ms FROM room_flags WHERE room_key = ?1 AND user_id = ?2 AND kind = ?3",
    SQ(ROOM_DEL) = "DELETE FROM rooms WHERE key = ?1",
    SQ(ROOM_DEL_MEMBERS) = "DELETE FROM members WHERE room_key = ?1",
    SQ(ROOM_DEL_FLAGS) = "DELETE FROM room_flags WHERE room_key = ?1",
    SQ(FLAG_INVITE_USED) = "DELETE FROM room_flags WHERE room_key = ?1 AND user_id = ?2"
        " AND kind = " STORE_SQLITE__INVITE_TXT,
};

int store_sqlite__room_settle(store_sqlite *st, const char *key, const store_room_opts_t *opts)
{
    const char *topic = opts->topic ? opts->topic : "";
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__ROOM_SET);
    if (store_sqlite__bind_text(stmt, 1, key, strlen(key)) != SQLITE_OK ||
        sqlite3_bind_int(stmt, 2, opts->is_private ? 1 : 0) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 3, topic, strlen(topic)) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "room settings bind");
    }
    int rc = store_sqlite__exec(st, stmt, "room settings");
    if (rc < 0 || opts->owner_id == NULL)
        return rc;
    /* the creator joins, and owns it whoever joined first */
    stmt = store_sqlite__stmt(st, STORE_SQLITE__MEMBER_ADD);
    if (store_sqlite__bind_text(stmt, 1, key, strlen(key)) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 2, opts->owner_id, strlen(opts->owner_id)) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 3, opts->now_ms) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "room owner bind");
    }
    rc = store_sqlite__exec(st, stmt, "room owner");
    if (rc == 0)
        rc = store_sqlite__exec_text(st, STORE_SQLITE__ROLE_DEMOTE, key, "room owner");
    if (rc < 0)
        return rc;
    stmt = store_sqlite__stmt(st, STORE_SQLITE__ROLE_PUT);
    if (store_sqlite__bind_text(stmt, 1, key, strlen(key)) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 2, opts->owner_id, strlen(opts->owner_id)) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 3, "owner", 5) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "room owner bind");
    }
    return store_sqlite__exec(st, stmt, "room owner");
}

static int store_sqlite__info_read(store_sqlite *st, const char *key, store_room_info_t *out)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__ROOM_INFO);
    int rc;
    if (store_sqlite__bind_text(stmt, 1, key, strlen(key)) != SQLITE_OK) {
        rc = store_sqlite__fail(st->db, "room info bind");
        goto cleanup;
    }
    int step = sqlite3_step(stmt);
    if (step == SQLITE_DONE) {
        rc = STORE_ENOTFOUND;
    } else if (step != SQLITE_ROW ||
               store_sqlite__column_text(stmt, 0, &out->name, NULL) < 0 ||
               store_sqlite__column_text(stmt, 2, &out->topic, NULL) < 0 || !out->name ||
               !out->topic) {
        rc = store_sqlite__fail(st->db, "room info");
    } else {
        out->is_private = sqlite3_column_int(stmt, 1) != 0;
        rc = 0;
    }
cleanup:
    store_sqlite__done(stmt);
    return rc;
}

void store_sqlite__room_info(store_t *s, const char *key, store_room_info_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_INFO(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    op->rc = store_sqlite__info_read(st, key, &op->res.info);
    if (op->rc != 0)
        store_sqlite__op_clear(op);
    store_sqlite__submit(st, op);
}

/* Completes a write op with rc (its writes kept or undone). */
static void store_sqlite__rooms_done(store_sqlite *st, store_sqlite__op *op, int rc)
{
    op->rc = store_sqlite__write_end(st, rc);
    if (op->rc != 0)
        store_sqlite__op_clear(op);
    store_sqlite__submit(st, op);
}

void store_sqlite__room_topic(store_t *s, const char *key, const char *topic, store_count_cb cb,
                              void *ud)
{
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    int rc = store_sqlite__write_begin(st);
    if (rc == 0) {
        sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__ROOM_TOPIC);
        if (store_sqlite__bind_text(stmt, 1, key, strlen(key)) != SQLITE_OK ||
            store_sqlite__bind_text(stmt, 2, topic, strlen(topic)) != SQLITE_OK) {
            store_sqlite__done(stmt);
            rc = store_sqlite__fail(st->db, "room topic bind");
        } else {
            rc = store_sqlite__exec(st, stmt, "room topic");
        }
    }
    if (rc == 0 && sqlite3_changes(st->db) == 0)
        rc = STORE_ENOTFOUND;
    op->res.count = rc == 0;
    store_sqlite__rooms_done(st, op, rc);
}

/* Runs flag statement `which` for (room, user, kind) [, until]: for GET,
 * *count is 1 when a flag in force at ms is there; else whether a row
 * changed. */
static int store_sqlite__flag_run(store_sqlite *st, int which, const char *room_key,
                                  const char *user_id, int kind, int64_t ms, uint64_t *count)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, which);
    if (store_sqlite__bind_text(stmt, 1, room_key, strlen(room_key)) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 2, user_id, strlen(user_id)) != SQLITE_OK ||
        sqlite3_bind_int(stmt, 3, kind) != SQLITE_OK ||
        (which == STORE_SQLITE__FLAG_SET && sqlite3_bind_int64(stmt, 4, ms) != SQLITE_OK)) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "flag bind");
    }
    if (which != STORE_SQLITE__FLAG_GET) {
        int rc = store_sqlite__exec(st, stmt, "flag write");
        if (rc == 0)
            *count = sqlite3_changes(st->db) > 0;
        return rc;
    }
    int rc = 0, step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        int64_t until = sqlite3_column_int64(stmt, 0);
        *count = until == 0 || until > ms;
    } else if (step != SQLITE_DONE) {
        rc = store_sqlite__fail(st->db, "flag get");
    }
    store_sqlite__done(stmt);
    return rc;
}

void store_sqlite__flag(store_t *s, const char *room_key, const char *user_id, int kind, int op_,
                        int64_t ms, store_count_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    if (kind < STORE_FLAG_BAN || kind > STORE_FLAG_INVITE || op_ < STORE_FLAG__SET ||
        op_ > STORE_FLAG__CHECK) {
        op->rc = STORE_EINVAL;
        store_sqlite__submit(st, op);
        return;
    }
    if (op_ == STORE_FLAG__CHECK) {
        op->rc = store_sqlite__flag_run(st, STORE_SQLITE__FLAG_GET, room_key, user_id, kind, ms,
                                        &op->res.count);
        if (op->rc != 0)
            store_sqlite__op_clear(op);
        store_sqlite__submit(st, op);
        return;
    }
    int rc = store_sqlite__write_begin(st);
    if (rc == 0)
        rc = store_sqlite__flag_run(st,
                                    op_ == STORE_FLAG__SET ? STORE_SQLITE__FLAG_SET
                                                           : STORE_SQLITE__FLAG_DEL,
                                    room_key, user_id, kind, ms, &op->res.count);
    store_sqlite__rooms_done(st, op, rc);
}

/* Deletes the conversation conv_id with its messages (their reactions by
 * trigger) and its read state. */
static int store_sqlite__conv_drop(store_sqlite *st, int64_t conv_id)
{
    static const int which[] = {STORE_SQLITE__CONV_DEL_MSGS, STORE_SQLITE__CONV_DEL_READS,
                                STORE_SQLITE__CONV_DEL};
    for (size_t i = 0; i < sizeof(which) / sizeof(which[0]); i++) {
        sqlite3_stmt *stmt = store_sqlite__stmt(st, which[i]);
        if (sqlite3_bind_int64(stmt, 1, conv_id) != SQLITE_OK) {
            store_sqlite__done(stmt);
            return store_sqlite__fail(st->db, "room delete bind");
        }
        int rc = store_sqlite__exec(st, stmt, "room delete history");
        if (rc < 0)
            return rc;
    }
    return 0;
}

void store_sqlite__room_delete(store_t *s, const char *key, store_count_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    char *conv = store_conv_room(key);
    int64_t conv_id = 0;
    int rc = store_sqlite__write_begin(st);
    if (rc == 0)
        rc = store_sqlite__exec_text(st, STORE_SQLITE__ROOM_DEL, key, "room delete");
    if (rc == 0 && sqlite3_changes(st->db) == 0)
        rc = STORE_ENOTFOUND;
    if (rc == 0)
        rc = store_sqlite__exec_text(st, STORE_SQLITE__ROOM_DEL_MEMBERS, key, "room delete");
    if (rc == 0)
        rc = store_sqlite__exec_text(st, STORE_SQLITE__ROOM_DEL_FLAGS, key, "room delete");
    if (rc == 0) {
        rc = store_sqlite__conv_get(st, conv, &conv_id);
        if (rc == 0) {
            rc = store_sqlite__conv_drop(st, conv_id);
            st->scrub = 1; /* its texts leave the WAL too (store_sqlite_msgs.c) */
        } else if (rc == STORE_ENOTFOUND) { /* no message ever */
            rc = 0;
        }
    }
    op->res.count = rc == 0;
    mem_free(conv);
    store_sqlite__rooms_done(st, op, rc);
}
