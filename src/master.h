/*
 * master: where slotd's Redis master is, and following it when it moves.
 *
 * Without redis.sentinels or redis.cluster_seeds it is the configured
 * address, and nothing here does anything. With a Redis Cluster's nodes
 * (redis.cluster_seeds), the same walk as with sentinels asks them in turn
 * for CLUSTER SLOTS, and the master is the one serving the slot of the
 * namespace's hash tag: asked again every second, at once when the master
 * cannot be reached or says CLUSTERDOWN, and a MOVED reply moves slotd
 * straight to the address it names. With sentinels, as the Sentinel client
 * spec says:
 *
 *   ASKING --a sentinel names the master--> FOLLOWING
 *     ^  \__ none answers: the next one, with backoff    |
 *     +---- its sentinel is lost: the next one ----------+
 *
 * - the sentinels are asked in turn (SENTINEL get-master-addr-by-name);
 *   the one that answers goes to the front of the list;
 * - while following, the same sentinel is asked again every second, and a
 *   second connection to it is subscribed to +switch-master, so that a
 *   failover moves slotd at once; when that subscription drops, the
 *   master is asked for again at once;
 * - main and wait check ROLE on every connect, and a server that says it
 *   is not the master (ROLE, READONLY, UNBLOCKED, MASTERDOWN, LOADING,
 *   NOREPLICAS) has the master asked for again at once.
 *
 * A new address moves both connections of slotd (conn_set_addr drops them
 * and connects again); membership's quiet period after a reconnect keeps
 * workers from being declared dead across the switch. One log line per
 * switch; the count by reason and the time discovery took are in /metrics
 * and /status.
 */
#ifndef SLOTD_MASTER_H
#define SLOTD_MASTER_H

#include <stdint.h>

#include "backoff.h"
#include "cluster.h"
#include "conn.h"
#include "episode.h"
#include "sentinel.h"

struct slotd;
struct event;

/* Why the master's address changed. */
#define MASTER_REASONS(X)                       \
    X(MASTER_SWITCH,  "switch")  /* a +switch-master message */      \
    X(MASTER_POLL,    "poll")    /* the periodic question */         \
    X(MASTER_WRONG,   "wrong")   /* the server said it is not the master */ \
    X(MASTER_LOST,    "lost")    /* a sentinel or its subscription was lost, or the
                                    master could not be reached */ \
    X(MASTER_MOVED,   "moved")   /* a MOVED reply (Redis Cluster) */

enum master_reason {
#define MASTER_ENUM(e, name) e,
    MASTER_REASONS(MASTER_ENUM)
#undef MASTER_ENUM
    MASTER_REASON_COUNT
};

const char *master_reason_name(enum master_reason r);

struct master {
    struct slotd     *sd;          /* (ref) */
    struct sentinels  list;        /* redis.sentinels (or redis.cluster_seeds), in the order
                                      to ask them */
    int               cluster;     /* list holds a Redis Cluster's nodes, not sentinels */
    unsigned          slot;        /* with cluster: the slot of the namespace's hash tag */
    struct cluster_map map;        /* owned: with cluster, who serves which slots, as the
                                      last node asked said */
    int               at;          /* the sentinel (or node) asked now, an index in list */
    int               tried;       /* sentinels tried in this round without an answer */
    struct conn       ask;         /* owned: questions to sentinel list.at[at] */
    struct conn       sub;         /* owned: its +switch-master subscription */
    struct event     *poll;        /* owned: asks again every MASTER_POLL_MS */
    struct event     *again;       /* owned: the next round after one without an answer */
    struct backoff    round;       /* its delay */
    int               wrong_same;  /* times the sentinel named again a server that said
                                      it is not the master */
    int               asking;      /* a question is out on ask */
    enum master_reason why;        /* why the question now out was asked */
    uint64_t          asked_ms;    /* when the discovery now running began (0: none) */
    int               known;       /* addr holds an address */
    struct sentinel_addr addr;     /* the master now */
    char              via[320];    /* how it was found: "sentinel host:port" or "config" */
    struct episode    none;        /* no sentinel names the master: said as episode.h says */
    uint64_t          changes[MASTER_REASON_COUNT]; /* switches, by reason */
    struct sentinel_addr moved_to; /* with cluster: where the last MOVED sent us ... */
    uint64_t          moved_until; /* ... and until when (monotonic ms) a map that says
                                      otherwise is taken as older than that MOVED */
    uint64_t          discoveries; /* questions answered after a discovery began */
    uint64_t          discovery_ms; /* how long the last discovery took */
};

/* Sets up m (no I/O yet). -1 on ENOMEM or a list that does not parse
 * (conf.c has checked it). */
int master_init(struct master *m, struct slotd *sd) __attribute__((warn_unused_result));

/* Starts asking (with sentinels), or points main and wait at the
 * configured address. */
void master_start(struct master *m);

/* A server of ours (c) said it is not the master, or (Redis Cluster) that
 * the slot moved (c->moved) or the cluster is down: ask again now. */
void master_wrong(struct master *m, const struct conn *c);

/* slotd's main connection could not be made: with a Redis Cluster, its
 * master may have failed over; ask now. */
void master_unreachable(struct master *m);

/* With a Redis Cluster: another connection of slotd's (forwarding) met a
 * node that is not where the map said; ask for the map again. */
void master_refresh(struct master *m);

/* With a Redis Cluster: the master that serves slot, as the nodes said
 * last (NULL: not known, or not a cluster). */
const struct sentinel_addr *master_of_slot(const struct master *m, unsigned slot);

/* slotd's main connection is up on the master: it is the right one. */
void master_main_up(struct master *m);

/* Stops following (at exit). */
void master_close(struct master *m);
void master_free(struct master *m);

/* "host:port" of the master now, or "" while unknown. */
void master_addr(const struct master *m, char *buf, size_t cap);

#endif
