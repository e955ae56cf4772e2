/* chat_users.c - who is who: naming a connection (a token at connect, or
 * user:join), the online users, and their list for users:update.
 *
 * A user is online while it holds at least one connection; it is one entry
 * of users:update however many it holds (token mode allows several tabs;
 * anonymous mode one, since a name held by another connection is refused).
 * Its id is derived from its key alone (the first 16 bytes of SHA-256, in
 * hex), so every node of a cluster gives a user the same id without asking
 * anyone.
 *
 * Connection state recovery: a connection lost without a goodbye is kept
 * (chat__user_keep). While a user holds only kept connections it is
 * reserved: not listed in users:update, not counted in rooms (sio has
 * taken its sockets out of them), its name refused to others, and private
 * messages to it accepted: they go to its "u:" room, which sio logs and
 * replays when the client comes back (chat__user_recover) or drops when the
 * window ends (chat__user_expire).
 *
 * Across a cluster: a name is claimed on the bus before anonymous
 * user:join gives it to a connection (the entry exists meanwhile, marked
 * `claiming`, so that no other local connection takes it), and given back
 * when its entry goes; token mode registers the user without exclusivity.
 * Every change of a user's state here is reported to the bus, which tells
 * the other nodes; users:update lists ours and theirs. */
#include "chat/chat_internal.h"

#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "chat/jwt.h"
#include "util/log.h"
#include "util/mem.h"

static void chat_user_id(const char *key, char out[CHAT__USER_ID_HEX + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(key, strlen(key), md, &n, EVP_sha256(), NULL) != 1 ||
        n < CHAT__USER_ID_HEX / 2) {
        /* Not expected from OpenSSL; an id must exist all the same. */
        log_error("sha256 failed", "%s", "");
        memset(md, 0, sizeof(md));
    }
    for (int i = 0; i < CHAT__USER_ID_HEX / 2; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[CHAT__USER_ID_HEX] = '\0';
}

static void chat_user_free(chat_user *u)
{
    chat__seen_free(&u->seen);
    mem_free(u->key);
    mem_free(u->name);
    mem_free(u->room);
    mem_free(u);
}

char *chat__user_room(const char *key)
{
    size_t klen = strlen(key);
    char *room = mem_alloc(klen + 3);
    memcpy(room, "u:", 2);
    memcpy(room + 2, key, klen + 1);
    return room;
}

/* A new entry for n, with no connection yet. */
static chat_user *chat_user_new(chat_server *c, const chat_name_t *n)
{
    chat_user *u = mem_calloc(1, sizeof(*u));
    u->key = mem_strdup(n->key);
    u->name = mem_strdup(n->display);
    u->room = chat__user_room(n->key);
    chat_user_id(u->key, u->id);
    if (bus_clustered(c->bus))
        chat__seen_start(&u->seen);
    HASH_ADD_KEYPTR(hh, c->users, u->key, strlen(u->key), u);
    return u;
}

int chat__user_exists(chat_server *c, const char *key, const char **name)
{
    const chat_user *u = chat__user_find(c, key);
    if (u && (u->nconns || u->nkept)) {
        if (name)
            *name = u->name;
        return 1;
    }
    return bus_user_state(c->bus, key, name) != BUS_USER_GONE;
}

chat_user *chat__user_find(chat_server *c, const char *key)
{
    chat_user *u = NULL;
    HASH_FIND_STR(c->users, key, u);
    return u;
}

void chat__user_attach(chat_server *c, chat_conn *conn, const chat_name_t *n)
{
    chat_user *u = chat__user_find(c, n->key);
    if (u == NULL) {
        /* Token mode (anonymous names were claimed by user:join). */
        u = chat_user_new(c, n);
        bus_claim(c->bus, u->key, 0, NULL, NULL);
    }
    u->nconns++;
    conn->user = u;
    chat__join(conn, u->room); /* no-op before the CONNECT reply */
    chat__user_report(c, u);
    chat__session_save(c, conn);
    chat__presence_changed(c, CHAT__USERS);
}

static void chat_user_maybe_free(chat_server *c, chat_user *u)
{
    if (u->nconns == 0 && u->nkept == 0 && !u->claiming) {
        bus_user_set(c->bus, u->key, u->name, BUS_USER_GONE);
        bus_release(c->bus, u->key);
        HASH_DEL(c->users, u);
        chat_user_free(u);
    }
}

void chat__user_detach(chat_server *c, chat_conn *conn)
{
    chat_user *u = conn->user;
    conn->user = NULL;
    chat__leave(conn, u->room);
    u->nconns--;
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
    chat_user_maybe_free(c, u);
}

void chat__users_free(chat_server *c)
{
    chat_user *u, *tmp;
    HASH_ITER(hh, c->users, u, tmp) {
        HASH_DEL(c->users, u);
        chat_user_free(u);
    }
}

static int chat_user_list_add(json_t *list, const char *id, const char *name)
{
    json_t *e = json_pack("{s:s,s:s,s:b}", "id", id, "username", name, "isActive", 1);
    return json_array_append_new(list, e);
}

typedef struct {
    chat_server *c;
    json_t *list; /* NULL once jansson failed */
} chat_user_listing;

/* A user online on another node, listed unless it is online here too. */
static void chat_user_list_remote(void *ud, const char *key, const char *name)
{
    chat_user_listing *l = ud;
    const chat_user *u = chat__user_find(l->c, key);
    if (l->list == NULL || (u && u->nconns > 0))
        return;
    char id[CHAT__USER_ID_HEX + 1];
    chat_user_id(key, id);
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
            continue; /* reserved for recovery, or being claimed: not listed */
        if (chat_user_list_add(l.list, u->id, u->name) != 0) {
            json_decref(l.list);
            l.list = NULL;
        }
    }
    if (l.list)
        bus_users_each(c->bus, chat_user_list_remote, &l);
    return l.list;
}

