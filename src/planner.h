/*
 * planner: what a membership check decides from what it read. Pure: no I/O,
 * no clock. members.c reads Redis, asks the planner, and writes its answer in
 * one guarded transaction (members.h).
 *
 * A check plans in two steps, with reads between them:
 *
 *   planner_plan    table, fences, registered workers --> departures, the
 *                   next table, the survivors that lose slots, the moves
 *         (members reads what the departures and losers hand back, and
 *          whether each fenced worker still holds tasks of its fences)
 *   planner_fences  + which fences are clear --> the next fences, the
 *                   fences released, and whether there is anything to write
 *
 * Ownership moves only by slotmap_assign_range over the shard's slots
 * lo..hi (balanced by weight, sticky: a join moves only what the newcomers
 * take, a death only the departed's slots). A fence stays on its slots while
 * its worker may still hold their tasks, wherever their ownership goes.
 */
#ifndef SLOTD_PLANNER_H
#define SLOTD_PLANNER_H

#include <stddef.h>
#include <stdint.h>

#include "slotmap.h"

/* What a check heard from a registered worker ({ns}:workers). */
enum planner_heard {
    PLANNER_LIVE,       /* its heartbeat exists (or something slotd cannot call
                           expired: it counts as live, at its table weight) */
    PLANNER_SILENT,     /* no heartbeat: it died, unless the check spares it */
    PLANNER_DEREGISTERED,   /* deregistered after the set was read: a leave */
};

struct planner_worker {
    const char        *id;          /* (ref) a valid id */
    uint32_t           weight;      /* from its heartbeat; 0 is taken as 1, clamped */
    enum planner_heard heard;
    int                draining;    /* in {ns}:draining: live, but gets no slots */
};

struct planner_input {
    const struct slotmap        *map;       /* (ref) the committed table */
    const struct slotmap        *fences;    /* (ref) its fences: "workers" that handed
                                               slots off and may hold their tasks */
    const struct planner_worker *workers;   /* (ref) the registered workers, sorted by
                                               id (strcmp), each once: newcomers join
                                               in this order */
    uint32_t                     nworkers;  /* at most SLOTMAP_SLOTS */
    unsigned                     lo, hi;    /* the slots the table spreads: all, or a shard's */
    int                          spare;     /* declare no death (slotd stalled, Redis was
                                               away): the silent keep their slots */
};

/* Why a worker leaves the table (or, owning nothing, the registered set). */
enum planner_departure {
    PLANNER_DIED,       /* its heartbeat expired */
    PLANNER_LEFT,       /* it deregistered */
    PLANNER_STRAY,      /* registered without a heartbeat, owning nothing */
};

struct planner_departed {
    char                   id[SLOTMAP_ID_MAX + 1];
    enum planner_departure why;
    int                    fence;   /* its index in the input's fences, or -1 */
};

/* Why a slot changes owner: its old owner's fate first, then its new one's. */
#define PLANNER_REASONS(X)                                                      \
    X(PLANNER_DEATH,   "death")     /* the old owner died */                    \
    X(PLANNER_LEAVE,   "leave")     /* the old owner deregistered */            \
    X(PLANNER_DRAIN,   "drain")     /* the old owner is draining */             \
    X(PLANNER_JOIN,    "join")      /* the new owner joined */                  \
    X(PLANNER_WEIGHT,  "weight")    /* a weight changed */                      \
    X(PLANNER_BALANCE, "balance")   /* none of those: the table read was not    \
                                       balanced, or not within lo..hi */

enum planner_reason {
#define PLANNER_REASON_ENUM(e, name) e,
    PLANNER_REASONS(PLANNER_REASON_ENUM)
#undef PLANNER_REASON_ENUM
};

/* "death", "leave", ... */
const char *planner_reason_name(enum planner_reason why);

/* Slots lo..hi go from old owner `from` (an index in the input's map, or
 * SLOTMAP_NOBODY: unowned) to `to` (an index in plan.next, or SLOTMAP_NOBODY). */
struct planner_move {
    unsigned            lo, hi;
    uint32_t            from, to;
    enum planner_reason why;
};

struct plan {
    /* planner_plan */
    int                      look;      /* 0: nothing changes and no fence to look at */
    int                      moved;     /* ownership changes: the epoch is bumped */
    struct slotmap           next;      /* owned: the table to commit (when look) */
    struct planner_departed *dep;       /* owned: in the order their tasks go back */
    uint32_t                 ndep;
    uint32_t                *loser;     /* owned: survivors that lose slots, or drain
                                           (indices in the input's map), in table order */
    uint32_t                 nloser;
    struct planner_move     *moves;     /* owned: ascending by slot */
    uint32_t                 nmoves;

    /* planner_fences */
    struct slotmap           fences;    /* owned: the fences to commit */
    uint8_t                 *release;   /* owned, per input fence: released by this change */
    uint32_t                 nreleased;
    int                      write;     /* the change writes something */
};

void plan_init(struct plan *p);
/* Frees what p owns and leaves it as plan_init did; accepts NULL. */
void plan_free(struct plan *p);

/*
 * The first step: who departs (the table's workers not heard from, unless
 * spared; the registered that own nothing and are silent; the fenced
 * workers out of the table that are gone), whether anything changes (a
 * departure, a join, a weight, a drain, a table not whole over lo..hi),
 * and if so the next table, the losers and the moves. When only fences are
 * to be looked at, next is the table as it is. 0, or -1 (p freed) on
 * ENOMEM, on workers not sorted and unique, or on more live workers than
 * slots.
 */
int planner_plan(const struct planner_input *in, struct plan *p)
    __attribute__((warn_unused_result));

/*
 * The second step, on a plan that looks (in unchanged since planner_plan):
 * clear[f], per input fence, is 1 when its worker was seen holding no task
 * of its slots and its list was read. A fence is released when clear and
 * its worker neither departs nor loses slots now; it goes back with a
 * departing worker's tasks; otherwise it is kept, whole. Each loser is
 * fenced on the slots it loses now, but those fenced already. 0, or -1 on
 * ENOMEM with the reason in err.
 */
int planner_fences(const struct planner_input *in, const uint8_t *clear, struct plan *p,
                   char *err, size_t errlen) __attribute__((warn_unused_result));

/* 1 if id departs in p. */
int plan_departing(const struct plan *p, const char *id);

#endif
