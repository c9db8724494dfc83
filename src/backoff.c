/*
 * backoff: capped exponential backoff with up to 25% jitter, so that clients
 * cut off together do not all come back in the same millisecond.
 */
#include "backoff.h"

void backoff_init(struct backoff *b, uint32_t min_ms, uint32_t max_ms)
{
    uint32_t attempt = b->attempt;
    b->min_ms = min_ms ? min_ms : 1;
    b->max_ms = max_ms < b->min_ms ? b->min_ms : max_ms;
    b->attempt = attempt;
}

uint32_t backoff_next(struct backoff *b, uint32_t rnd)
{
    /* The shift stops at 32: min_ms (at least 1) times 2^32 is past any
     * 32-bit max_ms already, and a 32-bit value shifted by 32 fits 64 bits. */
    uint32_t shift = b->attempt < 32 ? b->attempt : 32;
    uint64_t d = (uint64_t)b->min_ms << shift;
    if (d > b->max_ms)
        d = b->max_ms;
    if (b->attempt < UINT32_MAX)
        b->attempt++;
    uint32_t jitter = (uint32_t)(d / 4);
    if (jitter > 0)
        d -= rnd % (jitter + 1);
    return (uint32_t)d;
}

void backoff_reset(struct backoff *b)
{
    b->attempt = 0;
}
