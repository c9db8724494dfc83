/*
 * view: everything /metrics, /status and the dashboard show, gathered from
 * the running modules into one read-only struct, so that the renderers
 * (metrics.c, status.c) are pure functions of it.
 */
#ifndef SLOTD_VIEW_H
#define SLOTD_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "cluster.h"

#include "lease.h"

struct stats;
struct slotmap;
struct gauges;
struct master;

struct view {
    const char           *version;      /* (ref) */
    const char           *ns;           /* (ref) namespace */
    const char           *tag;          /* (ref) its keys' hash tag: ns, or "ns#<shard>" */
    int                   shard, nshards;   /* 0 of 1 when not sharded */
    const char           *intake_key;   /* (ref) */
    const struct stats   *stats;        /* (ref) */
    const struct slotmap *map;          /* (ref) the slot table */
    const struct slotmap *fences;       /* (ref) handoffs fenced (members.h); NULL: none */
    const struct gauges  *gauges;       /* (ref) may lag the table: see gauges->epoch */
    uint64_t              epoch;
    int                   redis_up;
    uint64_t              reconnects;   /* both connections */
    uint64_t              timeouts;     /* connections of ours the watchdog dropped */
    unsigned              slot;         /* the Cluster slot of the namespace's (shard's) keys */
    uint64_t              cluster[CLUSTER_REPLY_COUNT]; /* Redis Cluster's error replies
                                           to our connections, by kind */
    uint64_t              forwarded;    /* tasks forwarded to the shards they belong to */
    const struct master  *master;       /* (ref) where Redis is, how it was found */
    char                  master_addr[300]; /* "host:port", "" while unknown */
    const char           *health;       /* (ref) NULL when routing, else why not */
    double                uptime_s;
    int                   heartbeat_ttl_ms; /* to turn a heartbeat's PTTL into its age */
    struct lease_view     lease;        /* active or standby, the holder, the epoch */
};

/* Seconds since a worker's last heartbeat, from its PTTL. */
double heartbeat_age_s(const struct view *v, int64_t pttl_ms);

/* Prometheus text format, malloc'd (the caller frees), length in *len. */
char *metrics_render(const struct view *v, size_t *len);

/* The /status JSON document, malloc'd (the caller frees). */
char *status_render(const struct view *v, size_t *len);

#endif
