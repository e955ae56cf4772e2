/* ws_codec.c - RFC 6455 framing without I/O (see ws_codec.h).
 *
 * Owns the frame parser, the header and close-frame encoders and the UTF-8
 * validator. The parser works on the caller's buffer: a frame that is wholly
 * present there is unmasked in place and handed to the callbacks without a
 * copy. Only two things ever go to the heap, both in struct ws_pending: the
 * tail of a frame cut off by the end of the input, and the fragments of a
 * message that is not finished yet. The struct exists only while one of them
 * does; ws_parser_feed frees it before returning once both are gone.
 *
 * Memory policy: abort on OOM (util/mem.h); nothing here reports it. */
#include "ws/ws_codec.h"

#include <string.h>

#include "util/mem.h"

#define WS__MAX_CONTROL 125

typedef struct {
    uint8_t opcode;
    uint8_t fin;
    uint8_t rsv; /* the RSV1-3 bits, left in place (mask 0x70) */
    uint8_t masked;
    uint8_t mask[4];
    uint64_t len;
} ws__frame;

struct ws_pending {
    /* A frame cut off by the end of the input. While its header is
     * incomplete, the header bytes seen so far are in hdr; afterwards
     * in_payload is set and `got` counts the payload bytes received. A data
     * payload goes straight into msg, a control payload into ctl. */
    uint8_t hdr[WS_MAX_HEADER];
    uint8_t hdr_len;
    uint8_t in_payload;
    ws__frame frame;
    uint64_t got;
    uint8_t ctl[WS__MAX_CONTROL];

    /* The message being assembled: msg_op is WS_OP_TEXT or WS_OP_BINARY
     * while one is in progress and 0 otherwise; utf8 is the validator state
     * carried from one fragment to the next. */
    uint8_t msg_op;
    uint32_t utf8;
    uint8_t *msg;
    size_t msg_len;
    size_t msg_cap;
};

/* ---- UTF-8 -------------------------------------------------------------- */

/* The validator state packs what the next byte must be: the number of
 * continuation bytes still owed (bits 0-7) and the range the next one must
 * fall in (low bound bits 8-15, high bound bits 16-23). Narrow first ranges
 * are how overlongs (E0, F0), surrogates (ED) and values above U+10FFFF (F4)
 * are refused. 0 means "between characters". */
#define WS__UTF8_STATE(need, lo, hi) ((uint32_t)(need) | (uint32_t)(lo) << 8 | (uint32_t)(hi) << 16)

/* Advances *state over s[0..n). Returns 0, or ERR_BADUTF8 at the first byte
 * that cannot continue valid UTF-8 (*state is then meaningless). */
static int ws__utf8_step(uint32_t *state, const uint8_t *s, size_t n)
{
    uint32_t st = *state;
    size_t i = 0;

    while (i < n) {
        if (st == 0) {
            /* ASCII runs are the common case: skip them eight at a time. */
            while (n - i >= 8) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & UINT64_C(0x8080808080808080))
                    break;
                i += 8;
            }
            if (i == n)
                break;
            uint8_t c = s[i++];
            if (c < 0x80)
                continue;
            if (c >= 0xC2 && c <= 0xDF)
                st = WS__UTF8_STATE(1, 0x80, 0xBF);
            else if (c == 0xE0)
                st = WS__UTF8_STATE(2, 0xA0, 0xBF);
            else if (c == 0xED)
                st = WS__UTF8_STATE(2, 0x80, 0x9F);
            else if (c >= 0xE1 && c <= 0xEF)
                st = WS__UTF8_STATE(2, 0x80, 0xBF);
            else if (c == 0xF0)
                st = WS__UTF8_STATE(3, 0x90, 0xBF);
            else if (c >= 0xF1 && c <= 0xF3)
                st = WS__UTF8_STATE(3, 0x80, 0xBF);
            else if (c == 0xF4)
                st = WS__UTF8_STATE(3, 0x80, 0x8F);
            else
                return ERR_BADUTF8;
        } else {
            uint8_t c = s[i++];
            if (c < ((st >> 8) & 0xFF) || c > ((st >> 16) & 0xFF))
                return ERR_BADUTF8;
            uint32_t need = (st & 0xFF) - 1;
            st = need ? WS__UTF8_STATE(need, 0x80, 0xBF) : 0;
        }
    }
    *state = st;
    return 0;
}

