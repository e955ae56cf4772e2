/* config.c - the option table and the configuration readers (see
 * config.h): config file, environment, flags, --help and --print-man. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/log.h"
#include "util/mem.h"
#include "util/ratelimit.h"


typedef enum {
    OPT_LONG,   /* 0..max (max 0: LONG_MAX) */
    OPT_DOUBLE, /* finite, >= 0 */
    OPT_STR,
    OPT_LEVEL,  /* a log level name */
    OPT_LIST,   /* parley_list; comma-separated values, repeatable */
    OPT_FILE,   /* --config: flag and environment only */
} opt_kind;

typedef struct {
    const char *flag;   /* without the leading "--"; also the config key */
    opt_kind kind;
    size_t offset;      /* into parley_config */
    const char *def;    /* default, as text */
    const char *arg;    /* the value's name in --help */
    const char *help;
    long max;           /* OPT_LONG: largest value; 0: LONG_MAX */
} parley_option;

/* Options whose flag starts with "test-" are test-only: they work in every
 * spelling but are left out of --help and the man page. */
#define PARLEY_HIDDEN(o) (strncmp((o)->flag, "test-", 5) == 0)

#define OFF(f) offsetof(parley_config, f)
#define U32 4294967295L /* fields the layers take as uint32_t */
static const parley_option parley_options[] = {
    {"config", OPT_FILE, OFF(config_file), "", "FILE",
     "read options from FILE: one \"name = value\" per line, '#' starts a comment line", 0},
    {"port", OPT_LONG, OFF(port), "8080", "N", "TCP port to listen on (0 picks a free one)", 65535},
    {"host", OPT_STR, OFF(host), "0.0.0.0", "ADDR", "address to listen on", 0},
    {"port-file", OPT_STR, OFF(port_file), "", "FILE",
     "once listening, write the bound port (a decimal number and a newline) to FILE, atomically "
     "(a temporary file renamed over it); with --port 0 this is how a script learns the port", 0},
    {"static", OPT_STR, OFF(static_dir), "web/dist", "DIR",
     "serve the web UI from DIR (relative to the working directory)", 0},
    {"data", OPT_STR, OFF(data_dir), "./data", "DIR",
     "keep the SQLite database in DIR (embedded mode, without --redis)", 0},
    {"redis", OPT_STR, OFF(redis), "", "HOST:PORT,...",
     "cluster mode: keep state in the Redis 7 Cluster reachable at these seed nodes and share "
     "messages and presence with the other backends on it (empty: embedded SQLite mode)", 0},
    {"redis-wait-replicas", OPT_LONG, OFF(redis_wait_replicas), "0", "N",
     "cluster mode: acknowledge a message only once N replicas have it too (WAIT; 0: once the "
     "master has it)", 16},
    {"redis-maxlen", OPT_LONG, OFF(redis_maxlen), "10000", "N",
     "cluster mode: messages kept per room or conversation (stream MAXLEN ~)", U32},
    {"redis-timeout", OPT_LONG, OFF(redis_timeout), "2000", "MS",
     "cluster mode: bound of every Redis command, redirections and retries included", U32},
    {"ping-interval", OPT_LONG, OFF(ping_interval), "25000", "MS", "Engine.IO pingInterval", U32},
    {"ping-timeout", OPT_LONG, OFF(ping_timeout), "20000", "MS", "Engine.IO pingTimeout", U32},
    {"upgrade-timeout", OPT_LONG, OFF(upgrade_timeout), "10000", "MS",
     "time allowed to complete a polling -> websocket upgrade", U32},
    {"connect-timeout", OPT_LONG, OFF(connect_timeout), "45000", "MS",
     "close a session that joins no namespace in time", U32},
    {"max-payload", OPT_LONG, OFF(max_payload), "1000000", "BYTES",
     "largest message or POST body; larger closes that connection", U32},
    {"max-output", OPT_LONG, OFF(max_output), "4194304", "BYTES",
     "output queued for one connection (or one polling session between its GETs) before it is cut off as too slow", 0},
    {"max-header", OPT_LONG, OFF(max_header), "16384", "BYTES", "largest request line + headers", U32},
    {"cors-origin", OPT_LIST, OFF(origins), "", "ORIGIN",
     "allow this cross-origin (repeatable or comma-separated; \"*\" allows any; "
     "same-origin always allowed)", 0},
    {"trusted-proxy", OPT_LIST, OFF(proxies), "", "ADDR",
     "a reverse proxy whose X-Forwarded-For is believed (repeatable or comma-separated)", 0},
    {"max-connections", OPT_LONG, OFF(max_connections), "0", "N",
     "open connections in all (0: the open-files limit minus a reserve)", U32},
    {"max-per-ip", OPT_LONG, OFF(max_per_ip), "256", "N",
     "open connections from one address (0: no limit; trusted proxies exempt)", U32},
    {"http-timeout", OPT_LONG, OFF(http_timeout), "15000", "MS",
     "time to send a whole HTTP request, and idle keep-alive time (slowloris guard)", U32},
    {"handshake-rate", OPT_DOUBLE, OFF(handshake_rate), "0", "N",
     "new sessions per second from one client address, over it HTTP 429 (0: no limit)", 0},
    {"handshake-burst", OPT_LONG, OFF(handshake_burst), "10", "N",
     "burst of the per-address handshake rate", U32},
    {"auth-secret", OPT_STR, OFF(auth_secret), "", "SECRET",
     "token mode: require an HS256 JWT signed with SECRET (empty: anonymous mode)", 0},
    {"rate-limit", OPT_DOUBLE, OFF(rate_limit), "20", "N",
     "client events per second per connection (0: off)", 0},
    {"rate-burst", OPT_LONG, OFF(rate_burst), "40", "N", "burst of the per-connection rate limit", U32},
    {"max-content", OPT_LONG, OFF(max_content), "4000", "N", "longest message content, in code points", 0},
    {"max-rooms", OPT_LONG, OFF(max_rooms), "100", "N", "rooms one connection may be in (0: no limit)", U32},
    {"max-members", OPT_LONG, OFF(max_members), "0", "N", "connections in one room (0: no limit)", U32},
    {"recovery-window", OPT_LONG, OFF(recovery_window), "120000", "MS",
     "how long a lost connection's name and rooms are kept for its owner (0: no recovery)", U32},
    {"guest-ttl", OPT_LONG, OFF(guest_ttl), "2592000000", "MS",
     "guest mode: a user's name, token, private conversations and read state expire after it "
     "has had no connection this long (default 30 days)", U32},
    {"presence-delay", OPT_LONG, OFF(presence_delay), "30", "MS",
     "coalescing window of users:update and rooms:update", U32},
    {"api-key", OPT_LIST, OFF(api_keys), "", "KEY",
     "turn the Server API (/api/v1/, docs/API.md) on and accept this Bearer key (repeatable or "
     "comma-separated; prefer PARLEY_API_KEY or the config file: a flag shows in ps)", 0},
    {"api-rate", OPT_DOUBLE, OFF(api_rate), "100", "N",
     "Server API requests per second per key, over it HTTP 429 (0: no limit)", 0},
    {"api-burst", OPT_LONG, OFF(api_burst), "200", "N", "burst of the per-key API rate", U32},
    {"webhook-url", OPT_STR, OFF(webhook_url), "", "URL",
     "POST batches of chat events to URL (needs --webhook-secret; empty: no webhooks)", 0},
    {"webhook-secret", OPT_STR, OFF(webhook_secret), "", "SECRET",
     "key of the webhooks' X-Parley-Signature (HMAC-SHA256); prefer PARLEY_WEBHOOK_SECRET or the "
     "config file", 0},
    {"webhook-queue", OPT_LONG, OFF(webhook_queue), "10000", "N",
     "webhook events held while the receiver is slow or down; beyond, the oldest are dropped", 10000000},
    {"webhook-timeout", OPT_LONG, OFF(webhook_timeout), "5000", "MS",
     "time a webhook POST may take before it is retried", U32},
    {"webhook-retry-min", OPT_LONG, OFF(webhook_retry_min), "1000", "MS",
     "first delay before a failed webhook POST is retried; it doubles at each failure", U32},
    {"webhook-retry-max", OPT_LONG, OFF(webhook_retry_max), "60000", "MS",
     "longest delay between webhook retries", U32},
    {"test-hooks", OPT_LONG, OFF(test_hooks), "0", "0|1",
     "test-only: POST /api/v1/_test/events emits webhook events (tests/integration)", 1},
    {"log-level", OPT_LEVEL, OFF(log_level), "info", "LEVEL", "debug, info, warn or error", 0},
};
#define NOPTIONS (sizeof(parley_options) / sizeof(parley_options[0]))

