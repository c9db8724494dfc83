/* Unit tests for planner: departures, joins, deaths, leaves, strays, drains,
 * weights, a shard's range, the fences kept, set and released; and a
 * property test over random sequences of joins, deaths, leaves, weight
 * changes, drains and fences that checks every invariant at each step
 * against counts made without the code under test. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "planner.h"

#define S SLOTMAP_SLOTS
#define POOL 24

/* Check logs every passing ck_assert; loops over 16384 slots speak only on
 * failure. */
#define REQUIRE(cond, ...) \
    do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

/* The workers as a check hears them, and the table it checks them against. */
struct world {
    char         id[POOL][16];      /* "w00".."w23": id order is index order */
    int          registered[POOL];  /* in {ns}:workers */
    int          alive[POOL];       /* its heartbeat exists */
    int          deregistering[POOL];   /* not alive, and left between the reads */
    int          draining[POOL];
    uint32_t     weight[POOL];
    int          spare;
    unsigned     lo, hi;
    struct slotmap map, fences;
    struct planner_worker heard[POOL];
    struct planner_input  in;
};

static void world_init(struct world *w, unsigned lo, unsigned hi)
{
    memset(w, 0, sizeof *w);
    for (int i = 0; i < POOL; i++) {
        snprintf(w->id[i], sizeof w->id[i], "w%02d", i);
        w->weight[i] = 1;
    }
    slotmap_init(&w->map);
    slotmap_init(&w->fences);
    w->lo = lo;
    w->hi = hi;
}

static void world_free(struct world *w)
{
    slotmap_free(&w->map);
    slotmap_free(&w->fences);
}

static int index_of(const char *id)
{
    return atoi(id + 1);
}

/* A worker that registers and heartbeats. */
static void up(struct world *w, int i)
{
    w->registered[i] = w->alive[i] = 1;
    w->deregistering[i] = 0;
}

/* What a check reads: the registered workers, in id order. */
static const struct planner_input *input(struct world *w)
{
    uint32_t n = 0;
    for (int i = 0; i < POOL; i++) {
        if (!w->registered[i])
            continue;
        w->heard[n].id = w->id[i];
        w->heard[n].weight = w->weight[i];
        w->heard[n].heard = w->alive[i] ? PLANNER_LIVE
                          : w->deregistering[i] ? PLANNER_DEREGISTERED : PLANNER_SILENT;
        w->heard[n].draining = w->draining[i];
        n++;
    }
    w->in.map = &w->map;
    w->in.fences = &w->fences;
    w->in.workers = w->heard;
    w->in.nworkers = n;
    w->in.lo = w->lo;
    w->in.hi = w->hi;
    w->in.spare = w->spare;
    return &w->in;
}

/* Commits p as members does: table and fences, and the departed are
 * removed from the set and from the draining set. */
static void commit(struct world *w, struct plan *p)
{
    slotmap_free(&w->map);
    slotmap_free(&w->fences);
    w->map = p->next;
    w->fences = p->fences;
    slotmap_init(&p->next);
    slotmap_init(&p->fences);
    for (uint32_t i = 0; i < p->ndep; i++) {
        int k = index_of(p->dep[i].id);
        w->registered[k] = w->alive[k] = w->draining[k] = w->deregistering[k] = 0;
    }
}

static const char *name_of(const struct slotmap *m, unsigned idx)
{
    return idx == SLOTMAP_NOBODY ? "" : m->workers[idx].id;
}

/* Whether table worker id counts as live this check, by the rules, counted
 * here apart from the planner: heard from; or, in the table, spared. */
static int live_in(const struct planner_input *in, const char *id, int *draining)
{
    for (uint32_t i = 0; i < in->nworkers; i++)
        if (strcmp(in->workers[i].id, id) == 0) {
            *draining = in->workers[i].draining;
            return in->workers[i].heard == PLANNER_LIVE ||
                   (in->spare && slotmap_find(in->map, id) >= 0);
        }
    *draining = 0;
    return 0;
}

static const struct planner_worker *heard_of(const struct planner_input *in, const char *id)
{
    for (uint32_t i = 0; i < in->nworkers; i++)
        if (strcmp(in->workers[i].id, id) == 0)
            return &in->workers[i];
    return NULL;
}

static const struct planner_departed *departed(const struct plan *p, const char *id)
{
    for (uint32_t i = 0; i < p->ndep; i++)
        if (strcmp(p->dep[i].id, id) == 0)
            return &p->dep[i];
    return NULL;
}

/* The table: counts match owners, only lo..hi owned, all of it when anyone
 * is in the table. */
static void assert_table(const struct slotmap *m, unsigned lo, unsigned hi)
{
    uint32_t count[POOL * 2] = { 0 };
    ck_assert_uint_le(m->nworkers, POOL * 2);
    for (unsigned s = 0; s < S; s++) {
        unsigned o = m->owner[s];
        if (s < lo || s > hi)
            REQUIRE(o == SLOTMAP_NOBODY, "slot %u out of %u-%u owned by %s", s, lo, hi,
                    name_of(m, o));
        else
            REQUIRE((o != SLOTMAP_NOBODY) == (m->nworkers > 0), "slot %u: owner %u of %u", s, o,
                    m->nworkers);
        if (o != SLOTMAP_NOBODY) {
            REQUIRE(o < m->nworkers, "slot %u: owner %u of %u", s, o, m->nworkers);
            count[o]++;
        }
    }
    for (uint32_t i = 0; i < m->nworkers; i++)
        REQUIRE(count[i] == m->workers[i].nslots, "%s counts %u, owns %u", m->workers[i].id,
                m->workers[i].nslots, count[i]);
}

