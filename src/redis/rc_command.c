/* rc_command.c - commands: routing, the wait queue, deadlines, redirections.
 *
 * Life of a request (rc__req):
 *   rc_command -> rc__req_new: RESP-encoded once, deadline armed in
 *     c->q_timeout (one FIFO: every command has the same timeout);
 *   rc__req_dispatch: the master of its slot (or the -ASK target, or any
 *     master) has its link up -> handed to hiredis (in_hiredis); otherwise
 *     it joins the wait list, bounded by max_queued (beyond that it fails
 *     with RC_ERR_QUEUE_FULL);
 *   the wait list is walked (rc__dispatch_waiting) whenever a link comes up
 *     or the slot map changes, so waiting commands go out in order;
 *   the reply: -MOVED updates the map and dispatches again, -ASK dispatches
 *     once to the named node behind ASKING, -TRYAGAIN/-CLUSTERDOWN/-LOADING
 *     wait backoff_min_ms in c->q_later and dispatch again; anything else
 *     goes to the callback; a NULL reply (the connection died with the
 *     command on it) fails it with RC_ERR_DISCONNECTED;
 *   the deadline fails it with RC_ERR_TIMEOUT wherever it is. If hiredis
 *     still holds it, the request stays allocated (callback cleared) until
 *     hiredis calls back, and is then freed without a word.
 * Failures found outside a reply callback or a timer (a full queue, a send
 * hiredis refused, a dead connection) go through c->q_later with a zero
 * delay, so a user callback never runs inside rc_command, inside a link
 * callback, or inside another user callback's rc_* call. */
#include "redis/rc_internal.h"
#include "util/log.h"
#include "util/mem.h"

#include <string.h>
#include <strings.h>

static void rc__req_free(rc__req *req)
{
    mem_free(req->cmd);
    mem_free(req->ask);
    mem_free(req);
}

static void rc__wait_remove(rc__req *req)
{
    if (!req->waiting)
        return;
    rc_cluster *c = req->c;
    if (req->wprev)
        req->wprev->wnext = req->wnext;
    else
        c->wait_head = req->wnext;
    if (req->wnext)
        req->wnext->wprev = req->wprev;
    else
        c->wait_tail = req->wprev;
    req->wprev = req->wnext = NULL;
    req->waiting = 0;
    c->nwait--;
}

static void rc__wait_add(rc__req *req)
{
    rc_cluster *c = req->c;
    req->wnext = NULL;
    req->wprev = c->wait_tail;
    if (c->wait_tail)
        c->wait_tail->wnext = req;
    else
        c->wait_head = req;
    c->wait_tail = req;
    req->waiting = 1;
    c->nwait++;
}

rc__req *rc__req_new(rc_cluster *c, int argc, const char **argv, const size_t *argvlen)
{
    rc__req *req = mem_calloc(1, sizeof(*req));
    req->c = c;
    req->slot = -1;
    buf_t b = {0};
    buf_appendf(&b, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        buf_appendf(&b, "$%zu\r\n", len);
        buf_append(&b, argv[i], len);
        buf_append(&b, "\r\n", 2);
    }
    req->cmdlen = b.len;
    req->cmd = buf_steal(&b);
    /* The loop's cached time is that of the start of this turn: after
     * blocking work in the caller it is in the past, and so would be the
     * deadline. */
    uv_update_time(c->loop);
    tq_push(&c->q_timeout, &req->tmo, uv_now(c->loop) + c->cfg.timeout_ms);
    return req;
}

static void rc__req_count(const rc__req *req, const redisReply *reply, const char *err)
{
    rc_cluster *c = req->c;
    if (req->t0 == 0) /* internal (CLUSTER SLOTS): not counted */
        return;
    metrics_hist_observe(&c->latency, (double)(uv_hrtime() - req->t0) / 1e3);
    if (err)
        c->n_failed++;
    else if (reply && reply->type == REDIS_REPLY_ERROR)
        c->n_error_reply++;
    else
        c->n_ok++;
}

