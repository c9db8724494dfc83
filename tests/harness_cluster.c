/*
 * harness_cluster: a throwaway Redis Cluster on loopback (see harness_cluster.h).
 */
#include "harness_cluster.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLUSTER_READY_MS 30000

struct harness_redis *harness_cluster_node(struct harness_cluster *c, int port)
{
    for (int i = 0; i < c->nnodes; i++)
        if (c->node[i].port == port && c->node[i].pid > 0)
            return &c->node[i];
    return NULL;
}

const char *harness_cluster_seeds(const struct harness_cluster *c, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < c->nnodes && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s127.0.0.1:%d", i ? "," : "", c->node[i].port);
    return buf;
}

/* The master of slot in one node's CLUSTER SLOTS (an array of [start, end,
 * [host, port, ...], ...]): its port, or -1. */
static int master_in(redisContext *x, unsigned slot)
{
    int port = -1;
    redisReply *r = redisCommand(x, "CLUSTER SLOTS");
    if (r == NULL)
        return -1;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3)
            continue;
        if ((unsigned)e->element[0]->integer <= slot && slot <= (unsigned)e->element[1]->integer)
            port = (int)e->element[2]->element[1]->integer;
    }
    freeReplyObject(r);
    return port;
}

int harness_cluster_master_of(const struct harness_cluster *c, unsigned slot)
{
    for (int i = 0; i < c->nnodes; i++) {
        if (!harness_redis_up(&c->node[i]))
            continue;
        redisContext *x = harness_redis_connect(&c->node[i]);
        int port = x ? master_in(x, slot) : -1;
        if (x)
            redisFree(x);
        if (port > 0)
            return port;
    }
    return -1;
}

/* Every node up says cluster_state:ok and names the same master for each
 * of a few slots (the masters' ranges' edges are enough to see a change);
 * *port gets slot's master. */
static int agreed(const struct harness_cluster *c, unsigned slot, int *port)
{
    static const unsigned probes[] = { 0, 5460, 5461, 10922, 10923, 16383 };
    int want[7], seen = 0;
    for (int i = 0; i < c->nnodes; i++) {
        if (!harness_redis_up(&c->node[i]))
            continue;
        redisContext *x = harness_redis_connect(&c->node[i]);
        if (x == NULL)
            return 0;
        redisReply *r = redisCommand(x, "CLUSTER INFO");
        int ok = r != NULL && r->type == REDIS_REPLY_STRING &&
                 strstr(r->str, "cluster_state:ok") != NULL;
        if (r)
            freeReplyObject(r);
        int got[7];
        for (int p = 0; ok && p < 6; p++)
            ok = (got[p] = master_in(x, probes[p])) > 0;
        if (ok)
            ok = (got[6] = master_in(x, slot)) > 0;
        redisFree(x);
        if (!ok)
            return 0;
        if (seen && memcmp(got, want, sizeof got) != 0)
            return 0;
        memcpy(want, got, sizeof want);
        seen = 1;
    }
    if (seen && port)
        *port = want[6];
    return seen;
}

int harness_cluster_wait_ok(struct harness_cluster *c, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    do {
        if (agreed(c, 0, NULL))
            return 0;
        usleep(50000);
    } while (harness_now_ms() < end);
    return -1;
}

int harness_cluster_wait_failover(struct harness_cluster *c, unsigned slot, int old_port,
                                  int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    int port;
    do {
        if (agreed(c, slot, &port) && port != old_port) {
            struct harness_redis *n = harness_cluster_node(c, port);
            if (n != NULL && harness_redis_up(n))
                return port;
        }
        usleep(50000);
    } while (harness_now_ms() < end);
    return -1;
}

redisContext *harness_cluster_connect(const struct harness_cluster *c, unsigned slot)
{
    int port = harness_cluster_master_of(c, slot);
    for (int i = 0; i < c->nnodes; i++)
        if (c->node[i].port == port)
            return harness_redis_connect(&c->node[i]);
    return NULL;
}

int harness_cluster_start(struct harness_cluster *c, int masters, int replicas)
{
    memset(c, 0, sizeof *c);
    int n = masters * (replicas ? 2 : 1);
    if (masters < 3 || n > HARNESS_CLUSTER_NODES_MAX) {
        fprintf(stderr, "harness: a cluster of %d masters%s: 3 to %d nodes\n", masters,
                replicas ? " with replicas" : "", HARNESS_CLUSTER_NODES_MAX);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (harness_redis_start(&c->node[i], "cluster-enabled yes\n"
                                "cluster-node-timeout 1000\n"
                                "cluster-config-file nodes.conf\n"
                                "repl-diskless-sync-delay 0\n") != 0) {
            fprintf(stderr, "harness: cluster node %d did not start\n", i);
            goto fail;
        }
        c->nnodes = i + 1;
    }
    /* redis-cli makes the first `masters` nodes masters, in the order given. */
    char cmd[1024], out[8192];
    size_t len = (size_t)snprintf(cmd, sizeof cmd, "redis-cli --cluster create");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(cmd + len, sizeof cmd - len, " 127.0.0.1:%d", c->node[i].port);
    snprintf(cmd + len, sizeof cmd - len, " --cluster-replicas %d --cluster-yes 2>&1",
             replicas ? 1 : 0);
    if (harness_run(cmd, out, sizeof out) != 0) {
        fprintf(stderr, "harness: %s failed:\n%s\n", cmd, out);
        goto fail;
    }
    if (harness_cluster_wait_ok(c, CLUSTER_READY_MS) != 0) {
        fprintf(stderr, "harness: the cluster did not become ok\n");
        goto fail;
    }
    return 0;
fail:
    harness_cluster_stop(c);
    return -1;
}

void harness_cluster_stop(struct harness_cluster *c)
{
    for (int i = 0; i < c->nnodes; i++)
        harness_redis_stop(&c->node[i]);
}
