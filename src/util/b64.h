/* b64.h - standard base64 (RFC 4648, padded) on OpenSSL's EVP block codec. */
#ifndef PARLEY_UTIL_B64_H
#define PARLEY_UTIL_B64_H

#include <stddef.h>
#include <stdint.h>

/* Bytes needed to encode n input bytes, without the NUL. */
#define B64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)

/* Writes B64_ENCODED_LEN(n) characters plus a NUL to out; returns the
 * number of characters (without the NUL). */
size_t b64_encode(const uint8_t *in, size_t n, char *out);

/* Decodes n characters (padding required, no white space) into out, which
 * must hold at least n / 4 * 3 bytes. Returns the decoded length, or -1 when
 * the input is not valid base64. */
long b64_decode(const char *in, size_t n, uint8_t *out);

#endif
