/* jwt.c - HS256 JWT verify and sign (see jwt.h): base64url, HMAC-SHA256 by
 * OpenSSL, JSON by jansson.
 *
 * Memory policy: our buffers come from mem_alloc (abort on OOM). jansson
 * reports its OOM as a parse failure and OpenSSL as a NULL result; both are
 * checked and end in an error result, never a crash. */
#include "chat/jwt.h"

#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/b64.h"
#include "util/mem.h"

#define JWT__SIG_LEN 32 /* SHA-256 */

static const char jwt__header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* ---- pieces -------------------------------------------------------------- */

/* Decodes the base64url s[0..n) into a new buffer (caller frees) and sets
 * *out_len. Returns 0 or -1 (see b64url_decode). */
static int jwt__b64_decode(const char *s, size_t n, uint8_t **out, size_t *out_len)
{
    uint8_t *buf = mem_alloc(B64URL_DECODED_MAX(n));
    long r = b64url_decode(s, n, buf);
    if (r < 0) {
        mem_free(buf);
        *out = NULL;
        return -1;
    }
    *out = buf;
    *out_len = (size_t)r;
    return 0;
}

/* HMAC-SHA256 of msg[0..n) into mac. Returns 0 or JWT_EINTERNAL. */
static int jwt__hmac(const uint8_t *secret, size_t secret_len, const char *msg, size_t n,
                     uint8_t mac[JWT__SIG_LEN])
{
    unsigned int mac_len = 0;
    if (secret_len == 0 || secret_len > INT32_MAX)
        return JWT_EINTERNAL;
    if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)msg, n, mac,
             &mac_len) == NULL || mac_len != JWT__SIG_LEN)
        return JWT_EINTERNAL;
    return 0;
}

/* Decodes one base64url part as a JSON object. Returns the object (caller
 * decrefs) or NULL. */
static json_t *jwt__json_part(const char *s, size_t n)
{
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    json_t *j = NULL;
    if (jwt__b64_decode(s, n, &raw, &raw_len) < 0)
        return NULL;
    /* No JSON_ALLOW_NUL: a "sub" with U+0000 is refused here. */
    j = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, NULL);
    mem_free(raw);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* Is `now` before the time claim v? Sets *before; returns 0, or
 * JWT_EMALFORMED when v is not a number. */
static int jwt__before(int64_t now, const json_t *v, int *before)
{
    if (json_is_integer(v))
        *before = (long long)now < (long long)json_integer_value(v);
    else if (json_is_real(v))
        *before = (double)now < json_real_value(v);
    else
        return JWT_EMALFORMED;
    return 0;
}

/* ---- public -------------------------------------------------------------- */

int jwt_verify_hs256(const char *token, size_t len, const uint8_t *secret, size_t secret_len,
                     int64_t now, char **sub_out)
{
    json_t *header = NULL, *payload = NULL;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    uint8_t mac[JWT__SIG_LEN];
    int rc, before;

    if (sub_out)
        *sub_out = NULL;
    if (len == 0 || len > JWT_MAX_LEN)
        return JWT_EMALFORMED;

    /* Exactly two dots, and no empty header or payload. memchr, not
     * strchr: the token may hold a NUL, which the alphabet refuses later. */
    const char *dot1 = memchr(token, '.', len);
    if (dot1 == NULL)
        return JWT_EMALFORMED;
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (dot2 == NULL)
        return JWT_EMALFORMED;
    const char *sig_s = dot2 + 1, *end = token + len;
    if (memchr(sig_s, '.', (size_t)(end - sig_s)) != NULL || dot1 == token || dot2 == dot1 + 1)
        return JWT_EMALFORMED;

    header = jwt__json_part(token, (size_t)(dot1 - token));
    if (header == NULL) {
        rc = JWT_EMALFORMED;
        goto cleanup;
    }
    const json_t *alg = json_object_get(header, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0) {
        rc = json_is_string(alg) ? JWT_EBADALG : JWT_EMALFORMED;
        goto cleanup;
    }
    const json_t *typ = json_object_get(header, "typ");
    if (typ != NULL && (!json_is_string(typ) || strcmp(json_string_value(typ), "JWT") != 0)) {
        rc = JWT_EMALFORMED;
        goto cleanup;
    }

    if (jwt__b64_decode(sig_s, (size_t)(end - sig_s), &sig, &sig_len) < 0) {
        rc = JWT_EMALFORMED;
        goto cleanup;
    }
    rc = jwt__hmac(secret, secret_len, token, (size_t)(dot2 - token), mac);
    if (rc < 0)
        goto cleanup;
    if (sig_len != JWT__SIG_LEN || CRYPTO_memcmp(sig, mac, JWT__SIG_LEN) != 0) {
        rc = JWT_EBADSIG;
        goto cleanup;
    }

    payload = jwt__json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (payload == NULL) {
        rc = JWT_EMALFORMED;
        goto cleanup;
    }
    const json_t *exp = json_object_get(payload, "exp");
    if (exp != NULL) {
        if ((rc = jwt__before(now, exp, &before)) < 0)
            goto cleanup;
        if (!before) {
            rc = JWT_EEXPIRED;
            goto cleanup;
        }
    }
    const json_t *nbf = json_object_get(payload, "nbf");
    if (nbf != NULL) {
        if ((rc = jwt__before(now, nbf, &before)) < 0)
            goto cleanup;
        if (before) {
            rc = JWT_ENOTYET;
            goto cleanup;
        }
    }
    const json_t *sub = json_object_get(payload, "sub");
    if (!json_is_string(sub) || json_string_length(sub) == 0) {
        rc = JWT_ENOSUB;
        goto cleanup;
    }
    if (sub_out)
        *sub_out = mem_strndup(json_string_value(sub), json_string_length(sub));
    rc = 0;

cleanup:
    json_decref(header);
    json_decref(payload);
    mem_free(sig);
    return rc;
}

int jwt_sign_hs256(const char *payload_json, size_t len, const uint8_t *secret,
                   size_t secret_len, char **out)
{
    uint8_t mac[JWT__SIG_LEN];
    char *tok;
    size_t o;
    int rc;

    *out = NULL;
    json_t *check = json_loadb(payload_json, len, JSON_REJECT_DUPLICATES, NULL);
    int is_object = json_is_object(check);
    json_decref(check);
    if (!is_object)
        return JWT_EMALFORMED;

    size_t hlen = sizeof(jwt__header) - 1;
    size_t cap = (hlen * 4 + 2) / 3 + 1 + (len * 4 + 2) / 3 + 1 + (JWT__SIG_LEN * 4 + 2) / 3 + 1;
    tok = mem_alloc(cap);
    o = b64url_encode((const uint8_t *)jwt__header, hlen, tok);
    tok[o++] = '.';
    o += b64url_encode((const uint8_t *)payload_json, len, tok + o);
    rc = jwt__hmac(secret, secret_len, tok, o, mac);
    if (rc < 0) {
        mem_free(tok);
        return rc;
    }
    tok[o++] = '.';
    o += b64url_encode(mac, JWT__SIG_LEN, tok + o);
    tok[o] = '\0';
    *out = tok;
    return 0;
}

const char *jwt_strerror(int rc)
{
    switch (rc) {
    case 0: return "ok";
    case JWT_EMALFORMED: return "malformed token";
    case JWT_EBADSIG: return "bad signature";
    case JWT_EEXPIRED: return "expired";
    case JWT_ENOTYET: return "not yet valid";
    case JWT_EBADALG: return "algorithm not allowed";
    case JWT_ENOSUB: return "no subject";
    case JWT_EINTERNAL: return "internal error";
    }
    return "unknown error";
}
