/* server.c - the test server the official Engine.IO and Socket.IO protocol
 * suites expect (socketio/engine.io-protocol and socketio/socket.io-protocol,
 * folder test-suite/), built on Parley's own layers. Not part of the
 * production binary.
 *
 *   /engine.io/  Engine.IO only: every message is echoed back.
 *   /socket.io/  Socket.IO: namespaces "/" and "/custom"; on connect emits
 *                "auth" with the handshake's auth; echoes "message" as
 *                "message-back"; answers "message-with-ack" with its args.
 * pingInterval 300 ms, pingTimeout 200 ms, connectTimeout 1000 ms, as the
 * suites require.
 *
 * Parley's own integration tests of the core (tests/integration/core.test.mjs)
 * use three more events, beyond what the suites need:
 *   "join" room            joins the room, acks [true]
 *   "to-room" room, ...a   broadcasts "room-message" ...a to the room, sender excluded
 *   "server-ack" ...a      emits "ask" ...a with an ack; the client's answer
 *                          comes back as the event "answer" with its args
 * and namespace "/async", whose CONNECT is answered later
 * (SIO_CONNECT_PENDING, sio_connect_finish) after auth.delay ms (default
 * 0: on the next loop turn), refused with {"message":"refused"} when
 * auth.refuse is true; otherwise as "/".
 *
 * Usage: conformance-server [--port N] [--ping-interval MS] [--ping-timeout MS]
 *                           [--max-payload BYTES]    (defaults 3000, 300, 200, 1e6)
 *                           [--port-file FILE]       (as parley's: the bound port,
 *                                                     written once listening) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "eio/eio.h"
#include "net/net.h"
#include "sio/sio.h"

typedef struct {
    net_server *net;
    eio_server *echo;
    sio_server *sio;
} conf_server;

/* ---- Engine.IO echo ------------------------------------------------------ */

static void conf_echo_message(void *ud, eio_session *s, uint8_t *data, size_t len, int binary)
{
    eio_msg m;
    eio_msg_init(&m, data, len, binary);
    eio_send(s, &m);
    eio_msg_release(&m);
}

static const eio_handlers conf_echo_handlers = {.on_message = conf_echo_message};

/* ---- Socket.IO ----------------------------------------------------------- */

static json_t *conf_on_connect(void *ud, sio_socket *s, json_t *auth)
{
    sio_socket_set_data(s, auth ? json_incref(auth) : json_object());
    return NULL;
}

/* "/async": one pending CONNECT, finished by its timer. */
typedef struct {
    uv_timer_t timer;
    sio_socket *sock; /* sio's reference until sio_connect_finish */
    int refuse;
} conf_pending;

static void conf_pending_closed(uv_handle_t *h)
{
    free(h->data);
}

static void conf_pending_fire(uv_timer_t *t)
{
    conf_pending *p = t->data;
    sio_socket *s = sio_socket_ref(p->sock); /* ours, to look at it afterwards */
    json_t *err = p->refuse ? json_pack("{s:s}", "message", "refused") : NULL;
    sio_connect_finish(s, err);
    if (!sio_socket_connected(s)) { /* refused, or the client went away */
        json_decref(sio_socket_data(s));
        sio_socket_set_data(s, NULL);
    }
    sio_socket_unref(s);
    uv_close((uv_handle_t *)t, conf_pending_closed);
}

static json_t *conf_on_connect_async(void *ud, sio_socket *s, json_t *auth)
{
    conf_pending *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return json_pack("{s:s}", "message", "out of memory");
    json_int_t delay = json_integer_value(json_object_get(auth, "delay"));
    p->sock = s;
    p->refuse = json_is_true(json_object_get(auth, "refuse"));
    p->timer.data = p;
    sio_socket_set_data(s, auth ? json_incref(auth) : json_object());
    uv_timer_init(uv_default_loop(), &p->timer);
    uv_timer_start(&p->timer, conf_pending_fire, delay > 0 ? (uint64_t)delay : 0, 0);
    return SIO_CONNECT_PENDING;
}

static void conf_on_connection(void *ud, sio_socket *s)
{
    json_t *args = json_pack("[O]", (json_t *)sio_socket_data(s));
    sio_emit(s, "auth", args);
    json_decref(args);
}

static void conf_on_answer(void *ud, sio_socket *s, json_t *args)
{
    json_t *none = json_pack("[s]", "timeout");
    sio_emit(s, "answer", args ? args : none);
    json_decref(none);
}

static void conf_on_event(void *ud, sio_socket *s, const char *event, json_t *args,
                          const sio_bin *bins, unsigned nbins, int64_t ack_id)
{
    const char *room = json_string_value(json_array_get(args, 0));
    if (strcmp(event, "message") == 0) {
        sio_emit_bin(s, "message-back", args, bins, nbins);
    } else if (strcmp(event, "message-with-ack") == 0) {
        sio_ack_bin(s, ack_id, args, bins, nbins);
    } else if (strcmp(event, "join") == 0 && room) {
        sio_join(s, room);
        json_t *ok = json_pack("[b]", 1);
        sio_ack(s, ack_id, ok);
        json_decref(ok);
    } else if (strcmp(event, "to-room") == 0 && room) {
        json_t *rest = json_array();
        for (size_t i = 1; i < json_array_size(args); i++)
            json_array_append(rest, json_array_get(args, i));
        sio_except except = {.socket = s};
        sio_broadcast(sio_socket_nsp(s), &room, 1, &except, "room-message", rest);
        json_decref(rest);
    } else if (strcmp(event, "server-ack") == 0) {
        sio_emit_with_ack(s, "ask", args, 5000, conf_on_answer, NULL);
    }
}

