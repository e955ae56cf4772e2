/* eio_ws.c - the WebSocket transport of Engine.IO: the opening handshake,
 * frames in and out through the I/O-free codec (ws/ws_codec.h), and the
 * upgrade of a polling session (probe, "5", flush of queued packets). */
#include "eio/eio_internal.h"
#include "util/log.h"
#include "util/mem.h"
#include "ws/ws_handshake.h"

#include <stdio.h>
#include <string.h>

/* ---- sending ------------------------------------------------------------ */

int eio__ws_send(net_conn *c, const eio_msg *m)
{
    if (c == NULL)
        return ERR_CLOSED;
    return net_conn_write(c, m->rb, m->ws_off, m->rb->len - m->ws_off);
}

void eio__ws_close(net_conn *c, uint16_t code)
{
    uint8_t frame[2 + 125];
    size_t n = ws_encode_close(frame, code, NULL);
    net_conn_write_copy(c, frame, n);
    net_conn_close(c, 1);
}

static int eio__ws_control(net_conn *c, int opcode, const uint8_t *data, size_t len)
{
    uint8_t frame[WS_MAX_HEADER + 125];
    size_t hl = ws_encode_header(frame, opcode, 1, len);
    memcpy(frame + hl, data, len);
    net_conn_write_copy(c, frame, hl + len);
    return 0;
}

/* ---- the active WebSocket transport ------------------------------------ */

static int eio__ws_deliver(eio_session *s, int opcode, uint8_t *data, size_t len)
{
    eio_packet p;
    if (opcode == WS_OP_BINARY) {
        p = (eio_packet){.type = EIO_MESSAGE, .binary = 1, .data = data, .len = len};
    } else if (eio_packet_decode(data, len, &p) != 0) {
        eio_session_close(s, "parse error");
        return 1;
    }
    eio__on_packet(s, &p);
    return s->closed ? 1 : 0;
}

static int eio__ws_on_message(void *ud, int opcode, uint8_t *data, size_t len)
{
    return eio__ws_deliver(ud, opcode, data, len);
}

static int eio__ws_on_ping(void *ud, uint8_t *data, size_t len)
{
    eio_session *s = ud;
    return s->ws ? eio__ws_control(s->ws, WS_OP_PONG, data, len) : 1;
}

static int eio__ws_on_pong(void *ud, uint8_t *data, size_t len)
{
    return 0;
}

static int eio__ws_on_close(void *ud, uint16_t code, const char *reason, size_t len)
{
    eio__session_closed_by_transport(ud, "transport close");
    return 1;
}

static const ws_callbacks eio__ws_cbs = {
    .on_message = eio__ws_on_message,
    .on_ping = eio__ws_on_ping,
    .on_pong = eio__ws_on_pong,
    .on_close = eio__ws_on_close,
};

/* The peer broke the WebSocket protocol: close with the codec's status. */
static void eio__ws_broke_protocol(eio_session *s, uint16_t code)
{
    if (s->closed || s->ws == NULL)
        return;
    net_conn *c = s->ws;
    s->ws = NULL;
    net_conn_set_owner(c, NULL, NULL);
    eio__ws_close(c, code);
    eio__session_closed_by_transport(s, "transport error");
}

static void eio__ws_data(void *owner, net_conn *c, uint8_t *data, size_t len)
{
    eio_session *s = owner;
    ws_limits lim = {.max_message = s->srv->cfg.max_payload, .require_mask = 1};
    int r = ws_parser_feed(&s->wsp, data, len, &lim, &eio__ws_cbs, s);
    if (r > 0)
        eio__ws_broke_protocol(s, (uint16_t)r);
}

static void eio__ws_closed(void *owner, net_conn *c)
{
    eio_session *s = owner;
    if (s->ws == c) {
        s->ws = NULL;
        eio__session_closed_by_transport(s, "transport close");
    }
}

static const net_owner_ops eio__ws_ops = {.on_data = eio__ws_data, .on_close = eio__ws_closed};

