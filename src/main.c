/* main.c - parley: flags and environment, wiring of the layers, signals.
 *
 * Every option is one row of parley_options below: its flag, its
 * environment variable (PARLEY_ + the flag in capitals), its default and
 * its help line, so --help, the environment and the parser cannot disagree.
 * The wiring is the data flow of docs/ARCHITECTURE.md: net -> eio -> sio ->
 * chat -> store. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "chat/chat.h"
#include "net/net.h"
#include "net/net_static.h"
#include "sio/sio.h"
#include "store/store.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/metrics.h"

#define PARLEY_VERSION "0.1.0"
#define PARLEY_MAX_ORIGINS 32
#define PARLEY_SHUTDOWN_GRACE_MS 3000

/* The configuration: one place, filled from defaults, environment, flags. */
typedef struct {
    long port;
    const char *host;
    const char *static_dir;
    const char *data_dir;
    long ping_interval, ping_timeout, upgrade_timeout, connect_timeout;
    long max_payload, max_output, max_header;
    const char *origins[PARLEY_MAX_ORIGINS];
    size_t norigins;
    const char *proxies[PARLEY_MAX_ORIGINS];
    size_t nproxies;
    long max_connections, max_per_ip, http_timeout;
    const char *auth_secret;
    double rate_limit;
    long rate_burst, max_content, recovery_window, presence_delay;
    const char *log_level;
} parley_config;

typedef enum { OPT_LONG, OPT_DOUBLE, OPT_STR, OPT_LIST, OPT_PROXIES } opt_kind;

typedef struct {
    const char *flag;   /* without the leading "--" */
    opt_kind kind;
    size_t offset;      /* into parley_config */
    const char *def;    /* default, as text */
    const char *arg;    /* the value's name in --help */
    const char *help;
} parley_option;

#define OFF(f) offsetof(parley_config, f)
static const parley_option parley_options[] = {
    {"port", OPT_LONG, OFF(port), "8080", "N", "TCP port to listen on (0 picks a free one)"},
    {"host", OPT_STR, OFF(host), "0.0.0.0", "ADDR", "address to listen on"},
    {"static", OPT_STR, OFF(static_dir), "web/dist", "DIR", "serve the web UI from DIR"},
    {"data", OPT_STR, OFF(data_dir), "./data", "DIR", "keep the SQLite database in DIR"},
    {"ping-interval", OPT_LONG, OFF(ping_interval), "25000", "MS", "Engine.IO pingInterval"},
    {"ping-timeout", OPT_LONG, OFF(ping_timeout), "20000", "MS", "Engine.IO pingTimeout"},
    {"upgrade-timeout", OPT_LONG, OFF(upgrade_timeout), "10000", "MS",
     "time allowed to complete a polling -> websocket upgrade"},
    {"connect-timeout", OPT_LONG, OFF(connect_timeout), "45000", "MS",
     "close a session that joins no namespace in time"},
    {"max-payload", OPT_LONG, OFF(max_payload), "1000000", "BYTES",
     "largest message or POST body; larger closes that connection"},
    {"max-output", OPT_LONG, OFF(max_output), "4194304", "BYTES",
     "output queued for one connection before it is cut off as too slow"},
    {"max-header", OPT_LONG, OFF(max_header), "16384", "BYTES", "largest request line + headers"},
    {"cors-origin", OPT_LIST, OFF(origins), "", "ORIGIN",
     "allow this cross-origin (repeatable; \"*\" allows any; same-origin always allowed)"},
    {"trusted-proxy", OPT_PROXIES, OFF(proxies), "", "ADDR",
     "a reverse proxy whose X-Forwarded-For is believed (repeatable)"},
    {"max-connections", OPT_LONG, OFF(max_connections), "0", "N",
     "open connections in all (0: the open-files limit minus a reserve)"},
    {"max-per-ip", OPT_LONG, OFF(max_per_ip), "256", "N",
     "open connections from one address (0: no limit; trusted proxies exempt)"},
    {"http-timeout", OPT_LONG, OFF(http_timeout), "15000", "MS",
     "time to send a whole HTTP request, and idle keep-alive time (slowloris guard)"},
    {"auth-secret", OPT_STR, OFF(auth_secret), "", "SECRET",
     "token mode: require an HS256 JWT signed with SECRET (empty: anonymous mode)"},
    {"rate-limit", OPT_DOUBLE, OFF(rate_limit), "20", "N", "client events per second per connection (0: off)"},
    {"rate-burst", OPT_LONG, OFF(rate_burst), "40", "N", "burst of the per-connection rate limit"},
    {"max-content", OPT_LONG, OFF(max_content), "4000", "N", "longest message content, in code points"},
    {"recovery-window", OPT_LONG, OFF(recovery_window), "120000", "MS",
     "how long a lost connection's name is kept for its owner"},
    {"presence-delay", OPT_LONG, OFF(presence_delay), "30", "MS",
     "coalescing window of users:update and rooms:update"},
    {"log-level", OPT_STR, OFF(log_level), "info", "LEVEL", "debug, info, warn or error"},
};
#define NOPTIONS (sizeof(parley_options) / sizeof(parley_options[0]))

