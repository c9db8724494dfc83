/*
 * episode: a condition that repeats (Redis refusing our password, a
 * destination that cannot take tasks, accept() out of descriptors) is said
 * once when it starts, then at most once per interval with how many times it
 * recurred meanwhile, and once when it ends. Pure: the caller passes the
 * monotonic time, so tests know the answers.
 *
 *   hit  hit hit ... hit (interval later)  hit ...      end
 *   FIRST quiet ...  AGAIN (n repeats)     quiet ...    "ended after t ms, n times"
 */
#ifndef SLOTD_EPISODE_H
#define SLOTD_EPISODE_H

#include <stdint.h>

/* How often a condition that goes on is said again. */
#define EPISODE_INTERVAL_MS 60000

struct episode {
    int      active;        /* started and not ended */
    uint64_t started_ms;    /* when it started */
    uint64_t said_ms;       /* when it was last said */
    uint64_t unsaid;        /* occurrences since it was last said */
    uint64_t total;         /* occurrences since it started */
};

enum episode_say {
    EPISODE_QUIET,          /* say nothing */
    EPISODE_FIRST,          /* it starts: say what and why */
    EPISODE_AGAIN,          /* it goes on: say it again, with the repeats */
};

/*
 * One occurrence at now_ms. With EPISODE_AGAIN, *repeats (may be NULL) is
 * how many occurrences were not said since the last time it was said (this
 * one included). interval_ms 0 means EPISODE_INTERVAL_MS.
 */
enum episode_say episode_hit(struct episode *e, uint64_t now_ms, uint64_t interval_ms,
                             uint64_t *repeats);

/*
 * The condition is over. 1 when an episode was going on (say that it ended),
 * with its length and its number of occurrences (either may be NULL); 0 when
 * none was. The episode is then reset.
 */
int episode_end(struct episode *e, uint64_t now_ms, uint64_t *lasted_ms, uint64_t *total);

#endif
