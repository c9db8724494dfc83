/*
 * env: a slotd under test: a private redis-server (through harness), a
 * config file in a temp dir, the slotd binary run as a child, and the
 * commands tests use to act as producers and workers.
 */
#ifndef SLOTD_TEST_ENV_H
#define SLOTD_TEST_ENV_H

#include <stddef.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#include "harness.h"

#define ENV_NS "t"

/* The commands docs/operations.md grants slotd's Redis ACL user, one
 * argument of ACL SETUSER each. */
#define ENV_ACL_COMMANDS \
    "+auth +select +client|setname +ping +role " \
    "+lrange +ltrim +lpush +lpop +rpush +lmove +blmove +llen +lrem +type " \
    "+smembers +sismember +srem +sadd +mget +get +set +del +incr +pttl " \
    "+hgetall +hset +hdel +hmget +hincrby +hlen +hkeys " \
    "+multi +exec +watch +unwatch +eval"

struct env {
    struct harness_redis redis;     /* with ha: no process, only the dir of the files */
    struct harness_ha *ha;          /* (ref) NULL; or the Sentinel topology slotd follows */
    char     conf[512];         /* the config file */
    char     log[512];          /* slotd's stderr */
    char     extra[2048];       /* YAML appended to the generated config */
    pid_t    slotd;             /* 0 when not running */
    redisContext *c;            /* owned: the test's own connection */
};

/* Starts redis (redis_conf lines appended to its config, may be NULL) and
 * writes the slotd config (extra_yaml appended, may be NULL; when it starts
 * with "redis:", its indented lines join the redis section); slotd is not
 * started. Aborts the test on failure. */
void env_start(struct env *e, const char *redis_conf, const char *extra_yaml);
/* The same with Redis behind Sentinel: slotd (and load.h's producers and
 * workers) find the master through ha's sentinels; e->c is on the master of
 * the moment (env_follow after a failover). ha is the caller's to stop. */
void env_start_ha(struct env *e, struct harness_ha *ha, const char *extra_yaml);
/* e->c on the master the sentinels name now (waits until they agree and it
 * says ROLE master, up to 20 s); its port. */
int env_follow(struct env *e);

/* Starts slotd and waits until it logged "slot table loaded". */
void env_slotd_start(struct env *e);
/* Sends sig and waits for the exit; returns the wait status. */
int env_slotd_stop(struct env *e, int sig);
/* Stops slotd (SIGKILL) and redis, removes the files (keeps them and prints
 * the log's tail if keep_log). */
void env_stop(struct env *e);

/* Acts as worker id: heartbeat with ttl_ms (and weight, 0 = none) + SADD. */
void env_worker_beat(struct env *e, const char *id, int ttl_ms, int weight);
/* Deregisters worker id (SREM + DEL heartbeat). */
void env_worker_leave(struct env *e, const char *id);

/* Key names. */
const char *env_key(char *buf, size_t cap, const char *name);      /* {t}:name */
long long env_llen(struct env *e, const char *name);                /* LLEN {t}:name */

/* Waits until LLEN {t}:name == n; 0, or -1 on timeout. */
int env_wait_llen(struct env *e, const char *name, long long n, int timeout_ms);
/* Waits until slotd's log contains text; 0, or -1 on timeout. */
int env_wait_log(struct env *e, const char *text, int timeout_ms);
/* Waits until one line of slotd's log contains both a and b. */
int env_wait_log2(struct env *e, const char *a, const char *b, int timeout_ms);
/* How many lines of slotd's log (this run) contain text. */
int env_log_count(struct env *e, const char *text);
/* Waits until every one of ids owns slots in {t}:slots and nobody else does. */
int env_wait_owners(struct env *e, const char *const *ids, size_t n, int timeout_ms);

/* Starts slotd-worker --id id -j jobs -- sh -c script (its log next to
 * slotd's, as worker-<id>.log). Returns its pid. */
pid_t env_worker_start(struct env *e, const char *id, int jobs, const char *script);

/* Runs this build's slotctl -c <e's config> args (input on its stdin if not
 * NULL); its output (stdout and stderr) in out; returns its exit status. */
int env_slotctl(struct env *e, const char *input, const char *args, char *out, size_t cap);
/* The same with stdout and stderr apart: stdout in out (*outlen bytes, then
 * a NUL; more than cap - 1 bytes fails the test), stderr in err (cut to
 * errcap - 1 bytes). args go through sh: "$(printf '\377')" passes a byte. */
int env_slotctl_apart(struct env *e, const char *args, char *out, size_t cap, size_t *outlen,
                      char *err, size_t errcap);

struct slotmap;
/* The slot table as slotd saved it in {t}:slots (initialises m; the caller
 * frees it). */
void env_load_table(struct env *e, struct slotmap *m);

#endif