static void parley_usage(FILE *out)
{
    fprintf(out,
            "parley %s - a Socket.IO v4 chat server\n\n"
            "usage: parley [options]\n\n"
            "Each option can also be set with the environment variable shown\n"
            "(a flag wins over the environment).\n\n",
            PARLEY_VERSION);
    for (size_t i = 0; i < NOPTIONS; i++) {
        const parley_option *o = &parley_options[i];
        char left[64], env[64];
        snprintf(left, sizeof(left), "--%s %s", o->flag, o->arg);
        snprintf(env, sizeof(env), "PARLEY_%s", o->flag);
        for (char *p = env; *p; p++)
            *p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        fprintf(out, "  %-26s %s\n  %-26s default: %s; env %s\n", left, o->help, "",
                o->def[0] ? o->def : "(none)", env);
    }
    fprintf(out, "  %-26s print the version and exit\n", "--version");
    fprintf(out, "  %-26s print this help and exit\n", "--help");
}

/* Stores one option value; returns 0 or -1 (and says why) when invalid. */
static int parley_set(parley_config *cfg, const parley_option *o, const char *val)
{
    char *end;
    void *field = (char *)cfg + o->offset;
    switch (o->kind) {
    case OPT_LONG: {
        errno = 0;
        long v = strtol(val, &end, 10);
        if (errno || end == val || *end || v < 0) {
            fprintf(stderr, "parley: --%s needs a non-negative integer, not \"%s\"\n", o->flag, val);
            return -1;
        }
        *(long *)field = v;
        return 0;
    }
    case OPT_DOUBLE: {
        double v = strtod(val, &end);
        if (end == val || *end || v < 0) {
            fprintf(stderr, "parley: --%s needs a non-negative number, not \"%s\"\n", o->flag, val);
            return -1;
        }
        *(double *)field = v;
        return 0;
    }
    case OPT_STR:
        *(const char **)field = val;
        return 0;
    case OPT_LIST:
    case OPT_PROXIES: {
        size_t *n = o->kind == OPT_LIST ? &cfg->norigins : &cfg->nproxies;
        const char **list = o->kind == OPT_LIST ? cfg->origins : cfg->proxies;
        if (!val[0])
            return 0;
        if (*n == PARLEY_MAX_ORIGINS) {
            fprintf(stderr, "parley: at most %d --%s\n", PARLEY_MAX_ORIGINS, o->flag);
            return -1;
        }
        list[(*n)++] = val;
        return 0;
    }
    }
    return -1;
}

/* Defaults, then PARLEY_* variables, then flags. Returns 0, 1 when the
 * program should exit successfully (--help, --version), -1 on error. */
static int parley_configure(parley_config *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NOPTIONS; i++) {
        const parley_option *o = &parley_options[i];
        char env[64];
        snprintf(env, sizeof(env), "PARLEY_%s", o->flag);
        for (char *p = env; *p; p++)
            *p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        const char *ev = getenv(env);
        if (parley_set(cfg, o, o->def) != 0 || (ev && parley_set(cfg, o, ev) != 0))
            return -1;
    }
    int origins_from_flags = 0, proxies_from_flags = 0;
    const char *bad = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            parley_usage(stdout);
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            printf("parley %s\n", PARLEY_VERSION);
            return 1;
        }
        bad = a;
        if (strncmp(a, "--", 2) != 0)
            goto unknown;
        const char *name = a + 2, *val = NULL;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const parley_option *o = NULL;
        for (size_t k = 0; k < NOPTIONS; k++)
            if (strlen(parley_options[k].flag) == nlen && strncmp(parley_options[k].flag, name, nlen) == 0)
                o = &parley_options[k];
        if (o == NULL)
            goto unknown;
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            fprintf(stderr, "parley: --%s needs a value\n", o->flag);
            return -1;
        }
        if (o->kind == OPT_LIST && !origins_from_flags) {
            cfg->norigins = 0; /* flags replace the environment's list */
            origins_from_flags = 1;
        }
        if (o->kind == OPT_PROXIES && !proxies_from_flags) {
            cfg->nproxies = 0;
            proxies_from_flags = 1;
        }
        if (parley_set(cfg, o, val) != 0)
            return -1;
    }
    return 0;
unknown:
    fprintf(stderr, "parley: unknown argument \"%s\" (see --help)\n", bad);
    return -1;
}

/* ---- the running server ---------------------------------------------------- */

