/* main.c - parley: wiring of the layers, GET /metrics, signals.
 *
 * The configuration comes from config.h. The wiring is the data flow of
 * docs/ARCHITECTURE.md: net -> eio -> sio -> chat -> (store, bus). The
 * mode picks the store and the bus: embedded (SQLite, the local bus) or
 * cluster (--redis: the Redis store and the Redis bus). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "bus/bus.h"
#include "chat/chat.h"
#include "chat/resume_token.h"
#include "net/net.h"
#include "net/net_static.h"
#include "redis/rc.h"
#include "sio/sio.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/turn.h"
#include "webhook/webhook.h"

#include "admin.h"
#include "config.h"

#define PARLEY_SHUTDOWN_GRACE_MS 3000

/* ---- the running server ---------------------------------------------------- */

typedef struct {
    uv_loop_t *loop;
    turn_t turn;            /* the end-of-turn hooks: store, bus, eio, net */
    net_server *net;
    net_static *files;
    sio_server *sio;
    chat_server *chat;
    store_t *store;
    bus_t *bus;
    rc_cluster *rc;          /* cluster mode: the store's Redis client */
    api_server *api;         /* the Server API (off without --api-key) */
    webhook_t *webhook;      /* NULL without --webhook-url */
    uv_signal_t sigint, sigterm;
    uv_timer_t lag_timer;   /* measures event-loop lag */
    uint64_t lag_expected;  /* uv_hrtime when the timer should fire */
    metrics_hist lag;
} parley_server;

#define PARLEY_LAG_PERIOD_MS 250

/* The loop is late by however long the timer fired after its due time. */
static void parley_on_lag_timer(uv_timer_t *t)
{
    parley_server *ps = t->data;
    uint64_t now = uv_hrtime();
    double late_us = now > ps->lag_expected ? (double)(now - ps->lag_expected) / 1e3 : 0;
    metrics_hist_observe(&ps->lag, late_us);
    ps->lag_expected = now + (uint64_t)PARLEY_LAG_PERIOD_MS * 1000000;
}

static double parley_rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

