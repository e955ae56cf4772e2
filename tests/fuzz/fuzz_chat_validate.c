/* fuzz_chat_validate.c - libFuzzer target for the chat contract's field rules
 * (src/chat/chat_validate.c): chat_username_parse, chat_room_parse,
 * chat_name_parse, chat_content_check, chat_client_id_check.
 *
 * Input layout: byte 0 is a limit (content: max_cp = byte * 16, 0 meaning
 * the default; names: max_cp = byte % 80 for chat_name_parse); the rest is
 * the string, decoded from its own exact-size heap block (so ASan sees any
 * read past it; the validators take (pointer, length), never a C string).
 *
 * The verdicts are checked against an independent oracle written here: a
 * strict UTF-8 decoder after Unicode's Table 3-7 (no overlong forms, no
 * surrogates, nothing above U+10FFFF), the White_Space list of PropList.txt
 * and utf8proc's general category, so each result must be the one the
 * header's rule and order give (bad UTF-8, empty, bad character, too long).
 * For a parsed name:
 *   - display and key are NUL-terminated, their lengths are right, both are
 *     valid UTF-8 without Cc or Cf;
 *   - the display has no White_Space at either end, and 1..max code points;
 *   - the key is stable: parsing the display again gives the same display
 *     and key; parsing the key (with a large limit) gives the key back when
 *     the key has no White_Space at its ends (NFKC may put one there: U+00A8
 *     becomes U+0020 U+0308);
 *   - padding the input with White_Space changes nothing;
 *   - username and room agree (same strings, or username only too long).
 * A refused name leaves *out zeroed. Any breach aborts.
 *
 * Build and run: make fuzz-build && scripts/fuzz.sh 60 build-fuzz/fuzz_chat_validate
 * (corpus: tests/fuzz/corpus/chat_validate, dictionary:
 * tests/fuzz/chat_validate.dict). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "fuzz.h"
#include "chat/chat_validate.h"
#include "util/mem.h"


/* ---- the oracle ------------------------------------------------------------ */

/* Decodes one code point at s[*pos..len) after Unicode Table 3-7; returns
 * it and advances, or returns -1 for an ill-formed sequence. */
static int32_t fuzz_decode(const uint8_t *s, size_t len, size_t *pos)
{
    size_t i = *pos;
    uint8_t b = s[i];
    int32_t cp;
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF; /* bounds of the second byte */
    if (b < 0x80) {
        *pos = i + 1;
        return b;
    } else if (b >= 0xC2 && b <= 0xDF) {
        n = 2, cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3, cp = b & 0x0F;
        if (b == 0xE0)
            lo = 0xA0;
        if (b == 0xED)
            hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4, cp = b & 0x07;
        if (b == 0xF0)
            lo = 0x90;
        if (b == 0xF4)
            hi = 0x8F;
    } else {
        return -1;
    }
    if (len - i < n)
        return -1;
    for (size_t k = 1; k < n; k++) {
        uint8_t c = s[i + k];
        if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF))
            return -1;
        cp = (cp << 6) | (c & 0x3F);
    }
    *pos = i + n;
    return cp;
}

/* White_Space=yes in PropList.txt. */
static int fuzz_is_space(int32_t c)
{
    static const int32_t ws[] = {0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029,
                                 0x202F, 0x205F, 0x3000};
    if ((c >= 0x09 && c <= 0x0D) || (c >= 0x2000 && c <= 0x200A))
        return 1;
    for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++)
        if (ws[i] == c)
            return 1;
    return 0;
}

static int fuzz_is_cc_cf(int32_t c)
{
    utf8proc_category_t cat = utf8proc_category(c);
    return cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF;
}

