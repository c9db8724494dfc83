/*
 * episode: once when it starts, then at most once per interval with a
 * count, and once when it ends (see episode.h).
 */
#include "episode.h"

#include <string.h>

enum episode_say episode_hit(struct episode *e, uint64_t now_ms, uint64_t interval_ms,
                             uint64_t *repeats)
{
    if (interval_ms == 0)
        interval_ms = EPISODE_INTERVAL_MS;
    e->total++;
    if (!e->active) {
        e->active = 1;
        e->started_ms = now_ms;
        e->said_ms = now_ms;
        e->unsaid = 0;
        e->total = 1;
        return EPISODE_FIRST;
    }
    e->unsaid++;
    /* A clock that went back (it should not: monotonic) says nothing. */
    if (now_ms < e->said_ms || now_ms - e->said_ms < interval_ms)
        return EPISODE_QUIET;
    if (repeats)
        *repeats = e->unsaid;
    e->unsaid = 0;
    e->said_ms = now_ms;
    return EPISODE_AGAIN;
}

int episode_end(struct episode *e, uint64_t now_ms, uint64_t *lasted_ms, uint64_t *total)
{
    if (!e->active)
        return 0;
    if (lasted_ms)
        *lasted_ms = now_ms >= e->started_ms ? now_ms - e->started_ms : 0;
    if (total)
        *total = e->total;
    memset(e, 0, sizeof *e);
    return 1;
}
