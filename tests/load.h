/*
 * load: a workload for fault tests, around an env (env.h): producer
 * processes that push tasks with per-key sequence numbers and retry every
 * push Redis refuses until it lands, worker processes on libslotd that
 * record each task they finish (before acknowledging it), and a check of
 * the result: none lost, how many ran twice, each key's tasks in order.
 *
 * Task i (0 <= i < ntasks) is {"key":"k<i % nkeys>","seq":i,...}: a key's
 * tasks come in increasing seq. Every `bad_every`-th task (0: none) has no
 * key and goes to the dead letter: {"seq":i,"bad":1}. Producer p pushes the
 * keys k with k % nprod == p, in order, so each key has one producer.
 */
#ifndef SLOTD_TEST_LOAD_H
#define SLOTD_TEST_LOAD_H

#include <stdint.h>
#include <sys/types.h>

struct env;

#define LOAD_MAX_PROCS 8

struct load {
    struct env *e;              /* (ref) */
    int         ntasks, nkeys, bad_every;
    int         ttl_ms;         /* the workers' heartbeat TTL; 0 (the default): 3000 */
    pid_t       prod[LOAD_MAX_PROCS];
    int         nprod;
    pid_t       worker[LOAD_MAX_PROCS];
    char        id[LOAD_MAX_PROCS][16];
    int         nworkers;
};

struct load_result {
    long lost;                  /* good tasks no worker finished */
    long dup;                   /* extra runs of good tasks */
    long order;                 /* first runs of a key out of seq order */
    long dead;                  /* bad tasks in the dead letter */
    long dead_dup;              /* bad tasks there more than once */
    char first[256];            /* the first problem found, for the message */
};

/* Starts nprod producers pushing ntasks tasks over nkeys keys, each at
 * about rate tasks/s (0: as fast as it can). */
void load_start(struct load *l, struct env *e, int ntasks, int nkeys, int bad_every,
                int nprod, int rate);

/* Starts a worker with this id (prefetch, and work_us of sleep per task).
 * Its log is <dir>/worker-<id>.log, what it finished <dir>/done-<id>.log. */
pid_t load_worker(struct load *l, const char *id, int prefetch, int work_us);

/* Stops a worker with sig (SIGTERM: it leaves; SIGKILL: it dies), waits. */
void load_worker_stop(struct load *l, const char *id, int sig);

/* Waits for the producers to have pushed everything: 0, or -1. */
int load_wait_pushed(struct load *l, int timeout_ms);

/* How many good tasks have been finished at least once so far. */
long load_finished(struct load *l);

/* Waits until every good task has been finished: 0, or -1. */
int load_wait_finished(struct load *l, int timeout_ms);

/* Reads what the workers finished and {ns}:dead. */
void load_check(struct load *l, struct load_result *r);

/* Starts a worker for each of ids[0..n) (prefetch, work_us) and waits
 * until they own the slots. */
void load_workers(struct load *l, const char *const *ids, int n, int prefetch, int work_us);

/* Waits until more tasks than now are finished (routing goes on after
 * `after`); fails the test if it does not within 15 s. */
void load_progress(struct load *l, const char *after);

/* Waits for every task to be pushed and finished, then fails the test
 * unless none was lost, none ran twice and each key's ran in order. */
void load_expect_once_in_order(struct load *l, const char *what);

/* Stops the workers (SIGTERM) and any producer left. */
void load_stop(struct load *l);

/* Whether the file at path contains text. */
int load_file_has(const char *path, const char *text);

#endif