/* ---- configuration ------------------------------------------------------- */

/* PARLEY_ + the flag in capitals, '-' as '_'. */
static void parley_env_name(const parley_option *o, char *out, size_t size)
{
    snprintf(out, size, "PARLEY_%s", o->flag);
    for (char *p = out; *p; p++)
        *p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
}

static const parley_option *parley_find(const char *name, size_t len)
{
    for (size_t k = 0; k < NOPTIONS; k++)
        if (strlen(parley_options[k].flag) == len && strncmp(parley_options[k].flag, name, len) == 0)
            return &parley_options[k];
    return NULL;
}

/* Keeps a copy of s[0..n) until parley_config_free; returns it. */
static char *parley_keep(parley_config *cfg, const char *s, size_t n)
{
    cfg->owned = mem_realloc(cfg->owned, (cfg->nowned + 1) * sizeof(*cfg->owned));
    return cfg->owned[cfg->nowned++] = mem_strndup(s, n);
}

void parley_config_free(parley_config *cfg)
{
    for (size_t i = 0; i < cfg->nowned; i++)
        mem_free(cfg->owned[i]);
    mem_free(cfg->owned);
    cfg->owned = NULL;
    cfg->nowned = 0;
}

static int parley_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Trims white space at both ends of s[0..*n) in place; returns the start. */
static char *parley_trim(char *s, size_t *n)
{
    while (*n && parley_space(*s))
        s++, (*n)--;
    while (*n && parley_space(s[*n - 1]))
        (*n)--;
    s[*n] = '\0';
    return s;
}

