/* log.h - logfmt lines on stderr, filtered by level.
 *
 * One line per event worth knowing: `ts=... level=info msg="..." k=v ...`.
 * The level is process-wide configuration set once at start (log_set_level),
 * the only mutable global outside the server struct, as in every logger. */
#ifndef PARLEY_UTIL_LOG_H
#define PARLEY_UTIL_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

void log_set_level(log_level_t level);
/* Returns 0 and sets *out for "debug", "info", "warn", "error"; else -1. */
int log_parse_level(const char *name, log_level_t *out);
int log_enabled(log_level_t level);
/* `fmt` is the key=value part that follows msg; the caller quotes values
 * that may contain spaces (log_quote helps). */
void log_write(log_level_t level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(msg, ...) do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, msg, __VA_ARGS__); } while (0)
#define log_info(msg, ...) log_write(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_write(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_ERROR, msg, __VA_ARGS__)

#endif
