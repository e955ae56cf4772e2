/* chat_server.c - the chat server's life and its front door: creation, the
 * handlers of namespace "/", the table that routes each client event to its
 * handler, the rate limit, and the one place replies and errors are sent.
 *
 * Every event goes through chat_on_event: the bucket is charged first (so
 * unknown events count too), then the handler runs with a chat_req whose
 * result is the success ack; its return value picks the reply: the ack
 * ({ok:true,...} or {ok:false,error,message}) when the client gave a
 * callback, else chat:error for a refusal and nothing for a success.
 *
 * A connection may be closed under a running handler (a slow consumer cut
 * off by one of its own emits). Its state is then released after the
 * handler and its reply, never under them (see chat_on_disconnect). */
#include "chat/chat_internal.h"

#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/mem.h"

/* How often expired clientIds are purged from the store. */
#define CHAT__PURGE_INTERVAL_MS 60000

typedef struct {
    const char *name;
    chat_handler_fn fn;
} chat_event;

static const chat_event chat_events[] = {
    {"user:join", chat__on_user_join},
    {"room:create", chat__on_room_create},
    {"room:join", chat__on_room_join},
    {"room:leave", chat__on_room_leave},
    {"rooms:list", chat__on_rooms_list},
    {"message:room", chat__on_message_room},
    {"message:private", chat__on_message_private},
    {"history:fetch", chat__on_history_fetch},
    {"typing", chat__on_typing},
};

/* ---- helpers shared by the handlers --------------------------------------- */

int64_t chat__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int chat__result_set(chat_req *r, const char *key, json_t *v)
{
    if (v == NULL || json_object_set_new(r->result, key, v) != 0)
        return -CHAT_ERR_INTERNAL;
    return 0;
}

int chat__parse_name(const json_t *s, int (*parse)(const char *, size_t, chat_name_t *),
                     chat_err_t err, chat_name_t *out)
{
    if (parse(json_string_value(s), json_string_length(s), out) != 0)
        return -(int)err;
    return 0;
}

/* ---- connections ---------------------------------------------------------- */

static chat_conn *chat_conn_new(chat_server *c, sio_socket *s)
{
    chat_conn *conn = mem_calloc(1, sizeof(*conn));
    conn->sock = s;
    ratelimit_init(&conn->rl, &c->rl, uv_now(c->loop));
    conn->next = c->conns;
    if (c->conns)
        c->conns->prev = conn;
    c->conns = conn;
    sio_socket_set_data(s, conn);
    return conn;
}

/* Forgets conn: the user loses a connection, the rooms it was in lose a
 * member (the rooms:update goes out later, once sio has removed it). */
static void chat_conn_release(chat_server *c, chat_conn *conn)
{
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        c->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    if (conn->user) {
        chat__user_detach(c, conn);
        chat__presence_changed(c, CHAT__ROOMS);
    }
    mem_free(conn);
}

/* ---- sio handlers ----------------------------------------------------------- */

static json_t *chat_on_connect(void *ud, sio_socket *s, json_t *auth)
{
    chat_server *c = ud;
    if (c->closing)
        return json_pack("{s:s}", "message", "server shutting down");
    chat_name_t name = {0};
    if (c->cfg.auth_secret && chat__token_name(c, auth, &name) != 0)
        return json_pack("{s:s}", "message", "unauthorized");
    chat_conn *conn = chat_conn_new(c, s);
    if (c->cfg.auth_secret) {
        chat__user_attach(c, conn, &name);
        chat_name_free(&name);
    }
    return NULL;
}

static void chat_on_connection(void *ud, sio_socket *s)
{
    chat_conn *conn = sio_socket_data(s);
    /* Named at connect (token mode), before the socket could join rooms. */
    if (conn && conn->user)
        sio_join(s, conn->user->room);
}

static void chat_on_disconnect(void *ud, sio_socket *s, const char *reason, int recoverable)
{
    chat_conn *conn = sio_socket_data(s);
    if (conn == NULL)
        return; /* never ours, or detached by chat_server_free */
    chat_server *c = ud;
    if (recoverable) {
        /* sio keeps the socket for the recovery window: so do we. The
         * rooms it leaves now lose a member in rooms:update. */
        conn->kept = 1;
        chat__user_keep(c, conn);
        chat__presence_changed(c, CHAT__ROOMS);
        return;
    }
    sio_socket_set_data(s, NULL);
    if (conn == c->busy) {
        conn->gone = 1; /* chat_on_event releases it when its handler is done */
        return;
    }
    chat_conn_release(c, conn);
}