typedef struct {
    uv_loop_t *loop;
    net_server *net;
    net_static *files;
    sio_server *sio;
    chat_server *chat;
    store_t *store;
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

int main(int argc, char **argv)
{
    parley_config cfg;
    int r = parley_configure(&cfg, argc, argv);
    if (r != 0)
        return r > 0 ? 0 : 2;
    log_level_t level;
    if (log_parse_level(cfg.log_level, &level) != 0) {
        fprintf(stderr, "parley: --log-level must be debug, info, warn or error\n");
        return 2;
    }
    log_set_level(level);
    signal(SIGPIPE, SIG_IGN);

    parley_server ps = {.loop = uv_default_loop()};
    int status = 1;
    r = store_sqlite_open(cfg.data_dir, &ps.store);
    if (r != 0) {
        log_error("cannot open the store", "dir=%s error=%d", cfg.data_dir, r);
        return 1;
    }
    net_config ncfg = {
        .host = cfg.host,
        .port = (int)cfg.port,
        .max_header_bytes = (size_t)cfg.max_header,
        .max_body_bytes = (size_t)cfg.max_payload,
        .max_output_bytes = (size_t)cfg.max_output,
        .max_connections = (uint32_t)cfg.max_connections,
        .max_per_ip = (uint32_t)cfg.max_per_ip,
        .http_timeout_ms = (uint32_t)cfg.http_timeout,
        .trusted_proxies = cfg.proxies,
        .trusted_count = cfg.nproxies,
    };
    if (ncfg.max_connections == 0) {
        /* Keep a reserve of descriptors for the store, logs and accept. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 128)
            ncfg.max_connections = (uint32_t)(rl.rlim_cur - 64);
    }
    r = net_server_start(ps.loop, &ncfg, &parley_handler, &ps, &ps.net);
    if (r != 0) {
        log_error("cannot listen", "host=%s port=%ld error=\"%s\"", cfg.host, cfg.port, uv_strerror(r));
        goto out;
    }
    ps.files = net_static_new(cfg.static_dir);
    eio_config ecfg = {
        .ping_interval_ms = (uint32_t)cfg.ping_interval,
        .ping_timeout_ms = (uint32_t)cfg.ping_timeout,
        .upgrade_timeout_ms = (uint32_t)cfg.upgrade_timeout,
        .max_payload = (size_t)cfg.max_payload,
        .cors_origins = cfg.origins,
        .cors_count = cfg.norigins,
        .allow_upgrades = 1,
    };
    sio_config scfg = {.connect_timeout_ms = (uint32_t)cfg.connect_timeout,
                       .recovery_window_ms = (uint32_t)cfg.recovery_window};
    ps.sio = sio_server_new(ps.loop, ps.net, &ecfg, &scfg);
    chat_config ccfg = {
        .max_content = (size_t)cfg.max_content,
        .rate = cfg.rate_limit,
        .burst = (uint32_t)cfg.rate_burst,
        .auth_secret = cfg.auth_secret[0] ? cfg.auth_secret : NULL,
        .recovery_window_ms = (uint32_t)cfg.recovery_window,
        .presence_delay_ms = (uint32_t)cfg.presence_delay,
    };
    ps.chat = chat_server_new(ps.loop, ps.sio, ps.store, &ccfg);
    if (ps.chat == NULL) {
        log_error("invalid chat configuration", "%s", "");
        goto out;
    }
    uv_signal_init(ps.loop, &ps.sigint);
    uv_signal_init(ps.loop, &ps.sigterm);
    ps.sigint.data = ps.sigterm.data = &ps;
    uv_timer_init(ps.loop, &ps.lag_timer);
    ps.lag_timer.data = &ps;
    ps.lag_expected = uv_hrtime() + (uint64_t)PARLEY_LAG_PERIOD_MS * 1000000;
    uv_timer_start(&ps.lag_timer, parley_on_lag_timer, PARLEY_LAG_PERIOD_MS, PARLEY_LAG_PERIOD_MS);
    uv_signal_start(&ps.sigint, parley_on_signal, SIGINT);
    uv_signal_start(&ps.sigterm, parley_on_signal, SIGTERM);
    log_info("listening", "version=%s host=%s port=%d mode=%s data=%s static=%s", PARLEY_VERSION,
             cfg.host, net_server_port(ps.net), ccfg.auth_secret ? "token" : "anonymous",
             cfg.data_dir, ps.files ? cfg.static_dir : "-");
    uv_run(ps.loop, UV_RUN_DEFAULT);
    status = 0;

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
    if (ps.sio)
        sio_server_free(ps.sio);
    if (ps.net)
        net_server_close(ps.net, PARLEY_SHUTDOWN_GRACE_MS);
    net_static_free(ps.files);
    uv_run(ps.loop, UV_RUN_DEFAULT); /* writes, then close callbacks */
    store_close(ps.store);
    uv_loop_close(ps.loop);
    return status;
}
