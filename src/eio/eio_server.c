/* eio_server.c - Engine.IO sessions: handshake, request routing, the
 * long-polling transport, heartbeats and session lifetime.
 *
 * Heartbeats cost no timer per session: a session waits either in ping_q
 * (until its next ping is due) or in pong_q (until its pong is late); both
 * are FIFO deadline queues (util/tq.h) with one timer each. Long-poll
 * answers are batched: sending to a polling session marks it, and the net
 * layer's flush hook answers every marked session's pending GET once per
 * loop turn with all its queued packets. */
#include "eio/eio_internal.h"
#include "util/b64.h"
#include "util/log.h"
#include "util/mem.h"

#include <http_parser.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- messages ---------------------------------------------------------- */

void eio_msg_init(eio_msg *m, const void *data, size_t len, int binary)
{
    size_t head = 10; /* the largest server frame header */
    m->rb = rbuf_new(head + 1 + len);
    m->binary = (uint8_t)(binary != 0);
    m->pkt_off = (uint16_t)head;
    size_t plen = len;
    uint8_t *p = m->rb->data + head;
    if (!binary) {
        *p++ = '4';
        plen++;
    }
    if (len)
        memcpy(p, data, len);
    uint8_t hdr[WS_MAX_HEADER];
    size_t hl = ws_encode_header(hdr, binary ? WS_OP_BINARY : WS_OP_TEXT, 1, plen);
    m->ws_off = (uint16_t)(head - hl);
    memcpy(m->rb->data + m->ws_off, hdr, hl);
    m->rb->len = (uint32_t)(head + plen);
}

void eio_msg_release(eio_msg *m)
{
    rbuf_unref(m->rb);
    m->rb = NULL;
}

/* A control packet ("2", "6", "3probe") as a message of its own type. */
static void eio__msg_packet(eio_msg *m, const char *pkt)
{
    eio_msg_init(m, pkt + 1, strlen(pkt) - 1, 0);
    m->rb->data[m->pkt_off] = (uint8_t)pkt[0];
}

/* ---- sessions ---------------------------------------------------------- */

static void eio__pollq_free(eio_session *s)
{
    if (s->pollq == NULL)
        return;
    for (uint32_t i = 0; i < s->pollq->count; i++)
        eio_msg_release(&s->pollq->items[i]);
    mem_free(s->pollq->items);
    mem_free(s->pollq);
    s->pollq = NULL;
}

static void eio__pollq_push(eio_session *s, const eio_msg *m)
{
    if (s->pollq == NULL)
        s->pollq = mem_calloc(1, sizeof(eio_pollq));
    eio_pollq *q = s->pollq;
    if (q->count == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 4;
        q->items = mem_realloc(q->items, q->cap * sizeof(eio_msg));
    }
    q->items[q->count] = *m;
    rbuf_ref(m->rb);
    q->count++;
    q->bytes += m->rb->len - m->pkt_off;
}

size_t eio__open_packet(eio_session *s, char *out, size_t size)
{
    int upgrades = s->transport == EIO_T_POLLING && s->srv->cfg.allow_upgrades;
    int n = snprintf(out, size,
                     "0{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%u,"
                     "\"pingTimeout\":%u,\"maxPayload\":%zu}",
                     s->sid, upgrades ? "\"websocket\"" : "", s->srv->cfg.ping_interval_ms,
                     s->srv->cfg.ping_timeout_ms, s->srv->cfg.max_payload);
    return (size_t)n < size ? (size_t)n : size - 1;
}

eio_session *eio__session_new(eio_server *srv, int transport)
{
    eio_session *s = mem_calloc(1, sizeof(*s));
    s->srv = srv;
    s->transport = (uint8_t)transport;
    eio_session *dup;
    do {
        rand_id(s->sid);
        HASH_FIND_STR(srv->sessions, s->sid, dup);
    } while (dup);
    HASH_ADD_STR(srv->sessions, sid, s);
    srv->count++;
    srv->stats.handshakes++;
    if (transport == EIO_T_WEBSOCKET)
        srv->stats.open_websocket++;
    else
        srv->stats.open_polling++;
    tq_push(&srv->ping_q, &s->hb, uv_now(srv->loop) + srv->cfg.ping_interval_ms);
    return s;
}

