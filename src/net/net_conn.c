/* net_conn.c - the listener, connection lifetime, reads and coalesced writes.
 *
 * Reads go into the server's one shared buffer. Writes are queued as
 * references to shared buffers and the connection is put on the server's
 * flush list; the server's turn hook (TURN_NET, util/turn.h: the last
 * phase before the loop blocks for I/O) writes each listed connection's
 * queue with one uv_try_write, and falls back to uv_write for what the
 * kernel did not take. */
#include "net/net_internal.h"
#include "util/log.h"
#include "util/mem.h"

#include <string.h>

static void net__close_cb(uv_handle_t *h);

/* ---- output queue ---------------------------------------------------- */

static void net__outq_release(net_outq *q, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        rbuf_unref(q->chunks[q->head + i].rb);
    q->head += n;
    q->count -= n;
    if (q->inflight >= n)
        q->inflight -= n;
    else
        q->inflight = 0;
}

static void net__outq_free(net_outq *q)
{
    if (q == NULL)
        return;
    net__outq_release(q, q->count);
    mem_free(q->chunks);
    mem_free(q);
}

static void net__outq_push(net_outq *q, rbuf_t *rb, size_t off, size_t len)
{
    if (q->head + q->count == q->cap) {
        if (q->head > 0 && q->head >= q->cap / 2 && q->inflight == 0) {
            memmove(q->chunks, q->chunks + q->head, q->count * sizeof(net_chunk));
            q->head = 0;
        } else {
            q->cap = q->cap ? q->cap * 2 : 8;
            q->chunks = mem_realloc(q->chunks, q->cap * sizeof(net_chunk));
        }
    }
    net_chunk *ch = &q->chunks[q->head + q->count++];
    ch->rb = rbuf_ref(rb);
    ch->off = (uint32_t)off;
    ch->len = (uint32_t)len;
    q->bytes += len;
}

/* Drops `written` bytes from the front of the queue. */
static void net__outq_advance(net_outq *q, size_t written)
{
    q->bytes -= written;
    uint32_t done = 0;
    while (written > 0 && done < q->count) {
        net_chunk *ch = &q->chunks[q->head + done];
        if (written >= ch->len) {
            written -= ch->len;
            done++;
        } else {
            ch->off += (uint32_t)written;
            ch->len -= (uint32_t)written;
            written = 0;
        }
    }
    net__outq_release(q, done);
}

static uint32_t net__outq_iov(net_outq *q, uv_buf_t *iov, uint32_t max)
{
    uint32_t n = q->count < max ? q->count : max;
    for (uint32_t i = 0; i < n; i++) {
        net_chunk *ch = &q->chunks[q->head + i];
        iov[i] = uv_buf_init((char *)ch->rb->data + ch->off, ch->len);
    }
    return n;
}

/* ---- deadlines ---------------------------------------------------------- */

/* A connection's armed deadline in the server's http_q (an HTTP request
 * due, an idle keep-alive, a lingering close) is a tq_owned node: a
 * WebSocket connection, which never has one, does not carry it. */
static void net__deadline_clear(net_conn *c)
{
    tq_owned_cancel(&c->deadline);
}

static void net__deadline_set(net_conn *c, uint64_t at)
{
    tq_owned_push(&net__srv(c)->http_q, &c->deadline, c, at);
}

/* ---- closing ----------------------------------------------------------- */

static void net__handle_close(net_conn *c)
{
    if (c->flags & NET_F_HANDLE_CLOSING)
        return;
    c->flags |= NET_F_HANDLE_CLOSING;
    net__deadline_clear(c);
    uv_close((uv_handle_t *)&c->tcp, net__close_cb);
}

static void net__server_handle_closed(uv_handle_t *h);

/* While closing: once the last connection is gone, close the server's own
 * handles; once those are closed too, free it. */
