/* fuzz_http.c - libFuzzer target for HTTP/1.1 request handling: http-parser
 * driven by our callbacks, header and body limits, pipelining, responses,
 * keep-alive, upgrades and the output queue (src/net/net_http.c and
 * src/net/net_conn.c).
 *
 * The harness runs the real thing: on the first input it starts a net
 * server on an ephemeral loopback port inside this process (the default
 * libuv loop, small limits), and every input is sent to it over a real TCP
 * connection from a plain non-blocking POSIX socket, the loop being turned
 * with uv_run(UV_RUN_NOWAIT) by hand. A socketpair + uv_tcp_open was not
 * needed: this runs at about 5,000 inputs a second (ASan + UBSan, one core).
 *
 * Input layout: byte 0 is the configuration
 *   bits 0-1  number of chunks the stream is cut into (0 and 1: one)
 *   bit 2     connect from 127.0.0.2, the server's trusted proxy (so
 *             X-Forwarded-For is used and max_per_ip does not count it)
 *   bit 3     shut the write side down right after the last chunk, without
 *             letting the server answer first (the EOF then races the
 *             pending output and pipelined input)
 *   bits 4-5  flush steps a long-poll (GET /poll) waits before its answer
 *             (3: it is never answered; the peer's EOF ends it)
 *   bits 6-7  unused
 * bytes 1 and 2 are the cut points (as fractions of the rest, /256); the
 * rest is the byte stream a client sends.
 *
 * Per input: connect, write each chunk and turn the loop twice after it (so
 * chunks arrive as separate reads), let the server answer until the client
 * has seen nothing new for two turns (unless bit 3), shutdown(SHUT_WR), and
 * turn the loop until the server has freed the connection. Everything the
 * server sends is read and discarded. Shutting down right after writing
 * (bit 3 only) lets the server see the EOF in the same read loop as the
 * request, before its flush step: nothing is written and no pipelined
 * request parsed, which is why the answer is normally awaited first.
 *
 * The request handler routes by path, so the fuzzer picks what happens to
 * each pipelined request:
 *   /ws     upgrade: a 101 and net_conn_upgrade when Sec-WebSocket-Key is
 *           valid (ws_accept_key), else 400 and close
 *   /raw    upgrade without any check
 *   /poll   left pending, answered from a flush hook some steps later
 *           (alternately net_respond and net_respond_rbuf), as Engine.IO
 *           answers long-polls; not on the next input, since by then the
 *           client's EOF has closed the connection
 *   /rbuf   net_respond_rbuf with a shared body
 *   /close  net_respond_close
 *   /big    a response larger than max_output_bytes (slow-consumer cut)
 *   /404    404 (an error status)
 *   other   200 echoing the request body, the client address and a query
 *           parameter
 * The upgraded connection's owner echoes raw data; data starting with 'C'
 * closes it gracefully, 'X' abruptly.
 *
 * Checks on every request: the strings the header promises are
 * NUL-terminated (strlen lets ASan see an unterminated one), path and query
 * point into the URL, the body respects max_body_bytes, a too-large request
 * has no body, net_conn_request gives the same request. After each input the
 * server must have closed and freed the connection once the client has
 * gone; a connection it keeps is a leak and aborts. At exit the server is
 * closed and the loop run dry, so LeakSanitizer sees a clean heap.
 *
 * Build and run: make fuzz-build && scripts/fuzz.sh 60 build-fuzz/fuzz_http
 * (corpus: tests/fuzz/corpus/http, dictionary: tests/fuzz/http.dict). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>
#include <uv.h>

#include "fuzz.h"
#include "net/net.h"
#include "util/log.h"
#include "util/rbuf.h"
#include "ws/ws_handshake.h"


#define FUZZ_MAX_HEADER 1024
#define FUZZ_MAX_BODY 512
#define FUZZ_MAX_OUTPUT 8192
#define FUZZ_BIG_BODY (FUZZ_MAX_OUTPUT + 1)
#define FUZZ_TURNS_QUIET 2     /* turns without output that end the answer wait */
#define FUZZ_TURNS_ANSWER 32   /* at most this many turns waiting for answers */
#define FUZZ_TURNS_CLOSE 2000  /* at most this many for the server to let go */