/* Each worker owns the floor of its share of lo..hi by weight or one more. */
static void assert_shares(const struct slotmap *m, unsigned lo, unsigned hi)
{
    uint64_t total = 0, size = hi - lo + 1;
    for (uint32_t i = 0; i < m->nworkers; i++)
        total += m->workers[i].weight;
    for (uint32_t i = 0; i < m->nworkers; i++) {
        uint64_t fl = size * m->workers[i].weight / total;
        REQUIRE(m->workers[i].nslots == fl || m->workers[i].nslots == fl + 1,
                "%s (weight %u of %llu) owns %u of %llu", m->workers[i].id, m->workers[i].weight,
                (unsigned long long)total, m->workers[i].nslots, (unsigned long long)size);
    }
}

/* The moves are ascending, disjoint, maximal runs, and exactly the slots
 * whose owner changed, from and to the right workers, for the right reason. */
static void assert_moves(const struct planner_input *in, const struct plan *p)
{
    const struct slotmap *old = in->map, *nx = &p->next;
    static uint8_t covered[S];
    int reweighted = 0;

    memset(covered, 0, sizeof covered);
    for (uint32_t i = 0; i < old->nworkers; i++) {
        int j = slotmap_find(nx, old->workers[i].id);
        reweighted |= j >= 0 && nx->workers[j].weight != old->workers[i].weight;
    }
    for (uint32_t k = 0; k < p->nmoves; k++) {
        const struct planner_move *mv = &p->moves[k];
        REQUIRE(mv->lo <= mv->hi && mv->hi < S, "move %u: %u-%u", k, mv->lo, mv->hi);
        if (k > 0) {
            const struct planner_move *pv = &p->moves[k - 1];
            REQUIRE(pv->hi < mv->lo, "moves %u and %u overlap or go down", k - 1, k);
            REQUIRE(pv->hi + 1 < mv->lo || pv->from != mv->from || pv->to != mv->to,
                    "moves %u and %u are one run", k - 1, k);
        }
        const char *from = name_of(old, mv->from), *to = name_of(nx, mv->to);
        const struct planner_departed *d = from[0] ? departed(p, from) : NULL;
        int draining = 0;
        int drained = from[0] && d == NULL && slotmap_find(nx, from) < 0 &&
                      live_in(in, from, &draining) && draining;
        enum planner_reason want =
            d != NULL ? (d->why == PLANNER_DIED ? PLANNER_DEATH : PLANNER_LEAVE)
          : drained ? PLANNER_DRAIN
          : to[0] && slotmap_find(old, to) < 0 ? PLANNER_JOIN
          : reweighted ? PLANNER_WEIGHT : PLANNER_BALANCE;
        REQUIRE(mv->why == want, "slots %u-%u from '%s' to '%s': %s, want %s", mv->lo, mv->hi,
                from, to, planner_reason_name(mv->why), planner_reason_name(want));
        for (unsigned s = mv->lo; s <= mv->hi; s++) {
            covered[s] = 1;
            REQUIRE(old->owner[s] == mv->from || (mv->from == SLOTMAP_NOBODY &&
                                                  old->owner[s] >= old->nworkers),
                    "slot %u moves from %u, owned by %u", s, mv->from, old->owner[s]);
            REQUIRE(nx->owner[s] == mv->to, "slot %u moves to %u, owned by %u", s, mv->to,
                    nx->owner[s]);
        }
    }
    for (unsigned s = 0; s < S; s++) {
        int same = strcmp(name_of(old, old->owner[s] < old->nworkers ? old->owner[s]
                                                                      : SLOTMAP_NOBODY),
                          name_of(nx, nx->owner[s])) == 0;
        REQUIRE(same != covered[s], "slot %u: owner %s -> %s, %s a move", s,
                name_of(old, old->owner[s]), name_of(nx, nx->owner[s]),
                covered[s] ? "yet in" : "not in");
    }
}

/* Every moved slot of lo..hi left a worker that departed, drained or
 * shrank there (or nobody), for one that grew: no slot moves that need not. */
static void assert_downhill(const struct slotmap *old, const struct slotmap *nx, unsigned lo,
                            unsigned hi)
{
    uint32_t had[POOL * 2] = { 0 };     /* old workers' slots in lo..hi */
    ck_assert_uint_le(old->nworkers, POOL * 2);
    for (unsigned s = lo; s <= hi; s++)
        if (old->owner[s] != SLOTMAP_NOBODY)
            had[old->owner[s]]++;
    for (unsigned s = lo; s <= hi; s++) {
        unsigned a = old->owner[s], b = nx->owner[s];
        const char *x = name_of(old, a), *y = name_of(nx, b);
        if (strcmp(x, y) == 0 || b == SLOTMAP_NOBODY)
            continue;
        int ob = slotmap_find(old, y);
        REQUIRE(nx->workers[b].nslots > (ob < 0 ? 0 : had[ob]),
                "slot %u went to %s, which did not grow", s, y);
        int na = a == SLOTMAP_NOBODY ? -1 : slotmap_find(nx, x);
        if (na >= 0)
            REQUIRE(nx->workers[na].nslots < had[a], "slot %u left %s, which did not shrink", s,
                    x);
    }
}

