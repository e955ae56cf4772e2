/* sio_packet.c - Socket.IO v5 packet codec (see sio_packet.h).
 *
 * Owns the text form of one Socket.IO packet: the header fields (type,
 * attachment count, namespace, ack id) and the JSON payload, plus the check
 * that a binary packet's placeholders match its attachment count. Decoding
 * follows the reference socket.io-parser (decodeString + isPayloadValid),
 * made stricter where the reference relies on JavaScript number coercion:
 * counts and ack ids are plain decimal digits. What a packet means (joining a
 * namespace, calling an ack) belongs to the layer above.
 *
 * Payloads are parsed by jansson and written by this file's own compact
 * JSON writer (see "JSON writer" below for why). Memory: jansson reports
 * OOM itself; a failed json_loadb is treated as a malformed packet, except
 * for jansson's depth limit, where a syntax scan tells valid JSON too deep
 * to build from broken JSON (see "JSON too deep for jansson" below). */
#include "sio/sio_packet.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

/* Largest ack id accepted: 2^53, beyond which a JavaScript peer could not
 * hold the number exactly. */
#define SIO__MAX_ACK_ID 9007199254740992LL

/* Recursion bound for the tree walks below. Decoded data is never deeper
 * than jansson's parser allows (JSON_PARSER_MAX_DEPTH); the margin covers
 * trees the layer above builds around decoded data. */
#define SIO__MAX_DEPTH (2 * JSON_PARSER_MAX_DEPTH)

static int sio__is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int sio__is_binary(sio_ptype t)
{
    return t == SIO_BINARY_EVENT || t == SIO_BINARY_ACK;
}

/* Strict UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF); 1 when s[0..n) is valid. The namespace is the one header field
 * that is text, and the layer above echoes it into JSON. */
static int sio__utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t more;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            more = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return 0;
        }
        if (n - i - 1 < more)
            return 0;
        for (size_t k = 1; k <= more; k++) {
            unsigned char d = s[i + k];
            if (k == 1 ? (d < lo || d > hi) : (d < 0x80 || d > 0xbf))
                return 0;
        }
        i += more + 1;
    }
    return 1;
}

static void sio__reset(sio_packet *p)
{
    p->type = SIO_CONNECT;
    p->nsp[0] = '/';
    p->nsp[1] = '\0';
    p->ack_id = -1;
    p->attachments = 0;
    p->too_deep = 0;
    p->data = NULL;
}

/* The reference isPayloadValid, plus the ack-id rule of the header. */
static int sio__shape_ok(const sio_packet *p, const json_t *data)
{
    switch (p->type) {
    case SIO_CONNECT:
        return p->ack_id < 0 && (data == NULL || json_is_object(data));
    case SIO_DISCONNECT:
        return p->ack_id < 0 && data == NULL;
    case SIO_CONNECT_ERROR:
        return p->ack_id < 0 && (json_is_object(data) || json_is_string(data));
    case SIO_EVENT:
    case SIO_BINARY_EVENT:
        return json_is_array(data) && json_is_string(json_array_get(data, 0));
    case SIO_ACK:
    case SIO_BINARY_ACK:
        return json_is_array(data);
    }
    return 0;
}

/* --- JSON too deep for jansson --------------------------------------------
 *
 * jansson refuses nesting deeper than JSON_PARSER_MAX_DEPTH with the same
 * failure as broken JSON. JSON.parse has no such limit, so a client may
 * send valid JSON that we cannot build; the contract calls that a malformed
 * payload, answered as such, not a broken packet. When jansson reports its
 * depth limit, the payload is checked here without building anything (an
 * explicit stack, no recursion) and, for an event, its name is read back;
 * the arguments are not. */

typedef struct {
    const unsigned char *p;
    size_t n, i;
} sio__scan;

static void sio__scan_ws(sio__scan *sc)
{
    while (sc->i < sc->n && (sc->p[sc->i] == ' ' || sc->p[sc->i] == '\t' ||
                             sc->p[sc->i] == '\n' || sc->p[sc->i] == '\r'))
        sc->i++;
}