static void net__server_maybe_free(net_server *s)
{
    if (!s->closing || s->nconns > 0)
        return;
    if (!s->finishing) {
        s->finishing = 1;
        turn_disarm(s->turn, &s->flush);
        uv_timer_stop(&s->http_q.timer);
        s->http_q.timer.data = s;
        uv_close((uv_handle_t *)&s->http_q.timer, net__server_handle_closed);
        uv_timer_stop(&s->grace);
        uv_close((uv_handle_t *)&s->grace, net__server_handle_closed);
        return;
    }
    if (s->handles_open == 0) {
        void (*done)(void *) = s->closed_cb;
        void *ud = s->closed_ud;
        mem_free(s);
        if (done)
            done(ud);
    }
}

static void net__ip_release(net_conn *c)
{
    net_ip_count *e = c->ip;
    if (e == NULL)
        return;
    c->ip = NULL;
    if (--e->count == 0) {
        HASH_DEL(net__srv(c)->ips, e);
        mem_free(e);
    }
}

static void net__conn_free(net_conn *c)
{
    net_server *s = net__srv(c);
    net__deadline_clear(c);
    net__outq_free(c->out);
    net__http_free(c);
    mem_free(c);
    s->nconns--;
    net__server_maybe_free(s);
}

static void net__close_cb(uv_handle_t *h)
{
    net_conn *c = mem_container_of(h, net_conn, tcp);
    if (c->flags & NET_F_DIRTY) {
        c->flags |= NET_F_FREE_PENDING; /* the flush list still points here */
        return;
    }
    net__conn_free(c);
}

void net_conn_close(net_conn *c, int graceful)
{
    if (c->flags & NET_F_CLOSED) {
        if (!graceful)
            net__handle_close(c);
        return;
    }
    c->flags |= NET_F_CLOSED;
    uv_read_stop((uv_stream_t *)&c->tcp);
    net__deadline_clear(c);
    net__ip_release(c);
    const net_owner_ops *ops = c->ops;
    void *owner = c->owner;
    c->ops = NULL;
    c->owner = NULL;
    if (ops && ops->on_close)
        ops->on_close(owner, c);
    if (graceful && c->out && c->out->count) {
        c->flags |= NET_F_CLOSE_AFTER_FLUSH;
        net__mark_dirty(c);
        return;
    }
    net__handle_close(c);
}

int net_conn_is_closed(const net_conn *c)
{
    return (c->flags & NET_F_CLOSED) != 0;
}

/* ---- writing ----------------------------------------------------------- */

void net__mark_dirty(net_conn *c)
{
    if (c->flags & NET_F_DIRTY)
        return;
    c->flags |= NET_F_DIRTY;
    net_server *s = net__srv(c);
    c->dirty_next = s->dirty;
    s->dirty = c;
    turn_arm(s->turn, &s->flush);
}

int net_conn_write(net_conn *c, rbuf_t *b, size_t off, size_t len)
{
    if (c->flags & NET_F_CLOSED)
        return ERR_CLOSED;
    if (len == 0)
        return 0;
    if (c->out == NULL)
        c->out = mem_calloc(1, sizeof(net_outq));
    if (c->out->bytes + len > net__srv(c)->cfg.max_output_bytes) {
        char peer[64];
        net_conn_peer(c, peer, sizeof(peer));
        log_warn("slow consumer disconnected", "peer=%s queued=%zu limit=%zu", peer,
                 c->out->bytes, net__srv(c)->cfg.max_output_bytes);
        net__srv(c)->slow_consumers++;
        net_conn_close(c, 0);
        return ERR_LIMITED;
    }
    net__outq_push(c->out, b, off, len);
    net__mark_dirty(c);
    return 0;
}

int net_conn_write_copy(net_conn *c, const void *data, size_t len)
{
    if (c->flags & NET_F_CLOSED)
        return ERR_CLOSED;
    rbuf_t *b = rbuf_from(data, len);
    int r = net_conn_write(c, b, 0, len);
    rbuf_unref(b);
    return r;
}

static void net__flush(net_conn *c);
static void net__alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void net__read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void net__shutdown_cb(uv_shutdown_t *req, int status)
{
    net_conn *c = req->data;
    mem_free(req);
    if (status < 0 || (c->flags & NET_F_HANDLE_CLOSING)) {
        net__handle_close(c);
        return;
    }
    /* Read (and drop) until the peer closes too: closing with its data
     * unread would reset the connection and lose what we just sent. */
    if (uv_read_start((uv_stream_t *)&c->tcp, net__alloc_cb, net__read_cb) != 0)
        net__handle_close(c);
}

