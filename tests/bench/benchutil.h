/*
 * benchutil: what the benchmarks measure with: the monotonic clock, and a
 * process's CPU time and peak memory from /proc.
 */
#ifndef SLOTD_BENCHUTIL_H
#define SLOTD_BENCHUTIL_H

#include <sys/types.h>

/* Seconds on the monotonic clock. */
double bench_now_s(void);
/* User plus system CPU seconds the process has used so far, or -1. */
double bench_cpu_s(pid_t pid);
/* The process's peak resident memory (VmHWM) in KiB, or -1. */
long bench_peak_rss_kib(pid_t pid);

#endif
