/*
 * gauges: what slotd reads from Redis for observation only, once a second:
 * the intake's length and each worker's queue and in-flight lengths and
 * heartbeat TTL; and the routing rate over the last five minutes.
 */
#ifndef SLOTD_GAUGES_H
#define SLOTD_GAUGES_H

#include <stdint.h>

struct slotd;
struct event;

#define GAUGES_HISTORY 300              /* seconds of routing rate kept */

struct worker_gauge {
    int64_t queue;                      /* LLEN {ns}:queue:<w>, -1 unknown */
    int64_t inflight;                   /* LLEN {ns}:inflight:<w>, -1 unknown */
    int64_t hb_pttl_ms;                 /* PTTL {ns}:hb:<w>, -1 unknown, -2 gone */
};

struct gauges {
    struct slotd        *sd;            /* (ref) */
    struct event        *timer;         /* owned: every second */
    int64_t              intake;        /* LLEN {ns}:intake, -1 unknown */
    struct worker_gauge *w;             /* owned: per worker index of the table of `epoch` */
    uint32_t             nw;
    uint64_t             epoch;         /* the table w is aligned with */
    uint64_t             rate[GAUGES_HISTORY];  /* tasks routed per second, ring */
    uint32_t             rate_pos;      /* next slot of the ring */
    uint32_t             rate_filled;   /* seconds recorded so far, up to GAUGES_HISTORY */
    uint64_t             last_routed;
    int                  reading;       /* a read is in flight */
    uintptr_t            gen;
    int64_t             *pending;       /* owned: replies being gathered */
    uint32_t             pending_n, pending_left;
    uint64_t             pending_epoch;
};

struct gauges *gauges_create(struct slotd *sd);
void gauges_destroy(struct gauges *g);
void gauges_on_main_down(struct gauges *g);

/* Tasks routed per second over the last `seconds` (at most the history).
 * Inline, so the pure renderers need not link the I/O half of this module. */
static inline double gauges_rate(const struct gauges *g, uint32_t seconds)
{
    uint64_t sum = 0;
    if (seconds > g->rate_filled)
        seconds = g->rate_filled;
    if (seconds == 0)
        return 0;
    for (uint32_t i = 1; i <= seconds; i++)
        sum += g->rate[(g->rate_pos + GAUGES_HISTORY - i) % GAUGES_HISTORY];
    return (double)sum / seconds;
}

#endif
