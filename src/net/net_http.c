/* net_http.c - HTTP/1.1 requests on a connection: parsing with http-parser,
 * limits on header and body size, responses, keep-alive and pipelining.
 *
 * The parser pauses itself when a request is complete; bytes that follow
 * (a pipelined request, or the first WebSocket frames after an upgrade
 * request) wait in pending_in until the response is written, and parsing
 * resumes from the server's flush step. The HTTP state is freed between
 * requests, so an idle keep-alive connection holds none. */
#include "net/net_internal.h"
#include "util/log.h"
#include "util/mem.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const net__header_names[NET_H_COUNT] = {
    [NET_H_UPGRADE] = "upgrade",
    [NET_H_CONNECTION] = "connection",
    [NET_H_WS_KEY] = "sec-websocket-key",
    [NET_H_WS_VERSION] = "sec-websocket-version",
    [NET_H_ORIGIN] = "origin",
    [NET_H_CONTENT_TYPE] = "content-type",
    [NET_H_FORWARDED_FOR] = "x-forwarded-for",
    [NET_H_HOST] = "host",
    [NET_H_AUTHORIZATION] = "authorization",
};

static net_conn *net__conn_of(http_parser *p)
{
    return p->data;
}

static int net__count_header_bytes(net_conn *c, size_t len)
{
    net_http *h = c->http;
    h->header_bytes += len;
    if (h->header_bytes > net__srv(c)->cfg.max_header_bytes) {
        h->too_large = 431;
        return ERR_LIMITED;
    }
    return 0;
}

static int net__on_url(http_parser *p, const char *at, size_t len)
{
    net_conn *c = net__conn_of(p);
    if (net__count_header_bytes(c, len))
        return ERR_LIMITED; /* http_parser stops on any nonzero value */
    buf_append(&c->http->url, at, len);
    return 0;
}

static int net__on_header_field(http_parser *p, const char *at, size_t len)
{
    net_conn *c = net__conn_of(p);
    net_http *h = c->http;
    if (net__count_header_bytes(c, len))
        return ERR_LIMITED; /* http_parser stops on any nonzero value */
    if (h->in_trailers)
        return 0;
    if (h->last_was_value) {
        h->field.len = 0;
        h->last_was_value = 0;
    }
    buf_append(&h->field, at, len);
    return 0;
}

static int net__on_header_value(http_parser *p, const char *at, size_t len)
{
    net_conn *c = net__conn_of(p);
    net_http *h = c->http;
    if (net__count_header_bytes(c, len))
        return ERR_LIMITED; /* http_parser stops on any nonzero value */
    /* The request's header fields point into hv since headers complete:
     * trailers must not grow (move) those buffers, and no handler reads
     * them anyway. */
    if (h->in_trailers)
        return 0;
    if (!h->last_was_value) {
        h->last_was_value = 1;
        h->cur = -1;
        for (int i = 0; i < NET_H_COUNT; i++) {
            if (h->field.len && strcasecmp(h->field.data, net__header_names[i]) == 0) {
                h->cur = i;
                /* A repeated header joins its values, as RFC 9110 5.3 allows. */
                if (h->seen[i])
                    buf_append(&h->hv[i], ", ", 2);
                h->seen[i] = 1;
                break;
            }
        }
    }
    if (h->cur >= 0)
        buf_append(&h->hv[h->cur], at, len);
    return 0;
}

/* The body is over the limit: deliver the request now, flagged, without
 * reading further; the connection closes after the response. */
static void net__stop_too_large(http_parser *p, net_http *h)
{
    h->too_large = 413;
    h->req.too_large = 1;
    h->complete = 1;
    h->req.keep_alive = 0;
    buf_free(&h->req.body);
    http_parser_pause(p, 1);
}

static int net__on_headers_complete(http_parser *p)
{
    net_conn *c = net__conn_of(p);
    net_http *h = c->http;
    net_request *r = &h->req;
    h->in_trailers = 1;
    buf_append(&h->url, "", 0); /* ensure a NUL-terminated buffer */
    r->url = h->url.data;
    char *q = strchr(r->url, '?');
    r->path_len = q ? (size_t)(q - r->url) : h->url.len;
    r->query = q ? q + 1 : "";
    char **slots[NET_H_COUNT] = {
        [NET_H_UPGRADE] = &r->upgrade, [NET_H_CONNECTION] = &r->connection,
        [NET_H_WS_KEY] = &r->ws_key, [NET_H_WS_VERSION] = &r->ws_version,
        [NET_H_ORIGIN] = &r->origin, [NET_H_CONTENT_TYPE] = &r->content_type,
        [NET_H_FORWARDED_FOR] = &r->forwarded_for, [NET_H_HOST] = &r->host,
        [NET_H_AUTHORIZATION] = &r->authorization,
    };
    for (int i = 0; i < NET_H_COUNT; i++) {
        if (h->seen[i])
            buf_append(&h->hv[i], "", 0);
        *slots[i] = h->seen[i] ? h->hv[i].data : NULL;
    }
    r->method = (int)p->method;
    r->method_name = http_method_str((enum http_method)p->method);
    if (p->content_length != ULLONG_MAX && p->content_length > net__srv(c)->cfg.max_body_bytes)
        net__stop_too_large(p, h);
    return 0;
}

