/* rc_conn.c - the command link of a node: one hiredis async connection on
 * the loop through hiredis' libuv adapter, with a connect timeout (hiredis
 * 0.14 has none for async connects) and reconnects with backoff.
 *
 * States (n->cmd): DOWN -> CONNECTING -> UP; any failure -> BACKOFF, whose
 * timer starts the next attempt. The same timer is the connect timeout,
 * and while UP the hung-link check (rc__conn_suspect). Commands are only handed to hiredis when
 * the link is UP (rc_command.c keeps the others waiting), so a command
 * never sits in hiredis' buffer of a connection that may never come up:
 * hiredis only holds commands that were written, or are about to be, to a
 * live connection. When that connection dies, hiredis calls each of their
 * callbacks with a NULL reply (they fail with RC_ERR_DISCONNECTED, since
 * they may have run) and then onDisconnect.
 *
 * Events: hiredis' libuv adapter attaches the context and closes its poll
 * handle on cleanup, but its poll callback drops errors: libuv reports
 * POLLERR (a refused connect, a reset connection) as a status and stops
 * the handle, the adapter returns, and hiredis never learns that the link
 * is dead (a connect would hang until our timeout, an established link
 * would swallow commands until each times out). So its four event hooks
 * are replaced by ours, which start the poll handle with a callback that
 * turns an error into a failed link.
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
#include <string.h>
#include <sys/socket.h>

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
    /* A link lost may mean a failover: look now. Failed reconnects do not
     * ask again; the degraded map is re-read every refresh_ms anyway. */
    if (was_up)
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
    n->last_reply = uv_now(n->c->loop);
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
    } else if (n->cmd == RC__UP) {
        /* rc__conn_suspect: still commands waiting, still nothing heard. */
        redisAsyncContext *ac = n->ac;
        if (ac && ac->replies.head &&
            uv_now(n->c->loop) - n->last_reply >= n->c->cfg.timeout_ms) {
            n->ac = NULL;
            ac->data = NULL;
            redisAsyncFree(ac); /* what it holds fails: RC_ERR_DISCONNECTED */
            rc__conn_failed(n, "no reply within the command timeout");
        }
    }
}

/* The socket's pending error, for the log. */
static const char *rc__sock_error(const redisAsyncContext *ac)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (ac->c.fd >= 0 && getsockopt(ac->c.fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
        return strerror(err);
    return "socket error";
}

static void rc__poll_cb(uv_poll_t *h, int status, int events)
{
    redisLibuvEvents *p = h->data;
    redisAsyncContext *ac = p->context;
    if (ac == NULL)
        return;
    if (status < 0) {
        /* libuv stopped the handle. Not inside any hiredis callback here,
         * so the context can be freed at once. */
        rc__node *n = ac->data;
        if (n == NULL)
            return;
        char why[128];
        snprintf(why, sizeof(why), "%s", rc__sock_error(ac));
        n->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
        uv_timer_stop(&n->cmd_timer);
        rc__conn_failed(n, why);
        return;
    }
    if (events & UV_READABLE)
        redisAsyncHandleRead(ac);
    if (p->context != NULL && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->context);
}

static void rc__ev_update(redisLibuvEvents *p)
{
    if (p->events)
        uv_poll_start(&p->handle, p->events, rc__poll_cb);
    else
        uv_poll_stop(&p->handle);
}

static void rc__ev_add_read(void *privdata)
{
    redisLibuvEvents *p = privdata;
    p->events |= UV_READABLE;
    rc__ev_update(p);
}

static void rc__ev_del_read(void *privdata)
{
    redisLibuvEvents *p = privdata;
    p->events &= ~UV_READABLE;
    rc__ev_update(p);
}

static void rc__ev_add_write(void *privdata)
{
    redisLibuvEvents *p = privdata;
    p->events |= UV_WRITABLE;
    rc__ev_update(p);
}

static void rc__ev_del_write(void *privdata)
{
    redisLibuvEvents *p = privdata;
    p->events &= ~UV_WRITABLE;
    rc__ev_update(p);
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
    ac->ev.addRead = rc__ev_add_read;
    ac->ev.delRead = rc__ev_del_read;
    ac->ev.addWrite = rc__ev_add_write;
    ac->ev.delWrite = rc__ev_del_write;
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
        return ERR_IO;
    /* ASKING has no callback: hiredis drops its reply. */
    if (req->ask && redisAsyncCommand(ac, NULL, NULL, "ASKING") != REDIS_OK)
        return ERR_IO;
    if (redisAsyncFormattedCommand(ac, rc__hiredis_reply, req, req->cmd, req->cmdlen) != REDIS_OK)
        return ERR_IO;
    req->in_hiredis = 1;
    req->ac = ac;
    return 0;
}

void rc__conn_suspect(rc__node *n)
{
    if (n->cmd == RC__UP && !uv_is_active((uv_handle_t *)&n->cmd_timer))
        uv_timer_start(&n->cmd_timer, rc__conn_timer_cb, 10, 0);
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