/* ---- upgrade from polling ---------------------------------------------- */

typedef struct {
    eio_upgrade u;
    int in_feed, aborted, done;
} eio__probe;

static void eio__probe_free(eio_upgrade *u)
{
    ws_parser_reset(&u->parser);
    mem_free(u);
}

void eio__upgrade_abort(eio_session *s)
{
    eio_upgrade *u = s->upgrade;
    if (u == NULL)
        return;
    s->upgrade = NULL;
    tq_remove(&u->timeout);
    net_conn *c = u->conn;
    u->conn = NULL;
    if (c) {
        net_conn_set_owner(c, NULL, NULL);
        eio__ws_close(c, WS_CLOSE_GOING_AWAY);
    }
    eio__probe *pr = (eio__probe *)u;
    if (pr->in_feed)
        pr->aborted = 1; /* freed when the feed returns */
    else
        eio__probe_free(u);
}

void eio__upgrade_expire(tq_queue *q, tq_node *n)
{
    eio_upgrade *u = mem_container_of(n, eio_upgrade, timeout);
    log_debug("upgrade timed out", "sid=%s", u->s->sid);
    eio__upgrade_abort(u->s);
}

/* "5" arrived: the WebSocket becomes the session's transport. */
static void eio__upgrade_complete(eio__probe *pr)
{
    eio_upgrade *u = &pr->u;
    eio_session *s = u->s;
    eio_server *srv = s->srv;
    tq_remove(&u->timeout);
    s->upgrade = NULL;
    s->transport = EIO_T_WEBSOCKET;
    srv->stats.upgrades++;
    srv->stats.open_polling--;
    srv->stats.open_websocket++;
    s->ws = u->conn;
    u->conn = NULL;
    net_conn_set_owner(s->ws, &eio__ws_ops, s);
    pr->done = 1;
    if (s->poll) {
        net_conn *c = s->poll;
        s->poll = NULL;
        net_conn_set_owner(c, NULL, NULL);
        char headers[512];
        eio__cors_headers(srv, net_conn_request(c), headers, sizeof(headers));
        const eio_msg *m = &srv->msg_noop;
        net_respond_rbuf(c, 200, "text/plain; charset=UTF-8", headers, m->rb, m->pkt_off,
                         m->rb->len - m->pkt_off);
    }
    if (s->pollq) {
        for (uint32_t i = 0; i < s->pollq->count; i++) {
            eio__ws_send(s->ws, &s->pollq->items[i]);
            eio_msg_release(&s->pollq->items[i]);
        }
        mem_free(s->pollq->items);
        mem_free(s->pollq);
        s->pollq = NULL;
    }
}

static int eio__probe_on_message(void *ud, int opcode, uint8_t *data, size_t len)
{
    eio__probe *pr = ud;
    eio_session *s = pr->u.s;
    if (pr->aborted || s->closed)
        return 1;
    if (pr->done) /* frames after "5" in the same read */
        return eio__ws_deliver(s, opcode, data, len);
    eio_packet p;
    if (opcode != WS_OP_TEXT || eio_packet_decode(data, len, &p) != 0)
        goto fail;
    if (p.type == EIO_PING && p.len == 5 && memcmp(p.data, "probe", 5) == 0) {
        eio__ws_send(pr->u.conn, &s->srv->msg_pong_probe);
        pr->u.probed = 1;
        /* End the pending long-poll so the client can pause polling. */
        if (s->poll && !(s->pollq && s->pollq->count))
            eio_send(s, &s->srv->msg_noop);
        return 0;
    }
    if (p.type == EIO_UPGRADE) {
        eio__upgrade_complete(pr);
        return 0;
    }
fail:
    eio__upgrade_abort(s);
    return 1;
}

static int eio__probe_on_ping(void *ud, uint8_t *data, size_t len)
{
    eio__probe *pr = ud;
    net_conn *c = pr->done ? pr->u.s->ws : pr->u.conn;
    return c ? eio__ws_control(c, WS_OP_PONG, data, len) : 1;
}

