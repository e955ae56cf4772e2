/* store_sqlite_users.c - contract v2 on the SQLite store: users (the
 * users table: an id, the name's key (unique) and display form, times,
 * guest flag), shared secrets, room membership (members: one row per
 * membership, its rowid the join order, a role column for later), direct
 * conversations by user id and read state (read_state: one mark per user
 * and conversation). The schema is version 4 of store_sqlite.c's
 * migrations; ops run and complete as store_sqlite.c's do (in the turn's
 * transaction, each write in a savepoint of its own, so a user purged by
 * a claim and the new user are one atomic write).
 *
 * Read state is computed when read (store_sqlite__read_scan): the
 * conversation's messages after the mark, newest first through
 * messages_conv_id, stopping at the user's own newest message. Appends
 * write nothing for it but the message's sender_id. */
#include "store/store_sqlite_int.h"

#include <openssl/rand.h>

#include "util/log.h"

/* ---- users --------------------------------------------------------------- */

/* A row (id, key, name, created_ms, seen_ms, guest) into u (zeroed). */
static int store_sqlite__user_row(sqlite3_stmt *stmt, store_user_t *u)
{
    const unsigned char *id = sqlite3_column_text(stmt, 0);
    size_t n = id ? (size_t)sqlite3_column_bytes(stmt, 0) : 0;
    if (id == NULL || n == 0 || n >= STORE_USER_ID_MAX)
        return STORE_EIO;
    memcpy(u->id, id, n + 1);
    u->created_ms = sqlite3_column_int64(stmt, 3);
    u->seen_ms = sqlite3_column_int64(stmt, 4);
    u->guest = sqlite3_column_int(stmt, 5) != 0;
    if (store_sqlite__column_text(stmt, 1, &u->key, NULL) < 0 ||
        store_sqlite__column_text(stmt, 2, &u->name, NULL) < 0 || !u->key || !u->name)
        return STORE_EIO;
    return 0;
}

static void store_sqlite__user_free(store_user_t *u)
{
    mem_free(u->key);
    mem_free(u->name);
    memset(u, 0, sizeof(*u));
}

/* The user whose `which` (USER_BY_ID or USER_BY_KEY) is v into *u (zeroed
 * first; free it with store_sqlite__user_free): 0, STORE_ENOTFOUND or
 * STORE_EIO. Expiry is the caller's. */
static int store_sqlite__user_read(store_sqlite *st, int which, const char *v, store_user_t *u)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, which);
    int rc;
    memset(u, 0, sizeof(*u));
    if (store_sqlite__bind_text(stmt, 1, v, strlen(v)) != SQLITE_OK) {
        rc = store_sqlite__fail(st->db, "user bind");
        goto cleanup;
    }
    int step = sqlite3_step(stmt);
    if (step == SQLITE_DONE)
        rc = STORE_ENOTFOUND;
    else if (step != SQLITE_ROW || store_sqlite__user_row(stmt, u) < 0)
        rc = store_sqlite__fail(st->db, "user get");
    else
        rc = 0;
cleanup:
    store_sqlite__done(stmt);
    if (rc != 0)
        store_sqlite__user_free(u);
    return rc;
}

static int store_sqlite__user_expired(const store_user_t *u, int64_t now_ms, int64_t ttl_ms)
{
    return u->guest && u->seen_ms <= now_ms - ttl_ms;
}

/* Runs `which` bound to one text: 0 or STORE_EIO. */
int store_sqlite__exec_text(store_sqlite *st, int which, const char *v, const char *what)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, which);
    if (store_sqlite__bind_text(stmt, 1, v, strlen(v)) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, what);
    }
    return store_sqlite__exec(st, stmt, what);
}

/* Runs `which` bound to one integer: 0 or STORE_EIO. */
static int store_sqlite__exec_int(store_sqlite *st, int which, int64_t v, const char *what)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, which);
    if (sqlite3_bind_int64(stmt, 1, v) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, what);
    }
    return store_sqlite__exec(st, stmt, what);
}

/* One row of DIRECT_CONVS: its conversation row id. */
static int store_sqlite__conv_id_row(sqlite3_stmt *stmt, void *elem)
{
    *(int64_t *)elem = sqlite3_column_int64(stmt, 1);
    return 0;
}

/* Deletes user id and everything it owns (see store_user_purge), inside
 * the caller's write. Returns 0 or STORE_EIO. */
static int store_sqlite__user_delete(store_sqlite *st, const char *id)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__DIRECT_CONVS);
    void *v = NULL;
    size_t n = 0;
    int rc;
    if (store_sqlite__bind_text(stmt, 1, id, strlen(id)) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "user delete bind");
    }
    rc = store_sqlite__collect(st, stmt, sizeof(int64_t), store_sqlite__conv_id_row,
                               "user delete convs", &v, &n);
    const int64_t *convs = v;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = store_sqlite__exec_int(st, STORE_SQLITE__CONV_DEL_MSGS, convs[i], "conv delete");
        if (rc == 0)
            rc = store_sqlite__exec_int(st, STORE_SQLITE__CONV_DEL_READS, convs[i],
                                        "conv delete");
        if (rc == 0)
            rc = store_sqlite__exec_int(st, STORE_SQLITE__CONV_DEL, convs[i], "conv delete");
    }
    mem_free(v);
    if (rc == 0) /* its rooms pass to their next owners first */
        rc = store_sqlite__exec_text(st, STORE_SQLITE__USER_SUCCEED, id, "user succeed");
    if (rc == 0)
        rc = store_sqlite__exec_text(st, STORE_SQLITE__USER_DEL_MEMBERS, id, "user delete");
    if (rc == 0)
        rc = store_sqlite__exec_text(st, STORE_SQLITE__USER_DEL_READS, id, "user delete");
    if (rc == 0)
        rc = store_sqlite__exec_text(st, STORE_SQLITE__USER_DEL, id, "user delete");
    return rc;
}

/* Inserts a new user owning key into *u (zeroed by the caller). */
static int store_sqlite__user_insert(store_sqlite *st, const char *key, const char *name,
                                     int64_t now_ms, int guest, store_user_t *u)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__USER_ADD);
    rand_id(u->id);
    if (store_sqlite__bind_text(stmt, 1, u->id, strlen(u->id)) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 2, key, strlen(key)) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 3, name, strlen(name)) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 4, now_ms) != SQLITE_OK ||
        sqlite3_bind_int(stmt, 5, guest) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "user add bind");
    }
    int rc = store_sqlite__exec(st, stmt, "user add");
    if (rc == 0) {
        u->key = mem_strdup(key);
        u->name = mem_strdup(name);
        u->created_ms = u->seen_ms = now_ms;
        u->guest = guest;
    }
    return rc;
}

/* Frees key for a new owner: STORE_ETAKEN when a live user other than
 * `self` (NULL: anyone) owns it; its expired owner is deleted. */
static int store_sqlite__key_free(store_sqlite *st, const char *key, const char *self,
                                  int64_t now_ms, int64_t ttl_ms)
{
    store_user_t owner;
    int rc = store_sqlite__user_read(st, STORE_SQLITE__USER_BY_KEY, key, &owner);
    if (rc == STORE_ENOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    if (self && strcmp(owner.id, self) == 0)
        rc = 0;
    else if (!store_sqlite__user_expired(&owner, now_ms, ttl_ms))
        rc = STORE_ETAKEN;
    else
        rc = store_sqlite__user_delete(st, owner.id);
    store_sqlite__user_free(&owner);
    return rc;
}

/* Ends a write op: keeps or undoes its writes, then submits it. */
static void store_sqlite__write_submit(store_sqlite *st, store_sqlite__op *op, int rc)
{
    op->rc = store_sqlite__write_end(st, rc);
    if (op->rc != 0)
        store_sqlite__op_clear(op);
    store_sqlite__submit(st, op);
}

void store_sqlite__user_claim(store_t *s, const char *key, const char *name, int64_t now_ms,
                              int64_t ttl_ms, store_user_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_USER(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    int rc = store_sqlite__write_begin(st);
    if (rc == 0)
        rc = store_sqlite__key_free(st, key, NULL, now_ms, ttl_ms);
    if (rc == 0)
        rc = store_sqlite__user_insert(st, key, name, now_ms, 1, &op->res.user);
    store_sqlite__write_submit(st, op, rc);
}

/* Sets u's seen_ms (stored and in *u) to now_ms. */
static int store_sqlite__user_seen(store_sqlite *st, store_user_t *u, int64_t now_ms)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__USER_SEEN);
    if (store_sqlite__bind_text(stmt, 1, u->id, strlen(u->id)) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, now_ms) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "user seen bind");
    }
    int rc = store_sqlite__exec(st, stmt, "user seen");
    if (rc == 0)
        u->seen_ms = now_ms;
    return rc;
}

