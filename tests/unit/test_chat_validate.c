/* test_chat_validate.c - the contract's field rules: names, content,
 * clientId, and the error vocabulary (src/chat/chat_validate.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "chat/chat_validate.h"
#include "util/mem.h"

/* Length of a literal that may hold "\0". */
#define LIT(s) (s), (sizeof(s) - 1)

static int user(const char *s, size_t len, chat_name_t *out)
{
    return chat_username_parse(s, len, out);
}

/* Parses a username that must be valid and checks its display form. */
static void expect_user(const char *s, size_t len, const char *display)
{
    chat_name_t n;
    assert_int_equal(user(s, len, &n), 0);
    assert_string_equal(n.display, display);
    assert_int_equal(n.display_len, strlen(display));
    assert_int_equal(n.key_len, strlen(n.key));
    chat_name_free(&n);
}

static void expect_user_rc(const char *s, size_t len, int rc)
{
    chat_name_t n;
    assert_int_equal(user(s, len, &n), rc);
    assert_null(n.display);
    assert_null(n.key);
    chat_name_free(&n); /* freeing a zeroed name is allowed */
}

/* A string of n copies of the UTF-8 sequence u. Caller frees. */
static char *repeat(const char *u, size_t n, size_t *len)
{
    size_t ul = strlen(u);
    char *s = mem_alloc(ul * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * ul, u, ul);
    s[ul * n] = '\0';
    *len = ul * n;
    return s;
}

/* ---- trimming ------------------------------------------------------------ */

static void test_trim_ascii_and_unicode_space(void **state)
{
    (void)state;
    expect_user(LIT("  alice  "), "alice");
    expect_user(LIT("\t\n\v\f\ralice\r\n"), "alice");
    /* U+3000 ideographic space, U+00A0 NBSP, U+0085 NEL at both ends */
    expect_user(LIT("\xe3\x80\x80\xc2\xa0" "bob" "\xc2\xa0\xe3\x80\x80"), "bob");
    expect_user(LIT("\xc2\x85" "bob" "\xc2\x85"), "bob");
    /* U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F */
    expect_user(LIT("\xe1\x9a\x80\xe2\x80\x80\xe2\x80\x8a\xe2\x80\xa8" "c"
                    "\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\x9f"), "c");
    /* white space inside is kept (NBSP is Zs, not a control) */
    expect_user(LIT(" a b "), "a b");
    expect_user(LIT("a\xc2\xa0" "b"), "a\xc2\xa0" "b");
}

static void test_empty_and_only_space(void **state)
{
    (void)state;
    expect_user_rc(LIT(""), CHAT_VALID_EMPTY);
    expect_user_rc(LIT("   "), CHAT_VALID_EMPTY);
    expect_user_rc(LIT("\xe3\x80\x80\xc2\xa0\xc2\x85\t"), CHAT_VALID_EMPTY);
}

/* ---- lengths ------------------------------------------------------------- */

static void test_length_bounds(void **state)
{
    (void)state;
    size_t len;
    char *s;

    s = repeat("a", 32, &len);
    expect_user(s, len, s);
    mem_free(s);

    s = repeat("a", 33, &len);
    expect_user_rc(s, len, CHAT_VALID_TOO_LONG);
    mem_free(s);

    /* 32 four-byte code points (128 bytes) is fine, 33 is not */
    s = repeat("\xf0\x9f\x98\x80", 32, &len);
    assert_int_equal(len, 128);
    expect_user(s, len, s);
    mem_free(s);
    s = repeat("\xf0\x9f\x98\x80", 33, &len);
    expect_user_rc(s, len, CHAT_VALID_TOO_LONG);
    mem_free(s);

    /* trimmed space does not count */
    char buf[64];
    memset(buf, ' ', sizeof(buf));
    memset(buf + 10, 'x', 32);
    chat_name_t n;
    assert_int_equal(user(buf, sizeof(buf), &n), 0);
    assert_int_equal(n.display_len, 32);
    chat_name_free(&n);
}

static void test_length_counts_nfc_form(void **state)
{
    (void)state;
    size_t len;
    /* 32 x (e + U+0301) is 64 code points as sent, 32 once composed */
    char *s = repeat("e\xcc\x81", 32, &len);
    chat_name_t n;
    assert_int_equal(user(s, len, &n), 0);
    char *want = repeat("\xc3\xa9", 32, &len);
    assert_string_equal(n.display, want);
    chat_name_free(&n);
    mem_free(want);
    mem_free(s);

    /* 33 composed is too long */
    s = repeat("e\xcc\x81", 33, &len);
    expect_user_rc(s, len, CHAT_VALID_TOO_LONG);
    mem_free(s);

    /* huge input is refused without normalizing it */
    s = repeat("\xcc\x81", 100000, &len);
    expect_user_rc(s, len, CHAT_VALID_TOO_LONG);
    mem_free(s);
}

