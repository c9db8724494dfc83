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
 *     RPUSH intake <queued, newest first> <in-flight, newest first>
 *     DEL queue:w inflight:w ; SREM workers w
 *     DEL slots ; HSET slots <id> <ranges> ... ; INCR epoch
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

/* The routing table dispatch reads: owners and each owner's queue key. */
struct table {
    struct slotmap map;                 /* owned */
    char         (*queue)[KEYS_NAME_MAX];   /* owned: queue key per worker index */
    size_t        *queue_len;           /* owned */
    uint64_t       epoch;               /* {ns}:epoch as last written or read */
};

struct members *members_create(struct slotd *sd);
void members_destroy(struct members *m);

void members_on_main_up(struct members *m);
void members_on_main_down(struct members *m);

const struct table *members_table(const struct members *m);

/* 1 while an ownership change is in flight. */
int members_busy(const struct members *m);

/* The check interval changed. */
void members_reconfigure(struct members *m);

#endif