/* A graceful close once everything is written: send FIN, then wait a
 * bounded time for the peer's (NET_LINGER_MS; the read callback closes on
 * its EOF, the deadline queue when it never comes). */
static void net__linger(net_conn *c)
{
    uv_shutdown_t *req = mem_alloc(sizeof(*req));
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, net__shutdown_cb) != 0) {
        mem_free(req);
        net__handle_close(c);
        return;
    }
    net__deadline_set(c, uv_now(net__srv(c)->loop) + NET_LINGER_MS);
}

static void net__write_cb(uv_write_t *req, int status)
{
    net_outq *q = mem_container_of(req, net_outq, req);
    net_conn *c = req->data;
    c->flags &= ~NET_F_WRITING;
    if (status < 0) {
        net__outq_release(q, q->inflight);
        if (status != UV_ECANCELED)
            net_conn_close(c, 0);
        return;
    }
    size_t bytes = 0;
    for (uint32_t i = 0; i < q->inflight; i++)
        bytes += q->chunks[q->head + i].len;
    q->bytes -= bytes;
    net__outq_release(q, q->inflight);
    net__flush(c);
}

static void net__flush(net_conn *c)
{
    net_outq *q = c->out;
    if (c->flags & (NET_F_WRITING | NET_F_HANDLE_CLOSING))
        return;
    uv_buf_t iov[NET_IOV_MAX];
    while (q && q->count > 0) {
        uint32_t n = net__outq_iov(q, iov, NET_IOV_MAX);
        int r = uv_try_write((uv_stream_t *)&c->tcp, iov, n);
        if (r == UV_EAGAIN || r == UV_ENOSYS)
            break;
        if (r < 0) {
            net_conn_close(c, 0);
            return;
        }
        net__outq_advance(q, (size_t)r);
        if (r == 0)
            break;
    }
    if (q && q->count > 0) {
        uint32_t n = net__outq_iov(q, iov, NET_IOV_MAX);
        q->inflight = n;
        q->req.data = c;
        int r = uv_write(&q->req, (uv_stream_t *)&c->tcp, iov, n, net__write_cb);
        if (r < 0) {
            q->inflight = 0;
            net_conn_close(c, 0);
            return;
        }
        c->flags |= NET_F_WRITING;
        return;
    }
    if (q) {
        net__outq_free(q);
        c->out = NULL;
    }
    if (c->flags & NET_F_CLOSE_AFTER_FLUSH)
        net__linger(c);
}

/* The turn hook: write everything queued this turn, and resume HTTP
 * parsing of connections whose response went out. Connections made dirty
 * meanwhile arm the hook again: the turn runs it in its next pass. */
static void net__flush_dirty(void *ud)
{
    net_server *s = ud;
    net_conn *list = s->dirty;
    s->dirty = NULL;
    while (list) {
        net_conn *c = list;
        list = c->dirty_next;
        c->dirty_next = NULL;
        c->flags &= ~NET_F_DIRTY;
        if (c->flags & NET_F_FREE_PENDING) {
            net__conn_free(c);
            continue;
        }
        if (!(c->flags & (NET_F_CLOSED | NET_F_RAW)) && c->http && !c->http->complete &&
            c->http->pending_in.len > 0)
            net__http_resume(c);
        net__flush(c);
    }
}

/* ---- reading ----------------------------------------------------------- */

static void net__alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    net_conn *c = mem_container_of(h, net_conn, tcp);
    buf->base = (char *)net__srv(c)->readbuf;
    buf->len = sizeof(net__srv(c)->readbuf);
}

static void net__read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    net_conn *c = mem_container_of(st, net_conn, tcp);
    if (nread < 0) {
        net_conn_close(c, 0);
        return;
    }
    if (nread == 0 || (c->flags & NET_F_CLOSED))
        return;
    if (c->flags & NET_F_RAW) {
        if (c->ops && c->ops->on_data)
            c->ops->on_data(c->owner, c, (uint8_t *)buf->base, (size_t)nread);
    } else {
        net__http_feed(c, (const uint8_t *)buf->base, (size_t)nread);
    }
}

