/* ws_handshake.h - the HTTP side of opening a WebSocket (RFC 6455 4.2). */
#ifndef PARLEY_WS_HANDSHAKE_H
#define PARLEY_WS_HANDSHAKE_H

#include <stddef.h>

#include "util/err.h"

#define WS_ACCEPT_LEN 28

/* Validates a Sec-WebSocket-Key (base64 of 16 bytes: 24 characters, padded,
 * in the canonical spelling; the caller strips surrounding white space) and
 * writes the Sec-WebSocket-Accept value (SHA-1 of key + GUID, base64) with a
 * NUL into out. Returns 0, ERR_MALFORMED when the key is malformed, or
 * ERR_INTERNAL when OpenSSL cannot compute SHA-1 (out is then untouched).
 * key need not be NUL-terminated. */
int ws_accept_key(const char *key, size_t key_len, char out[WS_ACCEPT_LEN + 1]);

#endif