static int eio__probe_on_close(void *ud, uint16_t code, const char *reason, size_t len)
{
    eio__probe *pr = ud;
    if (pr->done)
        eio__session_closed_by_transport(pr->u.s, "transport close");
    else
        eio__upgrade_abort(pr->u.s);
    return 1;
}

static const ws_callbacks eio__probe_cbs = {
    .on_message = eio__probe_on_message,
    .on_ping = eio__probe_on_ping,
    .on_pong = eio__ws_on_pong,
    .on_close = eio__probe_on_close,
};

static void eio__probe_data(void *owner, net_conn *c, uint8_t *data, size_t len)
{
    eio__probe *pr = owner;
    eio_session *s = pr->u.s;
    ws_limits lim = {.max_message = s->srv->cfg.max_payload, .require_mask = 1};
    pr->in_feed = 1;
    int r = ws_parser_feed(&pr->u.parser, data, len, &lim, &eio__probe_cbs, pr);
    pr->in_feed = 0;
    if (pr->aborted) {
        eio__probe_free(&pr->u);
        return;
    }
    if (pr->done) {
        /* The parser (and any partial frame it holds) moves to the session. */
        ws_parser_reset(&s->wsp);
        s->wsp = pr->u.parser;
        pr->u.parser.pending = NULL;
        eio__probe_free(&pr->u);
        if (r > 0)
            eio__ws_broke_protocol(s, (uint16_t)r);
        return;
    }
    if (r > 0) {
        net_conn_set_owner(c, NULL, NULL);
        pr->u.conn = NULL;
        eio__ws_close(c, (uint16_t)r);
        eio__upgrade_abort(s);
    }
}

static void eio__probe_closed(void *owner, net_conn *c)
{
    eio__probe *pr = owner;
    pr->u.conn = NULL;
    eio__upgrade_abort(pr->u.s);
}

static const net_owner_ops eio__probe_ops = {.on_data = eio__probe_data,
                                             .on_close = eio__probe_closed};

/* ---- the opening handshake --------------------------------------------- */

void eio__ws_accept(eio_server *srv, net_conn *c, net_request *req, eio_session *s,
                    int reject_after_open)
{
    char accept[WS_ACCEPT_LEN + 1];
    if (!req->ws_version || strcmp(req->ws_version, "13") != 0) {
        net_respond_close(c, 400, "text/plain", "Sec-WebSocket-Version: 13\r\n",
                          "Unsupported WebSocket version\n", 30);
        return;
    }
    if (!req->ws_key || ws_accept_key(req->ws_key, strlen(req->ws_key), accept) != 0) {
        eio__respond_error(srv, c, req, 3);
        return;
    }
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    net_conn_write_copy(c, head, (size_t)n);
    if (reject_after_open) {
        eio__ws_close(c, WS_CLOSE_POLICY);
        return;
    }
    if (s != NULL) {
        eio__probe *pr = mem_calloc(1, sizeof(*pr));
        pr->u.conn = c;
        pr->u.s = s;
        s->upgrade = &pr->u;
        tq_push(&srv->upgrade_q, &pr->u.timeout, uv_now(srv->loop) + srv->cfg.upgrade_timeout_ms);
        net_conn_upgrade(c, &eio__probe_ops, pr);
        return;
    }
    s = eio__session_new(srv, EIO_T_WEBSOCKET);
    s->ws = c;
    char open[256];
    size_t len = eio__open_packet(s, open, sizeof(open));
    eio_msg m;
    eio_msg_init(&m, open + 1, len - 1, 0);
    m.rb->data[m.pkt_off] = '0';
    eio_send(s, &m);
    eio_msg_release(&m);
    if (srv->h->on_open)
        srv->h->on_open(srv->ud, s);
    if (s->closed) {
        net_conn_close(c, 1);
        return;
    }
    net_conn_upgrade(c, &eio__ws_ops, s);
}
