/* rbuf.h - reference-counted immutable bytes, shared between connections.
 *
 * A broadcast is encoded once into an rbuf and every recipient's output
 * queue holds a reference to the same bytes. Single-threaded: the count is
 * not atomic. */
#ifndef PARLEY_UTIL_RBUF_H
#define PARLEY_UTIL_RBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct rbuf {
    uint32_t refs;
    uint32_t len; /* bytes used in data */
    size_t cap;
    uint8_t data[];
} rbuf_t;

/* A new buffer with one reference held by the caller, len 0, room for cap. */
rbuf_t *rbuf_new(size_t cap);
/* A new buffer holding a copy of p[0..n). */
rbuf_t *rbuf_from(const void *p, size_t n);
static inline rbuf_t *rbuf_ref(rbuf_t *b) { b->refs++; return b; }
/* Drops one reference; frees the buffer with the last one. */
void rbuf_unref(rbuf_t *b);

#endif
