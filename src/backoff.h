/*
 * backoff: capped exponential backoff with jitter, for reconnecting.
 * Pure: the caller supplies the randomness, so tests know the answers.
 */
#ifndef SLOTD_BACKOFF_H
#define SLOTD_BACKOFF_H

#include <stdint.h>

struct backoff {
    uint32_t min_ms;     /* first delay */
    uint32_t max_ms;     /* cap */
    uint32_t attempt;    /* failures since the last success */
};

/* Sets the bounds; keeps the count of failures, so a reload does not reset
 * the backoff of a connection that is down. Start from a zeroed struct.
 * A min_ms of 0 is taken as 1, and a max_ms below min_ms as min_ms. */
void backoff_init(struct backoff *b, uint32_t min_ms, uint32_t max_ms);

/*
 * The delay before the next attempt, then counts the attempt. The delay is
 * min(max_ms, min_ms * 2^attempt), less up to a quarter of it for jitter:
 * rnd is any 32-bit random number (0 gives the full delay).
 */
uint32_t backoff_next(struct backoff *b, uint32_t rnd);

/* A success: the next failure starts again from min_ms. */
void backoff_reset(struct backoff *b);

#endif