int ws_utf8_valid(const uint8_t *s, size_t n)
{
    uint32_t st = 0;
    return ws__utf8_step(&st, s, n) == 0 && st == 0;
}

/* ---- encoding ----------------------------------------------------------- */

size_t ws_encode_header(uint8_t out[WS_MAX_HEADER], int opcode, int fin, uint64_t len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

size_t ws_encode_header_masked(uint8_t out[WS_MAX_HEADER], int opcode, int fin,
                               uint64_t len, const uint8_t mask[4])
{
    size_t n = ws_encode_header(out, opcode, fin, len);
    out[1] |= 0x80;
    memcpy(out + n, mask, 4);
    return n + 4;
}

void ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], size_t offset)
{
    /* Eight bytes at a time with the mask rotated to the starting phase; as
     * 8 is a multiple of 4 the phase is the same for the tail. */
    uint8_t m[8];
    for (size_t i = 0; i < 8; i++)
        m[i] = mask[(offset + i) & 3];
    uint64_t m64;
    memcpy(&m64, m, 8);
    size_t i = 0;
    for (; len - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, data + i, 8);
        w ^= m64;
        memcpy(data + i, &w, 8);
    }
    for (size_t j = 0; i < len; i++, j++)
        data[i] ^= m[j];
}

size_t ws_encode_close(uint8_t *out, uint16_t code, const char *reason)
{
    if (code == WS_CLOSE_NO_STATUS)
        return ws_encode_header(out, WS_OP_CLOSE, 1, 0);

    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > WS__MAX_CONTROL - 2) {
        /* Cut before the character that straddles the limit so that the
         * reason stays valid UTF-8 (peers fail the connection otherwise). */
        rlen = WS__MAX_CONTROL - 2;
        while (rlen > 0 && ((uint8_t)reason[rlen] & 0xC0) == 0x80)
            rlen--;
    }
    size_t n = ws_encode_header(out, WS_OP_CLOSE, 1, 2 + rlen);
    out[n++] = (uint8_t)(code >> 8);
    out[n++] = (uint8_t)code;
    if (rlen)
        memcpy(out + n, reason, rlen);
    return n + rlen;
}

/* ---- parser: state ------------------------------------------------------ */

static struct ws_pending *ws__pending(ws_parser *p)
{
    if (p->pending == NULL)
        p->pending = mem_calloc(1, sizeof(*p->pending));
    return p->pending;
}

/* Frees the pending state once it holds neither a frame nor a message. */
static void ws__release_if_idle(ws_parser *p)
{
    struct ws_pending *pd = p->pending;
    if (pd && pd->hdr_len == 0 && !pd->in_payload && pd->msg_op == 0)
        ws_parser_reset(p);
}

void ws_parser_reset(ws_parser *p)
{
    if (p->pending) {
        mem_free(p->pending->msg);
        mem_free(p->pending);
        p->pending = NULL;
    }
}

static int ws__is_control(int opcode)
{
    return (opcode & 0x8) != 0;
}

static int ws__in_message(const ws_parser *p)
{
    return p->pending != NULL && p->pending->msg_op != 0;
}

/* Starts assembling a message of the given opcode. */
static void ws__msg_begin(ws_parser *p, int opcode)
{
    struct ws_pending *pd = ws__pending(p);
    pd->msg_op = (uint8_t)opcode;
    pd->utf8 = 0;
}

/* Returns room for n (> 0) more bytes at the end of the message. `upto` is
 * the size the message reaches when the current frame is in: geometric
 * growth stops there, so a message in one frame ends up in one exact block.
 * pd->msg may move. */
