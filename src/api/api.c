/* api.c - the API front (see api.h): keys, the per-key rate limit, limits,
 * JSON in and out, replies and metrics. Routing helpers are in api_route.c,
 * the endpoints in api_endpoints.c.
 *
 * Order of the checks, so that nothing about the routes leaks to a caller
 * without a key: API off (404), a key in the query string (401), the
 * Authorization header (401), the key's rate limit (429), the path (400 for
 * bad percent-encoding, 404, 405), the body (413, 400), then the handler. */
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/api_internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

/* The statuses counted by route in /metrics; others count as "other". */
static const int api__codes[] = {200, 201, 400, 401, 403, 404, 405, 409, 413, 429, 500, 501};
#define API_NCODES (sizeof(api__codes) / sizeof(api__codes[0]))

struct api_server {
    uv_loop_t *loop;
    size_t nkeys;
    unsigned char (*key_hash)[SHA256_DIGEST_LENGTH]; /* SHA-256 of each key */
    ratelimit_config_t rl_cfg;
    ratelimit_t *buckets; /* one per key */
    int test_hooks;
    webhook_t *webhook;
    uint64_t (*counts)[API_NCODES + 1]; /* [route or api_nroutes: no route][status] */
    metrics_hist latency;
    api_req *pending;     /* requests whose handler has not answered */
};

int api_new(uv_loop_t *loop, const api_config *cfg, api_server **out)
{
    ratelimit_config_t rl;
    if (ratelimit_config_init(&rl, cfg->rate, cfg->burst) != 0)
        return ERR_INVAL;
    api_server *api = mem_calloc(1, sizeof(*api));
    api->loop = loop;
    api->rl_cfg = rl;
    api->nkeys = cfg->nkeys;
    api->key_hash = mem_calloc(cfg->nkeys ? cfg->nkeys : 1, sizeof(*api->key_hash));
    api->buckets = mem_calloc(cfg->nkeys ? cfg->nkeys : 1, sizeof(*api->buckets));
    for (size_t i = 0; i < cfg->nkeys; i++) {
        SHA256((const unsigned char *)cfg->keys[i], strlen(cfg->keys[i]), api->key_hash[i]);
        ratelimit_init(&api->buckets[i], &api->rl_cfg, uv_now(loop));
    }
    api->test_hooks = cfg->test_hooks;
    api->webhook = cfg->webhook;
    api->counts = mem_calloc(api_nroutes + 1, sizeof(*api->counts));
    *out = api;
    return 0;
}

/* Frees a request and unlinks it from the pending list. */
static void api__req_free(api_req *r);

void api_free(api_server *api)
{
    if (api == NULL)
        return;
    while (api->pending) {
        api_req *r = api->pending;
        if (r->abandon)
            r->abandon(r);
        api__req_free(r);
    }
    OPENSSL_cleanse(api->key_hash, (api->nkeys ? api->nkeys : 1) * sizeof(*api->key_hash));
    mem_free(api->key_hash);
    mem_free(api->buckets);
    mem_free(api->counts);
    mem_free(api);
}

webhook_t *api__webhook(api_server *api)
{
    return api->webhook;
}

uv_loop_t *api__loop(api_server *api)
{
    return api->loop;
}

/* ---- answers ------------------------------------------------------------- */

static void api__count(api_server *api, size_t route, int status, uint64_t start_ns)
{
    size_t k = 0;
    while (k < API_NCODES && api__codes[k] != status)
        k++;
    api->counts[route][k]++;
    metrics_hist_observe(&api->latency, (double)(uv_hrtime() - start_ns) / 1e3);
}

/* Writes obj (taken) as the JSON answer. c may be NULL (client gone). */
static void api__send(api_server *api, net_conn *c, size_t route, uint64_t start_ns, int status,
                      json_t *obj, const char *extra)
{
    char headers[256];
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    api__count(api, route, status, start_ns);
    if (c == NULL) {
        free(text); /* jansson's allocation */
        return;
    }
    snprintf(headers, sizeof(headers), "Cache-Control: no-store\r\n%s", extra ? extra : "");
    if (text == NULL) {
        static const char oom[] = "{\"ok\":false,\"error\":\"internal\",\"message\":\"out of memory\"}";
        net_respond(c, 500, "application/json", headers, oom, sizeof(oom) - 1);
        return;
    }
    net_respond(c, status, "application/json", headers, text, strlen(text));
    free(text);
}

static json_t *api__error_body(const char *code, const char *message)
{
    return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", code, "message", message);
}

static void api__fail(api_server *api, net_conn *c, size_t route, uint64_t start_ns, int status,
                      const char *code, const char *message, const char *extra)
{
    api__send(api, c, route, start_ns, status, api__error_body(code, message), extra);
}