void rc__req_complete(rc__req *req, const redisReply *reply, const char *err)
{
    rc_reply_cb cb = req->cb;
    void *ud = req->ud;
    if (cb == NULL)
        return;
    req->cb = NULL;
    tq_remove(&req->tmo);
    tq_remove(&req->later);
    rc__wait_remove(req);
    rc__req_count(req, reply, err);
    if (!req->in_hiredis)
        rc__req_free(req);
    cb(ud, reply, err);
}

void rc__req_fail_later(rc__req *req, const char *err)
{
    rc_cluster *c = req->c;
    rc__wait_remove(req);
    req->fail = err;
    tq_push(&c->q_later, &req->later, uv_now(c->loop));
}

static void rc__req_retry_later(rc__req *req)
{
    rc_cluster *c = req->c;
    rc__wait_remove(req);
    req->fail = NULL;
    tq_push(&c->q_later, &req->later, uv_now(c->loop) + rc__backoff(c, req->retries++));
}

/* Where req goes now: its -ASK target, its slot's master, or for a keyless
 * command an up master (in turn), else any master. NULL: nobody yet. */
static rc__node *rc__req_target(rc__req *req)
{
    rc_cluster *c = req->c;
    if (req->ask) {
        char host[RC__HOST_MAX];
        int port;
        if (rc__split_addr(req->ask, strlen(req->ask), host, &port) != 0)
            return NULL;
        return rc__node_get(c, host, port, 1);
    }
    if (req->slot >= 0)
        return c->slots[req->slot];
    unsigned up = 0;
    rc__node *any = NULL;
    for (rc__node *n = c->nodes; n; n = n->next) {
        if (n->nslots == 0)
            continue;
        any = n;
        up += n->cmd == RC__UP;
    }
    if (up == 0)
        return any;
    unsigned idx = c->any_rr++ % up;
    for (rc__node *n = c->nodes; n; n = n->next) {
        if (n->nslots > 0 && n->cmd == RC__UP && idx-- == 0)
            return n;
    }
    return any;
}

/* Sends req if its target is up. Returns 1 when req left (sent, or failed
 * and handed to q_later), 0 when it must wait. */
static int rc__req_try_send(rc__req *req)
{
    rc__node *n = rc__req_target(req);
    if (n && n->cmd == RC__UP) {
        if (rc__conn_send(n, req) != 0) {
            rc__req_fail_later(req, RC_ERR_SEND);
            return 1;
        }
        mem_free(req->ask); /* ASKING is good for one command */
        req->ask = NULL;
        return 1;
    }
    if (n)
        rc__conn_ensure(n);
    else
        rc__refresh_soon(req->c);
    return 0;
}

void rc__req_dispatch(rc__req *req)
{
    rc_cluster *c = req->c;
    if (rc__req_try_send(req)) {
        rc__wait_remove(req);
        return;
    }
    if (req->waiting)
        return;
    if (c->nwait >= c->cfg.max_queued) {
        rc__req_fail_later(req, RC_ERR_QUEUE_FULL);
        return;
    }
    rc__wait_add(req);
}

void rc__dispatch_waiting(rc_cluster *c)
{
    rc__req *req = c->wait_head;
    while (req) {
        rc__req *next = req->wnext;
        if (rc__req_try_send(req))
            rc__wait_remove(req);
        req = next;
    }
}

void rc__q_timeout_expired(tq_queue *q, tq_node *t)
{
    rc_cluster *c = q->data;
    rc__req *req = mem_container_of(t, rc__req, tmo);
    if (req->in_hiredis) {
        /* Sent and unanswered: the node may hang, or have been failed
         * over. Its link is checked soon (see rc__conn_suspect). */
        rc__node *n = req->ac->data;
        if (n && n->ac == req->ac)
            rc__conn_suspect(n);
        rc__refresh_soon(c);
    }
    rc__req_complete(req, NULL, RC_ERR_TIMEOUT);
}

void rc__q_later_expired(tq_queue *q, tq_node *t)
{
    (void)q;
    rc__req *req = mem_container_of(t, rc__req, later);
    if (req->fail)
        rc__req_complete(req, NULL, req->fail);
    else
        rc__req_dispatch(req);
}

