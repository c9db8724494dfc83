/*
 * load: producers, libslotd workers and the exactly-once and order check of
 * fault tests. See load.h.
 */
#include "load.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "dial.h"
#include "env.h"
#include "harness.h"
#include "slotd_worker.h"

static volatile sig_atomic_t child_stop;

static void on_child_term(int sig)
{
    (void)sig;
    child_stop = 1;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A child of the test: dies with it, and stops on SIGTERM. */
static void become_child(pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child_term;
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int is_bad(const struct load *l, int i)
{
    return l->bad_every > 0 && i % l->bad_every == l->bad_every - 1;
}

/*
 * Pushes producer p's share, one task at a time, in order: a push Redis
 * refuses (a key of the wrong type, out of memory, loading) is tried again
 * until it lands. A push whose reply was lost may have landed: it is tried
 * again too, and noted in unsure-<p>.log, since it may now be there twice.
 */
/* A connection to the master: e's redis, or the one the sentinels name. */
static redisContext *connect_master(struct load *l, struct dial *d)
{
    char err[512];
    if (l->e->ha == NULL)
        return harness_redis_connect(&l->e->redis);
    return dial_connect(d, "producer", err, sizeof err);
}

/* The dial of a process of the load (with Sentinel). */
static void load_dial(struct load *l, struct dial *d, char *sentinels, size_t cap)
{
    char err[512];
    struct dial_options o = { .connect_timeout_ms = 300, .reply_timeout_ms = 1500 };
    if (l->e->ha != NULL) {
        o.sentinels = harness_ha_sentinel_list(l->e->ha, sentinels, cap);
        o.sentinel_master = l->e->ha->name;
    }
    if (dial_init(d, &o, err, sizeof err) != 0)
        _exit(3);
}

static void producer_main(struct load *l, int p, int rate)
{
    char path[600], intake[64], task[128];
    snprintf(path, sizeof path, "%s/unsure-%d.log", l->e->redis.dir, p);
    FILE *unsure = fopen(path, "a");
    redisContext *c = NULL;
    uint64_t start = mono_ns();
    long pushed = 0;
    struct dial d;
    char sentinels[256];
    load_dial(l, &d, sentinels, sizeof sentinels);
    env_key(intake, sizeof intake, "intake");
    for (int i = 0; i < l->ntasks && !child_stop; i++) {
        if ((i % l->nkeys) % l->nprod != p)
            continue;
        if (is_bad(l, i))
            snprintf(task, sizeof task, "{\"seq\":%d,\"bad\":1}", i);
        else
            snprintf(task, sizeof task, "{\"key\":\"k%d\",\"seq\":%d,\"pad\":\"xxxxxxxxxxxxxxxx\"}",
                     i % l->nkeys, i);
        for (;;) {
            if (c == NULL || c->err) {
                if (c)
                    redisFree(c);
                c = connect_master(l, &d);
                if (c == NULL) {
                    usleep(20000);
                    continue;
                }
            }
            redisReply *r = redisCommand(c, "LPUSH %s %s", intake, task);
            if (r == NULL) {
                if (unsure)
                    fprintf(unsure, "%d\n", i);
                continue;
            }
            int ok = r->type == REDIS_REPLY_INTEGER;
            freeReplyObject(r);
            if (ok && l->e->ha != NULL) {
                /* Acknowledged once a replica has it: a failover keeps it.
                 * Not acknowledged: pushed again (it may be there twice). */
                r = redisCommand(c, "WAIT 1 1000");
                ok = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 1;
                if (r)
                    freeReplyObject(r);
                if (!ok && unsure)
                    fprintf(unsure, "%d\n", i);
                if (!ok) {
                    if (c->err == 0) {      /* a failover under way: ask again */
                        redisFree(c);
                        c = NULL;
                    }
                    continue;
                }
            }
            if (ok)
                break;
            usleep(5000);
        }
        pushed++;
        if (rate > 0) {
            uint64_t due = start + (uint64_t)pushed * 1000000000u / (uint64_t)rate;
            uint64_t now = mono_ns();
            if (due > now)
                usleep((useconds_t)((due - now) / 1000));
        }
    }
    if (unsure)
        fclose(unsure);
    if (c)
        redisFree(c);
    _exit(0);
}

void load_start(struct load *l, struct env *e, int ntasks, int nkeys, int bad_every,
                int nprod, int rate)
{
    memset(l, 0, sizeof *l);
    l->e = e;
    l->ntasks = ntasks;
    l->nkeys = nkeys;
    l->bad_every = bad_every;
    l->nprod = nprod;
    ck_assert_int_le(nprod, LOAD_MAX_PROCS);
    pid_t parent = getpid();
    for (int p = 0; p < nprod; p++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            become_child(parent);
            producer_main(l, p, rate);
        }
        l->prod[p] = pid;
    }
}

/* The worker's log: an error line each time the error changes. */
static void say_error(FILE *log, char *last, size_t cap, const char *what, const char *err)
{
    char line[600];
    snprintf(line, sizeof line, "%s: %s", what, err);
    if (strcmp(line, last) == 0)
        return;
    snprintf(last, cap, "%s", line);
    fprintf(log, "%s\n", line);
    fflush(log);
}

static int task_seq(const struct slotd_task *t)
{
    const char *p = memmem(t->data, t->len, "\"seq\":", 6);
    return p ? atoi(p + 6) : -1;
}

static void worker_main(struct load *l, const char *id, int prefetch, int work_us)
{
    char path[600], last[600] = "", err[512];
    snprintf(path, sizeof path, "%s/worker-%s.log", l->e->redis.dir, id);
    FILE *log = fopen(path, "a");
    snprintf(path, sizeof path, "%s/done-%s.log", l->e->redis.dir, id);
    int done = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (log == NULL || done < 0)
        _exit(2);
    struct slotd_worker_options o = {
        .host = "127.0.0.1", .port = l->e->redis.port, .ns = ENV_NS, .id = id,
        .heartbeat_ttl_ms = l->ttl_ms, .prefetch = prefetch,
    };
    char sentinels[256];
    if (l->e->ha != NULL) {
        o.sentinels = harness_ha_sentinel_list(l->e->ha, sentinels, sizeof sentinels);
        o.sentinel_master = l->e->ha->name;
        o.connect_timeout_ms = 300;
        o.reply_timeout_ms = 1500;
    }
    struct slotd_worker *w = NULL;
    while (!child_stop && (w = slotd_worker_open(&o, err, sizeof err)) == NULL) {
        say_error(log, last, sizeof last, "open", err);
        usleep(20000);
    }
    while (!child_stop && w && slotd_worker_register(w) != 0) {
        say_error(log, last, sizeof last, "register", slotd_worker_error(w));
        usleep(20000);
    }
    if (w == NULL || slotd_worker_start_heartbeat(w) != 0)
        _exit(2);
    fprintf(log, "registered\n");
    fflush(log);
    struct slotd_task *t = calloc((size_t)prefetch, sizeof *t);
    int n = 0;          /* tasks finished, their ack not yet through */
    while (!child_stop) {
        if (n > 0) {
            if (slotd_worker_ack(w, t, n) != 0) {
                say_error(log, last, sizeof last, "ack", slotd_worker_error(w));
                usleep(20000);
                continue;
            }
            n = 0;
        }
        int got = slotd_worker_take(w, t, prefetch, 200);
        if (got < 0) {
            say_error(log, last, sizeof last, "take", slotd_worker_error(w));
            usleep(20000);
            continue;
        }
        for (int i = 0; i < got; i++) {
            char line[64];
            if (work_us > 0)
                usleep((useconds_t)work_us);
            int len = snprintf(line, sizeof line, "%d %llu\n", task_seq(&t[i]),
                               (unsigned long long)mono_ns());
            if (write(done, line, (size_t)len) != len)
                _exit(2);
        }
        n = got;
    }
    for (int tries = 0; n > 0 && tries < 50; tries++) {
        if (slotd_worker_ack(w, t, n) == 0)
            n = 0;
        else
            usleep(20000);
    }
    if (slotd_worker_leave(w) != 0)
        say_error(log, last, sizeof last, "leave", slotd_worker_error(w));
    fprintf(log, "left\n");
    fclose(log);
    close(done);
    slotd_worker_close(w);
    free(t);
    _exit(0);
}

pid_t load_worker(struct load *l, const char *id, int prefetch, int work_us)
{
    int k = -1;
    for (int i = 0; i < l->nworkers; i++)
        if (strcmp(l->id[i], id) == 0)
            k = i;
    if (k < 0) {
        ck_assert_int_lt(l->nworkers, LOAD_MAX_PROCS);
        k = l->nworkers++;
        snprintf(l->id[k], sizeof l->id[k], "%s", id);
    }
    ck_assert_int_eq(l->worker[k], 0);
    if (l->ttl_ms == 0)
        l->ttl_ms = 3000;
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        become_child(parent);
        worker_main(l, id, prefetch, work_us);
    }
    l->worker[k] = pid;
    return pid;
}

