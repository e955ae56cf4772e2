/* err.c - names of the error space of err.h, for log lines. */
#include "util/err.h"

static const char *const err_names[] = {
    "ok", "inval", "nomem", "io", "closed", "notfound", "exist", "taken",
    "badid", "schema", "limited", "stopped", "malformed", "badsig",
    "expired", "notyet", "badalg", "nosub", "internal", "empty", "toolong",
    "badchar", "badutf8",
};

const char *err_str(int code)
{
    if (code > 0 || code <= ERR_LAST_)
        return "unknown";
    return err_names[-code];
}
