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
/* Stops the process (SIGTERM, so Redis saves what it persists; SIGKILL
 * after 10 s) and removes the dir. Safe to call twice. */
void harness_redis_stop(struct harness_redis *r);
/* Sends sig and waits for the exit (SIGKILL after 10 s); the dir stays. */
void harness_redis_kill(struct harness_redis *r, int sig);
/* Starts it again after harness_redis_kill: same port, dir and config. It
 * waits until Redis has loaded its data (it answers -LOADING until then).
 * 0, or -1 (the port may have been taken meanwhile). */
int harness_redis_resume(struct harness_redis *r);
/* harness_redis_kill(SIGTERM), then harness_redis_resume. */
int harness_redis_restart(struct harness_redis *r);
/* A sync connection (2 s to connect, 20 s per command), authenticated with
 * r->password if set, or NULL. The caller frees it with redisFree. */
redisContext *harness_redis_connect(const struct harness_redis *r);

/* redisCommand that fails the test on a NULL reply (a connection error);
 * error replies are returned like any other. The caller frees the reply. */
redisReply *harness_cmd(redisContext *c, const char *fmt, ...);
/* LLEN key; fails the test unless the reply is an integer. */
long long harness_llen(redisContext *c, const char *key);

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
