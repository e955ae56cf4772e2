/* chat_users.c - who is who: user:join (a guest's claim of a name, a
 * rename), the local copies of the store's users, and their list for
 * users:update.
 *
 * The store owns identities (store.h, "users"): a user is an id owning a
 * name, online or not, until (a guest) it has had no connection for the
 * guest lifetime. A connection is attached to a user by user:join (guest
 * mode: store_user_claim, or store_user_rename when it is attached
 * already) or at CONNECT (a resume token or a JWT: chat_connect.c). Here
 * each user with connections on this node has one entry (chat_user),
 * shared by its connections, keyed by id, and by name key for resolving
 * `to` / `with` without a store read. The entry goes with its last
 * connection; the user does not (its name stays owned).
 *
 * Connection state recovery: a connection lost without a goodbye is kept
 * (chat__user_keep). While a user holds only kept connections it is
 * reserved: not listed in users:update, not counted in rooms (sio has
 * taken its sockets out of them); private messages to it go to its "u:"
 * room, which sio logs and replays when the client comes back
 * (chat__user_recover) or drops when the window ends (chat__user_expire).
 *
 * The store's seen time: touched on attach and detach and, for users with
 * connections, every quarter of the guest lifetime (chat__users_tick), so
 * that no connected guest expires.
 *
 * Across a cluster: every node with connections of a user watches its
 * topic "u:<id>" (a non-exclusive bus claim of the id) and reports its
 * state there (presence: users:update lists ours and the other nodes').
 * A rename is published on the topic (chat_cluster.c), so that the
 * user's connections on the other nodes take the new name too. */
#include "chat/chat_internal.h"

#include <string.h>

#include "chat/resume_token.h"
#include "util/log.h"
#include "util/mem.h"

static void chat_user_free(chat_user *u)
{
    chat__seen_free(&u->seen);
    mem_free(u->key);
    mem_free(u->name);
    mem_free(u->room);
    mem_free(u);
}

char *chat__user_room(const char *id)
{
    size_t n = strlen(id);
    char *room = mem_alloc(n + 3);
    memcpy(room, "u:", 2);
    memcpy(room + 2, id, n + 1);
    return room;
}

chat_user *chat__user_find(chat_server *c, const char *id)
{
    chat_user *u = NULL;
    HASH_FIND_STR(c->users, id, u);
    return u;
}

static chat_user *chat_user_by_key(chat_server *c, const char *key)
{
    chat_user *u = NULL;
    HASH_FIND(hh_key, c->users_by_key, key, strlen(key), u);
    return u;
}

static void chat_user_key_del(chat_server *c, chat_user *u)
{
    if (u->by_key)
        HASH_DELETE(hh_key, c->users_by_key, u);
    u->by_key = 0;
}

/* u's key slot: a stale owner of the same key (renamed on another node,
 * which we have not heard of yet) gives it up. */
static void chat_user_key_add(chat_server *c, chat_user *u)
{
    chat_user *old = chat_user_by_key(c, u->key);
    if (old)
        chat_user_key_del(c, old);
    HASH_ADD_KEYPTR(hh_key, c->users_by_key, u->key, strlen(u->key), u);
    u->by_key = 1;
}

chat_user *chat__user_get(chat_server *c, const store_user_t *su)
{
    chat_user *u = chat__user_find(c, su->id);
    if (u) {
        if (strcmp(u->key, su->key) != 0 || strcmp(u->name, su->name) != 0)
            chat__user_rename(c, u, su->key, su->name);
        return u;
    }
    u = mem_calloc(1, sizeof(*u));
    memcpy(u->id, su->id, sizeof(u->id));
    u->key = mem_strdup(su->key);
    u->name = mem_strdup(su->name);
    u->room = chat__user_room(u->id);
    if (bus_clustered(c->bus))
        chat__seen_start(&u->seen);
    HASH_ADD_KEYPTR(hh, c->users, u->id, strlen(u->id), u);
    chat_user_key_add(c, u);
    /* Watches its topic here; not exclusive: its name is the store's. */
    bus_claim(c->bus, u->id, 0, NULL, NULL);
    return u;
}

void chat__user_rename(chat_server *c, chat_user *u, const char *key, const char *name)
{
    if (strcmp(u->key, key) != 0) {
        chat_user_key_del(c, u);
        mem_free(u->key);
        u->key = mem_strdup(key);
        chat_user_key_add(c, u);
    }
    mem_free(u->name);
    u->name = mem_strdup(name);
    chat__user_report(c, u);
    chat__presence_changed(c, CHAT__USERS);
}