void load_worker_stop(struct load *l, const char *id, int sig)
{
    for (int i = 0; i < l->nworkers; i++) {
        if (strcmp(l->id[i], id) != 0 || l->worker[i] == 0)
            continue;
        harness_kill(l->worker[i], sig);
        if (harness_wait_exit(l->worker[i], 10000, NULL) != 0) {
            harness_kill(l->worker[i], SIGKILL);
            harness_wait_exit(l->worker[i], 5000, NULL);
        }
        l->worker[i] = 0;
    }
}

int load_wait_pushed(struct load *l, int timeout_ms)
{
    for (int p = 0; p < l->nprod; p++) {
        if (l->prod[p] == 0)
            continue;
        int st;
        if (harness_wait_exit(l->prod[p], timeout_ms, &st) != 0)
            return -1;
        l->prod[p] = 0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return -1;
    }
    return 0;
}

/* Runs of each seq and, for the order check, every run: (seq, time). */
struct runs {
    unsigned short *count;
    struct run { int seq; unsigned long long t; } *all;
    size_t n, cap;
};

static void read_runs(struct load *l, struct runs *r, int keep_all)
{
    memset(r, 0, sizeof *r);
    r->count = calloc((size_t)l->ntasks, sizeof *r->count);
    ck_assert_ptr_nonnull(r->count);
    for (int i = 0; i < l->nworkers; i++) {
        char path[600], line[128];
        snprintf(path, sizeof path, "%s/done-%s.log", l->e->redis.dir, l->id[i]);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        while (fgets(line, sizeof line, f)) {
            int seq;
            unsigned long long t;
            if (sscanf(line, "%d %llu", &seq, &t) != 2 || seq < 0 || seq >= l->ntasks)
                continue;
            if (r->count[seq] < 65535)
                r->count[seq]++;
            if (!keep_all)
                continue;
            if (r->n == r->cap) {
                r->cap = r->cap ? 2 * r->cap : 65536;
                r->all = realloc(r->all, r->cap * sizeof *r->all);
                ck_assert_ptr_nonnull(r->all);
            }
            r->all[r->n].seq = seq;
            r->all[r->n].t = t;
            r->n++;
        }
        fclose(f);
    }
}