/* Adds the comma-separated values of `val` to a list. A source above the
 * one that filled the list so far replaces it (so the environment's origins
 * replace the file's, and flags replace both); repeating within one source
 * adds. Empty items are skipped, so an empty value from a higher source
 * empties the list. */
static int parley_list_add(parley_config *cfg, const parley_option *o, parley_list *l,
                           const char *val, int src, const char *where)
{
    if (src > l->src) {
        l->n = 0;
        l->src = src;
    }
    char *copy = parley_keep(cfg, val, strlen(val));
    for (char *item = copy; item;) {
        char *comma = strchr(item, ',');
        size_t n = comma ? (size_t)(comma - item) : strlen(item);
        char *next = comma ? comma + 1 : NULL;
        item = parley_trim(item, &n);
        if (n) {
            if (l->n == PARLEY_MAX_LIST) {
                fprintf(stderr, "parley: %s: at most %d values of %s\n", where, PARLEY_MAX_LIST,
                        o->flag);
                return -1;
            }
            l->items[l->n++] = item;
        }
        item = next;
    }
    return 0;
}

/* Stores one option value from source src; `where` names the spelling for
 * errors ("--port", "PARLEY_PORT", "parley.conf:3: port"). val must stay
 * valid as long as cfg (lists copy it). Returns 0, or -1 after saying why. */
static int parley_set(parley_config *cfg, const parley_option *o, const char *val, int src,
                      const char *where)
{
    char *end;
    void *field = (char *)cfg + o->offset;
    switch (o->kind) {
    case OPT_LONG: {
        long max = o->max ? o->max : LONG_MAX;
        errno = 0;
        long v = strtol(val, &end, 10);
        if (errno || end == val || *end || v < 0 || v > max) {
            fprintf(stderr, "parley: %s: needs an integer from 0 to %ld, not \"%s\"\n", where, max,
                    val);
            return -1;
        }
        *(long *)field = v;
        return 0;
    }
    case OPT_DOUBLE: {
        errno = 0;
        double v = strtod(val, &end);
        if (errno || end == val || *end || !(v >= 0) || !isfinite(v)) {
            fprintf(stderr, "parley: %s: needs a non-negative number, not \"%s\"\n", where, val);
            return -1;
        }
        *(double *)field = v;
        return 0;
    }
    case OPT_LEVEL: {
        log_level_t level;
        if (log_parse_level(val, &level) != 0) {
            fprintf(stderr, "parley: %s: must be debug, info, warn or error, not \"%s\"\n", where,
                    val);
            return -1;
        }
        *(const char **)field = val;
        return 0;
    }
    case OPT_STR:
    case OPT_FILE:
        *(const char **)field = val;
        if (o->offset == OFF(auth_secret))
            cfg->secret_src = src;
        if (o->offset == OFF(webhook_secret))
            cfg->webhook_secret_src = src;
        if (o->kind == OPT_FILE)
            cfg->config_src = src;
        return 0;
    case OPT_LIST:
        return parley_list_add(cfg, o, field, val, src, where);
    }
    return -1;
}

