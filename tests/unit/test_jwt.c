/* test_jwt.c - HS256 JWT verification and signing (src/chat/jwt.c).
 *
 * Tokens are built here with OpenSSL's own base64 and HMAC, independently of
 * jwt.c, so that any header and payload can be tried; one fixed token made
 * outside C (Python's hmac and base64) anchors both sides to the standard. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "chat/jwt.h"
#include "util/mem.h"

#define SECRET ((const uint8_t *)"parley-test-secret")
#define SECRET_LEN (sizeof("parley-test-secret") - 1)
#define NOW ((int64_t)1700000000)

/* Made at authoring time with:
 *   python3 -c 'import hmac,hashlib,base64
 *   b=lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
 *   s=b(b"{\"alg\":\"HS256\",\"typ\":\"JWT\"}")+"."+b(b"{\"sub\":\"Alice\",\"exp\":4102444800}")
 *   print(s+"."+b(hmac.new(b"parley-test-secret",s.encode(),hashlib.sha256).digest()))' */
static const char known_token[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJBbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0."
    "GYHkISRO-BDVMdSxU_ZzetkGLznjcj9x0gzT_fcTIT0";

/* base64url without padding, through OpenSSL's standard base64. */
static void b64url(const void *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (int i = 0; i < len; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
}

/* header.payload signed with secret; static buffer, valid until next call. */
static const char *make(const char *header, const char *payload, const char *secret)
{
    static char tok[4096];
    char sig[64];
    unsigned char mac[32];
    unsigned int mac_len;

    b64url(header, strlen(header), tok);
    strcat(tok, ".");
    b64url(payload, strlen(payload), tok + strlen(tok));
    assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)tok,
                         strlen(tok), mac, &mac_len));
    b64url(mac, mac_len, sig);
    strcat(tok, ".");
    strcat(tok, sig);
    return tok;
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static int verify(const char *tok, char **sub)
{
    return jwt_verify_hs256(tok, strlen(tok), SECRET, SECRET_LEN, NOW, sub);
}

static void expect_rc(const char *tok, int rc)
{
    char *sub = (char *)"untouched";
    assert_int_equal(verify(tok, &sub), rc);
    assert_null(sub);
}

static void test_known_token(void **state)
{
    (void)state;
    char *sub = NULL;
    assert_int_equal(verify(known_token, &sub), 0);
    assert_string_equal(sub, "Alice");
    mem_free(sub);

    /* jwt_sign_hs256 produces exactly the same bytes */
    const char payload[] = "{\"sub\":\"Alice\",\"exp\":4102444800}";
    char *tok = NULL;
    assert_int_equal(jwt_sign_hs256(payload, strlen(payload), SECRET, SECRET_LEN, &tok), 0);
    assert_string_equal(tok, known_token);
    mem_free(tok);

    /* and the test's own builder agrees too */
    assert_string_equal(make(HS256, payload, "parley-test-secret"), known_token);
}

static void test_good_tokens(void **state)
{
    (void)state;
    char *sub = NULL;
    assert_int_equal(verify(make(HS256, "{\"sub\":\"bob\"}", "parley-test-secret"), &sub), 0);
    assert_string_equal(sub, "bob");
    mem_free(sub);

    /* no typ; exp as a real; nbf == now; unicode sub */
    sub = NULL;
    assert_int_equal(verify(make("{\"alg\":\"HS256\"}",
                                 "{\"sub\":\"Ren\\u00e9\",\"exp\":1700000000.5,\"nbf\":1700000000}",
                                 "parley-test-secret"), &sub), 0);
    assert_string_equal(sub, "Ren\xc3\xa9");
    mem_free(sub);

    /* sub_out may be NULL */
    assert_int_equal(verify(make(HS256, "{\"sub\":\"x\"}", "parley-test-secret"), NULL), 0);

    /* a signed token round-trips; other claims are ignored */
    const char payload[] = "{\"sub\":\"carol\",\"iat\":1,\"role\":[1,2]}";
    char *tok = NULL;
    assert_int_equal(jwt_sign_hs256(payload, strlen(payload), SECRET, SECRET_LEN, &tok), 0);
    assert_int_equal(verify(tok, &sub), 0);
    assert_string_equal(sub, "carol");
    mem_free(sub);
    mem_free(tok);
}

static void test_bad_signature(void **state)
{
    (void)state;
    expect_rc(make(HS256, "{\"sub\":\"bob\"}", "another-secret"), JWT_EBADSIG);

    /* flip one signature character (keeping unused bits zero) */
    char tok[sizeof(known_token)];
    memcpy(tok, known_token, sizeof(tok));
    char *last = strrchr(tok, '.') + 1;
    last[0] = last[0] == 'A' ? 'B' : 'A';
    expect_rc(tok, JWT_EBADSIG);

    /* truncated signature: still base64url, wrong length */
    memcpy(tok, known_token, sizeof(tok));
    tok[strlen(tok) - 3] = '\0'; /* 40 characters: 30 bytes */
    expect_rc(tok, JWT_EBADSIG);

    /* empty signature */
    memcpy(tok, known_token, sizeof(tok));
    strrchr(tok, '.')[1] = '\0';
    expect_rc(tok, JWT_EBADSIG);

    /* empty secret is refused outright */
    assert_int_equal(jwt_verify_hs256(known_token, strlen(known_token), SECRET, 0, NOW, NULL),
                     JWT_EINTERNAL);
}

