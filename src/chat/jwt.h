/* jwt.h - HS256 JSON Web Tokens (RFC 7519 / RFC 7515 compact form), the
 * token-mode identity of the chat contract.
 *
 * Only what the contract needs: verify a token signed with a shared secret
 * and return its `sub` (the username), enforcing `exp` and `nbf`; and sign
 * one, for tests and for an operator's token-printing helper. No other
 * algorithm is accepted, whatever the token's header says. Pure: the clock is
 * the caller's (`now`), and there is no I/O. */
#ifndef PARLEY_CHAT_JWT_H
#define PARLEY_CHAT_JWT_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

#define JWT_EMALFORMED ERR_MALFORMED /* not three base64url parts of JSON objects, or a
                               claim of the wrong type, or over JWT_MAX_LEN */
#define JWT_EBADSIG    ERR_BADSIG /* the signature does not match */
#define JWT_EEXPIRED   ERR_EXPIRED /* now >= exp */
#define JWT_ENOTYET    ERR_NOTYET /* now < nbf */
#define JWT_EBADALG    ERR_BADALG /* header alg is a string other than "HS256"
                               ("none" included; a missing alg is malformed) */
#define JWT_ENOSUB     ERR_NOSUB /* sub missing, not a string, or empty */
#define JWT_EINTERNAL  ERR_INTERNAL /* empty secret, or the crypto library failed */

/* Longest token accepted, in bytes; longer ones are JWT_EMALFORMED. */
#define JWT_MAX_LEN 4096

/* Verifies token[0..len) against secret[0..secret_len) at time `now`
 * (seconds since the epoch).
 *
 * The token is header.payload.signature, each part base64url without
 * padding (a '=' or any character outside the URL-safe alphabet is refused,
 * as are non-zero unused bits). The header must be a JSON object with "alg"
 * "HS256" and, when it has "typ", "typ" "JWT". The signature is checked
 * (constant time) before any claim is believed. The payload must be a JSON
 * object; duplicate keys are refused in both. "exp" and "nbf", when
 * present, must be numbers, and the token is valid when nbf <= now < exp
 * (no leeway). "sub" must be a non-empty string without U+0000.
 *
 * Checks run in that order (shape, alg, signature, exp, nbf, sub), so the
 * first failing one names the result. Returns 0 and sets *sub_out to a
 * NUL-terminated copy of sub that the caller frees with mem_free; or a
 * JWT_E* code with *sub_out NULL. sub_out may be NULL when the caller only
 * wants the verdict. Aborts on out-of-memory. */
int jwt_verify_hs256(const char *token, size_t len, const uint8_t *secret, size_t secret_len,
                     int64_t now, char **sub_out);

/* Signs payload_json[0..len) (a JSON object, used byte for byte as the
 * payload) with the header {"alg":"HS256","typ":"JWT"}. Returns 0 and sets
 * *out to the NUL-terminated token, caller-owned (mem_free); or
 * JWT_EMALFORMED (payload not a JSON object) or JWT_EINTERNAL (empty secret,
 * crypto failure), *out NULL. Aborts on out-of-memory. */
int jwt_sign_hs256(const char *payload_json, size_t len, const uint8_t *secret,
                   size_t secret_len, char **out);

/* A short English description of a JWT_E* code ("expired", ...); static
 * storage, never NULL. For logs: the contract answers every failure with
 * {"message":"unauthorized"}. */
const char *jwt_strerror(int rc);

#endif
