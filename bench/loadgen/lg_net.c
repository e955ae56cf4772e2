/* lg_net.c - the load generator's connections: one epoll loop, client-side
 * Engine.IO 4 / Socket.IO 5 over WebSocket (RFC 6455, masked client frames)
 * or HTTP/1.1 long-polling (one keep-alive connection for GETs, one for POSTs,
 * as browsers do).
 *
 * Reading is built to stay cheap at hundreds of thousands of frames per
 * second: every recv lands in one 1 MiB buffer shared by all connections,
 * frames are parsed in place and handed up as pointers, and only the tail of
 * an incomplete frame is copied into a per-connection buffer. Output is
 * queued per connection and written once per loop turn (lg_poll_once).
 *
 * A connection that dies is closed at once but its buffers stay until
 * lg_close_all, so nothing up the stack ever holds a dangling pointer.
 */
#include "lg.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { LG_SK_WS = 1, LG_SK_GET, LG_SK_POST };

#define RBUF_SIZE (1u << 20)
#define MAX_HEADER 16384

lg_global lg;

static char *g_rbuf;             /* the shared read buffer */
static lg_conn **g_dirty;        /* connections with output to flush */
static uint32_t g_n_dirty;
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

void *lg_xalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "loadgen: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

void *lg_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "loadgen: out of memory (%zu bytes)\n", n);
        abort();
    }
    return q;
}

void lg_note_error(const char *fmt, ...)
{
    if (lg.first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lg.first_error, sizeof lg.first_error, fmt, ap);
    va_end(ap);
    /* the result line is logfmt: keep the text free of quotes and newlines */
    for (char *p = lg.first_error; *p; p++)
        if (*p == '"' || *p == '\n' || *p == '\r')
            *p = '\'';
}

static uint32_t rng32(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

int lg_init(uint32_t max_conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -errno;
    }
    signal(SIGPIPE, SIG_IGN);
    g_rng ^= lg_now_ns() ^ ((uint64_t)getpid() << 32);
    lg.ep = epoll_create1(EPOLL_CLOEXEC);
    if (lg.ep < 0)
        return -errno;
    lg.cmd_fd = -1;
    if (lg.n_sources < 1)
        lg.n_sources = 1;
    if (lg.concurrency < 1)
        lg.concurrency = 256;
    lg.conns = lg_xalloc((size_t)max_conns * sizeof *lg.conns);
    lg.n_conns = max_conns;
    g_dirty = lg_xalloc((size_t)(max_conns ? max_conns : 1) * sizeof *g_dirty);
    g_rbuf = lg_xalloc(RBUF_SIZE);
    return 0;
}

/* ---- buffers -------------------------------------------------------------------- */

static void buf_reserve(char **b, uint32_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    *b = lg_xrealloc(*b, n);
    *cap = (uint32_t)n;
}

static void mark_dirty(lg_conn *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        g_dirty[g_n_dirty++] = c;
    }
}

/* Queues bytes on s without putting its connection on the flush list. */
static void sock_append_raw(lg_sock *s, const void *p, size_t n)
{
    buf_reserve(&s->out, &s->out_cap, (size_t)s->out_len + n);
    memcpy(s->out + s->out_len, p, n);
    s->out_len += (uint32_t)n;
}

static void sock_append(lg_sock *s, const void *p, size_t n)
{
    sock_append_raw(s, p, n);
    mark_dirty(s->c);
}

/* ---- connection lifetime ------------------------------------------------------- */

static void sock_close(lg_sock *s)
{
    if (s->fd > 0) {
        close(s->fd); /* also leaves the epoll set: nobody dup()s these fds */
        s->fd = -1;
    }
}

/* Marks c dead, closes its sockets, counts it once. Buffers stay (see top). */
static void conn_kill(lg_conn *c, const char *why)
{
    if (c->state == LG_ST_DEAD || c->state == LG_ST_FREE)
        return;
    if (c->state == LG_ST_READY) {
        lg.dropped++;
        lg_note_error("connection %u dropped: %s", c->idx, why);
    } else {
        lg.failed++;
        lg_note_error("connection %u failed: %s", c->idx, why);
    }
    c->state = LG_ST_DEAD;
    sock_close(&c->s);
    sock_close(&c->p);
}