static uv_loop_t *fuzz_loop;
static turn_t fuzz_turn_hooks;  /* the loop's end-of-turn hooks (net's, ours) */
static turn_hook fuzz_poll_hook; /* TURN_EIO, as Engine.IO's: fuzz_flush_hook */
static net_server *fuzz_srv;
static rbuf_t *fuzz_shared;      /* a shared body for net_respond_rbuf */
static net_conn *fuzz_poll;      /* a pending long-poll, or NULL */
static int fuzz_poll_wait;       /* flush steps before it is answered; <0 never */
static int fuzz_poll_delay;      /* this input's delay for new long-polls */
static unsigned fuzz_poll_count; /* alternates the kind of answer */
static unsigned fuzz_echo_owner; /* the owner of upgraded connections */

static const char *const fuzz_trusted[] = {"127.0.0.2"};

/* ---- the server side ------------------------------------------------------ */

static void fuzz_poll_closed(void *owner, net_conn *c)
{
    FUZZ_CHECK(c == fuzz_poll);
    fuzz_poll = NULL;
}

static const net_owner_ops fuzz_poll_ops = {.on_data = NULL, .on_close = fuzz_poll_closed};

static void fuzz_poll_answer(void)
{
    net_conn *c = fuzz_poll;
    FUZZ_CHECK(net_conn_request(c) != NULL);
    fuzz_poll = NULL;
    net_conn_set_owner(c, NULL, NULL);
    if (fuzz_poll_count++ & 1)
        net_respond_rbuf(c, 200, "text/plain", "Cache-Control: no-store\r\n", fuzz_shared, 2,
                         fuzz_shared->len - 2);
    else
        net_respond(c, 200, "text/plain; charset=UTF-8", NULL, "6", 1);
}

/* Answers the pending long-poll once its time has come, as Engine.IO does
 * from its own turn hook (armed for every turn the fuzzer runs). */
static void fuzz_flush_hook(void *ud)
{
    if (fuzz_poll == NULL || fuzz_poll_wait < 0)
        return;
    if (fuzz_poll_wait-- == 0)
        fuzz_poll_answer();
}

static void fuzz_echo_data(void *owner, net_conn *c, uint8_t *data, size_t len)
{
    FUZZ_CHECK(owner == &fuzz_echo_owner && len > 0);
    FUZZ_CHECK(!net_conn_is_closed(c));
    if (data[0] == 'C') {
        net_conn_write_copy(c, "bye", 3);
        net_conn_close(c, 1);
        return;
    }
    if (data[0] == 'X') {
        net_conn_close(c, 0);
        return;
    }
    data[0] ^= 0x20; /* the buffer is ours to modify */
    net_conn_write_copy(c, data, len);
}

static void fuzz_echo_closed(void *owner, net_conn *c)
{
    FUZZ_CHECK(owner == &fuzz_echo_owner);
}

static const net_owner_ops fuzz_echo_ops = {.on_data = fuzz_echo_data,
                                            .on_close = fuzz_echo_closed};

/* Is req's path `p`? */
static int fuzz_path_is(const net_request *req, const char *p)
{
    size_t n = strlen(p);
    return req->path_len == n && memcmp(req->url, p, n) == 0;
}

static void fuzz_check_request(net_conn *c, net_request *req)
{
    FUZZ_CHECK(net_conn_request(c) == req);
    FUZZ_CHECK(req->url != NULL && req->method_name != NULL && req->query != NULL);
    size_t url_len = strlen(req->url);
    FUZZ_CHECK(req->path_len <= url_len);
    if (req->query == req->url + req->path_len + 1)
        FUZZ_CHECK(req->url[req->path_len] == '?');
    else
        FUZZ_CHECK(req->query[0] == '\0' && req->path_len == url_len);
    /* Header values: terminated, and bounded by the header limit (a
     * repeated header adds ", " that the limit does not count). */
    const char *hv[] = {req->upgrade, req->connection, req->ws_key, req->ws_version,
                        req->origin, req->content_type, req->forwarded_for, req->host};
    for (size_t i = 0; i < sizeof(hv) / sizeof(hv[0]); i++)
        if (hv[i])
            FUZZ_CHECK(strlen(hv[i]) <= 3 * FUZZ_MAX_HEADER);
    FUZZ_CHECK(req->body.len <= FUZZ_MAX_BODY);
    FUZZ_CHECK(req->body.len == 0 || req->body.data != NULL);
    FUZZ_CHECK(req->keep_alive == 0 || req->keep_alive == 1);
    FUZZ_CHECK(req->is_upgrade == 0 || req->is_upgrade == 1);
    FUZZ_CHECK(req->too_large == 0 || req->too_large == 1);
    if (req->too_large)
        FUZZ_CHECK(req->body.len == 0 && !req->keep_alive);
}

