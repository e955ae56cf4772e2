/* api_internal.h - what the API front (api.c), its routing
 * (api_route.c) and its endpoints (api_endpoints.c) share.
 *
 * An endpoint is one row of api_routes: method, path pattern, the shape of
 * its JSON body, and a handler. The handler gets an api_req with the
 * percent-decoded path parameters, the raw query and the parsed body, and
 * answers exactly once, now or later, with api_reply_ok or api_reply_error
 * (which free the api_req). If the client goes away meanwhile, the reply is
 * dropped but must still be made. */
#ifndef PARLEY_API_INTERNAL_H
#define PARLEY_API_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "util/metrics.h"
#include "util/ratelimit.h"

#define API_PREFIX "/api/v1/"
#define API_MAX_BODY (64 * 1024)
#define API_MAX_SEGMENTS 8
#define API_MAX_SEGMENT 512 /* decoded bytes of one path segment */

typedef struct api_req api_req;
typedef void (*api_handler)(api_req *r);

/* A body field: its name, its JSON type (JSON_STRING, JSON_INTEGER,
 * JSON_TRUE for a boolean, JSON_OBJECT), and whether it must be there. */
typedef struct {
    const char *name;
    int type;
    int required;
} api_field;

typedef struct {
    const char *method;        /* "GET", "POST", "DELETE" */
    const char *pattern;       /* segments after /api/v1/, ":" is a parameter */
    const char *name;          /* the metrics label */
    api_handler handler;
    const api_field *fields;   /* NULL: the route takes no body */
    int test_only;             /* routed only with api_config.test_hooks */
} api_route;

extern const api_route api_routes[];
extern const size_t api_nroutes;

struct api_req {
    api_server *api;
    net_conn *c;            /* NULL once the client has gone */
    const api_route *route;
    size_t route_index;
    char *params[API_MAX_SEGMENTS]; /* decoded ":" segments, in order */
    size_t nparams;
    char *query;            /* raw query string (copy); read it with net_query_get */
    json_t *body;           /* the parsed object, or NULL without a body */
    uint64_t start_ns;
    /* Set by a handler that has work under way: api_free calls it for a
     * request still unanswered, and the handler must then drop every
     * reference to r and free its own resources without answering. */
    void (*abandon)(api_req *r);
    void *op;               /* the handler's own state */
    api_req *next;          /* in the server's list of pending requests */
};

/* ---- routing (api_route.c, pure) ---- */

/* Percent-decodes src[0..len) into out (size bytes, NUL added). '+' stays
 * '+' (a path is not a form). Returns the length, ERR_MALFORMED for a bad
 * escape or a decoded NUL, ERR_TOOLONG when it does not fit. */
int api_pct_decode(const char *src, size_t len, char *out, size_t size);

/* Splits path (after API_PREFIX, without query) into decoded segments.
 * Returns the count, ERR_MALFORMED (bad encoding or an empty segment),
 * ERR_TOOLONG (too many or too long segments). segs[i] are allocated; free
 * them with api_segments_free. */
int api_split_path(const char *path, size_t len, char **segs, size_t max);
void api_segments_free(char **segs, size_t n);

/* Finds the route of (method, segments). Returns its index; or ERR_NOTFOUND
 * (no route has this path) or ERR_INVAL (some route has the path but not
 * the method: `allow` then lists the methods, "GET, POST"). test_hooks
 * includes the test-only routes. */
int api_route_find(const char *method, char *const *segs, size_t nsegs, int test_hooks,
                   char *allow, size_t allow_size);

/* Whether segment i of pattern is a parameter (":"). */
int api_pattern_is_param(const char *pattern, size_t i);

/* Checks a parsed body against fields: an object, each field of its type.
 * Returns 0 or ERR_MALFORMED with *why naming the problem. */
int api_check_body(const json_t *body, const api_field *fields, const char **why);

/* The HTTP status of a contract error code (500 for an unknown one). */
int api_error_status(const char *code);

/* Seconds until a refused bucket has a token again (at least 1). */
uint32_t api_retry_after(const ratelimit_t *rl, const ratelimit_config_t *cfg);

/* ---- replies (api.c) ---- */

/* Answers {"ok":true, ...fields of body} with status (200 or 201); takes
 * body (may be NULL). Frees r. */
void api_reply_ok(api_req *r, int status, json_t *body);
/* Answers {"ok":false,"error":code,"message":message} with the code's
 * status. Frees r. */
void api_reply_error(api_req *r, const char *code, const char *message);
/* The same with an explicit status (413 invalid_payload, 501 internal). */
void api_reply_status(api_req *r, int status, const char *code, const char *message,
                      const char *extra_headers);
/* The webhook sender of the server (NULL when none), and its loop. */
webhook_t *api__webhook(api_server *api);
uv_loop_t *api__loop(api_server *api);

#endif
