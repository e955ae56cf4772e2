/* resume_token.h - the guest mode's resume tokens: an unforgeable string
 * that names a user, issued by user:join and presented in a later CONNECT
 * (`auth: {token}`) to be attached to that user again.
 *
 * Form: "p1." <user id> "." <signature>, where the user id is RAND_ID_LEN
 * characters of URL-safe base64 (util/rand.h) and the signature is the
 * URL-safe base64 (no padding) of HMAC-SHA256(key, "p1." <user id>). The
 * key is the server's token key, shared by every backend of a cluster and
 * kept by the store, so a token outlives restarts and works on any
 * backend. Verifying needs no store read; whether the user still exists
 * (a guest user expires with its name, see docs/PROTOCOL.md) is the
 * attach step's store read, so a token is revoked when its user expires.
 * Tokens carry no time of their own: a user who keeps coming back keeps
 * its token. */
#ifndef PARLEY_CHAT_RESUME_TOKEN_H
#define PARLEY_CHAT_RESUME_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/rand.h"

/* Bytes of the token key. */
#define RESUME_TOKEN_KEY_LEN 32
/* Characters of a token, without the NUL: "p1." id "." 43. */
#define RESUME_TOKEN_LEN (3 + RAND_ID_LEN + 1 + 43)

/* Writes the token of user_id (RAND_ID_LEN characters, NUL-terminated)
 * and a NUL into out. Returns 0; ERR_INVAL when user_id is not an id of
 * rand_id's form; ERR_INTERNAL when the crypto library fails. */
int resume_token_issue(const uint8_t key[RESUME_TOKEN_KEY_LEN], const char *user_id,
                       char out[RESUME_TOKEN_LEN + 1]);

/* Checks token[0..len) (not NUL-terminated; may hold anything) against
 * key. Returns 0 and writes the user id and a NUL into user_id;
 * ERR_MALFORMED when it is not of the form above (a length other than
 * RESUME_TOKEN_LEN is refused before anything else is read);
 * ERR_BADSIG when the signature does not match (compared in constant
 * time); ERR_INTERNAL when the crypto library fails. user_id is written
 * only on success. */
int resume_token_verify(const uint8_t key[RESUME_TOKEN_KEY_LEN], const char *token, size_t len,
                        char user_id[RAND_ID_LEN + 1]);

#endif