/*
 * planner_plan's answer, checked: nothing when nothing changed; otherwise
 * the next table is whole over lo..hi, holds exactly the live workers that
 * do not drain, by weight; the departures, losers and moves are the ones
 * the rules give.
 */
static void assert_plan(const struct planner_input *in, const struct plan *p)
{
    const struct slotmap *old = in->map, *nx = &p->next;
    if (!p->look) {
        REQUIRE(!p->moved && p->ndep == 0 && in->fences->nworkers == 0, "no look, yet a change");
        return;
    }
    if (!p->moved) {
        /* Nothing changes only when the table is what the rules make it:
         * whole, every live worker that does not drain in it at its
         * weight, none heard from draining. */
        assert_table(old, in->lo, in->hi);
        for (uint32_t i = 0; i < in->nworkers; i++) {
            const struct planner_worker *h = &in->workers[i];
            int t = slotmap_find(old, h->id);
            if (h->heard == PLANNER_LIVE)
                REQUIRE(h->draining ? t < 0 : t >= 0 && old->workers[t].weight == h->weight,
                        "%s (weight %u, draining %d) is not in the table as it should be", h->id,
                        h->weight, h->draining);
        }
        REQUIRE(memcmp(old->owner, nx->owner, sizeof old->owner) == 0, "moved without a change");
        ck_assert_uint_eq(p->nmoves, 0);
        ck_assert_uint_eq(p->nloser, 0);
        return;
    }
    assert_table(nx, in->lo, in->hi);
    assert_shares(nx, in->lo, in->hi);
    /* Who is in it: the live workers that do not drain. */
    for (uint32_t i = 0; i < in->nworkers; i++) {
        int draining, live = live_in(in, in->workers[i].id, &draining);
        int t = slotmap_find(nx, in->workers[i].id);
        REQUIRE((t >= 0) == (live && !draining), "%s: live %d draining %d, in the table %d",
                in->workers[i].id, live, draining, t >= 0);
        if (t >= 0 && in->workers[i].heard == PLANNER_LIVE)
            REQUIRE(nx->workers[t].weight == (in->workers[i].weight ? in->workers[i].weight : 1),
                    "%s has weight %u", in->workers[i].id, nx->workers[t].weight);
    }
    /* Departed: the table's workers not live; the registered not live and
     * owning nothing; the fenced out of the table that are gone. */
    for (uint32_t i = 0; i < old->nworkers; i++) {
        int draining, live = live_in(in, old->workers[i].id, &draining);
        REQUIRE((departed(p, old->workers[i].id) != NULL) == !live, "%s: live %d, departs %d",
                old->workers[i].id, live, !live);
    }
    for (uint32_t i = 0; i < in->nworkers; i++) {
        const struct planner_worker *h = &in->workers[i];
        if (slotmap_find(old, h->id) < 0 && h->heard != PLANNER_LIVE && !in->spare)
            REQUIRE(departed(p, h->id) != NULL, "stray %s stays", h->id);
    }
    for (uint32_t f = 0; f < in->fences->nworkers; f++) {
        const char *id = in->fences->workers[f].id;
        if (slotmap_find(old, id) < 0 && heard_of(in, id) == NULL)
            REQUIRE(departed(p, id) != NULL, "fenced %s is gone, yet stays", id);
    }
    for (uint32_t i = 0; i < p->ndep; i++) {
        /* Why: silent in the table is a death, gone from the set or
         * deregistered a leave; silent out of the table a stray. */
        const struct planner_worker *h = heard_of(in, p->dep[i].id);
        enum planner_departure why =
            slotmap_find(old, p->dep[i].id) < 0 && h != NULL ? PLANNER_STRAY
          : h != NULL && h->heard == PLANNER_SILENT ? PLANNER_DIED : PLANNER_LEFT;
        REQUIRE(p->dep[i].why == why, "%s departs as %d, not %d", p->dep[i].id, p->dep[i].why,
                why);
        REQUIRE(slotmap_find(nx, p->dep[i].id) < 0, "%s departs and stays", p->dep[i].id);
        REQUIRE(p->dep[i].fence == slotmap_find(in->fences, p->dep[i].id), "%s: fence %d",
                p->dep[i].id, p->dep[i].fence);
    }
    /* Losers: the survivors that lose a slot, and the drained. */
    uint32_t k = 0;
    for (uint32_t i = 0; i < old->nworkers; i++) {
        int j = slotmap_find(nx, old->workers[i].id), draining, loses = 0;
        int live = live_in(in, old->workers[i].id, &draining);
        for (unsigned s = 0; s < S && j >= 0 && !loses; s++)
            loses = old->owner[s] == i && nx->owner[s] != (unsigned)j;
        if (j < 0)
            loses = live && draining;
        if (loses) {
            REQUIRE(k < p->nloser && p->loser[k] == i, "%s loses slots, not a loser",
                    old->workers[i].id);
            k++;
        }
    }
    ck_assert_uint_eq(k, p->nloser);
    assert_moves(in, p);
    assert_downhill(old, nx, in->lo, in->hi);
}