static int sock_open(lg_sock *s, lg_conn *c, int kind)
{
    const lg_target *t = &lg.targets[c->target];
    struct sockaddr_in src = { .sin_family = AF_INET };
    struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)t->port) };
    int one = 1, r;

    s->c = c;
    s->kind = (uint8_t)kind;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -errno;
    setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* 127.0.0.1 .. 127.0.0.n: each source address has its own ephemeral ports */
    src.sin_addr.s_addr = htonl(0x7f000001u + (c->idx % (uint32_t)lg.n_sources));
    if (bind(s->fd, (struct sockaddr *)&src, sizeof src) != 0)
        goto fail;
    inet_pton(AF_INET, t->host, &dst.sin_addr);
    r = connect(s->fd, (struct sockaddr *)&dst, sizeof dst);
    if (r != 0 && errno != EINPROGRESS)
        goto fail;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = s };
    if (epoll_ctl(lg.ep, EPOLL_CTL_ADD, s->fd, &ev) != 0)
        goto fail;
    s->watch_out = 1;
    return 0;
fail:
    r = -errno;
    close(s->fd);
    s->fd = -1;
    return r;
}

static void append_get(lg_conn *c)
{
    char req[256];
    const lg_target *t = &lg.targets[c->target];
    int n = snprintf(req, sizeof req,
                     "GET /socket.io/?EIO=4&transport=polling%s%s HTTP/1.1\r\n"
                     "Host: %s:%d\r\nAccept: */*\r\n\r\n",
                     c->sid[0] ? "&sid=" : "", c->sid, t->host, t->port);
    sock_append(&c->s, req, (size_t)n);
    c->get_busy = 1;
}

static void start_conn(uint32_t i)
{
    lg_conn *c = &lg.conns[i];
    const lg_target *t;
    int r;

    memset(c, 0, sizeof *c);
    c->s.fd = c->p.fd = -1;
    c->idx = i;
    c->target = (uint8_t)(i % (uint32_t)lg.n_targets);
    c->poll = lg.polling;
    c->state = LG_ST_CONNECTING;
    uint32_t m = rng32() | 0x01010101u;
    memcpy(c->mask, &m, 4);
    t = &lg.targets[c->target];
    r = sock_open(&c->s, c, c->poll ? LG_SK_GET : LG_SK_WS);
    if (r < 0) {
        int k = r == -ECONNREFUSED ? 0 : r == -ETIMEDOUT ? 1 : r == -ECONNRESET ? 2 : 3;
        lg.connect_errors[k]++;
        c->state = LG_ST_CONNECTING;
        conn_kill(c, strerror(-r));
        return;
    }
    if (c->poll) {
        append_get(c);
    } else {
        char req[320];
        int n = snprintf(req, sizeof req,
                         "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                         "Host: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         t->host, t->port);
        sock_append(&c->s, req, (size_t)n);
    }
}

void lg_pump(uint32_t upto)
{
    if (upto > lg.n_conns)
        upto = lg.n_conns;
    while (lg.n_started < upto && lg.n_started - (lg.ready + lg.failed) < lg.concurrency)
        start_conn(lg.n_started++);
}

void lg_close_all(void)
{
    for (uint32_t i = 0; i < lg.n_started; i++) {
        lg_conn *c = &lg.conns[i];
        sock_close(&c->s);
        sock_close(&c->p);
        free(c->s.in);
        free(c->s.out);
        free(c->p.in);
        free(c->p.out);
        free(c->q);
        memset(c, 0, sizeof *c);
    }
    lg.n_started = 0;
    g_n_dirty = 0;
}

/* ---- output --------------------------------------------------------------------- */

/* Appends one masked WebSocket text frame whose payload is `prefix` (one
 * byte, 0 for none) followed by p[0..n). */
static void ws_frame(lg_conn *c, char prefix, const char *p, size_t n)
{
    lg_sock *s = &c->s;
    size_t plen = n + (prefix ? 1 : 0);
    uint8_t h[14];
    size_t hl = 2;

    h[0] = 0x81;
    if (plen < 126) {
        h[1] = (uint8_t)(0x80 | plen);
    } else if (plen < 65536) {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(plen >> 8);
        h[3] = (uint8_t)plen;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)plen >> (56 - 8 * i));
        hl = 10;
    }
    memcpy(h + hl, c->mask, 4);
    hl += 4;
    buf_reserve(&s->out, &s->out_cap, (size_t)s->out_len + hl + plen);
    uint8_t *o = (uint8_t *)s->out + s->out_len;
    memcpy(o, h, hl);
    o += hl;
    size_t k = 0;
    if (prefix)
        o[k++] = (uint8_t)prefix ^ c->mask[0];
    for (size_t i = 0; i < n; i++, k++)
        o[k] = (uint8_t)p[i] ^ c->mask[k & 3];
    s->out_len += (uint32_t)(hl + plen);
    mark_dirty(c);
}