static int sio__is_hex(unsigned char c)
{
    return sio__is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string at sc->i (UTF-8 was checked beforehand); 0 when malformed. */
static int sio__scan_string(sio__scan *sc)
{
    if (sc->i >= sc->n || sc->p[sc->i] != '"')
        return 0;
    sc->i++;
    while (sc->i < sc->n) {
        unsigned char c = sc->p[sc->i++];
        if (c == '"')
            return 1;
        if (c < 0x20)
            return 0;
        if (c != '\\')
            continue;
        if (sc->i >= sc->n)
            return 0;
        c = sc->p[sc->i++];
        if (c == 'u') {
            for (int k = 0; k < 4; k++, sc->i++)
                if (sc->i >= sc->n || !sio__is_hex(sc->p[sc->i]))
                    return 0;
        } else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
            return 0;
        }
    }
    return 0;
}

/* Digits at sc->i: how many. */
static size_t sio__scan_digits(sio__scan *sc)
{
    size_t start = sc->i;
    while (sc->i < sc->n && sio__is_digit(sc->p[sc->i]))
        sc->i++;
    return sc->i - start;
}

/* A number, string or literal at sc->i; 0 when there is none. */
static int sio__scan_scalar(sio__scan *sc)
{
    static const char *const lits[] = {"true", "false", "null"};
    unsigned char c = sc->p[sc->i];
    if (c == '"')
        return sio__scan_string(sc);
    for (size_t k = 0; k < 3; k++) {
        size_t len = strlen(lits[k]);
        if (sc->n - sc->i >= len && memcmp(sc->p + sc->i, lits[k], len) == 0) {
            sc->i += len;
            return 1;
        }
    }
    if (c == '-')
        sc->i++;
    if (sc->i < sc->n && sc->p[sc->i] == '0')
        sc->i++;
    else if (sio__scan_digits(sc) == 0)
        return 0;
    if (sc->i < sc->n && sc->p[sc->i] == '.') {
        sc->i++;
        if (sio__scan_digits(sc) == 0)
            return 0;
    }
    if (sc->i < sc->n && (sc->p[sc->i] == 'e' || sc->p[sc->i] == 'E')) {
        sc->i++;
        if (sc->i < sc->n && (sc->p[sc->i] == '+' || sc->p[sc->i] == '-'))
            sc->i++;
        if (sio__scan_digits(sc) == 0)
            return 0;
    }
    return 1;
}

/* An object key and its ':' at sc->i; 0 when malformed. */
static int sio__scan_key(sio__scan *sc)
{
    sio__scan_ws(sc);
    if (!sio__scan_string(sc))
        return 0;
    sio__scan_ws(sc);
    if (sc->i >= sc->n || sc->p[sc->i] != ':')
        return 0;
    sc->i++;
    return 1;
}

/* Returns 1 when s[0..n) is one JSON value (RFC 8259, any depth), with
 * whitespace around it; *top gets its first byte. When it is an array,
 * first[0..2) gets the span of its first element ({0,0} when empty). */
