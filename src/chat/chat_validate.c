/* chat_validate.c - the contract's field rules on top of utf8proc (see
 * chat_validate.h).
 *
 * Memory policy: buffers are ours (mem_alloc, abort on OOM); utf8proc is
 * only asked to decompose into them and recompose in place, so it never
 * allocates and its only errors are about the input. */
#include "chat/chat_validate.h"

#include <stdint.h>
#include <string.h>

#include <utf8proc.h>

#include "util/mem.h"

/* ---- error vocabulary ---------------------------------------------------- */

static const struct {
    const char *code;
    const char *message;
} chat__errors[] = {
    [CHAT_ERR_INVALID_PAYLOAD] = {"invalid_payload", "The request is malformed."},
    [CHAT_ERR_INVALID_USERNAME] = {"invalid_username",
        "Usernames are 1 to 32 characters, without control or invisible "
        "formatting characters."},
    [CHAT_ERR_USERNAME_TAKEN] = {"username_taken", "That username is already in use."},
    [CHAT_ERR_NOT_JOINED] = {"not_joined", "Choose a username first."},
    [CHAT_ERR_INVALID_ROOM] = {"invalid_room",
        "Room names are 1 to 64 characters, without control or invisible "
        "formatting characters."},
    [CHAT_ERR_ROOM_NOT_FOUND] = {"room_not_found", "There is no room with that name."},
    [CHAT_ERR_NOT_IN_ROOM] = {"not_in_room", "You are not in that room."},
    [CHAT_ERR_USER_NOT_FOUND] = {"user_not_found", "No user has that name."},
    [CHAT_ERR_CONTENT_TOO_LONG] = {"content_too_long", "The message is too long."},
    [CHAT_ERR_RATE_LIMITED] = {"rate_limited", "Too many requests; slow down."},
    [CHAT_ERR_FORBIDDEN] = {"forbidden", "You are not allowed to do that."},
    [CHAT_ERR_INTERNAL] = {"internal", "Something went wrong on the server."},
    [CHAT_ERR_MESSAGE_NOT_FOUND] = {"message_not_found", "There is no such message there."},
};

static int chat__err_known(chat_err_t code)
{
    return code >= CHAT_ERR_INVALID_PAYLOAD && code <= CHAT_ERR_MESSAGE_NOT_FOUND;
}

const char *chat_error_code_str(chat_err_t code)
{
    return chat__errors[chat__err_known(code) ? code : CHAT_ERR_INTERNAL].code;
}

const char *chat_error_message(chat_err_t code)
{
    return chat__errors[chat__err_known(code) ? code : CHAT_ERR_INTERNAL].message;
}

chat_err_t chat_validate_err(chat_field_t field, int rc)
{
    if (rc >= 0)
        return CHAT_ERR_INTERNAL;
    switch (field) {
    case CHAT_FIELD_USERNAME:
        return CHAT_ERR_INVALID_USERNAME;
    case CHAT_FIELD_ROOM:
        return CHAT_ERR_INVALID_ROOM;
    case CHAT_FIELD_CONTENT:
        return rc == CHAT_VALID_TOO_LONG ? CHAT_ERR_CONTENT_TOO_LONG
                                         : CHAT_ERR_INVALID_PAYLOAD;
    case CHAT_FIELD_CLIENT_ID:
        return CHAT_ERR_INVALID_PAYLOAD;
    }
    return CHAT_ERR_INTERNAL;
}

/* ---- UTF-8 helpers ------------------------------------------------------- */

/* Decodes the code point at s[*pos..len) and advances *pos. Returns the code
 * point, or -1 for ill-formed UTF-8 (utf8proc refuses overlong forms,
 * surrogates and values above U+10FFFF). */
static int32_t chat__next(const uint8_t *s, size_t len, size_t *pos)
{
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(s + *pos, (utf8proc_ssize_t)(len - *pos), &cp);
    if (n <= 0)
        return -1;
    *pos += (size_t)n;
    return cp;
}

