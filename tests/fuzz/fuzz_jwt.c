/* fuzz_jwt.c - libFuzzer target for HS256 JSON Web Tokens (src/chat/jwt.c):
 * jwt_verify_hs256 and jwt_sign_hs256, with a fixed secret and a fixed now.
 *
 * Input layout: byte 0 is a knob (where a signed token is tampered with, how
 * far exp and nbf are from now), byte 1 cuts the rest (as a fraction, /256)
 * into a header and a payload; the rest is the body. Four runs per input:
 *
 *  1. The body as a token, from its own exact-size heap block: the result
 *     is 0 or a JWT_E* code (never EINTERNAL), the same with and without
 *     sub_out, and malformed whenever the shape is wrong (not two dots, an
 *     empty header or payload part, a header outside base64url). Seeds
 *     signed with the fuzz secret pass, and let the fuzzer mutate from
 *     there. The body repeated past JWT_MAX_LEN is malformed.
 *  2. Header and payload bytes from the body, made into a token here,
 *     independently of jwt.c (OpenSSL's base64 and HMAC, as the unit tests
 *     do), so any header and payload get past the signature. The verdict
 *     must be the one the header's rules give, in their order (shape, alg,
 *     signature, exp, nbf, sub), computed with jansson here; a token that
 *     passes must give back the payload's sub.
 *  3. The payload bytes signed with jwt_sign_hs256: it must refuse exactly
 *     what is not a JSON object, and otherwise produce the same bytes as the
 *     independent signer with the standard header, which must verify as in
 *     2. Changing any one byte of it, cutting it short or verifying with
 *     another secret must fail.
 *  4. A payload built with jansson, {"sub": body, "exp": now + a,
 *     "nbf": now - b}: it must round-trip (the same sub, byte for byte) and
 *     be expired at exp and not yet valid just before nbf.
 * Any breach aborts.
 *
 * Build and run: make fuzz-build && scripts/fuzz.sh 60 build-fuzz/fuzz_jwt
 * (corpus: tests/fuzz/corpus/jwt, dictionary: tests/fuzz/jwt.dict). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fuzz.h"
#include "chat/jwt.h"
#include "util/mem.h"


#define FUZZ_SECRET ((const uint8_t *)"fuzz-secret")
#define FUZZ_SECRET_LEN (sizeof("fuzz-secret") - 1)
#define FUZZ_NOW ((int64_t)1700000000)

static const char fuzz_std_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* ---- an independent signer --------------------------------------------------- */

/* Appends base64url (no padding) of in[0..n) at out; returns its length. out
 * has room for 4 * (n / 3 + 1) + 1 bytes. */