static int net__on_body(http_parser *p, const char *at, size_t len)
{
    net_conn *c = net__conn_of(p);
    net_http *h = c->http;
    if (h->req.body.len + len > net__srv(c)->cfg.max_body_bytes) {
        net__stop_too_large(p, h);
        return 0;
    }
    buf_append(&h->req.body, at, len);
    return 0;
}

static int net__on_message_complete(http_parser *p)
{
    net_conn *c = net__conn_of(p);
    net_http *h = c->http;
    h->complete = 1;
    h->req.keep_alive = http_should_keep_alive(p);
    h->req.is_upgrade = p->upgrade;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings net__settings = {
    .on_url = net__on_url,
    .on_header_field = net__on_header_field,
    .on_header_value = net__on_header_value,
    .on_headers_complete = net__on_headers_complete,
    .on_body = net__on_body,
    .on_message_complete = net__on_message_complete,
};

static net_http *net__http_new(net_conn *c)
{
    net_http *h = mem_calloc(1, sizeof(*h));
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = c;
    h->cur = -1;
    return h;
}

void net__http_free(net_conn *c)
{
    net_http *h = c->http;
    if (h == NULL)
        return;
    buf_free(&h->url);
    buf_free(&h->field);
    for (int i = 0; i < NET_H_COUNT; i++)
        buf_free(&h->hv[i]);
    buf_free(&h->req.body);
    buf_free(&h->pending_in);
    mem_free(h);
    c->http = NULL;
}

static void net__dispatch(net_conn *c)
{
    net_http *h = c->http;
    net__http_deadline_stop(c); /* answering may take long (a long-poll) */
    if (h->too_large == 431) {
        net_respond_close(c, 431, "text/plain", NULL, "Request Header Fields Too Large\n", 32);
        return;
    }
    net__srv(c)->handler->on_request(net__srv(c)->ud, c, &h->req);
}

/* Parses data; returns bytes consumed. */
static size_t net__parse(net_conn *c, const uint8_t *data, size_t len)
{
    net_http *h = c->http;
    size_t n = http_parser_execute(&h->parser, &net__settings, (const char *)data, len);
    enum http_errno err = HTTP_PARSER_ERRNO(&h->parser);
    if (err == HPE_PAUSED || err == HPE_OK)
        return n;
    if (h->too_large == 431) {
        h->complete = 1;
        net__dispatch(c);
        return len;
    }
    char peer[64];
    net_conn_peer(c, peer, sizeof(peer));
    log_debug("bad http request", "peer=%s error=%s", peer, http_errno_name(err));
    h->complete = 1;
    net_respond_close(c, 400, "text/plain", NULL, "Bad Request\n", 12);
    return len;
}

void net__http_feed(net_conn *c, const uint8_t *data, size_t len)
{
    if (c->http == NULL)
        c->http = net__http_new(c);
    net_http *h = c->http;
    if (h->complete || h->pending_in.len) {
        /* Answering a request, or older input waits: keep order. */
        size_t limit = net__srv(c)->cfg.max_header_bytes + net__srv(c)->cfg.max_body_bytes;
        if (h->pending_in.len + len > limit) {
            net_conn_close(c, 0);
            return;
        }
        buf_append(&h->pending_in, data, len);
        if (!h->complete)
            net__http_resume(c);
        return;
    }
    size_t n = net__parse(c, data, len);
    if (c->flags & NET_F_CLOSED)
        return;
    if (!h->complete)
        return; /* all consumed, request incomplete */
    if (n < len)
        buf_append(&h->pending_in, data + n, len - n);
    net__dispatch(c);
}

void net__http_resume(net_conn *c)
{
    net_http *h = c->http;
    while (h && !h->complete && h->pending_in.len && !(c->flags & (NET_F_CLOSED | NET_F_RAW))) {
        http_parser_pause(&h->parser, 0);
        size_t n = net__parse(c, (const uint8_t *)h->pending_in.data, h->pending_in.len);
        if (c->flags & NET_F_CLOSED)
            return;
        buf_consume(&h->pending_in, n);
        if (!h->complete)
            return;
        net__dispatch(c);
        h = c->http;
    }
}

net_request *net_conn_request(net_conn *c)
{
    return (c->http && c->http->complete) ? &c->http->req : NULL;
}

/* The request is answered: reset for the next one. */
static void net__request_done(net_conn *c, int close_after)
{
    net_http *h = c->http;
    net__http_deadline_start(c); /* the next request, or idle keep-alive */
    if (close_after || h == NULL || h->req.is_upgrade || !h->req.keep_alive ||
        h->req.too_large) {
        net_conn_close(c, 1);
        return;
    }
    if (h->pending_in.len == 0) {
        net__http_free(c); /* idle keep-alive connections hold no HTTP state */
        return;
    }
    buf_t pending = h->pending_in;
    h->pending_in = (buf_t){0};
    net__http_free(c);
    c->http = net__http_new(c);
    c->http->pending_in = pending;
    net__mark_dirty(c); /* the flush step resumes parsing */
}

const char *net_status_text(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

static rbuf_t *net__head(net_conn *c, int status, const char *content_type,
                         const char *extra_headers, size_t len, int close_after,
                         size_t body_room)
{
    net_http *h = c->http;
    int keep = !close_after && h && h->req.keep_alive && !h->req.is_upgrade &&
               !h->req.too_large;
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Length: %zu\r\n"
                     "%s%s%s"
                     "Connection: %s\r\n",
                     status, net_status_text(status), len,
                     content_type ? "Content-Type: " : "", content_type ? content_type : "",
                     content_type ? "\r\n" : "", keep ? "keep-alive" : "close");
    size_t extra = extra_headers ? strlen(extra_headers) : 0;
    rbuf_t *b = rbuf_new((size_t)n + extra + 2 + body_room);
    memcpy(b->data, head, (size_t)n);
    if (extra)
        memcpy(b->data + n, extra_headers, extra);
    memcpy(b->data + n + extra, "\r\n", 2);
    b->len = (uint32_t)((size_t)n + extra + 2);
    return b;
}

static void net__respond(net_conn *c, int status, const char *content_type,
                         const char *extra_headers, const void *body, size_t len, int close_after)
{
    rbuf_t *b = net__head(c, status, content_type, extra_headers, len, close_after, len);
    if (len)
        memcpy(b->data + b->len, body, len);
    b->len += (uint32_t)len;
    net_conn_write(c, b, 0, b->len);
    rbuf_unref(b);
    net__request_done(c, close_after);
}

void net_respond(net_conn *c, int status, const char *content_type,
                 const char *extra_headers, const void *body, size_t len)
{
    net__respond(c, status, content_type, extra_headers, body, len, 0);
}

void net_respond_close(net_conn *c, int status, const char *content_type,
                       const char *extra_headers, const void *body, size_t len)
{
    net__respond(c, status, content_type, extra_headers, body, len, 1);
}

void net_respond_rbuf(net_conn *c, int status, const char *content_type,
                      const char *extra_headers, rbuf_t *body, size_t off, size_t len)
{
    rbuf_t *b = net__head(c, status, content_type, extra_headers, len, 0, 0);
    net_conn_write(c, b, 0, b->len);
    rbuf_unref(b);
    net_conn_write(c, body, off, len);
    net__request_done(c, 0);
}

static int net__hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return ERR_INVAL;
}

int net_query_get(const char *query, const char *name, char *out, size_t size)
{
    size_t nlen = strlen(name);
    const char *p = query;
    while (p && *p) {
        const char *end = strchr(p, '&');
        size_t seg = end ? (size_t)(end - p) : strlen(p);
        if (seg > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            size_t o = 0;
            for (size_t i = nlen + 1; i < seg; i++) {
                char ch = p[i];
                if (ch == '+') {
                    ch = ' ';
                } else if (ch == '%' && i + 2 < seg && net__hexval(p[i + 1]) >= 0 &&
                           net__hexval(p[i + 2]) >= 0) {
                    ch = (char)(net__hexval(p[i + 1]) * 16 + net__hexval(p[i + 2]));
                    i += 2;
                }
                if (o + 1 >= size)
                    return ERR_TOOLONG;
                out[o++] = ch;
            }
            out[o] = '\0';
            return (int)o;
        }
        if (seg == nlen && strncmp(p, name, nlen) == 0) {
            if (size == 0)
                return ERR_TOOLONG;
            out[0] = '\0';
            return 0;
        }
        p = end ? end + 1 : NULL;
    }
    return ERR_NOTFOUND;
}