static uint8_t *ws__msg_room(struct ws_pending *pd, size_t n, size_t upto)
{
    size_t need = pd->msg_len + n;
    if (need > pd->msg_cap) {
        size_t cap = pd->msg_cap == 0 ? 256
                     : pd->msg_cap > SIZE_MAX / 2 ? SIZE_MAX : pd->msg_cap * 2;
        if (cap > upto)
            cap = upto;
        if (cap < need)
            cap = need;
        pd->msg = mem_realloc(pd->msg, cap);
        pd->msg_cap = cap;
    }
    return pd->msg + pd->msg_len;
}

/* Accepts the n (unmasked) bytes just written after the message, checking
 * them when the message is text. Returns 0 or WS_CLOSE_INVALID_DATA. */
static int ws__msg_commit(struct ws_pending *pd, size_t n)
{
    if (pd->msg_op == WS_OP_TEXT &&
        ws__utf8_step(&pd->utf8, pd->msg + pd->msg_len, n) != 0)
        return WS_CLOSE_INVALID_DATA;
    pd->msg_len += n;
    return 0;
}

static void ws__msg_append(struct ws_pending *pd, const uint8_t *s, size_t n)
{
    memcpy(ws__msg_room(pd, n, pd->msg_len + n), s, n);
}

/* ---- parser: delivery --------------------------------------------------- */

static int ws__deliver_message(const ws_callbacks *cb, void *ud, int opcode,
                               uint8_t *data, size_t len)
{
    if (cb->on_message && cb->on_message(ud, opcode, data, len) != 0)
        return WS_STOPPED;
    return 0;
}

/* The final fragment is in: hands the assembled message over and frees it. */
static int ws__msg_finish(ws_parser *p, const ws_callbacks *cb, void *ud)
{
    struct ws_pending *pd = p->pending;
    if (pd->msg_op == WS_OP_TEXT && pd->utf8 != 0)
        return WS_CLOSE_INVALID_DATA; /* ends inside a character */

    /* Detach before the callback, so the parser is consistent (and idle)
     * whatever the callback does. */
    int opcode = pd->msg_op;
    uint8_t *msg = pd->msg;
    size_t len = pd->msg_len;
    pd->msg = NULL;
    pd->msg_len = pd->msg_cap = 0;
    pd->msg_op = 0;
    pd->utf8 = 0;
    ws__release_if_idle(p);

    uint8_t empty = 0;
    int rc = ws__deliver_message(cb, ud, opcode, msg ? msg : &empty, len);
    mem_free(msg);
    return rc;
}

/* RFC 6455 7.4: codes a peer may send. 1004-1006 and 1015 are reserved and
 * never sent; 1012-1014 were registered with IANA after the RFC. */
static int ws__close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

static int ws__control(int opcode, uint8_t *data, size_t len,
                       const ws_callbacks *cb, void *ud)
{
    int r = 0;
    switch (opcode) {
    case WS_OP_PING:
        r = cb->on_ping ? cb->on_ping(ud, data, len) : 0;
        break;
    case WS_OP_PONG:
        r = cb->on_pong ? cb->on_pong(ud, data, len) : 0;
        break;
    default: { /* WS_OP_CLOSE */
        uint16_t code = WS_CLOSE_NO_STATUS;
        const char *reason = "";
        size_t rlen = 0;
        if (len == 1)
            return WS_CLOSE_PROTOCOL;
        if (len >= 2) {
            code = (uint16_t)(data[0] << 8 | data[1]);
            if (!ws__close_code_valid(code))
                return WS_CLOSE_PROTOCOL;
            if (!ws_utf8_valid(data + 2, len - 2))
                return WS_CLOSE_INVALID_DATA;
            reason = (const char *)data + 2;
            rlen = len - 2;
        }
        r = cb->on_close ? cb->on_close(ud, code, reason, rlen) : 0;
        break;
    }
    }
    return r != 0 ? WS_STOPPED : 0;
}

