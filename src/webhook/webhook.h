/* webhook.h - the webhook sender: events of the chat (message.created,
 * user.online, ...) POSTed in signed batches to the application's URL
 * (docs/API.md, "Webhooks").
 *
 * Events wait in a bounded in-memory queue; one POST at a time carries up
 * to WEBHOOK_MAX_BATCH of them as {"events":[{id,type,time,data}]}, signed
 * with X-Parley-Signature: sha256=<hex HMAC-SHA256 of the body>. A 2xx
 * answer removes the batch from the queue; anything else, or no answer
 * within the timeout, is retried after an exponential backoff, with the
 * same events and ids (at-least-once). When the queue is full the oldest
 * event is dropped and counted. HTTP is libcurl's multi interface driven by
 * the libuv loop; the answer's body is discarded (and cut off after
 * WEBHOOK_MAX_ANSWER bytes). Events still queued when the server stops are
 * lost (docs/OPERATIONS.md). */
#ifndef PARLEY_WEBHOOK_H
#define PARLEY_WEBHOOK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/buf.h"
#include "util/err.h"

#define WEBHOOK_MAX_BATCH 100
#define WEBHOOK_MAX_ANSWER (64 * 1024)

typedef struct webhook webhook_t;

typedef struct {
    const char *url;          /* http:// or https:// */
    const char *secret;       /* the HMAC key; must not be empty */
    size_t max_queue;         /* events held at most (>= 1) */
    uint32_t timeout_ms;      /* a POST's whole time bound (5000) */
    uint32_t retry_min_ms;    /* first backoff; doubles up to retry_max_ms */
    uint32_t retry_max_ms;
} webhook_config;

/* Makes a sender on loop. Returns 0 and sets *out; ERR_INVAL for an empty
 * URL or secret or a zero queue; ERR_INTERNAL when libcurl fails to start.
 * The strings are copied. */
int webhook_new(uv_loop_t *loop, const webhook_config *cfg, webhook_t **out);

/* Queues an event of `type` with `data` (taken, whatever the result): it
 * gets a unique id and the current time, and is sent with the next batch.
 * Returns 0, or ERR_INVAL when type is NULL or empty, ERR_CLOSED after
 * webhook_close. A full queue drops its oldest event (counted), not this. */
int webhook_emit(webhook_t *wh, const char *type, json_t *data);

/* Appends the sender's Prometheus metrics. */
void webhook_metrics(const webhook_t *wh, buf_t *out);

/* Stops: the POST in flight is abandoned, queued events are lost, the
 * handles are closed; the memory is freed by the loop's close callbacks
 * (run the loop afterwards). NULL is a no-op. */
void webhook_close(webhook_t *wh);

#endif
