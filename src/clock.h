/*
 * clock: the one clock slotd's timers and episodes read: monotonic
 * milliseconds, which never jump with the wall clock.
 */
#ifndef SLOTD_CLOCK_H
#define SLOTD_CLOCK_H

#include <stdint.h>

uint64_t clock_mono_ms(void);

#endif
