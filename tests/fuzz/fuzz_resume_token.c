/* fuzz_resume_token.c - libFuzzer target for guest resume tokens
 * (src/chat/resume_token.c) and the URL-safe base64 under them
 * (src/util/b64.c), with a fixed key.
 *
 * Per input:
 *  1. The input as a token: the result is 0, ERR_MALFORMED or ERR_BADSIG,
 *     never anything else; 0 only for a string of exactly RESUME_TOKEN_LEN
 *     bytes that is what resume_token_issue makes for the id it gives back
 *     (so no second spelling of a token verifies).
 *  2. The input as base64url: b64url_decode either refuses it or decodes
 *     it to bytes whose encoding is the input again (one spelling per
 *     byte string), within B64URL_DECODED_MAX.
 *  3. An id made from the input's bytes (mapped into the alphabet): its
 *     token verifies to the same id, and the same token verified with a
 *     key one bit away is ERR_BADSIG.
 * Any breach aborts.
 *
 * Build and run: make fuzz-build && scripts/fuzz.sh 60 build-fuzz/fuzz_resume_token
 * (corpus: tests/fuzz/corpus/resume_token). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat/resume_token.h"
#include "fuzz.h"
#include "util/b64.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void key_of(uint8_t key[RESUME_TOKEN_KEY_LEN], uint8_t flip)
{
    for (int i = 0; i < RESUME_TOKEN_KEY_LEN; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    key[0] ^= flip;
}

static void check_as_token(const uint8_t *key, const uint8_t *data, size_t size)
{
    char *tok = malloc(size ? size : 1); /* exact size: ASan sees overreads */
    FUZZ_CHECK(tok != NULL);
    memcpy(tok, data, size);
    char id[RAND_ID_LEN + 1];
    int rc = resume_token_verify(key, tok, size, id);
    FUZZ_CHECK(rc == 0 || rc == ERR_MALFORMED || rc == ERR_BADSIG);
    if (rc == 0) {
        char again[RESUME_TOKEN_LEN + 1];
        FUZZ_CHECK(size == RESUME_TOKEN_LEN);
        FUZZ_CHECK(resume_token_issue(key, id, again) == 0);
        FUZZ_CHECK(memcmp(again, tok, size) == 0);
    }
    free(tok);
}

static void check_as_b64url(const uint8_t *data, size_t size)
{
    uint8_t *dec = malloc(B64URL_DECODED_MAX(size));
    FUZZ_CHECK(dec != NULL);
    long n = b64url_decode((const char *)data, size, dec);
    if (n >= 0) {
        FUZZ_CHECK((size_t)n <= B64URL_DECODED_MAX(size));
        char *enc = malloc(B64URL_ENCODED_LEN((size_t)n) + 1);
        FUZZ_CHECK(enc != NULL);
        size_t m = b64url_encode(dec, (size_t)n, enc);
        FUZZ_CHECK(m == size && memcmp(enc, data, size) == 0);
        free(enc);
    } else {
        FUZZ_CHECK(n == ERR_MALFORMED);
    }
    free(dec);
}

static void check_issued(const uint8_t *key, const uint8_t *data, size_t size)
{
    char id[RAND_ID_LEN + 1], tok[RESUME_TOKEN_LEN + 1], back[RAND_ID_LEN + 1];
    for (size_t i = 0; i < RAND_ID_LEN; i++)
        id[i] = alphabet[(i < size ? data[i] : i) & 63];
    id[RAND_ID_LEN] = '\0';
    FUZZ_CHECK(resume_token_issue(key, id, tok) == 0);
    FUZZ_CHECK(strlen(tok) == RESUME_TOKEN_LEN);
    FUZZ_CHECK(resume_token_verify(key, tok, RESUME_TOKEN_LEN, back) == 0);
    FUZZ_CHECK(strcmp(back, id) == 0);
    uint8_t other[RESUME_TOKEN_KEY_LEN];
    key_of(other, (uint8_t)(1u << (size % 8)));
    FUZZ_CHECK(resume_token_verify(other, tok, RESUME_TOKEN_LEN, back) == ERR_BADSIG);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t key[RESUME_TOKEN_KEY_LEN];
    key_of(key, 0);
    check_as_token(key, data, size);
    check_as_b64url(data, size);
    check_issued(key, data, size);
    return 0;
}