void net_conn_upgrade(net_conn *c, const net_owner_ops *ops, void *owner)
{
    c->ops = ops;
    c->owner = owner;
    c->flags |= NET_F_RAW;
    net__deadline_clear(c);
    net_http *h = c->http;
    c->http = NULL;
    if (h) {
        buf_t rest = h->pending_in;
        h->pending_in = (buf_t){0};
        c->http = h;
        net__http_free(c);
        if (rest.len && !(c->flags & NET_F_CLOSED) && ops->on_data)
            ops->on_data(owner, c, (uint8_t *)rest.data, rest.len);
        buf_free(&rest);
    }
}

void net_conn_set_owner(net_conn *c, const net_owner_ops *ops, void *owner)
{
    c->ops = ops;
    c->owner = ops ? owner : NULL;
}

void net_conn_peer(const net_conn *c, char *out, size_t size)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    out[0] = '\0';
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, out, size);
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, out, size);
}

/* ---- listener ---------------------------------------------------------- */

/* The peer address as 16 bytes (IPv4 mapped into IPv6): 0, or ERR_IO /
 * ERR_INVAL when it is unknown. */
static int net__peer_bytes(const net_conn *c, uint8_t out[16])
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return ERR_IO;
    memset(out, 0, 16);
    if (ss.ss_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        memcpy(out, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    } else {
        return ERR_INVAL;
    }
    return 0;
}

static int net__is_trusted(const net_server *s, const char *peer)
{
    for (size_t i = 0; i < s->cfg.trusted_count; i++)
        if (strcmp(s->cfg.trusted_proxies[i], peer) == 0)
            return 1;
    return 0;
}

/* Applies max_connections and max_per_ip to a new connection. */
static int net__admit(net_server *s, net_conn *c)
{
    if (s->cfg.max_connections && s->nconns > s->cfg.max_connections) {
        log_debug("connection refused", "reason=max_connections open=%zu", s->nconns - 1);
        return ERR_LIMITED;
    }
    if (s->cfg.max_per_ip == 0)
        return 0;
    char peer[64];
    uint8_t addr[16];
    net_conn_peer(c, peer, sizeof(peer));
    if (net__is_trusted(s, peer) || net__peer_bytes(c, addr) != 0)
        return 0;
    net_ip_count *e = NULL;
    HASH_FIND(hh, s->ips, addr, 16, e);
    if (e && e->count >= s->cfg.max_per_ip) {
        log_debug("connection refused", "reason=max_per_ip peer=%s", peer);
        return ERR_LIMITED;
    }
    if (e == NULL) {
        e = mem_calloc(1, sizeof(*e));
        memcpy(e->addr, addr, 16);
        HASH_ADD(hh, s->ips, addr, 16, e);
    }
    e->count++;
    c->ip = e;
    return 0;
}

void net_conn_client_ip(const net_conn *c, const net_request *req, char *out, size_t size)
{
    net_conn_peer(c, out, size);
    if (!req || !req->forwarded_for || !net__is_trusted(net__srv(c), out))
        return;
    /* The last entry is the one the trusted proxy appended. */
    const char *last = strrchr(req->forwarded_for, ',');
    last = last ? last + 1 : req->forwarded_for;
    while (*last == ' ')
        last++;
    size_t n = strcspn(last, " ");
    if (n > 0 && n < size) {
        memcpy(out, last, n);
        out[n] = '\0';
    }
}

void net_server_stats(const net_server *s, net_stats *out)
{
    out->accepted = s->accepted;
    out->refused = s->refused;
    out->slow_consumers = s->slow_consumers;
    out->http_timeouts = s->http_timeouts;
    out->open = s->nconns;
}

/* ---- HTTP deadlines (slowloris, idle keep-alive) ------------------------- */

static void net__http_expired(tq_queue *q, tq_node *n)
{
    net_conn *c = tq_owned_expired(n);
    if (c->flags & NET_F_CLOSED) {
        net__handle_close(c); /* a lingering close that waited long enough */
        return;
    }
    char peer[64];
    net_conn_peer(c, peer, sizeof(peer));
    log_debug("http connection timed out", "peer=%s", peer);
    net__srv(c)->http_timeouts++;
    net_conn_close(c, 0);
}

