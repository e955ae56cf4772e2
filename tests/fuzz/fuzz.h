/* fuzz.h - what every libFuzzer target here shares: FUZZ_CHECK, an
 * invariant that aborts (so libFuzzer records the input) when it breaks. */
#ifndef PARLEY_FUZZ_H
#define PARLEY_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                 \
    do {                                                                 \
        if (!(cond)) {                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,       \
                    __LINE__, #cond);                                    \
            abort();                                                     \
        }                                                                \
    } while (0)

#endif
