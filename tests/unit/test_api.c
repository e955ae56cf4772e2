/* test_api.c - the pure parts of the Server API front (src/api/api_route.c):
 * percent-decoding, path splitting, route matching with 404/405, body
 * shapes, the error-code table and Retry-After. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_internal.h"
#include "util/err.h"

static void test_pct_decode(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(api_pct_decode("abc", 3, out, sizeof(out)), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(api_pct_decode("a%20b%2Fc", 9, out, sizeof(out)), 5);
    assert_string_equal(out, "a b/c");
    assert_int_equal(api_pct_decode("%c3%A9", 6, out, sizeof(out)), 2);
    assert_string_equal(out, "\xc3\xa9");
    assert_int_equal(api_pct_decode("a+b", 3, out, sizeof(out)), 3); /* '+' is not a space */
    assert_string_equal(out, "a+b");
    assert_int_equal(api_pct_decode("", 0, out, sizeof(out)), 0);
    /* bad escapes: not hex, cut short, a decoded NUL */
    assert_int_equal(api_pct_decode("%ZZ", 3, out, sizeof(out)), ERR_MALFORMED);
    assert_int_equal(api_pct_decode("a%2", 3, out, sizeof(out)), ERR_MALFORMED);
    assert_int_equal(api_pct_decode("a%", 2, out, sizeof(out)), ERR_MALFORMED);
    assert_int_equal(api_pct_decode("%00", 3, out, sizeof(out)), ERR_MALFORMED);
    /* only len bytes are read: an escape cut by len is malformed */
    assert_int_equal(api_pct_decode("a%41", 3, out, sizeof(out)), ERR_MALFORMED);
    /* size counts the NUL */
    assert_int_equal(api_pct_decode("abcd", 4, out, 4), ERR_TOOLONG);
    assert_int_equal(api_pct_decode("abc", 3, out, 4), 3);
}

static void test_split_path(void **state)
{
    (void)state;
    char *segs[API_MAX_SEGMENTS];
    const char *p = "rooms/a%20b/messages";
    int n = api_split_path(p, strlen(p), segs, API_MAX_SEGMENTS);
    assert_int_equal(n, 3);
    assert_string_equal(segs[0], "rooms");
    assert_string_equal(segs[1], "a b");
    assert_string_equal(segs[2], "messages");
    api_segments_free(segs, (size_t)n);
    assert_int_equal(api_split_path("", 0, segs, API_MAX_SEGMENTS), 0);
    assert_int_equal(api_split_path("a//b", 4, segs, API_MAX_SEGMENTS), ERR_MALFORMED);
    assert_int_equal(api_split_path("a/", 2, segs, API_MAX_SEGMENTS), ERR_MALFORMED);
    assert_int_equal(api_split_path("a/%zz", 5, segs, API_MAX_SEGMENTS), ERR_MALFORMED);
    assert_int_equal(api_split_path("a/b/c", 5, segs, 2), ERR_TOOLONG);
    /* the escaped slash stays inside its segment */
    n = api_split_path("users/a%2Fb/x", 13, segs, API_MAX_SEGMENTS);
    assert_int_equal(n, 3);
    assert_string_equal(segs[1], "a/b");
    api_segments_free(segs, (size_t)n);
}

static int find(const char *method, const char *path, int hooks, char *allow)
{
    char *segs[API_MAX_SEGMENTS];
    int n = api_split_path(path, strlen(path), segs, API_MAX_SEGMENTS);
    assert_true(n >= 0);
    int r = api_route_find(method, segs, (size_t)n, hooks, allow, 64);
    api_segments_free(segs, (size_t)n);
    return r;
}

