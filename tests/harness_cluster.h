/*
 * harness_cluster: a throwaway Redis Cluster on loopback for the tests, made as an
 * operator makes one:
 *
 *   node[0..masters)            masters, the 16384 slots spread over them by
 *                                redis-cli --cluster create
 *   node[masters..nnodes)        replicas, one per master (--cluster-replicas 1)
 *
 * Every node is a struct harness_redis (a temp dir, a free loopback port,
 * stopped by its pid) with cluster-enabled yes and cluster-node-timeout
 * 1000: a master that stops answering is failed over to its replica in
 * about 2-3 s. Which node serves a slot changes with failovers and
 * resharding: ask harness_cluster_master_of, never assume.
 */
#ifndef SLOTD_TEST_HARNESS_CLUSTER_H
#define SLOTD_TEST_HARNESS_CLUSTER_H

#include <hiredis/hiredis.h>

#include "harness.h"

#define HARNESS_CLUSTER_NODES_MAX 8

struct harness_cluster {
    struct harness_redis node[HARNESS_CLUSTER_NODES_MAX];
    int                  nnodes;
};

/* Starts `masters` masters (3 at least: redis-cli's minimum) and, with
 * replicas, one replica each; creates the cluster and waits (30 s) until
 * every node says cluster_state:ok and agrees on who serves the slots. 0;
 * or -1 with everything stopped and the reason on stderr. */
int harness_cluster_start(struct harness_cluster *c, int masters, int replicas);
/* Stops every node (frozen ones too) and removes their dirs. Twice is fine. */
void harness_cluster_stop(struct harness_cluster *c);
/* "127.0.0.1:p0,127.0.0.1:p1,...": every node, the redis.cluster_seeds value. */
const char *harness_cluster_seeds(const struct harness_cluster *c, char *buf, size_t cap);
/* The port of the master of slot as the first node that is up and answers
 * says (CLUSTER SLOTS), or -1. */
int harness_cluster_master_of(const struct harness_cluster *c, unsigned slot);
/* The node on port, or NULL. */
struct harness_redis *harness_cluster_node(struct harness_cluster *c, int port);
/* Waits until the nodes that are up say cluster_state:ok and agree that a
 * master other than the one on old_port serves slot: its port, or -1. */
int harness_cluster_wait_failover(struct harness_cluster *c, unsigned slot, int old_port,
                                  int timeout_ms);
/* Waits until the nodes that are up say cluster_state:ok and agree on the
 * master of every slot: 0 or -1. */
int harness_cluster_wait_ok(struct harness_cluster *c, int timeout_ms);
/* A connection to the node that serves slot now (fails the test when none). */
redisContext *harness_cluster_connect(const struct harness_cluster *c, unsigned slot);

#endif