static size_t fuzz_b64url(const uint8_t *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    FUZZ_CHECK(len >= 0);
    while (len > 0 && out[len - 1] == '=')
        len--;
    for (int i = 0; i < len; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return (size_t)len;
}

/* b64url(h).b64url(p).b64url(HMAC) in a new buffer (mem_free); *len set. */
static char *fuzz_make(const uint8_t *h, size_t hn, const uint8_t *p, size_t pn,
                       const uint8_t *secret, size_t secret_len, size_t *len)
{
    char *tok = mem_alloc(4 * (hn / 3 + 1) + 4 * (pn / 3 + 1) + 4 * (32 / 3 + 1) + 4);
    size_t o = fuzz_b64url(h, hn, tok);
    tok[o++] = '.';
    o += fuzz_b64url(p, pn, tok + o);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    FUZZ_CHECK(HMAC(EVP_sha256(), secret, (int)secret_len, (unsigned char *)tok, o, mac,
                    &mac_len) != NULL && mac_len == 32);
    tok[o++] = '.';
    o += fuzz_b64url(mac, 32, tok + o);
    tok[o] = '\0';
    *len = o;
    return tok;
}

/* ---- the oracle -------------------------------------------------------------- */

/* The header's rules for a token whose signature is right: the expected
 * result, and the expected sub (a pointer into *payload_out) when 0. */
static int fuzz_expect(const uint8_t *h, size_t hn, const uint8_t *p, size_t pn,
                       size_t token_len, int64_t now, json_t **payload_out, const char **sub,
                       size_t *sub_len)
{
    *payload_out = NULL;
    if (token_len > JWT_MAX_LEN || hn == 0 || pn == 0)
        return JWT_EMALFORMED;
    json_t *hj = json_loadb((const char *)h, hn, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(hj)) {
        json_decref(hj);
        return JWT_EMALFORMED;
    }
    json_t *alg = json_object_get(hj, "alg"), *typ = json_object_get(hj, "typ");
    int rc = 0;
    if (!json_is_string(alg))
        rc = JWT_EMALFORMED;
    else if (strcmp(json_string_value(alg), "HS256") != 0)
        rc = JWT_EBADALG;
    else if (typ && (!json_is_string(typ) || strcmp(json_string_value(typ), "JWT") != 0))
        rc = JWT_EMALFORMED;
    json_decref(hj);
    if (rc)
        return rc;

    json_t *pj = json_loadb((const char *)p, pn, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(pj)) {
        json_decref(pj);
        return JWT_EMALFORMED;
    }
    *payload_out = pj;
    json_t *exp = json_object_get(pj, "exp"), *nbf = json_object_get(pj, "nbf");
    json_t *s = json_object_get(pj, "sub");
    if (exp) {
        if (!json_is_number(exp))
            return JWT_EMALFORMED;
        int ok = json_is_integer(exp) ? (long long)now < (long long)json_integer_value(exp)
                                      : (double)now < json_real_value(exp);
        if (!ok)
            return JWT_EEXPIRED;
    }
    if (nbf) {
        if (!json_is_number(nbf))
            return JWT_EMALFORMED;
        int before = json_is_integer(nbf) ? (long long)now < (long long)json_integer_value(nbf)
                                          : (double)now < json_real_value(nbf);
        if (before)
            return JWT_ENOTYET;
    }
    if (!json_is_string(s) || json_string_length(s) == 0)
        return JWT_ENOSUB;
    *sub = json_string_value(s);
    *sub_len = json_string_length(s);
    return 0;
}

/* Verifies tok[0..len) (from an exact-size copy), with and without sub_out,
 * and checks the promises every result keeps. Returns the result; *sub_out
 * gets the sub (caller frees) when 0. */
static int fuzz_verify(const char *tok, size_t len, const uint8_t *secret, size_t secret_len,
                       int64_t now, char **sub_out)
{
    char *copy = mem_alloc(len ? len : 1);
    if (len)
        memcpy(copy, tok, len);
    char *sub = (char *)"unset";
    int rc = jwt_verify_hs256(copy, len, secret, secret_len, now, &sub);
    int rc2 = jwt_verify_hs256(copy, len, secret, secret_len, now, NULL);
    FUZZ_CHECK(len == 0 || memcmp(copy, tok, len) == 0);
    mem_free(copy);
    FUZZ_CHECK(rc == rc2);
    FUZZ_CHECK(rc <= 0 && rc >= JWT_ENOSUB); /* never EINTERNAL with a secret */
    FUZZ_CHECK(jwt_strerror(rc) != NULL);
    if (rc == 0) {
        FUZZ_CHECK(sub != NULL && sub[0] != '\0');
    } else {
        FUZZ_CHECK(sub == NULL);
    }
    if (sub_out)
        *sub_out = sub;
    else
        mem_free(sub);
    return rc;
}

/* Verifies a token made from header h and payload p against the oracle. */
static void fuzz_check_made(const char *tok, size_t len, const uint8_t *h, size_t hn,
                            const uint8_t *p, size_t pn, int64_t now)
{
    json_t *payload;
    const char *want_sub = NULL;
    size_t want_len = 0;
    int want = fuzz_expect(h, hn, p, pn, len, now, &payload, &want_sub, &want_len);
    char *sub;
    int rc = fuzz_verify(tok, len, FUZZ_SECRET, FUZZ_SECRET_LEN, now, &sub);
    if (rc != want) {
        fprintf(stderr, "jwt: got %d (%s), expected %d (%s)\n", rc, jwt_strerror(rc), want,
                jwt_strerror(want));
        FUZZ_CHECK(rc == want);
    }
    if (rc == 0) {
        FUZZ_CHECK(strlen(sub) == want_len && memcmp(sub, want_sub, want_len) == 0);
        mem_free(sub);
    }
    json_decref(payload);
}

/* ---- the runs ---------------------------------------------------------------- */

static void fuzz_raw(const uint8_t *body, size_t n)
{
    int rc = fuzz_verify((const char *)body, n, FUZZ_SECRET, FUZZ_SECRET_LEN, FUZZ_NOW, NULL);
    const uint8_t *d1 = n ? memchr(body, '.', n) : NULL;
    const uint8_t *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - body)) : NULL;
    const uint8_t *d3 = d2 ? memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - body)) : NULL;
    if (n == 0 || n > JWT_MAX_LEN || !d2 || d3 || d1 == body || d2 == d1 + 1) {
        FUZZ_CHECK(rc == JWT_EMALFORMED);
        return;
    }
    /* A header that is not base64url is malformed. (The payload is only
     * decoded once the signature is right, so a bad payload part gives
     * EBADSIG here; and the alg check comes before the signature's
     * decoding.) */
    for (const uint8_t *c = body; c < d1; c++) {
        int b64 = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                  (*c >= '0' && *c <= '9') || *c == '-' || *c == '_';
        if (!b64) {
            FUZZ_CHECK(rc == JWT_EMALFORMED);
            break;
        }
    }
}

