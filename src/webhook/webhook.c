/* webhook.c - the webhook sender (webhook.h): batches from the queue,
 * POSTed with libcurl's multi interface on the libuv loop.
 *
 * libcurl tells us which sockets to watch (webhook__on_socket: one uv_poll
 * each) and when to call it back (webhook__on_curl_timer: one uv_timer);
 * we tell it what happened with curl_multi_socket_action. One POST is in
 * flight at a time, so the events reach the receiver in order. A second
 * timer (`kick`) starts the next POST: at once (after the current loop
 * turn, so events emitted together go together) or after a backoff. */
#include <curl/curl.h>
#include <string.h>
#include <sys/time.h>

#include "util/log.h"
#include "util/metrics.h"
#include "util/mem.h"
#include "util/rand.h"
#include "webhook/webhook.h"
#include "webhook/webhook_internal.h"

typedef struct webhook_sock webhook_sock;
struct webhook_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    webhook_t *wh;
    webhook_sock *next;
};

enum { WH_OUT_DELIVERED, WH_OUT_REFUSED, WH_OUT_TIMEOUT, WH_OUT_ERROR, WH_NOUT };
static const char *const webhook__outcomes[WH_NOUT] = {"delivered", "refused", "timeout", "error"};

struct webhook {
    uv_loop_t *loop;
    char *url, *secret;
    webhook_config cfg;
    CURLM *multi;
    CURL *easy;              /* the POST in flight, or NULL */
    struct curl_slist *headers;
    buf_t body;              /* the in-flight POST's body */
    size_t answer_bytes;     /* of the in-flight answer, discarded */
    uint64_t sent_ns;
    unsigned attempt;        /* failures in a row of the current batch */
    int backing_off;
    webhook_queue q;
    uv_timer_t curl_timer, kick;
    webhook_sock *socks;
    int open_handles;        /* closed by webhook_close, not yet called back */
    int closing;
    uint64_t posts[WH_NOUT], retries, events_delivered;
    metrics_hist latency;
};

static void webhook__maybe_send(webhook_t *wh);
static void webhook__on_kick(uv_timer_t *t);

/* ---- libcurl on libuv ---------------------------------------------------- */

static void webhook__on_sock_closed(uv_handle_t *h)
{
    mem_free(mem_container_of((uv_poll_t *)h, webhook_sock, poll));
}

static void webhook__sock_drop(webhook_t *wh, webhook_sock *s)
{
    for (webhook_sock **p = &wh->socks; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, webhook__on_sock_closed);
}

static void webhook__check_done(webhook_t *wh);

static void webhook__on_poll(uv_poll_t *p, int status, int events)
{
    webhook_sock *s = mem_container_of(p, webhook_sock, poll);
    webhook_t *wh = s->wh;
    int flags = 0, running = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(wh->multi, s->fd, flags, &running);
    webhook__check_done(wh); /* s may be freed now */
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for `what`, or stop watching it. */
static int webhook__on_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp)
{
    webhook_t *wh = ud;
    webhook_sock *s = sockp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            webhook__sock_drop(wh, s);
            curl_multi_assign(wh->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = mem_calloc(1, sizeof(*s));
        s->fd = fd;
        s->wh = wh;
        if (uv_poll_init_socket(wh->loop, &s->poll, fd) != 0) {
            mem_free(s);
            return -1;
        }
        s->next = wh->socks;
        wh->socks = s;
        curl_multi_assign(wh->multi, fd, s);
    }
    int events = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    return uv_poll_start(&s->poll, events, webhook__on_poll) == 0 ? 0 : -1;
}