/* GET /metrics: Prometheus text from each layer's stats. */
static void parley_metrics(parley_server *ps, net_conn *c)
{
    buf_t b = {0};
    net_stats ns;
    eio_stats es;
    sio_stats ss;
    net_server_stats(ps->net, &ns);
    eio_server_stats(sio_server_eio(ps->sio), &es);
    sio_server_stats(ps->sio, &ss);

    metrics_header(&b, "parley_connections", "gauge", "Engine.IO sessions open, by transport.");
    metrics_sample(&b, "parley_connections", "transport=\"websocket\"", (double)es.open_websocket);
    metrics_sample(&b, "parley_connections", "transport=\"polling\"", (double)es.open_polling);
    const struct { const char *name, *type, *help; double v; } rows[] = {
        {"parley_handshakes_total", "counter", "Engine.IO sessions opened.", (double)es.handshakes},
        {"parley_upgrades_total", "counter", "Polling sessions upgraded to WebSocket.", (double)es.upgrades},
        {"parley_handshakes_refused_total", "counter", "Handshakes refused by --handshake-rate (429).",
         (double)es.handshakes_refused},
        {"parley_ping_timeouts_total", "counter", "Sessions closed for a missing pong.", (double)es.ping_timeouts},
        {"parley_tcp_open", "gauge", "TCP connections open.", (double)ns.open},
        {"parley_tcp_accepted_total", "counter", "TCP connections accepted.", (double)ns.accepted},
        {"parley_tcp_refused_total", "counter", "Connections refused by --max-connections or --max-per-ip.", (double)ns.refused},
        {"parley_slow_consumer_disconnects_total", "counter", "Connections cut off by --max-output.", (double)ns.slow_consumers},
        {"parley_http_timeouts_total", "counter", "HTTP connections closed by --http-timeout.", (double)ns.http_timeouts},
        {"parley_sockets", "gauge", "Socket.IO sockets connected.", (double)ss.connected},
        {"parley_packets_in_total", "counter", "Socket.IO packets received.", (double)ss.packets_in},
        {"parley_events_out_total", "counter", "Socket.IO events emitted to one socket.", (double)ss.events_out},
        {"parley_broadcasts_total", "counter", "Broadcasts encoded (once each).", (double)ss.broadcasts},
        {"parley_broadcast_recipients_total", "counter", "Deliveries of broadcasts.", (double)ss.recipients},
        {"parley_recovered_total", "counter", "Sockets restored by connection state recovery.", (double)ss.recovered},
        {"parley_recovery_kept", "gauge", "Sockets kept for recovery now.", (double)ss.kept},
        {"parley_recovery_log_packets", "gauge", "Packets held for recovery now.", (double)ss.replay_log},
        {"process_resident_memory_bytes", "gauge", "Resident memory.", parley_rss_bytes()},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        metrics_header(&b, rows[i].name, rows[i].type, rows[i].help);
        metrics_sample(&b, rows[i].name, NULL, rows[i].v);
    }
    if (ps->chat)
        chat_server_metrics(ps->chat, &b);
    if (ps->bus)
        bus_metrics(ps->bus, &b);
    if (ps->rc)
        rc_metrics(ps->rc, &b);
    if (ps->api)
        api_metrics(ps->api, &b);
    if (ps->webhook)
        webhook_metrics(ps->webhook, &b);
    metrics_header(&b, "parley_event_loop_lag_seconds", "histogram",
                   "How late a periodic timer fires: time the loop was busy.");
    metrics_histogram(&b, "parley_event_loop_lag_seconds", NULL, &ps->lag);
    net_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", "Cache-Control: no-store\r\n",
                b.data, b.len);
    buf_free(&b);
}

static int parley_prefix(const net_request *req, const char *prefix)
{
    size_t n = strlen(prefix);
    return req->path_len >= n && strncmp(req->url, prefix, n) == 0;
}

static void parley_on_request(void *ud, net_conn *c, net_request *req)
{
    parley_server *ps = ud;
    if (parley_prefix(req, "/socket.io/")) {
        eio_handle_request(sio_server_eio(ps->sio), c, req);
    } else if (parley_prefix(req, "/api/") || (req->path_len == 4 && strncmp(req->url, "/api", 4) == 0)) {
        api_handle_request(ps->api, c, req);
    } else if (req->path_len == 8 && strncmp(req->url, "/healthz", 8) == 0) {
        net_respond(c, 200, "text/plain", "Cache-Control: no-store\r\n", "ok\n", 3);
    } else if (req->path_len == 8 && strncmp(req->url, "/metrics", 8) == 0) {
        parley_metrics(ps, c);
    } else {
        net_static_serve(ps->files, c, req);
    }
}

static const net_handler parley_handler = {.on_request = parley_on_request};

/* SIGTERM/SIGINT: stop accepting at once; the rest of the shutdown runs
 * once the loop has returned (see main). */
static void parley_on_signal(uv_signal_t *h, int signum)
{
    parley_server *ps = h->data;
    log_info("shutting down", "signal=%d", signum);
    net_server_stop_accepting(ps->net);
    uv_stop(h->loop);
}

/* Warnings about how the configuration exposes the token secret. */
static void parley_check_secret(const parley_config *cfg)
{
    if (!cfg->auth_secret[0])
        return;
    if (strlen(cfg->auth_secret) < PARLEY_MIN_SECRET)
        log_warn("auth-secret is short", "bytes=%zu advice=\"use at least %d random bytes\"",
                 strlen(cfg->auth_secret), PARLEY_MIN_SECRET);
    if (cfg->secret_src == SRC_FLAG)
        log_warn("auth-secret given as a flag",
                 "advice=\"other local users can read command lines; use PARLEY_AUTH_SECRET or the config file\"");
    if (cfg->secret_src == SRC_FILE && cfg->file_world_readable)
        log_warn("config file with auth-secret is world-readable", "file=%s", cfg->config_file);
}