/* A whole frame, unmasked, at pl[0..len) in the caller's buffer. */
static int ws__frame_in_place(ws_parser *p, const ws__frame *f, uint8_t *pl,
                              size_t len, const ws_callbacks *cb, void *ud)
{
    if (ws__is_control(f->opcode))
        return ws__control(f->opcode, pl, len, cb, ud);

    if (!ws__in_message(p)) {
        if (f->fin) {
            /* The common case: a one-frame message, delivered in place. */
            if (f->opcode == WS_OP_TEXT && !ws_utf8_valid(pl, len))
                return WS_CLOSE_INVALID_DATA;
            return ws__deliver_message(cb, ud, f->opcode, pl, len);
        }
        ws__msg_begin(p, f->opcode);
    }
    struct ws_pending *pd = p->pending;
    if (len) {
        ws__msg_append(pd, pl, len);
        int rc = ws__msg_commit(pd, len);
        if (rc)
            return rc;
    }
    return f->fin ? ws__msg_finish(p, cb, ud) : 0;
}

/* Takes what the input holds of the pending frame's payload, and delivers
 * the frame if that completes it. */
static int ws__absorb(ws_parser *p, const uint8_t *data, size_t n, size_t *off,
                      const ws_callbacks *cb, void *ud)
{
    struct ws_pending *pd = p->pending;
    const ws__frame *f = &pd->frame;
    int control = ws__is_control(f->opcode);
    uint64_t left = f->len - pd->got;
    size_t k = n - *off;
    if (k > left)
        k = (size_t)left;

    if (k) {
        uint8_t *dst = control ? pd->ctl + pd->got
                               : ws__msg_room(pd, k, pd->msg_len + (size_t)left);
        memcpy(dst, data + *off, k);
        if (f->masked)
            ws_mask(dst, k, f->mask, (size_t)(pd->got & 3));
        *off += k;
        pd->got += k;
        if (!control) {
            /* Checked as it arrives: bad text fails before the frame ends. */
            int rc = ws__msg_commit(pd, k);
            if (rc)
                return rc;
        }
    }
    if (pd->got < f->len)
        return 0;

    pd->in_payload = 0;
    if (control) {
        /* A copy on the stack keeps the callback away from parser memory. */
        uint8_t copy[WS__MAX_CONTROL];
        size_t len = (size_t)f->len;
        int opcode = f->opcode;
        memcpy(copy, pd->ctl, len);
        ws__release_if_idle(p);
        return ws__control(opcode, copy, len, cb, ud);
    }
    return f->fin ? ws__msg_finish(p, cb, ud) : 0;
}

/* ---- parser: framing ---------------------------------------------------- */

/* Decodes the header at b[0..n). Returns the header's full length: when that
 * is more than n the header is incomplete and *f is left alone. */
static size_t ws__header(const uint8_t *b, size_t n, ws__frame *f)
{
    if (n < 2)
        return 2;
    uint8_t len7 = b[1] & 0x7F;
    size_t hl = 2u + (len7 == 126 ? 2u : len7 == 127 ? 8u : 0u) + (b[1] & 0x80 ? 4u : 0u);
    if (n < hl)
        return hl;

    f->fin = b[0] >> 7;
    f->rsv = b[0] & 0x70;
    f->opcode = b[0] & 0x0F;
    f->masked = b[1] >> 7;
    size_t i = 2;
    if (len7 < 126) {
        f->len = len7;
    } else {
        size_t k = len7 == 126 ? 2 : 8;
        f->len = 0;
        while (k--)
            f->len = f->len << 8 | b[i++];
    }
    if (f->masked)
        memcpy(f->mask, b + i, 4);
    else
        memset(f->mask, 0, 4);
    return hl;
}

/* Completes the header kept in the pending state from the input. Returns 1
 * with *f decoded, or 0 when the input ran out first. */