static void eio__session_free(eio_session *s)
{
    eio__pollq_free(s);
    ws_parser_reset(&s->wsp);
    mem_free(s);
}

/* Answers the pending long-poll (if any) with a single control packet. */
static void eio__answer_poll_with(eio_session *s, const eio_msg *m);

static void eio__close(eio_session *s, const char *reason, int client_initiated)
{
    if (s->closed)
        return;
    eio_server *srv = s->srv;
    s->closed = 1;
    tq_remove(&s->hb);
    HASH_DEL(srv->sessions, s);
    srv->count--;
    if (s->transport == EIO_T_WEBSOCKET)
        srv->stats.open_websocket--;
    else
        srv->stats.open_polling--;
    eio__upgrade_abort(s);
    if (s->poll)
        eio__answer_poll_with(s, client_initiated ? &srv->msg_noop : &srv->msg_close);
    if (s->ws) {
        net_conn *c = s->ws;
        s->ws = NULL;
        net_conn_set_owner(c, NULL, NULL);
        eio__ws_close(c, client_initiated ? WS_CLOSE_NORMAL : WS_CLOSE_GOING_AWAY);
    }
    eio__pollq_free(s);
    if (!s->dirty) {
        /* Not on the poll list: put it on the list of the dead. */
        s->next_dirty = srv->dead;
        srv->dead = s;
        turn_arm(net_server_turn(srv->net), &srv->flush);
    }
    log_debug("session closed", "sid=%s reason=\"%s\"", s->sid, reason);
    if (srv->h->on_close)
        srv->h->on_close(srv->ud, s, reason);
}

void eio_session_close(eio_session *s, const char *reason)
{
    eio__close(s, reason ? reason : "forced close", 0);
}

void eio__session_closed_by_transport(eio_session *s, const char *reason)
{
    eio__close(s, reason, 1);
}

const char *eio_session_id(const eio_session *s) { return s->sid; }
void eio_session_set_data(eio_session *s, void *data) { s->data = data; }
void *eio_session_data(const eio_session *s) { return s->data; }
void eio_server_stats(const eio_server *srv, eio_stats *out) { *out = srv->stats; }

void eio__mark_poll_dirty(eio_session *s)
{
    if (s->dirty || s->closed)
        return;
    s->dirty = 1;
    s->next_dirty = s->srv->dirty;
    s->srv->dirty = s;
    turn_arm(net_server_turn(s->srv->net), &s->srv->flush);
}

int eio_send(eio_session *s, const eio_msg *m)
{
    if (s->closed)
        return ERR_CLOSED;
    if (s->transport == EIO_T_WEBSOCKET)
        return eio__ws_send(s->ws, m);
    eio__pollq_push(s, m);
    if (s->srv->cfg.max_poll_queue && s->pollq->bytes > s->srv->cfg.max_poll_queue) {
        log_warn("slow polling client disconnected", "sid=%s queued=%zu limit=%zu", s->sid,
                 s->pollq->bytes, s->srv->cfg.max_poll_queue);
        eio__close(s, "transport error", 0);
        return ERR_LIMITED;
    }
    if (s->poll)
        eio__mark_poll_dirty(s);
    return 0;
}

/* ---- heartbeat ---------------------------------------------------------- */

static void eio__ping_due(tq_queue *q, tq_node *n)
{
    eio_session *s = mem_container_of(n, eio_session, hb);
    eio_server *srv = q->data;
    s->awaiting_pong = 1;
    tq_push(&srv->pong_q, &s->hb, uv_now(srv->loop) + srv->cfg.ping_timeout_ms);
    eio_send(s, &srv->msg_ping);
}

static void eio__pong_late(tq_queue *q, tq_node *n)
{
    eio_session *s = mem_container_of(n, eio_session, hb);
    ((eio_server *)q->data)->stats.ping_timeouts++;
    eio__close(s, "ping timeout", 0);
}

/* ---- inbound packets (both transports) ---------------------------------- */

