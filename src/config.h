/* config.h - parley's configuration: the option table, and reading it from
 * defaults, a config file, the environment and flags; --help and
 * --print-man are generated from the same table.
 *
 * Every option is one row of the table in config.c: its flag, its
 * environment variable (PARLEY_ + the flag in capitals), its config file
 * key (the flag without dashes), its default and its help line, so --help,
 * --print-man, the environment, the config file and the parser cannot
 * disagree. Sources apply in the order defaults < config file < environment
 * < flags; a later one overrides an earlier one, and for a list option it
 * replaces the whole list. */
#ifndef PARLEY_CONFIG_H
#define PARLEY_CONFIG_H

#include <stddef.h>

#define PARLEY_VERSION "0.1.0"
#define PARLEY_MAX_LIST 32
/* Shorter HS256 secrets can be brute-forced from any token a client holds
 * (RFC 7518 3.2 asks for at least the hash size). */
#define PARLEY_MIN_SECRET 32

/* Where a value came from, in increasing precedence. */
enum { SRC_DEFAULT = 0, SRC_FILE, SRC_ENV, SRC_FLAG };

/* A repeatable option: the values of the highest source that set it. */
typedef struct {
    const char *items[PARLEY_MAX_LIST];
    size_t n;
    int src;
} parley_list;

/* The configuration: one place, filled from defaults, the config file, the
 * environment and flags. Its strings point at the option table, at argv or
 * environ, or at copies in `owned` (freed by parley_config_free). */
typedef struct {
    const char *config_file;
    long port;
    const char *host;
    const char *port_file; /* "" for none */
    const char *static_dir;
    const char *data_dir;
    const char *redis; /* seed list; "" for the embedded store */
    long redis_wait_replicas, redis_maxlen, redis_timeout;
    long ping_interval, ping_timeout, upgrade_timeout, connect_timeout;
    long max_payload, max_output, max_header;
    parley_list origins, proxies;
    long max_connections, max_per_ip, http_timeout;
    double handshake_rate;
    long handshake_burst;
    const char *auth_secret;
    double rate_limit;
    long rate_burst, max_content, max_rooms, max_members, recovery_window, presence_delay;
    parley_list api_keys;   /* Server API keys; none: the API is off */
    double api_rate;
    long api_burst;
    const char *webhook_url, *webhook_secret;
    long webhook_queue, webhook_timeout, webhook_retry_min, webhook_retry_max;
    long test_hooks;        /* hidden, test-only */
    long guest_ttl;
    const char *log_level;

    int config_src;         /* SRC_FLAG when --config was given */
    int secret_src;         /* source of auth_secret, for the warnings */
    int webhook_secret_src; /* source of webhook_secret, likewise */
    int file_world_readable;
    char **owned;
    size_t nowned;
} parley_config;

/* Defaults, then the config file (--config, else PARLEY_CONFIG), then
 * PARLEY_* variables, then flags. Returns 0, 1 when the program should exit
 * successfully (--help, --version, --print-man), -1 on error (said on
 * stderr). cfg must be freed with parley_config_free in every case. */
int parley_configure(parley_config *cfg, int argc, char **argv);
void parley_config_free(parley_config *cfg);

#endif
