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
 * window ends (chat__user_expire). */
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
    mem_free(u->key);
    mem_free(u->name);
    mem_free(u->room);
    mem_free(u);
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
        u = mem_calloc(1, sizeof(*u));
        u->key = mem_strdup(n->key);
        u->name = mem_strdup(n->display);
        size_t klen = strlen(n->key);
        u->room = mem_alloc(klen + 3);
        memcpy(u->room, "u:", 2);
        memcpy(u->room + 2, n->key, klen + 1);
        chat_user_id(u->key, u->id);
        HASH_ADD_KEYPTR(hh, c->users, u->key, klen, u);
    }
    u->nconns++;
    conn->user = u;
    chat__join(conn, u->room); /* no-op before the CONNECT reply */
    chat__presence_changed(c, CHAT__USERS);
}

static void chat_user_maybe_free(chat_server *c, chat_user *u)
{
    if (u->nconns == 0 && u->nkept == 0) {
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
    chat__presence_changed(c, CHAT__USERS);
}

void chat__user_recover(chat_server *c, chat_conn *conn)
{
    chat_user *u = conn->user;
    if (u == NULL)
        return;
    u->nkept--;
    u->nconns++;
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

json_t *chat__users_json(chat_server *c)
{
    json_t *list = json_array();
    for (chat_user *u = c->users; u && list; u = u->hh.next) {
        if (u->nconns == 0)
            continue; /* reserved for recovery: not listed */
        json_t *e = json_pack("{s:s,s:s,s:b}", "id", u->id, "username", u->name, "isActive", 1);
        if (json_array_append_new(list, e) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    return list;
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

/* user:join: names the connection, renames it, or (token mode) confirms the
 * token's name. */
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
        }
    } else {
        if (conn->user)
            chat__user_detach(c, conn); /* a rename: the old name is free */
        chat__user_attach(c, conn, &n);
    }
    u = conn->user;
    rc = chat__result_set(r, "user", json_pack("{s:s,s:s}", "id", u->id, "username", u->name));
cleanup:
    chat_name_free(&n);
    return rc;
}
