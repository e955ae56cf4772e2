/* rbuf.c - reference-counted shared bytes (see rbuf.h). */
#include "util/rbuf.h"
#include "util/mem.h"

#include <string.h>

rbuf_t *rbuf_new(size_t cap)
{
    rbuf_t *b = mem_alloc(sizeof(*b) + cap);
    b->refs = 1;
    b->len = 0;
    b->cap = cap;
    return b;
}

rbuf_t *rbuf_from(const void *p, size_t n)
{
    rbuf_t *b = rbuf_new(n);
    if (n)
        memcpy(b->data, p, n);
    b->len = (uint32_t)n;
    return b;
}

void rbuf_unref(rbuf_t *b)
{
    if (b && --b->refs == 0)
        mem_free(b);
}