static void webhook__on_curl_timer(uv_timer_t *t)
{
    webhook_t *wh = t->data;
    int running = 0;
    curl_multi_socket_action(wh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    webhook__check_done(wh);
}

/* CURLMOPT_TIMERFUNCTION: call back in ms (-1: never). */
static int webhook__on_timer_request(CURLM *multi, long ms, void *ud)
{
    webhook_t *wh = ud;
    (void)multi;
    if (ms < 0)
        uv_timer_stop(&wh->curl_timer);
    else
        uv_timer_start(&wh->curl_timer, webhook__on_curl_timer, (uint64_t)ms, 0);
    return 0;
}

/* CURLOPT_WRITEFUNCTION: the answer's body is not kept; past
 * WEBHOOK_MAX_ANSWER bytes the transfer is cut (an answer status was read
 * by then, and decides). */
static size_t webhook__on_answer(char *data, size_t size, size_t n, void *ud)
{
    webhook_t *wh = ud;
    (void)data;
    wh->answer_bytes += size * n;
    return wh->answer_bytes > WEBHOOK_MAX_ANSWER ? 0 : size * n;
}

/* ---- batches ------------------------------------------------------------- */

/* The POST in flight ended with `result`: acknowledge or schedule a retry. */
static void webhook__finish(webhook_t *wh, CURLcode result)
{
    long code = 0;
    curl_easy_getinfo(wh->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_multi_remove_handle(wh->multi, wh->easy);
    curl_easy_cleanup(wh->easy);
    wh->easy = NULL;
    metrics_hist_observe(&wh->latency, (double)(uv_hrtime() - wh->sent_ns) / 1e3);
    int ok = code >= 200 && code < 300 && (result == CURLE_OK || result == CURLE_WRITE_ERROR);
    int outcome = ok ? WH_OUT_DELIVERED
                  : result == CURLE_OPERATION_TIMEDOUT ? WH_OUT_TIMEOUT
                  : result == CURLE_OK || result == CURLE_WRITE_ERROR ? WH_OUT_REFUSED
                  : WH_OUT_ERROR;
    wh->posts[outcome]++;
    if (ok) {
        wh->events_delivered += wh->q.in_flight;
        webhook__queue_pop(&wh->q, wh->q.in_flight);
        wh->attempt = 0;
        webhook__maybe_send(wh);
        return;
    }
    wh->q.in_flight = 0; /* the same events go again, with any added since */
    wh->attempt++;
    wh->retries++;
    uint64_t delay = webhook__backoff_ms(wh->attempt, wh->cfg.retry_min_ms, wh->cfg.retry_max_ms);
    log_warn("webhook delivery failed", "outcome=%s status=%ld curl=\"%s\" retry_in_ms=%llu",
             webhook__outcomes[outcome], code, curl_easy_strerror(result),
             (unsigned long long)delay);
    wh->backing_off = 1;
    uv_timer_start(&wh->kick, webhook__on_kick, delay, 0);
}

static void webhook__check_done(webhook_t *wh)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(wh->multi, &left)) != NULL)
        if (m->msg == CURLMSG_DONE && m->easy_handle == wh->easy)
            webhook__finish(wh, m->data.result);
}

/* Starts a POST of up to WEBHOOK_MAX_BATCH of the oldest events. Returns 0
 * or an error (logged; the events stay queued and are retried). */
static int webhook__post(webhook_t *wh)
{
    size_t n = wh->q.len < WEBHOOK_MAX_BATCH ? wh->q.len : WEBHOOK_MAX_BATCH;
    char sig[WEBHOOK_SIG_LEN + 1], header[WEBHOOK_SIG_LEN + 32];
    if (webhook__batch_body(&wh->q, n, &wh->body) != 0 ||
        webhook__sign(wh->secret, wh->body.data, wh->body.len, sig) != 0)
        return ERR_INTERNAL;
    snprintf(header, sizeof(header), "X-Parley-Signature: %s", sig);
    curl_slist_free_all(wh->headers);
    wh->headers = NULL;
    const char *const lines[] = {"Content-Type: application/json", "Expect:", header};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct curl_slist *l = curl_slist_append(wh->headers, lines[i]);
        if (l == NULL)
            return ERR_NOMEM;
        wh->headers = l;
    }
    CURL *e = curl_easy_init();
    if (e == NULL)
        return ERR_NOMEM;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, wh->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, wh->headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, wh->body.data) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)wh->body.len) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)wh->cfg.timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, webhook__on_answer) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, wh) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "parley-webhook") != CURLE_OK;
    if (bad || curl_multi_add_handle(wh->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        return ERR_INTERNAL;
    }
    wh->easy = e;
    wh->q.in_flight = n;
    wh->answer_bytes = 0;
    wh->sent_ns = uv_hrtime();
    return 0;
}

static void webhook__on_kick(uv_timer_t *t)
{
    webhook_t *wh = t->data;
    wh->backing_off = 0;
    if (wh->easy || wh->q.len == 0 || wh->closing)
        return;
    int r = webhook__post(wh);
    if (r != 0) {
        log_error("cannot start a webhook delivery", "error=%s", err_str(r));
        wh->posts[WH_OUT_ERROR]++;
        wh->attempt++;
        wh->retries++;
        wh->backing_off = 1;
        uv_timer_start(&wh->kick, webhook__on_kick,
                       webhook__backoff_ms(wh->attempt, wh->cfg.retry_min_ms, wh->cfg.retry_max_ms), 0);
    }
}

/* Sends the queue's head unless a POST or a backoff is under way: after
 * this loop turn, so that what is emitted together goes in one batch. */
static void webhook__maybe_send(webhook_t *wh)
{
    if (wh->easy || wh->backing_off || wh->q.len == 0 || wh->closing || uv_is_active((uv_handle_t *)&wh->kick))
        return;
    uv_timer_start(&wh->kick, webhook__on_kick, 0, 0);
}

/* ---- the sender ---------------------------------------------------------- */