/* sio restored a kept socket, rooms included: the user is live again. */
static void chat_on_recovered(void *ud, sio_socket *s)
{
    chat_server *c = ud;
    chat_conn *conn = sio_socket_data(s);
    if (conn == NULL || !conn->kept)
        return;
    conn->kept = 0;
    chat__user_recover(c, conn);
    chat__presence_changed(c, CHAT__ROOMS);
}

/* The recovery window of a kept socket ended. */
static void chat_on_expired(void *ud, sio_socket *s)
{
    chat_server *c = ud;
    chat_conn *conn = sio_socket_data(s);
    if (conn == NULL)
        return;
    sio_socket_set_data(s, NULL);
    chat__user_expire(c, conn);
    chat_conn_release(c, conn);
}

/* Sends the reply of an event: see the top of this file. */
static void chat_reply(chat_req *r, const char *event, int64_t ack_id, int rc)
{
    if (rc == 0) {
        if (ack_id >= 0) {
            json_t *args = json_pack("[O]", r->result);
            if (args)
                sio_ack(r->sock, ack_id, args);
            json_decref(args);
        }
        return;
    }
    chat_err_t code = (chat_err_t)-rc;
    if ((unsigned)code < sizeof(r->c->errors) / sizeof(r->c->errors[0]))
        r->c->errors[code]++;
    json_t *args;
    if (ack_id >= 0)
        args = json_pack("[{s:b,s:s,s:s}]", "ok", 0, "error", chat_error_code_str(code),
                         "message", chat_error_message(code));
    else
        args = json_pack("[{s:s,s:s,s:s}]", "event", event, "error", chat_error_code_str(code),
                         "message", chat_error_message(code));
    if (args == NULL)
        return;
    if (ack_id >= 0)
        sio_ack(r->sock, ack_id, args);
    else
        sio_emit(r->sock, "chat:error", args);
    json_decref(args);
}

static void chat_on_event(void *ud, sio_socket *s, const char *event, json_t *args,
                          const sio_bin *bins, unsigned nbins, int64_t ack_id)
{
    chat_server *c = ud;
    chat_conn *conn = sio_socket_data(s);
    if (conn == NULL)
        return;
    int rc = ratelimit_take(&conn->rl, &c->rl, uv_now(c->loop)) == 0 ? 0 : -CHAT_ERR_RATE_LIMITED;
    const chat_event *ev = NULL;
    size_t nev = sizeof(chat_events) / sizeof(chat_events[0]);
    for (size_t i = 0; i < nev; i++)
        if (strcmp(chat_events[i].name, event) == 0)
            ev = &chat_events[i];
    c->events_in[ev ? (size_t)(ev - chat_events) : nev]++;
    if (ev == NULL)
        return; /* not in the contract: ignored, but it was counted */

    chat_req r = {.c = c, .conn = conn, .sock = s};
    c->busy = conn;
    if (rc == 0) {
        r.result = json_pack("{s:b}", "ok", 1);
        rc = r.result ? ev->fn(&r, json_array_get(args, 0)) : -CHAT_ERR_INTERNAL;
    }
    chat_reply(&r, ev->name, ack_id, rc);
    json_decref(r.result);
    c->busy = NULL;
    if (conn->gone)
        chat_conn_release(c, conn);
}

static const sio_handlers chat_handlers = {
    .on_connect = chat_on_connect,
    .on_connection = chat_on_connection,
    .on_event = chat_on_event,
    .on_disconnect = chat_on_disconnect,
    .on_recovered = chat_on_recovered,
    .on_expired = chat_on_expired,
};

/* ---- the server ------------------------------------------------------------ */

static void chat_purge(uv_timer_t *t)
{
    chat_server *c = t->data;
    int n = store_dedupe_purge(c->store, chat__now_ms());
    if (n < 0)
        log_warn("clientId purge failed", "error=%d", n);
}