static void fuzz_upgrade(net_conn *c)
{
    static const char head[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    net_conn_write_copy(c, head, sizeof(head) - 1);
    net_conn_upgrade(c, &fuzz_echo_ops, &fuzz_echo_owner);
}

static void fuzz_on_request(void *ud, net_conn *c, net_request *req)
{
    FUZZ_CHECK(ud == &fuzz_srv);
    fuzz_check_request(c, req);

    if (req->too_large) {
        net_respond(c, 413, "text/plain", NULL, "Payload Too Large\n", 18);
        return;
    }
    if (fuzz_path_is(req, "/ws")) {
        char accept[WS_ACCEPT_LEN + 1];
        if (!req->is_upgrade || req->ws_key == NULL ||
            ws_accept_key(req->ws_key, strlen(req->ws_key), accept) != 0) {
            net_respond_close(c, 400, "text/plain", "Sec-WebSocket-Version: 13\r\n",
                              "Bad handshake\n", 14);
            return;
        }
        FUZZ_CHECK(strlen(accept) == WS_ACCEPT_LEN);
        fuzz_upgrade(c);
        return;
    }
    if (fuzz_path_is(req, "/raw")) {
        fuzz_upgrade(c);
        return;
    }
    if (fuzz_path_is(req, "/poll")) {
        if (fuzz_poll != NULL) /* another connection's: answer it first */
            fuzz_poll_answer();
        fuzz_poll = c;
        fuzz_poll_wait = fuzz_poll_delay;
        net_conn_set_owner(c, &fuzz_poll_ops, NULL);
        return;
    }
    if (fuzz_path_is(req, "/rbuf")) {
        net_respond_rbuf(c, 200, "text/plain", NULL, fuzz_shared, 0, fuzz_shared->len);
        return;
    }
    if (fuzz_path_is(req, "/close")) {
        net_respond_close(c, 200, NULL, NULL, "closing\n", 8);
        return;
    }
    if (fuzz_path_is(req, "/big")) {
        static char big[FUZZ_BIG_BODY];
        memset(big, 'b', sizeof(big));
        net_respond(c, 200, "application/octet-stream", NULL, big, sizeof(big));
        return;
    }
    if (fuzz_path_is(req, "/404")) {
        net_respond(c, 404, "text/plain", NULL, "Not Found\n", 10);
        return;
    }

    /* Default: echo what was understood. */
    char ip[64], sid[16], out[FUZZ_MAX_BODY + 256];
    net_conn_client_ip(c, req, ip, sizeof(ip));
    FUZZ_CHECK(strlen(ip) < sizeof(ip));
    int n = net_query_get(req->query, "sid", sid, sizeof(sid));
    FUZZ_CHECK(n == ERR_NOTFOUND || n == ERR_TOOLONG || (n >= 0 && n < (int)sizeof(sid)));
    if (n >= 0)
        FUZZ_CHECK(strlen(sid) <= (size_t)n);
    int len = snprintf(out, sizeof(out), "%s %s ip=%s sid=%s\n", req->method_name,
                       req->url[0] ? "url" : "-", ip, n >= 0 ? sid : "");
    FUZZ_CHECK(len > 0 && (size_t)len < sizeof(out) - FUZZ_MAX_BODY);
    if (req->body.len)
        memcpy(out + len, req->body.data, req->body.len);
    net_respond(c, 200, req->content_type ? "text/plain" : NULL,
                req->origin ? "Vary: Origin\r\n" : NULL, out, (size_t)len + req->body.len);
}

static const net_handler fuzz_handler = {.on_request = fuzz_on_request};

static void fuzz_shutdown(void)
{
    if (fuzz_srv == NULL)
        return;
    turn_disarm(&fuzz_turn_hooks, &fuzz_poll_hook);
    net_server_close(fuzz_srv, 0, NULL, NULL);
    fuzz_srv = NULL;
    uv_run(fuzz_loop, UV_RUN_DEFAULT);
    turn_close(&fuzz_turn_hooks);
    uv_run(fuzz_loop, UV_RUN_DEFAULT);
    rbuf_unref(fuzz_shared);
    fuzz_shared = NULL;
    FUZZ_CHECK(uv_loop_close(fuzz_loop) == 0);
}

static void fuzz_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_ERROR);
    fuzz_loop = uv_default_loop();
    net_config cfg = {
        .host = "127.0.0.1",
        .port = 0,
        .max_header_bytes = FUZZ_MAX_HEADER,
        .max_body_bytes = FUZZ_MAX_BODY,
        .max_output_bytes = FUZZ_MAX_OUTPUT,
        .max_connections = 16,
        .max_per_ip = 4,
        .http_timeout_ms = 10000,
        .trusted_proxies = fuzz_trusted,
        .trusted_count = 1,
    };
    FUZZ_CHECK(turn_init(fuzz_loop, &fuzz_turn_hooks) == 0);
    turn_hook_init(&fuzz_poll_hook, TURN_EIO, fuzz_flush_hook, NULL);
    FUZZ_CHECK(net_server_start(&fuzz_turn_hooks, &cfg, &fuzz_handler, &fuzz_srv, &fuzz_srv) ==
               0);
    static const char body[] = "4{\"shared\":\"body\"}";
    fuzz_shared = rbuf_from(body, sizeof(body) - 1);
    atexit(fuzz_shutdown);
}

