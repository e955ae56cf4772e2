/* webhook_internal.h - the pure parts of the webhook sender: the bounded
 * event queue, the signature and the backoff schedule (webhook_queue.c),
 * tested by tests/unit/test_webhook.c. */
#ifndef PARLEY_WEBHOOK_INTERNAL_H
#define PARLEY_WEBHOOK_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* A ring of events (json objects {id,type,time,data}), oldest first.
 * `in_flight` of the oldest are in the POST being sent. */
typedef struct {
    json_t **items;
    size_t cap, head, len;
    size_t in_flight;
    uint64_t dropped;
} webhook_queue;

void webhook__queue_init(webhook_queue *q, size_t cap);
void webhook__queue_free(webhook_queue *q);
/* Appends ev (taken). When full, the oldest event is dropped first
 * (counted in q->dropped; when it was in flight, in_flight shrinks so the
 * acknowledgement removes only what is left of the batch). */
void webhook__queue_push(webhook_queue *q, json_t *ev);
/* Event i from the oldest (i < len). */
json_t *webhook__queue_at(const webhook_queue *q, size_t i);
/* Removes the n oldest events. */
void webhook__queue_pop(webhook_queue *q, size_t n);

/* Writes {"events":[the n oldest]} into out (emptied first). Returns 0 or
 * ERR_NOMEM. */
int webhook__batch_body(const webhook_queue *q, size_t n, buf_t *out);

/* "sha256=" + lowercase hex HMAC-SHA256 of body with secret, NUL-ended, in
 * out (at least WEBHOOK_SIG_LEN + 1 bytes). Returns 0 or ERR_INTERNAL. */
#define WEBHOOK_SIG_LEN (7 + 64)
int webhook__sign(const char *secret, const void *body, size_t len, char *out);

/* The delay before retry number `attempt` (1 = the first retry):
 * min_ms * 2^(attempt-1), capped at max_ms. */
uint64_t webhook__backoff_ms(unsigned attempt, uint32_t min_ms, uint32_t max_ms);

#endif