/* One Engine.IO packet: type byte `type`, then p[0..n). */
static void send_eio(lg_conn *c, char type, const char *p, size_t n)
{
    if (c->state == LG_ST_DEAD)
        return;
    if (!c->poll) {
        ws_frame(c, type, p, n);
        return;
    }
    buf_reserve(&c->q, &c->q_cap, (size_t)c->q_len + n + 2);
    if (c->q_len)
        c->q[c->q_len++] = 0x1e;
    c->q[c->q_len++] = type;
    memcpy(c->q + c->q_len, p, n);
    c->q_len += (uint32_t)n;
    mark_dirty(c);
}

void lg_send_sio(lg_conn *c, const char *pkt, size_t len)
{
    send_eio(c, '4', pkt, len);
}

static void watch_out(lg_sock *s, int on)
{
    if (s->watch_out == on || s->fd < 0)
        return;
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = s };
    epoll_ctl(lg.ep, EPOLL_CTL_MOD, s->fd, &ev);
    s->watch_out = (uint8_t)on;
}

static void sock_flush(lg_sock *s)
{
    if (s->fd < 0 || !s->connected)
        return;
    while (s->out_off < s->out_len) {
        ssize_t n = send(s->fd, s->out + s->out_off, s->out_len - s->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            s->out_off += (uint32_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            watch_out(s, 1);
            return;
        }
        conn_kill(s->c, n < 0 ? strerror(errno) : "send returned 0");
        return;
    }
    s->out_off = s->out_len = 0;
    if (s->out_cap > (256u << 10)) { /* give back a burst's buffer */
        free(s->out);
        s->out = NULL;
        s->out_cap = 0;
    }
    watch_out(s, 0);
}

static void conn_flush(lg_conn *c)
{
    c->dirty = 0;
    if (c->state == LG_ST_DEAD)
        return;
    if (c->poll && c->q_len && !c->post_busy && c->sid[0]) {
        if (c->p.fd < 0 && c->p.kind == 0) {
            int r = sock_open(&c->p, c, LG_SK_POST);
            if (r < 0) {
                conn_kill(c, strerror(-r));
                return;
            }
        }
        char hdr[320];
        const lg_target *t = &lg.targets[c->target];
        int n = snprintf(hdr, sizeof hdr,
                         "POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\n"
                         "Host: %s:%d\r\nContent-Type: text/plain;charset=UTF-8\r\n"
                         "Content-Length: %u\r\n\r\n",
                         c->sid, t->host, t->port, c->q_len);
        sock_append_raw(&c->p, hdr, (size_t)n);
        sock_append_raw(&c->p, c->q, c->q_len);
        c->q_len = 0;
        c->post_busy = 1;
    }
    sock_flush(&c->s);
    if (c->poll && c->p.fd >= 0)
        sock_flush(&c->p);
}

/* ---- input ---------------------------------------------------------------------- */

static void on_sio(lg_conn *c, const char *p, size_t n)
{
    if (n == 0)
        return;
    switch (p[0]) {
    case '0': /* CONNECT */
        if (c->state != LG_ST_READY) {
            c->state = LG_ST_READY;
            lg.ready++;
            if (lg.ops.on_ready)
                lg.ops.on_ready(c);
        }
        break;
    case '2': { /* EVENT: 2[ack id]["name",...] */
        size_t i = 1;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i + 2 >= n || p[i] != '[' || p[i + 1] != '"')
            return;
        const char *name = p + i + 2;
        const char *end = memchr(name, '"', n - (i + 2));
        if (!end)
            return;
        if (lg.ops.on_event)
            lg.ops.on_event(c, name, (size_t)(end - name), p, n);
        break;
    }
    case '3': { /* ACK: 3<id>[...] */
        size_t i = 1;
        long id = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            id = id * 10 + (p[i++] - '0');
        if (lg.ops.on_ack)
            lg.ops.on_ack(c, id, p + i, n - i);
        break;
    }
    case '4': /* CONNECT_ERROR */
        conn_kill(c, "socket.io connect_error");
        break;
    case '1':
        conn_kill(c, "socket.io disconnect");
        break;
    default:
        break;
    }
}

