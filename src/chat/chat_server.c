/* chat_server.c - the chat server's life and its front door: creation, the
 * handlers of namespace "/", the table that routes each client event to its
 * handler, the rate limit, the per-connection order of events, and the one
 * place replies and errors are sent.
 *
 * Every event goes through chat_on_event: the bucket is charged first (so
 * unknown events count too), then the event becomes a chat_req at the end
 * of its connection's FIFO. The first request of a FIFO runs: its handler
 * gets a chat_req whose result is the success ack and returns a reply code,
 * or CHAT__PENDING while it waits for the store, and then a continuation
 * finishes it with chat__req_done. Only then does the next event of that
 * connection start, so a connection's events take effect and are answered
 * in the order they were sent (a message sent right after a room:join is
 * checked against the joined room), whatever the store's latency; events
 * of other connections are not held up. The reply is the ack ({ok:true,...}
 * or {ok:false,error,message}) when the client gave a callback, else
 * chat:error for a refusal and nothing for a success. At most
 * CHAT__QUEUE_MAX events wait behind the running one: more are refused at
 * once with rate_limited (out of order: the only exception).
 *
 * Lifetimes. A request holds a reference to its socket and its arguments;
 * the connection lives while its FIFO is not empty. A connection that
 * disconnects with events in its FIFO keeps its chat state until they have
 * run (their replies go nowhere; their messages are stored and delivered
 * as if sent before the disconnect): the disconnect is applied after them.
 * chat_server_free drops the events that have not started; the running
 * ones finish quietly when their store op completes, and the server's
 * memory goes when the last one has (c->pending). */
#include "chat/chat_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "util/log.h"
#include "util/mem.h"

/* How often expired clientIds and guests are purged from the store (and
 * local users touched): at most this, and at least four times per guest
 * lifetime. */
#define CHAT__PURGE_INTERVAL_MS 60000
#define CHAT__GUEST_TTL_DEFAULT_MS ((int64_t)30 * 24 * 3600 * 1000)

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
    {"conversations:list", chat__on_conversations_list},
    {"read:mark", chat__on_read_mark},
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

/* ---- socket rooms, as the chat sees them ------------------------------------ */

/* The snapshot lives in the first request of the FIFO (see chat_q_pop). */
static void chat_snap_add(void *ud, const char *room)
{
    chat_req *h = ud;
    h->snap = mem_realloc(h->snap, (h->nsnap + 1) * sizeof(char *));
    h->snap[h->nsnap++] = mem_strdup(room);
}

int chat__in_room(const chat_conn *conn, const char *room)
{
    if (sio_socket_connected(conn->sock))
        return sio_in_room(conn->sock, room);
    for (size_t i = 0; conn->q && i < conn->q->nsnap; i++)
        if (strcmp(conn->q->snap[i], room) == 0)
            return 1;
    return 0;
}

void chat__join(chat_conn *conn, const char *room)
{
    if (sio_socket_connected(conn->sock)) {
        sio_join(conn->sock, room);
        return;
    }
    if (conn->q && conn->q->snap && !chat__in_room(conn, room))
        chat_snap_add(conn->q, room);
}

void chat__leave(chat_conn *conn, const char *room)
{
    if (sio_socket_connected(conn->sock)) {
        sio_leave(conn->sock, room);
        return;
    }
    chat_req *h = conn->q;
    for (size_t i = 0; h && i < h->nsnap; i++) {
        if (strcmp(h->snap[i], room) == 0) {
            mem_free(h->snap[i]);
            h->snap[i] = h->snap[--h->nsnap];
            return;
        }
    }
}

void chat__conn_rooms(const chat_conn *conn, void (*fn)(void *ud, const char *room), void *ud)
{
    if (sio_socket_connected(conn->sock)) {
        sio_socket_rooms(conn->sock, fn, ud);
        return;
    }
    for (size_t i = 0; conn->q && i < conn->q->nsnap; i++)
        fn(ud, conn->q->snap[i]);
}

static void chat_snap_free(chat_req *h)
{
    for (size_t i = 0; i < h->nsnap; i++)
        mem_free(h->snap[i]);
    mem_free(h->snap);
    h->snap = NULL;
    h->nsnap = 0;
}