/* The same warnings for the Server API's keys and the webhook secret. */
static void parley_check_api_secrets(const parley_config *cfg)
{
    if (cfg->api_keys.n && cfg->api_keys.src == SRC_FLAG)
        log_warn("api-key given as a flag",
                 "advice=\"other local users can read command lines; use PARLEY_API_KEY or the config file\"");
    if (cfg->webhook_secret[0] && cfg->webhook_secret_src == SRC_FLAG)
        log_warn("webhook-secret given as a flag",
                 "advice=\"other local users can read command lines; use PARLEY_WEBHOOK_SECRET or the config file\"");
    if (cfg->file_world_readable &&
        (cfg->api_keys.src == SRC_FILE || cfg->webhook_secret_src == SRC_FILE))
        log_warn("config file with API keys or the webhook secret is world-readable", "file=%s",
                 cfg->config_file);
}

/* The webhook sender and the Server API. Returns 0, or -1 (logged). */
static int parley_open_api(parley_server *ps, const parley_config *cfg)
{
    if (cfg->webhook_url[0]) {
        webhook_config wcfg = {
            .url = cfg->webhook_url,
            .secret = cfg->webhook_secret,
            .max_queue = (size_t)cfg->webhook_queue,
            .timeout_ms = (uint32_t)cfg->webhook_timeout,
            .retry_min_ms = (uint32_t)cfg->webhook_retry_min,
            .retry_max_ms = (uint32_t)cfg->webhook_retry_max,
        };
        int r = webhook_new(ps->loop, &wcfg, &ps->webhook);
        if (r != 0) {
            log_error("cannot start the webhook sender", "error=%s", err_str(r));
            return -1;
        }
    }
    api_config acfg = {
        .keys = cfg->api_keys.items,
        .nkeys = cfg->api_keys.n,
        .rate = cfg->api_rate,
        .burst = (uint32_t)cfg->api_burst,
        .test_hooks = cfg->test_hooks != 0,
        .webhook = ps->webhook,
    };
    if (api_new(ps->loop, &acfg, &ps->api) != 0) {
        log_error("invalid Server API configuration", "%s", "");
        return -1;
    }
    return 0;
}

/* The resume tokens' key: the store's shared secret "resume-token", the
 * same on every backend and across restarts, read before any client
 * connects. */
typedef struct {
    int done, rc;
    uint8_t key[RESUME_TOKEN_KEY_LEN];
} parley_token_key;

static void parley_on_token_key(void *ud, int rc, const uint8_t *bytes, size_t len)
{
    parley_token_key *k = ud;
    k->done = 1;
    k->rc = rc == 0 && len != sizeof(k->key) ? STORE_EIO : rc;
    if (k->rc == 0)
        memcpy(k->key, bytes, len);
}

/* Returns 0, or an err.h code (logged): no server without its key. */
static int parley_fetch_token_key(parley_server *ps, parley_token_key *k)
{
    store_secret_get(ps->store, "resume-token", sizeof(k->key), parley_on_token_key, k);
    while (!k->done)
        uv_run(ps->loop, UV_RUN_ONCE);
    if (k->rc != 0)
        log_error("cannot read the resume-token key from the store", "error=%s",
                  err_str(k->rc));
    return k->rc;
}

/* Every client is gone: what still runs is the store's and the bus's, whose
 * Redis connections never run out of work; stop there and close them. */
static void parley_on_net_closed(void *loop)
{
    uv_stop(loop);
}

/* The cluster's shared recovery key, read before any client connects. */
typedef struct {
    int done;
    uint8_t key[32];
    size_t len; /* 0: none (recovery stays per node) */
} parley_key;