int chat__token_name(chat_server *c, const json_t *auth, chat_name_t *out)
{
    json_t *tok = json_object_get(auth, "token");
    if (!json_is_string(tok))
        return -1;
    char *sub = NULL;
    int rc = jwt_verify_hs256(json_string_value(tok), json_string_length(tok),
                              (const uint8_t *)c->cfg.auth_secret, c->secret_len,
                              (int64_t)time(NULL), &sub);
    if (rc != 0) {
        log_debug("token refused", "reason=\"%s\"", jwt_strerror(rc));
        return -1;
    }
    rc = chat_username_parse(sub, strlen(sub), out);
    mem_free(sub);
    if (rc != 0) {
        log_debug("token refused", "reason=\"%s\"", "sub is not a valid username");
        return -1;
    }
    return 0;
}

static int chat_user_joined(chat_req *r)
{
    chat_user *u = r->conn->user;
    return chat__result_set(r, "user", json_pack("{s:s,s:s}", "id", u->id, "username", u->name));
}

/* The bus answered the claim of r->name (anonymous mode). */
static void chat_user_claimed(void *ud, int rc)
{
    chat_req *r = ud;
    if (chat__req_resume(r, CHAT__LAT_BUS))
        return;
    chat_server *c = r->c;
    chat_user *u = chat__user_find(c, r->name.key);
    u->claiming = 0;
    if (rc != 0) {
        chat_user_maybe_free(c, u);
        chat__req_done(r, rc == BUS_ETAKEN ? -CHAT_ERR_USERNAME_TAKEN : -CHAT_ERR_INTERNAL);
        return;
    }
    if (r->conn->user)
        chat__user_detach(c, r->conn); /* a rename: the old name is free */
    chat__user_attach(c, r->conn, &r->name);
    chat__req_done(r, chat_user_joined(r));
}

/* user:join: names the connection, renames it, or (token mode) confirms the
 * token's name. A new name is claimed on the bus first (at once with the
 * local bus). */
int chat__on_user_join(chat_req *r, json_t *payload)
{
    chat_server *c = r->c;
    chat_conn *conn = r->conn;
    chat_name_t n = {0};
    if (!json_is_string(payload))
        return -CHAT_ERR_INVALID_PAYLOAD;
    int rc = chat__parse_name(payload, chat_username_parse, CHAT_ERR_INVALID_USERNAME, &n);
    if (rc != 0)
        goto cleanup;
    chat_user *u = chat__user_find(c, n.key);
    if (c->cfg.auth_secret) {
        if (conn->user == NULL || u != conn->user) { /* NULL: see chat_on_recovered */
            rc = -CHAT_ERR_FORBIDDEN;
            goto cleanup;
        }
    } else if (u && u != conn->user) {
        rc = -CHAT_ERR_USERNAME_TAKEN;
        goto cleanup;
    } else if (u) {
        /* The same name again, maybe written differently: show it so. */
        if (strcmp(u->name, n.display) != 0) {
            mem_free(u->name);
            u->name = mem_strdup(n.display);
            chat__presence_changed(c, CHAT__USERS);
            chat__user_report(c, u);
        }
    } else if (bus_user_state(c->bus, n.key, NULL) != BUS_USER_GONE) {
        rc = -CHAT_ERR_USERNAME_TAKEN; /* known taken elsewhere: no round trip */
        goto cleanup;
    } else {
        u = chat_user_new(c, &n);
        u->claiming = 1;
        r->name = n; /* moved: r frees it */
        chat__req_store(r);
        bus_claim(c->bus, u->key, 1, chat_user_claimed, r);
        return CHAT__PENDING;
    }
    rc = chat_user_joined(r);
cleanup:
    chat_name_free(&n);
    return rc;
}
