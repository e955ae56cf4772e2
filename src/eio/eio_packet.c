/* eio_packet.c - Engine.IO v4 packet and polling-payload codec (see
 * eio_packet.h).
 *
 * Owns the byte-level framing only: the type digit, the 0x1e record
 * separator and the 'b' + base64 form of binary messages in polling bodies.
 * What a packet means (handshake, heartbeat, upgrade) belongs to the session
 * layer above; this file never allocates and never does I/O.
 *
 * A payload is checked in full before the first callback runs, so a body
 * that is malformed anywhere delivers nothing (the reference server closes
 * the session on such a body; delivering half of it first would let the
 * layer above act on packets of a request it then rejects). */
#include "eio/eio_packet.h"

#include <string.h>

#include "util/b64.h"

/* Base64 is decoded in chunks of this many characters through a scratch
 * block on the stack: b64_decode does not promise that its input and output
 * may overlap, and a chunk's output (3/4 of its size) always lands before
 * the next chunk's input, so writing it back into the body is safe. */
#define EIO__B64_CHUNK 1024

/* Decodes the base64 text p[0..n) into p[0..result), or with write == 0
 * only checks it. Returns the decoded length, or EIO_PACKET_EMALFORMED when
 * the text is not what b64_decode accepts as a whole (every chunk but the
 * last must decode to a full 3/4 of its size, which is the same as
 * forbidding padding anywhere but at the very end). */
static long eio__unbase64(uint8_t *p, size_t n, int write)
{
    uint8_t scratch[EIO__B64_CHUNK / 4 * 3];
    size_t in = 0, outlen = 0;

    if (n % 4 != 0)
        return EIO_PACKET_EMALFORMED;
    while (in < n) {
        size_t chunk = n - in < EIO__B64_CHUNK ? n - in : EIO__B64_CHUNK;
        long got = b64_decode((const char *)p + in, chunk, scratch);
        if (got < 0)
            return EIO_PACKET_EMALFORMED;
        if (in + chunk < n && (size_t)got != chunk / 4 * 3)
            return EIO_PACKET_EMALFORMED; /* padding before the last chunk */
        if (write)
            memcpy(p + outlen, scratch, (size_t)got);
        outlen += (size_t)got;
        in += chunk;
    }
    return (long)outlen;
}

int eio_packet_decode(uint8_t *s, size_t n, eio_packet *out)
{
    if (n == 0 || s[0] < '0' || s[0] > '6')
        return EIO_PACKET_EMALFORMED;
    out->type = (eio_ptype)(s[0] - '0');
    out->binary = 0;
    out->data = s + 1;
    out->len = n - 1;
    return 0;
}

/* Checks one record without changing it: 0 when it will decode, else
 * EIO_PACKET_EMALFORMED. */
static int eio__record_check(uint8_t *rec, size_t n)
{
    eio_packet p;

    if (n > 0 && rec[0] == 'b')
        return eio__unbase64(rec + 1, n - 1, 0) < 0 ? EIO_PACKET_EMALFORMED : 0;
    return eio_packet_decode(rec, n, &p);
}

/* Decodes one record already checked by eio__record_check. */
static void eio__record_decode(uint8_t *rec, size_t n, eio_packet *p)
{
    if (rec[0] == 'b') {
        long len = eio__unbase64(rec + 1, n - 1, 1);
        p->type = EIO_MESSAGE;
        p->binary = 1;
        p->data = rec + 1;
        p->len = (size_t)len;
        return;
    }
    eio_packet_decode(rec, n, p);
}

int eio_payload_decode(uint8_t *body, size_t n,
                       int (*cb)(void *ud, const eio_packet *p), void *ud)
{
    uint8_t *end, *rec, *sep;

    if (n == 0)
        return EIO_PACKET_EMALFORMED; /* one empty record */
    end = body + n;

    /* Pass 1: every record must be well formed. An empty body is one empty
     * record (refused above), and a separator at either end or two in a row
     * make an empty record too. */
    rec = body;
    for (;;) {
        sep = memchr(rec, EIO_RECORD_SEP, (size_t)(end - rec));
        size_t len = (size_t)((sep ? sep : end) - rec);
        if (eio__record_check(rec, len) != 0)
            return EIO_PACKET_EMALFORMED;
        if (sep == NULL)
            break;
        rec = sep + 1;
    }

    /* Pass 2: decode and deliver. Binary records shrink in place, but only
     * within their own record, so the separators found here are the same
     * ones pass 1 saw. */
    rec = body;
    for (;;) {
        eio_packet p;
        sep = memchr(rec, EIO_RECORD_SEP, (size_t)(end - rec));
        size_t len = (size_t)((sep ? sep : end) - rec);
        eio__record_decode(rec, len, &p);
        int rc = cb(ud, &p);
        if (rc != 0)
            return rc;
        if (sep == NULL)
            break;
        rec = sep + 1;
    }
    return 0;
}

void eio_payload_append(buf_t *out, eio_ptype type, int binary,
                        const uint8_t *data, size_t len)
{
    if (out->len > 0)
        buf_append_char(out, EIO_RECORD_SEP);
    if (binary) {
        /* Only messages are binary; the type is implied by the 'b'. */
        size_t enc = B64_ENCODED_LEN(len);
        buf_append_char(out, 'b');
        buf_reserve(out, enc); /* room for enc characters and b64's NUL */
        out->len += b64_encode(data, len, out->data + out->len);
        return;
    }
    buf_append_char(out, (char)('0' + (int)type));
    buf_append(out, data, len);
}