/*
 * planner_fences's answer, checked: a fence whose worker may still hold
 * tasks (not clear, or losing more) stays on every one of its slots, by the
 * same worker, wherever their ownership went; a clear one is released; a
 * departing one goes; and a slot is fenced only if it was, or it left a
 * worker that stays (or drains) now.
 */
static void assert_fences(const struct planner_input *in, const uint8_t *clear,
                          const struct plan *p)
{
    const struct slotmap *cur = in->fences, *nf = &p->fences, *old = in->map;
    uint32_t released = 0;
    for (uint32_t f = 0; f < cur->nworkers; f++) {
        const char *id = cur->workers[f].id;
        int losing = 0, gone = plan_departing(p, id);
        for (uint32_t i = 0; i < p->nloser; i++)
            losing |= strcmp(old->workers[p->loser[i]].id, id) == 0;
        int held = !gone && (!clear[f] || losing);
        REQUIRE(p->release[f] == (!gone && !held), "fence of %s: released %d, held %d, gone %d",
                id, p->release[f], held, gone);
        released += p->release[f];
        int g = slotmap_find(nf, id);
        REQUIRE((g >= 0) == held, "fence of %s: kept %d, held %d", id, g >= 0, held);
        for (unsigned s = 0; s < S && held; s++)
            if (cur->owner[s] == f)
                REQUIRE(nf->owner[s] == (unsigned)g, "slot %u fenced by %s lost its fence", s, id);
    }
    ck_assert_uint_eq(released, p->nreleased);
    for (unsigned s = 0; s < S; s++) {
        unsigned g = nf->owner[s];
        if (g == SLOTMAP_NOBODY)
            continue;
        const char *id = nf->workers[g].id;
        REQUIRE(!plan_departing(p, id), "slot %u fenced by %s, which departs", s, id);
        int f = slotmap_find(cur, id), o = slotmap_find(old, id), n = slotmap_find(&p->next, id);
        if (f >= 0 && cur->owner[s] == (unsigned)f)
            continue;       /* kept */
        /* New: a fence it had before is over (released, or gone with its
         * worker), never passed on while held. */
        unsigned c = cur->owner[s];
        REQUIRE(c == SLOTMAP_NOBODY || p->release[c] || plan_departing(p, cur->workers[c].id),
                "slot %u: a held fence passed from %s to %s", s, cur->workers[c].id, id);
        REQUIRE(o >= 0 && old->owner[s] == (unsigned)o &&
                (n < 0 || p->next.owner[s] != (unsigned)n),
                "slot %u fenced by %s, which did not hand it off", s, id);
    }
    REQUIRE(p->write == (p->moved || p->nreleased > 0), "write %d", p->write);
}

/* Plans a check with fences clear as given (NULL: none), checked whole. */
static void plan_checked(struct world *w, struct plan *p, const uint8_t *clear)
{
    static uint8_t none[S];
    char err[128];
    const struct planner_input *in = input(w);
    ck_assert_int_eq(planner_plan(in, p), 0);
    assert_plan(in, p);
    if (!p->look)
        return;
    ck_assert_msg(planner_fences(in, clear ? clear : none, p, err, sizeof err) == 0, "%s", err);
    assert_fences(in, clear ? clear : none, p);
}

/* n workers up and assigned, no fence. */
static void start(struct world *w, struct plan *p, int n)
{
    for (int i = 0; i < n; i++)
        up(w, i);
    plan_checked(w, p, NULL);
    commit(w, p);
}

static uint32_t moved_by(const struct plan *p, enum planner_reason why)
{
    uint32_t n = 0;
    for (uint32_t k = 0; k < p->nmoves; k++)
        if (p->moves[k].why == why)
            n += p->moves[k].hi - p->moves[k].lo + 1;
    return n;
}

static uint32_t moved_all(const struct plan *p)
{
    uint32_t n = 0;
    for (uint32_t k = 0; k < p->nmoves; k++)
        n += p->moves[k].hi - p->moves[k].lo + 1;
    return n;
}

static uint32_t nslots(const struct slotmap *m, const char *id)
{
    int i = slotmap_find(m, id);
    return i < 0 ? 0 : m->workers[i].nslots;
}

static struct world w;
static struct plan p;

/* Each case starts with no worker, over the whole space. */
static void setup(void)
{
    world_init(&w, 0, S - 1);
    plan_init(&p);
}

static void teardown(void)
{
    plan_free(&p);
    world_free(&w);
}

START_TEST(nothing_changes)
{
    start(&w, &p, 3);
    plan_checked(&w, &p, NULL);
    ck_assert_int_eq(p.look, 0);
    ck_assert_int_eq(p.moved, 0);
    /* No worker at all: nothing to do either. */
    world_free(&w);
    world_init(&w, 0, S - 1);
    plan_checked(&w, &p, NULL);
    ck_assert_int_eq(p.look, 0);
}
END_TEST

