/*
 * bench-cluster: `make bench`'s cluster mode. One namespace split into 1, 2
 * and 3 shards whose slots sit on 1, 2 and 3 different masters of a private
 * Redis Cluster (3 masters, no replicas, loopback), one slotd per shard:
 *
 *   drain        every shard's intake filled first, then the slotds started;
 *                the time until every intake is empty (the workers are
 *                heartbeats only: the tasks stay in their queues)
 *   end to end   the slotds and libslotd no-op workers running (each worker
 *                serving every shard, through the cluster's seeds), then
 *                every shard's tasks pushed onto its node; the time until
 *                every task is acknowledged
 *
 * Each run is verified (every task once, in its owner's queue or run once,
 * each key's in order) and says the aggregate rate, the rate per shard and
 * the CPU each shard cost: slotd's and its Redis node's, in microseconds per
 * task. On a machine with fewer cores than shards times two the aggregate
 * cannot grow with N: the per-shard cost is what says what N shards reach
 * with the cores they need (docs/performance.md).
 *
 *   bench-cluster [-n TASKS]   default 600,000 per run (BENCH_TASKS overrides)
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "benchutil.h"
#include "harness.h"
#include "harness_cluster.h"
#include "keys.h"
#include "keyslot.h"
#include "slotmap.h"
#include "slotd_worker.h"
#include "taskkey.h"

#define MAX_SHARDS 3
#define KEYS_PER_SHARD 3000
#define WORKERS 4

/* One run's namespace: its shards, the node each is on, its slotds. */
struct run {
    int          nshards;
    char         ns[32];
    struct keys  keys[MAX_SHARDS];
    int          port[MAX_SHARDS];          /* the master serving shard i */
    char         conf[400];
    pid_t        slotd[MAX_SHARDS];
    char       (*key)[MAX_SHARDS][KEYS_PER_SHARD][24];  /* owned: keys of each shard */
};

static struct harness_cluster cl;
static char dir[300];
static long ntasks = 600000;

static redisContext *node(int port)
{
    redisContext *c = harness_redis_connect(harness_cluster_node(&cl, port));
    if (c == NULL) {
        fprintf(stderr, "bench-cluster: cannot connect to port %d\n", port);
        exit(1);
    }
    return c;
}