/* Longer than JWT_MAX_LEN (the body repeated): malformed, whatever it is. */
static void fuzz_too_long(const uint8_t *body, size_t n)
{
    if (n == 0)
        return;
    size_t len = JWT_MAX_LEN + 1;
    char *tok = mem_alloc(len);
    for (size_t o = 0; o < len; o += n)
        memcpy(tok + o, body, len - o < n ? len - o : n);
    FUZZ_CHECK(jwt_verify_hs256(tok, len, FUZZ_SECRET, FUZZ_SECRET_LEN, FUZZ_NOW, NULL) ==
               JWT_EMALFORMED);
    mem_free(tok);
}

static void fuzz_made(const uint8_t *body, size_t n, size_t cut)
{
    size_t len;
    char *tok = fuzz_make(body, cut, body + cut, n - cut, FUZZ_SECRET, FUZZ_SECRET_LEN, &len);
    fuzz_check_made(tok, len, body, cut, body + cut, n - cut, FUZZ_NOW);
    mem_free(tok);
}

static void fuzz_signed(const uint8_t *p, size_t pn, uint8_t knob)
{
    char *tok = (char *)"unset";
    json_t *j = json_loadb((const char *)p, pn, JSON_REJECT_DUPLICATES, NULL);
    int is_object = json_is_object(j);
    json_decref(j);
    int rc = jwt_sign_hs256((const char *)p, pn, FUZZ_SECRET, FUZZ_SECRET_LEN, &tok);
    if (!is_object) {
        FUZZ_CHECK(rc == JWT_EMALFORMED && tok == NULL);
        return;
    }
    FUZZ_CHECK(rc == 0 && tok != NULL);

    /* The same bytes as the independent signer. */
    size_t len, hn = sizeof(fuzz_std_header) - 1;
    char *mine = fuzz_make((const uint8_t *)fuzz_std_header, hn, p, pn, FUZZ_SECRET,
                           FUZZ_SECRET_LEN, &len);
    FUZZ_CHECK(strlen(tok) == len && memcmp(tok, mine, len) == 0);
    mem_free(mine);
    fuzz_check_made(tok, len, (const uint8_t *)fuzz_std_header, hn, p, pn, FUZZ_NOW);

    /* Another secret; one byte changed; cut short. */
    FUZZ_CHECK(fuzz_verify(tok, len, (const uint8_t *)"other", 5, FUZZ_NOW, NULL) ==
               (len > JWT_MAX_LEN ? JWT_EMALFORMED : JWT_EBADSIG));
    size_t at = (size_t)knob * len / 256;
    static const char repl[] = "A.-_=+/ \x00\xff";
    char saved = tok[at];
    for (size_t i = 0; i < sizeof(repl) - 1 + 1; i++) {
        char c = i < sizeof(repl) - 1 ? repl[i] : (char)(saved ^ 1);
        if (c == saved)
            continue;
        tok[at] = c;
        FUZZ_CHECK(fuzz_verify(tok, len, FUZZ_SECRET, FUZZ_SECRET_LEN, FUZZ_NOW, NULL) != 0);
    }
    tok[at] = saved;
    FUZZ_CHECK(fuzz_verify(tok, at, FUZZ_SECRET, FUZZ_SECRET_LEN, FUZZ_NOW, NULL) != 0);
    mem_free(tok);
}