int webhook_new(uv_loop_t *loop, const webhook_config *cfg, webhook_t **out)
{
    if (cfg->url == NULL || !cfg->url[0] || cfg->secret == NULL || !cfg->secret[0] ||
        cfg->max_queue == 0)
        return ERR_INVAL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return ERR_INTERNAL;
    webhook_t *wh = mem_calloc(1, sizeof(*wh));
    wh->multi = curl_multi_init();
    if (wh->multi == NULL) {
        mem_free(wh);
        curl_global_cleanup();
        return ERR_INTERNAL;
    }
    wh->loop = loop;
    wh->cfg = *cfg;
    wh->url = mem_strdup(cfg->url);
    wh->secret = mem_strdup(cfg->secret);
    wh->cfg.url = wh->url;
    wh->cfg.secret = wh->secret;
    if (wh->cfg.retry_max_ms < wh->cfg.retry_min_ms)
        wh->cfg.retry_max_ms = wh->cfg.retry_min_ms;
    webhook__queue_init(&wh->q, cfg->max_queue);
    curl_multi_setopt(wh->multi, CURLMOPT_SOCKETFUNCTION, webhook__on_socket);
    curl_multi_setopt(wh->multi, CURLMOPT_SOCKETDATA, wh);
    curl_multi_setopt(wh->multi, CURLMOPT_TIMERFUNCTION, webhook__on_timer_request);
    curl_multi_setopt(wh->multi, CURLMOPT_TIMERDATA, wh);
    uv_timer_init(loop, &wh->curl_timer);
    uv_timer_init(loop, &wh->kick);
    wh->curl_timer.data = wh->kick.data = wh;
    *out = wh;
    return 0;
}

static uint64_t webhook__now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

int webhook_emit(webhook_t *wh, const char *type, json_t *data)
{
    char id[RAND_ID_LEN + 1];
    if (wh->closing) {
        json_decref(data);
        return ERR_CLOSED;
    }
    if (type == NULL || !type[0] || data == NULL) {
        json_decref(data);
        return ERR_INVAL;
    }
    rand_id(id);
    json_t *ev = json_pack("{s:s, s:s, s:I, s:o}", "id", id, "type", type, "time",
                           (json_int_t)webhook__now_ms(), "data", data);
    if (ev == NULL)
        return ERR_NOMEM; /* json_pack's "o" took data even on failure */
    webhook__queue_push(&wh->q, ev);
    webhook__maybe_send(wh);
    return 0;
}

void webhook_metrics(const webhook_t *wh, buf_t *out)
{
    metrics_header(out, "parley_webhook_posts_total", "counter",
                   "Webhook POSTs by outcome (delivered: a 2xx answer; refused: another status).");
    for (int i = 0; i < WH_NOUT; i++) {
        char labels[48];
        snprintf(labels, sizeof(labels), "outcome=\"%s\"", webhook__outcomes[i]);
        metrics_sample(out, "parley_webhook_posts_total", labels, (double)wh->posts[i]);
    }
    metrics_single(out, "parley_webhook_events_delivered_total", "counter",
                   "Webhook events acknowledged by the receiver.", (double)wh->events_delivered);
    metrics_single(out, "parley_webhook_retries_total", "counter",
                   "Webhook batches scheduled again after a failure.", (double)wh->retries);
    metrics_single(out, "parley_webhook_dropped_total", "counter",
                   "Webhook events dropped, oldest first, by a full queue (--webhook-queue).",
                   (double)wh->q.dropped);
    metrics_single(out, "parley_webhook_queue_depth", "gauge", "Webhook events waiting.",
                   (double)wh->q.len);
    metrics_header(out, "parley_webhook_post_duration_seconds", "histogram",
                   "Time from a webhook POST to its end (answer, error or timeout).");
    metrics_histogram(out, "parley_webhook_post_duration_seconds", NULL, &wh->latency);
}

static void webhook__on_handle_closed(uv_handle_t *h)
{
    webhook_t *wh = h->data;
    if (--wh->open_handles > 0)
        return;
    webhook__queue_free(&wh->q);
    buf_free(&wh->body);
    mem_free(wh->url);
    mem_free(wh->secret);
    mem_free(wh);
    curl_global_cleanup();
}

void webhook_close(webhook_t *wh)
{
    if (wh == NULL || wh->closing)
        return;
    wh->closing = 1;
    if (wh->q.len)
        log_warn("webhook events lost at shutdown", "events=%zu", wh->q.len);
    if (wh->easy) {
        curl_multi_remove_handle(wh->multi, wh->easy);
        curl_easy_cleanup(wh->easy);
        wh->easy = NULL;
    }
    curl_multi_cleanup(wh->multi); /* may call webhook__on_socket(REMOVE) */
    wh->multi = NULL;
    curl_slist_free_all(wh->headers);
    wh->headers = NULL;
    while (wh->socks)
        webhook__sock_drop(wh, wh->socks);
    wh->open_handles = 2;
    uv_close((uv_handle_t *)&wh->curl_timer, webhook__on_handle_closed);
    uv_close((uv_handle_t *)&wh->kick, webhook__on_handle_closed);
}