static void test_room_length(void **state)
{
    (void)state;
    size_t len;
    chat_name_t n;
    char *s = repeat("\xe4\xb8\xad", 64, &len); /* U+4E2D, 3 bytes */
    assert_int_equal(chat_room_parse(s, len, &n), 0);
    assert_int_equal(n.display_len, 192);
    chat_name_free(&n);
    mem_free(s);
    s = repeat("\xe4\xb8\xad", 65, &len);
    assert_int_equal(chat_room_parse(s, len, &n), CHAT_VALID_TOO_LONG);
    mem_free(s);
    /* a 33..64 code point name is a room name but not a username */
    s = repeat("r", 40, &len);
    assert_int_equal(chat_room_parse(s, len, &n), 0);
    chat_name_free(&n);
    assert_int_equal(chat_username_parse(s, len, &n), CHAT_VALID_TOO_LONG);
    mem_free(s);
    assert_int_equal(chat_room_parse(LIT(" \t "), &n), CHAT_VALID_EMPTY);
    assert_int_equal(chat_room_parse(LIT("a\x01"), &n), CHAT_VALID_BAD_CHAR);
}

/* ---- refused characters -------------------------------------------------- */

static void test_cc_refused(void **state)
{
    (void)state;
    expect_user_rc(LIT("a\x01" "b"), CHAT_VALID_BAD_CHAR);
    expect_user_rc(LIT("\x01" "ab"), CHAT_VALID_BAD_CHAR);
    expect_user_rc(LIT("a\x7f"), CHAT_VALID_BAD_CHAR);     /* DEL is Cc */
    expect_user_rc(LIT("a\xc2\x9b" "b"), CHAT_VALID_BAD_CHAR); /* C1 CSI */
    expect_user_rc(LIT("a\0b"), CHAT_VALID_BAD_CHAR);
    expect_user_rc(LIT("a\tb"), CHAT_VALID_BAD_CHAR);     /* tab: trimmed only */
    /* U+0085 is Cc and White_Space: trimmed at the ends, refused inside */
    expect_user(LIT("\xc2\x85" "ab" "\xc2\x85"), "ab");
    expect_user_rc(LIT("a\xc2\x85" "b"), CHAT_VALID_BAD_CHAR);
}

static void test_cf_refused(void **state)
{
    (void)state;
    expect_user_rc(LIT("a\xe2\x80\x8b" "b"), CHAT_VALID_BAD_CHAR); /* U+200B ZWSP */
    expect_user_rc(LIT("\xe2\x80\xae" "abc"), CHAT_VALID_BAD_CHAR); /* U+202E RLO */
    expect_user_rc(LIT("\xef\xbb\xbf" "abc"), CHAT_VALID_BAD_CHAR); /* U+FEFF BOM */
    expect_user_rc(LIT("ab\xc2\xad"), CHAT_VALID_BAD_CHAR);         /* U+00AD SHY */
    /* ZWSP is Cf, not White_Space: not trimmed either */
    expect_user_rc(LIT("abc\xe2\x80\x8b"), CHAT_VALID_BAD_CHAR);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    expect_user_rc(LIT("a\xff" "b"), CHAT_VALID_BAD_UTF8);
    expect_user_rc(LIT("a\xc3"), CHAT_VALID_BAD_UTF8);            /* truncated */
    expect_user_rc(LIT("\xc0\xaf" "a"), CHAT_VALID_BAD_UTF8);     /* overlong '/' */
    expect_user_rc(LIT("\xe0\x80\xaf" "a"), CHAT_VALID_BAD_UTF8); /* overlong */
    expect_user_rc(LIT("\xed\xa0\x80" "a"), CHAT_VALID_BAD_UTF8); /* surrogate */
    expect_user_rc(LIT("\xf4\x90\x80\x80"), CHAT_VALID_BAD_UTF8); /* > U+10FFFF */
    expect_user_rc(LIT("\x80" "abc"), CHAT_VALID_BAD_UTF8);       /* lone continuation */
    expect_user_rc(LIT("abc \xff"), CHAT_VALID_BAD_UTF8);         /* even past the end */
}

/* ---- normalization and keys ---------------------------------------------- */

static void expect_same_key(const char *a, size_t alen, const char *b, size_t blen)
{
    chat_name_t x, y;
    assert_int_equal(user(a, alen, &x), 0);
    assert_int_equal(user(b, blen, &y), 0);
    assert_string_equal(x.key, y.key);
    chat_name_free(&x);
    chat_name_free(&y);
}

