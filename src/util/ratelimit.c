/* ratelimit.c - the per-connection token bucket (see ratelimit.h). No
 * allocation, no I/O; every sum is bounded so that none can overflow. */
#include "util/ratelimit.h"

#include <math.h>

#define RATELIMIT__ONE 1000000u /* micro-tokens in a token */

int ratelimit_config_init(ratelimit_config_t *cfg, double rate, uint32_t burst)
{
    if (!(rate >= 0.0) || rate > RATELIMIT_MAX_RATE) /* NaN fails the first test */
        return RATELIMIT_EINVAL;
    if (rate == 0.0) {
        cfg->refill_per_ms = 0;
        cfg->capacity = 0;
        return 0;
    }
    /* r events/s = r * 1e6 micro-tokens per 1000 ms */
    double per_ms = round(rate * (RATELIMIT__ONE / 1000));
    if (per_ms < 1.0 || burst == 0 || burst > RATELIMIT_MAX_BURST)
        return RATELIMIT_EINVAL;
    cfg->refill_per_ms = (uint64_t)per_ms;
    cfg->capacity = (uint64_t)burst * RATELIMIT__ONE;
    return 0;
}

void ratelimit_init(ratelimit_t *rl, const ratelimit_config_t *cfg, uint64_t now_ms)
{
    rl->tokens = cfg->capacity;
    rl->last_ms = now_ms;
}

int ratelimit_take(ratelimit_t *rl, const ratelimit_config_t *cfg, uint64_t now_ms)
{
    if (cfg->refill_per_ms == 0)
        return 0;
    if (rl->tokens > cfg->capacity) /* a bucket made under a larger burst */
        rl->tokens = cfg->capacity;
    if (now_ms > rl->last_ms) {
        uint64_t elapsed = now_ms - rl->last_ms;
        uint64_t room = cfg->capacity - rl->tokens;
        /* elapsed * rate would overflow for a large enough jump: compare
         * against the time it takes to fill up instead. */
        if (elapsed > room / cfg->refill_per_ms)
            rl->tokens = cfg->capacity;
        else
            rl->tokens += elapsed * cfg->refill_per_ms;
        rl->last_ms = now_ms;
    }
    if (rl->tokens < RATELIMIT__ONE)
        return RATELIMIT_ELIMITED;
    rl->tokens -= RATELIMIT__ONE;
    return 0;
}