static void on_eio(lg_conn *c, const char *p, size_t n)
{
    if (n == 0 || c->state == LG_ST_DEAD)
        return;
    switch (p[0]) {
    case '0': /* open: {"sid":"...",...} */
        if (c->poll) {
            const char *k = memmem(p, n, "\"sid\":\"", 7);
            const char *e = k ? memchr(k + 7, '"', n - (size_t)(k + 7 - p)) : NULL;
            if (!e || (size_t)(e - (k + 7)) >= sizeof c->sid) {
                conn_kill(c, "bad engine.io open packet");
                return;
            }
            memcpy(c->sid, k + 7, (size_t)(e - (k + 7)));
            c->sid[e - (k + 7)] = 0;
        }
        c->state = LG_ST_SIO_WAIT;
        send_eio(c, '4', "0", 1);
        break;
    case '2': /* ping */
        lg.pings++;
        send_eio(c, '3', "", 0);
        break;
    case '4':
        on_sio(c, p + 1, n - 1);
        break;
    case '1':
        conn_kill(c, "engine.io close");
        break;
    default: /* 3 pong, 6 noop */
        break;
    }
}

/* WebSocket frames in buf[pos..len). Returns the bytes consumed. */
static size_t parse_ws(lg_sock *s, const char *buf, size_t len, size_t pos)
{
    lg_conn *c = s->c;
    while (len - pos >= 2) {
        const uint8_t *b = (const uint8_t *)buf + pos;
        uint64_t plen = b[1] & 0x7f;
        size_t hl = 2;
        if (plen == 126) {
            if (len - pos < 4)
                break;
            plen = ((uint64_t)b[2] << 8) | b[3];
            hl = 4;
        } else if (plen == 127) {
            if (len - pos < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | b[2 + i];
            hl = 10;
        }
        if (b[1] & 0x80) {
            conn_kill(c, "masked frame from the server");
            return len;
        }
        if (plen > (256u << 20)) {
            conn_kill(c, "frame larger than 256 MiB");
            return len;
        }
        if (len - pos < hl + plen) {
            s->need = (uint32_t)(hl + plen);
            return pos;
        }
        uint8_t op = b[0] & 0x0f;
        const char *payload = buf + pos + hl;
        lg.frames++;
        if (op == 1 || op == 2) {
            if (!(b[0] & 0x80)) {
                conn_kill(c, "fragmented message (not supported)");
                return len;
            }
            if (op == 1)
                on_eio(c, payload, (size_t)plen);
        } else if (op == 8) {
            conn_kill(c, "websocket close frame");
            return len;
        } else if (op == 9) { /* ping: pong with the same payload */
            uint8_t h[6] = { 0x8a, (uint8_t)(0x80 | (plen & 0x7f)), 0, 0, 0, 0 };
            if (plen < 126) {
                sock_append(s, h, 6);
                sock_append(s, payload, (size_t)plen);
            }
        }
        pos += hl + (size_t)plen;
        if (c->state == LG_ST_DEAD)
            return len;
    }
    s->need = 0;
    return pos;
}

static long header_content_length(const char *h, size_t n)
{
    const char *p = h, *end = h + n;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0)
            return strtol(p + 15, NULL, 10);
        if ((size_t)(eol - p) > 18 && strncasecmp(p, "transfer-encoding:", 18) == 0)
            return -2;
        p = eol + 2;
    }
    return -1;
}

/* HTTP/1.1 responses (polling). Returns the bytes consumed. */
static size_t parse_http(lg_sock *s, const char *buf, size_t len)
{
    lg_conn *c = s->c;
    size_t pos = 0;
    while (pos < len) {
        const char *he = memmem(buf + pos, len - pos, "\r\n\r\n", 4);
        if (!he) {
            if (len - pos > MAX_HEADER)
                conn_kill(c, "response header too large");
            s->need = 0;
            return pos;
        }
        size_t hlen = (size_t)(he - (buf + pos)) + 4;
        int status = len - pos > 12 ? atoi(buf + pos + 9) : 0;
        long cl = header_content_length(buf + pos, hlen);
        if (cl < 0) {
            conn_kill(c, cl == -2 ? "chunked response (not supported)" : "response without content-length");
            return len;
        }
        if (len - pos < hlen + (size_t)cl) {
            s->need = (uint32_t)(hlen + (size_t)cl);
            return pos;
        }
        const char *body = buf + pos + hlen;
        pos += hlen + (size_t)cl;
        if (status != 200) {
            char why[64];
            snprintf(why, sizeof why, "HTTP %d on %s", status, s->kind == LG_SK_POST ? "POST" : "GET");
            conn_kill(c, why);
            return len;
        }
        if (s->kind == LG_SK_POST) {
            c->post_busy = 0;
            if (c->q_len)
                mark_dirty(c);
            continue;
        }
        c->get_busy = 0;
        const char *p = body, *e = body + cl;
        while (p < e && c->state != LG_ST_DEAD) {
            const char *sep = memchr(p, 0x1e, (size_t)(e - p));
            const char *pe = sep ? sep : e;
            on_eio(c, p, (size_t)(pe - p));
            p = sep ? sep + 1 : e;
        }
        if (c->state == LG_ST_DEAD)
            return len;
        append_get(c); /* keep one long-poll outstanding */
    }
    s->need = 0;
    return pos;
}