void store_sqlite__user_ensure(store_t *s, const char *key, const char *name, int64_t now_ms,
                               store_user_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_USER(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    int rc = store_sqlite__write_begin(st);
    if (rc == 0)
        rc = store_sqlite__user_read(st, STORE_SQLITE__USER_BY_KEY, key, &op->res.user);
    if (rc == 0)
        rc = store_sqlite__user_seen(st, &op->res.user, now_ms);
    else if (rc == STORE_ENOTFOUND)
        rc = store_sqlite__user_insert(st, key, name, now_ms, 0, &op->res.user);
    store_sqlite__write_submit(st, op, rc);
}

/* get and find: a read, an expired guest reads as none. */
static void store_sqlite__user_lookup(store_t *s, int which, const char *v, int64_t now_ms,
                                      int64_t ttl_ms, store_user_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_USER(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    op->rc = store_sqlite__user_read(st, which, v, &op->res.user);
    if (op->rc == 0 && store_sqlite__user_expired(&op->res.user, now_ms, ttl_ms))
        op->rc = STORE_ENOTFOUND;
    if (op->rc != 0)
        store_sqlite__op_clear(op);
    store_sqlite__submit(st, op);
}

void store_sqlite__user_get(store_t *s, const char *id, int64_t now_ms, int64_t ttl_ms,
                            store_user_cb cb, void *ud)
{
    store_sqlite__user_lookup(s, STORE_SQLITE__USER_BY_ID, id, now_ms, ttl_ms, cb, ud);
}

void store_sqlite__user_find(store_t *s, const char *key, int64_t now_ms, int64_t ttl_ms,
                             store_user_cb cb, void *ud)
{
    store_sqlite__user_lookup(s, STORE_SQLITE__USER_BY_KEY, key, now_ms, ttl_ms, cb, ud);
}

/* The rename itself, on a live user u (updated in place). */
static int store_sqlite__user_set_name(store_sqlite *st, store_user_t *u, const char *key,
                                       const char *name, int64_t now_ms)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__USER_RENAME);
    if (store_sqlite__bind_text(stmt, 1, u->id, strlen(u->id)) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 2, key, strlen(key)) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 3, name, strlen(name)) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 4, now_ms) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "user rename bind");
    }
    int rc = store_sqlite__exec(st, stmt, "user rename");
    if (rc == 0) {
        mem_free(u->key);
        mem_free(u->name);
        u->key = mem_strdup(key);
        u->name = mem_strdup(name);
        u->seen_ms = now_ms;
    }
    return rc;
}

void store_sqlite__user_rename(store_t *s, const char *id, const char *key, const char *name,
                               int64_t now_ms, int64_t ttl_ms, store_user_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_USER(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    store_user_t *u = &op->res.user;
    int rc = store_sqlite__write_begin(st);
    if (rc == 0)
        rc = store_sqlite__user_read(st, STORE_SQLITE__USER_BY_ID, id, u);
    if (rc == 0 && store_sqlite__user_expired(u, now_ms, ttl_ms))
        rc = STORE_ENOTFOUND;
    if (rc == 0)
        rc = store_sqlite__key_free(st, key, id, now_ms, ttl_ms);
    if (rc == 0)
        rc = store_sqlite__user_set_name(st, u, key, name, now_ms);
    store_sqlite__write_submit(st, op, rc);
}

void store_sqlite__user_touch(store_t *s, const char *id, int64_t now_ms, store_count_cb cb,
                              void *ud)
{
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    int rc = store_sqlite__write_begin(st);
    if (rc == 0) {
        sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__USER_SEEN);
        if (store_sqlite__bind_text(stmt, 1, id, strlen(id)) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 2, now_ms) != SQLITE_OK) {
            store_sqlite__done(stmt);
            rc = store_sqlite__fail(st->db, "user touch bind");
        } else {
            rc = store_sqlite__exec(st, stmt, "user touch");
        }
    }
    if (rc == 0 && sqlite3_changes(st->db) != 1)
        rc = STORE_ENOTFOUND;
    if (rc == 0)
        op->res.count = 1;
    store_sqlite__write_submit(st, op, rc);
}

