/* buf.h - a growable byte buffer owned by one user (not shared).
 *
 * The bytes are always followed by a NUL that is not counted in `len`, so a
 * buffer holding text can be handed to C string functions. A zeroed buf_t is
 * an empty buffer that owns no memory. */
#ifndef PARLEY_UTIL_BUF_H
#define PARLEY_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} buf_t;

/* Make room for `extra` more bytes; may move `data`. */
void buf_reserve(buf_t *b, size_t extra);
void buf_append(buf_t *b, const void *p, size_t n);
void buf_append_str(buf_t *b, const char *s);
void buf_append_char(buf_t *b, char c);
/* printf-style append. */
void buf_appendf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes. */
void buf_consume(buf_t *b, size_t n);
/* Releases the memory; the buffer is empty and reusable afterwards. */
void buf_free(buf_t *b);
/* Hands the bytes to the caller (who frees them with mem_free); b is empty. */
char *buf_steal(buf_t *b);

#endif