static void api__unlink(api_req *r)
{
    api_server *api = r->api;
    if (api->pending == r) {
        api->pending = r->next;
    } else {
        for (api_req *p = api->pending; p; p = p->next)
            if (p->next == r) {
                p->next = r->next;
                break;
            }
    }
    r->next = NULL;
}

static void api__req_free(api_req *r)
{
    api__unlink(r);
    if (r->c)
        net_conn_set_owner(r->c, NULL, NULL);
    api_segments_free(r->params, r->nparams);
    json_decref(r->body);
    mem_free(r->query);
    mem_free(r);
}

void api_reply_ok(api_req *r, int status, json_t *body)
{
    json_t *obj = json_pack("{s:b}", "ok", 1);
    if (obj && body && json_object_update(obj, body) != 0) {
        json_decref(obj);
        obj = NULL;
    }
    json_decref(body);
    net_conn *c = r->c;
    if (c)
        net_conn_set_owner(c, NULL, NULL);
    r->c = NULL;
    api__send(r->api, c, r->route_index, r->start_ns, status, obj, NULL);
    api__req_free(r);
}

void api_reply_status(api_req *r, int status, const char *code, const char *message,
                      const char *extra_headers)
{
    net_conn *c = r->c;
    if (c)
        net_conn_set_owner(c, NULL, NULL);
    r->c = NULL;
    api__fail(r->api, c, r->route_index, r->start_ns, status, code, message, extra_headers);
    api__req_free(r);
}

void api_reply_error(api_req *r, const char *code, const char *message)
{
    api_reply_status(r, api_error_status(code), code, message, NULL);
}

/* ---- checks -------------------------------------------------------------- */

/* The index of the key in "Bearer <key>", or ERR_NOTFOUND. Every key is
 * compared (digests of equal length, CRYPTO_memcmp), whatever matches. */
static int api__key_index(const api_server *api, const char *authorization)
{
    static const char scheme[] = "Bearer ";
    if (authorization == NULL || strncasecmp(authorization, scheme, sizeof(scheme) - 1) != 0)
        return ERR_NOTFOUND;
    const char *key = authorization + sizeof(scheme) - 1;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, strlen(key), digest);
    int found = ERR_NOTFOUND;
    for (size_t i = 0; i < api->nkeys; i++) {
        int same = CRYPTO_memcmp(digest, api->key_hash[i], sizeof(digest)) == 0;
        if (same && found < 0)
            found = (int)i;
    }
    OPENSSL_cleanse(digest, sizeof(digest));
    return found;
}

/* A query parameter that looks like a credential: refused, since URLs end
 * up in logs, proxies and browser histories. */
static int api__key_in_query(const char *query)
{
    static const char *const names[] = {"key", "api_key", "apikey", "apiKey", "access_token",
                                        "token", "authorization"};
    char tmp[8];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int r = net_query_get(query, names[i], tmp, sizeof(tmp));
        if (r != ERR_NOTFOUND)
            return 1;
    }
    return 0;
}

/* The checks that need no route. Returns the key's index, or -1 after
 * answering. */
static int api__admit(api_server *api, net_conn *c, const net_request *req, uint64_t start)
{
    size_t none = api_nroutes;
    if (api->nkeys == 0) {
        api__fail(api, c, none, start, 404, "not_found", "no such path", NULL);
        return -1;
    }
    if (api__key_in_query(req->query)) {
        api__fail(api, c, none, start, 401, "unauthorized",
                  "an API key in the URL is refused: send Authorization: Bearer <key>", NULL);
        return -1;
    }
    int k = api__key_index(api, req->authorization);
    if (k < 0) {
        api__fail(api, c, none, start, 401, "unauthorized",
                  "missing or unknown API key (Authorization: Bearer <key>)",
                  "WWW-Authenticate: Bearer\r\n");
        return -1;
    }
    if (ratelimit_take(&api->buckets[k], &api->rl_cfg, uv_now(api->loop)) != 0) {
        char extra[64];
        snprintf(extra, sizeof(extra), "Retry-After: %u\r\n",
                 api_retry_after(&api->buckets[k], &api->rl_cfg));
        api__fail(api, c, none, start, 429, "rate_limited", "too many requests for this key", extra);
        return -1;
    }
    return k;
}

/* Parses the body of a route that takes one into r->body. Returns 0, or -1
 * after answering (r is then freed by the caller's answer). */
