/*
 * benchutil: what the benchmarks measure with: the monotonic clock, a
 * process's CPU time and peak memory from /proc; and their one way to send
 * a command that must succeed.
 */
#ifndef SLOTD_BENCHUTIL_H
#define SLOTD_BENCHUTIL_H

#include <sys/types.h>

#include <hiredis/hiredis.h>

/* Seconds on the monotonic clock. */
double bench_now_s(void);
/* User plus system CPU seconds the process has used so far, or -1. */
double bench_cpu_s(pid_t pid);
/* The process's peak resident memory (VmHWM) in KiB, or -1. */
long bench_peak_rss_kib(pid_t pid);
/* A command that must succeed: the bench exits, saying which, if not. */
void bench_must(redisContext *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
