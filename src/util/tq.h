/* tq.h - a deadline queue for timeouts that are the same for everyone.
 *
 * When every entry of a queue gets the same timeout (ping interval, ping
 * timeout, connect timeout), entries pushed later expire later, so a FIFO
 * list is already sorted: push, remove and expire are O(1), with one libuv
 * timer per queue instead of one per connection. A deadline earlier than the
 * tail's is still placed in order (walking back from the tail), so mixed
 * timeouts stay correct, only slower. Nodes are embedded in their owner,
 * or (tq_owned) allocated only while queued. */
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

/* A node held outside its owner and allocated only while queued, for
 * owners that are rarely queued (a connected client's CONNECT timer, an
 * upgraded connection's HTTP deadline): an embedded node would cost every
 * owner its bytes. The owner keeps a tq_owned * slot, NULL while not
 * queued; the node is the queue's own (free it with tq_owned_cancel, or
 * take it back in the expire callback with tq_owned_expired). */
typedef struct tq_owned {
    tq_node node;
    void *owner;
    struct tq_owned **slot; /* the owner's pointer to it */
} tq_owned;

/* Queues owner's node (allocated into *slot if it is NULL) to expire at
 * `deadline`. */
void tq_owned_push(tq_queue *q, tq_owned **slot, void *owner, uint64_t deadline);
/* Takes owner's node out of its queue and frees it; *slot becomes NULL.
 * Nothing when *slot is NULL. */
void tq_owned_cancel(tq_owned **slot);
/* In an expire callback, for a node pushed by tq_owned_push: frees it,
 * clears its owner's slot and returns the owner. */
void *tq_owned_expired(tq_node *n);

#endif