/* Reads `path`: one "name = value" per line, names as the flags without
 * dashes; blank lines and lines starting with '#' are skipped. The value is
 * the rest of the line after '=', trimmed (a '#' inside it is part of it).
 * Returns 0, or -1 after printing "path:line: why". */
static int parley_read_file(parley_config *cfg, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "parley: cannot read config file %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0)
        cfg->file_world_readable = (st.st_mode & S_IROTH) != 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned lineno = 0;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *s = line;
        size_t n = (size_t)len;
        if (strlen(line) != n) {
            fprintf(stderr, "parley: %s:%u: NUL byte in line\n", path, lineno);
            rc = -1;
            break;
        }
        if (lineno == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
            s += 3, n -= 3; /* a UTF-8 byte order mark */
        s = parley_trim(s, &n);
        if (n == 0 || s[0] == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            fprintf(stderr, "parley: %s:%u: expected \"name = value\", got \"%s\"\n", path, lineno, s);
            rc = -1;
            break;
        }
        size_t nlen = (size_t)(eq - s), vlen = n - nlen - 1;
        char *name = parley_trim(s, &nlen);
        char *val = parley_trim(eq + 1, &vlen);
        const parley_option *o = parley_find(name, nlen);
        char where[600];
        snprintf(where, sizeof(where), "%s:%u: %s", path, lineno, name);
        if (o == NULL) {
            fprintf(stderr, "parley: %s: unknown option (see --help for the names)\n", where);
            rc = -1;
        } else if (o->kind == OPT_FILE) {
            fprintf(stderr, "parley: %s: cannot be set in a config file\n", where);
            rc = -1;
        } else {
            rc = parley_set(cfg, o, parley_keep(cfg, val, vlen), SRC_FILE, where);
        }
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "parley: cannot read config file %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    free(line); /* getline's buffer */
    fclose(f);
    return rc;
}

static void parley_usage(FILE *out);
static void parley_man(FILE *out);

/* One walk over the flags. Pass 0 only checks their shape, answers --help,
 * --version and --print-man (returns 1) and notes --config; pass 1 applies
 * them. Returns 0, 1, or -1 after saying why. */
static int parley_flags(parley_config *cfg, int argc, char **argv, int pass)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (pass == 0) {
            if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                parley_usage(stdout);
                return 1;
            }
            if (strcmp(a, "--version") == 0) {
                printf("parley %s\n", PARLEY_VERSION);
                return 1;
            }
            if (strcmp(a, "--print-man") == 0) {
                parley_man(stdout);
                return 1;
            }
        }
        const parley_option *o = NULL;
        const char *eq = NULL;
        if (strncmp(a, "--", 2) == 0) {
            eq = strchr(a + 2, '=');
            o = parley_find(a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
        }
        if (o == NULL) {
            fprintf(stderr, "parley: unknown argument \"%s\" (see --help)\n", a);
            return -1;
        }
        const char *val;
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            fprintf(stderr, "parley: --%s needs a value\n", o->flag);
            return -1;
        }
        char where[64];
        snprintf(where, sizeof(where), "--%s", o->flag);
        if ((pass == 0) == (o->kind == OPT_FILE) && parley_set(cfg, o, val, SRC_FLAG, where) != 0)
            return -1;
    }
    return 0;
}