static size_t sock_parse(lg_sock *s, const char *buf, size_t len)
{
    if (s->kind != LG_SK_WS)
        return parse_http(s, buf, len);
    if (s->upgraded)
        return parse_ws(s, buf, len, 0);
    const char *he = memmem(buf, len, "\r\n\r\n", 4);
    if (!he) {
        if (len > MAX_HEADER)
            conn_kill(s->c, "handshake response too large");
        return 0;
    }
    if (len < 12 || memcmp(buf + 9, "101", 3) != 0) {
        char why[64];
        snprintf(why, sizeof why, "websocket handshake answered HTTP %.3s", len >= 12 ? buf + 9 : "???");
        conn_kill(s->c, why);
        return len;
    }
    s->upgraded = 1;
    return parse_ws(s, buf, len, (size_t)(he - buf) + 4);
}

static void sock_read(lg_sock *s)
{
    lg_conn *c = s->c;
    for (int round = 0; round < 8; round++) {
        char *buf;
        size_t have, cap;
        if (s->in_len == 0) {
            buf = g_rbuf;
            have = 0;
            cap = RBUF_SIZE;
        } else {
            size_t want = (size_t)s->in_len + 65536;
            if (s->need > want)
                want = s->need;
            buf_reserve(&s->in, &s->in_cap, want);
            buf = s->in;
            have = s->in_len;
            cap = s->in_cap;
        }
        ssize_t n = recv(s->fd, buf + have, cap - have, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            conn_kill(c, strerror(errno));
            return;
        }
        if (n == 0) {
            if (s->kind == LG_SK_POST && !c->post_busy) {
                /* an idle keep-alive POST connection the server timed out:
                 * not an error, the next POST opens a new one */
                sock_close(s);
                s->kind = 0;
                s->connected = s->watch_out = 0;
                s->in_len = s->need = 0;
                s->out_len = s->out_off = 0;
                return;
            }
            conn_kill(c, "closed by the server");
            return;
        }
        lg.bytes_in += (uint64_t)n;
        size_t total = have + (size_t)n;
        size_t used = sock_parse(s, buf, total);
        if (c->state == LG_ST_DEAD)
            return;
        size_t left = total - used;
        if (buf == g_rbuf) {
            if (left) {
                buf_reserve(&s->in, &s->in_cap, left > s->need ? left : s->need);
                memcpy(s->in, buf + used, left);
            }
        } else if (left && used) {
            memmove(s->in, s->in + used, left);
        }
        s->in_len = (uint32_t)left;
        if (left == 0 && s->in_cap > (256u << 10)) {
            free(s->in);
            s->in = NULL;
            s->in_cap = 0;
        }
        if ((size_t)n < cap - have)
            return; /* short read: the socket is drained */
    }
}

static void on_sock_event(lg_sock *s, uint32_t ev)
{
    lg_conn *c = s->c;
    if (!s->connected) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            int k = err == ECONNREFUSED ? 0 : err == ETIMEDOUT ? 1 : err == ECONNRESET ? 2 : 3;
            lg.connect_errors[k]++;
            conn_kill(c, strerror(err));
            return;
        }
        s->connected = 1;
    }
    if (ev & EPOLLOUT)
        sock_flush(s);
    if (c->state != LG_ST_DEAD && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        sock_read(s);
}

/* ---- the loop ------------------------------------------------------------------- */

int lg_poll_once(int timeout_ms)
{
    struct epoll_event ev[512];
    int cmd = 0;
    int n = epoll_wait(lg.ep, ev, 512, timeout_ms);
    for (int i = 0; i < n; i++) {
        lg_sock *s = ev[i].data.ptr;
        if (!s) {
            cmd = 1;
            continue;
        }
        if (s->c->state == LG_ST_DEAD || s->fd < 0)
            continue;
        on_sock_event(s, ev[i].events);
    }
    for (uint32_t i = 0; i < g_n_dirty; i++)
        conn_flush(g_dirty[i]);
    g_n_dirty = 0;
    return cmd;
}

int lg_run_until(const uint64_t *counter, uint64_t goal, uint32_t upto, uint64_t deadline_ns)
{
    while (*counter < goal) {
        if (lg_now_ns() >= deadline_ns)
            return -ETIMEDOUT;
        lg_pump(upto);
        lg_poll_once(5);
    }
    return 0;
}