static void fuzz_roundtrip(const uint8_t *body, size_t n, uint8_t knob)
{
    json_t *sub = json_stringn((const char *)body, n);
    if (sub == NULL)
        return; /* not UTF-8: no JSON string holds it */
    int64_t exp = FUZZ_NOW + 1 + (knob & 15), nbf = FUZZ_NOW - (knob >> 4);
    json_t *obj = json_pack("{s:o, s:I, s:I}", "sub", sub, "exp", (json_int_t)exp, "nbf",
                            (json_int_t)nbf);
    FUZZ_CHECK(obj != NULL);
    char *payload = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    FUZZ_CHECK(payload != NULL);

    char *tok = NULL;
    int rc = jwt_sign_hs256(payload, strlen(payload), FUZZ_SECRET, FUZZ_SECRET_LEN, &tok);
    if (memchr(body, '\0', n) != NULL) {
        /* \u0000 in a string is refused (no JSON_ALLOW_NUL). */
        FUZZ_CHECK(rc == JWT_EMALFORMED && tok == NULL);
        free(payload);
        return;
    }
    FUZZ_CHECK(rc == 0);
    size_t len = strlen(tok);
    char *got = NULL;
    rc = fuzz_verify(tok, len, FUZZ_SECRET, FUZZ_SECRET_LEN, FUZZ_NOW, &got);
    if (len > JWT_MAX_LEN) {
        FUZZ_CHECK(rc == JWT_EMALFORMED);
    } else if (n == 0) {
        FUZZ_CHECK(rc == JWT_ENOSUB);
    } else {
        FUZZ_CHECK(rc == 0 && strlen(got) == n && memcmp(got, body, n) == 0);
        mem_free(got);
        FUZZ_CHECK(fuzz_verify(tok, len, FUZZ_SECRET, FUZZ_SECRET_LEN, exp - 1, NULL) == 0);
        FUZZ_CHECK(fuzz_verify(tok, len, FUZZ_SECRET, FUZZ_SECRET_LEN, exp, NULL) ==
                   JWT_EEXPIRED);
        FUZZ_CHECK(fuzz_verify(tok, len, FUZZ_SECRET, FUZZ_SECRET_LEN, nbf, NULL) == 0);
        FUZZ_CHECK(fuzz_verify(tok, len, FUZZ_SECRET, FUZZ_SECRET_LEN, nbf - 1, NULL) ==
                   JWT_ENOTYET);
    }
    mem_free(tok);
    free(payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t knob = data[0];
    size_t n = size - 2;
    size_t cut = (size_t)data[1] * n / 256;
    const uint8_t *body = data + 2;

    fuzz_raw(body, n);
    fuzz_too_long(body, n);
    fuzz_made(body, n, cut);
    fuzz_signed(body + cut, n - cut, knob);
    fuzz_roundtrip(body, n, knob);

    /* Empty secret: an internal error for both, whatever the token. */
    char *tok = (char *)"unset";
    FUZZ_CHECK(jwt_sign_hs256("{}", 2, FUZZ_SECRET, 0, &tok) == JWT_EINTERNAL && tok == NULL);
    return 0;
}