/* conn's socket is disconnecting with events still to run: remember its
 * rooms (sio has not made it leave them yet). A snapshot from an earlier
 * disconnect (then a recovery) is stale. */
static void chat_snap_take(chat_conn *conn)
{
    chat_req *h = conn->q;
    chat_snap_free(h);
    h->snap = mem_alloc(sizeof(char *));
    h->nsnap = 0;
    sio_socket_rooms(conn->sock, chat_snap_add, h);
}

/* ---- connections ------------------------------------------------------------ */

chat_conn *chat__conn_new(chat_server *c, sio_socket *s)
{
    chat_conn *conn = mem_calloc(1, sizeof(*conn));
    conn->sock = sio_socket_ref(s);
    ratelimit_init(&conn->rl, &c->rl, uv_now(c->loop));
    conn->next = c->conns;
    if (c->conns)
        c->conns->prev = conn;
    c->conns = conn;
    sio_socket_set_data(s, conn);
    return conn;
}

static void chat_conn_free(chat_conn *conn)
{
    sio_socket_unref(conn->sock);
    mem_free(conn);
}

/* Forgets conn: the user loses a connection (or its reservation, when conn
 * was kept), the rooms it was in lose a member (the rooms:update goes out
 * later, once sio has removed it). Its FIFO must be empty. */
static void chat_conn_release(chat_server *c, chat_conn *conn)
{
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        c->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    chat__session_end(c, conn);
    if (conn->user && conn->kept) {
        chat__user_expire(c, conn);
    } else if (conn->user) {
        chat__user_detach(c, conn);
        chat__presence_changed(c, CHAT__ROOMS);
    }
    chat_conn_free(conn);
}

void chat__conn_gone(chat_server *c, chat_conn *conn)
{
    sio_socket_set_data(conn->sock, NULL);
    chat_conn_release(c, conn);
}

/* sio keeps the socket for the recovery window: so do we. The rooms it
 * leaves now lose a member in rooms:update. */
static void chat_conn_keep(chat_server *c, chat_conn *conn)
{
    conn->kept = 1;
    chat__session_keep(c, conn);
    chat__user_keep(c, conn);
    chat__presence_changed(c, CHAT__ROOMS);
}

/* conn's FIFO may have emptied: apply the disconnect that waited for it. */
static void chat_conn_settle(chat_server *c, chat_conn *conn)
{
    if (conn->q || conn->pumping)
        return;
    if (c->closing) { /* detached by chat_server_free */
        chat_conn_free(conn);
        return;
    }
    int disc = conn->disc;
    conn->disc = 0;
    if (disc == CHAT__DISC_KEEP)
        chat_conn_keep(c, conn);
    else if (disc == CHAT__DISC_DROP)
        chat_conn_release(c, conn);
}

/* ---- requests --------------------------------------------------------------- */

#define CHAT__SPARE_MAX 256

static chat_req *chat_req_new(chat_server *c, chat_conn *conn, const chat_event *ev,
                              json_t *args, int64_t ack_id, int verdict)
{
    chat_req *r = c->spare;
    if (r) {
        c->spare = r->next;
        c->nspare--;
    } else {
        r = mem_alloc(sizeof(*r));
    }
    memset(r, 0, sizeof(*r));
    r->c = c;
    r->conn = conn;
    r->sock = sio_socket_ref(conn->sock);
    r->event = ev->name;
    r->fn = ev->fn;
    r->args = json_incref(args);
    r->ack_id = ack_id;
    r->verdict = verdict;
    return r;
}

/* Releases what r holds (not its FIFO bookkeeping) and recycles it. */
static void chat_req_free(chat_server *c, chat_req *r)
{
    chat_name_free(&r->name);
    mem_free(r->conv);
    mem_free(r->peer_room);
    json_decref(r->msg);
    json_decref(r->result);
    json_decref(r->args);
    sio_socket_unref(r->sock);
    if (c->nspare < CHAT__SPARE_MAX) {
        r->next = c->spare;
        c->spare = r;
        c->nspare++;
    } else {
        mem_free(r);
    }
}

