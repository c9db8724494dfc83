/*
 * dispatch: moves tasks from the intake to the workers' queues.
 *
 *   intake (LIST)         slotd                          worker queues
 *   head ... tail  --LRANGE peek-->  route each task --MULTI
 *                                                       LPUSH {ns}:queue:<w> ...  (per owner)
 *                                                       LPUSH {ns}:dead ...       (unroutable)
 *                                                       LTRIM intake 0 -(n+1)
 *                                                       EXEC
 *
 * Exactly once: a batch's pushes and the trim of exactly its elements off the
 * tail are one transaction; only slotd removes from the tail and producers
 * only push at the head, so the peeked elements are the trimmed ones.
 */
#ifndef SLOTD_DISPATCH_H
#define SLOTD_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

struct slotd;
struct dispatch;

/* Why dispatch is held (a bit set): it sends no transaction while any is set. */
#define DISPATCH_HOLDS(X)                                       \
    X(HOLD_LOADING,    0x01, "loading the slot table")          \
    X(HOLD_MEMBERSHIP, 0x02, "changing slot ownership")         \
    X(HOLD_NO_WORKERS, 0x04, "no live worker")                  \
    X(HOLD_STOPPING,   0x08, "stopping")                        \
    X(HOLD_REFUSED,    0x10, "Redis refused a transaction")   /* the reason: dispatch_hold_reason */ \
    X(HOLD_STANDBY,    0x20, "standing by: another slotd holds the lease")

enum dispatch_hold {
#define HOLD_ENUM(e, bit, text) e = bit,
    DISPATCH_HOLDS(HOLD_ENUM)
#undef HOLD_ENUM
};

struct dispatch *dispatch_create(struct slotd *sd);
void dispatch_destroy(struct dispatch *d);

/* The main connection came up (held with HOLD_LOADING until the slot table
 * is loaded) or went down (whatever was in hand is dropped: the intake still
 * has it). */
void dispatch_on_main_up(struct dispatch *d);
void dispatch_on_main_down(struct dispatch *d);
void dispatch_on_wait_down(struct dispatch *d);

/* Holds and releases. Holding drops the batch in hand and ignores peeks in
 * flight, since a change of ownership may rewrite the intake's tail. */
void dispatch_hold(struct dispatch *d, enum dispatch_hold why);
void dispatch_release(struct dispatch *d, enum dispatch_hold why);
unsigned dispatch_holds(const struct dispatch *d);
/* Why dispatch is held (the first reason), or NULL when it is not. */
const char *dispatch_hold_reason(const struct dispatch *d);

/* The version of the intake's tail ({ns}:tail, scripts.h) dispatch's next
 * transaction expects (empty: the key did not exist): set when the table is
 * loaded, read and set by membership changes (they bump it too; dispatch is
 * held meanwhile). */
void dispatch_set_tail(struct dispatch *d, uint64_t tail, int empty);
uint64_t dispatch_tail(const struct dispatch *d);
/* The values of {ns}:tail the next write expects and sets, with this
 * slotd's leader epoch (cap at least SCRIPTS_TAIL_MAX). */
void dispatch_tail_values(const struct dispatch *d, char *expected, char *next, size_t cap);

/* 1 while a transaction is in flight. */
int dispatch_busy(const struct dispatch *d);

/* The configuration changed (SIGHUP): batch size, task size, rules. */
void dispatch_reconfigure(struct dispatch *d);

#endif
