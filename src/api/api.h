/* api.h - the server API of the application's own backend: HTTP/1.1 + JSON
 * under /api/v1/ on parley's own HTTP stack (docs/API.md).
 *
 * main.c hands every request whose path starts with /api/ to
 * api_handle_request. The front (api.c) answers what needs no chat layer:
 * 404 when no key is configured, Bearer key checks in constant time, the
 * per-key rate limit, routing with percent-decoded path segments, 404/405,
 * the 64 KiB body limit, JSON parsing and the shape of the body; then it
 * calls the endpoint's handler (api_endpoints.c) with the parsed request.
 * Handlers answer asynchronously through api_reply_* (api_internal.h). */
#ifndef PARLEY_API_H
#define PARLEY_API_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "net/net.h"
#include "util/buf.h"
#include "webhook/webhook.h"

typedef struct api_server api_server;

typedef struct {
    const char *const *keys; /* the API keys; api_new keeps only their SHA-256 */
    size_t nkeys;            /* 0: the API is off (every /api/ path is 404) */
    double rate;             /* requests per second per key (0: no limit) */
    uint32_t burst;
    int test_hooks;          /* test-only: POST /api/v1/_test/events (docs/API.md) */
    webhook_t *webhook;      /* where the test hook emits; may be NULL */
} api_config;

/* Makes the API front. Returns 0 and sets *out, or ERR_INVAL when the rate
 * limit is out of range (util/ratelimit.h). Only digests of the keys are
 * kept; the config may go away afterwards (webhook must outlive the
 * server). */
int api_new(uv_loop_t *loop, const api_config *cfg, api_server **out);
/* Answers one request whose path starts with /api/ (now or later). */
void api_handle_request(api_server *api, net_conn *c, net_request *req);
/* Appends the API's Prometheus metrics. */
void api_metrics(const api_server *api, buf_t *out);
/* Frees the server. Requests still waiting for an asynchronous handler are
 * abandoned: their handlers must be done (the chat layer freed) first. */
void api_free(api_server *api);

#endif