static void free_runs(struct runs *r)
{
    free(r->count);
    free(r->all);
}

long load_finished(struct load *l)
{
    struct runs r;
    long n = 0;
    read_runs(l, &r, 0);
    for (int i = 0; i < l->ntasks; i++)
        n += !is_bad(l, i) && r.count[i] > 0;
    free_runs(&r);
    return n;
}

int load_wait_finished(struct load *l, int timeout_ms)
{
    long good = 0;
    for (int i = 0; i < l->ntasks; i++)
        good += !is_bad(l, i);
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    do {
        if (load_finished(l) == good)
            return 0;
        usleep(50000);
    } while (harness_now_ms() < end);
    return -1;
}

static int by_time(const void *a, const void *b)
{
    const struct run *x = a, *y = b;
    return x->t < y->t ? -1 : x->t > y->t;
}

void load_check(struct load *l, struct load_result *res)
{
    struct runs r;
    unsigned char *unsure = calloc((size_t)l->ntasks, 1);
    int *last = malloc((size_t)l->nkeys * sizeof *last);
    unsigned char *seen = calloc((size_t)l->ntasks, 1);
    ck_assert(unsure && last && seen);
    memset(res, 0, sizeof *res);
    for (int p = 0; p < l->nprod; p++) {
        char path[600];
        int seq;
        snprintf(path, sizeof path, "%s/unsure-%d.log", l->e->redis.dir, p);
        FILE *f = fopen(path, "r");
        while (f && fscanf(f, "%d", &seq) == 1)
            if (seq >= 0 && seq < l->ntasks)
                unsure[seq] = 1;
        if (f)
            fclose(f);
    }
    read_runs(l, &r, 1);
    for (int i = 0; i < l->ntasks; i++) {
        if (is_bad(l, i))
            continue;
        long extra = r.count[i] > 0 ? r.count[i] - 1 - unsure[i] : 0;
        if (r.count[i] == 0) {
            if (res->lost++ == 0 && !res->first[0])
                snprintf(res->first, sizeof res->first, "task %d lost", i);
        } else if (extra > 0) {
            if (res->dup == 0 && !res->first[0])
                snprintf(res->first, sizeof res->first, "task %d ran %d times", i, r.count[i]);
            res->dup += extra;
        }
    }
    /* Each key's first runs, in time order, must come in seq order. */
    qsort(r.all, r.n, sizeof *r.all, by_time);
    for (int k = 0; k < l->nkeys; k++)
        last[k] = -1;
    for (size_t j = 0; j < r.n; j++) {
        int seq = r.all[j].seq, k = seq % l->nkeys;
        if (seen[seq])
            continue;
        seen[seq] = 1;
        if (seq < last[k]) {
            if (res->order++ == 0 && !res->first[0])
                snprintf(res->first, sizeof res->first, "key k%d: task %d ran after %d", k, seq,
                         last[k]);
        } else {
            last[k] = seq;
        }
    }
    /* The bad tasks: each in the dead letter once. */
    char dead[64];
    if (l->e->ha != NULL)
        env_follow(l->e);
    redisReply *d = harness_cmd(l->e->c, "LRANGE %s 0 -1", env_key(dead, sizeof dead, "dead"));
    unsigned short *dc = calloc((size_t)l->ntasks, sizeof *dc);
    ck_assert_ptr_nonnull(dc);
    for (size_t j = 0; d->type == REDIS_REPLY_ARRAY && j < d->elements; j++) {
        const char *p = strstr(d->element[j]->str, "\\\"seq\\\":");
        int seq = p ? atoi(p + 8) : -1;
        if (seq >= 0 && seq < l->ntasks)
            dc[seq]++;
    }
    freeReplyObject(d);
    for (int i = 0; i < l->ntasks; i++) {
        if (!is_bad(l, i))
            continue;
        if (dc[i] == 0 && res->lost++ == 0 && !res->first[0])
            snprintf(res->first, sizeof res->first, "bad task %d not in the dead letter", i);
        res->dead += dc[i] > 0;
        res->dead_dup += dc[i] > 1 ? dc[i] - 1 : 0;
    }
    free(dc);
    free(unsure);
    free(last);
    free(seen);
    free_runs(&r);
}