void net__http_deadline_start(net_conn *c)
{
    net_server *s = net__srv(c);
    if (s->cfg.http_timeout_ms && !(c->flags & (NET_F_CLOSED | NET_F_RAW)))
        net__deadline_set(c, uv_now(s->loop) + s->cfg.http_timeout_ms);
}

void net__http_deadline_stop(net_conn *c)
{
    net__deadline_clear(c);
}

static void net__on_connection(uv_stream_t *ls, int status)
{
    net_server *s = ls->data;
    if (status < 0) {
        log_warn("accept failed", "error=%s", uv_strerror(status));
        return;
    }
    net_conn *c = mem_calloc(1, sizeof(*c));
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = s; /* marks the handle as one of ours for net__close_walk */
    s->nconns++;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
        c->flags |= NET_F_CLOSED;
        net__handle_close(c);
        return;
    }
    if (net__admit(s, c) != 0) {
        s->refused++;
        c->flags |= NET_F_CLOSED;
        net__handle_close(c);
        return;
    }
    s->accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    net__http_deadline_start(c);
    uv_read_start((uv_stream_t *)&c->tcp, net__alloc_cb, net__read_cb);
}

int net_server_start(turn_t *turn, const net_config *cfg, const net_handler *handler,
                     void *ud, net_server **out)
{
    uv_loop_t *loop = turn_loop(turn);
    net_server *s = mem_calloc(1, sizeof(*s));
    s->loop = loop;
    s->turn = turn;
    turn_hook_init(&s->flush, TURN_NET, net__flush_dirty, s);
    s->cfg = *cfg;
    s->handler = handler;
    s->ud = ud;
    struct sockaddr_storage addr;
    int r = uv_ip4_addr(cfg->host, cfg->port, (struct sockaddr_in *)&addr);
    if (r != 0)
        r = uv_ip6_addr(cfg->host, cfg->port, (struct sockaddr_in6 *)&addr);
    if (r != 0)
        goto fail;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->handles_open = 1;
    r = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&s->listener, 1024, net__on_connection);
    if (r != 0) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        goto fail;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    tq_init(&s->http_q, loop, net__http_expired, s);
    s->handles_open += 1; /* the HTTP deadline timer */
    *out = s;
    return 0;
fail:
    mem_free(s);
    return r;
}

int net_server_port(const net_server *s)
{
    return s->port;
}

turn_t *net_server_turn(net_server *s)
{
    return s->turn;
}

size_t net_server_conn_count(const net_server *s)
{
    return s->nconns;
}

static void net__server_handle_closed(uv_handle_t *h)
{
    net_server *s = h->data;
    s->handles_open--;
    net__server_maybe_free(s);
}

void net_server_stop_accepting(net_server *s)
{
    if (!uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, net__server_handle_closed);
}

typedef struct {
    net_server *s;
    int graceful;
} net__walk_arg;

static void net__close_walk(uv_handle_t *h, void *arg)
{
    net__walk_arg *a = arg;
    if (h->type != UV_TCP || uv_is_closing(h) || h == (uv_handle_t *)&a->s->listener)
        return;
    if (h->data == a->s)
        net_conn_close(mem_container_of(h, net_conn, tcp), a->graceful);
}

static void net__grace_expired(uv_timer_t *t)
{
    net__walk_arg a = {t->data, 0};
    uv_walk(t->loop, net__close_walk, &a);
}

void net_server_close(net_server *s, uint32_t grace_ms, void (*done)(void *ud), void *ud)
{
    if (s->closing)
        return;
    s->closing = 1;
    s->closed_cb = done;
    s->closed_ud = ud;
    net_server_stop_accepting(s);
    uv_timer_init(s->loop, &s->grace);
    s->grace.data = s;
    s->handles_open++;
    uv_timer_start(&s->grace, net__grace_expired, grace_ms, 0);
    net__walk_arg a = {s, 1};
    uv_walk(s->loop, net__close_walk, &a);
    /* What the close handlers queued is written at the end of this turn
     * (the turn's TURN_EIO and TURN_NET phases). */
    net__server_maybe_free(s);
}
