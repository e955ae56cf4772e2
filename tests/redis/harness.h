/* harness.h - what the live-cluster test programs share (rc_test.c,
 * store_test.c): the loop with a 10 ms tick that keeps it turning, bounded
 * waits, CHECK, a shell helper, and the runner that prints one line per
 * test and finally "N passed, N failed". Included by one .c each: the
 * definitions are static. */
#ifndef PARLEY_TESTS_REDIS_HARNESS_H
#define PARLEY_TESTS_REDIS_HARNESS_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <uv.h>

#include "util/log.h"
#include "util/turn.h"

static uv_loop_t loop;
static turn_t turn;            /* the loop's end-of-turn hooks (store, bus) */
static uv_timer_t tick;
static int base_port;          /* the cluster's first port */
static const char *cluster_dir; /* its directory, with redis-PORT.pid files */
static int failures;           /* checks failed in the current test */

#define CHECK(cond)                                                               \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "  check failed: %s (line %d)\n", #cond, __LINE__);   \
            failures++;                                                           \
        }                                                                         \
    } while (0)

static void harness_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *counter reaches want or ms pass; 1 if it did. */
static int wait_for(const int *counter, int want, uint64_t ms)
{
    uv_update_time(&loop);
    uint64_t end = uv_now(&loop) + ms;
    while (*counter < want && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    return *counter >= want;
}

/* Runs the loop for ms. */
static void spin(uint64_t ms)
{
    int never = 0;
    wait_for(&never, 1, ms);
}

/* Runs a shell command; its output, trailing white space removed, goes to
 * out. Returns pclose's status, or -1. */
static int sh(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t n, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    FILE *p = popen(line, "r");
    if (p == NULL)
        return -1;
    size_t len = fread(out, 1, n - 1, p);
    out[len] = '\0';
    while (len && (out[len - 1] == '\n' || out[len - 1] == '\r' || out[len - 1] == ' '))
        out[--len] = '\0';
    return pclose(p);
}

/* The pid of the redis-server on `port`, from its pid file; -1 if unknown. */
static pid_t node_pid(int port)
{
    char path[512], txt[32] = "";
    snprintf(path, sizeof(path), "%s/redis-%d.pid", cluster_dir, port);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    if (fgets(txt, sizeof(txt), f) == NULL)
        txt[0] = '\0';
    fclose(f);
    pid_t pid = (pid_t)atoi(txt);
    return pid > 0 ? pid : -1;
}

/* Reads <prefix>_BASE, <prefix>_DIR and <prefix>_LOG (a log level, else
 * `level`), starts the loop and its tick. Returns 0, or 2 when the
 * environment lacks the cluster (tests/redis/run.sh sets it). */
static int harness_start(const char *prefix, log_level_t level)
{
    char name[64];
    snprintf(name, sizeof(name), "%s_BASE", prefix);
    const char *b = getenv(name);
    snprintf(name, sizeof(name), "%s_DIR", prefix);
    cluster_dir = getenv(name);
    if (b == NULL || cluster_dir == NULL) {
        fprintf(stderr, "set %s_BASE and %s_DIR (tests/redis/run.sh does)\n", prefix, prefix);
        return 2;
    }
    base_port = atoi(b);
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(name, sizeof(name), "%s_LOG", prefix);
    const char *lvl = getenv(name);
    if (lvl)
        log_parse_level(lvl, &level);
    log_set_level(level);
    uv_loop_init(&loop);
    turn_init(&loop, &turn);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, harness_tick, 10, 10);
    return 0;
}

typedef struct {
    const char *name;
    void (*fn)(void);
} harness_test;

/* Runs each test, one line each; returns the number that failed and adds
 * the number that passed to *passed. */
static int harness_run(const harness_test *tests, size_t n, int *passed)
{
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        failures = 0;
        uv_update_time(&loop);
        uint64_t t0 = uv_now(&loop);
        printf("== %s\n", tests[i].name);
        tests[i].fn();
        uv_update_time(&loop);
        printf("%s %s (%llu ms)\n", failures ? "FAIL" : "ok  ", tests[i].name,
               (unsigned long long)(uv_now(&loop) - t0));
        if (failures)
            failed++;
        else
            (*passed)++;
    }
    return failed;
}

/* Stops the tick, runs the loop dry, checks nothing is left open and prints
 * the summary. Returns the exit status. */
static int harness_finish(int passed, int failed)
{
    uv_close((uv_handle_t *)&tick, NULL);
    turn_close(&turn);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        printf("FAIL handles left open on the loop\n");
        failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif
