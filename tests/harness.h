/*
 * harness: what integration tests need around the real binaries: a
 * throwaway redis-server on a free loopback port in a temp dir, stopped by
 * its pid; child processes; temp dirs and files; waiting. Never touches
 * another Redis (a system one on 6379 is never connected to or signalled).
 *
 * Children (redis-server, slotd, workers) get PR_SET_PDEATHSIG(SIGKILL): if
 * the test process dies, they die too. That signal follows the thread that
 * forked them, so spawn from the test's main thread.
 *
 * A test that fails in Check's fork mode exits without its teardown: its
 * redis-server dies by that signal and its temp dir stays behind for a
 * post-mortem. SLOTD_KEEP_TEST_DIRS=1 in the environment keeps every temp
 * dir (their paths are printed on stderr).
 */
#ifndef SLOTD_TEST_HARNESS_H
#define SLOTD_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

/* A private redis-server. The dir holds redis.conf, redis.log, redis.stdout
 * and whatever Redis persists; tests may put their own files there too. */
struct harness_redis {
    pid_t pid;                  /* the redis-server child; 0 when not running */
    int   port;                 /* on 127.0.0.1; the same across restarts */
    char  dir[256];             /* owned temp dir; "" once removed */
    char  password[128];        /* extra_conf's "requirepass": harness connections AUTH with it */
    int   sentinel;             /* run as redis-server --sentinel (harness_sentinel_start) */
    int   frozen;               /* stopped by harness_redis_freeze, not yet thawed */
};

/*
 * Makes a temp dir, picks a free port, writes redis.conf (loopback only,
 * no persistence, log in the dir) with the lines of extra_conf (may be
 * NULL) appended, so they win: "appendonly yes", "cluster-enabled yes"...
 * A "requirepass PASSWORD" line there is remembered in r->password.
 * Starts redis-server and waits (up to 10 s) until it answers PING. A lost
 * race for the port is retried on another. Overwrites *r: never call it on
 * a running one. 0, or -1 with nothing left behind.
 */
int harness_redis_start(struct harness_redis *r, const char *extra_conf);
/* The same for a sentinel: extra_conf holds its "sentinel monitor ..."
 * lines (Sentinel rewrites the file as it learns; a resume reads it back). */
int harness_sentinel_start(struct harness_redis *r, const char *extra_conf);
/* Stops the process (SIGTERM, so Redis saves what it persists; SIGKILL
 * after 10 s) and removes the dir. Safe to call twice, and on a frozen one. */
void harness_redis_stop(struct harness_redis *r);
/* Sends sig and waits for the exit (SIGKILL after 10 s); the dir stays.
 * A frozen one is thawed after sig, so that the signal is delivered. */
void harness_redis_kill(struct harness_redis *r, int sig);
/* SIGSTOP, and waits until it is stopped: it answers nothing (the kernel
 * still accepts connections to its port, which then hang) until thawed. */
void harness_redis_freeze(struct harness_redis *r);
/* SIGCONT after harness_redis_freeze. */
void harness_redis_thaw(struct harness_redis *r);
/* Running and not frozen: worth talking to. */
int harness_redis_up(const struct harness_redis *r);
/* Starts it again after harness_redis_kill: same port, dir and config. It
 * waits until Redis has loaded its data (it answers -LOADING until then).
 * 0, or -1 (the port may have been taken meanwhile). */
int harness_redis_resume(struct harness_redis *r);
/* harness_redis_kill(SIGTERM), then harness_redis_resume. */
int harness_redis_restart(struct harness_redis *r);
/* A sync connection (2 s to connect, 20 s per command), authenticated with
 * r->password if set, or NULL. The caller frees it with redisFree. */
redisContext *harness_redis_connect(const struct harness_redis *r);

/*
 * ---- A Redis Sentinel topology --------------------------------------------
 *
 *   node[0] (master at first) <-- node[1..nnodes) replicaof node[0]
 *       ^   ^   ^                 (all: repl-diskless-sync-delay 0, so a
 *       |   |   |                  replica syncs at once)
 *   sentinel[0..3): sentinel monitor <name> 127.0.0.1 <node[0]'s port> 2
 *                   down-after-milliseconds 1000, failover-timeout 3000
 *
 * Every process is a struct harness_redis of its own (a temp dir, a free
 * loopback port, stopped by its pid): kill, freeze, thaw and resume them
 * with the harness_redis_* functions. Which node is the master changes with
 * failovers: ask harness_ha_master_port, never assume node[0].
 * A failover takes 2-3.5 s after the master stops answering (down-after
 * 1000, the vote, up to a second of Sentinel's own random delay, the
 * promotion). With down-after 1000 on a busy machine, Sentinel now and then
 * fails over once more about a second later, from the replica it just
 * promoted: a test that checks "the master" after a failover asks again
 * rather than keep the port harness_ha_wait_failover returned.
 * Sentinel rewrites its config file as it learns: a sentinel killed and
 * resumed (harness_redis_resume) comes back knowing what it knew.
 */
#define HARNESS_HA_SENTINELS 3
#define HARNESS_HA_NODES_MAX 5

