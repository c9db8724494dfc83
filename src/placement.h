/*
 * placement: where namespaces live on a Redis Cluster, for slotctl cluster.
 * Every key of a namespace (or of one shard) carries one hash tag, so the
 * whole namespace lands on the master of one slot; this module counts, per
 * master of a cluster map, how many of some namespaces it holds, and names
 * new namespaces that land on the emptiest masters:
 *
 *   placement_init(&p, map)               the masters, with their slot counts
 *   placement_hold(&p, map, slot)         one more namespace on slot's master
 *   placement_suggest(&p, map, "orders", shards, 3, names, taken)
 *       -> "orders-b", "orders-f", ...    each on a master that held fewest
 *
 * Pure: no I/O. The map is cluster.h's (CLUSTER SLOTS, parsed).
 */
#ifndef SLOTD_PLACEMENT_H
#define SLOTD_PLACEMENT_H

#include <stddef.h>

#include "cluster.h"
#include "keys.h"

struct placement_master {
    struct sentinel_addr addr;
    unsigned             slots;     /* slots it serves */
    unsigned             held;      /* namespaces (shards) placed on it */
};

/* The masters of a map, in the order their first range comes. */
struct placement {
    struct placement_master *m;     /* owned (placement_free); NULL when n is 0 */
    size_t                   n;
};

/* 0, or -1 (out of memory) with p empty. */
int placement_init(struct placement *p, const struct cluster_map *map)
    __attribute__((warn_unused_result));

/* The index in p of the master of slot, or -1 when nobody serves it. */
int placement_master_of(const struct placement *p, const struct cluster_map *map, unsigned slot);

/* One more namespace (or shard) on the master of slot: its index, or -1. */
int placement_hold(struct placement *p, const struct cluster_map *map, unsigned slot);

/* The slot a namespace lands on: its tag's, or with nshards > 1 its first
 * shard's ({ns#0}); -1 when ns is not a namespace (too long). */
int placement_slot(const char *ns, int nshards);

/* The i-th candidate name for prefix: "<prefix>-a" ... "-z", "-aa", "-ab"...
 * into buf; -1 when it does not fit in a namespace (KEYS_NS_MAX). */
int placement_name(char *buf, size_t cap, const char *prefix, unsigned i);

/*
 * count names (KEYS_NS_MAX + 1 bytes each) from prefix, none of taken[0..ntaken),
 * chosen one by one: the first candidate that lands on a master holding the
 * fewest (the first such in p's order), which then holds it. The number of
 * names found (fewer when the candidates run out, or no master serves a
 * slot).
 */
int placement_suggest(struct placement *p, const struct cluster_map *map, const char *prefix,
                      int nshards, int count, char (*names)[KEYS_NS_MAX + 1],
                      const char *const *taken, size_t ntaken);

/* Frees the masters; p is empty after. NULL is fine. */
void placement_free(struct placement *p);

#endif