static void conf_on_disconnect(void *ud, sio_socket *s, const char *reason, int recoverable)
{
    json_decref(sio_socket_data(s));
    sio_socket_set_data(s, NULL);
}

static const sio_handlers conf_sio_handlers = {
    .on_connect = conf_on_connect,
    .on_connection = conf_on_connection,
    .on_event = conf_on_event,
    .on_disconnect = conf_on_disconnect,
};

static const sio_handlers conf_async_handlers = {
    .on_connect = conf_on_connect_async,
    .on_connection = conf_on_connection,
    .on_event = conf_on_event,
    .on_disconnect = conf_on_disconnect,
};

/* ---- HTTP routing -------------------------------------------------------- */

static int conf_prefix(const net_request *req, const char *prefix)
{
    size_t n = strlen(prefix);
    return req->path_len >= n && strncmp(req->url, prefix, n) == 0;
}

static void conf_on_request(void *ud, net_conn *c, net_request *req)
{
    conf_server *cs = ud;
    if (conf_prefix(req, "/engine.io/"))
        eio_handle_request(cs->echo, c, req);
    else if (conf_prefix(req, "/socket.io/"))
        eio_handle_request(sio_server_eio(cs->sio), c, req);
    else
        net_respond(c, 404, "text/plain", NULL, "Not Found\n", 10);
}

static const net_handler conf_handler = {.on_request = conf_on_request};

static void conf_on_signal(uv_signal_t *h, int signum)
{
    uv_stop(h->loop);
}

/* --port-file: "PORT\n" written to a temporary file renamed over path.
 * Returns 0 or -1 (said on stderr). */
static int conf_write_port_file(const char *path, int port)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        goto fail;
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        goto fail;
    int w = fprintf(f, "%d\n", port);
    if (fclose(f) != 0 || w < 0 || rename(tmp, path) != 0) {
        remove(tmp);
        goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "conformance-server: cannot write the port file %s\n", path);
    return -1;
}

int main(int argc, char **argv)
{
    int port = 3000;
    const char *port_file = NULL;
    unsigned ping_interval = 300, ping_timeout = 200;
    size_t max_payload = 1000000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--ping-interval") == 0)
            ping_interval = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--ping-timeout") == 0)
            ping_timeout = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--max-payload") == 0)
            max_payload = (size_t)atol(argv[i + 1]);
        else if (strcmp(argv[i], "--port-file") == 0)
            port_file = argv[i + 1];
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    conf_server cs = {0};
    turn_t turn;
    if (turn_init(loop, &turn) != 0)
        return 1;
    net_config ncfg = {.host = "127.0.0.1", .port = port, .max_header_bytes = 16384,
                       .max_body_bytes = max_payload, .max_output_bytes = 64 << 20};
    if (net_server_start(&turn, &ncfg, &conf_handler, &cs, &cs.net) != 0) {
        fprintf(stderr, "conformance-server: cannot listen on %d\n", port);
        return 1;
    }
    static const char *const any[] = {"*"};
    eio_config ecfg = {.ping_interval_ms = ping_interval, .ping_timeout_ms = ping_timeout,
                       .upgrade_timeout_ms = 10000, .max_payload = max_payload,
                       .cors_origins = any, .cors_count = 1, .allow_upgrades = 1};
    sio_config scfg = {.connect_timeout_ms = 1000};
    cs.echo = eio_server_new(loop, cs.net, &ecfg, &conf_echo_handlers, &cs);
    cs.sio = sio_server_new(loop, cs.net, &ecfg, &scfg);
    sio_namespace(cs.sio, "/", &conf_sio_handlers, &cs);
    sio_namespace(cs.sio, "/custom", &conf_sio_handlers, &cs);
    sio_namespace(cs.sio, "/async", &conf_async_handlers, &cs);
    uv_signal_t sigint, sigterm;
    uv_signal_init(loop, &sigint);
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigint, conf_on_signal, SIGINT);
    uv_signal_start(&sigterm, conf_on_signal, SIGTERM);
    /* Once SIGTERM is handled: whoever reads the port may stop us at once. */
    if (port_file && conf_write_port_file(port_file, net_server_port(cs.net)) != 0)
        return 1;
    fprintf(stderr, "conformance-server listening on 127.0.0.1:%d\n", net_server_port(cs.net));
    fflush(stderr);
    uv_run(loop, UV_RUN_DEFAULT);
    eio_server_free(cs.echo);
    sio_server_free(cs.sio);
    net_server_close(cs.net, 1000, NULL, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    turn_close(&turn);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
}