void rc__hiredis_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rc__req *req = privdata;
    const redisReply *r = reply;
    req->in_hiredis = 0;
    if (r && ac->data)
        ((rc__node *)ac->data)->last_reply = uv_now(req->c->loop);
    if (req->cb == NULL) { /* timed out or closed: nobody waits for it */
        rc__req_free(req);
        return;
    }
    rc_cluster *c = req->c;
    if (r == NULL) {
        rc__req_fail_later(req, RC_ERR_DISCONNECTED);
        return;
    }

    if (req->raw) {
        rc__req_complete(req, r, NULL);
        return;
    }
    rc__redirect rd;
    rc__verdict v = rc__classify(r, &rd);
    if (v == RC__REPLY_MOVED || v == RC__REPLY_ASK) {
        c->n_redirects++;
        if (++req->redirects > RC__MAX_REDIRECTS) {
            rc__req_complete(req, NULL, RC_ERR_REDIRECTS);
            return;
        }
        const char *host = rd.host[0] ? rd.host : ac->c.tcp.host;
        mem_free(req->ask);
        req->ask = NULL;
        if (v == RC__REPLY_MOVED) {
            req->slot = rd.slot;
            rc__map_moved(c, rd.slot, host, rd.port);
        } else {
            req->ask = rc__addr_name(host, rd.port);
            log_debug("redis ask redirect", "slot=%d to=%s", rd.slot, req->ask);
        }
        rc__req_dispatch(req);
    } else if (v == RC__REPLY_RETRY) {
        if (strncmp(r->str, "CLUSTERDOWN", 11) == 0)
            rc__refresh_later(c);
        rc__req_retry_later(req);
    } else {
        rc__req_complete(req, r, NULL);
    }
}

/* Commands that would turn a connection into a subscriber or monitor one,
 * which hiredis' callback queue (and our routing) cannot follow. */
static int rc__forbidden(const char *name, size_t len)
{
    static const char *const bad[] = {"subscribe", "psubscribe", "ssubscribe",
                                      "unsubscribe", "punsubscribe", "sunsubscribe",
                                      "monitor"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (len == strlen(bad[i]) && strncasecmp(name, bad[i], len) == 0)
            return 1;
    }
    return 0;
}

int rc_command(rc_cluster *c, const char *key, int argc, const char **argv,
               const size_t *argvlen, rc_reply_cb cb, void *ud)
{
    if (c == NULL || argc < 1 || argv == NULL || cb == NULL)
        return RC_EINVAL;
    if (c->closing)
        return RC_ECLOSED;
    for (int i = 0; i < argc; i++) {
        if (argv[i] == NULL && (argvlen == NULL || argvlen[i] > 0))
            return RC_EINVAL;
    }
    if (argv[0] == NULL || rc__forbidden(argv[0], argvlen ? argvlen[0] : strlen(argv[0])))
        return RC_EINVAL;
    rc__req *req = rc__req_new(c, argc, argv, argvlen);
    req->cb = cb;
    req->ud = ud;
    req->t0 = uv_hrtime();
    if (key)
        req->slot = rc_slot(key, strlen(key));
    rc__req_dispatch(req);
    return 0;
}

void rc_metrics(const rc_cluster *c, buf_t *out)
{
    metrics_header(out, "parley_redis_commands_total", "counter",
                   "Redis commands completed, by outcome (error: an error reply; failed: "
                   "timeout, lost connection, full queue).");
    metrics_sample(out, "parley_redis_commands_total", "outcome=\"ok\"", (double)c->n_ok);
    metrics_sample(out, "parley_redis_commands_total", "outcome=\"error\"",
                   (double)c->n_error_reply);
    metrics_sample(out, "parley_redis_commands_total", "outcome=\"failed\"", (double)c->n_failed);
    metrics_header(out, "parley_redis_command_latency_seconds", "histogram",
                   "Redis command latency, from the call to the reply, redirections and "
                   "retries included.");
    metrics_histogram(out, "parley_redis_command_latency_seconds", NULL, &c->latency);
    metrics_single(out, "parley_redis_redirects_total", "counter", "-MOVED and -ASK replies.",
                   (double)c->n_redirects);
    metrics_single(out, "parley_redis_slot_map_reads_total", "counter",
                   "CLUSTER SLOTS reads (start, redirections, failovers).", (double)c->n_refreshes);
}