/* Checks that span options; returns 0 or -1 after saying why. */
static int parley_validate(const parley_config *cfg)
{
    static const struct { const char *rate, *burst; size_t r, b; } buckets[] = {
        {"rate-limit", "rate-burst", OFF(rate_limit), OFF(rate_burst)},
        {"handshake-rate", "handshake-burst", OFF(handshake_rate), OFF(handshake_burst)},
        {"api-rate", "api-burst", OFF(api_rate), OFF(api_burst)},
    };
    for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
        ratelimit_config_t rl;
        double rate = *(const double *)((const char *)cfg + buckets[i].r);
        long burst = *(const long *)((const char *)cfg + buckets[i].b);
        if (ratelimit_config_init(&rl, rate, (uint32_t)burst) != 0) {
            fprintf(stderr,
                    "parley: %s %g with %s %ld: the rate must be 0 (off) or 0.001..%g per second "
                    "and the burst 1..%u\n",
                    buckets[i].rate, rate, buckets[i].burst, burst, RATELIMIT_MAX_RATE,
                    RATELIMIT_MAX_BURST);
            return -1;
        }
    }
    if (cfg->webhook_url[0] && strncmp(cfg->webhook_url, "http://", 7) != 0 &&
        strncmp(cfg->webhook_url, "https://", 8) != 0) {
        fprintf(stderr, "parley: webhook-url must start with http:// or https://, not \"%s\"\n",
                cfg->webhook_url);
        return -1;
    }
    if (cfg->webhook_url[0] && !cfg->webhook_secret[0]) {
        fprintf(stderr, "parley: webhook-url needs webhook-secret (the receiver checks the signature)\n");
        return -1;
    }
    if (cfg->webhook_url[0] && cfg->webhook_queue < 1) {
        fprintf(stderr, "parley: webhook-queue must be at least 1\n");
        return -1;
    }
    for (size_t i = 0; i < cfg->api_keys.n; i++) {
        if (strlen(cfg->api_keys.items[i]) < 16) {
            fprintf(stderr, "parley: api-key: a key needs at least 16 characters (key %zu is shorter)\n",
                    i + 1);
            return -1;
        }
    }
    return 0;
}

int parley_configure(parley_config *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NOPTIONS; i++)
        if (parley_set(cfg, &parley_options[i], parley_options[i].def, SRC_DEFAULT, "default") != 0)
            return -1;
    int r = parley_flags(cfg, argc, argv, 0);
    if (r != 0)
        return r;
    if (cfg->config_src != SRC_FLAG) { /* --config "" reads no file, whatever PARLEY_CONFIG says */
        const char *ev = getenv("PARLEY_CONFIG");
        cfg->config_file = ev ? ev : "";
    }
    if (cfg->config_file[0] && parley_read_file(cfg, cfg->config_file) != 0)
        return -1;
    for (size_t i = 0; i < NOPTIONS; i++) {
        const parley_option *o = &parley_options[i];
        char env[64];
        parley_env_name(o, env, sizeof(env));
        const char *ev = getenv(env);
        if (o->kind != OPT_FILE && ev && parley_set(cfg, o, ev, SRC_ENV, env) != 0)
            return -1;
    }
    r = parley_flags(cfg, argc, argv, 1);
    return r != 0 ? r : parley_validate(cfg);
}

/* ---- --help and --print-man ---------------------------------------------- */

static void parley_usage(FILE *out)
{
    fprintf(out,
            "parley %s - a Socket.IO v4 chat server\n\n"
            "usage: parley [--config FILE] [options]\n"
            "       parley admin set-owner ROOM USER [options]   (make USER the owner\n"
            "       of ROOM in the store the options name, then exit)\n\n"
            "Every option has three spellings: a flag (--max-content 500), an\n"
            "environment variable (PARLEY_MAX_CONTENT=500) and a config file key\n"
            "(max-content = 500, one \"name = value\" per line; '#' starts a comment\n"
            "line). Precedence: defaults < config file < environment < flags. A list\n"
            "option (cors-origin, trusted-proxy, api-key) takes several values,\n"
            "repeated or comma-separated; a source replaces the list of the\n"
            "sources before it.\n\n",
            PARLEY_VERSION);
    for (size_t i = 0; i < NOPTIONS; i++) {
        const parley_option *o = &parley_options[i];
        char left[64], env[64];
        if (PARLEY_HIDDEN(o))
            continue;
        snprintf(left, sizeof(left), "--%s %s", o->flag, o->arg);
        parley_env_name(o, env, sizeof(env));
        fprintf(out, "  %-26s %s\n", left, o->help);
        if (o->kind == OPT_FILE)
            fprintf(out, "  %-26s env %s (not in a config file)\n", "", env);
        else
            fprintf(out, "  %-26s default: %s; env %s; config: %s = %s\n", "",
                    o->def[0] ? o->def : "(none)", env, o->flag, o->arg);
    }
    fprintf(out, "  %-26s print the version and exit\n", "--version");
    fprintf(out, "  %-26s print the manual page (roff) and exit\n", "--print-man");
    fprintf(out, "  %-26s print this help and exit\n", "--help");
}

/* Writes s as roff text: backslashes and hyphens escaped. At the start of a
 * line the caller writes "\\&" first, so a leading '.' or '\'' is text. */