START_TEST(first_workers_take_every_slot)
{
    for (int i = 0; i < 3; i++)
        up(&w, i);
    plan_checked(&w, &p, NULL);
    ck_assert_int_eq(p.moved, 1);
    ck_assert_uint_eq(p.ndep, 0);
    ck_assert_uint_eq(p.nloser, 0);
    ck_assert_uint_eq(p.fences.nworkers, 0);
    ck_assert_uint_eq(p.nmoves, 3);
    ck_assert_uint_eq(moved_by(&p, PLANNER_JOIN), S);
    ck_assert_uint_eq(p.moves[0].from, SLOTMAP_NOBODY);
    ck_assert_uint_eq(p.moves[1].lo, 5462);
    ck_assert_int_eq(p.write, 1);
}
END_TEST

/* A join takes only what the newcomer gets; each survivor that gives slots
 * up is a loser, fenced on exactly those. */
START_TEST(join_moves_only_to_the_newcomer_and_fences_the_givers)
{
    start(&w, &p, 3);
    up(&w, 3);
    plan_checked(&w, &p, NULL);
    ck_assert_uint_eq(moved_by(&p, PLANNER_JOIN), 4096);
    ck_assert_uint_eq(nslots(&p.next, "w03"), 4096);
    for (uint32_t k = 0; k < p.nmoves; k++)
        ck_assert_str_eq(p.next.workers[p.moves[k].to].id, "w03");
    ck_assert_uint_eq(p.nloser, 3);
    ck_assert_uint_eq(p.fences.nworkers, 3);
    ck_assert_uint_eq(nslots(&p.fences, "w00"), 1366);
    ck_assert_uint_eq(nslots(&p.fences, "w01"), 1365);
    ck_assert_str_eq(planner_reason_name(p.moves[0].why), "join");
}
END_TEST

/* A death moves only the dead's slots, to survivors that only gain: none
 * is fenced. A deregistered worker is a leave. */
START_TEST(death_and_leave_move_only_the_departed_slots)
{
    start(&w, &p, 4);
    w.alive[1] = 0;
    plan_checked(&w, &p, NULL);
    ck_assert_uint_eq(p.ndep, 1);
    ck_assert_str_eq(p.dep[0].id, "w01");
    ck_assert_int_eq(p.dep[0].why, PLANNER_DIED);
    ck_assert_uint_eq(moved_by(&p, PLANNER_DEATH), 4096);
    ck_assert_uint_eq(p.nmoves, 3);
    ck_assert_uint_eq(p.nloser, 0);
    ck_assert_uint_eq(p.fences.nworkers, 0);
    commit(&w, &p);
    /* Left between the reads; and gone from the set. */
    w.alive[2] = 0;
    w.deregistering[2] = 1;
    w.registered[3] = w.alive[3] = 0;
    plan_checked(&w, &p, NULL);
    ck_assert_uint_eq(p.ndep, 2);
    ck_assert_int_eq(p.dep[0].why, PLANNER_LEFT);
    ck_assert_int_eq(p.dep[1].why, PLANNER_LEFT);
    ck_assert_uint_eq(moved_by(&p, PLANNER_LEAVE), S - nslots(&w.map, "w00"));
    ck_assert_uint_eq(nslots(&p.next, "w00"), S);
    commit(&w, &p);
    /* The last one dies: every slot goes to nobody. */
    w.alive[0] = 0;
    plan_checked(&w, &p, NULL);
    ck_assert_uint_eq(p.next.nworkers, 0);
    ck_assert_uint_eq(moved_by(&p, PLANNER_DEATH), S);
    ck_assert_uint_eq(p.moves[0].to, SLOTMAP_NOBODY);
}
END_TEST

/* A check that may declare no death keeps the silent in the table, at
 * their table weight, even when something else changes. */
START_TEST(a_spared_check_declares_no_death)
{
    start(&w, &p, 2);
    w.alive[1] = 0;
    w.spare = 1;
    plan_checked(&w, &p, NULL);
    ck_assert_int_eq(p.look, 0);
    up(&w, 2);
    w.weight[1] = 7;        /* not heard: not taken */
    plan_checked(&w, &p, NULL);
    ck_assert_uint_eq(p.ndep, 0);
    ck_assert_int_ge(slotmap_find(&p.next, "w01"), 0);
    ck_assert_uint_eq(p.next.workers[slotmap_find(&p.next, "w01")].weight, 1);
    ck_assert_uint_eq(moved_by(&p, PLANNER_JOIN), nslots(&p.next, "w02"));
}
END_TEST

/* Registered without a heartbeat and owning nothing: cleaned up, which
 * is a change of the table (the epoch) that moves no slot. */