static void test_keys_equivalence(void **state)
{
    (void)state;
    chat_name_t n;
    assert_int_equal(user(LIT("Alice"), &n), 0);
    assert_string_equal(n.display, "Alice");
    assert_string_equal(n.key, "alice");
    chat_name_free(&n);

    expect_same_key(LIT("Alice"), LIT("ALICE"));
    /* fullwidth lower and upper case */
    expect_same_key(LIT("Alice"), LIT("\xef\xbd\x81\xef\xbd\x8c\xef\xbd\x89\xef\xbd\x83\xef\xbd\x85"));
    expect_same_key(LIT("Alice"), LIT("\xef\xbc\xa1\xef\xbd\x8c\xef\xbd\x89\xef\xbd\x83\xef\xbd\x85"));
    /* ß folds to ss (full case folding): one name, on purpose */
    expect_same_key(LIT("stra\xc3\x9f" "e"), LIT("STRASSE"));
    /* composed and decomposed é */
    expect_same_key(LIT("\xc3\xa9"), LIT("e\xcc\x81"));
    /* the ﬁ ligature is compatibility-equal to "fi" */
    expect_same_key(LIT("\xef\xac\x81" "x"), LIT("FIX"));

    /* different names keep different keys */
    chat_name_t x, y;
    assert_int_equal(user(LIT("alice"), &x), 0);
    assert_int_equal(user(LIT("alicia"), &y), 0);
    assert_string_not_equal(x.key, y.key);
    chat_name_free(&x);
    chat_name_free(&y);
}

static void test_display_is_nfc(void **state)
{
    (void)state;
    /* e + U+0301 is shown as U+00E9; case and width are kept */
    expect_user(LIT("Ren" "e\xcc\x81"), "Ren\xc3\xa9");
    expect_user(LIT("\xef\xbc\xa1" "B"), "\xef\xbc\xa1" "B");
    /* U+2126 OHM SIGN has a canonical singleton decomposition to U+03A9 */
    expect_user(LIT("\xe2\x84\xa6"), "\xce\xa9");
}

static void test_key_is_its_own_key(void **state)
{
    (void)state;
    /* Greek with ypogegrammeni: case folding interacts with composition */
    const char *names[] = {"\xe1\xbe\xbc", "\xe1\xbe\x88\xcd\x85", "\xce\x90", "\xe1\xba\x9e",
                           "\xc4\xb0stanbul", "\xef\xac\x81", "Ｒｏｏｍ"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        chat_name_t a, b;
        assert_int_equal(user(names[i], strlen(names[i]), &a), 0);
        assert_int_equal(user(a.key, a.key_len, &b), 0);
        assert_string_equal(a.key, b.key);
        chat_name_free(&a);
        chat_name_free(&b);
    }
}

/* ---- content ------------------------------------------------------------- */

static void test_content_lengths(void **state)
{
    (void)state;
    size_t len;
    char *s = repeat("\xf0\x9f\x98\x80", 4000, &len);
    assert_int_equal(chat_content_check(s, len, 0), 0);
    assert_int_equal(chat_content_check(s, len, 4000), 0);
    assert_int_equal(chat_content_check(s, len, 3999), CHAT_VALID_TOO_LONG);
    mem_free(s);
    s = repeat("\xc3\xa9", 4001, &len);
    assert_int_equal(chat_content_check(s, len, 0), CHAT_VALID_TOO_LONG);
    assert_int_equal(chat_content_check(s, len - 2, 0), 0);
    mem_free(s);
    /* custom limit; code points, not bytes */
    assert_int_equal(chat_content_check(LIT("\xe4\xb8\xad\xe4\xb8\xad"), 2), 0);
    assert_int_equal(chat_content_check(LIT("\xe4\xb8\xad\xe4\xb8\xad"), 1), CHAT_VALID_TOO_LONG);
    assert_int_equal(chat_content_check(LIT(""), 0), CHAT_VALID_EMPTY);
    /* content is not trimmed: a single space is content */
    assert_int_equal(chat_content_check(LIT(" "), 0), 0);
    /* not normalized either: e + U+0301 is two code points */
    assert_int_equal(chat_content_check(LIT("e\xcc\x81"), 1), CHAT_VALID_TOO_LONG);
}

