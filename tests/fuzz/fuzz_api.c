/* fuzz_api.c - libFuzzer target for the Server API front's parsing
 * (src/api/api_route.c): percent-decoding, path splitting, route matching
 * and the body shape check on whatever JSON the body parses to.
 *
 * Input layout: byte 0 picks the method (GET, POST, DELETE, PUT) and
 * whether the test-only routes count (bit 2); the path (after /api/v1/)
 * runs to the first '\n', the rest is the body.
 *
 * Invariants: decoding never writes more than it read and never yields a
 * NUL; a split path's segments are the decoded pieces between slashes; a
 * route found has as many segments as its pattern and a method equal to
 * the request's; a 405 lists at least one method. */
#include <stdint.h>
#include <string.h>

#include "api/api_internal.h"
#include "fuzz.h"
#include "util/err.h"

static void fuzz_decode(const char *path, size_t len)
{
    char out[API_MAX_SEGMENT + 1];
    int n = api_pct_decode(path, len, out, sizeof(out));
    if (n >= 0) {
        FUZZ_CHECK((size_t)n <= len);
        FUZZ_CHECK(strlen(out) == (size_t)n);
    } else {
        FUZZ_CHECK(n == ERR_MALFORMED || n == ERR_TOOLONG);
    }
}

static void fuzz_route(const char *method, const char *path, size_t len, int hooks,
                       const char *body, size_t blen)
{
    char *segs[API_MAX_SEGMENTS];
    char allow[64];
    int n = api_split_path(path, len, segs, API_MAX_SEGMENTS);
    if (n < 0) {
        FUZZ_CHECK(n == ERR_MALFORMED || n == ERR_TOOLONG);
        return;
    }
    for (int i = 0; i < n; i++)
        FUZZ_CHECK(segs[i][0] != '\0');
    int r = api_route_find(method, segs, (size_t)n, hooks, allow, sizeof(allow));
    if (r >= 0) {
        const api_route *rt = &api_routes[r];
        FUZZ_CHECK((size_t)r < api_nroutes);
        FUZZ_CHECK(strcmp(rt->method, method) == 0);
        FUZZ_CHECK(hooks || !rt->test_only);
        size_t slashes = 0;
        for (const char *p = rt->pattern; *p; p++)
            slashes += *p == '/';
        FUZZ_CHECK(slashes + 1 == (size_t)n);
        if (rt->fields) {
            json_t *j = json_loadb(body, blen, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
            const char *why = NULL;
            if (j && api_check_body(j, rt->fields, &why) != 0)
                FUZZ_CHECK(why != NULL);
            json_decref(j);
        }
    } else if (r == ERR_INVAL) {
        FUZZ_CHECK(allow[0] != '\0');
    } else {
        FUZZ_CHECK(r == ERR_NOTFOUND);
    }
    api_segments_free(segs, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "DELETE", "PUT"};
    if (size < 1)
        return 0;
    const char *method = methods[data[0] & 3];
    int hooks = (data[0] >> 2) & 1;
    const char *path = (const char *)data + 1;
    const char *nl = memchr(path, '\n', size - 1);
    size_t plen = nl ? (size_t)(nl - path) : size - 1;
    const char *body = nl ? nl + 1 : path + plen;
    size_t blen = size - 1 - plen - (nl ? 1 : 0);
    fuzz_decode(path, plen);
    fuzz_route(method, path, plen, hooks, body, blen);
    return 0;
}