START_TEST(a_stray_is_cleaned_up)
{
    start(&w, &p, 2);
    w.registered[5] = 1;
    plan_checked(&w, &p, NULL);
    ck_assert_int_eq(p.moved, 1);
    ck_assert_uint_eq(p.ndep, 1);
    ck_assert_str_eq(p.dep[0].id, "w05");
    ck_assert_int_eq(p.dep[0].why, PLANNER_STRAY);
    ck_assert_uint_eq(p.nmoves, 0);
    w.spare = 1;            /* not while no death may be declared */
    plan_checked(&w, &p, NULL);
    ck_assert_int_eq(p.look, 0);
}
END_TEST

/* A draining worker gives up every slot, is a loser (its queue is handed
 * on), and is fenced on all it owned. */
START_TEST(a_drain_gives_up_every_slot)
{
    start(&w, &p, 3);
    w.draining[1] = 1;
    plan_checked(&w, &p, NULL);
    ck_assert_int_lt(slotmap_find(&p.next, "w01"), 0);
    ck_assert_uint_eq(p.ndep, 0);
    ck_assert_uint_eq(moved_by(&p, PLANNER_DRAIN), nslots(&w.map, "w01"));
    ck_assert_uint_eq(moved_all(&p), moved_by(&p, PLANNER_DRAIN));
    ck_assert_uint_eq(p.nloser, 1);
    ck_assert_uint_eq(p.loser[0], 1);
    ck_assert_uint_eq(nslots(&p.fences, "w01"), nslots(&w.map, "w01"));
    commit(&w, &p);
    /* Drained and still held: the fence stays; stopped: it departs, its
     * fence with it. */
    plan_checked(&w, &p, NULL);
    ck_assert_int_eq(p.moved, 0);
    ck_assert_int_eq(p.write, 0);
    w.registered[1] = w.alive[1] = 0;
    plan_checked(&w, &p, NULL);
    ck_assert_uint_eq(p.ndep, 1);
    ck_assert_int_eq(p.dep[0].why, PLANNER_LEFT);
    ck_assert_int_eq(p.dep[0].fence, 0);
    ck_assert_uint_eq(p.fences.nworkers, 0);
    ck_assert_uint_eq(p.nreleased, 0);
}
END_TEST

START_TEST(weights_are_honoured)
{
    w.weight[1] = 2;
    start(&w, &p, 3);
    ck_assert_uint_eq(nslots(&w.map, "w00"), 4096);
    ck_assert_uint_eq(nslots(&w.map, "w01"), 8192);
    ck_assert_uint_eq(nslots(&w.map, "w02"), 4096);
    /* w02 to weight 4: 16384 * 4/7 = 9362.3 (the extra slot goes to w00's
     * 4/7 remainder); it takes only the difference. */
    w.weight[2] = 4;
    plan_checked(&w, &p, NULL);
    ck_assert_uint_eq(nslots(&p.next, "w02"), 9362);
    ck_assert_uint_eq(moved_by(&p, PLANNER_WEIGHT), 9362 - 4096);
    ck_assert_uint_eq(moved_all(&p), moved_by(&p, PLANNER_WEIGHT));
}
END_TEST

/* A shard's table spreads only its range: slots outside it, owned in a
 * table read from Redis, go to nobody; joins and deaths stay inside. */
START_TEST(a_shards_range_is_respected)
{
    const unsigned lo = 5462, hi = 10922;
    char err[128];
    w.lo = lo;
    w.hi = hi;
    ck_assert_int_eq(slotmap_claim(&w.map, "w00", "0-16383", 7, err, sizeof err), 0);
    up(&w, 0);
    up(&w, 1);
    plan_checked(&w, &p, NULL);
    ck_assert_uint_eq(nslots(&p.next, "w00") + nslots(&p.next, "w01"), hi - lo + 1);
    ck_assert_uint_eq(moved_by(&p, PLANNER_JOIN), nslots(&p.next, "w01"));
    ck_assert_uint_eq(moved_by(&p, PLANNER_BALANCE), S - (hi - lo + 1));
    commit(&w, &p);
    up(&w, 2);
    plan_checked(&w, &p, NULL);
    ck_assert_uint_eq(p.moves[0].lo >= lo, 1);
    ck_assert_uint_eq(moved_by(&p, PLANNER_JOIN), nslots(&p.next, "w02"));
    commit(&w, &p);
    w.alive[0] = 0;
    plan_checked(&w, &p, NULL);
    ck_assert_uint_eq(moved_by(&p, PLANNER_DEATH), nslots(&w.map, "w00"));
}
END_TEST

/* A table read from Redis with a hole is made whole. */
START_TEST(a_table_with_a_hole_is_balanced)
{
    char err[128];
    ck_assert_int_eq(slotmap_claim(&w.map, "w00", "0-99,200-16383", 14, err, sizeof err), 0);
    ck_assert_int_eq(slotmap_claim(&w.map, "w01", "", 0, err, sizeof err), 0);
    up(&w, 0);
    up(&w, 1);
    plan_checked(&w, &p, NULL);
    ck_assert_int_eq(p.moved, 1);
    ck_assert_uint_eq(moved_by(&p, PLANNER_BALANCE), 8192);
    ck_assert_uint_eq(p.moves[0].lo, 100);
    ck_assert_uint_eq(p.moves[0].from, SLOTMAP_NOBODY);
}
END_TEST

/* Fences: kept while held, released when clear, kept when their worker
 * loses more, gone with a departing worker. */
