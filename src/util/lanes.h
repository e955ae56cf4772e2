/* lanes.h - per-key FIFO lanes: serializing work by key.
 *
 * An item (an operation of the Redis store) joins the lane of each key it
 * touches, at its tail, through a lanes_node it owns (embedded in the item:
 * joining allocates nothing but a lane for a key no item holds yet). It may
 * run when it heads every one of its lanes (lanes_heads). When it is done
 * it leaves them; each lane it left names its new head, which the caller
 * may now start. A lane exists only while an item is in it.
 *
 * Items join lanes in the order they start, so an item waits only for
 * older ones: nothing waits forever as long as every item leaves.
 *
 * Memory: lanes are allocated with mem.h and abort on OOM, like every
 * allocation of the server. Not thread-safe. */
#ifndef PARLEY_UTIL_LANES_H
#define PARLEY_UTIL_LANES_H

#include <stddef.h>

#define LANES_BUCKETS 256

typedef struct lanes_lane lanes_lane;

/* An item's place in one lane; owned by the item, opaque but for item. */
typedef struct lanes_node {
    struct lanes_node *next;
    lanes_lane *lane;
    void *item; /* what lanes_leave returns as the lane's next head */
} lanes_node;

/* Every lane that holds an item, hashed by key. Zero it to initialise. */
typedef struct {
    lanes_lane *buckets[LANES_BUCKETS];
    size_t count; /* lanes that exist */
} lanes_t;

/* Puts item at the tail of the lane of key (a NUL-terminated string,
 * copied), through node, which must stay in place until lanes_leave. */
void lanes_join(lanes_t *l, lanes_node *node, const char *key, void *item);

/* 1 when each of the n nodes heads its lane (the item may run). */
int lanes_heads(const lanes_node *nodes, int n);

/* Takes node, which must head its lane, out of it, freeing the lane when
 * it is empty. Returns the item that now heads the lane, or NULL. */
void *lanes_leave(lanes_t *l, lanes_node *node);

#endif