static void chat_user_touched(void *ud, int rc, uint64_t n)
{
    chat_server *c = ud;
    c->pending--;
    if (c->closing) {
        chat__server_maybe_free(c);
        return;
    }
    if (rc != 0 && rc != STORE_ENOTFOUND)
        log_warn("user not touched", "error=%d", rc);
}

static void chat_user_touch(chat_server *c, chat_user *u)
{
    u->touched_ms = chat__now_ms();
    c->pending++;
    store_user_touch(c->store, u->id, u->touched_ms, chat_user_touched, c);
}

void chat__user_attach(chat_server *c, chat_conn *conn, chat_user *u)
{
    u->nconns++;
    conn->user = u;
    chat__join(conn, u->room); /* no-op before the CONNECT reply */
    chat_user_touch(c, u);
    chat__user_report(c, u);
    chat__session_save(c, conn);
    chat__presence_changed(c, CHAT__USERS);
}

static void chat_user_maybe_free(chat_server *c, chat_user *u)
{
    if (u->nconns == 0 && u->nkept == 0) {
        bus_user_set(c->bus, u->id, u->name, BUS_USER_GONE);
        bus_release(c->bus, u->id);
        HASH_DEL(c->users, u);
        chat_user_key_del(c, u);
        chat_user_free(u);
    }
}

void chat__user_detach(chat_server *c, chat_conn *conn)
{
    chat_user *u = conn->user;
    conn->user = NULL;
    chat__leave(conn, u->room);
    u->nconns--;
    chat_user_touch(c, u);
    chat__user_report(c, u);
    chat_user_maybe_free(c, u);
    chat__presence_changed(c, CHAT__USERS);
}

void chat__user_keep(chat_server *c, chat_conn *conn)
{
    chat_user *u = conn->user;
    if (u == NULL)
        return;
    u->nconns--;
    u->nkept++;
    chat__user_report(c, u);
    chat__presence_changed(c, CHAT__USERS);
}

void chat__user_recover(chat_server *c, chat_conn *conn)
{
    chat_user *u = conn->user;
    if (u == NULL)
        return;
    u->nkept--;
    u->nconns++;
    chat__user_report(c, u);
    chat__presence_changed(c, CHAT__USERS);
}

void chat__user_expire(chat_server *c, chat_conn *conn)
{
    chat_user *u = conn->user;
    if (u == NULL)
        return;
    conn->user = NULL;
    u->nkept--;
    chat_user_touch(c, u);
    chat_user_maybe_free(c, u);
}

void chat__users_free(chat_server *c)
{
    chat_user *u, *tmp;
    HASH_CLEAR(hh_key, c->users_by_key);
    HASH_ITER(hh, c->users, u, tmp) {
        HASH_DEL(c->users, u);
        chat_user_free(u);
    }
}

static void chat_users_purged(void *ud, int rc, uint64_t n)
{
    chat_server *c = ud;
    c->pending--;
    if (c->closing) {
        chat__server_maybe_free(c);
        return;
    }
    if (rc != 0)
        log_warn("expired users not purged", "error=%d", rc);
    else if (n > 0)
        log_info("expired users purged", "users=%llu", (unsigned long long)n);
}

void chat__users_tick(chat_server *c)
{
    int64_t now = chat__now_ms();
    for (chat_user *u = c->users; u; u = u->hh.next)
        if (now - u->touched_ms >= c->cfg.guest_ttl_ms / 4)
            chat_user_touch(c, u);
    c->pending++;
    store_user_purge(c->store, now, c->cfg.guest_ttl_ms, chat_users_purged, c);
}

/* ---- users:update ---------------------------------------------------------- */

static int chat_user_list_add(json_t *list, const char *id, const char *name)
{
    json_t *e = json_pack("{s:s,s:s,s:b}", "id", id, "username", name, "isActive", 1);
    return json_array_append_new(list, e);
}

typedef struct {
    chat_server *c;
    json_t *list; /* NULL once jansson failed */
} chat_user_listing;

/* A user online on another node (bus presence is keyed by user id), listed
 * unless it is online here too. */
static void chat_user_list_remote(void *ud, const char *id, const char *name)
{
    chat_user_listing *l = ud;
    const chat_user *u = chat__user_find(l->c, id);
    if (l->list == NULL || (u && u->nconns > 0))
        return;
    if (chat_user_list_add(l->list, id, name) != 0) {
        json_decref(l->list);
        l->list = NULL;
    }
}

