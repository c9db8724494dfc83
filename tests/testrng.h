/*
 * testrng: the reproducible random numbers of the property tests
 * (xorshift64; a fixed seed gives the same cases on every run).
 */
#ifndef SLOTD_TEST_RNG_H
#define SLOTD_TEST_RNG_H

#include <stdint.h>

/* A number in [0, n); *state must not be 0. */
static inline uint32_t testrng_below(uint64_t *state, uint32_t n)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (uint32_t)(*state % n);
}

#endif