typedef struct {
    int valid;           /* well-formed UTF-8 */
    size_t cps;          /* code points (when valid) */
    int32_t first, last; /* first and last code point, -1 when empty */
    size_t start, end;   /* the bytes between the White_Space at the ends */
    size_t inner_cps;    /* code points in [start, end) */
    int inner_cc_cf;     /* a Cc or Cf in [start, end) */
    int c0_bad;          /* a C0 control other than tab and newline */
} fuzz_scan;

static fuzz_scan fuzz_scan_of(const uint8_t *s, size_t len)
{
    fuzz_scan r = {1, 0, -1, -1, len, 0, 0, 0, 0};
    size_t pos = 0;
    while (pos < len) {
        size_t at = pos;
        int32_t c = fuzz_decode(s, len, &pos);
        if (c < 0) {
            r.valid = 0;
            return r;
        }
        if (r.first < 0)
            r.first = c;
        r.last = c;
        r.cps++;
        if (c < 0x20 && c != '\t' && c != '\n')
            r.c0_bad = 1;
        if (!fuzz_is_space(c)) {
            if (r.start == len)
                r.start = at;
            r.end = pos;
        }
    }
    if (r.start == len) {
        r.start = r.end = 0;
        return r;
    }
    for (pos = r.start; pos < r.end;) {
        int32_t c = fuzz_decode(s, r.end, &pos);
        r.inner_cps++;
        r.inner_cc_cf |= fuzz_is_cc_cf(c);
    }
    return r;
}

/* ---- names ----------------------------------------------------------------- */

static int fuzz_name_eq(const chat_name_t *a, const chat_name_t *b)
{
    return a->display_len == b->display_len && a->key_len == b->key_len &&
           memcmp(a->display, b->display, a->display_len) == 0 &&
           memcmp(a->key, b->key, a->key_len) == 0;
}

static int fuzz_parse(const uint8_t *s, size_t len, size_t max_cp, chat_name_t *out)
{
    /* An exact-size copy, so a read past the end is seen. */
    uint8_t *copy = mem_alloc(len ? len : 1);
    if (len)
        memcpy(copy, s, len);
    int rc = chat_name_parse((const char *)copy, len, max_cp, out);
    FUZZ_CHECK(len == 0 || memcmp(copy, s, len) == 0); /* input untouched */
    mem_free(copy);
    return rc;
}

/* Checks a parse result against the oracle and the header's promises. */
static void fuzz_check_name(const uint8_t *s, size_t len, size_t max_cp, int rc,
                            const chat_name_t *n)
{
    fuzz_scan in = fuzz_scan_of(s, len);
    FUZZ_CHECK(rc == 0 || rc == CHAT_VALID_EMPTY || rc == CHAT_VALID_TOO_LONG ||
               rc == CHAT_VALID_BAD_CHAR || rc == CHAT_VALID_BAD_UTF8);
    if (rc != 0) {
        FUZZ_CHECK(n->display == NULL && n->key == NULL && n->display_len == 0 &&
                   n->key_len == 0);
        FUZZ_CHECK(chat_validate_err(CHAT_FIELD_USERNAME, rc) == CHAT_ERR_INVALID_USERNAME);
        FUZZ_CHECK(chat_validate_err(CHAT_FIELD_ROOM, rc) == CHAT_ERR_INVALID_ROOM);
    }
    /* The rule's order: bad UTF-8, empty, bad character, too long. */
    if (!in.valid) {
        FUZZ_CHECK(rc == CHAT_VALID_BAD_UTF8);
        return;
    }
    FUZZ_CHECK(rc != CHAT_VALID_BAD_UTF8);
    if (in.inner_cps == 0) {
        FUZZ_CHECK(rc == CHAT_VALID_EMPTY);
        return;
    }
    FUZZ_CHECK(rc != CHAT_VALID_EMPTY);
    FUZZ_CHECK((rc == CHAT_VALID_BAD_CHAR) == in.inner_cc_cf);
    if (rc == CHAT_VALID_BAD_CHAR)
        return;
    if (in.inner_cps > 8 * max_cp)
        FUZZ_CHECK(rc == CHAT_VALID_TOO_LONG);
    if (rc != 0)
        return;

    /* A name: display and key. */
    FUZZ_CHECK(n->display != NULL && n->key != NULL);
    FUZZ_CHECK(n->display[n->display_len] == '\0' && strlen(n->display) == n->display_len);
    FUZZ_CHECK(n->key[n->key_len] == '\0' && strlen(n->key) == n->key_len);
    fuzz_scan d = fuzz_scan_of((const uint8_t *)n->display, n->display_len);
    FUZZ_CHECK(d.valid && d.cps >= 1 && d.cps <= max_cp);
    FUZZ_CHECK(n->display_len <= 4 * max_cp);
    FUZZ_CHECK(!fuzz_is_space(d.first) && !fuzz_is_space(d.last));
    FUZZ_CHECK(d.start == 0 && d.end == n->display_len && d.inner_cps == d.cps);
    FUZZ_CHECK(!d.inner_cc_cf);
    fuzz_scan k = fuzz_scan_of((const uint8_t *)n->key, n->key_len);
    FUZZ_CHECK(k.valid && k.cps >= 1);
    size_t pos = 0;
    while (pos < n->key_len) { /* "keys hold no control character" */
        int32_t c = fuzz_decode((const uint8_t *)n->key, n->key_len, &pos);
        FUZZ_CHECK(utf8proc_category(c) != UTF8PROC_CATEGORY_CC);
    }
}

