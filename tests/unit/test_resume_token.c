/* test_resume_token.c - guest resume tokens (src/chat/resume_token.c) and
 * the URL-safe base64 they use (src/util/b64.c).
 *
 * One fixed token made outside C (Python's hmac and base64) anchors the
 * module to the standard; the base64url codec is checked against the RFC's
 * vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "chat/resume_token.h"
#include "util/b64.h"

/* Key bytes 0, 1, ..., 31. */
static void test_key(uint8_t key[RESUME_TOKEN_KEY_LEN])
{
    for (int i = 0; i < RESUME_TOKEN_KEY_LEN; i++)
        key[i] = (uint8_t)i;
}

/* Made at authoring time with:
 *   python3 -c 'import hmac,hashlib,base64
 *   m="p1.AAAAAAAAAAAAAAAAAAAA"
 *   print(m+"."+base64.urlsafe_b64encode(hmac.new(bytes(range(32)),m.encode(),
 *         hashlib.sha256).digest()).rstrip(b"=").decode())' */
static const char known_token[] = "p1.AAAAAAAAAAAAAAAAAAAA.hRVUmiMsEBux1km_R-oFW-IhhcAAw3bw11Wogh8CPRY";

static void test_known_token(void **state)
{
    (void)state;
    uint8_t key[RESUME_TOKEN_KEY_LEN];
    test_key(key);
    char tok[RESUME_TOKEN_LEN + 1], id[RAND_ID_LEN + 1];
    assert_int_equal(resume_token_issue(key, "AAAAAAAAAAAAAAAAAAAA", tok), 0);
    assert_string_equal(tok, known_token);
    assert_int_equal(resume_token_verify(key, known_token, strlen(known_token), id), 0);
    assert_string_equal(id, "AAAAAAAAAAAAAAAAAAAA");
}

static void test_round_trip_random_ids(void **state)
{
    (void)state;
    uint8_t key[RESUME_TOKEN_KEY_LEN];
    test_key(key);
    for (int i = 0; i < 100; i++) {
        char uid[RAND_ID_LEN + 1], tok[RESUME_TOKEN_LEN + 1], back[RAND_ID_LEN + 1];
        rand_id(uid);
        assert_int_equal(resume_token_issue(key, uid, tok), 0);
        assert_int_equal(strlen(tok), RESUME_TOKEN_LEN);
        assert_int_equal(resume_token_verify(key, tok, strlen(tok), back), 0);
        assert_string_equal(back, uid);
    }
}

static void test_any_changed_byte_is_refused(void **state)
{
    (void)state;
    uint8_t key[RESUME_TOKEN_KEY_LEN];
    test_key(key);
    char tok[RESUME_TOKEN_LEN + 1], id[RAND_ID_LEN + 1];
    assert_int_equal(resume_token_issue(key, "abcdefghij-_0123456z", tok), 0);
    for (size_t i = 0; i < RESUME_TOKEN_LEN; i++) {
        char t[RESUME_TOKEN_LEN + 1];
        memcpy(t, tok, sizeof(t));
        t[i] = t[i] == 'A' ? 'B' : 'A';
        strcpy(id, "unchanged");
        int rc = resume_token_verify(key, t, RESUME_TOKEN_LEN, id);
        assert_true(rc == ERR_BADSIG || rc == ERR_MALFORMED);
        assert_string_equal(id, "unchanged");
    }
}

static void test_other_key_is_refused(void **state)
{
    (void)state;
    uint8_t key[RESUME_TOKEN_KEY_LEN], other[RESUME_TOKEN_KEY_LEN];
    test_key(key);
    test_key(other);
    other[31] ^= 1;
    char tok[RESUME_TOKEN_LEN + 1], id[RAND_ID_LEN + 1];
    assert_int_equal(resume_token_issue(key, "AAAAAAAAAAAAAAAAAAAA", tok), 0);
    assert_int_equal(resume_token_verify(other, tok, strlen(tok), id), ERR_BADSIG);
}