static int sio__json_valid(const char *s, size_t n, char *top, size_t first[2])
{
    sio__scan sc = {(const unsigned char *)s, n, 0};
    char *stack = mem_alloc(n + 1); /* '[' or '{' per open level */
    size_t depth = 0;
    int ok = 0, first_done = 0;

    first[0] = first[1] = 0;
    if (!sio__utf8_valid(sc.p, n))
        goto out;
    sio__scan_ws(&sc);
    *top = sc.i < n ? s[sc.i] : '\0';
    for (;;) {
        /* A value at sc.i. */
        sio__scan_ws(&sc);
        if (sc.i >= n)
            goto out;
        if (depth == 1 && stack[0] == '[' && !first_done)
            first[0] = sc.i;
        char c = s[sc.i];
        if (c == '[' || c == '{') {
            sc.i++;
            stack[depth++] = c;
            sio__scan_ws(&sc);
            if (sc.i < n && s[sc.i] == (c == '[' ? ']' : '}')) {
                sc.i++;
                depth--;
            } else {
                if (c == '{' && !sio__scan_key(&sc))
                    goto out;
                continue;
            }
        } else if (!sio__scan_scalar(&sc)) {
            goto out;
        }
        /* After a value: close levels until a ',' asks for the next one. */
        for (;;) {
            if (depth == 1 && stack[0] == '[' && !first_done) {
                first[1] = sc.i;
                first_done = 1;
            }
            sio__scan_ws(&sc);
            if (depth == 0) {
                ok = sc.i == n;
                goto out;
            }
            if (sc.i >= n)
                goto out;
            char open = stack[depth - 1];
            if (s[sc.i] == ',') {
                sc.i++;
                if (open == '{' && !sio__scan_key(&sc))
                    goto out;
                break;
            }
            if (s[sc.i] != (open == '[' ? ']' : '}'))
                goto out;
            sc.i++;
            depth--;
        }
    }
out:
    mem_free(stack);
    return ok;
}

/* The payload s[0..n) of out (its header decoded) is too deep for jansson.
 * Returns SIO_PACKET_ETOODEEP with out->too_deep set and, for an event,
 * out->data = [name], when it is valid JSON of the right shape; else
 * SIO_PACKET_EMALFORMED (out untouched: the caller resets it). */
static int sio__decode_deep(const char *s, size_t n, sio_packet *out)
{
    char top;
    size_t first[2];
    json_error_t err;
    int event = out->type == SIO_EVENT || out->type == SIO_BINARY_EVENT;
    int ack = out->type == SIO_ACK || out->type == SIO_BINARY_ACK;

    if (!(event || ack) || !sio__json_valid(s, n, &top, first) || top != '[')
        return SIO_PACKET_EMALFORMED;
    if (event) {
        json_t *name = first[1] > first[0]
                           ? json_loadb(s + first[0], first[1] - first[0],
                                        JSON_DECODE_ANY | JSON_ALLOW_NUL, &err)
                           : NULL;
        if (!json_is_string(name)) {
            json_decref(name);
            return SIO_PACKET_EMALFORMED;
        }
        out->data = json_array();
        if (json_array_append_new(out->data, name) != 0) { /* takes name either way */
            json_decref(out->data);
            out->data = NULL;
            return SIO_PACKET_EMALFORMED;
        }
    }
    out->too_deep = 1;
    return SIO_PACKET_ETOODEEP;
}

/* --- decoding ------------------------------------------------------------ */

/* The header of s[0..n) into out: type, attachment count, namespace and ack
 * id. Returns the offset of the JSON data (n when there is none), or
 * SIO_PACKET_EMALFORMED when the header is malformed. */
static ptrdiff_t sio__decode_header(const unsigned char *p, size_t n, sio_packet *out)
{
    size_t i;

    if (n == 0 || p[0] < '0' || p[0] > '6')
        return SIO_PACKET_EMALFORMED;
    out->type = (sio_ptype)(p[0] - '0');
    i = 1;

    /* <attachments>- : at least one digit, then '-'. */
    if (sio__is_binary(out->type)) {
        size_t start = i;
        unsigned count = 0;
        while (i < n && sio__is_digit(p[i])) {
            count = count * 10 + (unsigned)(p[i] - '0');
            if (count > SIO_MAX_ATTACHMENTS)
                return SIO_PACKET_EMALFORMED;
            i++;
        }
        if (i == start || i == n || p[i] != '-')
            return SIO_PACKET_EMALFORMED;
        out->attachments = count;
        i++;
    }

    /* <nsp>, : from '/' to the first ',' or to the end of the packet. */
    if (i < n && p[i] == '/') {
        const unsigned char *comma = memchr(p + i, ',', n - i);
        size_t end = comma ? (size_t)(comma - p) : n;
        size_t len = end - i;
        if (len >= sizeof(out->nsp) || memchr(p + i, '\0', len) != NULL ||
            !sio__utf8_valid(p + i, len))
            return SIO_PACKET_EMALFORMED;
        memcpy(out->nsp, p + i, len);
        out->nsp[len] = '\0';
        i = comma ? end + 1 : n;
    }

    /* <ack id> : the run of digits that follows. Anything else that is not
     * JSON fails later, as in the reference. */
    if (i < n && sio__is_digit(p[i])) {
        int64_t id = 0;
        while (i < n && sio__is_digit(p[i])) {
            id = id * 10 + (p[i] - '0');
            if (id > SIO__MAX_ACK_ID)
                return SIO_PACKET_EMALFORMED;
            i++;
        }
        out->ack_id = id;
    }
    return (ptrdiff_t)i;
}