/* Stability of a parsed name n (from max_cp): its display parses to itself
 * with the same key, and so does its key when nothing of it is trimmed. */
static void fuzz_check_stable(const chat_name_t *n, size_t max_cp)
{
    chat_name_t again;
    int rc = fuzz_parse((const uint8_t *)n->display, n->display_len, max_cp, &again);
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(fuzz_name_eq(n, &again));
    chat_name_free(&again);

    fuzz_scan k = fuzz_scan_of((const uint8_t *)n->key, n->key_len);
    if (fuzz_is_space(k.first) || fuzz_is_space(k.last) || k.inner_cc_cf)
        return;
    rc = fuzz_parse((const uint8_t *)n->key, n->key_len, 1u << 20, &again);
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(again.key_len == n->key_len && memcmp(again.key, n->key, n->key_len) == 0);
    chat_name_free(&again);
}

/* White_Space around the input changes nothing. */
static void fuzz_check_padding(const uint8_t *s, size_t len, int rc, const chat_name_t *n)
{
    static const char pre[] = " \t\xe3\x80\x80", post[] = "\xc2\x85\xc2\xa0\n";
    size_t plen = sizeof(pre) - 1, qlen = sizeof(post) - 1;
    uint8_t *padded = mem_alloc(plen + len + qlen);
    memcpy(padded, pre, plen);
    if (len)
        memcpy(padded + plen, s, len);
    memcpy(padded + plen + len, post, qlen);
    chat_name_t p;
    int prc = fuzz_parse(padded, plen + len + qlen, CHAT_USERNAME_MAX, &p);
    FUZZ_CHECK(prc == rc);
    if (rc == 0)
        FUZZ_CHECK(fuzz_name_eq(n, &p));
    chat_name_free(&p);
    mem_free(padded);
}