static void test_content_characters(void **state)
{
    (void)state;
    assert_int_equal(chat_content_check(LIT("a\tb\nc"), 0), 0);
    assert_int_equal(chat_content_check(LIT("\n"), 0), 0);
    assert_int_equal(chat_content_check(LIT("a\r\nb"), 0), CHAT_VALID_BAD_CHAR);
    assert_int_equal(chat_content_check(LIT("a\0b"), 0), CHAT_VALID_BAD_CHAR);
    assert_int_equal(chat_content_check(LIT("\0"), 0), CHAT_VALID_BAD_CHAR);
    assert_int_equal(chat_content_check(LIT("a\x1b[31m"), 0), CHAT_VALID_BAD_CHAR);
    assert_int_equal(chat_content_check(LIT("\x0b"), 0), CHAT_VALID_BAD_CHAR);
    assert_int_equal(chat_content_check(LIT("\x1f"), 0), CHAT_VALID_BAD_CHAR);
    /* only C0 is refused: DEL, C1, Cf and bidi controls are allowed */
    assert_int_equal(chat_content_check(LIT("\x7f\xc2\x85\xe2\x80\xae\xe2\x80\x8b"), 0), 0);
    assert_int_equal(chat_content_check(LIT("a\xff"), 0), CHAT_VALID_BAD_UTF8);
    assert_int_equal(chat_content_check(LIT("\xed\xb0\x80"), 0), CHAT_VALID_BAD_UTF8);
    /* a bad character wins over the length (invalid_payload comes first) */
    size_t len;
    char *s = repeat("a", 5000, &len);
    s[4999] = '\r';
    assert_int_equal(chat_content_check(s, len, 0), CHAT_VALID_BAD_CHAR);
    mem_free(s);
}

/* ---- clientId ------------------------------------------------------------ */

static void test_client_id(void **state)
{
    (void)state;
    size_t len;
    assert_int_equal(chat_client_id_check(LIT("c-1")), 0);
    assert_int_equal(chat_client_id_check(LIT("")), CHAT_VALID_EMPTY);
    assert_int_equal(chat_client_id_check(LIT("a\0b")), 0);
    assert_int_equal(chat_client_id_check(LIT("a\xff")), CHAT_VALID_BAD_UTF8);
    char *s = repeat("\xf0\x9f\x98\x80", 64, &len);
    assert_int_equal(chat_client_id_check(s, len), 0);
    mem_free(s);
    s = repeat("x", 65, &len);
    assert_int_equal(chat_client_id_check(s, len), CHAT_VALID_TOO_LONG);
    mem_free(s);
}

/* ---- error vocabulary ---------------------------------------------------- */

static void test_error_codes(void **state)
{
    (void)state;
    static const char *want[] = {
        NULL, "invalid_payload", "invalid_username", "username_taken", "not_joined",
        "invalid_room", "room_not_found", "not_in_room", "user_not_found",
        "content_too_long", "rate_limited", "forbidden", "internal",
    };
    for (int c = CHAT_ERR_INVALID_PAYLOAD; c <= CHAT_ERR_INTERNAL; c++) {
        assert_string_equal(chat_error_code_str((chat_err_t)c), want[c]);
        assert_true(strlen(chat_error_message((chat_err_t)c)) > 0);
    }
    assert_string_equal(chat_error_code_str((chat_err_t)0), "internal");
    assert_string_equal(chat_error_code_str((chat_err_t)99), "internal");

    assert_int_equal(chat_validate_err(CHAT_FIELD_USERNAME, CHAT_VALID_TOO_LONG),
                     CHAT_ERR_INVALID_USERNAME);
    assert_int_equal(chat_validate_err(CHAT_FIELD_ROOM, CHAT_VALID_BAD_CHAR), CHAT_ERR_INVALID_ROOM);
    assert_int_equal(chat_validate_err(CHAT_FIELD_CONTENT, CHAT_VALID_TOO_LONG),
                     CHAT_ERR_CONTENT_TOO_LONG);
    assert_int_equal(chat_validate_err(CHAT_FIELD_CONTENT, CHAT_VALID_EMPTY),
                     CHAT_ERR_INVALID_PAYLOAD);
    assert_int_equal(chat_validate_err(CHAT_FIELD_CONTENT, CHAT_VALID_BAD_CHAR),
                     CHAT_ERR_INVALID_PAYLOAD);
    assert_int_equal(chat_validate_err(CHAT_FIELD_CLIENT_ID, CHAT_VALID_TOO_LONG),
                     CHAT_ERR_INVALID_PAYLOAD);
    assert_int_equal(chat_validate_err(CHAT_FIELD_CONTENT, 0), CHAT_ERR_INTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trim_ascii_and_unicode_space),
        cmocka_unit_test(test_empty_and_only_space),
        cmocka_unit_test(test_length_bounds),
        cmocka_unit_test(test_length_counts_nfc_form),
        cmocka_unit_test(test_room_length),
        cmocka_unit_test(test_cc_refused),
        cmocka_unit_test(test_cf_refused),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_keys_equivalence),
        cmocka_unit_test(test_display_is_nfc),
        cmocka_unit_test(test_key_is_its_own_key),
        cmocka_unit_test(test_content_lengths),
        cmocka_unit_test(test_content_characters),
        cmocka_unit_test(test_client_id),
        cmocka_unit_test(test_error_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