void eio__on_packet(eio_session *s, const eio_packet *p)
{
    eio_server *srv = s->srv;
    if (s->closed)
        return;
    switch (p->type) {
    case EIO_PONG:
        if (s->awaiting_pong) {
            s->awaiting_pong = 0;
            tq_push(&srv->ping_q, &s->hb, uv_now(srv->loop) + srv->cfg.ping_interval_ms);
        }
        break;
    case EIO_MESSAGE:
        if (srv->h->on_message)
            srv->h->on_message(srv->ud, s, p->data, p->len, p->binary);
        break;
    case EIO_CLOSE:
        eio__close(s, "transport close", 1);
        break;
    case EIO_NOOP:
        break;
    default:
        /* A ping from the client (wrong direction in protocol 4), an open or
         * an upgrade on the active transport: a protocol violation. */
        eio__close(s, "parse error", 0);
        break;
    }
}

/* ---- HTTP: errors, CORS ------------------------------------------------- */

static const char *const eio__error_messages[] = {
    "Transport unknown", "Session ID unknown", "Bad handshake method",
    "Bad request", "Forbidden", "Unsupported protocol version",
};

static int eio__origin_allowed(const eio_server *srv, const char *origin)
{
    for (size_t i = 0; i < srv->cfg.cors_count; i++) {
        const char *o = srv->cfg.cors_origins[i];
        if (strcmp(o, "*") == 0 || strcasecmp(o, origin) == 0)
            return 1;
    }
    return 0;
}

static int eio__any_origin(const eio_server *srv)
{
    for (size_t i = 0; i < srv->cfg.cors_count; i++)
        if (strcmp(srv->cfg.cors_origins[i], "*") == 0)
            return 1;
    return 0;
}

/* Same origin: the Origin's host[:port] equals the Host header. */
static int eio__same_origin(const net_request *req)
{
    if (!req->origin || !req->host)
        return 0;
    const char *p = strstr(req->origin, "://");
    return p && strcasecmp(p + 3, req->host) == 0;
}

/* A request passes when it has no Origin (not a browser), is same-origin,
 * or comes from an allowed origin. Browsers enforce CORS on polling
 * themselves, but not on WebSocket: this check is what stops another site's
 * page from opening a socket with the user's cookies. */
static int eio__request_allowed(const eio_server *srv, const net_request *req)
{
    return !req->origin || eio__same_origin(req) || eio__origin_allowed(srv, req->origin);
}

void eio__cors_headers(eio_server *srv, const net_request *req, char *out, size_t size)
{
    out[0] = '\0';
    if (!req || !req->origin)
        return;
    if (eio__origin_allowed(srv, req->origin) && !eio__any_origin(srv)) {
        snprintf(out, size,
                 "Access-Control-Allow-Origin: %s\r\n"
                 "Access-Control-Allow-Credentials: true\r\n"
                 "Vary: Origin\r\n",
                 req->origin);
    } else if (eio__any_origin(srv)) {
        snprintf(out, size, "Access-Control-Allow-Origin: *\r\n");
    }
}

void eio__respond_error(eio_server *srv, net_conn *c, net_request *req, int code)
{
    char body[96], headers[512];
    int n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", code,
                     eio__error_messages[code]);
    eio__cors_headers(srv, req, headers, sizeof(headers));
    net_respond(c, code == 4 ? 403 : 400, "application/json", headers, body, (size_t)n);
}

static void eio__respond_text(eio_server *srv, net_conn *c, const char *ctype,
                              const void *body, size_t len)
{
    char headers[512];
    eio__cors_headers(srv, net_conn_request(c), headers, sizeof(headers));
    net_respond(c, 200, ctype, headers, body, len);
}

/* ---- long-polling ------------------------------------------------------- */

static void eio__poll_conn_closed(void *owner, net_conn *c)
{
    eio_session *s = owner;
    if (s->poll == c) {
        s->poll = NULL;
        eio__close(s, "transport close", 1);
    }
}

static const net_owner_ops eio__poll_ops = {.on_close = eio__poll_conn_closed};

static void eio__poll_release(eio_session *s, net_conn **out)
{
    *out = s->poll;
    s->poll = NULL;
    net_conn_set_owner(*out, NULL, NULL);
}