/* One row of USER_EXPIRED: a user id (char *). */
static int store_sqlite__id_row(sqlite3_stmt *stmt, void *elem)
{
    char **id = elem;
    return store_sqlite__column_text(stmt, 0, id, NULL) < 0 || *id == NULL ? STORE_EIO : 0;
}

void store_sqlite__user_purge(store_t *s, int64_t now_ms, int64_t ttl_ms, store_count_cb cb,
                              void *ud)
{
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    store_conv_list_t ids = {NULL, 0};
    void *v = NULL;
    int rc = store_sqlite__write_begin(st);
    if (rc == 0) {
        sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__USER_EXPIRED);
        if (sqlite3_bind_int64(stmt, 1, now_ms - ttl_ms) != SQLITE_OK) {
            store_sqlite__done(stmt);
            rc = store_sqlite__fail(st->db, "user purge bind");
        } else {
            rc = store_sqlite__collect(st, stmt, sizeof(char *), store_sqlite__id_row,
                                       "user purge", &v, &ids.n);
            ids.convs = v;
        }
    }
    for (size_t i = 0; rc == 0 && i < ids.n; i++)
        rc = store_sqlite__user_delete(st, ids.convs[i]);
    if (rc == 0)
        op->res.count = ids.n;
    store_conv_list_free(&ids);
    store_sqlite__write_submit(st, op, rc);
}

/* ---- secrets ------------------------------------------------------------- */

/* The stored secret `name` into res: 0, STORE_ENOTFOUND or STORE_EIO. */
static int store_sqlite__secret_read(store_sqlite *st, const char *name, store_op_result *res)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__SECRET_GET);
    int rc;
    if (store_sqlite__bind_text(stmt, 1, name, strlen(name)) != SQLITE_OK) {
        rc = store_sqlite__fail(st->db, "secret bind");
        goto cleanup;
    }
    int step = sqlite3_step(stmt);
    if (step == SQLITE_DONE) {
        rc = STORE_ENOTFOUND;
        goto cleanup;
    }
    const void *b = step == SQLITE_ROW ? sqlite3_column_blob(stmt, 0) : NULL;
    int n = b ? sqlite3_column_bytes(stmt, 0) : 0;
    if (b == NULL || n <= 0) {
        rc = store_sqlite__fail(st->db, "secret get");
        goto cleanup;
    }
    res->secret.bytes = mem_alloc((size_t)n);
    memcpy(res->secret.bytes, b, (size_t)n);
    res->secret.len = (size_t)n;
    rc = 0;
cleanup:
    store_sqlite__done(stmt);
    return rc;
}

/* Stores `len` new random bytes as secret `name` (none stored before). */
static int store_sqlite__secret_create(store_sqlite *st, const char *name, size_t len)
{
    uint8_t bytes[STORE_SECRET_MAX];
    if (RAND_bytes(bytes, (int)len) != 1) {
        log_error("store secret: RAND_bytes failed", "name=\"%s\"", name);
        return STORE_EIO;
    }
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__SECRET_ADD);
    if (store_sqlite__bind_text(stmt, 1, name, strlen(name)) != SQLITE_OK ||
        sqlite3_bind_blob(stmt, 2, bytes, (int)len, SQLITE_TRANSIENT) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "secret add bind");
    }
    return store_sqlite__exec(st, stmt, "secret add");
}