static void parley_roff(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-')
            fputs("\\-", out);
        else
            fputc(*s, out);
    }
}

/* The man page's head: NAME, SYNOPSIS, DESCRIPTION, and the OPTIONS title. */
static void parley_man_head(FILE *out)
{
    fprintf(out,
            ".TH PARLEY 1 \"\" \"parley %s\" \"Parley manual\"\n"
            ".SH NAME\n"
            "parley \\- real\\-time chat server speaking Socket.IO v4\n"
            ".SH SYNOPSIS\n"
            ".B parley\n"
            "[\\fB\\-\\-config\\fR \\fIFILE\\fR] [\\fIoptions\\fR]\n"
            ".br\n"
            ".B parley\n"
            "\\fB\\-\\-help\\fR | \\fB\\-\\-version\\fR | \\fB\\-\\-print\\-man\\fR\n"
            ".SH DESCRIPTION\n"
            "\\fBparley\\fR is a chat server. It speaks the public Socket.IO v4 protocol\n"
            "(Engine.IO 4 over HTTP long\\-polling and WebSocket, Socket.IO 5) on\n"
            "\\fI/socket.io/\\fR, so stock Socket.IO clients work unchanged, and runs the\n"
            "chat events of its protocol (users, rooms, room and private messages,\n"
            "history, typing, presence) on top. It also serves \\fI/healthz\\fR\n"
            "(200 while running), \\fI/metrics\\fR (Prometheus text), the Server API\n"
            "under \\fI/api/v1/\\fR when \\fB\\-\\-api\\-key\\fR is set, and the web UI\n"
            "from the \\fB\\-\\-static\\fR directory. State lives in one SQLite file in\n"
            "the \\fB\\-\\-data\\fR directory. It runs in the foreground, logs in logfmt\n"
            "on standard error and does not fork.\n"
            ".PP\n"
            "Every option has three spellings: a flag (\\fB\\-\\-max\\-content 500\\fR),\n"
            "an environment variable (\\fBPARLEY_MAX_CONTENT=500\\fR) and a key of the\n"
            "configuration file (\\fBmax\\-content = 500\\fR). Sources apply in the order\n"
            "defaults, configuration file, environment, flags: a later one wins. The\n"
            "list options \\fB\\-\\-cors\\-origin\\fR, \\fB\\-\\-trusted\\-proxy\\fR and \\fB\\-\\-api\\-key\\fR take\n"
            "several values, repeated or separated by commas, in every spelling; each\n"
            "source replaces the list of the sources before it.\n"
            ".SH OPTIONS\n",
            PARLEY_VERSION);
}

/* One .TP entry per row of the option table, then the flags outside it. */
static void parley_man_options(FILE *out)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const parley_option *o = &parley_options[i];
        char env[64];
        if (PARLEY_HIDDEN(o))
            continue;
        parley_env_name(o, env, sizeof(env));
        fputs(".TP\n\\fB", out);
        parley_roff(out, "--");
        parley_roff(out, o->flag);
        fprintf(out, "\\fR \\fI%s\\fR\n\\&", o->arg);
        parley_roff(out, o->help);
        fputs(".\n.br\n", out);
        if (o->kind == OPT_FILE) {
            fprintf(out, "Environment: \\fB%s\\fR. Not a configuration file key.\n", env);
            continue;
        }
        fputs("Default: ", out);
        parley_roff(out, o->def[0] ? o->def : "none");
        fprintf(out, ". Environment: \\fB");
        parley_roff(out, env);
        fputs("\\fR. Configuration file: \\fB", out);
        parley_roff(out, o->flag);
        fprintf(out, " =\\fR \\fI%s\\fR.\n", o->arg);
    }
    fputs(".TP\n\\fB\\-\\-version\\fR\nPrint the version and exit.\n"
          ".TP\n\\fB\\-\\-print\\-man\\fR\nPrint this manual page (roff) and exit.\n"
          ".TP\n\\fB\\-\\-help\\fR, \\fB\\-h\\fR\nPrint the options and exit.\n",
          out);
}