static void eio__answer_poll_with(eio_session *s, const eio_msg *m)
{
    net_conn *c;
    eio__poll_release(s, &c);
    char headers[512];
    eio__cors_headers(s->srv, net_conn_request(c), headers, sizeof(headers));
    net_respond_rbuf(c, 200, "text/plain; charset=UTF-8", headers, m->rb, m->pkt_off,
                     m->rb->len - m->pkt_off);
}

/* Writes all queued packets as the answer to the pending GET. */
static void eio__answer_poll(eio_session *s)
{
    eio_pollq *q = s->pollq;
    if (!s->poll || !q || q->count == 0)
        return;
    if (q->count == 1 && !q->items[0].binary) {
        eio__answer_poll_with(s, &q->items[0]);
    } else {
        buf_t body = {0};
        for (uint32_t i = 0; i < q->count; i++) {
            const eio_msg *m = &q->items[i];
            const uint8_t *d = m->rb->data + m->pkt_off;
            size_t len = m->rb->len - m->pkt_off;
            if (m->binary)
                eio_payload_append(&body, EIO_MESSAGE, 1, d, len);
            else
                eio_payload_append(&body, (eio_ptype)(d[0] - '0'), 0, d + 1, len - 1);
        }
        net_conn *c;
        eio__poll_release(s, &c);
        eio__respond_text(s->srv, c, "text/plain; charset=UTF-8", body.data, body.len);
        buf_free(&body);
    }
    eio__pollq_free(s);
}

static void eio__poll_get(eio_server *srv, eio_session *s, net_conn *c, net_request *req)
{
    if (s->poll) {
        /* Two pending GETs: the reference closes the session (overlap). */
        eio__respond_error(srv, c, req, 3);
        eio__close(s, "transport error", 0);
        return;
    }
    s->poll = c;
    net_conn_set_owner(c, &eio__poll_ops, s);
    if (s->pollq && s->pollq->count)
        eio__mark_poll_dirty(s);
    else if (s->upgrade && s->upgrade->probed)
        eio__answer_poll_with(s, &srv->msg_noop);
}

typedef struct {
    eio_server *srv;
    eio_session *s;
    net_conn *c;
    int answered;
} eio__post_ctx;

static int eio__post_packet(void *ud, const eio_packet *p)
{
    eio__post_ctx *ctx = ud;
    if (!ctx->answered) {
        /* Answer before any handler runs: they may close the session, and
         * the POST is still "ok" (the payload was valid). */
        ctx->answered = 1;
        eio__respond_text(ctx->srv, ctx->c, "text/html", "ok", 2);
    }
    eio__on_packet(ctx->s, p);
    return ctx->s->closed ? 1 : 0;
}

static void eio__poll_post(eio_server *srv, eio_session *s, net_conn *c, net_request *req)
{
    if (req->too_large) {
        /* As the reference: 413, and the session is closed. */
        char headers[512];
        eio__cors_headers(srv, req, headers, sizeof(headers));
        net_respond(c, 413, "text/plain", headers, "Payload Too Large\n", 18);
        eio__close(s, "transport error", 0);
        return;
    }
    /* The body is ours: the request's memory goes with the response. */
    buf_t body = req->body;
    req->body = (buf_t){0};
    eio__post_ctx ctx = {srv, s, c, 0};
    int r = eio_payload_decode((uint8_t *)body.data, body.len, eio__post_packet, &ctx);
    if (r < 0 && !ctx.answered) {
        eio__respond_error(srv, c, req, 3);
        eio__close(s, "parse error", 0);
    }
    buf_free(&body);
}

/* ---- handshake rate per client address ----------------------------------- */

/* Drops buckets that have refilled completely: they hold no information. */
static void eio__buckets_prune(eio_server *srv, uint64_t now)
{
    uint64_t full_after = srv->handshake_rl.refill_per_ms
                              ? srv->handshake_rl.capacity / srv->handshake_rl.refill_per_ms + 1
                              : 0;
    eio_addr_bucket *b, *tmp;
    HASH_ITER(hh, srv->buckets, b, tmp) {
        if (now - b->last_ms > full_after) {
            HASH_DEL(srv->buckets, b);
            mem_free(b);
        }
    }
    srv->buckets_pruned_at = HASH_COUNT(srv->buckets);
}

