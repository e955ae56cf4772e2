/* tq.h - a deadline queue for timeouts that are the same for everyone.
 *
 * When every entry of a queue gets the same timeout (ping interval, ping
 * timeout, connect timeout), entries pushed later expire later, so a FIFO
 * list is already sorted: push, remove and expire are O(1), with one libuv
 * timer per queue instead of one per connection. A deadline earlier than the
 * tail's is still placed in order (walking back from the tail), so mixed
 * timeouts stay correct, only slower. Nodes are embedded in their owner. */
#ifndef PARLEY_UTIL_TQ_H
#define PARLEY_UTIL_TQ_H

#include <stdint.h>
#include <uv.h>

typedef struct tq_node {
    struct tq_node *prev, *next; /* NULL/NULL when not queued */
    uint64_t deadline;           /* loop time (uv_now), ms */
} tq_node;

typedef struct tq_queue tq_queue;
/* Called for each expired node, already removed from the queue; the
 * callee may push it (or any node) again or free it. */
typedef void (*tq_expire_cb)(tq_queue *q, tq_node *n);

struct tq_queue {
    tq_node head; /* sentinel */
    uv_timer_t timer;
    uint64_t armed; /* deadline the timer is set for, 0 when stopped */
    tq_expire_cb expire;
    void *data;
};

void tq_init(tq_queue *q, uv_loop_t *loop, tq_expire_cb expire, void *data);
/* Stops the timer and closes its handle (the queue must outlive the loop's
 * close callbacks: call before freeing its owner and run the loop once). */
void tq_close(tq_queue *q);
/* Queues n (removing it from any queue first) to expire at `deadline`. */
void tq_push(tq_queue *q, tq_node *n, uint64_t deadline);
void tq_remove(tq_node *n);
static inline int tq_queued(const tq_node *n) { return n->next != NULL; }

#endif