static long long llen_at(int port, const char *key)
{
    redisContext *c = node(port);
    redisReply *r = redisCommand(c, "LLEN %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return n;
}

/* The Redis CPU seconds (user + system) of the node on port so far. */
static double redis_cpu(int port)
{
    return bench_cpu_s(harness_cluster_node(&cl, port)->pid);
}

/* A namespace whose nshards shards sit on nshards different masters; the
 * keys of each shard. */
static void choose(struct run *r, int nshards)
{
    memset(r, 0, sizeof *r);
    r->nshards = nshards;
    for (int k = 0; k < 10000; k++) {
        snprintf(r->ns, sizeof r->ns, "bc%d-%d", nshards, k);
        int ok = 1;
        for (int i = 0; i < nshards && ok; i++) {
            if (keys_init_shard(&r->keys[i], r->ns, i, nshards) != 0)
                exit(1);
            r->port[i] = harness_cluster_master_of(&cl, keys_slot(&r->keys[i]));
            for (int j = 0; j < i; j++)
                ok &= r->port[j] != r->port[i];
            ok &= r->port[i] > 0;
        }
        if (ok)
            break;
    }
    r->key = calloc(1, sizeof *r->key);
    int have[MAX_SHARDS] = { 0 }, full = 0;
    for (long j = 0; full < nshards; j++) {
        char k[24];
        int n = snprintf(k, sizeof k, "user:%ld", j);
        int s = keys_shard_of(keyslot(k, (size_t)n), nshards);
        if (have[s] == KEYS_PER_SHARD)
            continue;
        memcpy((*r->key)[s][have[s]++], k, (size_t)n + 1);
        full += have[s] == KEYS_PER_SHARD;
    }
    char seeds[512], text[1024];
    harness_cluster_seeds(&cl, seeds, sizeof seeds);
    snprintf(r->conf, sizeof r->conf, "%s/%s.yaml", dir, r->ns);
    snprintf(text, sizeof text,
             "namespace: %s\nshards: %d\nredis:\n  cluster_seeds: \"%s\"\n"
             "http:\n  listen: \"\"\nlog:\n  level: warn\n"
             "workers:\n  check_interval_ms: 100\n  heartbeat_ttl_ms: 1000\n",
             r->ns, nshards, seeds);
    harness_write_file(r->conf, text);
}

/* Task t of shard s: ~100 bytes of JSON, its id global. */
static int make_task(const struct run *r, char *buf, size_t cap, int s, long t, long per)
{
    return snprintf(buf, cap, "{\"id\":%ld,\"key\":\"%s\",\"payload\":\"%.*s\"}", s * per + t,
                    (*r->key)[s][t % KEYS_PER_SHARD], (int)(60 - (t % 10)),
                    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghij");
}

/* Shard s's intake gets its `per` tasks, 1000 per LPUSH, pipelined. */
static void fill(const struct run *r, int s, long per)
{
    enum { CHUNK = 1000 };
    static char bufs[CHUNK][160];
    const char *argv[CHUNK + 2];
    size_t argvlen[CHUNK + 2];
    redisContext *c = node(r->port[s]);
    long pending = 0;
    argv[0] = "LPUSH";
    argvlen[0] = 5;
    argv[1] = r->keys[s].intake;
    argvlen[1] = strlen(argv[1]);
    for (long i = 0; i < per; i += CHUNK) {
        int n = 0;
        for (long j = i; j < per && n < CHUNK; j++, n++) {
            argvlen[n + 2] = (size_t)make_task(r, bufs[n], sizeof bufs[n], s, j, per);
            argv[n + 2] = bufs[n];
        }
        redisAppendCommandArgv(c, n + 2, argv, argvlen);
        for (pending++; pending == 32 || (i + CHUNK >= per && pending > 0); pending--) {
            redisReply *rep;
            if (redisGetReply(c, (void **)&rep) != REDIS_OK)
                exit(1);
            freeReplyObject(rep);
        }
    }
    redisFree(c);
}

static void register_fake_workers(const struct run *r)
{
    for (int s = 0; s < r->nshards; s++) {
        redisContext *c = node(r->port[s]);
        for (int w = 0; w < WORKERS; w++) {
            char hb[KEYS_NAME_MAX], id[16];
            snprintf(id, sizeof id, "w%d", w);
            bench_must(c, "SET %s {} PX 600000", keys_hb(&r->keys[s], id, hb, sizeof hb));
            bench_must(c, "SADD %s %s", r->keys[s].workers, id);
        }
        redisFree(c);
    }
}

static void start_slotds(struct run *r)
{
    char bin[400], log[500], shard[8];
    snprintf(bin, sizeof bin, "%s/slotd", harness_build_dir());
    for (int s = 0; s < r->nshards; s++) {
        snprintf(shard, sizeof shard, "%d", s);
        snprintf(log, sizeof log, "%s/%s-%d.log", dir, r->ns, s);
        char *argv[] = { bin, "-c", r->conf, "-s", shard, NULL };
        r->slotd[s] = harness_spawn(argv, log);
    }
}

static void stop_slotds(struct run *r)
{
    for (int s = 0; s < r->nshards; s++) {
        int st;
        kill(r->slotd[s], SIGTERM);
        if (harness_wait_exit(r->slotd[s], 5000, &st) != 0) {
            kill(r->slotd[s], SIGKILL);
            harness_wait_exit(r->slotd[s], 5000, &st);
        }
    }
}

/* Every task of shard s in the queue of its key's owner, once, each queue
 * in id order. 0, or -1 (said). */
static int verify_queues(const struct run *r, int s, long per, unsigned char *seen)
{
    redisContext *c = node(r->port[s]);
    struct slotmap m;
    char err[256], scratch[256];
    long bad = 0, total = 0;
    slotmap_init(&m);
    redisReply *t = redisCommand(c, "HGETALL %s", r->keys[s].slots);
    for (size_t i = 0; t && i + 1 < t->elements; i += 2)
        bad += slotmap_claim(&m, t->element[i]->str, t->element[i + 1]->str,
                             t->element[i + 1]->len, err, sizeof err) != 0;
    if (t)
        freeReplyObject(t);
    for (int w = 0; w < WORKERS; w++) {
        char q[KEYS_NAME_MAX], id[16];
        snprintf(id, sizeof id, "w%d", w);
        keys_queue(&r->keys[s], id, q, sizeof q);
        redisReply *rep = redisCommand(c, "LRANGE %s 0 -1", q);
        long last = -1;
        for (size_t j = rep ? rep->elements : 0; j-- > 0;) {
            const char *key;
            size_t kl, off;
            long no = atol(rep->element[j]->str + 6);
            if (taskkey_find(rep->element[j]->str, rep->element[j]->len, "key", 3, scratch, &key,
                             &kl, &off) != TASKKEY_OK || no < s * per || no >= (s + 1) * per ||
                seen[no]) {
                bad++;
                continue;
            }
            seen[no] = 1;
            unsigned o = slotmap_owner(&m, keyslot(key, kl));
            bad += o == SLOTMAP_NOBODY || strcmp(m.workers[o].id, id) != 0 || no <= last;
            last = no;
            total++;
        }
        if (rep)
            freeReplyObject(rep);
    }
    slotmap_free(&m);
    redisFree(c);
    if (bad || total != per) {
        printf("  VERIFY FAILED: shard %d: %ld tasks found of %ld, %ld problems\n", s, total, per,
               bad);
        return -1;
    }
    return 0;
}

static void flush_all(void)
{
    for (int i = 0; i < cl.nnodes; i++) {
        redisContext *c = harness_redis_connect(&cl.node[i]);
        if (c) {
            redisReply *r = redisCommand(c, "FLUSHALL");
            if (r)
                freeReplyObject(r);
            redisFree(c);
        }
    }
}

/* The figures of one run. */
struct result {
    double rate, slotd_us, redis_us;
    int    ok;
};

static void say(const char *what, const struct run *r, const struct result *x, double base)
{
    printf("  %-10s %d shard%s on %d master%s: %9.0f tasks/s (%8.0f per shard), per task: slotd "
           "%.2f us, Redis %.2f us%s", what, r->nshards, r->nshards > 1 ? "s" : " ", r->nshards,
           r->nshards > 1 ? "s" : " ", x->rate, x->rate / r->nshards, x->slotd_us, x->redis_us,
           x->ok ? "" : "  (NOT VERIFIED)");
    if (base > 0)
        printf(", %.2fx one shard", x->rate / base);
    printf("\n");
}

static struct result drain(struct run *r)
{
    struct result x = { 0, 0, 0, 1 };
    long per = ntasks / r->nshards;
    register_fake_workers(r);
    for (int s = 0; s < r->nshards; s++)
        fill(r, s, per);
    double cpu0[MAX_SHARDS];
    for (int s = 0; s < r->nshards; s++)
        cpu0[s] = redis_cpu(r->port[s]);
    double t0 = bench_now_s();
    start_slotds(r);
    for (int s = 0; s < r->nshards; s++)
        while (llen_at(r->port[s], r->keys[s].intake) > 0)
            usleep(2000);
    double dt = bench_now_s() - t0;
    double slotd_cpu = 0, rcpu = 0;
    for (int s = 0; s < r->nshards; s++) {
        slotd_cpu += bench_cpu_s(r->slotd[s]);
        rcpu += redis_cpu(r->port[s]) - cpu0[s];
    }
    stop_slotds(r);
    long total = per * r->nshards;
    x.rate = (double)total / dt;
    x.slotd_us = slotd_cpu / (double)total * 1e6;
    x.redis_us = rcpu / (double)total * 1e6;
    unsigned char *seen = calloc((size_t)total, 1);
    for (int s = 0; s < r->nshards; s++)
        x.ok &= verify_queues(r, s, per, seen) == 0;
    free(seen);
    return x;
}

/* ---- end to end ---------------------------------------------------------- */

struct e2e_worker {
    const struct run *r;
    char              id[16];
    long             *done;         /* (ref) acknowledged, all workers */
    pthread_mutex_t  *mu;
    long              want;
    unsigned char    *seen;         /* (ref) task ids run */
    long             *twice;
    pthread_t         th;
    int               err;
};

/* A no-op worker serving every shard: one libslotd handle per shard, taken
 * from in turn without waiting, a short wait on one when all are empty. */
static void *e2e_run(void *arg)
{
    struct e2e_worker *w = arg;
    const struct run *r = w->r;
    struct slotd_worker *h[MAX_SHARDS] = { NULL };
    char seeds[512];
    harness_cluster_seeds(&cl, seeds, sizeof seeds);
    for (int s = 0; s < r->nshards; s++) {
        struct slotd_worker_options o = { 0 };
        char err[256];
        o.ns = r->ns;
        o.id = w->id;
        o.cluster_seeds = seeds;
        o.shard = s;
        o.shards = r->nshards;
        o.prefetch = 100;
        o.heartbeat_ttl_ms = 3000;
        h[s] = slotd_worker_open(&o, err, sizeof err);
        if (h[s] == NULL || slotd_worker_register(h[s]) != 0 ||
            slotd_worker_start_heartbeat(h[s]) != 0) {
            fprintf(stderr, "bench-cluster: worker %s shard %d: %s\n", w->id, s,
                    h[s] ? slotd_worker_error(h[s]) : err);
            w->err = 1;
            goto out;
        }
    }
    struct slotd_task tasks[100];
    for (int turn = 0;; turn++) {
        pthread_mutex_lock(w->mu);
        int finished = *w->done >= w->want;
        pthread_mutex_unlock(w->mu);
        if (finished)
            break;
        int s = turn % r->nshards, got = 0;
        for (int k = 0; k < r->nshards && got == 0; k++) {
            s = (turn + k) % r->nshards;
            got = slotd_worker_take(h[s], tasks, 100, 0);
        }
        if (got == 0)
            got = slotd_worker_take(h[s], tasks, 100, 20);
        if (got < 0) {
            w->err = 1;
            break;
        }
        pthread_mutex_lock(w->mu);
        for (int i = 0; i < got; i++) {
            long no = atol(tasks[i].data + 6);
            if (no >= 0 && no < w->want) {
                if (w->seen[no])
                    (*w->twice)++;
                w->seen[no] = 1;
            }
        }
        pthread_mutex_unlock(w->mu);
        if (got > 0 && slotd_worker_ack(h[s], tasks, got) != 0) {
            w->err = 1;
            break;
        }
        pthread_mutex_lock(w->mu);
        *w->done += got;
        pthread_mutex_unlock(w->mu);
    }
out:
    for (int s = 0; s < r->nshards; s++)
        if (h[s] != NULL) {
            slotd_worker_leave(h[s]);
            slotd_worker_close(h[s]);
        }
    return NULL;
}

static struct result end_to_end(struct run *r)
{
    struct result x = { 0, 0, 0, 1 };
    long per = ntasks / r->nshards, total = per * r->nshards, done = 0, twice = 0;
    unsigned char *seen = calloc((size_t)total, 1);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    struct e2e_worker w[WORKERS];
    start_slotds(r);
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (struct e2e_worker){ .r = r, .done = &done, .mu = &mu, .want = total, .seen = seen,
                                    .twice = &twice };
        snprintf(w[i].id, sizeof w[i].id, "e%d", i);
        pthread_create(&w[i].th, NULL, e2e_run, &w[i]);
    }
    /* Every shard's table has every worker before the clock starts. */
    for (int s = 0; s < r->nshards; s++) {
        redisContext *c = node(r->port[s]);
        for (int k = 0; k < 500; k++) {
            redisReply *rep = redisCommand(c, "HLEN %s", r->keys[s].slots);
            long long n = rep ? rep->integer : 0;
            if (rep)
                freeReplyObject(rep);
            if (n == WORKERS)
                break;
            usleep(10000);
        }
        redisFree(c);
    }
    double cpu0[MAX_SHARDS], scpu0[MAX_SHARDS];
    for (int s = 0; s < r->nshards; s++) {
        cpu0[s] = redis_cpu(r->port[s]);
        scpu0[s] = bench_cpu_s(r->slotd[s]);
    }
    double t0 = bench_now_s();
    /* The producer: each shard's tasks pipelined onto its node, shard after
     * shard, while the workers run. */
    for (int s = 0; s < r->nshards; s++)
        fill(r, s, per);
    for (;;) {
        pthread_mutex_lock(&mu);
        long d = done;
        pthread_mutex_unlock(&mu);
        int failed = 0;
        for (int i = 0; i < WORKERS; i++)
            failed |= w[i].err;
        if (d >= total || failed || bench_now_s() - t0 > 300)
            break;
        usleep(2000);
    }
    double dt = bench_now_s() - t0;
    double rcpu = 0, scpu = 0;
    for (int s = 0; s < r->nshards; s++) {
        rcpu += redis_cpu(r->port[s]) - cpu0[s];
        scpu += bench_cpu_s(r->slotd[s]) - scpu0[s];
    }
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(w[i].th, NULL);
        x.ok &= !w[i].err;
    }
    stop_slotds(r);
    long missing = 0;
    for (long i = 0; i < total; i++)
        missing += !seen[i];
    x.ok &= missing == 0 && twice == 0;
    if (!x.ok)
        printf("  VERIFY FAILED: %ld of %ld tasks not run, %ld run twice\n", missing, total, twice);
    x.rate = (double)total / dt;
    x.redis_us = rcpu / (double)total * 1e6;
    x.slotd_us = scpu / (double)total * 1e6;
    free(seen);
    return x;
}