/* 0 when a new session from this request's client may open, else
 * ERR_LIMITED. */
static int eio__handshake_allowed(eio_server *srv, net_conn *c, net_request *req)
{
    if (srv->handshake_rl.refill_per_ms == 0)
        return 0;
    char addr[64];
    net_conn_client_ip(c, req, addr, sizeof(addr));
    uint64_t now = uv_now(srv->loop);
    eio_addr_bucket *b = NULL;
    HASH_FIND_STR(srv->buckets, addr, b);
    if (b == NULL) {
        if (HASH_COUNT(srv->buckets) >= 2 * srv->buckets_pruned_at + 1024)
            eio__buckets_prune(srv, now);
        b = mem_calloc(1, sizeof(*b));
        snprintf(b->addr, sizeof(b->addr), "%s", addr);
        ratelimit_init(&b->rl, &srv->handshake_rl, now);
        HASH_ADD_STR(srv->buckets, addr, b);
    }
    b->last_ms = now;
    if (ratelimit_take(&b->rl, &srv->handshake_rl, now) == 0)
        return 0;
    srv->stats.handshakes_refused++;
    log_debug("handshake refused", "client=%s reason=rate", addr);
    return ERR_LIMITED;
}

static void eio__respond_too_many(eio_server *srv, net_conn *c, net_request *req)
{
    static const char body[] = "{\"code\":3,\"message\":\"Too many handshakes\"}";
    char headers[512];
    eio__cors_headers(srv, req, headers, sizeof(headers) - 32);
    strcat(headers, "Retry-After: 1\r\n");
    net_respond(c, 429, "application/json", headers, body, sizeof(body) - 1);
}

/* ---- request routing ---------------------------------------------------- */

static void eio__preflight(eio_server *srv, net_conn *c, net_request *req)
{
    char headers[768];
    eio__cors_headers(srv, req, headers, sizeof(headers) - 200);
    strcat(headers, "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                    "Access-Control-Allow-Headers: content-type\r\n"
                    "Access-Control-Max-Age: 86400\r\n");
    net_respond(c, 204, NULL, headers, NULL, 0);
}

void eio_handle_request(eio_server *srv, net_conn *c, net_request *req)
{
    char eio[8], transport[16], sid[RAND_ID_LEN + 8];
    if (req->method == HTTP_OPTIONS) {
        eio__preflight(srv, c, req);
        return;
    }
    if (net_query_get(req->query, "EIO", eio, sizeof(eio)) < 0 || strcmp(eio, "4") != 0) {
        eio__respond_error(srv, c, req, 5);
        return;
    }
    if (net_query_get(req->query, "transport", transport, sizeof(transport)) < 0 ||
        (strcmp(transport, "polling") != 0 && strcmp(transport, "websocket") != 0)) {
        eio__respond_error(srv, c, req, 0);
        return;
    }
    if (!eio__request_allowed(srv, req)) {
        eio__respond_error(srv, c, req, 4);
        return;
    }
    int websocket = transport[0] == 'w';
    int has_sid = net_query_get(req->query, "sid", sid, sizeof(sid)) >= 0;
    if (websocket && !(req->is_upgrade && req->upgrade && strcasecmp(req->upgrade, "websocket") == 0)) {
        eio__respond_error(srv, c, req, 3);
        return;
    }
    if (!has_sid) {
        if (eio__handshake_allowed(srv, c, req) != 0) {
            eio__respond_too_many(srv, c, req);
            return;
        }
        if (websocket) {
            eio__ws_accept(srv, c, req, NULL, 0);
            return;
        }
        if (req->method != HTTP_GET) {
            eio__respond_error(srv, c, req, 2);
            return;
        }
        eio_session *s = eio__session_new(srv, EIO_T_POLLING);
        char open[256];
        size_t n = eio__open_packet(s, open, sizeof(open));
        eio__respond_text(srv, c, "text/plain; charset=UTF-8", open, n);
        if (srv->h->on_open)
            srv->h->on_open(srv->ud, s);
        return;
    }
    eio_session *s = NULL;
    HASH_FIND_STR(srv->sessions, sid, s);
    if (s == NULL) {
        eio__respond_error(srv, c, req, 1);
        return;
    }
    if (websocket) {
        if (!srv->cfg.allow_upgrades) {
            eio__respond_error(srv, c, req, 3);
            return;
        }
        /* A second upgrade of the same session: open and close it at once,
         * as the reference does, leaving the session untouched. */
        eio__ws_accept(srv, c, req, (s->transport != EIO_T_POLLING || s->upgrade) ? NULL : s,
                       s->transport != EIO_T_POLLING || s->upgrade);
        return;
    }
    if (s->transport != EIO_T_POLLING) {
        eio__respond_error(srv, c, req, 3);
        return;
    }
    if (req->method == HTTP_GET)
        eio__poll_get(srv, s, c, req);
    else if (req->method == HTTP_POST)
        eio__poll_post(srv, s, c, req);
    else
        eio__respond_error(srv, c, req, 2);
}

