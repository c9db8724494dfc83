/*
 * cluster: the pure part of being a Redis Cluster client, only as much as
 * slotd needs. Every key of a namespace (or of one shard) carries one hash
 * tag, so it lives in one slot: a client needs the master of that slot, and
 * to know what the cluster's error replies ask of it:
 *
 *   CLUSTER SLOTS (asked of a seed node)  ->  slot ranges and their masters
 *   -MOVED <slot> <host>:<port>           the slot is served there now: go there
 *   -ASK <slot> <host>:<port>             the slot is being migrated there; the key
 *                                         asked for is there already
 *   -TRYAGAIN ...                         a command on several keys of a slot whose
 *                                         keys are half migrated: try again later
 *   -CLUSTERDOWN ...                      the cluster serves nothing (or not that slot)
 *                                         for now: try again later
 *
 * No I/O: dial.c (libslotd, slotctl) and the daemon's connection do the
 * talking. Addresses are struct sentinel_addr, as the seed list is parsed
 * by sentinel_parse_list.
 */
#ifndef SLOTD_CLUSTER_H
#define SLOTD_CLUSTER_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "sentinel.h"

#define CLUSTER_SLOTS 16384

/* One range of slots and the master that serves it. */
struct cluster_range {
    unsigned             start, end;    /* inclusive, start <= end < CLUSTER_SLOTS */
    struct sentinel_addr master;
};

/* Who serves which slots, as one node said: the ranges sorted by start,
 * none overlapping; slots in no range are served by nobody. */
struct cluster_map {
    struct cluster_range *r;    /* owned (cluster_map_free), NULL when n is 0 */
    size_t                n;
};

/*
 * Parses a CLUSTER SLOTS reply, r, that the node at asked_host gave:
 *
 *   [[start, end, [host, port, id, {meta}], [replica ...] ...], ...]
 *
 * A master's host that is NULL or "" (a node that does not know its own
 * address, or cluster-preferred-endpoint-type unknown-endpoint) means the
 * host asked: asked_host. "?" (its hostname is not known) cannot be
 * reached: that range is left out, as if nobody served it. m is emptied
 * first; 0 with the ranges in m (the caller frees them), or -1 with m empty
 * and the reason in why.
 */
int cluster_map_parse(struct cluster_map *m, const redisReply *r, const char *asked_host,
                      char *why, size_t whylen) __attribute__((warn_unused_result));

/* The master of slot, or NULL when the map has nobody serving it. */
const struct sentinel_addr *cluster_map_master(const struct cluster_map *m, unsigned slot);

/* Frees the ranges; m is empty after. NULL is fine. */
void cluster_map_free(struct cluster_map *m);

/* What an error reply says about the cluster: the kinds, their names. */
#define CLUSTER_REPLIES(X)                                      \
    X(CLUSTER_OTHER,    "other")        /* not the cluster's: an error like any other */ \
    X(CLUSTER_MOVED,    "moved")        /* the slot is served by `to` now, for good */   \
    X(CLUSTER_ASK,      "ask")          /* the slot is migrating to `to` */              \
    X(CLUSTER_TRYAGAIN, "tryagain")     /* keys of a migrating slot on both sides */     \
    X(CLUSTER_DOWN,     "clusterdown")  /* the cluster cannot serve for now */

enum cluster_reply {
#define CLUSTER_ENUM(e, name) e,
    CLUSTER_REPLIES(CLUSTER_ENUM)
#undef CLUSTER_ENUM
    CLUSTER_REPLY_COUNT
};

/* "moved", "ask"...: for logs and metric labels. */
const char *cluster_reply_name(enum cluster_reply k);

struct cluster_redirect {
    enum cluster_reply kind;
    int                slot;    /* MOVED and ASK: the slot; else -1 */
    struct sentinel_addr to;    /* MOVED and ASK: where; port 0 when the reply names no
                                   address that parses (then ask the seeds) */
};

/*
 * Classifies an error reply's text (err, len bytes, without the '-'),
 * received from the node at asked_host, into *out, and returns its kind.
 * "MOVED 866 10.0.0.2:7001", "ASK 866 [::1]:7001"; an empty host
 * ("MOVED 866 :7001", from a node that does not know its own address)
 * means asked_host. A MOVED or ASK that does not parse keeps its kind
 * with out->to.port 0.
 */
enum cluster_reply cluster_parse_error(const char *err, size_t len, const char *asked_host,
                                       struct cluster_redirect *out);

#endif