static void test_malformed(void **state)
{
    (void)state;
    uint8_t key[RESUME_TOKEN_KEY_LEN];
    test_key(key);
    char tok[RESUME_TOKEN_LEN + 1], id[RAND_ID_LEN + 1];
    assert_int_equal(resume_token_issue(key, "AAAAAAAAAAAAAAAAAAAA", tok), 0);
    /* cut short, one more character, empty */
    assert_int_equal(resume_token_verify(key, tok, RESUME_TOKEN_LEN - 1, id), ERR_MALFORMED);
    char longer[RESUME_TOKEN_LEN + 2];
    memcpy(longer, tok, RESUME_TOKEN_LEN);
    longer[RESUME_TOKEN_LEN] = 'A';
    assert_int_equal(resume_token_verify(key, longer, RESUME_TOKEN_LEN + 1, id), ERR_MALFORMED);
    assert_int_equal(resume_token_verify(key, "", 0, id), ERR_MALFORMED);
    /* a JWT-looking string of the right length, an embedded NUL */
    char t[RESUME_TOKEN_LEN + 1];
    memcpy(t, tok, sizeof(t));
    t[0] = 'e';
    assert_int_equal(resume_token_verify(key, t, RESUME_TOKEN_LEN, id), ERR_MALFORMED);
    memcpy(t, tok, sizeof(t));
    t[5] = '\0';
    assert_int_equal(resume_token_verify(key, t, RESUME_TOKEN_LEN, id), ERR_MALFORMED);
    /* padding in the signature */
    memcpy(t, tok, sizeof(t));
    t[RESUME_TOKEN_LEN - 1] = '=';
    assert_int_equal(resume_token_verify(key, t, RESUME_TOKEN_LEN, id), ERR_MALFORMED);
    /* a huge string is refused by length */
    static char huge[1 << 16];
    memset(huge, 'A', sizeof(huge));
    assert_int_equal(resume_token_verify(key, huge, sizeof(huge), id), ERR_MALFORMED);
}

static void test_issue_refuses_bad_ids(void **state)
{
    (void)state;
    uint8_t key[RESUME_TOKEN_KEY_LEN];
    test_key(key);
    char tok[RESUME_TOKEN_LEN + 1];
    assert_int_equal(resume_token_issue(key, "short", tok), ERR_INVAL);
    assert_int_equal(resume_token_issue(key, "AAAAAAAAAAAAAAAAAAA.", tok), ERR_INVAL);
    assert_int_equal(resume_token_issue(key, "AAAAAAAAAAAAAAAAAAAAA", tok), ERR_INVAL);
}

static void test_b64url(void **state)
{
    (void)state;
    /* RFC 4648 section 10 vectors, URL-safe form without padding */
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const out[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        char enc[16];
        uint8_t dec[16];
        size_t n = b64url_encode((const uint8_t *)in[i], strlen(in[i]), enc);
        assert_int_equal(n, strlen(out[i]));
        assert_memory_equal(enc, out[i], n);
        assert_int_equal(b64url_decode(out[i], n, dec), (long)strlen(in[i]));
        assert_memory_equal(dec, in[i], strlen(in[i]));
    }
    uint8_t dec[16];
    const uint8_t ff[] = {0xfb, 0xff};
    char enc[8];
    assert_int_equal(b64url_encode(ff, 2, enc), 3);
    assert_memory_equal(enc, "-_8", 3);
    assert_int_equal(b64url_decode("Zm9=", 4, dec), ERR_MALFORMED);  /* padding */
    assert_int_equal(b64url_decode("Zm9+", 4, dec), ERR_MALFORMED);  /* standard alphabet */
    assert_int_equal(b64url_decode("Zm9vY", 5, dec), ERR_MALFORMED); /* impossible length */
    assert_int_equal(b64url_decode("Zh", 2, dec), ERR_MALFORMED);    /* unused bits set */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_token),
        cmocka_unit_test(test_round_trip_random_ids),
        cmocka_unit_test(test_any_changed_byte_is_refused),
        cmocka_unit_test(test_other_key_is_refused),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_issue_refuses_bad_ids),
        cmocka_unit_test(test_b64url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