static void test_tampered_payload(void **state)
{
    (void)state;
    /* the payload of another token signed with the same key */
    char good[512], other[512], forged[1024];
    strcpy(good, make(HS256, "{\"sub\":\"bob\"}", "parley-test-secret"));
    strcpy(other, make(HS256, "{\"sub\":\"admin\"}", "parley-test-secret"));
    char *g1 = strchr(good, '.'), *g2 = strrchr(good, '.');
    char *o1 = strchr(other, '.'), *o2 = strrchr(other, '.');
    snprintf(forged, sizeof(forged), "%.*s%.*s%s", (int)(g1 - good), good, (int)(o2 - o1), o1, g2);
    expect_rc(forged, JWT_EBADSIG);

    /* payload re-encoded by an attacker without the key */
    char p[128];
    const char *evil = "{\"sub\":\"admin\",\"exp\":4102444800}";
    b64url(evil, strlen(evil), p);
    snprintf(forged, sizeof(forged), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.%s.%s", p,
             strrchr(known_token, '.') + 1);
    expect_rc(forged, JWT_EBADSIG);
}

static void test_time_claims(void **state)
{
    (void)state;
    const char *s = "parley-test-secret";
    expect_rc(make(HS256, "{\"sub\":\"bob\",\"exp\":1699999999}", s), JWT_EEXPIRED);
    expect_rc(make(HS256, "{\"sub\":\"bob\",\"exp\":1700000000}", s), JWT_EEXPIRED); /* now == exp */
    expect_rc(make(HS256, "{\"sub\":\"bob\",\"exp\":1.0}", s), JWT_EEXPIRED);
    expect_rc(make(HS256, "{\"sub\":\"bob\",\"nbf\":1700000001}", s), JWT_ENOTYET);
    expect_rc(make(HS256, "{\"sub\":\"bob\",\"nbf\":1700000000.5}", s), JWT_ENOTYET);
    expect_rc(make(HS256, "{\"sub\":\"bob\",\"exp\":\"4102444800\"}", s), JWT_EMALFORMED);
    expect_rc(make(HS256, "{\"sub\":\"bob\",\"nbf\":null}", s), JWT_EMALFORMED);
    /* expiry is checked before sub */
    expect_rc(make(HS256, "{\"exp\":1}", s), JWT_EEXPIRED);

    /* the caller's clock decides */
    const char *tok = make(HS256, "{\"sub\":\"bob\",\"exp\":1700000100,\"nbf\":1700000050}", s);
    assert_int_equal(jwt_verify_hs256(tok, strlen(tok), SECRET, SECRET_LEN, 1700000049, NULL),
                     JWT_ENOTYET);
    assert_int_equal(jwt_verify_hs256(tok, strlen(tok), SECRET, SECRET_LEN, 1700000050, NULL), 0);
    assert_int_equal(jwt_verify_hs256(tok, strlen(tok), SECRET, SECRET_LEN, 1700000099, NULL), 0);
    assert_int_equal(jwt_verify_hs256(tok, strlen(tok), SECRET, SECRET_LEN, 1700000100, NULL),
                     JWT_EEXPIRED);
}

static void test_algorithms(void **state)
{
    (void)state;
    const char *s = "parley-test-secret";
    char tok[512], h[128], p[128];

    /* alg none with an empty signature */
    const char *none = "{\"alg\":\"none\",\"typ\":\"JWT\"}", *admin = "{\"sub\":\"admin\"}";
    b64url(none, strlen(none), h);
    b64url(admin, strlen(admin), p);
    snprintf(tok, sizeof(tok), "%s.%s.", h, p);
    expect_rc(tok, JWT_EBADALG);

    /* alg HS512 and others, even when "signed" with HS256 by the key holder */
    expect_rc(make("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", "{\"sub\":\"bob\"}", s), JWT_EBADALG);
    expect_rc(make("{\"alg\":\"hs256\"}", "{\"sub\":\"bob\"}", s), JWT_EBADALG);
    expect_rc(make("{\"alg\":\"RS256\"}", "{\"sub\":\"bob\"}", s), JWT_EBADALG);
    /* alg missing or not a string: malformed */
    expect_rc(make("{\"typ\":\"JWT\"}", "{\"sub\":\"bob\"}", s), JWT_EMALFORMED);
    expect_rc(make("{\"alg\":256}", "{\"sub\":\"bob\"}", s), JWT_EMALFORMED);
    /* typ other than JWT; duplicate alg */
    expect_rc(make("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", "{\"sub\":\"bob\"}", s), JWT_EMALFORMED);
    expect_rc(make("{\"alg\":\"HS256\",\"alg\":\"none\"}", "{\"sub\":\"bob\"}", s), JWT_EMALFORMED);
}

