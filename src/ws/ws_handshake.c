/* ws_handshake.c - Sec-WebSocket-Accept from Sec-WebSocket-Key (RFC 6455
 * 4.2.2). Owns only the key check and the SHA-1 + base64 computation; the
 * HTTP request parsing and response writing live in the connection layer.
 *
 * Nothing is allocated: OpenSSL's one-shot SHA1 works on the stack. */
#include "ws/ws_handshake.h"

#include <string.h>

#include <openssl/sha.h>

#include "util/b64.h"

#define WS__GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS__KEY_LEN 24   /* base64 of 16 bytes */
#define WS__NONCE_LEN 16

int ws_accept_key(const char *key, size_t key_len, char out[WS_ACCEPT_LEN + 1])
{
    uint8_t nonce[WS__KEY_LEN / 4 * 3];
    char canon[WS__KEY_LEN + 1];
    char concat[WS__KEY_LEN + sizeof(WS__GUID) - 1];
    uint8_t digest[SHA_DIGEST_LENGTH];

    if (key == NULL || key_len != WS__KEY_LEN)
        return ERR_MALFORMED;
    if (b64_decode(key, key_len, nonce) != WS__NONCE_LEN)
        return ERR_MALFORMED;
    /* Refuse spellings that decode to the same nonce with stray low bits
     * ("...ZR==" for "...ZQ=="): a real client's encoder never makes them. */
    b64_encode(nonce, WS__NONCE_LEN, canon);
    if (memcmp(canon, key, WS__KEY_LEN) != 0)
        return ERR_MALFORMED;

    memcpy(concat, key, WS__KEY_LEN);
    memcpy(concat + WS__KEY_LEN, WS__GUID, sizeof(WS__GUID) - 1);
    if (SHA1((const unsigned char *)concat, sizeof(concat), digest) == NULL)
        return ERR_INTERNAL; /* only if OpenSSL cannot fetch SHA-1 at all */
    b64_encode(digest, sizeof(digest), out);
    return 0;
}
