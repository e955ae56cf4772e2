/* b64.h - base64 (RFC 4648): the standard padded form on OpenSSL's EVP
 * block codec, and the URL-safe form without padding (section 5) that
 * JWTs and resume tokens use. */
#ifndef PARLEY_UTIL_B64_H
#define PARLEY_UTIL_B64_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Bytes needed to encode n input bytes, without the NUL. */
#define B64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)

/* Writes B64_ENCODED_LEN(n) characters plus a NUL to out; returns the
 * number of characters (without the NUL). */
size_t b64_encode(const uint8_t *in, size_t n, char *out);

/* Decodes n characters (padding required, no white space) into out, which
 * must hold at least n / 4 * 3 bytes. Returns the decoded length, or -1 when
 * the input is not valid base64. */
long b64_decode(const char *in, size_t n, uint8_t *out);

/* Characters the URL-safe form of n bytes takes (no padding, no NUL). */
#define B64URL_ENCODED_LEN(n) (((n) * 4 + 2) / 3)
/* Bytes b64url_decode may write for n characters. */
#define B64URL_DECODED_MAX(n) ((n) / 4 * 3 + 2)

/* Writes the URL-safe base64 of in[0..n) to out (B64URL_ENCODED_LEN(n)
 * characters, no padding, no NUL); returns the number written. */
size_t b64url_encode(const uint8_t *in, size_t n, char *out);

/* Decodes in[0..n) (URL-safe alphabet, no padding) into out, which holds
 * B64URL_DECODED_MAX(n) bytes. Returns the decoded length, or ERR_MALFORMED
 * for a character outside the alphabet ('=' included), an impossible
 * length (n % 4 == 1) or non-zero unused bits in the last character (which
 * would let two strings decode alike). */
long b64url_decode(const char *in, size_t n, uint8_t *out);

#endif