int main(int argc, char **argv)
{
    int opt;
    if (getenv("BENCH_TASKS"))
        ntasks = atol(getenv("BENCH_TASKS"));
    while ((opt = getopt(argc, argv, "n:")) != -1)
        if (opt == 'n')
            ntasks = atol(optarg);
    if (ntasks < 3000)
        ntasks = 3000;
    if (harness_cluster_start(&cl, 3, 0) != 0) {
        fprintf(stderr, "bench-cluster: the cluster did not start\n");
        return 1;
    }
    if (harness_tmpdir(dir, sizeof dir) != 0)
        return 1;
    printf("\nRedis Cluster: 3 masters on loopback, one slotd per shard, %ld tasks a run\n",
           ntasks);
    int failed = 0;
    double base_drain = 0, base_e2e = 0;
    for (int n = 1; n <= MAX_SHARDS; n++) {
        struct run r;
        choose(&r, n);
        flush_all();
        struct result d = drain(&r);
        say("drain", &r, &d, n > 1 ? base_drain : 0);
        if (n == 1)
            base_drain = d.rate;
        flush_all();
        struct result e = end_to_end(&r);
        say("end2end", &r, &e, n > 1 ? base_e2e : 0);
        if (n == 1)
            base_e2e = e.rate;
        failed |= !d.ok || !e.ok;
        free(r.key);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("  (%ld cores here: each shard needs one for its Redis node and part of one for its "
           "slotd; the aggregate grows with N only while there are cores for them)\n", cores);
    harness_cluster_stop(&cl);
    harness_tmpdir_remove(dir);
    return failed ? 1 : 0;
}