START_TEST(fences_held_clear_and_departing)
{
    uint8_t clear[POOL];
    start(&w, &p, 2);
    up(&w, 2);
    plan_checked(&w, &p, NULL);
    commit(&w, &p);
    ck_assert_uint_eq(w.fences.nworkers, 2);
    /* Held: looked at, nothing written. */
    plan_checked(&w, &p, NULL);
    ck_assert_int_eq(p.look, 1);
    ck_assert_int_eq(p.write, 0);
    ck_assert_uint_eq(p.fences.nworkers, 2);
    /* w00 clear: released, w01 kept. */
    memset(clear, 0, sizeof clear);
    clear[0] = 1;
    plan_checked(&w, &p, clear);
    ck_assert_int_eq(p.write, 1);
    ck_assert_int_eq(p.moved, 0);
    ck_assert_uint_eq(p.nreleased, 1);
    ck_assert_uint_eq(p.release[0], 1);
    ck_assert_int_lt(slotmap_find(&p.fences, "w00"), 0);
    /* Clear, but losing more to a join: kept, and grown. */
    uint32_t had = nslots(&w.fences, "w00");
    up(&w, 3);
    plan_checked(&w, &p, clear);
    ck_assert_uint_eq(p.release[0], 0);
    ck_assert_uint_gt(nslots(&p.fences, "w00"), had);
    commit(&w, &p);
    /* A fenced worker dies: its fence goes with it, its slots' fences do
     * not pass to anyone. */
    w.alive[1] = 0;
    plan_checked(&w, &p, NULL);
    ck_assert_int_ge(p.dep[0].fence, 0);
    ck_assert_int_lt(slotmap_find(&p.fences, "w01"), 0);
}
END_TEST

START_TEST(bad_input_is_refused)
{
    up(&w, 0);
    up(&w, 1);
    const struct planner_input *in = input(&w);
    w.heard[0].id = "w01";      /* out of order, and twice */
    ck_assert_int_eq(planner_plan(in, &p), -1);
    w.heard[0].id = "w00";
    w.in.lo = 10;
    w.in.hi = 9;
    ck_assert_int_eq(planner_plan(in, &p), -1);
    w.in.hi = S;
    ck_assert_int_eq(planner_plan(in, &p), -1);
    plan_free(NULL);
}
END_TEST

/* ---- the property test ---- */

