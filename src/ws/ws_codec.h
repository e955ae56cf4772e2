/* ws_codec.h - RFC 6455 WebSocket framing, with no I/O.
 *
 * Bytes in, callbacks out: the connection layer feeds whatever it read and
 * gets whole messages, pings, pongs and close frames back; it encodes frame
 * headers for what it sends. The parser state lives inside each connection
 * and is a single pointer while idle: memory for a partial frame or a
 * fragmented message is allocated only while one is in progress and freed as
 * soon as it completes. Complete frames found in the caller's buffer are
 * unmasked in place and delivered without copying.
 *
 * Server role: frames from the peer must be masked (RFC 6455 5.1); frames
 * we send are not. The client-role encoder (ws_encode_header_masked) is for
 * tests only: tests/unit/test_ws.c builds masked frames with it; the load
 * generator (bench/loadgen) writes its own frames and links nothing of src/. */
#ifndef PARLEY_WS_CODEC_H
#define PARLEY_WS_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

enum {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

/* Close status codes used by the codec. */
enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005,     /* never sent on the wire */
    WS_CLOSE_INVALID_DATA = 1007,  /* invalid UTF-8 in a text message */
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
};

/* Largest frame header: 2 + 8 (length) + 4 (mask). */
#define WS_MAX_HEADER 14

typedef struct ws_parser {
    struct ws_pending *pending; /* NULL while idle */
} ws_parser;

typedef struct {
    /* Largest data message (all fragments) accepted; control frames are held
     * to 125 bytes by the RFC instead. */
    uint64_t max_message;
    /* 1 in the server role; 0 accepts masked and unmasked frames alike. */
    int require_mask;
} ws_limits;

/* Callbacks return 0 to go on, nonzero to stop: ws_parser_feed then returns
 * WS_STOPPED at once and the rest of the input is dropped (the caller is
 * closing the connection). `data` may be modified by the callee and is valid
 * only during the call; it is never NULL, even when len is 0. A NULL
 * callback drops that kind of event. A callback must not feed or free the
 * parser it is called from (returning nonzero is the way to stop). */
typedef struct {
    /* A complete text (UTF-8 already validated) or binary message. */
    int (*on_message)(void *ud, int opcode, uint8_t *data, size_t len);
    int (*on_ping)(void *ud, uint8_t *data, size_t len);
    int (*on_pong)(void *ud, uint8_t *data, size_t len);
    /* code is WS_CLOSE_NO_STATUS (and reason "") when the frame had no body.
     * Otherwise the code is one RFC 6455 7.4 allows and the reason, not
     * NUL-terminated, is valid UTF-8. */
    int (*on_close)(void *ud, uint16_t code, const char *reason, size_t len);
} ws_callbacks;

#define WS_STOPPED ERR_STOPPED

/* Feeds n bytes read from the peer (data is modified: payloads are unmasked
 * in place). Returns 0 when all input was consumed (an incomplete frame is
 * kept in the parser), WS_STOPPED when a callback asked to stop, or a
 * positive close code (WS_CLOSE_PROTOCOL, WS_CLOSE_INVALID_DATA,
 * WS_CLOSE_TOO_BIG) when the peer broke the protocol: the caller sends a close
 * frame with that code and closes; the parser must not be fed again. After
 * any nonzero return the parser has already been reset (it owns no memory);
 * calling ws_parser_reset again is harmless. Events delivered before an error
 * stand. A frame whose header breaks a limit is refused as soon as the header
 * is in, before its payload arrives. */
int ws_parser_feed(ws_parser *p, uint8_t *data, size_t n, const ws_limits *lim,
                   const ws_callbacks *cb, void *ud);

/* Frees whatever the parser holds; it is idle (and reusable) afterwards. */
void ws_parser_reset(ws_parser *p);

/* Writes an unmasked (server) frame header for a payload of len (< 2^63)
 * bytes into out, with the shortest length encoding, and returns its length
 * (2, 4 or 10). */
size_t ws_encode_header(uint8_t out[WS_MAX_HEADER], int opcode, int fin, uint64_t len);

/* Client role, test-only (see the top of this file): writes a masked frame
 * header (with the 4 mask bytes) and returns its length (6, 8 or 14); the
 * caller masks the payload with ws_mask(payload, len, mask, 0). */
size_t ws_encode_header_masked(uint8_t out[WS_MAX_HEADER], int opcode, int fin,
                               uint64_t len, const uint8_t mask[4]);

/* XORs data with the mask, starting at mask byte (offset % 4). */
void ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], size_t offset);

/* Writes a whole close frame (server role) with code and an optional reason
 * (NUL-terminated or NULL; truncated to 123 bytes, at a UTF-8 character
 * boundary) into out, which holds at least 2 + 125 bytes; returns its length.
 * code WS_CLOSE_NO_STATUS writes an empty body and ignores the reason. */
size_t ws_encode_close(uint8_t *out, uint16_t code, const char *reason);

/* 1 if s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int ws_utf8_valid(const uint8_t *s, size_t n);

#endif