struct harness_ha {
    char                 name[64];      /* the master's name the sentinels know */
    struct harness_redis node[HARNESS_HA_NODES_MAX];
    int                  nnodes;        /* the master and its replicas */
    struct harness_redis sentinel[HARNESS_HA_SENTINELS];
};

/*
 * Starts node[0], `replicas` replicas of it (1 + replicas <=
 * HARNESS_HA_NODES_MAX) and the sentinels, then waits (harness_ha_wait_ready,
 * 20 s) until they are ready to fail over. node_conf (may be NULL) is
 * appended to each node's config: with a "requirepass P" line there, the
 * replicas get "masterauth P" and the sentinels "sentinel auth-pass". So is
 * sentinel_conf (may be NULL) to each sentinel's: with "requirepass S",
 * they get "sentinel sentinel-pass S" to talk to each other. 0; or -1 with
 * everything stopped and the reason on stderr.
 */
int harness_ha_start(struct harness_ha *h, const char *name, int replicas, const char *node_conf,
                     const char *sentinel_conf);
/* Stops the sentinels (first: no failover while the nodes go), then the
 * nodes, frozen ones included, and removes their dirs. Safe to call twice. */
void harness_ha_stop(struct harness_ha *h);
/* "127.0.0.1:p0,127.0.0.1:p1,127.0.0.1:p2", the redis.sentinels value; buf. */
const char *harness_ha_sentinel_list(const struct harness_ha *h, char *buf, size_t cap);
/* The master's port as a majority of the sentinels that are up say it
 * (SENTINEL get-master-addr-by-name), or -1 when they do not agree or none
 * answers. */
int harness_ha_master_port(const struct harness_ha *h);
/* The node on port, or NULL. */
struct harness_redis *harness_ha_node(struct harness_ha *h, int port);
/* Waits until the sentinels that are up agree on a master other than the
 * node on old_port and that node answers ROLE master: its port, or -1. */
int harness_ha_wait_failover(struct harness_ha *h, int old_port, int timeout_ms);
/* Waits until every node that is up (running, not frozen) other than the
 * master replicates it, online, at the master's replication offset: 0 or -1. */
int harness_ha_wait_synced(struct harness_ha *h, int timeout_ms);
/* Waits until the sentinels that are up agree on the master, each knows the
 * others that are up and every replica that is up (so that a failover can
 * be voted), and the replicas are in sync: 0 or -1. */
int harness_ha_wait_ready(struct harness_ha *h, int timeout_ms);

/* redisCommand that fails the test on a NULL reply (a connection error);
 * error replies are returned like any other. The caller frees the reply. */
redisReply *harness_cmd(redisContext *c, const char *fmt, ...);
/* LLEN key; fails the test unless the reply is an integer. */
long long harness_llen(redisContext *c, const char *key);

/* Runs a shell command: its exit status (-1 if it did not exit), its
 * standard output in out (cut to cap - 1 bytes, NUL-terminated). */
int harness_run(const char *cmd, char *out, size_t cap);

/* Where the binaries are: $BUILD (set by tests/run.sh) or "build". */
const char *harness_build_dir(void);
/* "<build dir>/name" into buf; returns buf. Fails the test if it is cut. */
const char *harness_bin(char *buf, size_t cap, const char *name);

/* fork+exec argv[0] (searched in PATH) with stdin from /dev/null and stdout
 * and stderr appended to log_path (NULL: /dev/null); signal dispositions
 * and mask are reset. Returns the pid, or -1. The caller reaps it. */
pid_t harness_spawn(char *const argv[], const char *log_path);
/* waitpid with a timeout (<= 0: just look once): 0 with *status (may be
 * NULL), or -1 if it is still running (or is not our child). */
int harness_wait_exit(pid_t pid, int timeout_ms, int *status);
/* kill(2), refusing pids <= 0 (a process group or everyone): 0, or -1. */
int harness_kill(pid_t pid, int sig);

/* Writes content to path (created or truncated): 0, or -1. */
int harness_write_file(const char *path, const char *content);
/* How many lines of the file at path contain text (0 when it is missing). */
int harness_file_count(const char *path, const char *text);
/* Waits until a line of the file at path contains text: 0, or -1. */
int harness_file_wait(const char *path, const char *text, int timeout_ms);
/* mkdtemp under $TMPDIR or /tmp into buf (cap >= 32 or so): 0, or -1. */
int harness_tmpdir(char *buf, size_t cap);
/* Removes path and everything under it (symlinks are not followed), unless
 * SLOTD_KEEP_TEST_DIRS is set. Ignores "" and "/". */
void harness_tmpdir_remove(const char *path);

/* Calls pred(arg) every 2 ms until it returns non-zero: 0, or -1 when
 * timeout_ms passed first. pred is called at least once. */
int harness_wait_until(int (*pred)(void *), void *arg, int timeout_ms);
/* Milliseconds on the monotonic clock. */
uint64_t harness_now_ms(void);
/* A TCP port free on 127.0.0.1 right now (another process may take it
 * before it is used: callers retry), or -1. */
int harness_free_port(void);

#endif