/* ---- the client side ------------------------------------------------------ */

/* Reads and discards what the server sent; returns the bytes read (0 when
 * nothing was there or the server has closed). */
static size_t fuzz_drain(int fd)
{
    char buf[16384];
    size_t total = 0;
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r <= 0)
            return total;
        total += (size_t)r;
    }
}

/* One loop turn, then the client reads. */
static size_t fuzz_turn(int fd)
{
    turn_arm(&fuzz_turn_hooks, &fuzz_poll_hook);
    uv_run(fuzz_loop, UV_RUN_NOWAIT);
    return fuzz_drain(fd);
}

static int fuzz_connect(int from_proxy)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    FUZZ_CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    if (from_proxy) {
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
        FUZZ_CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    }
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    a.sin_port = htons((uint16_t)net_server_port(fuzz_srv));
    /* Blocking: on loopback the kernel completes the handshake at once,
     * before the server accepts. */
    FUZZ_CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    FUZZ_CHECK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
    return fd;
}

/* Writes all of data, turning the loop while the socket is full. Returns 0,
 * or -1 once the server has closed its end. */
static int fuzz_send(int fd, const uint8_t *data, size_t n)
{
    int stalls = 0;
    while (n > 0) {
        ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
        if (w > 0) {
            data += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (++stalls > FUZZ_TURNS_CLOSE)
            return -1; /* nobody reads: the close below sorts it out */
        fuzz_turn(fd);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_srv == NULL)
        fuzz_init();
    if (size < 3)
        return 0;
    uint8_t cfg = data[0];
    size_t nchunks = (cfg & 3) ? (cfg & 3) : 1;
    int from_proxy = (cfg >> 2) & 1;
    int early_eof = (cfg >> 3) & 1;
    fuzz_poll_delay = ((cfg >> 4) & 3) == 3 ? -1 : (cfg >> 4) & 3;
    size_t cut1 = data[1], cut2 = data[2];
    data += 3;
    size -= 3;

    size_t cuts[4] = {0, size, size, size};
    if (nchunks >= 2)
        cuts[1] = cut1 * size / 256;
    if (nchunks == 3) {
        cuts[2] = cuts[1] + cut2 * (size - cuts[1]) / 256;
    }

    int fd = fuzz_connect(from_proxy);
    int gone = 0;
    for (size_t i = 0; i < nchunks && !gone; i++) {
        if (fuzz_send(fd, data + cuts[i], cuts[i + 1] - cuts[i]) < 0)
            gone = 1;
        if (!early_eof || i + 1 < nchunks) {
            fuzz_turn(fd);
            fuzz_turn(fd);
        }
    }
    if (!early_eof && !gone) {
        /* Let the server answer (pipelined requests, long-polls). */
        int quiet = 0;
        for (int t = 0; t < FUZZ_TURNS_ANSWER && quiet < FUZZ_TURNS_QUIET; t++) {
            if (fuzz_turn(fd) > 0 || (fuzz_poll != NULL && fuzz_poll_wait >= 0))
                quiet = 0;
            else
                quiet++;
        }
    }
    shutdown(fd, SHUT_WR);

    /* The server must notice the EOF, finish and free the connection. */
    int t = 0;
    while (net_server_conn_count(fuzz_srv) > 0 && t++ < FUZZ_TURNS_CLOSE)
        fuzz_turn(fd);
    if (net_server_conn_count(fuzz_srv) > 0) {
        close(fd); /* maybe it waits for us to read: reset */
        fd = -1;
        for (t = 0; net_server_conn_count(fuzz_srv) > 0 && t < FUZZ_TURNS_CLOSE; t++)
            uv_run(fuzz_loop, UV_RUN_NOWAIT);
    }
    FUZZ_CHECK(net_server_conn_count(fuzz_srv) == 0);
    FUZZ_CHECK(fuzz_poll == NULL);
    if (fd >= 0)
        close(fd);
    return 0;
}
