/* resume_token.c - issue and verify resume tokens (see resume_token.h):
 * HMAC-SHA256 by OpenSSL, base64url by util/b64. Allocates nothing. */
#include "chat/resume_token.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/b64.h"

#define RESUME_TOKEN__PREFIX "p1."
#define RESUME_TOKEN__PREFIX_LEN 3
#define RESUME_TOKEN__MAC_LEN 32
#define RESUME_TOKEN__SIG_LEN B64URL_ENCODED_LEN(RESUME_TOKEN__MAC_LEN)

_Static_assert(RESUME_TOKEN_LEN == RESUME_TOKEN__PREFIX_LEN + RAND_ID_LEN + 1 +
                                       RESUME_TOKEN__SIG_LEN,
               "RESUME_TOKEN_LEN is the length of the form");

static int resume_token__id_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* Is s[0..RAND_ID_LEN) an id of rand_id's form? */
static int resume_token__id_ok(const char *s)
{
    for (size_t i = 0; i < RAND_ID_LEN; i++)
        if (!resume_token__id_char((unsigned char)s[i]))
            return 0;
    return 1;
}

/* The MAC of "p1." <id>, the part of the token before the second dot. */
static int resume_token__mac(const uint8_t key[RESUME_TOKEN_KEY_LEN], const char *signed_part,
                             uint8_t mac[RESUME_TOKEN__MAC_LEN])
{
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), key, RESUME_TOKEN_KEY_LEN, (const unsigned char *)signed_part,
             RESUME_TOKEN__PREFIX_LEN + RAND_ID_LEN, mac, &mac_len) == NULL ||
        mac_len != RESUME_TOKEN__MAC_LEN)
        return ERR_INTERNAL;
    return 0;
}

int resume_token_issue(const uint8_t key[RESUME_TOKEN_KEY_LEN], const char *user_id,
                       char out[RESUME_TOKEN_LEN + 1])
{
    if (strlen(user_id) != RAND_ID_LEN || !resume_token__id_ok(user_id))
        return ERR_INVAL;
    uint8_t mac[RESUME_TOKEN__MAC_LEN];
    char *p = out;
    memcpy(p, RESUME_TOKEN__PREFIX, RESUME_TOKEN__PREFIX_LEN);
    p += RESUME_TOKEN__PREFIX_LEN;
    memcpy(p, user_id, RAND_ID_LEN);
    p += RAND_ID_LEN;
    int rc = resume_token__mac(key, out, mac);
    if (rc < 0)
        return rc;
    *p++ = '.';
    p += b64url_encode(mac, sizeof(mac), p);
    *p = '\0';
    return 0;
}

int resume_token_verify(const uint8_t key[RESUME_TOKEN_KEY_LEN], const char *token, size_t len,
                        char user_id[RAND_ID_LEN + 1])
{
    if (len != RESUME_TOKEN_LEN || memcmp(token, RESUME_TOKEN__PREFIX, RESUME_TOKEN__PREFIX_LEN) != 0)
        return ERR_MALFORMED;
    const char *id = token + RESUME_TOKEN__PREFIX_LEN;
    const char *sig = id + RAND_ID_LEN + 1;
    if (!resume_token__id_ok(id) || id[RAND_ID_LEN] != '.')
        return ERR_MALFORMED;
    uint8_t given[B64URL_DECODED_MAX(RESUME_TOKEN__SIG_LEN)];
    if (b64url_decode(sig, RESUME_TOKEN__SIG_LEN, given) != RESUME_TOKEN__MAC_LEN)
        return ERR_MALFORMED;
    uint8_t mac[RESUME_TOKEN__MAC_LEN];
    int rc = resume_token__mac(key, token, mac);
    if (rc < 0)
        return rc;
    if (CRYPTO_memcmp(given, mac, RESUME_TOKEN__MAC_LEN) != 0)
        return ERR_BADSIG;
    memcpy(user_id, id, RAND_ID_LEN);
    user_id[RAND_ID_LEN] = '\0';
    return 0;
}
