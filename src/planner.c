/*
 * planner: a membership check's decisions (see planner.h): who departs, the
 * next table, who loses slots and the moves; then the fences. Pure: no I/O,
 * no clock.
 */
#include "planner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reason_names[] = {
#define PLANNER_REASON_NAME(e, name) name,
    PLANNER_REASONS(PLANNER_REASON_NAME)
#undef PLANNER_REASON_NAME
};

const char *planner_reason_name(enum planner_reason why)
{
    return reason_names[why];
}

void plan_init(struct plan *p)
{
    memset(p, 0, sizeof *p);
    slotmap_init(&p->next);
    slotmap_init(&p->fences);
}

void plan_free(struct plan *p)
{
    if (p == NULL)
        return;
    slotmap_free(&p->next);
    slotmap_free(&p->fences);
    free(p->dep);
    free(p->loser);
    free(p->moves);
    free(p->release);
    plan_init(p);
}

int plan_departing(const struct plan *p, const char *id)
{
    for (uint32_t i = 0; i < p->ndep; i++)
        if (strcmp(p->dep[i].id, id) == 0)
            return 1;
    return 0;
}

/* The registered worker id, or NULL (the workers are sorted by id). */
static const struct planner_worker *registered(const struct planner_input *in, const char *id)
{
    size_t lo = 0, hi = in->nworkers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(in->workers[mid].id, id);
        if (c == 0)
            return &in->workers[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* A heartbeat's weight as the table keeps it. */
static uint32_t weight_of(const struct planner_worker *w)
{
    return w->weight == 0 ? 1 : w->weight > SLOTMAP_WEIGHT_MAX ? SLOTMAP_WEIGHT_MAX : w->weight;
}

/* p->dep has room for every worker of the table, the set and the fences. */
static void depart(struct plan *p, const struct planner_input *in, const char *id,
                   enum planner_departure why)
{
    struct planner_departed *d = &p->dep[p->ndep++];
    snprintf(d->id, sizeof d->id, "%s", id);
    d->why = why;
    d->fence = slotmap_find(in->fences, id);
}

/*
 * Who departs, into p->dep, and whether ownership changes. gone[i], per
 * table worker, is its departure + 1, or 0 while it stays. The order of the
 * departures is the order their tasks go back to the intake.
 */
static int departures(const struct planner_input *in, struct plan *p, uint8_t *gone)
{
    const struct slotmap *map = in->map, *fences = in->fences;
    int change = 0;

    /* In the table but not heard from: dead or left, unless spared. */
    for (uint32_t i = 0; i < map->nworkers; i++) {
        const struct planner_worker *w = registered(in, map->workers[i].id);
        if (w != NULL && w->heard == PLANNER_LIVE) {
            /* A drained worker stays registered but gives up its slots. */
            if (weight_of(w) != map->workers[i].weight || w->draining)
                change = 1;
            continue;
        }
        if (w != NULL && in->spare)
            continue;       /* not declared dead this check */
        enum planner_departure why =
            w != NULL && w->heard != PLANNER_DEREGISTERED ? PLANNER_DIED : PLANNER_LEFT;
        depart(p, in, map->workers[i].id, why);
        gone[i] = (uint8_t)(why + 1);
        change = 1;
    }
    /* Registered without a heartbeat and owning nothing: clean up. */
    for (uint32_t i = 0; i < in->nworkers; i++) {
        const struct planner_worker *w = &in->workers[i];
        if (w->heard == PLANNER_LIVE || in->spare || slotmap_find(map, w->id) >= 0)
            continue;
        depart(p, in, w->id, PLANNER_STRAY);
        change = 1;
    }
    /* A fenced worker out of the table (drained) that is gone: what it held
     * and its fenced list go back like a departed worker's. */
    for (uint32_t f = 0; f < fences->nworkers; f++) {
        const char *id = fences->workers[f].id;
        const struct planner_worker *w = registered(in, id);
        if (slotmap_find(map, id) >= 0 || (w != NULL && (w->heard == PLANNER_LIVE || in->spare)))
            continue;
        if (w == NULL)
            depart(p, in, id, PLANNER_LEFT);
        change = 1;         /* registered without a heartbeat: a stray, above */
    }
    /* Joins. */
    for (uint32_t i = 0; i < in->nworkers; i++)
        if (in->workers[i].heard == PLANNER_LIVE && !in->workers[i].draining &&
            slotmap_find(map, in->workers[i].id) < 0)
            change = 1;
    /* A table loaded from Redis with unowned slots (or, in a shard, owned
     * slots of other shards) also needs a change. */
    if (map->nworkers > 0) {
        uint32_t in_range = 0, owned = 0;
        for (unsigned s = in->lo; s <= in->hi; s++)
            in_range += map->owner[s] != SLOTMAP_NOBODY;
        for (uint32_t i = 0; i < map->nworkers; i++)
            owned += map->workers[i].nslots;
        if (in_range != in->hi - in->lo + 1 || owned != in_range)
            change = 1;
    }
    return change;
}

/* The table to commit: the current one assigned to the live workers that
 * do not drain (a spared one at its table weight), or, when only fences are
 * looked at, the current one as it is: ownership moves only with the epoch. */
static int next_table(const struct planner_input *in, struct plan *p)
{
    if (slotmap_copy(&p->next, in->map) != 0)
        return -1;
    if (!p->moved)
        return 0;
    struct slotmap_member *live = calloc(in->nworkers ? in->nworkers : 1, sizeof *live);
    uint32_t nlive = 0;
    if (live == NULL)
        return -1;
    for (uint32_t i = 0; i < in->nworkers; i++) {
        const struct planner_worker *w = &in->workers[i];
        int t = -1;
        if (w->draining ||
            (w->heard != PLANNER_LIVE && (!in->spare || (t = slotmap_find(in->map, w->id)) < 0)))
            continue;
        live[nlive].id = w->id;
        live[nlive].weight = t >= 0 ? in->map->workers[t].weight : w->weight;
        nlive++;
    }
    /* In a namespace of shards, only the shard's own slots carry tasks:
     * they alone are spread over the workers. */
    int rc = slotmap_assign_range(&p->next, live, nlive, in->lo, in->hi);
    free(live);
    return rc;
}

/* The survivors that lose slots, in table order, and the drained: a drained
 * worker is alive and pops its queue, so its queue is handed on like a
 * loser's. to_next[i]: table worker i's index in p->next, or -1. */
static int losers(const struct planner_input *in, struct plan *p, const int *to_next)
{
    const struct slotmap *old = in->map;
    uint8_t *loses = calloc(old->nworkers ? old->nworkers : 1, 1);
    p->loser = calloc(old->nworkers ? old->nworkers : 1, sizeof *p->loser);
    if (loses == NULL || p->loser == NULL) {
        free(loses);
        return -1;
    }
    for (unsigned s = 0; s < SLOTMAP_SLOTS; s++) {
        unsigned a = old->owner[s];
        if (a < old->nworkers && to_next[a] >= 0 && p->next.owner[s] != (unsigned)to_next[a])
            loses[a] = 1;
    }
    for (uint32_t i = 0; i < old->nworkers; i++) {
        if (to_next[i] < 0) {
            /* Departed (handled apart), or drained. */
            const struct planner_worker *w = registered(in, old->workers[i].id);
            loses[i] = w != NULL && w->draining && (w->heard == PLANNER_LIVE || in->spare);
        }
        if (loses[i])
            p->loser[p->nloser++] = i;
    }
    free(loses);
    return 0;
}

/* Why slot s goes from a (old index) to b (new index); gone as departures(). */
static enum planner_reason reason(const int *to_next, const uint8_t *gone, uint32_t survivors,
                                  int reweighted, unsigned a, unsigned b)
{
    if (a != SLOTMAP_NOBODY && to_next[a] < 0)
        return gone[a] == PLANNER_DIED + 1 ? PLANNER_DEATH
             : gone[a] == PLANNER_LEFT + 1 ? PLANNER_LEAVE : PLANNER_DRAIN;
    /* slotmap_assign_range keeps the survivors first, newcomers after. */
    if (b != SLOTMAP_NOBODY && b >= survivors)
        return PLANNER_JOIN;
    return reweighted ? PLANNER_WEIGHT : PLANNER_BALANCE;
}

/* Whether slot s changes owner, with its old and new owner in *a and *b. */
static int moves_at(const struct slotmap *old, const struct slotmap *next, const int *to_next,
                    unsigned s, unsigned *a, unsigned *b)
{
    *a = old->owner[s] < old->nworkers ? old->owner[s] : SLOTMAP_NOBODY;
    *b = next->owner[s];
    if (*a == SLOTMAP_NOBODY)
        return *b != SLOTMAP_NOBODY;
    return to_next[*a] < 0 || (unsigned)to_next[*a] != *b;
}

/* The slots whose owner changes, as runs of one from and one to, into out;
 * only counted when out is NULL. */
static uint32_t runs(const struct planner_input *in, const struct plan *p, const int *to_next,
                     const uint8_t *gone, struct planner_move *out)
{
    const struct slotmap *old = in->map;
    uint32_t n = 0, survivors = 0;
    unsigned pa = SLOTMAP_NOBODY, pb = SLOTMAP_NOBODY;
    int reweighted = 0, prev = 0;
    for (uint32_t i = 0; i < old->nworkers; i++)
        if (to_next[i] >= 0) {
            survivors++;
            reweighted |= p->next.workers[to_next[i]].weight != old->workers[i].weight;
        }
    for (unsigned s = 0; s < SLOTMAP_SLOTS; s++) {
        unsigned a, b;
        int mv = moves_at(old, &p->next, to_next, s, &a, &b);
        if (mv && prev && a == pa && b == pb) {
            if (out != NULL)
                out[n - 1].hi = s;
        } else if (mv) {
            if (out != NULL) {
                out[n].lo = out[n].hi = s;
                out[n].from = a;
                out[n].to = b;
                out[n].why = reason(to_next, gone, survivors, reweighted, a, b);
            }
            n++;
        }
        prev = mv;
        pa = a;
        pb = b;
    }
    return n;
}

int planner_plan(const struct planner_input *in, struct plan *p)
{
    const struct slotmap *map = in->map;
    uint8_t *gone = NULL;
    int *to_next = NULL;

    plan_free(p);
    if (in->lo > in->hi || in->hi >= SLOTMAP_SLOTS || in->nworkers > SLOTMAP_SLOTS)
        return -1;
    for (uint32_t i = 1; i < in->nworkers; i++)
        if (strcmp(in->workers[i - 1].id, in->workers[i].id) >= 0)
            return -1;
    size_t most = (size_t)map->nworkers + in->nworkers + in->fences->nworkers;
    size_t nold = map->nworkers ? map->nworkers : 1;
    p->dep = malloc((most ? most : 1) * sizeof *p->dep);
    gone = calloc(nold, 1);
    to_next = malloc(nold * sizeof *to_next);
    if (p->dep == NULL || gone == NULL || to_next == NULL)
        goto fail;

    p->moved = departures(in, p, gone);
    /* A fence is looked at on every check, with the others' moves if any. */
    p->look = p->moved || in->fences->nworkers > 0;
    if (!p->look)
        goto out;
    if (next_table(in, p) != 0)
        goto fail;
    for (uint32_t i = 0; i < map->nworkers; i++)
        to_next[i] = slotmap_find(&p->next, map->workers[i].id);
    if (losers(in, p, to_next) != 0)
        goto fail;
    p->nmoves = runs(in, p, to_next, gone, NULL);
    p->moves = malloc((p->nmoves ? p->nmoves : 1) * sizeof *p->moves);
    if (p->moves == NULL)
        goto fail;
    runs(in, p, to_next, gone, p->moves);
out:
    free(gone);
    free(to_next);
    return 0;
fail:
    free(gone);
    free(to_next);
    plan_free(p);
    return -1;
}

int planner_fences(const struct planner_input *in, const uint8_t *clear, struct plan *p,
                   char *err, size_t errlen)
{
    const struct slotmap *cur = in->fences, *old = in->map;
    uint8_t bits[SLOTMAP_BITS_LEN];

    slotmap_free(&p->fences);
    slotmap_init(&p->fences);
    free(p->release);
    p->nreleased = 0;
    p->release = calloc(cur->nworkers ? cur->nworkers : 1, 1);
    if (p->release == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t f = 0; f < cur->nworkers; f++) {
        const char *id = cur->workers[f].id;
        int losing = 0;
        for (uint32_t i = 0; i < p->nloser; i++)
            if (strcmp(old->workers[p->loser[i]].id, id) == 0)
                losing = 1;
        if (plan_departing(p, id))
            continue;           /* its fenced list goes back with its other tasks */
        if (clear[f] && !losing) {
            p->release[f] = 1;
            p->nreleased++;
            continue;
        }
        memset(bits, 0, sizeof bits);
        for (unsigned s = 0; s < SLOTMAP_SLOTS; s++)
            if (cur->owner[s] == f)
                slotmap_bit_set(bits, s);
        if (slotmap_claim_bits(&p->fences, id, bits, err, errlen) != 0)
            return -1;
    }
    for (uint32_t i = 0; i < p->nloser; i++) {
        unsigned idx = p->loser[i];
        int ni = slotmap_find(&p->next, old->workers[idx].id), any = 0;
        memset(bits, 0, sizeof bits);
        for (unsigned s = 0; s < SLOTMAP_SLOTS; s++)
            if (old->owner[s] == idx && (ni < 0 || p->next.owner[s] != (unsigned)ni) &&
                p->fences.owner[s] == SLOTMAP_NOBODY) {
                slotmap_bit_set(bits, s);
                any = 1;
            }
        if (any && slotmap_claim_bits(&p->fences, old->workers[idx].id, bits, err, errlen) != 0)
            return -1;
    }
    p->write = p->moved || p->nreleased > 0;
    return 0;
}
