/* b64.c - base64 (see b64.h): the padded form on OpenSSL's
 * EVP_EncodeBlock/EVP_DecodeBlock, the URL-safe form by hand (OpenSSL has
 * none). */
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

/* ---- URL-safe, no padding ------------------------------------------------ */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value of a URL-safe base64 character, or -1. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

size_t b64url_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i > 0) { /* one or two bytes left: two or three characters */
        uint32_t v = (uint32_t)in[i] << 16 | (n - i == 2 ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        if (n - i == 2)
            out[o++] = b64url_alphabet[(v >> 6) & 63];
    }
    return o;
}

long b64url_decode(const char *in, size_t n, uint8_t *out)
{
    if (n % 4 == 1)
        return ERR_MALFORMED;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return ERR_MALFORMED;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* the leftover bits of the last character */
        return ERR_MALFORMED;
    return (long)o;
}
