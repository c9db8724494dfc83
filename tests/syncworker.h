/*
 * syncworker: a libslotd worker in a child process, for the tests of the
 * synchronous side (test_sentinel_sync, test_cluster_sync). It takes,
 * "runs" each task (work_us, then a line "<task> <ms>" in <dir>/done.log:
 * before the acknowledgement, so a task whose acknowledgement is lost shows
 * twice), acknowledges, and says each new error and each change of server,
 * with the time, in <dir>/worker.log ("<ms> server <where>"). On SIGTERM it
 * acknowledges what it holds and leaves. The tests' tasks are sequence
 * numbers.
 */
#ifndef SLOTD_TEST_SYNCWORKER_H
#define SLOTD_TEST_SYNCWORKER_H

#include <stdint.h>
#include <sys/types.h>

#include "slotd_worker.h"

#define SYNCWORKER_SEQS_MAX 8192

/* How often and when each seq of done.log ran. */
struct syncworker_runs {
    int      n;                 /* seqs 0..n-1 */
    int      count[SYNCWORKER_SEQS_MAX];    /* runs of each */
    int      lines;             /* every run */
    uint64_t first_after;       /* the first run at or after `since`, 0 if none */
};

/* Forks the worker (it dies with the test), which opens o (retrying until
 * it can) and registers; its files in dir. Its pid. */
pid_t syncworker_start(const char *dir, const struct slotd_worker_options *o, int work_us);
/* SIGTERM, and SIGKILL if it has not left within 10 s. */
void syncworker_stop(pid_t pid);

/* Reads dir's done.log for seqs [0, n) (n <= SYNCWORKER_SEQS_MAX). */
void syncworker_read_runs(const char *dir, struct syncworker_runs *r, int n, uint64_t since);
/* Waits until every seq in [0, n) ran at least once: 0, or -1. */
int syncworker_wait_all_ran(const char *dir, int n, int timeout_ms);
/* Waits until done.log has `lines` runs: 0, or -1. */
int syncworker_wait_lines(const char *dir, int lines, int timeout_ms);
/* The time of the first "server ..." line of worker.log that holds text, at
 * or after since; 0 if none. */
uint64_t syncworker_server_change(const char *dir, const char *text, uint64_t since);
/* 1 when dir's file `name` has a line holding text. */
int syncworker_file_has(const char *dir, const char *name, const char *text);

#endif
