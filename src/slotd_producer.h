/*
 * slotd_producer: libslotd's producer side. Pushes tasks onto slotd's intake
 * (docs/protocol.md, *Producers*); with a namespace split into shards, onto
 * the intake of the shard each task belongs to, by the rule of
 * docs/shards.md (what slotctl push and the Python and Node.js producers
 * do too):
 *
 *   p = slotd_producer_open(&opts, err, sizeof err);
 *   int shard = slotd_producer_push(p, task, len);        // -1: see error
 *   int n = slotd_producer_push_many(p, tasks, lens, count);
 *   slotd_producer_close(p);
 *
 * Blocking calls on hiredis's synchronous API, one handle per thread. The
 * connection is made as the worker's is (slotd_worker.h: the same options
 * by the same names, Sentinel, password, the connect and reply timeouts):
 * a call that meets a lost connection, a timeout or a server that is not
 * the master any more returns -1 and the next call connects again, through
 * the sentinels (or the cluster seeds: with Redis Cluster, a connection
 * per shard, to the master of the shard's slot), to the master of the
 * moment. With Sentinel, a call made a
 * second or more after the last look first asks a sentinel where the
 * master is, and leaves a connection to a server that is not it. A push
 * is never retried by the library: one whose answer was lost may or may
 * not have been made, and only the caller knows whether pushing it twice
 * is harmless.
 */
#ifndef SLOTD_PRODUCER_H
#define SLOTD_PRODUCER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct slotd_producer;

/* What the configuration file says under the same names (slotd.yaml(5)); 0
 * or NULL: the default. */
struct slotd_producer_options {
    /* The connection, as struct slotd_worker_options has it. */
    const char *host;               /* default "127.0.0.1" */
    int         port;               /* default 6379 */
    const char *unix_path;          /* if set, used instead of host and port */
    int         db;
    const char *username;           /* NULL or "" for the default user */
    const char *password;           /* NULL for none */
    const char *ns;                 /* namespace, default "slotd" */
    const char *sentinels;          /* "host:port,..."; NULL or "": no Sentinel */
    const char *sentinel_master;    /* the master's name the sentinels know; needed with them */
    const char *sentinel_username;  /* NULL or "": the sentinels' default user */
    const char *sentinel_password;  /* NULL: the sentinels need no AUTH */
    int         connect_timeout_ms; /* default 1000 */
    int         reply_timeout_ms;   /* default 3000 */
    /* Which shard a task goes to: slotd's own settings, which must match. */
    int         shards;             /* shards: the namespace in this many (1-256); default 1 */
    const char *key_field;          /* routing.key_field; NULL: "key"; "": the whole task */
    int         on_missing_key_payload; /* routing.on_missing_key: 0 dead_letter (default),
                                           1 payload */
    size_t      max_task_bytes;     /* dispatch.max_task_bytes; default 1048576 */
    /* Added with Redis Cluster: redis.cluster_seeds, "host:port,..." (NULL or "": no
     * Cluster). Each shard's intake is pushed to the master of its slot. */
    const char *cluster_seeds;
};

/* Connects (the options are copied). NULL with the reason in err. */
struct slotd_producer *slotd_producer_open(const struct slotd_producer_options *opts,
                                           char *err, size_t errlen);

/* The shard (0 .. shards-1) the task belongs to: the shard of its key's
 * slot, or 0 for a task slotd cannot route (it dead-letters it there).
 * Pure: no Redis. */
int slotd_producer_shard_of(struct slotd_producer *p, const char *task, size_t len);

/* LPUSHes one task onto its shard's intake, {<ns>#<shard>}:intake (or
 * {<ns>}:intake when not split). Returns the shard, or -1. */
int slotd_producer_push(struct slotd_producer *p, const char *task, size_t len);

/* Pushes n tasks in one round trip: each shard's in the order given (so
 * every key's in order), up to 1000 per LPUSH. Returns n, or -1: then of
 * each shard's tasks none, all, or the first ones (whole LPUSHes) may have
 * been pushed. */
int slotd_producer_push_many(struct slotd_producer *p, const char *const *tasks,
                             const size_t *lens, int n);

/* The last error. */
const char *slotd_producer_error(const struct slotd_producer *p);

/* Disconnects and frees; NULL is fine. */
void slotd_producer_close(struct slotd_producer *p);

#ifdef __cplusplus
}
#endif

#endif
