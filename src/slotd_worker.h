/*
 * slotd_worker: libslotd, the library that makes a C program a slotd worker.
 * It speaks the protocol of docs/protocol.md so its users need not:
 *
 *   w = slotd_worker_open(&opts, err, sizeof err);
 *   slotd_worker_register(w);              // recover own in-flight, heartbeat
 *   slotd_worker_start_heartbeat(w);       // a thread keeps the heartbeat fresh
 *   for (;;) {
 *       int n = slotd_worker_take(w, tasks, 16, 1000);
 *       ... run them, in order per key ...
 *       slotd_worker_ack(w, tasks, n);
 *   }
 *   slotd_worker_leave(w);                 // slotd moves our slots at once
 *   slotd_worker_close(w);
 *
 * Blocking calls on hiredis's synchronous API; one worker handle is used by
 * one thread (the heartbeat thread has its own connection). A handle serves
 * one namespace, or one shard of a sharded one (the shard and shards
 * options): a worker of every shard holds one handle per shard, each with
 * its own connections, so one shard's Redis being away stops only that
 * handle's calls. Every function
 * that can fail returns -1 (or NULL) and slotd_worker_error() says why.
 *
 * Redis may be one server (host and port, or a unix socket), a Redis
 * Cluster (the cluster_seeds option: the master of the namespace's slot),
 * or a master watched by Redis Sentinel (the sentinels option): then every connection
 * (the worker's and its heartbeat thread's) first asks the sentinels where
 * the master is and checks that the server found says ROLE master. Every
 * reply has a timeout (reply_timeout_ms): a server that stops answering
 * (frozen, or cut off) fails the call instead of hanging it. A call that
 * meets a lost connection, a timeout, or a reply that says the server is
 * not the master any more (READONLY, UNBLOCKED, MASTERDOWN, LOADING,
 * NOREPLICAS) returns -1, and the next call connects again: through the
 * sentinels, to the master of the moment. What each call promises about its
 * tasks then is said at each function below.
 */
#ifndef SLOTD_WORKER_H
#define SLOTD_WORKER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct slotd_worker;

struct slotd_worker_options {
    const char *host;               /* default "127.0.0.1" */
    int         port;               /* default 6379 */
    const char *unix_path;          /* if set, used instead of host and port */
    int         db;
    const char *username;           /* NULL or "" for the default user */
    const char *password;           /* NULL for none */
    const char *ns;                 /* namespace, default "slotd" */
    const char *id;                 /* worker id: 1-64 of [A-Za-z0-9._-] */
    int         heartbeat_ttl_ms;   /* default 3000 */
    int         weight;             /* default 1 */
    int         prefetch;           /* most tasks held at once, default 16 */
    /*
     * Added with Redis Sentinel; a program that leaves them 0 or NULL (as
     * one built before them does, with its struct zeroed) gets the defaults.
     * Sentinel: the master is found through these instead of host, port and
     * unix_path (see docs/workers.md, "Redis failover").
     */
    const char *sentinels;          /* "host:port,host:port,..." (IPv6 as "[::1]:26379"),
                                       at most 16; NULL or "": no Sentinel */
    const char *sentinel_master;    /* the master's name the sentinels know; needed with them */
    const char *sentinel_username;  /* NULL or "": the sentinels' default user */
    const char *sentinel_password;  /* NULL: the sentinels need no AUTH */
    int         connect_timeout_ms; /* a connection to Redis or to a sentinel not made within
                                       this fails, and so does a sentinel's reply later than
                                       this; default 1000 */
    int         reply_timeout_ms;   /* a reply of Redis later than this fails the call and
                                       drops the connection; a take that waits for a task
                                       allows its wait plus this; default 3000 */
    /*
     * Added with shards (the config's `shards`): a namespace split into
     * `shards` shards is `shards` namespaces of their own, {<ns>#<i>}, each
     * with its workers set, heartbeats, queues and in-flight lists. A
     * handle serves one of them, `shard` (0 to shards - 1); a worker that
     * serves every shard opens one handle per shard, with the same id. Left
     * 0 (a struct zeroed, as by a program built before them), or shards 1:
     * the namespace itself, unsharded, as before.
     */
    int         shard;              /* which shard this handle serves; 0 when not sharded */
    int         shards;             /* the config's shards: 0 or 1 for none, at most 256 */
    /*
     * Added with Redis Cluster (0 or NULL: no Cluster). The master of the
     * slot of the handle's namespace, or shard (every key of it carries the
     * hash tag {ns}, or {ns#<shard>}), is found
     * through these seed nodes instead of host, port and unix_path: each
     * in turn is asked CLUSTER SLOTS (with username and password), and a
     * reply that redirects (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) fails the
     * call unapplied, as READONLY does: the next call asks the seeds again.
     */
    const char *cluster_seeds;      /* "host:port,..." at most 16; excludes sentinels */
};

