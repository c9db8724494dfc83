/*
 * backoff: capped exponential backoff with up to 25% jitter.
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
    uint64_t d = b->min_ms;
    /* Shift at most 31 times, so the product never overflows 64 bits. */
    for (uint32_t i = 0; i < b->attempt && i < 31 && d < b->max_ms; i++)
        d <<= 1;
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
