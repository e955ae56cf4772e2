/* sio_packet.h - Socket.IO protocol 5 packets, encoded and decoded, no I/O.
 *
 * Text form: <type>[<attachments>-][<nsp>,][<ack id>][<JSON data>], e.g.
 * `2["chat","hi"]`, `2/admin,13["x"]`, `51-["up",{"_placeholder":true,"num":0}]`.
 * Binary attachments travel as separate Engine.IO binary messages after the
 * text packet; in the JSON they stay as {"_placeholder":true,"num":N}
 * objects: this layer never rebuilds them, the layer above gets the JSON with
 * placeholders and the attachments as a list (and sends them back the same
 * way), so binary data is never copied into JSON. */
#ifndef PARLEY_SIO_PACKET_H
#define PARLEY_SIO_PACKET_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

/* Return codes of this file's functions (see util/err.h). */
#define SIO_PACKET_EMALFORMED ERR_MALFORMED /* not a packet, as the reference judges */
#define SIO_PACKET_ETOODEEP   ERR_LIMITED   /* valid, but nested deeper than we parse */
#define SIO_PACKET_EINVAL     ERR_INVAL     /* cannot be encoded */

typedef enum {
    SIO_CONNECT = 0,
    SIO_DISCONNECT = 1,
    SIO_EVENT = 2,
    SIO_ACK = 3,
    SIO_CONNECT_ERROR = 4,
    SIO_BINARY_EVENT = 5,
    SIO_BINARY_ACK = 6,
} sio_ptype;

/* Attachments one packet may declare; more is a malformed packet. */
#define SIO_MAX_ATTACHMENTS 64

typedef struct {
    sio_ptype type;
    char nsp[128];          /* NUL-terminated, "/" when absent */
    int64_t ack_id;         /* -1 when absent */
    unsigned attachments;   /* binary types only */
    uint8_t too_deep;       /* decoded as SIO_PACKET_ETOODEEP */
    json_t *data;           /* owned reference, NULL when absent */
} sio_packet;

/* Decodes s[0..n). Returns 0 and fills out (the caller owns out->data and
 * releases it with sio_packet_clear), or SIO_PACKET_EMALFORMED with out
 * reset (nsp "/", no ack id, data NULL: nothing to release) when the packet
 * is malformed as the reference parser judges it:
 *   - unknown type, or (binary types) missing/non-numeric attachment count,
 *     or more than SIO_MAX_ATTACHMENTS;
 *   - a namespace not starting with '/', or longer than nsp allows, or
 *     holding a NUL byte or invalid UTF-8;
 *   - an ack id that is not all digits or exceeds 2^53;
 *   - JSON that does not parse, or trailing garbage;
 *   - payload of the wrong shape: CONNECT takes an object or nothing;
 *     DISCONNECT takes nothing; EVENT/BINARY_EVENT a non-empty array whose
 *     first element is a string (the event name); ACK/BINARY_ACK an array;
 *     CONNECT_ERROR an object or a string;
 *   - an ack id on a packet type that cannot carry one (CONNECT,
 *     DISCONNECT, CONNECT_ERROR).
 * JSON strings may contain U+0000 (decoded with JSON_ALLOW_NUL), object keys
 * may not (a jansson limit). Duplicate keys are accepted, the last wins (as
 * JSON.parse). Integers beyond int64 and reals beyond double are refused
 * (jansson), where JSON.parse would round them.
 *
 * Valid JSON nested deeper than jansson parses (JSON_PARSER_MAX_DEPTH),
 * which JSON.parse would read, is not malformed for an event or an ack of
 * the right shape: the call returns SIO_PACKET_ETOODEEP with the header
 * decoded, out->too_deep set and out->data holding only what could be read:
 * [name] for an event (its arguments are dropped), NULL for an ack. The
 * caller releases out with sio_packet_clear as after 0. Binary attachments
 * of such a packet cannot be matched with placeholders (there is no tree to
 * look in). On other packet types such depth is SIO_PACKET_EMALFORMED. */
int sio_packet_decode(const char *s, size_t n, sio_packet *out);

/* Releases out->data; out may be decoded into again. */
void sio_packet_clear(sio_packet *p);

/* Appends the text form to out. nsp NULL, "" or "/" is omitted; ack_id < 0
 * is omitted; attachments are written for binary types only; data NULL is
 * omitted. JSON is compact, as JSON.stringify writes it (no spaces, UTF-8
 * kept, '/' not escaped, reals in the fewest digits that read back exactly).
 * Returns 0, or SIO_PACKET_EINVAL when the packet cannot be encoded: type
 * out of range, nsp not starting with '/' or holding a ',', or data that
 * cannot be written (a string of invalid UTF-8, nesting deeper than twice
 * jansson's parser limit, a cycle); out is left as it was in that case. */
int sio_packet_encode(buf_t *out, sio_ptype type, const char *nsp, int64_t ack_id,
                      unsigned attachments, const json_t *data);

/* Checks the {"_placeholder":true,"num":N} objects in data (recursively):
 * returns 0 when there are exactly `expected` of them numbered
 * 0..expected-1, each once; SIO_PACKET_EMALFORMED when one is malformed,
 * missing, duplicated or out of range. Any object whose "_placeholder" is true is a placeholder,
 * well formed only with exactly those two keys and an integer num. data may
 * be NULL (no placeholders). */
int sio_placeholders_check(const json_t *data, unsigned expected);

#endif