struct slotd_task {
    char     *data;                 /* owned by the worker handle until ack/dead_letter */
    size_t    len;
    unsigned  attempt;              /* 1, plus once per worker that died running it */
};

/* Connects (the options are copied). NULL with the reason in err: also when
 * shard is not one of shards' (0 to shards - 1). The caller closes the
 * handle (slotd_worker_close). */
struct slotd_worker *slotd_worker_open(const struct slotd_worker_options *opts,
                                       char *err, size_t errlen);

/* Puts the tasks a previous run with this id left in flight back at the
 * front of the queue, in order, then heartbeats (registering the worker). */
int slotd_worker_register(struct slotd_worker *w);

/* One heartbeat: SET {ns}:hb:<id> PX ttl, SADD {ns}:workers <id>. */
int slotd_worker_heartbeat(struct slotd_worker *w);

/* Starts a thread that heartbeats every third of the TTL on its own
 * connection until slotd_worker_leave or slotd_worker_close. With Sentinel
 * it also asks a sentinel after each beat (on a connection it keeps) where
 * the master is: when that changes, its connection and the worker's move
 * there (the worker's at its next call), even if the old master still
 * answers. */
int slotd_worker_start_heartbeat(struct slotd_worker *w);

/* How many heartbeats the heartbeat thread has failed in a row: 0 when its
 * last one succeeded (or none was tried yet); the last failure's reason
 * into err (may be NULL; "" when 0). The library prints nothing: this is
 * how its user learns that the heartbeat fails, so it can say so. Safe to
 * call from the worker's thread while the heartbeat thread runs. */
unsigned long slotd_worker_heartbeat_failures(struct slotd_worker *w, char *err, size_t errlen);

/* Takes up to max tasks (never more than prefetch held in all) from the
 * worker's queue into its in-flight list, atomically, in one round trip;
 * waits up to timeout_ms for the first if the queue is empty. Returns how
 * many were taken (0 on timeout), or -1. Tasks come oldest first. When the
 * connection is lost before the answer (or the answer is later than
 * timeout_ms plus reply_timeout_ms), the tasks the take may have moved go
 * back to the queue's tail (in order) as soon as the handle reconnects,
 * before anything else: on the master of the moment, after a failover. */
int slotd_worker_take(struct slotd_worker *w, struct slotd_task *tasks, int max,
                      int timeout_ms);

/* Acknowledges n finished tasks in one round trip and frees their data.
 * On -1 nothing was acknowledged and the tasks are still held (their data
 * too): acknowledge them again later. A connection lost on the way is
 * retried once at once (acknowledging twice is harmless). */
int slotd_worker_ack(struct slotd_worker *w, struct slotd_task *tasks, int n);

/* Moves a task to {ns}:dead with reason and detail (and frees its data).
 * On -1 nothing moved and the task is still held: try again later. */
int slotd_worker_dead_letter(struct slotd_worker *w, struct slotd_task *task,
                             const char *reason, const char *detail);

/* How many tasks are held: taken and not yet acknowledged. */
int slotd_worker_held(const struct slotd_worker *w);

/* Stops the heartbeat, puts held tasks (which the caller has not started)
 * back at the front of the queue, and deregisters in one transaction, so
 * slotd moves the worker's slots at once. */
int slotd_worker_leave(struct slotd_worker *w);

/* The last error. */
const char *slotd_worker_error(const struct slotd_worker *w);

/* Where the worker's own connection went last: "127.0.0.1:6380" (or the
 * unix socket's path), with Cluster ", found by cluster 127.0.0.1:7000 (slot
 * 866)", and with Sentinel ", found by sentinel
 * 10.0.0.1:26379 (name slotd)"; "" before the first. It changes when a
 * failover was followed: something worth a line in a log. */
const char *slotd_worker_server(const struct slotd_worker *w);

/* Stops the heartbeat thread and disconnects (without leaving: a worker
 * closed without leaving is declared dead when its heartbeat expires). */
void slotd_worker_close(struct slotd_worker *w);

#ifdef __cplusplus
}
#endif

#endif