void store_sqlite__secret_get(store_t *s, const char *name, size_t len, store_secret_cb cb,
                              void *ud)
{
    store_op_call call = STORE_OP_CALL_SECRET(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    if (len < 1 || len > STORE_SECRET_MAX) {
        op->rc = STORE_EINVAL;
        store_sqlite__submit(st, op);
        return;
    }
    int rc = store_sqlite__write_begin(st);
    if (rc == 0) {
        rc = store_sqlite__secret_read(st, name, &op->res);
        if (rc == STORE_ENOTFOUND) {
            rc = store_sqlite__secret_create(st, name, len);
            if (rc == 0)
                rc = store_sqlite__secret_read(st, name, &op->res);
        }
    }
    if (rc == 0 && op->res.secret.len != len) {
        log_error("store secret of another length", "name=\"%s\" stored=%zu asked=%zu", name,
                  op->res.secret.len, len);
        rc = STORE_EIO;
    }
    store_sqlite__write_submit(st, op, rc);
}

/* ---- membership ---------------------------------------------------------- */

/* member_add and member_remove: `which` bound to the room key, the user id
 * and (add) the time; count says whether a row changed. */
static void store_sqlite__member_write(store_t *s, int which, const char *room_key,
                                       const char *user_id, int64_t now_ms, store_count_cb cb,
                                       void *ud)
{
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    int rc = store_sqlite__write_begin(st);
    if (rc == 0 && which == STORE_SQLITE__MEMBER_DEL) { /* an owner leaving: succession */
        sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__MEMBER_SUCCEED);
        if (store_sqlite__bind_text(stmt, 1, room_key, strlen(room_key)) != SQLITE_OK ||
            store_sqlite__bind_text(stmt, 2, user_id, strlen(user_id)) != SQLITE_OK) {
            store_sqlite__done(stmt);
            rc = store_sqlite__fail(st->db, "member succeed bind");
        } else {
            rc = store_sqlite__exec(st, stmt, "member succeed");
        }
    }
    if (rc == 0) {
        sqlite3_stmt *stmt = store_sqlite__stmt(st, which);
        if (store_sqlite__bind_text(stmt, 1, room_key, strlen(room_key)) != SQLITE_OK ||
            store_sqlite__bind_text(stmt, 2, user_id, strlen(user_id)) != SQLITE_OK ||
            (which == STORE_SQLITE__MEMBER_ADD &&
             sqlite3_bind_int64(stmt, 3, now_ms) != SQLITE_OK)) {
            store_sqlite__done(stmt);
            rc = store_sqlite__fail(st->db, "member bind");
        } else {
            rc = store_sqlite__exec(st, stmt, "member write");
        }
    }
    if (rc == 0)
        op->res.count = sqlite3_changes(st->db) > 0;
    if (rc == 0 && op->res.count && which == STORE_SQLITE__MEMBER_ADD) {
        /* an invitation is used by the join */
        sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__FLAG_INVITE_USED);
        if (store_sqlite__bind_text(stmt, 1, room_key, strlen(room_key)) != SQLITE_OK ||
            store_sqlite__bind_text(stmt, 2, user_id, strlen(user_id)) != SQLITE_OK) {
            store_sqlite__done(stmt);
            rc = store_sqlite__fail(st->db, "invite used bind");
        } else {
            rc = store_sqlite__exec(st, stmt, "invite used");
        }
    }
    store_sqlite__write_submit(st, op, rc);
}

void store_sqlite__member_add(store_t *s, const char *room_key, const char *user_id,
                              int64_t now_ms, store_count_cb cb, void *ud)
{
    store_sqlite__member_write(s, STORE_SQLITE__MEMBER_ADD, room_key, user_id, now_ms, cb, ud);
}

void store_sqlite__member_remove(store_t *s, const char *room_key, const char *user_id,
                                 store_count_cb cb, void *ud)
{
    store_sqlite__member_write(s, STORE_SQLITE__MEMBER_DEL, room_key, user_id, 0, cb, ud);
}

/* A role column ('owner', 'moderator', 'member') as STORE_ROLE_*. */
static int store_sqlite__role_of(sqlite3_stmt *stmt, int i)
{
    const char *r = (const char *)sqlite3_column_text(stmt, i);
    if (r && strcmp(r, "owner") == 0)
        return STORE_ROLE_OWNER;
    if (r && strcmp(r, "moderator") == 0)
        return STORE_ROLE_MODERATOR;
    return STORE_ROLE_MEMBER;
}