/* Unicode White_Space (PropList.txt). */
static int chat__is_space(int32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Normalizes s[0..len) (valid UTF-8, len > 0) with utf8proc `options` into a
 * new NUL-terminated string that the caller owns. Returns its byte length,
 * or a negative utf8proc error (the input was not valid UTF-8). */
static long chat__normalize(const uint8_t *s, size_t len, utf8proc_option_t options,
                            char **out)
{
    *out = NULL;
    utf8proc_ssize_t n = utf8proc_decompose(s, (utf8proc_ssize_t)len, NULL, 0, options);
    if (n < 0)
        return (long)n;
    /* utf8proc_reencode writes the UTF-8 back over the code points, plus a
     * NUL: 4 bytes per code point and one more suffice. */
    utf8proc_int32_t *buf = mem_alloc((size_t)n * sizeof(utf8proc_int32_t) + 1);
    utf8proc_ssize_t m = utf8proc_decompose(s, (utf8proc_ssize_t)len, buf, n, options);
    if (m < 0 || m > n) {
        mem_free(buf);
        return m < 0 ? (long)m : UTF8PROC_ERROR_OVERFLOW;
    }
    utf8proc_ssize_t bytes = utf8proc_reencode(buf, m, options);
    if (bytes < 0) {
        mem_free(buf);
        return (long)bytes;
    }
    *out = (char *)buf;
    return (long)bytes;
}

/* Code points in valid UTF-8 s[0..len). */
static size_t chat__count(const uint8_t *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += (s[i] & 0xC0) != 0x80;
    return n;
}

/* ---- names --------------------------------------------------------------- */

#define CHAT__NFC (UTF8PROC_STABLE | UTF8PROC_COMPOSE)
#define CHAT__NFKC_CF (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD)
/* With utf8proc, which folds while it decomposes, one pass already reached
 * the fixed point for every code point and for millions of random mixes of
 * combining, decomposable and case-folding characters we tried; the second
 * pass confirms it, the bound guarantees termination whatever a future
 * Unicode table does. */
#define CHAT__KEY_PASSES 4

int chat_name_parse(const char *str, size_t len, size_t max_cp, chat_name_t *out)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t pos = 0, start = len, end = 0, cps = 0;
    int bad_char = 0;
    char *display = NULL, *key = NULL;
    int rc;

    memset(out, 0, sizeof(*out));

    /* Validate all of it and find the first and last non-space. The
     * categories are looked at afterwards, inside those bounds only: a Cc
     * that is also White_Space (tab, U+0085) is fine where it is trimmed and
     * refused inside the name. */
    while (pos < len) {
        size_t at = pos;
        int32_t c = chat__next(s, len, &pos);
        if (c < 0)
            return CHAT_VALID_BAD_UTF8;
        if (chat__is_space(c))
            continue;
        if (start == len)
            start = at;
        end = pos;
    }
    if (start == len)
        return CHAT_VALID_EMPTY;

    for (pos = start; pos < end; cps++) {
        int32_t c = chat__next(s, end, &pos);
        utf8proc_category_t cat = utf8proc_category(c);
        if (cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF)
            bad_char = 1;
    }
    if (bad_char)
        return CHAT_VALID_BAD_CHAR;
    if (max_cp > SIZE_MAX / 8 || cps > 8 * max_cp)
        return CHAT_VALID_TOO_LONG;

    long dlen = chat__normalize(s + start, end - start, CHAT__NFC, &display);
    if (dlen < 0) {
        rc = CHAT_VALID_BAD_UTF8;
        goto cleanup;
    }
    if (chat__count((const uint8_t *)display, (size_t)dlen) > max_cp) {
        rc = CHAT_VALID_TOO_LONG;
        goto cleanup;
    }

    /* NFKC with full case folding, repeated until stable: folding after
     * compatibility composition can leave a string whose own NFKC_Casefold
     * differs, and a key must be its own key. */
    const uint8_t *from = (const uint8_t *)display;
    long from_len = dlen, klen = -1;
    for (int pass = 0; pass < CHAT__KEY_PASSES; pass++) {
        char *next = NULL;
        klen = chat__normalize(from, (size_t)from_len, CHAT__NFKC_CF, &next);
        if (klen < 0) {
            rc = CHAT_VALID_BAD_UTF8;
            goto cleanup;
        }
        int stable = klen == from_len && memcmp(next, from, (size_t)klen) == 0;
        mem_free(key);
        key = next;
        if (stable)
            break;
        from = (const uint8_t *)key;
        from_len = klen;
        if (klen == 0) /* cannot happen for a non-empty name; do not loop on it */
            break;
    }

    out->display = display;
    out->display_len = (size_t)dlen;
    out->key = key;
    out->key_len = (size_t)klen;
    return 0;

cleanup:
    mem_free(display);
    mem_free(key);
    return rc;
}

int chat_username_parse(const char *s, size_t len, chat_name_t *out)
{
    return chat_name_parse(s, len, CHAT_USERNAME_MAX, out);
}

int chat_room_parse(const char *s, size_t len, chat_name_t *out)
{
    return chat_name_parse(s, len, CHAT_ROOM_MAX, out);
}

void chat_name_free(chat_name_t *n)
{
    mem_free(n->display);
    mem_free(n->key);
    memset(n, 0, sizeof(*n));
}

/* ---- content and clientId ------------------------------------------------ */

int chat_content_check(const char *str, size_t len, size_t max_cp)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t pos = 0, cps = 0;
    int bad_char = 0;

    if (max_cp == 0)
        max_cp = CHAT_CONTENT_MAX_DEFAULT;
    if (len == 0)
        return CHAT_VALID_EMPTY;
    while (pos < len) {
        int32_t c = chat__next(s, len, &pos);
        if (c < 0)
            return CHAT_VALID_BAD_UTF8;
        if (c < 0x20 && c != '\t' && c != '\n')
            bad_char = 1;
        cps++;
    }
    if (bad_char)
        return CHAT_VALID_BAD_CHAR;
    return cps > max_cp ? CHAT_VALID_TOO_LONG : 0;
}

int chat_client_id_check(const char *str, size_t len)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t pos = 0, cps = 0;

    if (len == 0)
        return CHAT_VALID_EMPTY;
    while (pos < len) {
        if (chat__next(s, len, &pos) < 0)
            return CHAT_VALID_BAD_UTF8;
        cps++;
    }
    return cps > CHAT_CLIENT_ID_MAX ? CHAT_VALID_TOO_LONG : 0;
}
