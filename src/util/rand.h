/* rand.h - unguessable identifiers from the OS CSPRNG (OpenSSL RAND_bytes). */
#ifndef PARLEY_UTIL_RAND_H
#define PARLEY_UTIL_RAND_H

#include <stddef.h>

/* Length of an id from rand_id, without the NUL: 15 random bytes (120 bits)
 * in URL-safe base64 (no padding, no '+' or '/'). */
#define RAND_ID_LEN 20

/* Fills out[0..RAND_ID_LEN] with a new id and a NUL. Aborts if the CSPRNG
 * fails (nothing safe can be done without it). */
void rand_id(char out[RAND_ID_LEN + 1]);

#endif