/* CONFIGURATION FILE to SEE ALSO. */
static void parley_man_tail(FILE *out)
{
    fputs(".SH CONFIGURATION FILE\n"
          "The file named by \\fB\\-\\-config\\fR (or \\fBPARLEY_CONFIG\\fR) holds one\n"
          "\\fIname\\fR \\fB=\\fR \\fIvalue\\fR per line, where \\fIname\\fR is a flag\n"
          "without its leading dashes. White space around both is ignored; the value\n"
          "is the rest of the line, so a \\fB#\\fR inside it is part of it. Blank lines\n"
          "and lines whose first non\\-blank character is \\fB#\\fR are skipped. A name\n"
          "given twice keeps the last value, except for list options, whose values\n"
          "add up. An unknown name or a bad value stops \\fBparley\\fR with\n"
          "\\fIfile\\fR:\\fIline\\fR in the message and exit status 2.\n"
          ".PP\n"
          ".RS\n.nf\n"
          "# /etc/parley/parley.conf\n"
          "port = 8080\n"
          "data = /var/lib/parley\n"
          "static = /usr/local/share/parley/web\n"
          "cors\\-origin = https://chat.example.com\n"
          "cors\\-origin = https://www.example.com\n"
          ".fi\n.RE\n"
          ".PP\n"
          "A file holding \\fBauth\\-secret\\fR, \\fBapi\\-key\\fR or \\fBwebhook\\-secret\\fR should be\n"
          "readable by the server's user\n"
          "only; \\fBparley\\fR warns when it is world\\-readable.\n"
          ".SH ENVIRONMENT\n"
          "Each option is read from the variable named under it in OPTIONS:\n"
          "\\fBPARLEY_\\fR followed by the flag in capitals with \\fB_\\fR for\n"
          "\\fB\\-\\fR. \\fBPARLEY_CONFIG\\fR names the configuration file when\n"
          "\\fB\\-\\-config\\fR is not given.\n"
          ".SH FILES\n"
          ".TP\n\\fI/etc/parley/parley.conf\\fR\n"
          "The configuration file the systemd unit \\fIparley.service\\fR passes with\n"
          "\\fB\\-\\-config\\fR.\n"
          ".TP\n\\fIDATA\\fR\\fB/parley.db\\fR\n"
          "The SQLite database (with its \\fB\\-wal\\fR and \\fB\\-shm\\fR files) in the\n"
          "\\fB\\-\\-data\\fR directory.\n"
          ".TP\n\\fIPREFIX\\fR\\fB/share/parley/web\\fR\n"
          "The web UI as \\fBmake install\\fR places it (\\fIPREFIX\\fR is /usr/local\n"
          "by default). The default \\fB\\-\\-static\\fR is \\fIweb/dist\\fR relative to\n"
          "the working directory, so an installed server names this directory.\n"
          ".TP\n\\fIPREFIX\\fR\\fB/share/doc/parley/parley.conf.example\\fR\n"
          "Every option with its default, as a configuration file.\n"
          ".SH SIGNALS\n"
          ".TP\n\\fBSIGTERM\\fR, \\fBSIGINT\\fR\n"
          "Graceful shutdown: stop accepting connections, close every client's\n"
          "transport (a WebSocket close frame, or the close packet on a pending\n"
          "long\\-poll) so that Socket.IO clients reconnect, write output already\n"
          "queued for up to 3 seconds, then exit with status 0.\n"
          ".TP\n\\fBSIGPIPE\\fR\n"
          "Ignored.\n"
          ".SH EXIT STATUS\n"
          ".TP\n\\fB0\\fR\n"
          "After a graceful shutdown, or after \\fB\\-\\-help\\fR, \\fB\\-\\-version\\fR or\n"
          "\\fB\\-\\-print\\-man\\fR.\n"
          ".TP\n\\fB1\\fR\n"
          "The server could not start: the store could not be opened, the address\n"
          "could not be bound, or the chat configuration was refused.\n"
          ".TP\n\\fB2\\fR\n"
          "A usage or configuration error: an unknown option, a bad value, an\n"
          "unreadable or invalid configuration file.\n"
          ".SH SEE ALSO\n"
          ".BR systemd.service (5),\n"
          ".BR systemd.exec (5).\n"
          "In the source tree: \\fIREADME.md\\fR, \\fIdocs/API.md\\fR, \\fIdocs/PROTOCOL.md\\fR (the chat\n"
          "protocol for client authors), \\fIdocs/OPERATIONS.md\\fR,\n"
          "\\fIdocs/SECURITY.md\\fR, \\fIdeploy/parley.service\\fR.\n",
          out);
}

static void parley_man(FILE *out)
{
    parley_man_head(out);
    parley_man_options(out);
    parley_man_tail(out);
}

