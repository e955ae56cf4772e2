/* rc_conn.c - the command link of a node: one hiredis async connection on
 * the loop through hiredis' libuv adapter, with a connect timeout (hiredis
 * 0.14 has none for async connects) and reconnects with backoff.
 *
 * States (n->cmd): DOWN -> CONNECTING -> UP; any failure -> BACKOFF, whose
 * timer starts the next attempt. Commands are only handed to hiredis when
 * the link is UP (rc_command.c keeps the others waiting), so a command
 * never sits in hiredis' buffer of a connection that may never come up:
 * hiredis only holds commands that were written, or are about to be, to a
 * live connection. When that connection dies, hiredis calls each of their
 * callbacks with a NULL reply (they fail with RC_ERR_DISCONNECTED, since
 * they may have run) and then onDisconnect.
 *
 * hiredis rules (0.14): the context is freed by hiredis itself after a
 * failed connect (onConnect(REDIS_ERR)) and after a connection error
 * (before onDisconnect); it must not be freed from those two callbacks;
 * redisAsyncFree from inside one of its reply callbacks is deferred until
 * that callback returns. We clear ac->data whenever we let go of a context,
 * so that its late callbacks are ignored. */
#include "redis/rc_internal.h"
#include "util/log.h"
#include "util/mem.h"

#include <hiredis/adapters/libuv.h>
#include <stdio.h>

static void rc__conn_start(rc__node *n);
static void rc__conn_timer_cb(uv_timer_t *t);

static void rc__conn_failed(rc__node *n, const char *why)
{
    rc_cluster *c = n->c;
    int was_up = n->cmd == RC__UP;
    uint64_t delay = rc__backoff(c, n->cmd_fails);
    n->cmd = RC__BACKOFF;
    if (was_up)
        log_warn("redis node connection lost", "node=%s err=\"%s\" retry_ms=%llu", n->name, why,
                 (unsigned long long)delay);
    else if (n->cmd_fails == 0)
        log_info("redis node connect failed", "node=%s err=\"%s\" retry_ms=%llu", n->name, why,
                 (unsigned long long)delay);
    else
        log_debug("redis node connect failed", "node=%s err=\"%s\" fails=%u retry_ms=%llu",
                  n->name, why, n->cmd_fails + 1, (unsigned long long)delay);
    n->cmd_fails++;
    if (!n->retired && !c->closing)
        uv_timer_start(&n->cmd_timer, rc__conn_timer_cb, delay, 0);
    rc__refresh_soon(c);
}

/* hiredis' messages may hold quotes; logfmt values here are quoted. */
static const char *rc__errstr(const redisAsyncContext *ac, char *out, size_t n)
{
    snprintf(out, n, "%s", ac->c.errstr[0] ? ac->c.errstr : "connection closed");
    for (char *p = out; *p; p++) {
        if (*p == '"' || (unsigned char)*p < 0x20)
            *p = '\'';
    }
    return out;
}

static void rc__on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    rc__node *n = ac->data;
    if (n == NULL)
        return;
    uv_timer_stop(&n->cmd_timer);
    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns. */
        char why[128];
        n->ac = NULL;
        ac->data = NULL;
        rc__conn_failed(n, rc__errstr(ac, why, sizeof(why)));
        return;
    }
    n->cmd = RC__UP;
    n->cmd_fails = 0;
    log_debug("redis node connected", "node=%s", n->name);
    rc__node_up(n);
}

static void rc__on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    rc__node *n = ac->data;
    if (n == NULL)
        return;
    char why[128];
    n->ac = NULL;
    ac->data = NULL;
    rc__conn_failed(n, rc__errstr(ac, why, sizeof(why)));
}

static void rc__conn_timer_cb(uv_timer_t *t)
{
    rc__node *n = t->data;
    if (n->cmd == RC__CONNECTING) {
        redisAsyncContext *ac = n->ac;
        n->ac = NULL;
        if (ac) {
            ac->data = NULL;
            redisAsyncFree(ac); /* not in any of its callbacks: immediate */
        }
        rc__conn_failed(n, "connect timeout");
    } else if (n->cmd == RC__BACKOFF) {
        n->cmd = RC__DOWN;
        rc__conn_start(n);
    }
}

static void rc__conn_start(rc__node *n)
{
    rc_cluster *c = n->c;
    char why[128];
    redisAsyncContext *ac = redisAsyncConnect(n->host, n->port);
    if (ac == NULL) {
        rc__conn_failed(n, "out of memory");
        return;
    }
    if (ac->err) {
        rc__errstr(ac, why, sizeof(why));
        redisAsyncFree(ac);
        rc__conn_failed(n, why);
        return;
    }
    if (redisLibuvAttach(ac, c->loop) != REDIS_OK) {
        /* The adapter leaves its hooks set when it fails, and its cleanup
         * would then run on NULL: unset them before freeing. */
        ac->ev.addRead = ac->ev.delRead = NULL;
        ac->ev.addWrite = ac->ev.delWrite = NULL;
        ac->ev.cleanup = NULL;
        redisAsyncFree(ac);
        rc__conn_failed(n, "libuv attach failed");
        return;
    }
    ac->data = n;
    n->ac = ac;
    n->cmd = RC__CONNECTING;
    /* After attaching: setting the connect callback starts watching for
     * writability, which is how hiredis sees the connect complete. */
    redisAsyncSetConnectCallback(ac, rc__on_connect);
    redisAsyncSetDisconnectCallback(ac, rc__on_disconnect);
    uv_timer_start(&n->cmd_timer, rc__conn_timer_cb, c->cfg.timeout_ms, 0);
}

void rc__conn_init(rc__node *n)
{
    uv_timer_init(n->c->loop, &n->cmd_timer);
    n->cmd_timer.data = n;
}

void rc__conn_ensure(rc__node *n)
{
    if (n->cmd == RC__DOWN && !n->retired && !n->c->closing)
        rc__conn_start(n);
}

int rc__conn_send(rc__node *n, rc__req *req)
{
    redisAsyncContext *ac = n->ac;
    if (ac == NULL)
        return -1;
    /* ASKING has no callback: hiredis drops its reply. */
    if (req->ask && redisAsyncCommand(ac, NULL, NULL, "ASKING") != REDIS_OK)
        return -1;
    if (redisAsyncFormattedCommand(ac, rc__hiredis_reply, req, req->cmd, req->cmdlen) != REDIS_OK)
        return -1;
    req->in_hiredis = 1;
    return 0;
}

void rc__conn_close(rc__node *n)
{
    uv_timer_stop(&n->cmd_timer);
    redisAsyncContext *ac = n->ac;
    n->ac = NULL;
    n->cmd = RC__DOWN;
    if (ac) {
        ac->data = NULL;
        /* Runs the callbacks of what hiredis holds with NULL (now, or when
         * its reply callback in progress returns). */
        redisAsyncFree(ac);
    }
}