static void parley_on_key(void *ud, int rc, const char *data, size_t len)
{
    parley_key *k = ud;
    k->done = 1;
    if (rc == 0 && len > 0) {
        k->len = len < sizeof(k->key) ? len : sizeof(k->key);
        memcpy(k->key, data, k->len);
    }
}

static void parley_on_key_late(uv_timer_t *t)
{
    ((parley_key *)t->data)->done = 1;
}

/* Runs the loop until the bus gives the key (its commands are bounded by
 * --redis-timeout; the timer is a backstop). */
static void parley_fetch_key(parley_server *ps, uint32_t timeout_ms, parley_key *k)
{
    uv_timer_t late;
    uv_timer_init(ps->loop, &late);
    late.data = k;
    uv_timer_start(&late, parley_on_key_late, (uint64_t)timeout_ms + 1000, 0);
    bus_shared_key(ps->bus, parley_on_key, k);
    while (!k->done)
        uv_run(ps->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&late, NULL);
    uv_run(ps->loop, UV_RUN_NOWAIT); /* its close completes: it lives on this stack */
    if (k->len == 0)
        log_warn("no shared recovery key from Redis",
                 "effect=\"connection state recovery works on each node, not across nodes\"");
}

/* The store and the bus of the configured mode. Returns 0, or -1 (logged). */
static int parley_open_state(parley_server *ps, const parley_config *cfg)
{
    int r;
    if (cfg->redis[0] == '\0') {
        r = store_sqlite_open(&ps->turn, cfg->data_dir, &ps->store);
        if (r != 0) {
            log_error("cannot open the store", "dir=%s error=%d", cfg->data_dir, r);
            return -1;
        }
        ps->bus = bus_local_new();
        return 0;
    }
    rc_config rcfg = {.timeout_ms = (uint32_t)cfg->redis_timeout};
    if (rc_create(ps->loop, cfg->redis, &rcfg, &ps->rc) != 0 ||
        bus_redis_new(&ps->turn, cfg->redis, (uint32_t)cfg->redis_timeout,
                      (uint32_t)cfg->recovery_window, NULL, &ps->bus) != 0) {
        log_error("invalid --redis seed list", "redis=\"%s\"", cfg->redis);
        return -1;
    }
    r = store_redis_open_rc(&ps->turn, ps->rc, (uint32_t)cfg->redis_maxlen,
                            (uint32_t)cfg->redis_wait_replicas, &ps->store);
    if (r != 0) {
        log_error("cannot open the store", "redis=\"%s\" error=%d", cfg->redis, r);
        return -1;
    }
    return 0;
}

/* --port-file: writes "PORT\n" to path through a temporary file in the same
 * directory renamed over it, so a reader sees either no file or the whole
 * number, never a part. Returns 0, or ERR_IO (logged; the temporary file is
 * removed). */
static int parley_write_port_file(const char *path, int port)
{
    char tmp[4096], text[16];
    int fd = -1, rc = ERR_IO, created = 0;
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    int len = snprintf(text, sizeof(text), "%d\n", port);
    if (n < 0 || (size_t)n >= sizeof(tmp) || len < 0 || (size_t)len >= sizeof(text)) {
        errno = ENAMETOOLONG;
        goto cleanup;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto cleanup;
    created = 1;
    if (write(fd, text, (size_t)len) != (ssize_t)len)
        goto cleanup;
    if (close(fd) != 0) {
        fd = -1;
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    if (rc != 0) {
        log_error("cannot write the port file", "file=\"%s\" error=\"%s\"", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        if (created)
            unlink(tmp);
    }
    return rc;
}

/* Says that the server is ready: the --port-file (written once SIGTERM is
 * handled, since whoever reads the port may stop the server at once), then
 * the "listening" log line. Returns 0, or ERR_IO when the port file could
 * not be written (logged). */
static int parley_announce(const parley_server *ps, const parley_config *cfg)
{
    int port = net_server_port(ps->net);
    if (cfg->port_file[0] && parley_write_port_file(cfg->port_file, port) != 0)
        return ERR_IO;
    log_info("listening", "version=%s host=%s port=%d mode=%s store=%s node=%s static=%s",
             PARLEY_VERSION, cfg->host, port, cfg->auth_secret[0] ? "token" : "anonymous",
             cfg->redis[0] ? cfg->redis : cfg->data_dir, bus_node_id(ps->bus),
             ps->files ? cfg->static_dir : "-");
    return 0;
}

/* The signal handlers and the loop-lag timer (closed at the end of
 * parley_run). */
static void parley_start_handles(parley_server *ps)
{
    uv_signal_init(ps->loop, &ps->sigint);
    uv_signal_init(ps->loop, &ps->sigterm);
    ps->sigint.data = ps->sigterm.data = ps;
    uv_timer_init(ps->loop, &ps->lag_timer);
    ps->lag_timer.data = ps;
    ps->lag_expected = uv_hrtime() + (uint64_t)PARLEY_LAG_PERIOD_MS * 1000000;
    uv_timer_start(&ps->lag_timer, parley_on_lag_timer, PARLEY_LAG_PERIOD_MS, PARLEY_LAG_PERIOD_MS);
    uv_signal_start(&ps->sigint, parley_on_signal, SIGINT);
    uv_signal_start(&ps->sigterm, parley_on_signal, SIGTERM);
}

/* Runs the server with a valid configuration until SIGTERM or SIGINT.
 * Returns the exit status. */
static int parley_run(const parley_config *cfg)
{
    int r;
    log_level_t level = LOG_INFO;
    log_parse_level(cfg->log_level, &level); /* checked when set */
    log_set_level(level);
    parley_check_secret(cfg);
    parley_check_api_secrets(cfg);
    signal(SIGPIPE, SIG_IGN);

    parley_server ps = {.loop = uv_default_loop()};
    int status = 1;
    if (turn_init(ps.loop, &ps.turn) != 0) {
        log_error("cannot start the event loop's turn hooks", "%s", "");
        return 1;
    }
    if (parley_open_state(&ps, cfg) != 0)
        goto out;
    parley_key key = {0};
    if (bus_clustered(ps.bus))
        parley_fetch_key(&ps, (uint32_t)cfg->redis_timeout, &key);
    parley_token_key tkey = {0};
    if (parley_fetch_token_key(&ps, &tkey) != 0)
        goto out;
    net_config ncfg = {
        .host = cfg->host,
        .port = (int)cfg->port,
        .max_header_bytes = (size_t)cfg->max_header,
        .max_body_bytes = (size_t)cfg->max_payload,
        .max_output_bytes = (size_t)cfg->max_output,
        .max_connections = (uint32_t)cfg->max_connections,
        .max_per_ip = (uint32_t)cfg->max_per_ip,
        .http_timeout_ms = (uint32_t)cfg->http_timeout,
        .trusted_proxies = cfg->proxies.items,
        .trusted_count = cfg->proxies.n,
    };
    if (ncfg.max_connections == 0) {
        /* Keep a reserve of descriptors for the store, logs and accept. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 128)
            ncfg.max_connections = (uint32_t)(rl.rlim_cur - 64);
    }
    r = net_server_start(&ps.turn, &ncfg, &parley_handler, &ps, &ps.net);
    if (r != 0) {
        log_error("cannot listen", "host=%s port=%ld error=\"%s\"", cfg->host, cfg->port, uv_strerror(r));
        goto out;
    }
    ps.files = net_static_new(cfg->static_dir);
    eio_config ecfg = {
        .ping_interval_ms = (uint32_t)cfg->ping_interval,
        .ping_timeout_ms = (uint32_t)cfg->ping_timeout,
        .upgrade_timeout_ms = (uint32_t)cfg->upgrade_timeout,
        .max_payload = (size_t)cfg->max_payload,
        .cors_origins = cfg->origins.items,
        .cors_count = cfg->origins.n,
        .handshake_rate = cfg->handshake_rate,
        .handshake_burst = (uint32_t)cfg->handshake_burst,
        .allow_upgrades = 1,
        .max_poll_queue = (size_t)cfg->max_output,
    };
    sio_config scfg = {.connect_timeout_ms = (uint32_t)cfg->connect_timeout,
                       .recovery_window_ms = (uint32_t)cfg->recovery_window,
                       .offset_clock = bus_clustered(ps.bus)};
    ps.sio = sio_server_new(ps.loop, ps.net, &ecfg, &scfg);
    if (key.len)
        sio_server_set_recovery_key(ps.sio, key.key, key.len);
    chat_config ccfg = {
        .max_content = (size_t)cfg->max_content,
        .rate = cfg->rate_limit,
        .burst = (uint32_t)cfg->rate_burst,
        .auth_secret = cfg->auth_secret[0] ? cfg->auth_secret : NULL,
        .recovery_window_ms = (uint32_t)cfg->recovery_window,
        .presence_delay_ms = (uint32_t)cfg->presence_delay,
        .max_rooms = (uint32_t)cfg->max_rooms,
        .max_members = (uint32_t)cfg->max_members,
        .guest_ttl_ms = (int64_t)cfg->guest_ttl,
        .token_key = tkey.key,
    };
    ps.chat = chat_server_new(ps.loop, ps.sio, ps.store, ps.bus, &ccfg);
    if (ps.chat == NULL) {
        log_error("invalid chat configuration", "%s", "");
        goto out;
    }
    if (parley_open_api(&ps, cfg) != 0)
        goto out;
    parley_start_handles(&ps);
    if (parley_announce(&ps, cfg) == 0) {
        uv_run(ps.loop, UV_RUN_DEFAULT);
        status = 0;
    }

    uv_close((uv_handle_t *)&ps.sigint, NULL);
    uv_close((uv_handle_t *)&ps.sigterm, NULL);
    uv_close((uv_handle_t *)&ps.lag_timer, NULL);
out:
    /* Clients get their transport closed (a WebSocket close frame, or the
     * close packet on a pending long-poll), which tells socket.io clients to
     * reconnect, elsewhere when there is an elsewhere. Queued output is
     * written for up to PARLEY_SHUTDOWN_GRACE_MS, then the rest is cut. */
    if (ps.chat)
        chat_server_free(ps.chat);
    api_free(ps.api); /* after the chat layer: no handler is still running */
    webhook_close(ps.webhook); /* queued events are lost (docs/OPERATIONS.md) */
    if (ps.sio)
        sio_server_free(ps.sio);
    net_static_free(ps.files);
    if (ps.net) {
        /* Embedded mode: until the loop is idle, so the store's last
         * batch commits. Cluster mode: until the last client is gone. */
        net_server_close(ps.net, PARLEY_SHUTDOWN_GRACE_MS,
                         ps.bus && bus_clustered(ps.bus) ? parley_on_net_closed : NULL, ps.loop);
        uv_run(ps.loop, UV_RUN_DEFAULT); /* writes, then close callbacks */
    }
    bus_close(ps.bus);
    store_close(ps.store);
    rc_free(ps.rc);
    turn_close(&ps.turn);
    uv_run(ps.loop, UV_RUN_DEFAULT); /* the bus's, rc's and the turn's close callbacks */
    uv_loop_close(ps.loop);
    return status;
}

int main(int argc, char **argv)
{
    if (parley_admin_wanted(argc, argv)) /* `parley admin ...`: admin.c */
        return parley_admin_main(argc, argv);
    parley_config cfg;
    int r = parley_configure(&cfg, argc, argv);
    int status = r > 0 ? 0 : r < 0 ? 2 : parley_run(&cfg);
    parley_config_free(&cfg);
    return status;
}