/* Writes the role of user_id in room_key (see store_member_role_set);
 * *changed says whether it did. */
static int store_sqlite__role_write(store_sqlite *st, const char *room_key, const char *user_id,
                                    int role, uint64_t *changed)
{
    static const char *const names[] = {"member", "moderator", "owner"};
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__MEMBER_ROLE);
    int rc = 0, cur;
    if (store_sqlite__bind_text(stmt, 1, room_key, strlen(room_key)) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 2, user_id, strlen(user_id)) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "member role bind");
    }
    int step = sqlite3_step(stmt);
    cur = step == SQLITE_ROW ? store_sqlite__role_of(stmt, 0) : -1;
    store_sqlite__done(stmt);
    if (step == SQLITE_DONE)
        return STORE_ENOTFOUND;
    if (step != SQLITE_ROW)
        return store_sqlite__fail(st->db, "member role");
    if (cur == role)
        return 0;
    if (cur == STORE_ROLE_OWNER)
        return STORE_EINVAL;
    if (role == STORE_ROLE_OWNER)
        rc = store_sqlite__exec_text(st, STORE_SQLITE__ROLE_DEMOTE, room_key, "role demote");
    if (rc < 0)
        return rc;
    stmt = store_sqlite__stmt(st, STORE_SQLITE__ROLE_PUT);
    if (store_sqlite__bind_text(stmt, 1, room_key, strlen(room_key)) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 2, user_id, strlen(user_id)) != SQLITE_OK ||
        store_sqlite__bind_text(stmt, 3, names[role], strlen(names[role])) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "role put bind");
    }
    rc = store_sqlite__exec(st, stmt, "role put");
    if (rc == 0)
        *changed = 1;
    return rc;
}