static int ws__finish_header(struct ws_pending *pd, const uint8_t *data, size_t n,
                             size_t *off, ws__frame *f)
{
    for (;;) {
        size_t need = ws__header(pd->hdr, pd->hdr_len, f);
        if (need <= pd->hdr_len) {
            pd->hdr_len = 0;
            return 1;
        }
        if (*off == n)
            return 0;
        size_t k = need - pd->hdr_len;
        if (k > n - *off)
            k = n - *off;
        memcpy(pd->hdr + pd->hdr_len, data + *off, k);
        pd->hdr_len = (uint8_t)(pd->hdr_len + k);
        *off += k;
    }
}

/* Whether frame f may come next. Returns 0 or the close code to fail with;
 * everything is decided from the header, before any payload is kept. */
static int ws__check(const ws_parser *p, const ws__frame *f, const ws_limits *lim)
{
    if (f->rsv != 0)
        return WS_CLOSE_PROTOCOL; /* no extension negotiated */
    switch (f->opcode) {
    case WS_OP_CONT:
    case WS_OP_TEXT:
    case WS_OP_BINARY:
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        break;
    default:
        return WS_CLOSE_PROTOCOL;
    }
    if (lim->require_mask && !f->masked)
        return WS_CLOSE_PROTOCOL;
    if (f->len >> 63)
        return WS_CLOSE_PROTOCOL;
    if (ws__is_control(f->opcode))
        return f->fin && f->len <= WS__MAX_CONTROL ? 0 : WS_CLOSE_PROTOCOL;

    int in_msg = ws__in_message(p);
    if ((f->opcode == WS_OP_CONT) != in_msg)
        return WS_CLOSE_PROTOCOL;
    uint64_t have = in_msg ? p->pending->msg_len : 0;
    if (f->len > lim->max_message || have > lim->max_message - f->len ||
        f->len > (uint64_t)(SIZE_MAX - have))
        return WS_CLOSE_TOO_BIG;
    return 0;
}

/* The header of f is consumed; its payload starts at data[*off]. */
static int ws__payload(ws_parser *p, const ws__frame *f, uint8_t *data, size_t n,
                       size_t *off, const ws_callbacks *cb, void *ud)
{
    if (f->len <= n - *off) {
        uint8_t *pl = data + *off;
        size_t len = (size_t)f->len;
        *off += len;
        if (f->masked)
            ws_mask(pl, len, f->mask, 0);
        return ws__frame_in_place(p, f, pl, len, cb, ud);
    }

    /* Cut off by the end of the input: keep the frame in the pending state. */
    if (!ws__is_control(f->opcode) && f->opcode != WS_OP_CONT)
        ws__msg_begin(p, f->opcode);
    struct ws_pending *pd = ws__pending(p);
    pd->frame = *f;
    pd->in_payload = 1;
    pd->got = 0;
    return ws__absorb(p, data, n, off, cb, ud);
}

int ws_parser_feed(ws_parser *p, uint8_t *data, size_t n, const ws_limits *lim,
                   const ws_callbacks *cb, void *ud)
{
    size_t off = 0;
    int rc = 0;

    if (p->pending && p->pending->in_payload) {
        rc = ws__absorb(p, data, n, &off, cb, ud);
        if (rc)
            goto cleanup;
    }
    while (off < n) {
        ws__frame f;
        if (p->pending && p->pending->hdr_len) {
            if (!ws__finish_header(p->pending, data, n, &off, &f))
                break;
        } else {
            size_t hl = ws__header(data + off, n - off, &f);
            if (hl > n - off) {
                struct ws_pending *pd = ws__pending(p);
                pd->hdr_len = (uint8_t)(n - off);
                memcpy(pd->hdr, data + off, n - off);
                break;
            }
            off += hl;
        }
        rc = ws__check(p, &f, lim);
        if (rc)
            goto cleanup;
        rc = ws__payload(p, &f, data, n, &off, cb, ud);
        if (rc)
            goto cleanup;
    }
    ws__release_if_idle(p);
    return 0;

cleanup:
    /* The connection is going away and the stream position is lost: drop
     * everything now rather than rely on the caller to reset. */
    ws_parser_reset(p);
    return rc;
}
