/* eio_packet.h - Engine.IO protocol 4 packets and polling payloads, no I/O.
 *
 * A packet is a type digit followed by its data. Over WebSocket a text frame
 * carries one text packet and a binary frame carries one binary message (no
 * type byte). Over HTTP long-polling a payload joins packets with the record
 * separator 0x1e, a binary message written as 'b' + base64. */
#ifndef PARLEY_EIO_PACKET_H
#define PARLEY_EIO_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

#define EIO_PACKET_EMALFORMED ERR_MALFORMED /* not a packet or payload */

typedef enum {
    EIO_OPEN = 0,
    EIO_CLOSE = 1,
    EIO_PING = 2,
    EIO_PONG = 3,
    EIO_MESSAGE = 4,
    EIO_UPGRADE = 5,
    EIO_NOOP = 6,
} eio_ptype;

#define EIO_RECORD_SEP '\x1e'

typedef struct {
    eio_ptype type;
    int binary;          /* 1: a binary message (type is EIO_MESSAGE) */
    uint8_t *data;       /* points into the decoded input; not owned */
    size_t len;
} eio_packet;

/* Decodes one text packet s[0..n) (a WebSocket text frame, or one record of a
 * polling payload). Returns 0, or EIO_PACKET_EMALFORMED when s is empty or
 * the type is unknown. s is not modified; a 'b' record is not a text packet
 * (EIO_PACKET_EMALFORMED), only eio_payload_decode reads those. */
int eio_packet_decode(uint8_t *s, size_t n, eio_packet *out);

/* Splits a polling payload and calls cb for each packet, in order. Binary
 * records ('b' + base64) are decoded in place, so body is modified. Stops at
 * the first nonzero return of cb and returns it. Returns 0 when all packets
 * were delivered, or EIO_PACKET_EMALFORMED (before calling cb for any
 * packet, body unchanged) when any record is malformed: empty (so an empty body, or a separator at
 * either end or doubled), unknown type, or bad base64. "b" alone is an empty
 * binary message. */
int eio_payload_decode(uint8_t *body, size_t n,
                       int (*cb)(void *ud, const eio_packet *p), void *ud);

/* Appends one packet to a polling payload being built in out, with the
 * separator when out is not empty. A text packet is the type digit plus
 * data; a binary one is 'b' + base64(data). */
void eio_payload_append(buf_t *out, eio_ptype type, int binary,
                        const uint8_t *data, size_t len);

#endif