void store_sqlite__member_role_set(store_t *s, const char *room_key, const char *user_id,
                                   int role, store_count_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_COUNT(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    if (role < STORE_ROLE_MEMBER || role > STORE_ROLE_OWNER) {
        op->rc = STORE_EINVAL;
        store_sqlite__submit(st, op);
        return;
    }
    int rc = store_sqlite__write_begin(st);
    if (rc == 0)
        rc = store_sqlite__role_write(st, room_key, user_id, role, &op->res.count);
    store_sqlite__write_submit(st, op, rc);
}

/* One row of MEMBER_ROOMS into a store_room_t. */
static int store_sqlite__member_room_row(sqlite3_stmt *stmt, void *elem)
{
    store_room_t *r = elem;
    r->joined_ms = sqlite3_column_int64(stmt, 2);
    r->role = store_sqlite__role_of(stmt, 3);
    if (store_sqlite__column_text(stmt, 0, &r->key, NULL) < 0 ||
        store_sqlite__column_text(stmt, 1, &r->name, NULL) < 0 || !r->key || !r->name)
        return STORE_EIO;
    return 0;
}

void store_sqlite__member_rooms(store_t *s, const char *user_id, store_room_list_cb cb,
                                void *ud)
{
    store_op_call call = STORE_OP_CALL_LIST(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    void *v = NULL;
    op->rc = store_sqlite__collect_by_key(st, STORE_SQLITE__MEMBER_ROOMS, user_id, sizeof(store_room_t), store_sqlite__member_room_row, "member rooms", &v, &op->res.list.n);
    op->res.list.rooms = v;
    if (op->rc != 0)
        store_sqlite__op_clear(op);
    store_sqlite__submit(st, op);
}

/* One row of ROOM_MEMBERS into a store_member_t. */
static int store_sqlite__member_row(sqlite3_stmt *stmt, void *elem)
{
    store_member_t *m = elem;
    const unsigned char *id = sqlite3_column_text(stmt, 0);
    size_t n = id ? (size_t)sqlite3_column_bytes(stmt, 0) : 0;
    if (id == NULL || n >= STORE_USER_ID_MAX)
        return STORE_EIO;
    memcpy(m->id, id, n + 1);
    m->joined_ms = sqlite3_column_int64(stmt, 1);
    m->role = store_sqlite__role_of(stmt, 2);
    return 0;
}

void store_sqlite__room_members(store_t *s, const char *room_key, store_member_list_cb cb,
                                void *ud)
{
    store_op_call call = STORE_OP_CALL_MEMBERS(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    void *v = NULL;
    op->rc = store_sqlite__collect_by_key(st, STORE_SQLITE__ROOM_MEMBERS, room_key, sizeof(store_member_t), store_sqlite__member_row, "room members", &v, &op->res.members.n);
    op->res.members.members = v;
    if (op->rc != 0)
        store_sqlite__op_clear(op);
    store_sqlite__submit(st, op);
}

/* One row of DIRECT_CONVS: its name (char *). */
static int store_sqlite__conv_name_row(sqlite3_stmt *stmt, void *elem)
{
    char **key = elem;
    return store_sqlite__column_text(stmt, 0, key, NULL) < 0 || *key == NULL ? STORE_EIO : 0;
}

void store_sqlite__direct_convs(store_t *s, const char *user_id, store_conv_list_cb cb,
                                void *ud)
{
    store_op_call call = STORE_OP_CALL_CONVS(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    void *v = NULL;
    op->rc = store_sqlite__collect_by_key(st, STORE_SQLITE__DIRECT_CONVS, user_id, sizeof(char *), store_sqlite__conv_name_row, "direct convs", &v, &op->res.convs.n);
    op->res.convs.convs = v;
    if (op->rc != 0)
        store_sqlite__op_clear(op);
    store_sqlite__submit(st, op);
}

/* ---- read state ---------------------------------------------------------- */

/* One integer from `which` bound to (text a, int b) or (int b) when a is
 * NULL; *out 0 when there is no row or it is NULL. 0 or STORE_EIO. */
static int store_sqlite__read_int(store_sqlite *st, int which, const char *a, int64_t b,
                                  int64_t *out)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, which);
    int rc = 0, i = 1;
    *out = 0;
    if ((a && store_sqlite__bind_text(stmt, i++, a, strlen(a)) != SQLITE_OK) ||
        sqlite3_bind_int64(stmt, i, b) != SQLITE_OK) {
        rc = store_sqlite__fail(st->db, "read bind");
        goto cleanup;
    }
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        *out = sqlite3_column_int64(stmt, 0);
    else if (step != SQLITE_DONE)
        rc = store_sqlite__fail(st->db, "read int");
cleanup:
    store_sqlite__done(stmt);
    return rc;
}

/* The walk behind the read state: from the newest message of conv_id back
 * to the mark, stopping at the user's own newest message. *eff gets the
 * effective read point (that message when after the mark, else the mark),
 * *unread the messages after it, *after_target those after target too.
 * O(unread). Returns 0 or STORE_EIO. */
static int store_sqlite__read_scan(store_sqlite *st, const char *user_id, int64_t conv_id,
                                   int64_t mark, int64_t target, int64_t *eff,
                                   uint64_t *unread, uint64_t *after_target)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__READ_SCAN);
    size_t ulen = strlen(user_id);
    int rc = 0, step;
    *eff = mark;
    *unread = *after_target = 0;
    if (sqlite3_bind_int64(stmt, 1, conv_id) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, mark) != SQLITE_OK) {
        rc = store_sqlite__fail(st->db, "read scan bind");
        goto cleanup;
    }
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(stmt, 0);
        const unsigned char *from = sqlite3_column_text(stmt, 1);
        if (from && (size_t)sqlite3_column_bytes(stmt, 1) == ulen &&
            memcmp(from, user_id, ulen) == 0) {
            *eff = id;
            break;
        }
        (*unread)++;
        if (id > target)
            (*after_target)++;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = store_sqlite__fail(st->db, "read scan");
cleanup:
    store_sqlite__done(stmt);
    return rc;
}

/* The stored mark of user_id in conv_id (0: none). */
static int store_sqlite__read_mark_get(store_sqlite *st, const char *user_id, int64_t conv_id,
                                       int64_t *mark)
{
    return store_sqlite__read_int(st, STORE_SQLITE__READ_GET, user_id, conv_id, mark);
}

