/* api_route.c - the pure parts of the API front: percent-decoding, path
 * splitting, route matching, body shapes, error statuses, Retry-After.
 * No I/O: tests/unit/test_api.c and tests/fuzz/fuzz_api.c call them. */
#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"
#include "util/err.h"
#include "util/mem.h"

static int api__hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int api_pct_decode(const char *src, size_t len, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (len - i < 3)
                return ERR_MALFORMED;
            int hi = api__hex(src[i + 1]);
            int lo = api__hex(src[i + 2]);
            if (hi < 0 || lo < 0)
                return ERR_MALFORMED;
            c = (char)(hi * 16 + lo);
            if (c == '\0')
                return ERR_MALFORMED;
            i += 2;
        } else if (c == '\0') {
            return ERR_MALFORMED;
        }
        if (n + 1 >= size)
            return ERR_TOOLONG;
        out[n++] = c;
    }
    if (size == 0)
        return ERR_TOOLONG;
    out[n] = '\0';
    return (int)n;
}

void api_segments_free(char **segs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mem_free(segs[i]);
        segs[i] = NULL;
    }
}

int api_split_path(const char *path, size_t len, char **segs, size_t max)
{
    size_t n = 0, start = 0;
    char tmp[API_MAX_SEGMENT + 1];
    if (len == 0)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && path[i] != '/')
            continue;
        int r = ERR_MALFORMED;
        if (i == start)
            goto fail; /* an empty segment: "a//b" or a trailing '/' */
        r = ERR_TOOLONG;
        if (n == max)
            goto fail;
        r = api_pct_decode(path + start, i - start, tmp, sizeof(tmp));
        if (r < 0)
            goto fail;
        segs[n++] = mem_strndup(tmp, (size_t)r);
        start = i + 1;
        continue;
    fail:
        api_segments_free(segs, n);
        return r;
    }
    return (int)n;
}

static int api__path_matches(const char *pattern, char *const *segs, size_t nsegs)
{
    size_t k = 0;
    for (const char *p = pattern; *p; k++) {
        const char *slash = strchr(p, '/');
        size_t plen = slash ? (size_t)(slash - p) : strlen(p);
        if (k == nsegs)
            return 0;
        if (!(plen == 1 && p[0] == ':') && (strlen(segs[k]) != plen || memcmp(segs[k], p, plen) != 0))
            return 0;
        p += plen + (slash ? 1 : 0);
    }
    return k == nsegs;
}

int api_route_find(const char *method, char *const *segs, size_t nsegs, int test_hooks,
                   char *allow, size_t allow_size)
{
    size_t used = 0;
    int path_known = 0;
    if (allow_size)
        allow[0] = '\0';
    for (size_t i = 0; i < api_nroutes; i++) {
        const api_route *rt = &api_routes[i];
        if ((rt->test_only && !test_hooks) || !api__path_matches(rt->pattern, segs, nsegs))
            continue;
        if (strcmp(rt->method, method) == 0)
            return (int)i;
        path_known = 1;
        int w = snprintf(allow + used, allow_size - used, "%s%s", used ? ", " : "", rt->method);
        if (w > 0 && (size_t)w < allow_size - used)
            used += (size_t)w;
    }
    return path_known ? ERR_INVAL : ERR_NOTFOUND;
}

static int api__type_ok(const json_t *v, int type)
{
    if (type == JSON_TRUE)
        return json_is_boolean(v);
    return (int)json_typeof(v) == type;
}

int api_check_body(const json_t *body, const api_field *fields, const char **why)
{
    static char msg[128];
    if (!json_is_object(body)) {
        *why = "the body must be a JSON object";
        return ERR_MALFORMED;
    }
    for (const api_field *f = fields; f && f->name; f++) {
        const json_t *v = json_object_get(body, f->name);
        if (v == NULL || json_is_null(v)) {
            if (!f->required)
                continue;
            snprintf(msg, sizeof(msg), "field \"%s\" is required", f->name);
            *why = msg;
            return ERR_MALFORMED;
        }
        if (!api__type_ok(v, f->type)) {
            static const char *const names[] = {
                [JSON_OBJECT] = "an object", [JSON_ARRAY] = "an array", [JSON_STRING] = "a string",
                [JSON_INTEGER] = "an integer", [JSON_REAL] = "a number", [JSON_TRUE] = "a boolean",
                [JSON_FALSE] = "a boolean", [JSON_NULL] = "null"};
            snprintf(msg, sizeof(msg), "field \"%s\" must be %s", f->name, names[f->type]);
            *why = msg;
            return ERR_MALFORMED;
        }
    }
    return 0;
}

/* The contract's error codes and their HTTP statuses (docs/API.md). */
static const struct { const char *code; int status; } api__statuses[] = {
    {"invalid_payload", 400}, {"invalid_username", 400}, {"invalid_room", 400},
    {"content_too_long", 400}, {"not_joined", 400},
    {"unauthorized", 401},
    {"forbidden", 403}, {"not_in_room", 403}, {"banned", 403}, {"muted", 403},
    {"limit_reached", 403},
    {"not_found", 404}, {"room_not_found", 404}, {"user_not_found", 404},
    {"message_not_found", 404},
    {"method_not_allowed", 405},
    {"username_taken", 409},
    {"rate_limited", 429},
    {"internal", 500},
};

int api_error_status(const char *code)
{
    for (size_t i = 0; i < sizeof(api__statuses) / sizeof(api__statuses[0]); i++)
        if (strcmp(api__statuses[i].code, code) == 0)
            return api__statuses[i].status;
    return 500;
}

uint32_t api_retry_after(const ratelimit_t *rl, const ratelimit_config_t *cfg)
{
    const uint64_t one = 1000000; /* micro-tokens in a token (util/ratelimit.c) */
    if (cfg->refill_per_ms == 0 || rl->tokens >= one)
        return 1;
    uint64_t ms = (one - rl->tokens + cfg->refill_per_ms - 1) / cfg->refill_per_ms;
    uint64_t s = (ms + 999) / 1000;
    return s < 1 ? 1 : s > 86400 ? 86400 : (uint32_t)s;
}

int api_pattern_is_param(const char *pattern, size_t i)
{
    const char *p = pattern;
    for (size_t k = 0; k < i && p; k++) {
        p = strchr(p, '/');
        if (p)
            p++;
    }
    return p && p[0] == ':' && (p[1] == '/' || p[1] == '\0');
}