static void fuzz_names(const uint8_t *s, size_t len, uint8_t cfg)
{
    chat_name_t user, room, any;
    uint8_t *copy = mem_alloc(len ? len : 1);
    if (len)
        memcpy(copy, s, len);
    int urc = chat_username_parse((const char *)copy, len, &user);
    int rrc = chat_room_parse((const char *)copy, len, &room);
    mem_free(copy);
    fuzz_check_name(s, len, CHAT_USERNAME_MAX, urc, &user);
    fuzz_check_name(s, len, CHAT_ROOM_MAX, rrc, &room);

    /* The two differ only in the limit. */
    if (urc == 0) {
        FUZZ_CHECK(rrc == 0 && fuzz_name_eq(&user, &room));
    } else if (rrc == 0) {
        FUZZ_CHECK(urc == CHAT_VALID_TOO_LONG);
    } else {
        FUZZ_CHECK(urc == rrc); /* the checks before the length are the same */
    }

    if (urc == 0)
        fuzz_check_stable(&user, CHAT_USERNAME_MAX);
    if (rrc == 0)
        fuzz_check_stable(&room, CHAT_ROOM_MAX);
    fuzz_check_padding(s, len, urc, &user);

    /* Any limit, 0 included. */
    size_t max_cp = cfg % 80;
    int arc = fuzz_parse(s, len, max_cp, &any);
    fuzz_check_name(s, len, max_cp, arc, &any);
    if (arc == 0 && urc == 0)
        FUZZ_CHECK(fuzz_name_eq(&any, &user));
    if (max_cp >= CHAT_ROOM_MAX && rrc == 0)
        FUZZ_CHECK(arc == 0);
    if (max_cp <= CHAT_USERNAME_MAX && arc == 0)
        FUZZ_CHECK(urc == 0);

    chat_name_free(&user);
    chat_name_free(&room);
    chat_name_free(&any);
    FUZZ_CHECK(user.display == NULL && user.key == NULL);
}

/* ---- content and clientId -------------------------------------------------- */

static void fuzz_content(const uint8_t *s, size_t len, uint8_t cfg)
{
    fuzz_scan in = fuzz_scan_of(s, len);
    size_t max_cp = (size_t)cfg * 16;
    size_t eff = max_cp ? max_cp : CHAT_CONTENT_MAX_DEFAULT;
    uint8_t *copy = mem_alloc(len ? len : 1);
    if (len)
        memcpy(copy, s, len);

    int rc = chat_content_check((const char *)copy, len, max_cp);
    int want = len == 0        ? CHAT_VALID_EMPTY
               : !in.valid     ? CHAT_VALID_BAD_UTF8
               : in.c0_bad     ? CHAT_VALID_BAD_CHAR
               : in.cps > eff  ? CHAT_VALID_TOO_LONG
                               : 0;
    FUZZ_CHECK(rc == want);
    if (rc != 0) {
        chat_err_t e = chat_validate_err(CHAT_FIELD_CONTENT, rc);
        FUZZ_CHECK(e == (rc == CHAT_VALID_TOO_LONG ? CHAT_ERR_CONTENT_TOO_LONG
                                                   : CHAT_ERR_INVALID_PAYLOAD));
        FUZZ_CHECK(chat_error_code_str(e) != NULL && chat_error_message(e) != NULL);
    } else {
        FUZZ_CHECK(chat_validate_err(CHAT_FIELD_CONTENT, rc) == CHAT_ERR_INTERNAL);
    }

    rc = chat_client_id_check((const char *)copy, len);
    want = len == 0                          ? CHAT_VALID_EMPTY
           : !in.valid                       ? CHAT_VALID_BAD_UTF8
           : in.cps > CHAT_CLIENT_ID_MAX     ? CHAT_VALID_TOO_LONG
                                             : 0;
    FUZZ_CHECK(rc == want);
    if (rc != 0)
        FUZZ_CHECK(chat_validate_err(CHAT_FIELD_CLIENT_ID, rc) == CHAT_ERR_INVALID_PAYLOAD);

    FUZZ_CHECK(len == 0 || memcmp(copy, s, len) == 0);
    mem_free(copy);

    /* The error vocabulary for any value. */
    chat_err_t any = (chat_err_t)(int8_t)cfg;
    FUZZ_CHECK(chat_error_code_str(any) != NULL && chat_error_message(any) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t cfg = data[0];
    fuzz_names(data + 1, size - 1, cfg);
    fuzz_content(data + 1, size - 1, cfg);
    return 0;
}
