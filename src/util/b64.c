/* b64.c - base64 on OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock (see b64.h). */
#include "util/b64.h"

#include <openssl/evp.h>

size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
    if (n == 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

long b64_decode(const char *in, size_t n, uint8_t *out)
{
    if (n == 0)
        return 0;
    if (n % 4 != 0 || n > 0x7fffffff)
        return -1;
    /* EVP_DecodeBlock accepts white space and does not strip padding; be
     * strict ourselves so that malformed input is refused, not guessed. */
    size_t pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                 (c >= '0' && c <= '9') || c == '+' || c == '/';
        if (c == '=') {
            if (i < n - 2)
                return -1;
            pad++;
        } else if (!ok || pad) {
            return -1;
        }
    }
    int r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (r < 0)
        return -1;
    return (long)r - (long)pad;
}