static uint32_t xorshift32(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* A table as a stale or foreign copy in Redis might hold it: random runs,
 * holes, slots out of the range, nothing balanced. Owned by any workers; or
 * by exactly the live ones at their weights, so that only its holes call
 * for a change. */
static void load_random_table(struct world *wd, uint32_t *x)
{
    char ranges[32], err[128];
    int owners[POOL], n = 0, k = 0;
    for (int i = 0; i < POOL; i++)
        if (wd->registered[i] && wd->alive[i] && !wd->draining[i])
            owners[n++] = i;
    int live_only = n > 0 && xorshift32(x) % 2 == 0;
    if (!live_only)
        for (n = 0; n < POOL; n++)
            owners[n] = n;
    slotmap_free(&wd->map);
    slotmap_init(&wd->map);
    for (unsigned s = 0; s < S;) {
        unsigned e = s + xorshift32(x) % 1000;
        e = e >= S ? S - 1 : e;
        if (xorshift32(x) % 4 != 0) {
            /* Each live owner gets a run first. */
            int o = live_only && k < n ? owners[k++] : owners[xorshift32(x) % (uint32_t)n];
            int len = snprintf(ranges, sizeof ranges, "%u-%u", s, e);
            ck_assert_msg(slotmap_claim(&wd->map, wd->id[o], ranges, (size_t)len, err,
                                        sizeof err) == 0, "%s", err);
        }
        s = e + 1;
    }
    for (uint32_t i = 0; live_only && i < wd->map.nworkers; i++)
        wd->map.workers[i].weight = wd->weight[index_of(wd->map.workers[i].id)];
}

/* Equal weights and every worker floor or ceil of the range: a table from
 * which a pure join or death must move the fewest slots. */
static int balanced(const struct slotmap *m, unsigned lo, unsigned hi)
{
    uint32_t size = hi - lo + 1, owned = 0;
    if (m->nworkers == 0)
        return 0;
    for (uint32_t i = 0; i < m->nworkers; i++) {
        uint32_t f = size / m->nworkers;
        if (m->workers[i].weight != m->workers[0].weight ||
            (m->workers[i].nslots != f && m->workers[i].nslots != f + 1))
            return 0;
        owned += m->workers[i].nslots;
    }
    return owned == size;
}

/*
 * Random steps over a pool of workers, in the whole space and in a shard's
 * range: joins, deaths, leaves, weight changes, drains and their end,
 * spared checks, tables read from Redis with holes and fences found clear
 * at random. Every step's plan passes
 * assert_plan and assert_fences; a pure join (death) from a balanced table
 * with equal weights moves only to the newcomers (from the departed),
 * exactly their slots.
 */
static void random_run(unsigned lo, unsigned hi, uint32_t seed, int steps)
{
    uint8_t clear[S];
    uint32_t x = seed;
    unsigned pure_joins = 0, pure_deaths = 0, drains = 0, releases = 0, kept = 0;

    w.lo = lo;
    w.hi = hi;
    for (int step = 0; step < steps; step++) {
        int weighted = step >= steps / 2;
        int changes = 1 + (int)(xorshift32(&x) % 3 == 0);
        w.spare = xorshift32(&x) % 10 == 0;
        if (xorshift32(&x) % 50 == 0) {
            load_random_table(&w, &x);
            changes = (int)(xorshift32(&x) % 2);    /* alone, at times */
        }
        for (int c = 0; c < changes; c++) {
            int k = (int)(xorshift32(&x) % POOL);
            uint32_t op = xorshift32(&x) % 100;
            if (!w.registered[k]) {
                if (op < 60) {
                    up(&w, k);
                    w.draining[k] = 0;
                } else if (op < 65) {
                    w.registered[k] = 1;    /* a stray */
                }
            } else if (op < 35) {
                w.alive[k] = 0;             /* dies */
            } else if (op < 45) {
                w.alive[k] = 0;
                w.deregistering[k] = op < 40;   /* leaves between the reads, or before */
                w.registered[k] = op < 40;
            } else if (op < 60 && weighted) {
                w.weight[k] = 1 + xorshift32(&x) % 5;
            } else if (op < 70) {
                w.draining[k] = !w.draining[k];
            } else if (op < 75 && !w.alive[k]) {
                up(&w, k);                  /* back from the dead */
            }
        }
        for (uint32_t f = 0; f < w.fences.nworkers; f++)
            clear[f] = xorshift32(&x) % 3 == 0;
        int was_balanced = balanced(&w.map, lo, hi);
        plan_checked(&w, &p, clear);
        if (!p.look)
            continue;
        /* What the step was, from the tables: newcomers, departures from
         * the table, drains (out of the table, not departed), weights. */
        int equal = was_balanced, joins = 0, deaths = 0, other = 0;
        for (uint32_t i = 0; i < p.next.nworkers; i++) {
            int o = slotmap_find(&w.map, p.next.workers[i].id);
            joins += o < 0;
            equal &= was_balanced && p.next.workers[i].weight == w.map.workers[0].weight;
        }
        for (uint32_t i = 0; i < w.map.nworkers; i++)
            if (slotmap_find(&p.next, w.map.workers[i].id) < 0) {
                if (plan_departing(&p, w.map.workers[i].id))
                    deaths++;
                else
                    other++;
            }
        if (p.moved && equal && other == 0 && p.next.nworkers > 0 &&
            (joins == 0) != (deaths == 0)) {
            uint32_t want = 0;
            if (joins > 0) {
                for (uint32_t i = 0; i < p.next.nworkers; i++)
                    if (slotmap_find(&w.map, p.next.workers[i].id) < 0)
                        want += p.next.workers[i].nslots;
                ck_assert_uint_eq(moved_by(&p, PLANNER_JOIN), want);
                pure_joins++;
            } else {
                for (uint32_t i = 0; i < p.ndep; i++)
                    want += nslots(&w.map, p.dep[i].id);
                ck_assert_uint_eq(moved_by(&p, PLANNER_DEATH) + moved_by(&p, PLANNER_LEAVE),
                                  want);
                pure_deaths++;
            }
            ck_assert_uint_eq(moved_all(&p), want);
        }
        drains += moved_by(&p, PLANNER_DRAIN) > 0;
        releases += p.nreleased;
        kept += p.fences.nworkers;
        commit(&w, &p);
    }
    /* The run did test what it claims to. */
    ck_assert_uint_gt(pure_joins, 100);
    ck_assert_uint_gt(pure_deaths, 100);
    ck_assert_uint_gt(drains, 100);
    ck_assert_uint_gt(releases, 1000);
    ck_assert_uint_gt(kept, 1000);
}

START_TEST(property_random_sequences_keep_every_invariant)
{
    random_run(0, S - 1, 0x9E3779B9u, 1500);
}
END_TEST

START_TEST(property_random_sequences_in_a_shard)
{
    random_run(5462, 10922, 0x2545F491u, 1500);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("planner");
    TCase *tc = tcase_create("planner");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, nothing_changes);
    tcase_add_test(tc, first_workers_take_every_slot);
    tcase_add_test(tc, join_moves_only_to_the_newcomer_and_fences_the_givers);
    tcase_add_test(tc, death_and_leave_move_only_the_departed_slots);
    tcase_add_test(tc, a_spared_check_declares_no_death);
    tcase_add_test(tc, a_stray_is_cleaned_up);
    tcase_add_test(tc, a_drain_gives_up_every_slot);
    tcase_add_test(tc, weights_are_honoured);
    tcase_add_test(tc, a_shards_range_is_respected);
    tcase_add_test(tc, a_table_with_a_hole_is_balanced);
    tcase_add_test(tc, fences_held_clear_and_departing);
    tcase_add_test(tc, bad_input_is_refused);
    tcase_add_test(tc, property_random_sequences_keep_every_invariant);
    tcase_add_test(tc, property_random_sequences_in_a_shard);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
