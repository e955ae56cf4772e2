/* rand.c - CSPRNG-backed identifiers (see rand.h). */
#include "util/rand.h"
#include "util/b64.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>

void rand_id(char out[RAND_ID_LEN + 1])
{
    unsigned char raw[15];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        fprintf(stderr, "parley: RAND_bytes failed\n");
        abort();
    }
    b64_encode(raw, sizeof(raw), out);
    for (int i = 0; i < RAND_ID_LEN; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    out[RAND_ID_LEN] = '\0';
}
