/* chat_connect.c - the CONNECT of namespace "/": who the connection is.
 *
 *   guest mode, no auth.token (or an empty one): accepted at once, with no
 *     user (user:join names it);
 *   guest mode, auth.token: a resume token (resume_token.h), checked
 *     without a store read, then its user read from the store
 *     (store_user_get: an expired guest is gone): the connection is
 *     attached to it before the CONNECT reply;
 *   token mode: a JWT (jwt.h) whose sub is the username; the user is
 *     store_user_ensure'd (it exists for ever) and attached the same way.
 *
 * The store read makes the CONNECT asynchronous (sio.h,
 * SIO_CONNECT_PENDING): the chat connection is made only once the user is
 * known, and a client that left meanwhile is forgotten at once. Anything
 * refused is CONNECT_ERROR {"message":"unauthorized"}; a token longer than
 * CHAT__TOKEN_MAX bytes is refused before it is parsed. */
#include "chat/chat_internal.h"

#include <string.h>
#include <time.h>

#include "chat/jwt.h"
#include "chat/resume_token.h"
#include "util/log.h"
#include "util/mem.h"

/* Longest auth.token read, in bytes (a resume token or a JWT). */
#define CHAT__TOKEN_MAX 4096

static json_t *chat_refusal(const char *why)
{
    return json_pack("{s:s}", "message", why);
}

/* auth.token: NULL when absent or empty, else the string. */
static const json_t *chat_auth_token(const json_t *auth)
{
    const json_t *tok = json_object_get(auth, "token");
    if (tok == NULL || json_is_null(tok) || (json_is_string(tok) && json_string_length(tok) == 0))
        return NULL;
    return tok;
}

int chat__token_name(chat_server *c, const json_t *auth, chat_name_t *out)
{
    const json_t *tok = chat_auth_token(auth);
    if (!json_is_string(tok) || json_string_length(tok) > CHAT__TOKEN_MAX)
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

/* A CONNECT waiting for its user, then for the user's rooms. */
typedef struct {
    chat_server *c;
    sio_socket *sock;  /* sio's reference, until sio_connect_finish */
    store_user_t user; /* a copy (strings owned) once read */
} chat_connecting;

static void chat_connecting_free(chat_connecting *cn)
{
    mem_free(cn->user.key);
    mem_free(cn->user.name);
    mem_free(cn);
}

/* The end of a CONNECT that waited: 0 (accepted), or a refusal. Returns
 * whether the caller goes on (the client is connected). */
static int chat_connect_end(chat_connecting *cn, int rc, const char *why)
{
    chat_server *c = cn->c;
    c->pending--;
    if (c->closing) {
        sio_connect_finish(cn->sock, chat_refusal("server shutting down"));
        chat_connecting_free(cn);
        chat__server_maybe_free(c);
        return 0;
    }
    if (rc != 0) {
        if (rc != STORE_ENOTFOUND)
            log_error("user not read at connect", "what=%s error=%d", why, rc);
        sio_connect_finish(cn->sock,
                           chat_refusal(rc == STORE_ENOTFOUND ? "unauthorized" : "internal"));
        chat_connecting_free(cn);
        return 0;
    }
    return 1;
}

/* The user's rooms: the connection is attached, in all of them from its
 * first packet on. */
static void chat_connect_rooms(void *ud, int rc, store_room_list_t *l)
{
    chat_connecting *cn = ud;
    if (!chat_connect_end(cn, rc, "rooms"))
        return;
    chat_server *c = cn->c;
    sio_socket *s = cn->sock;
    chat_conn *conn = chat__conn_new(c, s); /* a reference of its own */
    chat__user_attach(c, conn, chat__user_get(c, &cn->user));
    chat_connecting_free(cn);
    if (sio_connect_finish(s, NULL) != 0) {
        chat__conn_gone(c, conn); /* the client left while we read */
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        chat_room *room = chat__room_member(c, l->rooms[i].key, l->rooms[i].name);
        chat__join(conn, room->conv);
        chat__room_report(c, room);
    }
    if (l->n) {
        chat__session_save(c, conn);
        chat__presence_changed(c, CHAT__ROOMS);
    }
}

static void chat_connect_user(void *ud, int rc, const store_user_t *su)
{
    chat_connecting *cn = ud;
    if (!chat_connect_end(cn, rc, "user"))
        return;
    memcpy(cn->user.id, su->id, sizeof(cn->user.id));
    cn->user.key = mem_strdup(su->key);
    cn->user.name = mem_strdup(su->name);
    cn->c->pending++;
    store_member_rooms(cn->c->store, cn->user.id, chat_connect_rooms, cn);
}

static json_t *chat_connect_wait(chat_server *c, sio_socket *s, chat_connecting **out)
{
    chat_connecting *cn = mem_calloc(1, sizeof(*cn));
    cn->c = c;
    cn->sock = s;
    c->pending++;
    *out = cn;
    return SIO_CONNECT_PENDING;
}

json_t *chat__on_connect(void *ud, sio_socket *s, json_t *auth)
{
    chat_server *c = ud;
    chat_connecting *cn;
    if (c->closing)
        return chat_refusal("server shutting down");
    if (c->cfg.auth_secret) {
        chat_name_t name = {0};
        if (chat__token_name(c, auth, &name) != 0)
            return chat_refusal("unauthorized");
        json_t *ret = chat_connect_wait(c, s, &cn);
        store_user_ensure(c->store, name.key, name.display, chat__now_ms(), chat_connect_user,
                          cn);
        chat_name_free(&name);
        return ret;
    }
    const json_t *tok = chat_auth_token(auth);
    if (tok == NULL) {
        chat__conn_new(c, s);
        return NULL;
    }
    char id[RAND_ID_LEN + 1];
    if (!json_is_string(tok) || json_string_length(tok) > CHAT__TOKEN_MAX ||
        resume_token_verify(c->token_key, json_string_value(tok), json_string_length(tok),
                            id) != 0) {
        log_debug("resume token refused", "%s", "");
        return chat_refusal("unauthorized");
    }
    json_t *ret = chat_connect_wait(c, s, &cn);
    store_user_get(c->store, id, chat__now_ms(), c->cfg.guest_ttl_ms, chat_connect_user, cn);
    return ret;
}
