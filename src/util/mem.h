/* mem.h - the server's allocation policy: abort on out-of-memory.
 *
 * Every allocation the server makes for itself goes through these wrappers,
 * so callers never test for NULL. Libraries that report OOM themselves
 * (jansson, hiredis, sqlite) are checked where they are called. */
#ifndef PARLEY_UTIL_MEM_H
#define PARLEY_UTIL_MEM_H

#include <stddef.h>

/* Never return NULL: on failure they print a message and abort(). */
void *mem_alloc(size_t size);
void *mem_calloc(size_t n, size_t size);
/* Returns the new block; `p` is invalid afterwards (as realloc). */
void *mem_realloc(void *p, size_t size);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);
#define mem_free(p) free(p)

#include <stdlib.h>

/* container_of: from an embedded member back to its struct. */
#define mem_container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

#endif