int sio_packet_decode(const char *s, size_t n, sio_packet *out)
{
    json_t *data = NULL;
    json_error_t err;

    sio__reset(out);
    ptrdiff_t at = sio__decode_header((const unsigned char *)s, n, out);
    if (at < 0)
        goto fail;
    size_t i = (size_t)at;

    /* <data> : one JSON value up to the end, duplicate keys allowed (the
     * last one wins, as in JSON.parse). */
    if (i < n) {
        data = json_loadb(s + i, n - i, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (data == NULL && json_error_code(&err) == json_error_stack_overflow &&
            sio__decode_deep(s + i, n - i, out) == SIO_PACKET_ETOODEEP)
            return SIO_PACKET_ETOODEEP;
        if (data == NULL)
            goto fail;
    }
    if (!sio__shape_ok(out, data))
        goto fail;
    out->data = data;
    return 0;

fail:
    json_decref(data);
    sio__reset(out);
    return SIO_PACKET_EMALFORMED;
}

void sio_packet_clear(sio_packet *p)
{
    json_decref(p->data);
    p->data = NULL;
}

/* --- encoding ------------------------------------------------------------ */

static int sio__real_roundtrips(double v, int digits)
{
    /* %.17g needs at most 24 bytes; the size quiets the compiler, which
     * assumes any precision at -O1. */
    char tmp[320];
    snprintf(tmp, sizeof(tmp), "%.*g", digits, v);
    return strtod(tmp, NULL) == v;
}

/* Significant digits jansson must print v with (at least `cur`): the fewest
 * that read back as v, as JavaScript prints numbers, and enough to write a
 * whole number without an exponent while it fits in 17 digits (100.0 as
 * "100.0", not "1e2"). Round-tripping is monotonic in the digit count, so a
 * binary search finds the fewest. */
static int sio__real_digits(double v, int cur)
{
    double a = v < 0 ? -v : v;
    int whole = 1;
    if (a < 1e17) {
        while (a >= 10) {
            a /= 10;
            whole++;
        }
    }
    if (whole > cur)
        cur = whole;
    if (sio__real_roundtrips(v, cur))
        return cur;
    int lo = cur + 1, hi = 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (sio__real_roundtrips(v, mid))
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* --- JSON writer ----------------------------------------------------------
 *
 * Compact JSON as JSON.stringify writes it, straight into the buffer. It
 * replaces jansson's json_dump_callback, which a profile of the chat's
 * private messages put at a fifth of the server's user-space instructions
 * (a callback per fragment, a UTF-8 decode per character of every string).
 * The output is what jansson wrote with JSON_COMPACT: keys in insertion
 * order, UTF-8 kept, '/' not escaped, '"', '\\' and control characters
 * escaped (\b \f \n \r \t, else \u00XX), except that every real gets the
 * fewest digits that read back as it, where one jansson dump had one
 * precision for all. Fails (SIO_PACKET_EINVAL) on invalid UTF-8 (strings made without
 * jansson's check) and on a tree deeper than SIO__MAX_DEPTH (a cycle). */

/* Decimal digits of v (any int64) at the end of tmp[20]; returns where
 * they start. */
static char *sio__int_digits(int64_t v, char tmp[21])
{
    char *p = tmp + 21;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    return p;
}

static void sio__write_int(buf_t *out, int64_t v)
{
    char tmp[21];
    char *p = sio__int_digits(v, tmp);
    buf_append(out, p, (size_t)(tmp + 21 - p));
}

/* v as jansson writes a real: %g with the fewest digits that read back,
 * ".0" added to a whole number, no '+' or leading zeros in the exponent. */
static void sio__write_real(buf_t *out, double v)
{
    char tmp[40];
    int n = snprintf(tmp, sizeof(tmp), "%.*g", sio__real_digits(v, 1), v);
    if (n <= 0 || (size_t)n >= sizeof(tmp) - 2)
        return;
    char *e = strchr(tmp, 'e');
    if (e == NULL) {
        if (strchr(tmp, '.') == NULL) {
            memcpy(tmp + n, ".0", 3);
            n += 2;
        }
    } else {
        char *d = e + 1, *src = e + 1;
        if (*src == '+')
            src++;
        else if (*src == '-')
            *d++ = *src++;
        while (*src == '0' && src[1] != '\0')
            src++;
        memmove(d, src, strlen(src) + 1);
        n = (int)strlen(tmp);
    }
    buf_append(out, tmp, (size_t)n);
}

/* s[0..n) as a JSON string. Returns 0, or SIO_PACKET_EINVAL for invalid
 * UTF-8. */
static int sio__write_string(buf_t *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)s;
    if (!sio__utf8_valid(u, n))
        return SIO_PACKET_EINVAL;
    buf_reserve(out, n + 2);
    buf_append_char(out, '"');
    size_t run = 0; /* start of the bytes not written yet */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = u[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_append(out, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        buf_append(out, esc, len);
    }
    buf_append(out, s + run, n - run);
    buf_append_char(out, '"');
    return 0;
}

static int sio__write_json(buf_t *out, const json_t *j, int depth)
{
    if (depth > SIO__MAX_DEPTH)
        return SIO_PACKET_EINVAL;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        /* jansson's iterators take a non-const object but do not modify it */
        json_t *o = (json_t *)j;
        buf_append_char(out, '{');
        int first = 1;
        for (void *it = json_object_iter(o); it != NULL; it = json_object_iter_next(o, it)) {
            if (!first)
                buf_append_char(out, ',');
            first = 0;
            if (sio__write_string(out, json_object_iter_key(it), json_object_iter_key_len(it)))
                return SIO_PACKET_EINVAL;
            buf_append_char(out, ':');
            if (sio__write_json(out, json_object_iter_value(it), depth + 1) != 0)
                return SIO_PACKET_EINVAL;
        }
        buf_append_char(out, '}');
        return 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        buf_append_char(out, '[');
        for (size_t k = 0; k < n; k++) {
            if (k > 0)
                buf_append_char(out, ',');
            if (sio__write_json(out, json_array_get(j, k), depth + 1) != 0)
                return SIO_PACKET_EINVAL;
        }
        buf_append_char(out, ']');
        return 0;
    }
    case JSON_STRING:
        return sio__write_string(out, json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        sio__write_int(out, (int64_t)json_integer_value(j));
        return 0;
    case JSON_REAL:
        sio__write_real(out, json_real_value(j));
        return 0;
    case JSON_TRUE:
        buf_append(out, "true", 4);
        return 0;
    case JSON_FALSE:
        buf_append(out, "false", 5);
        return 0;
    case JSON_NULL:
        buf_append(out, "null", 4);
        return 0;
    }
    return SIO_PACKET_EINVAL;
}

int sio_packet_encode(buf_t *out, sio_ptype type, const char *nsp, int64_t ack_id,
                      unsigned attachments, const json_t *data)
{
    size_t mark = out->len;

    if ((int)type < SIO_CONNECT || (int)type > SIO_BINARY_ACK)
        return SIO_PACKET_EINVAL;
    if (nsp != NULL && (nsp[0] == '\0' || strcmp(nsp, "/") == 0))
        nsp = NULL;
    /* A namespace this packet could not be decoded back into. */
    if (nsp != NULL && (nsp[0] != '/' || strchr(nsp, ',') != NULL))
        return SIO_PACKET_EINVAL;

    buf_append_char(out, (char)('0' + (int)type));
    if (sio__is_binary(type)) {
        sio__write_int(out, attachments);
        buf_append_char(out, '-');
    }
    if (nsp != NULL) {
        buf_append_str(out, nsp);
        buf_append_char(out, ',');
    }
    if (ack_id >= 0)
        sio__write_int(out, ack_id);
    if (data != NULL && sio__write_json(out, data, 0) != 0)
        goto fail;
    return 0;

fail:
    out->len = mark;
    out->data[mark] = '\0';
    return SIO_PACKET_EINVAL;
}

/* --- placeholders -------------------------------------------------------- */

/* Returns 1 when j is a placeholder ({"_placeholder":true,...}), 0 when it
 * is not; *num gets its index, or -1 when the placeholder is malformed
 * (other keys, or num not an integer). */
static int sio__placeholder(const json_t *j, json_int_t *num)
{
    if (!json_is_object(j) || !json_is_true(json_object_get(j, "_placeholder")))
        return 0;
    const json_t *n = json_object_get(j, "num");
    *num = (json_object_size(j) == 2 && json_is_integer(n)) ? json_integer_value(n) : -1;
    return 1;
}

/* Counts the placeholders in j into *count and, when seen is not NULL,
 * marks them in the bitmap seen. Returns SIO_PACKET_EMALFORMED on a malformed, out of range
 * (>= expected) or (with seen) duplicated one, or a tree too deep. */
static int sio__ph_walk(const json_t *j, unsigned expected, unsigned char *seen,
                        unsigned *count, int depth)
{
    json_int_t num;

    if (depth > SIO__MAX_DEPTH)
        return SIO_PACKET_EMALFORMED;
    if (sio__placeholder(j, &num)) {
        if (num < 0 || num >= (json_int_t)expected)
            return SIO_PACKET_EMALFORMED;
        if (seen != NULL) {
            unsigned char bit = (unsigned char)(1u << (num % 8));
            if (seen[num / 8] & bit)
                return SIO_PACKET_EMALFORMED;
            seen[num / 8] |= bit;
        }
        ++*count;
        return 0;
    }
    if (json_is_array(j)) {
        for (size_t k = 0; k < json_array_size(j); k++)
            if (sio__ph_walk(json_array_get(j, k), expected, seen, count, depth + 1) != 0)
                return SIO_PACKET_EMALFORMED;
    } else if (json_is_object(j)) {
        void *it = json_object_iter((json_t *)j);
        for (; it != NULL; it = json_object_iter_next((json_t *)j, it))
            if (sio__ph_walk(json_object_iter_value(it), expected, seen, count,
                             depth + 1) != 0)
                return SIO_PACKET_EMALFORMED;
    }
    return 0;
}

int sio_placeholders_check(const json_t *data, unsigned expected)
{
    unsigned char small[64];
    unsigned char *seen = small;
    unsigned count = 0;
    int rc = SIO_PACKET_EMALFORMED;

    /* First count: a wrong total needs no bitmap, and a right one bounds
     * the bitmap by the size of the tree, not by `expected`. */
    if (data != NULL && sio__ph_walk(data, expected, NULL, &count, 0) != 0)
        return SIO_PACKET_EMALFORMED;
    if (count != expected)
        return SIO_PACKET_EMALFORMED;
    if (expected == 0)
        return 0;

    /* Then look for duplicates; `expected` distinct indexes below
     * `expected` are all of 0..expected-1. */
    size_t bytes = (expected + 7) / 8;
    if (bytes > sizeof(small))
        seen = mem_calloc(bytes, 1);
    else
        memset(small, 0, sizeof(small));
    count = 0;
    if (sio__ph_walk(data, expected, seen, &count, 0) != 0)
        goto cleanup;
    rc = 0;

cleanup:
    if (seen != small)
        mem_free(seen);
    return rc;
}
