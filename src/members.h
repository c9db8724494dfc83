/*
 * members: who the live workers are and which slots each owns.
 *
 * Every workers.check_interval_ms it reads {ns}:workers and the heartbeats.
 * A worker is live while it is in the set and its heartbeat key exists. When
 * the live set differs from the slot table it changes ownership in ONE
 * transaction, guarded by WATCH on the departed workers' lists and heartbeats:
 *
 *   WATCH queue:w inflight:w hb:w ...      (each departed worker w)
 *   LRANGE inflight:w / LRANGE queue:w     (snapshot)
 *   MULTI
 *     EVAL move-all queue:l intake         (each survivor l that loses slots)
 *     EVAL move-all fenced:w intake        (each departed w that had a fence)
 *     RPUSH intake <queued> <in-flight>    (each departed w, newest first)
 *     EVAL move-all fenced:f intake        (each fence f released)
 *     DEL queue:w inflight:w ; SREM workers w
 *     DEL slots ; HSET slots <id> <ranges> ...
 *     DEL fences ; HSET fences <id> <ranges> ...
 *     INCR epoch                           (only when ownership moved)
 *   EXEC                                   (nil: a watched key moved; retry)
 *
 * The departed worker's tasks go back onto the intake's TAIL, in-flight
 * oldest first then queued oldest first, so they are routed (to their slots'
 * new owners) ahead of every newer intake task: per-slot FIFO survives.
 */
#ifndef SLOTD_MEMBERS_H
#define SLOTD_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "slotmap.h"

struct slotd;
struct members;

/*
 * The routing table dispatch reads. A task of slot s goes to
 * queue[table_dest(t, s)]: its owner's queue; or, while the slot is fenced,
 * the fenced list of the worker that handed it off.
 *
 * Fences. When a worker that stays (a join took slots from it, a rebalance,
 * a drain) loses slots, it may still hold older tasks of them, taken but not
 * yet finished. Until it no longer does, the slots' newer tasks wait in
 * {ns}:fenced:<it> instead of reaching the new owner, so that two tasks of
 * one key never run at once nor out of order. A check that finds none of
 * those slots' tasks in the worker's lists moves the fenced list to the
 * intake's tail (ahead of every newer task) and drops the fence; a worker
 * that dies or leaves hands its fenced list back with its other tasks.
 */
struct table {
    struct slotmap map;                 /* owned: slot -> owner */
    struct slotmap fences;              /* owned: slot -> fence; its "workers" are
                                           the workers that handed the slots off */
    char         (*queue)[KEYS_NAME_MAX];   /* owned: ndest keys: the owners' queues,
                                               then the fences' lists */
    size_t        *queue_len;           /* owned */
    uint32_t       ndest;               /* map.nworkers + fences.nworkers */
    uint64_t       epoch;               /* {ns}:epoch as last written or read: bumped
                                           by ownership changes, not by fences */
    uint64_t       version;             /* bumped by every change of where tasks go */
};

/* Where a task of slot goes: an index into queue[], or SLOTMAP_NOBODY. */
static inline unsigned table_dest(const struct table *t, unsigned slot)
{
    unsigned owner = slotmap_owner(&t->map, slot);
    unsigned fence = slotmap_owner(&t->fences, slot);
    if (owner == SLOTMAP_NOBODY || fence == SLOTMAP_NOBODY)
        return owner;
    return t->map.nworkers + fence;
}

struct members *members_create(struct slotd *sd);
void members_destroy(struct members *m);

void members_on_main_up(struct members *m);
void members_on_main_down(struct members *m);

/* Standing by: no more checks or changes until members_on_main_up. */
void members_stop(struct members *m);

/* Someone else changed what slotd read (the intake's tail moved under it):
 * reads the table again, with dispatch held meanwhile. */
void members_reload(struct members *m);

const struct table *members_table(const struct members *m);

/* 1 while an ownership change is in flight. */
int members_busy(const struct members *m);

/* The check interval changed. */
void members_reconfigure(struct members *m);

#endif