static void test_malformed(void **state)
{
    (void)state;
    const char *s = "parley-test-secret";
    char tok[1024];

    expect_rc("", JWT_EMALFORMED);
    expect_rc("abc", JWT_EMALFORMED);
    expect_rc("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0", JWT_EMALFORMED); /* 2 parts */
    snprintf(tok, sizeof(tok), "%s.x", known_token);                   /* 4 parts */
    expect_rc(tok, JWT_EMALFORMED);
    snprintf(tok, sizeof(tok), "%s.", known_token); /* 4 parts, last empty */
    expect_rc(tok, JWT_EMALFORMED);
    expect_rc("..", JWT_EMALFORMED);
    expect_rc(".eyJzdWIiOiJ4In0.", JWT_EMALFORMED);

    /* bad base64url: standard alphabet, padding, bad length, stray bits */
    strcpy(tok, known_token);
    strrchr(tok, '.')[1] = '+';
    expect_rc(tok, JWT_EMALFORMED);
    snprintf(tok, sizeof(tok), "%s=", known_token);
    expect_rc(tok, JWT_EMALFORMED);
    expect_rc("eyJhbGciOiJIUzI1NiJ9=.eyJzdWIiOiJ4In0.AAAA", JWT_EMALFORMED);
    expect_rc("eyJhbGciOiJIUzI1NiJ9A.eyJzdWIiOiJ4In0.AAAA", JWT_EMALFORMED); /* len%4==1 */
    /* 32 signature bytes take 43 characters, the last one with 2 unused
     * bits: '0' -> '1' sets one, which is refused (not merely a bad MAC) */
    strcpy(tok, known_token);
    assert_int_equal(tok[strlen(tok) - 1], '0');
    tok[strlen(tok) - 1] = '1';
    expect_rc(tok, JWT_EMALFORMED);
    /* a NUL inside the token */
    memcpy(tok, known_token, sizeof(known_token));
    tok[5] = '\0';
    assert_int_equal(jwt_verify_hs256(tok, sizeof(known_token) - 1, SECRET, SECRET_LEN, NOW, NULL),
                     JWT_EMALFORMED);

    /* non-JSON and non-object parts (signed properly) */
    expect_rc(make("not json", "{\"sub\":\"bob\"}", s), JWT_EMALFORMED);
    expect_rc(make(HS256, "not json", s), JWT_EMALFORMED);
    expect_rc(make(HS256, "[\"sub\",\"bob\"]", s), JWT_EMALFORMED);
    expect_rc(make(HS256, "\"bob\"", s), JWT_EMALFORMED);
    expect_rc(make("[]", "{\"sub\":\"bob\"}", s), JWT_EMALFORMED);
    expect_rc(make(HS256, "{\"sub\":\"bob\",\"sub\":\"eve\"}", s), JWT_EMALFORMED);

    /* too long */
    char *big = mem_alloc(JWT_MAX_LEN + 2);
    memset(big, 'A', JWT_MAX_LEN + 1);
    big[10] = '.';
    big[20] = '.';
    big[JWT_MAX_LEN + 1] = '\0';
    expect_rc(big, JWT_EMALFORMED);
    mem_free(big);
}

static void test_sub(void **state)
{
    (void)state;
    const char *s = "parley-test-secret";
    expect_rc(make(HS256, "{}", s), JWT_ENOSUB);
    expect_rc(make(HS256, "{\"name\":\"bob\"}", s), JWT_ENOSUB);
    expect_rc(make(HS256, "{\"sub\":42}", s), JWT_ENOSUB);
    expect_rc(make(HS256, "{\"sub\":null}", s), JWT_ENOSUB);
    expect_rc(make(HS256, "{\"sub\":[\"bob\"]}", s), JWT_ENOSUB);
    expect_rc(make(HS256, "{\"sub\":\"\"}", s), JWT_ENOSUB);
    /* U+0000 in sub is refused by the JSON parser */
    expect_rc(make(HS256, "{\"sub\":\"a\\u0000b\"}", s), JWT_EMALFORMED);
}

static void test_sign_errors(void **state)
{
    (void)state;
    char *tok = (char *)"untouched";
    assert_int_equal(jwt_sign_hs256("[1]", 3, SECRET, SECRET_LEN, &tok), JWT_EMALFORMED);
    assert_null(tok);
    tok = (char *)"untouched";
    assert_int_equal(jwt_sign_hs256("{\"sub\":", 7, SECRET, SECRET_LEN, &tok), JWT_EMALFORMED);
    assert_null(tok);
    tok = (char *)"untouched";
    assert_int_equal(jwt_sign_hs256("{}", 2, SECRET, 0, &tok), JWT_EINTERNAL);
    assert_null(tok);
    assert_string_equal(jwt_strerror(JWT_EEXPIRED), "expired");
    assert_string_equal(jwt_strerror(-100), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_token),
        cmocka_unit_test(test_good_tokens),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_tampered_payload),
        cmocka_unit_test(test_time_claims),
        cmocka_unit_test(test_algorithms),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_sub),
        cmocka_unit_test(test_sign_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