static int store_sqlite__read_put(store_sqlite *st, const char *user_id, int64_t conv_id,
                                  int64_t target)
{
    sqlite3_stmt *stmt = store_sqlite__stmt(st, STORE_SQLITE__READ_PUT);
    if (store_sqlite__bind_text(stmt, 1, user_id, strlen(user_id)) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 2, conv_id) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, 3, target) != SQLITE_OK) {
        store_sqlite__done(stmt);
        return store_sqlite__fail(st->db, "read put bind");
    }
    return store_sqlite__exec(st, stmt, "read put");
}

/* The message `target` of conv_id (msg_id; NULL: the newest, 0 when none):
 * 0, STORE_EBADID, STORE_ENOTFOUND or STORE_EIO. */
static int store_sqlite__read_target(store_sqlite *st, int64_t conv_id, const char *msg_id,
                                     int64_t *target)
{
    if (msg_id == NULL)
        return store_sqlite__read_int(st, STORE_SQLITE__MSG_NEWEST, NULL, conv_id, target);
    int64_t in_conv = 0;
    int rc = store_sqlite__read_int(st, STORE_SQLITE__MSG_CONV, NULL, *target, &in_conv);
    if (rc == 0 && in_conv != conv_id)
        rc = STORE_ENOTFOUND;
    return rc;
}

/* read_mark's work (see store_read_mark), inside a write. */
static int store_sqlite__read_mark_do(store_sqlite *st, const char *user_id, const char *conv,
                                      const char *msg_id, store_read_t *out)
{
    int64_t conv_id = 0, target = 0, mark = 0, eff = 0;
    uint64_t unread = 0, after = 0;
    if (msg_id && store_sqlite__parse_id(msg_id, &target) < 0)
        return STORE_EBADID;
    int rc = store_sqlite__conv_get(st, conv, &conv_id);
    if (rc == STORE_ENOTFOUND) /* no message: no id is its, nothing to mark */
        return msg_id ? STORE_ENOTFOUND : 0;
    if (rc == 0)
        rc = store_sqlite__read_target(st, conv_id, msg_id, &target);
    if (rc == 0)
        rc = store_sqlite__read_mark_get(st, user_id, conv_id, &mark);
    if (rc == 0)
        rc = store_sqlite__read_scan(st, user_id, conv_id, mark, target, &eff, &unread, &after);
    if (rc != 0)
        return rc;
    if (target > eff) {
        rc = store_sqlite__read_put(st, user_id, conv_id, target);
        if (rc != 0)
            return rc;
        eff = target;
        unread = after;
        out->changed = 1;
    }
    if (eff > 0)
        store_sqlite__format_id(eff, out->last_read);
    out->unread = unread;
    return 0;
}

void store_sqlite__read_mark(store_t *s, const char *user_id, const char *conv,
                             const char *msg_id, store_read_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_READ(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    int rc = store_sqlite__write_begin(st);
    if (rc == 0)
        rc = store_sqlite__read_mark_do(st, user_id, conv, msg_id, &op->res.read);
    store_sqlite__write_submit(st, op, rc);
}

void store_sqlite__read_get(store_t *s, const char *user_id, const char *conv,
                            store_read_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_READ(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_sqlite *st = store_sqlite__self(s);
    store_sqlite__op *op = store_sqlite__op_new(st, call);
    store_read_t *out = &op->res.read;
    int64_t conv_id = 0, mark = 0, eff = 0;
    uint64_t after = 0;
    int rc = store_sqlite__conv_get(st, conv, &conv_id);
    if (rc == 0)
        rc = store_sqlite__read_mark_get(st, user_id, conv_id, &mark);
    if (rc == 0)
        rc = store_sqlite__read_scan(st, user_id, conv_id, mark, INT64_MAX, &eff, &out->unread,
                                     &after);
    if (rc == 0 && eff > 0)
        store_sqlite__format_id(eff, out->last_read);
    op->rc = rc == STORE_ENOTFOUND ? 0 : rc; /* no message yet: nothing unread */
    if (op->rc != 0)
        store_sqlite__op_clear(op);
    store_sqlite__submit(st, op);
}
