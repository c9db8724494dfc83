/*
 * harness: what integration tests need around the real binaries: a
 * throwaway redis-server on a free loopback port in a temp dir, stopped by
 * its pid; child processes; files; waiting. Never touches another Redis.
 */
#ifndef SLOTD_TEST_HARNESS_H
#define SLOTD_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

struct harness_redis {
    pid_t pid;                  /* 0 when not running */
    int   port;
    char  dir[256];             /* temp dir: redis.conf, data, logs */
};

/* Starts redis-server (extra_conf lines appended to its config, may be
 * NULL) and waits until it answers PING. 0, or -1. */
int harness_redis_start(struct harness_redis *r, const char *extra_conf);
/* SIGTERM (Redis saves what it persists), wait, remove the dir. Idempotent. */
void harness_redis_stop(struct harness_redis *r);
/* Stops the process only (the dir stays). */
void harness_redis_kill(struct harness_redis *r, int sig);
/* Starts it again on the same port and dir, after delay_ms, and waits for
 * it to load. Returns at once if delay_ms < 0 and the start is left to
 * harness_redis_resume. */
int harness_redis_resume(struct harness_redis *r);
/* harness_redis_kill(SIGTERM) then harness_redis_resume. */
int harness_redis_restart(struct harness_redis *r);
/* A sync connection (2 s timeout), or NULL. */
redisContext *harness_redis_connect(const struct harness_redis *r);

/* redisCommand that fails the test on a NULL reply; the caller frees. */
redisReply *harness_cmd(redisContext *c, const char *fmt, ...);

/* Where the binaries are: $BUILD or "build". */
const char *harness_build_dir(void);

/* fork+exec argv with stdout and stderr appended to log_path; the child
 * dies with the test (PR_SET_PDEATHSIG). */
pid_t harness_spawn(char *const argv[], const char *log_path);
/* waitpid with a timeout (0 = just poll): 0 with *status, or -1. */
int harness_wait_exit(pid_t pid, int timeout_ms, int *status);
int harness_kill(pid_t pid, int sig);

int harness_write_file(const char *path, const char *content);
int harness_wait_until(int (*pred)(void *), void *arg, int timeout_ms);
uint64_t harness_now_ms(void);
/* A TCP port free on 127.0.0.1 right now. */
int harness_free_port(void);

#endif