static int api__parse_body(api_req *r, const net_request *req)
{
    const char *why = NULL;
    json_error_t jerr;
    if (req->body.len == 0)
        r->body = json_object();
    else
        r->body = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (r->body == NULL) {
        char msg[200];
        snprintf(msg, sizeof(msg), "malformed JSON: %s", req->body.len ? jerr.text : "out of memory");
        api_reply_status(r, 400, "invalid_payload", msg, NULL);
        return -1;
    }
    if (api_check_body(r->body, r->route->fields, &why) != 0) {
        api_reply_status(r, 400, "invalid_payload", why, NULL);
        return -1;
    }
    return 0;
}

static void api__on_close(void *owner, net_conn *c)
{
    api_req *r = owner;
    (void)c;
    r->c = NULL;
}

static const net_owner_ops api__owner_ops = {.on_close = api__on_close};

/* Routes an admitted request; answers 400/404/405/413 itself. */
static void api__dispatch(api_server *api, net_conn *c, const net_request *req, uint64_t start)
{
    size_t none = api_nroutes, plen = strlen(API_PREFIX);
    char *segs[API_MAX_SEGMENTS];
    char allow[64], extra[96];
    if (req->path_len < plen || strncmp(req->url, API_PREFIX, plen) != 0) {
        api__fail(api, c, none, start, 404, "not_found", "no such path", NULL);
        return;
    }
    int n = api_split_path(req->url + plen, req->path_len - plen, segs, API_MAX_SEGMENTS);
    if (n < 0) {
        if (n == ERR_MALFORMED)
            api__fail(api, c, none, start, 400, "invalid_payload", "bad percent-encoding in the path", NULL);
        else
            api__fail(api, c, none, start, 404, "not_found", "no such path", NULL);
        return;
    }
    int ri = api_route_find(req->method_name, segs, (size_t)n, api->test_hooks, allow, sizeof(allow));
    if (ri < 0) {
        api_segments_free(segs, (size_t)n);
        if (ri == ERR_INVAL) {
            snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
            api__fail(api, c, none, start, 405, "method_not_allowed", "method not allowed here", extra);
        } else {
            api__fail(api, c, none, start, 404, "not_found", "no such path", NULL);
        }
        return;
    }
    const api_route *rt = &api_routes[ri];
    if (req->too_large || req->body.len > API_MAX_BODY) {
        api_segments_free(segs, (size_t)n);
        api__fail(api, c, (size_t)ri, start, 413, "invalid_payload", "the body is over 64 KiB", NULL);
        return;
    }
    api_req *r = mem_calloc(1, sizeof(*r));
    r->api = api;
    r->c = c;
    r->route = rt;
    r->route_index = (size_t)ri;
    r->start_ns = start;
    r->query = mem_strdup(req->query);
    for (int i = 0, p = 0; i < n; i++) {
        if (api_pattern_is_param(rt->pattern, (size_t)i))
            r->params[p++] = segs[i], r->nparams = (size_t)p;
        else
            mem_free(segs[i]);
    }
    r->next = api->pending;
    api->pending = r;
    net_conn_set_owner(c, &api__owner_ops, r);
    if (rt->fields && api__parse_body(r, req) != 0)
        return;
    rt->handler(r);
}

void api_handle_request(api_server *api, net_conn *c, net_request *req)
{
    uint64_t start = uv_hrtime();
    if (api__admit(api, c, req, start) < 0)
        return;
    api__dispatch(api, c, req, start);
}

/* ---- metrics ------------------------------------------------------------- */

void api_metrics(const api_server *api, buf_t *out)
{
    metrics_header(out, "parley_api_requests_total", "counter",
                   "Server API requests answered, by route and status.");
    for (size_t i = 0; i <= api_nroutes; i++) {
        const char *name = i < api_nroutes ? api_routes[i].name : "none";
        for (size_t k = 0; k <= API_NCODES; k++) {
            if (api->counts[i][k] == 0)
                continue;
            char labels[160];
            if (k < API_NCODES)
                snprintf(labels, sizeof(labels), "route=\"%s\",status=\"%d\"", name, api__codes[k]);
            else
                snprintf(labels, sizeof(labels), "route=\"%s\",status=\"other\"", name);
            metrics_sample(out, "parley_api_requests_total", labels, (double)api->counts[i][k]);
        }
    }
    size_t pending = 0;
    for (const api_req *r = api->pending; r; r = r->next)
        pending++;
    metrics_single(out, "parley_api_requests_pending", "gauge",
                   "Server API requests waiting for their answer.", (double)pending);
    metrics_header(out, "parley_api_request_duration_seconds", "histogram",
                   "Time from a Server API request to its answer.");
    metrics_histogram(out, "parley_api_request_duration_seconds", NULL, &api->latency);
}