json_t *chat__users_json(chat_server *c)
{
    chat_user_listing l = {c, json_array()};
    for (chat_user *u = c->users; u && l.list; u = u->hh.next) {
        if (u->nconns == 0)
            continue; /* reserved for recovery: not listed */
        if (chat_user_list_add(l.list, u->id, u->name) != 0) {
            json_decref(l.list);
            l.list = NULL;
        }
    }
    if (l.list)
        bus_users_each(c->bus, chat_user_list_remote, &l);
    return l.list;
}

/* ---- resolving a name ------------------------------------------------------- */

typedef struct {
    chat_req *r;
    chat_user_fn fn;
} chat_resolving;

static void chat_user_found(void *ud, int rc, const store_user_t *su)
{
    chat_resolving *rs = ud;
    chat_req *r = rs->r;
    chat_user_fn fn = rs->fn;
    mem_free(rs);
    if (chat__req_resume(r, CHAT__LAT_ROOM))
        return;
    if (rc == 0)
        fn(r, 0, su->id, su->name);
    else
        fn(r, rc == STORE_ENOTFOUND ? -CHAT_ERR_USER_NOT_FOUND : -CHAT_ERR_INTERNAL, NULL, NULL);
}

void chat__user_resolve(chat_req *r, chat_user_fn fn)
{
    chat_server *c = r->c;
    const chat_user *u = chat_user_by_key(c, r->name.key);
    if (u) { /* it has connections here: alive, and this is its name */
        fn(r, 0, u->id, u->name);
        return;
    }
    chat_resolving *rs = mem_alloc(sizeof(*rs));
    rs->r = r;
    rs->fn = fn;
    chat__req_store(r);
    store_user_find(c->store, r->name.key, chat__now_ms(), c->cfg.guest_ttl_ms, chat_user_found,
                    rs);
}

/* ---- user:join ---------------------------------------------------------------- */

/* The ack: {user: {id, username}, token} (the token in guest mode). */
static int chat_user_joined(chat_req *r)
{
    chat_server *c = r->c;
    chat_user *u = r->conn->user;
    int rc = chat__result_set(r, "user", json_pack("{s:s,s:s}", "id", u->id, "username", u->name));
    if (rc != 0 || c->cfg.auth_secret)
        return rc;
    char token[RESUME_TOKEN_LEN + 1];
    if (resume_token_issue(c->token_key, u->id, token) != 0) {
        log_error("resume token not issued", "user=%s", u->id);
        return -CHAT_ERR_INTERNAL;
    }
    return chat__result_set(r, "token", json_string(token));
}

/* The store answered the claim or the rename of r->name (guest mode). */
static void chat_user_claimed(void *ud, int rc, const store_user_t *su)
{
    chat_req *r = ud;
    if (chat__req_resume(r, CHAT__LAT_ROOM))
        return;
    chat_server *c = r->c;
    if (rc != 0) {
        if (rc != STORE_ETAKEN)
            log_error("user:join failed in the store", "error=%d", rc);
        chat__req_done(r, rc == STORE_ETAKEN ? -CHAT_ERR_USERNAME_TAKEN : -CHAT_ERR_INTERNAL);
        return;
    }
    chat_user *u = r->conn->user;
    if (u) { /* a rename: every connection of u, here and elsewhere */
        chat__user_rename(c, u, su->key, su->name);
        chat__user_publish_rename(c, u);
    } else {
        chat__user_attach(c, r->conn, chat__user_get(c, su));
    }
    chat__req_done(r, chat_user_joined(r));
}

/* user:join: names the connection (a new user owning the name), renames
 * its user, or (token mode) confirms the token's name. */
int chat__on_user_join(chat_req *r, json_t *payload)
{
    chat_server *c = r->c;
    chat_user *u = r->conn->user;
    if (!json_is_string(payload))
        return -CHAT_ERR_INVALID_PAYLOAD;
    int rc = chat__parse_name(payload, chat_username_parse, CHAT_ERR_INVALID_USERNAME, &r->name);
    if (rc != 0)
        return rc;
    if (c->cfg.auth_secret) {
        if (u == NULL || strcmp(u->key, r->name.key) != 0)
            return -CHAT_ERR_FORBIDDEN; /* NULL: see chat_on_recovered */
        return chat_user_joined(r);
    }
    if (u && strcmp(u->key, r->name.key) == 0 && strcmp(u->name, r->name.display) == 0)
        return chat_user_joined(r); /* the same name again */
    int64_t now = chat__now_ms();
    chat__req_store(r);
    if (u)
        store_user_rename(c->store, u->id, r->name.key, r->name.display, now,
                          c->cfg.guest_ttl_ms, chat_user_claimed, r);
    else
        store_user_claim(c->store, r->name.key, r->name.display, now, c->cfg.guest_ttl_ms,
                         chat_user_claimed, r);
    return CHAT__PENDING;
}