/* ---- server ------------------------------------------------------------- */

/* The turn hook (TURN_EIO, before net writes): answer long-polls that have
 * packets, free dead sessions. */
static void eio__flush(void *ud)
{
    eio_server *srv = ud;
    while (srv->dirty) {
        eio_session *s = srv->dirty;
        srv->dirty = s->next_dirty;
        s->dirty = 0;
        if (s->closed) {
            s->next_dirty = srv->dead;
            srv->dead = s;
            continue;
        }
        eio__answer_poll(s);
    }
    while (srv->dead) {
        eio_session *s = srv->dead;
        srv->dead = s->next_dirty;
        eio__session_free(s);
    }
}

eio_server *eio_server_new(uv_loop_t *loop, net_server *net, const eio_config *cfg,
                           const eio_handlers *h, void *ud)
{
    eio_server *srv = mem_calloc(1, sizeof(*srv));
    srv->loop = loop;
    srv->net = net;
    srv->cfg = *cfg;
    srv->h = h;
    srv->ud = ud;
    if (ratelimit_config_init(&srv->handshake_rl, cfg->handshake_rate,
                              cfg->handshake_burst ? cfg->handshake_burst : 1) != 0) {
        log_warn("invalid handshake rate, not limited", "rate=%g burst=%u", cfg->handshake_rate,
                 cfg->handshake_burst);
        ratelimit_config_init(&srv->handshake_rl, 0, 1);
    }
    tq_init(&srv->ping_q, loop, eio__ping_due, srv);
    tq_init(&srv->pong_q, loop, eio__pong_late, srv);
    tq_init(&srv->upgrade_q, loop, eio__upgrade_expire, srv);
    eio__msg_packet(&srv->msg_ping, "2");
    eio__msg_packet(&srv->msg_noop, "6");
    eio__msg_packet(&srv->msg_close, "1");
    eio__msg_packet(&srv->msg_pong_probe, "3probe");
    turn_hook_init(&srv->flush, TURN_EIO, eio__flush, srv);
    return srv;
}

static void eio__server_timer_closed(uv_handle_t *h)
{
    eio_server *srv = ((tq_queue *)h->data)->data;
    if (--srv->timers_open == 0)
        mem_free(srv);
}

void eio_server_free(eio_server *srv)
{
    eio_session *s, *tmp;
    HASH_ITER(hh, srv->sessions, s, tmp) {
        eio__close(s, "server shutting down", 0);
    }
    eio_addr_bucket *b, *btmp;
    HASH_ITER(hh, srv->buckets, b, btmp) {
        HASH_DEL(srv->buckets, b);
        mem_free(b);
    }
    eio__flush(srv);
    turn_disarm(net_server_turn(srv->net), &srv->flush);
    eio_msg_release(&srv->msg_ping);
    eio_msg_release(&srv->msg_noop);
    eio_msg_release(&srv->msg_close);
    eio_msg_release(&srv->msg_pong_probe);
    tq_queue *qs[] = {&srv->ping_q, &srv->pong_q, &srv->upgrade_q};
    srv->timers_open = 3;
    for (int i = 0; i < 3; i++) {
        uv_timer_stop(&qs[i]->timer);
        uv_close((uv_handle_t *)&qs[i]->timer, eio__server_timer_closed);
    }
}
