/* chat_restore.c - connection state recovery across nodes (cluster mode).
 *
 * sio restores the sockets this node kept. A client whose node died comes
 * back to another one with a pid this node does not know: sio hands the
 * CONNECT to chat_on_restore, which continues the session from what the
 * cluster knows about it:
 *
 *   1. the session record (bus_session_take: one node only gets it), which
 *      the node that owned the session kept up to date (chat__session_save):
 *      socket id, user id, rooms, and that node's id;
 *   2. the user, read from the store (it may have expired or been renamed
 *      meanwhile), and its topic watched here (taking its claim over from
 *      the dead node);
 *   3. the topics of its rooms, watched, so that what is published from now
 *      on reaches this node;
 *   4. what the client missed: every message of its rooms and of its
 *      private conversations stored after the time of the last packet it
 *      got (the offset's clock part), read from the store (its direct
 *      conversations: store_direct_convs);
 *   5. the socket, connected with its old id in its rooms (its CONNECT
 *      reply carries the pid it had: every node derives pids from the
 *      cluster's shared key), the user attached, the missed messages sent
 *      in time order, and the record written again, owned by this node.
 *
 * Anything that fails on the way declines the restore: the client gets a
 * new session (socket.recovered false), as a client whose window ran out.
 *
 * What "missed" means: the offset of the last packet a client got carries
 * the time its node sent it; a message stored later (its timestamp later)
 * was never sent to that client. The exception is a message stamped before
 * that packet and still in flight to the dead node when it died (a
 * millisecond or two); such a message is in history but not replayed. A
 * message stored while step 4's reads run may be missed the same way. */
#include "chat/chat_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/mem.h"

/* Messages replayed at most, per conversation and in all. */
#define CHAT__RESTORE_MAX 1000

typedef struct {
    chat_server *c;
    sio_restore *req;
    int64_t since;         /* the offset's time */
    char *token_key;       /* token mode: the token's user key */
    json_t *record;        /* the session record */
    const char *user_id;   /* the session's user (into record) */
    store_user_t user;     /* ... as the store has it (strings owned) */
    const char **rooms;    /* its rooms' conversations (into record) */
    size_t nrooms;
    size_t waiting;        /* watches or reads in flight */
    int failed;
    json_t *missed;        /* message:receive payloads */
} chat_restore;

static void chat_restore_free(chat_restore *st)
{
    mem_free(st->token_key);
    json_decref(st->record);
    mem_free(st->user.key);
    mem_free(st->user.name);
    mem_free(st->rooms);
    json_decref(st->missed);
    mem_free(st);
}

/* Ends the restore: declined (the CONNECT goes on as a new session) or done. */
static void chat_restore_end(chat_restore *st, int ok)
{
    chat_server *c = st->c;
    c->pending--;
    if (!ok || c->closing) {
        if (!c->closing)
            log_info("session not restored", "user=\"%s\"",
                     st->user_id ? st->user_id : "-");
        sio_restore_finish(st->req, NULL, NULL, 0);
        chat_restore_free(st);
        chat__server_maybe_free(c);
        return;
    }
    const char *sid = json_string_value(json_object_get(st->record, "sid"));
    sio_socket *s = sio_restore_finish(st->req, sid, st->rooms, st->nrooms);
    if (s == NULL) { /* the client left meanwhile */
        chat_restore_free(st);
        return;
    }
    for (size_t k = 0; k < st->nrooms; k++) { /* their topics have a member now */
        chat_seen *seen = chat__seen_of(c, st->rooms[k], NULL);
        if (seen && seen->floor == 0)
            chat__seen_start(seen);
    }
    chat_conn *conn = chat__conn_new(c, s);
    chat__user_attach(c, conn, chat__user_get(c, &st->user));
    chat__presence_changed(c, CHAT__USERS | CHAT__ROOMS);
    size_t i;
    json_t *m;
    json_array_foreach(st->missed, i, m) {
        json_t *args = json_pack("[O]", m);
        if (args)
            sio_emit(s, "message:receive", args);
        json_decref(args);
    }
    c->out_messages += json_array_size(st->missed);
    chat__session_save(c, conn);
    log_info("session restored from another node", "user=\"%s\" rooms=%zu replayed=%zu",
             st->user.name, st->nrooms, json_array_size(st->missed));
    sio_socket_unref(s);
    chat_restore_free(st);
}

static int chat_restore_cmp(const void *a, const void *b)
{
    json_int_t ta = json_integer_value(json_object_get(*(json_t *const *)a, "timestamp"));
    json_int_t tb = json_integer_value(json_object_get(*(json_t *const *)b, "timestamp"));
    return ta < tb ? -1 : ta > tb;
}

/* Every read is in: the missed messages in time order, then the socket. */
static void chat_restore_step_done(chat_restore *st)
{
    if (--st->waiting > 0)
        return;
    if (st->failed || st->c->closing) {
        chat_restore_end(st, 0);
        return;
    }
    size_t n = json_array_size(st->missed);
    json_t **v = mem_alloc((n ? n : 1) * sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(st->missed, i));
    qsort(v, n, sizeof(*v), chat_restore_cmp); /* stable enough: ids break no tie we need */
    json_array_clear(st->missed);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(st->missed, v[i]);
    mem_free(v);
    chat_restore_end(st, 1);
}

typedef struct {
    chat_restore *st;
    char *room;            /* display name for room messages; NULL: private */
} chat_restore_rd;