static void chat_q_push(chat_conn *conn, chat_req *r)
{
    chat_req *h = conn->q;
    if (h == NULL) {
        conn->q = r;
        r->qtail = r;
        r->qlen = 1;
        return;
    }
    h->qtail->next = r;
    h->qtail = r;
    h->qlen++;
}

/* Removes the first request; the bookkeeping moves to the next one. */
static chat_req *chat_q_pop(chat_conn *conn)
{
    chat_req *h = conn->q;
    chat_req *n = h->next;
    conn->q = n;
    if (n) {
        n->qtail = h->qtail;
        n->qlen = h->qlen - 1;
        n->snap = h->snap;
        n->nsnap = h->nsnap;
        h->snap = NULL;
        h->nsnap = 0;
    } else {
        chat_snap_free(h);
    }
    h->next = NULL;
    return h;
}

/* Sends the reply of an event: see the top of this file. */
static void chat_reply(chat_server *c, sio_socket *sock, const char *event, int64_t ack_id,
                       int rc, const json_t *result)
{
    if (rc == 0) {
        if (ack_id >= 0 && sio_socket_connected(sock)) {
            json_t *args = json_pack("[O]", result);
            if (args)
                sio_ack(sock, ack_id, args);
            json_decref(args);
        }
        return;
    }
    chat_err_t code = (chat_err_t)-rc;
    if ((unsigned)code < sizeof(c->errors) / sizeof(c->errors[0]))
        c->errors[code]++;
    if (!sio_socket_connected(sock))
        return;
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
        sio_ack(sock, ack_id, args);
    else
        sio_emit(sock, "chat:error", args);
    json_decref(args);
}

static void chat_req_start(chat_req *r)
{
    int rc = r->verdict;
    r->started = 1;
    if (rc == 0) {
        r->result = json_pack("{s:b}", "ok", 1);
        rc = r->result ? r->fn(r, json_array_get(r->args, 0)) : -CHAT_ERR_INTERNAL;
    }
    if (rc != CHAT__PENDING)
        chat__req_done(r, rc);
}

/* Starts conn's events in order while each finishes at once; stops at one
 * that waits (its completion calls us again). A loop, not recursion: a
 * store that completes inline finishes each request inside its start. */
static void chat_conn_pump(chat_server *c, chat_conn *conn)
{
    if (conn->pumping)
        return;
    conn->pumping = 1;
    while (conn->q && !conn->q->started && !c->closing)
        chat_req_start(conn->q);
    conn->pumping = 0;
    chat_conn_settle(c, conn);
}

void chat__req_done(chat_req *r, int rc)
{
    chat_server *c = r->c;
    chat_conn *conn = r->conn;
    assert(conn->q == r && r->started);
    if (!c->closing) /* and not to a disconnected socket (chat_reply) */
        chat_reply(c, r->sock, r->event, r->ack_id, rc, r->result);
    chat_req_free(c, chat_q_pop(conn));
    chat_conn_pump(c, conn);
}

void chat__req_store(chat_req *r)
{
    r->c->pending++;
    r->t0 = uv_hrtime();
}

int chat__req_resume(chat_req *r, int which)
{
    chat_server *c = r->c;
    c->pending--;
    if (c->closing) {
        chat__req_done(r, -CHAT_ERR_INTERNAL);
        chat__server_maybe_free(c);
        return 1;
    }
    chat__store_timed(c, which, r->t0);
    return 0;
}

/* Events that did not start when the server closes: dropped. Only the
 * first one of a FIFO can have started. */
static void chat_conn_drop_waiting(chat_server *c, chat_conn *conn)
{
    chat_req *h = conn->q;
    if (h == NULL)
        return;
    while (h->next) {
        chat_req *r = h->next;
        h->next = r->next;
        chat_req_free(c, r);
    }
    h->qtail = h;
    h->qlen = 1;
    if (!h->started)
        chat_req_free(c, chat_q_pop(conn));
}

/* ---- sio handlers ----------------------------------------------------------- */

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
    if (!recoverable)
        sio_socket_set_data(s, NULL);
    if (conn->q) {
        /* Events received before the disconnect still run first. */
        chat_snap_take(conn);
        conn->disc = recoverable ? CHAT__DISC_KEEP : CHAT__DISC_DROP;
        return;
    }
    if (recoverable)
        chat_conn_keep(c, conn);
    else
        chat_conn_release(c, conn);
}