static void test_route_find(void **state)
{
    (void)state;
    char allow[64];
    int r = find("POST", "users", 0, allow);
    assert_true(r >= 0);
    assert_string_equal(api_routes[r].name, "users.create");
    r = find("GET", "users", 0, allow);
    assert_string_equal(api_routes[r].name, "users.list");
    r = find("DELETE", "rooms/x/messages/m1", 0, allow);
    assert_string_equal(api_routes[r].name, "rooms.messages.delete");
    r = find("POST", "users/bob/messages", 0, allow);
    assert_string_equal(api_routes[r].name, "users.messages.create");
    assert_int_equal(find("PUT", "users", 0, allow), ERR_INVAL);
    assert_string_equal(allow, "POST, GET");
    assert_int_equal(find("GET", "rooms/x/members/bob", 0, allow), ERR_INVAL);
    assert_string_equal(allow, "POST");
    assert_int_equal(find("GET", "users/bob", 0, allow), ERR_NOTFOUND);
    assert_int_equal(find("GET", "", 0, allow), ERR_NOTFOUND);
    assert_int_equal(find("POST", "rooms/x/messages/m1/extra", 0, allow), ERR_NOTFOUND);
    /* the test route exists only with test hooks */
    assert_int_equal(find("POST", "_test/events", 0, allow), ERR_NOTFOUND);
    assert_true(find("POST", "_test/events", 1, allow) >= 0);
    assert_true(api_pattern_is_param("rooms/:/messages/:", 1));
    assert_true(api_pattern_is_param("rooms/:/messages/:", 3));
    assert_false(api_pattern_is_param("rooms/:/messages/:", 2));
    assert_false(api_pattern_is_param("rooms/:/messages/:", 4));
}

static void test_check_body(void **state)
{
    (void)state;
    static const api_field f[] = {{"name", JSON_STRING, 1}, {"private", JSON_TRUE, 0},
                                  {"n", JSON_INTEGER, 0}, {NULL, 0, 0}};
    const char *why = NULL;
    json_t *j = json_pack("{s:s, s:b, s:i}", "name", "a", "private", 0, "n", 3);
    assert_int_equal(api_check_body(j, f, &why), 0);
    json_decref(j);
    const char *bad[] = {"[]", "3", "{}", "{\"name\":1}", "{\"name\":\"a\",\"private\":1}",
                         "{\"name\":\"a\",\"n\":1.5}", "{\"name\":\"a\",\"n\":\"1\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_non_null(j);
        assert_int_equal(api_check_body(j, f, &why), ERR_MALFORMED);
        assert_non_null(why);
        json_decref(j);
    }
    /* null counts as absent for an optional field */
    j = json_loads("{\"name\":\"a\",\"n\":null}", 0, NULL);
    assert_int_equal(api_check_body(j, f, &why), 0);
    json_decref(j);
}

static void test_error_status(void **state)
{
    (void)state;
    const struct { const char *code; int status; } want[] = {
        {"invalid_payload", 400}, {"invalid_username", 400}, {"invalid_room", 400},
        {"content_too_long", 400}, {"unauthorized", 401}, {"forbidden", 403},
        {"not_in_room", 403}, {"banned", 403}, {"muted", 403}, {"limit_reached", 403},
        {"not_found", 404}, {"room_not_found", 404}, {"user_not_found", 404},
        {"message_not_found", 404}, {"username_taken", 409}, {"rate_limited", 429},
        {"internal", 500}, {"no_such_code", 500},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(api_error_status(want[i].code), want[i].status);
}

static void test_retry_after(void **state)
{
    (void)state;
    ratelimit_config_t cfg;
    ratelimit_t rl;
    assert_int_equal(ratelimit_config_init(&cfg, 0.25, 1), 0); /* a token every 4 s */
    ratelimit_init(&rl, &cfg, 1000);
    assert_int_equal(ratelimit_take(&rl, &cfg, 1000), 0);
    assert_int_equal(ratelimit_take(&rl, &cfg, 1000), RATELIMIT_ELIMITED);
    assert_int_equal(api_retry_after(&rl, &cfg), 4);
    assert_int_equal(ratelimit_take(&rl, &cfg, 3500), RATELIMIT_ELIMITED);
    assert_int_equal(api_retry_after(&rl, &cfg), 2); /* 1.5 s left, rounded up */
    assert_int_equal(ratelimit_config_init(&cfg, 100, 1), 0);
    ratelimit_init(&rl, &cfg, 0);
    assert_int_equal(ratelimit_take(&rl, &cfg, 0), 0);
    assert_int_equal(ratelimit_take(&rl, &cfg, 0), RATELIMIT_ELIMITED);
    assert_int_equal(api_retry_after(&rl, &cfg), 1); /* never 0 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pct_decode),
        cmocka_unit_test(test_split_path),
        cmocka_unit_test(test_route_find),
        cmocka_unit_test(test_check_body),
        cmocka_unit_test(test_error_status),
        cmocka_unit_test(test_retry_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