static void chat_restore_read_done(void *ud, int rc, store_history_t *page)
{
    chat_restore_rd *rd = ud;
    chat_restore *st = rd->st;
    if (rc != 0 || page->has_more || json_array_size(st->missed) + page->n > CHAT__RESTORE_MAX) {
        st->failed = 1; /* too much to replay is a new session, like a late one */
    } else {
        for (size_t i = 0; i < page->n; i++) {
            const store_msg_t *m = &page->msgs[i];
            json_t *j = chat__msg_json(m->id, rd->room, m->to, m->from, m->content,
                                       m->content_len, m->ts_ms);
            if (j == NULL || json_array_append_new(st->missed, j) != 0)
                st->failed = 1;
        }
    }
    mem_free(rd->room);
    mem_free(rd);
    chat_restore_step_done(st);
}

static void chat_restore_read(chat_restore *st, const char *conv, const char *room)
{
    chat_restore_rd *rd = mem_calloc(1, sizeof(*rd));
    rd->st = st;
    rd->room = room ? mem_strdup(room) : NULL;
    st->waiting++;
    store_since(st->c->store, conv, st->since, CHAT__RESTORE_MAX, chat_restore_read_done, rd);
}

static void chat_restore_directs(void *ud, int rc, store_conv_list_t *l)
{
    chat_restore *st = ud;
    if (rc != 0)
        st->failed = 1;
    for (size_t i = 0; rc == 0 && i < l->n; i++)
        chat_restore_read(st, l->convs[i], NULL);
    chat_restore_step_done(st);
}

/* The name and the topics are ours: read what the client missed. */
static void chat_restore_reads(chat_restore *st)
{
    st->waiting++; /* this function's own step */
    json_t *rooms = json_object_get(st->record, "rooms");
    size_t i;
    json_t *r;
    json_array_foreach(rooms, i, r) {
        const char *conv = json_string_value(json_object_get(r, "conv"));
        const char *name = json_string_value(json_object_get(r, "name"));
        chat__room_cache(st->c, conv + 2, name);
        chat_restore_read(st, conv, name);
    }
    st->waiting++;
    store_direct_convs(st->c->store, st->user.id, chat_restore_directs, st);
    chat_restore_step_done(st);
}

static void chat_restore_watched(void *ud, int rc)
{
    chat_restore *st = ud;
    if (rc != 0)
        st->failed = 1;
    if (--st->waiting > 0)
        return;
    if (st->failed || st->c->closing) {
        chat_restore_end(st, 0);
        return;
    }
    chat_restore_reads(st);
}

static void chat_restore_claimed(void *ud, int rc)
{
    chat_restore *st = ud;
    if (rc != 0 || st->c->closing) {
        chat_restore_end(st, 0);
        return;
    }
    st->waiting = 1 + st->nrooms;
    for (size_t i = 0; i < st->nrooms; i++)
        bus_watch(st->c->bus, st->rooms[i], chat_restore_watched, st);
    chat_restore_watched(st, 0);
}

/* Reads the record: {"sid", "user" (an id), "node", "rooms": [{"conv", "name"}]}. */
static int chat_restore_parse(chat_restore *st, const char *data, size_t len)
{
    st->record = json_loadb(data, len, 0, NULL);
    const char *sid = json_string_value(json_object_get(st->record, "sid"));
    const char *user = json_string_value(json_object_get(st->record, "user"));
    json_t *rooms = json_object_get(st->record, "rooms");
    if (!sid || !user || strlen(user) != RAND_ID_LEN || !json_is_array(rooms))
        return -1;
    st->user_id = user;
    st->rooms = mem_alloc((json_array_size(rooms) + 1) * sizeof(char *));
    size_t i;
    json_t *r;
    json_array_foreach(rooms, i, r) {
        const char *conv = json_string_value(json_object_get(r, "conv"));
        if (!conv || strncmp(conv, "r:", 2) != 0 || !json_is_string(json_object_get(r, "name")))
            return -1;
        st->rooms[st->nrooms++] = conv;
    }
    return 0;
}

/* The session's user, as the store has it now. */
static void chat_restore_user(void *ud, int rc, const store_user_t *su)
{
    chat_restore *st = ud;
    chat_server *c = st->c;
    c->pending--;
    if (rc != 0 || c->closing || (st->token_key && strcmp(st->token_key, su->key) != 0)) {
        chat_restore_end(st, 0); /* gone, or a token for someone else */
        return;
    }
    memcpy(st->user.id, su->id, sizeof(st->user.id));
    st->user.key = mem_strdup(su->key);
    st->user.name = mem_strdup(su->name);
    const char *from = json_string_value(json_object_get(st->record, "node"));
    bus_claim_from(c->bus, st->user.id, 0, from, chat_restore_claimed, st);
}

static void chat_restore_taken(void *ud, int rc, const char *data, size_t len)
{
    chat_restore *st = ud;
    chat_server *c = st->c;
    if (rc != 0 || c->closing || chat_restore_parse(st, data, len) != 0) {
        chat_restore_end(st, 0);
        return;
    }
    c->pending++;
    store_user_get(c->store, st->user_id, chat__now_ms(), c->cfg.guest_ttl_ms, chat_restore_user,
                   st);
}

int chat__on_restore(void *ud, sio_restore *req, const char *pid, const char *offset,
                     json_t *auth)
{
    chat_server *c = ud;
    int64_t since = sio_offset_time(offset);
    if (c->closing || !bus_clustered(c->bus) || since < 0)
        return 0;
    chat_name_t token = {0};
    if (c->cfg.auth_secret && chat__token_name(c, auth, &token) != 0)
        return 0; /* on_connect refuses it */
    chat_restore *st = mem_calloc(1, sizeof(*st));
    st->c = c;
    st->req = req;
    st->since = since;
    st->missed = json_array();
    if (token.key) {
        st->token_key = mem_strdup(token.key);
        chat_name_free(&token);
    }
    c->pending++;
    bus_session_take(c->bus, pid, chat_restore_taken, st);
    return 1;
}