/* sio restored a kept socket, rooms included: the user is live again. */
static void chat_on_recovered(void *ud, sio_socket *s)
{
    chat_server *c = ud;
    chat_conn *conn = sio_socket_data(s);
    if (conn == NULL)
        return;
    if (conn->disc == CHAT__DISC_KEEP) { /* back before the keep applied */
        conn->disc = 0;
        return;
    }
    if (!conn->kept)
        return;
    conn->kept = 0;
    chat__user_recover(c, conn);
    chat__session_save(c, conn); /* owned again: no expiry */
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
    if (conn->q) { /* the keep never applied: a plain release, later */
        conn->disc = CHAT__DISC_DROP;
        return;
    }
    chat_conn_release(c, conn);
}

static void chat_on_event(void *ud, sio_socket *s, const char *event, json_t *args,
                          const sio_bin *bins, unsigned nbins, int64_t ack_id)
{
    chat_server *c = ud;
    chat_conn *conn = sio_socket_data(s);
    if (conn == NULL || c->closing)
        return;
    int verdict =
        ratelimit_take(&conn->rl, &c->rl, uv_now(c->loop)) == 0 ? 0 : -CHAT_ERR_RATE_LIMITED;
    if (verdict == 0 && args == NULL) /* too deep for the parser (sio.h) */
        verdict = -CHAT_ERR_INVALID_PAYLOAD;
    const chat_event *ev = NULL;
    size_t nev = sizeof(chat_events) / sizeof(chat_events[0]);
    for (size_t i = 0; i < nev; i++)
        if (strcmp(chat_events[i].name, event) == 0)
            ev = &chat_events[i];
    c->events_in[ev ? (size_t)(ev - chat_events) : nev]++;
    if (ev == NULL)
        return; /* not in the contract: ignored, but it was counted */
    if (conn->q && conn->q->qlen > CHAT__QUEUE_MAX) {
        chat_reply(c, s, ev->name, ack_id, -CHAT_ERR_RATE_LIMITED, NULL);
        return;
    }
    /* A refused event waits for its turn too (its reply keeps its place),
     * but without its payload. */
    chat_q_push(conn, chat_req_new(c, conn, ev, verdict == 0 ? args : NULL, ack_id, verdict));
    chat_conn_pump(c, conn);
}

static const sio_handlers chat_handlers = {
    .on_connect = chat__on_connect,
    .on_connection = chat_on_connection,
    .on_event = chat_on_event,
    .on_disconnect = chat_on_disconnect,
    .on_recovered = chat_on_recovered,
    .on_expired = chat_on_expired,
    .on_restore = chat__on_restore,
};

/* ---- the server ------------------------------------------------------------ */

static void chat_purged(void *ud, int rc, uint64_t n)
{
    chat_server *c = ud;
    c->pending--;
    if (c->closing) {
        chat__server_maybe_free(c);
        return;
    }
    chat__store_timed(c, CHAT__LAT_DEDUPE, c->purge_t0);
    if (rc < 0)
        log_warn("clientId purge failed", "error=%d", rc);
}

static void chat_purge(uv_timer_t *t)
{
    chat_server *c = t->data;
    chat__rooms_report(c); /* also ends the watches of long-empty rooms */
    chat__users_tick(c);
    c->pending++;
    c->purge_t0 = uv_hrtime();
    store_dedupe_purge(c->store, chat__now_ms(), chat_purged, c);
}

