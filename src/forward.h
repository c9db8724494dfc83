/*
 * forward: tasks pushed to the wrong shard go to the right one. A task whose
 * key's slot belongs to shard j but that was pushed to shard i's intake is
 * moved by dispatch, in the batch's transaction like any task, onto
 * {ns#i}:forward:<j>; this module then takes those lists to their shards'
 * intakes, oldest first, in batches whose tasks are counted by offset
 * (scripts.h: forward_peek, forward_in, forward_out), so that each task
 * arrives once and in the order it came, though shard j may live on another
 * node, slotd may stop at any point and either node may fail over:
 *
 *   IDLE --kick--> PEEK (forward_peek: the list's tail and its offset)
 *        --> PUSH (forward_in on shard j's node) [--> WAIT 1 there, with
 *        replicas] --> TRIM (forward_out on shard i)
 *        --> the next batch, or the next shard in turn with tasks, or IDLE
 *
 * Only the active slotd forwards (forward_out checks its leader epoch). A
 * refusal (a key of the wrong type, out of memory) is said once per episode
 * and retried with a backoff; the tasks wait in the list meanwhile. On a
 * Redis Cluster, shard j's intake may be on another node than slotd's
 * master: forward_in then goes through a connection of its own to the node
 * that serves shard j's slot (master_of_slot), moved when that changes; a
 * batch whose reply was lost is sent again (the offsets make that
 * harmless).
 */
#ifndef SLOTD_FORWARD_H
#define SLOTD_FORWARD_H

#include <stdint.h>

struct slotd;
struct conn;
struct forward;

struct forward *forward_create(struct slotd *sd);
void forward_destroy(struct forward *f);

/* Tasks may be waiting to be forwarded (dispatch moved some, slotd became
 * active): look at every other shard's list. */
void forward_kick(struct forward *f);

/* Standing by, or the main connection was lost: whatever is in flight is
 * forgotten (the offsets make sending it again harmless). */
void forward_stop(struct forward *f);

/* Tasks forwarded to other shards since start. */
uint64_t forward_count(const struct forward *f);

/* Adds the Redis Cluster replies its own connection received to
 * acc[CLUSTER_REPLY_COUNT]. */
void forward_add_cluster_replies(const struct forward *f, uint64_t *acc);

#endif