void load_workers(struct load *l, const char *const *ids, int n, int prefetch, int work_us)
{
    for (int i = 0; i < n; i++)
        load_worker(l, ids[i], prefetch, work_us);
    ck_assert_int_eq(env_wait_owners(l->e, ids, (size_t)n, 10000), 0);
}

void load_progress(struct load *l, const char *after)
{
    long before = load_finished(l);
    uint64_t end = harness_now_ms() + 15000;
    while (load_finished(l) < before + 50 && harness_now_ms() < end)
        usleep(20000);
    ck_assert_msg(load_finished(l) >= before + 50, "routing did not resume after %s (%ld finished)",
                  after, before);
}

void load_expect_once_in_order(struct load *l, const char *what)
{
    struct load_result res;
    ck_assert_int_eq(load_wait_pushed(l, 120000), 0);
    ck_assert_msg(load_wait_finished(l, 60000) == 0, "%s: not every task finished (%ld of %d)",
                  what, load_finished(l), l->ntasks);
    load_check(l, &res);
    fprintf(stderr, "%s: %d tasks, %ld dead letters, lost %ld, ran twice %ld, out of order %ld\n",
            what, l->ntasks, res.dead, res.lost, res.dup, res.order);
    ck_assert_msg(res.lost == 0 && res.dup == 0 && res.order == 0 && res.dead_dup == 0,
                  "%s: lost %ld, ran twice %ld, out of order %ld, dead letters twice %ld: %s",
                  what, res.lost, res.dup, res.order, res.dead_dup, res.first);
}

void load_stop(struct load *l)
{
    for (int i = 0; i < l->nworkers; i++)
        if (l->worker[i] > 0)
            load_worker_stop(l, l->id[i], SIGTERM);
    for (int p = 0; p < l->nprod; p++)
        if (l->prod[p] > 0) {
            harness_kill(l->prod[p], SIGTERM);
            harness_wait_exit(l->prod[p], 5000, NULL);
            l->prod[p] = 0;
        }
}

int load_file_has(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int found = 0;
    if (f == NULL)
        return 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}
