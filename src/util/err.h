/* err.h - Parley's one error space.
 *
 * Every function of src/ that can fail returns 0 (or a non-negative count
 * or length) on success and one of these negative codes on failure;
 * asynchronous callbacks get one as their status (0: success). The codes
 * are distinct across the whole program, so a value can be logged, passed
 * up a layer or compared anywhere without knowing which module made it.
 *
 * Modules keep their own names for the codes they return (STORE_EIO,
 * BUS_ETAKEN, RC_EINVAL, JWT_EMALFORMED, ...): each is defined in the
 * module's header as one of the ERR_ values below, so the module's header
 * still says which codes its functions return, and the values never
 * collide. err_str names any code for a log line.
 *
 * Two things are not in this space: libuv's own UV_E* codes, which stay
 * inside the module that called libuv (it maps them to ERR_IO or passes
 * the text to the log), and the Redis cluster client's callbacks, which
 * get the server's error text (`const char *err`, NULL on success, as
 * hiredis does) because that text is what an operator needs to see; the
 * store and the bus turn a non-NULL err into STORE_EIO / BUS_EIO. */
#ifndef PARLEY_UTIL_ERR_H
#define PARLEY_UTIL_ERR_H

enum {
    ERR_OK = 0,
    ERR_INVAL = -1,      /* a bad argument or configuration value */
    ERR_NOMEM = -2,      /* a library reported out of memory */
    ERR_IO = -3,         /* a backend or the network failed (timeout, Redis
                            down, disk error, connection reset) */
    ERR_CLOSED = -4,     /* the object was closed before the operation
                            finished */
    ERR_NOTFOUND = -5,   /* no such thing (room, user, session, channel) */
    ERR_EXIST = -6,      /* already there */
    ERR_TAKEN = -7,      /* a name another owner holds */
    ERR_BADID = -8,      /* a malformed id, or one of another conversation */
    ERR_SCHEMA = -9,     /* stored data written by a newer schema */
    ERR_LIMITED = -10,   /* over a rate or size limit */
    ERR_STOPPED = -11,   /* a callback asked the parser to stop */
    ERR_MALFORMED = -12, /* input that does not parse */
    ERR_BADSIG = -13,    /* a signature that does not match */
    ERR_EXPIRED = -14,   /* a credential past its expiry */
    ERR_NOTYET = -15,    /* a credential not valid yet */
    ERR_BADALG = -16,    /* a credential of an algorithm we refuse */
    ERR_NOSUB = -17,     /* a credential without a subject */
    ERR_INTERNAL = -18,  /* a library failed where it should not (crypto) */
    ERR_EMPTY = -19,     /* validation: nothing left after trimming */
    ERR_TOOLONG = -20,   /* validation: over the field's length */
    ERR_BADCHAR = -21,   /* validation: a character the field refuses */
    ERR_BADUTF8 = -22,   /* validation: not well-formed UTF-8 */
    ERR_LAST_ = -23
};

/* A short lowercase name for a code ("io", "closed", ...); "unknown" for a
 * value outside the space. Static storage. */
const char *err_str(int code);

#endif