chat_server *chat_server_new(uv_loop_t *loop, sio_server *sio, store_t *store,
                             const chat_config *cfg)
{
    ratelimit_config_t rl;
    if (ratelimit_config_init(&rl, cfg->rate, cfg->burst) != 0) {
        log_error("invalid rate limit", "rate=%g burst=%u", cfg->rate, cfg->burst);
        return NULL;
    }
    chat_server *c = mem_calloc(1, sizeof(*c));
    c->loop = loop;
    c->sio = sio;
    c->store = store;
    c->cfg = *cfg;
    c->rl = rl;
    c->cfg.auth_secret = NULL;
    if (cfg->auth_secret && cfg->auth_secret[0]) {
        c->cfg.auth_secret = mem_strdup(cfg->auth_secret);
        c->secret_len = strlen(cfg->auth_secret);
    }
    chat__presence_init(c);
    uv_timer_init(loop, &c->purge_timer);
    c->purge_timer.data = c;
    uv_timer_start(&c->purge_timer, chat_purge, CHAT__PURGE_INTERVAL_MS, CHAT__PURGE_INTERVAL_MS);
    c->handles_open = 2;
    c->nsp = sio_namespace(sio, "/", &chat_handlers, c);
    return c;
}

static void chat_handle_closed(uv_handle_t *h)
{
    chat_server *c = h->data;
    if (--c->handles_open > 0)
        return;
    mem_free((char *)c->cfg.auth_secret);
    mem_free(c);
}

void chat_server_free(chat_server *c)
{
    if (c == NULL)
        return;
    c->closing = 1;
    while (c->conns) {
        chat_conn *conn = c->conns;
        c->conns = conn->next;
        sio_socket_set_data(conn->sock, NULL);
        mem_free(conn);
    }
    chat__users_free(c);
    chat__rooms_free(c);
    /* The struct lives until both close callbacks ran, so a handler sio
     * calls meanwhile (a socket closing) finds it and sees `closing`. */
    uv_close((uv_handle_t *)&c->presence_timer, chat_handle_closed);
    uv_close((uv_handle_t *)&c->purge_timer, chat_handle_closed);
}

/* ---- metrics ---------------------------------------------------------------- */

void chat__store_timed(chat_server *c, int which, uint64_t t0)
{
    metrics_hist_observe(&c->store_latency[which], (double)(uv_hrtime() - t0) / 1e3);
}

void chat_server_metrics(const chat_server *c, buf_t *out)
{
    char label[96];
    size_t nev = sizeof(chat_events) / sizeof(chat_events[0]);
    metrics_header(out, "parley_chat_events_in_total", "counter",
                   "Client events received, by name (\"other\": not in the contract).");
    for (size_t i = 0; i <= nev; i++) {
        snprintf(label, sizeof(label), "event=\"%s\"", i < nev ? chat_events[i].name : "other");
        metrics_sample(out, "parley_chat_events_in_total", label, (double)c->events_in[i]);
    }
    metrics_header(out, "parley_chat_refused_total", "counter",
                   "Client events refused, by error code (rate_limited included).");
    for (int code = CHAT_ERR_INVALID_PAYLOAD; code <= CHAT_ERR_INTERNAL; code++) {
        snprintf(label, sizeof(label), "error=\"%s\"", chat_error_code_str((chat_err_t)code));
        metrics_sample(out, "parley_chat_refused_total", label, (double)c->errors[code]);
    }
    metrics_header(out, "parley_chat_events_out_total", "counter",
                   "Server events delivered, by name (one per recipient).");
    const struct { const char *name; uint64_t v; } outs[] = {
        {"users:update", c->out_users}, {"rooms:update", c->out_rooms},
        {"message:receive", c->out_messages}, {"typing", c->out_typing},
    };
    for (size_t i = 0; i < sizeof(outs) / sizeof(outs[0]); i++) {
        snprintf(label, sizeof(label), "event=\"%s\"", outs[i].name);
        metrics_sample(out, "parley_chat_events_out_total", label, (double)outs[i].v);
    }
    metrics_header(out, "parley_store_latency_seconds", "histogram",
                   "Store call latency, by operation.");
    static const char *const ops[] = {"append", "history", "room", "dedupe"};
    for (int i = 0; i < 4; i++) {
        snprintf(label, sizeof(label), "op=\"%s\"", ops[i]);
        metrics_histogram(out, "parley_store_latency_seconds", label, &c->store_latency[i]);
    }
}
