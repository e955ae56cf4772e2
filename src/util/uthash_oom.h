/* uthash_oom.h - uthash and utlist on the server's out-of-memory policy
 * (util/mem.h: the server's own allocations abort on OOM).
 *
 * Include this instead of <uthash.h>: uthash then allocates its tables and
 * buckets with mem_alloc, which aborts rather than return NULL, so no
 * HASH_ADD can fail and callers never check one. uthash_fatal, its own
 * last resort, aborts the same way should it ever be reached. A module
 * that includes <uthash.h> directly gets plain malloc and uthash's exit(-1)
 * on OOM instead: no module of src/ does (each includes this one through
 * its internal header), so that the whole server has one policy for all
 * of its allocations. */
#ifndef PARLEY_UTIL_UTHASH_OOM_H
#define PARLEY_UTIL_UTHASH_OOM_H

#include <stdio.h>
#include <stdlib.h>

#include "util/mem.h"

#ifdef HASH_ADD
#error "util/uthash_oom.h must come before any other include of uthash.h"
#endif

#define uthash_malloc(sz) mem_alloc(sz)
#define uthash_free(ptr, sz) mem_free(ptr)
#define uthash_fatal(msg)                                    \
    do {                                                     \
        fprintf(stderr, "parley: uthash: %s\n", (msg));      \
        abort();                                             \
    } while (0)

#include <uthash.h>
#include <utlist.h>

#endif