chat_server *chat_server_new(uv_loop_t *loop, sio_server *sio, store_t *store, bus_t *bus,
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
    c->bus = bus;
    c->cfg = *cfg;
    c->rl = rl;
    c->cfg.auth_secret = NULL;
    if (cfg->auth_secret && cfg->auth_secret[0]) {
        c->cfg.auth_secret = mem_strdup(cfg->auth_secret);
        c->secret_len = strlen(cfg->auth_secret);
    }
    if (c->cfg.guest_ttl_ms <= 0)
        c->cfg.guest_ttl_ms = CHAT__GUEST_TTL_DEFAULT_MS;
    if (cfg->token_key)
        memcpy(c->token_key, cfg->token_key, sizeof(c->token_key));
    else if (RAND_bytes(c->token_key, (int)sizeof(c->token_key)) != 1)
        abort(); /* as rand_id: nothing safe can be done without the CSPRNG */
    c->cfg.token_key = NULL;
    chat__presence_init(c);
    chat__cluster_init(c);
    uv_timer_init(loop, &c->purge_timer);
    c->purge_timer.data = c;
    uint64_t every = CHAT__PURGE_INTERVAL_MS;
    if ((uint64_t)c->cfg.guest_ttl_ms / 4 < every)
        every = (uint64_t)c->cfg.guest_ttl_ms / 4 > 50 ? (uint64_t)c->cfg.guest_ttl_ms / 4 : 50;
    uv_timer_start(&c->purge_timer, chat_purge, every, every);
    c->handles_open = 2;
    c->nsp = sio_namespace(sio, "/", &chat_handlers, c);
    return c;
}

void chat__server_maybe_free(chat_server *c)
{
    if (!c->closing || c->handles_open > 0 || c->pending > 0)
        return;
    while (c->spare) {
        chat_req *r = c->spare;
        c->spare = r->next;
        mem_free(r);
    }
    mem_free((char *)c->cfg.auth_secret);
    mem_free(c);
}

static void chat_handle_closed(uv_handle_t *h)
{
    chat_server *c = h->data;
    c->handles_open--;
    chat__server_maybe_free(c);
}

void chat_server_free(chat_server *c)
{
    if (c == NULL)
        return;
    c->closing = 1;
    while (c->conns) {
        chat_conn *conn = c->conns;
        c->conns = conn->next;
        conn->prev = conn->next = NULL;
        sio_socket_set_data(conn->sock, NULL);
        chat__session_keep(c, conn); /* restorable elsewhere for the window */
        conn->user = NULL; /* freed below */
        chat_conn_drop_waiting(c, conn);
        /* A running event finishes when its store op completes (quietly:
         * c->closing), and frees conn then (chat_conn_settle). */
        chat_conn_settle(c, conn);
    }
    chat__users_free(c);
    chat__rooms_free(c);
    /* The struct lives until both close callbacks ran and every store op
     * completed, so a handler sio calls meanwhile (a socket closing) finds
     * it and sees `closing`. */
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
    for (int code = CHAT_ERR_INVALID_PAYLOAD; code <= CHAT_ERR_MESSAGE_NOT_FOUND; code++) {
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
                   "Store operation latency, from its start to its completion, by operation"
                   " (dedupe: the clientId purge).");
    static const char *const ops[] = {"append", "history", "room", "dedupe"};
    for (int i = 0; i < 4; i++) {
        snprintf(label, sizeof(label), "op=\"%s\"", ops[i]);
        metrics_histogram(out, "parley_store_latency_seconds", label, &c->store_latency[i]);
    }
    if (!bus_clustered(c->bus))
        return;
    metrics_header(out, "parley_bus_wait_seconds", "histogram",
                   "Time a client event waited for the bus (a name claim, a room watch).");
    metrics_histogram(out, "parley_bus_wait_seconds", NULL, &c->store_latency[CHAT__LAT_BUS]);
    metrics_single(out, "parley_bus_deliveries_in_total", "counter",
                   "Deliveries published by other nodes and made here.", (double)c->bus_in);
    metrics_single(out, "parley_bus_deliveries_bad_total", "counter",
                   "Publications from other nodes that could not be read.", (double)c->bus_bad);
    metrics_single(out, "parley_bus_replays_total", "counter",
                   "Topics whose messages missed while their subscription was lost (a Redis "
                   "failover) were read back from the store.", (double)c->replays);
    metrics_single(out, "parley_bus_replayed_total", "counter",
                   "Messages those replays delivered.", (double)c->replayed);
    metrics_single(out, "parley_bus_replay_duplicates_total", "counter",
                   "Deliveries from other nodes dropped because a replay had them.",
                   (double)c->replay_dups);
}
