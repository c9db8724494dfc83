/*
 * Integration: a namespace in two shards (shards: 2), a slotd per shard
 * (slotd -s 0, slotd -s 1) and slotd-workers that each serve both shards.
 * Every task runs once and each key's in order; a worker killed with -9
 * loses nothing: its tasks in both shards move to the other workers and
 * complete; a graceful stop leaves both shards; an idle worker takes a
 * task of either shard quickly.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "conf.h"
#include "env.h"
#include "harness.h"
#include "keys.h"
#include "load.h"
#include "route.h"

#define NSHARDS 2
#define KEYS_N  40
#define TASKS_MAX 2000

#define SHARDED "shards: 2\n" \
                "workers:\n  check_interval_ms: 100\n  heartbeat_ttl_ms: 600\n" \
                "worker:\n  prefetch: 8\n"

/* Two slotds, one per shard, around an env's Redis and config. */
struct sharded {
    struct env  e;
    struct keys k[NSHARDS];         /* each shard's key names */
    pid_t       slotd[NSHARDS];
    char        slotd_log[NSHARDS][600];
    int         shard_of_key[KEYS_N];   /* by the code's own routing */
};

/* One line of tasks.log: "<S|E> <worker> <seq> <shard>" (S when a run
 * starts, E when it ends). */
struct run_ev {
    char kind;
    char worker[32];
    int  seq;
};

static void sharded_start(struct sharded *s)
{
    char err[512];
    struct conf c;
    struct route_rules rules;

    memset(s, 0, sizeof *s);
    env_start(&s->e, NULL, SHARDED);
    /* Which shard each key's tasks belong to: the config's routing and the
     * producers' rule (route_shard: keys_shard_of of the key's slot). */
    ck_assert_msg(conf_load(&c, s->e.conf, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.shards, NSHARDS);
    route_rules_of(&rules, &c);
    for (int k = 0; k < KEYS_N; k++) {
        char task[64], scratch[64];
        unsigned slot;
        enum taskkey_result res;
        int len = snprintf(task, sizeof task, "{\"key\":\"k%d\",\"seq\":0}", k);
        s->shard_of_key[k] = route_shard(&rules, NSHARDS, task, (size_t)len, scratch, &slot, &res);
        ck_assert_int_eq(res, TASKKEY_OK);
        ck_assert_int_eq(s->shard_of_key[k], keys_shard_of(slot, NSHARDS));
    }
    for (int i = 0; i < NSHARDS; i++)
        ck_assert_int_eq(keys_init_shard(&s->k[i], c.ns, i, NSHARDS), 0);
    conf_free(&c);

    char bin[512];
    harness_bin(bin, sizeof bin, "slotd");
    for (int i = 0; i < NSHARDS; i++) {
        char shard[16];
        snprintf(shard, sizeof shard, "%d", i);
        snprintf(s->slotd_log[i], sizeof s->slotd_log[i], "%s/slotd-%d.log", s->e.redis.dir, i);
        char *argv[] = { bin, "-c", s->e.conf, "-s", shard, NULL };
        s->slotd[i] = harness_spawn(argv, s->slotd_log[i]);
        ck_assert_int_gt(s->slotd[i], 0);
    }
}

/* Whether the file at path has a sanitizer report. */
static int has_sanitizer_report(const char *path)
{
    return load_file_has(path, "runtime error") || load_file_has(path, "Sanitizer");
}

static void sharded_stop(struct sharded *s)
{
    for (int i = 0; i < NSHARDS; i++) {
        int st = -1;
        harness_kill(s->slotd[i], SIGTERM);
        ck_assert_int_eq(harness_wait_exit(s->slotd[i], 10000, &st), 0);
        ck_assert_msg(!has_sanitizer_report(s->slotd_log[i]), "%s has a sanitizer report",
                      s->slotd_log[i]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                      "slotd -s %d exited with status 0x%x on SIGTERM", i, st);
    }
    env_stop(&s->e);
}

/* What a wait (harness_wait_until) waits for; the fields its predicate
 * reads. */
struct until {
    struct sharded    *s;           /* (ref) */
    const char        *path, *text; /* (ref) file_has: text is in the file at path */
    const char *const *ids;         /* (ref) owners_are: exactly these own the slots */
    size_t             n;
    int                total;       /* all_completed: tasks [0, total) ended, */
    int                shard;       /* of this shard (-1: of any) */
};

static int file_has(void *arg)
{
    const struct until *u = arg;
    return load_file_has(u->path, u->text);
}

/* Waits until text is in the file at path: 0, or -1. */
static int wait_file(const char *path, const char *text, int timeout_ms)
{
    struct until u = { .path = path, .text = text };
    return harness_wait_until(file_has, &u, timeout_ms);
}

/* Whether every shard's slot table is owned by exactly the n workers ids. */
static int owners_are(void *arg)
{
    const struct until *u = arg;
    struct sharded *s = u->s;
    const char *const *ids = u->ids;
    size_t n = u->n;
    for (int i = 0; i < NSHARDS; i++) {
        redisReply *r = harness_cmd(s->e.c, "HKEYS %s", s->k[i].slots);
        int ok = r->type == REDIS_REPLY_ARRAY && r->elements == n;
        for (size_t a = 0; ok && a < n; a++) {
            int found = 0;
            for (size_t b = 0; b < r->elements; b++)
                found |= strcmp(r->element[b]->str, ids[a]) == 0;
            ok = found;
        }
        freeReplyObject(r);
        if (!ok)
            return 0;
    }
    return 1;
}

static int wait_owners(struct sharded *s, const char *const *ids, size_t n, int timeout_ms)
{
    struct until u = { .s = s, .ids = ids, .n = n };
    return harness_wait_until(owners_are, &u, timeout_ms);
}

/* Pushes tasks [from, to) (task i: key k<i % KEYS_N>, seq i) each onto the
 * intake of its key's shard. */
static void push(struct sharded *s, int from, int to)
{
    for (int i = from; i < to; i++) {
        int key = i % KEYS_N;
        redisAppendCommand(s->e.c, "LPUSH %s {\"key\":\"k%d\",\"seq\":%d,\"shard\":%d}",
                           s->k[s->shard_of_key[key]].intake, key, i, s->shard_of_key[key]);
    }
    for (int i = from; i < to; i++) {
        redisReply *r;
        ck_assert_int_eq(redisGetReply(s->e.c, (void **)&r), REDIS_OK);
        ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
        freeReplyObject(r);
    }
}

/* The command: logs each run's start and end with the task's seq and shard
 * (the task's own field, set by push), after `body`'s work. */
static char *command(struct sharded *s, const char *body)
{
    static char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "read -r t || true\n"
             "seq=${t#*\\\"seq\\\":}; seq=${seq%%%%,*}\n"
             "echo \"S $SLOTD_WORKER_ID $seq\" >> %s/tasks.log\n"
             "%s\n"
             "echo \"E $SLOTD_WORKER_ID $seq\" >> %s/tasks.log\n",
             s->e.redis.dir, body, s->e.redis.dir);
    return cmd;
}

/* The runs logged so far; *n of them. The caller frees. */
static struct run_ev *runs(struct sharded *s, size_t *n)
{
    char path[512], line[256];
    size_t cap = 4096;
    struct run_ev *v = malloc(cap * sizeof *v);
    ck_assert_ptr_nonnull(v);
    *n = 0;
    snprintf(path, sizeof path, "%s/tasks.log", s->e.redis.dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return v;
    while (fgets(line, sizeof line, f)) {
        struct run_ev x;
        if (sscanf(line, "%c %31s %d", &x.kind, x.worker, &x.seq) != 3 || x.seq < 0 ||
            x.seq >= TASKS_MAX)
            continue;
        if (*n == cap) {
            v = realloc(v, (cap *= 2) * sizeof *v);
            ck_assert_ptr_nonnull(v);
        }
        v[(*n)++] = x;
    }
    fclose(f);
    return v;
}

/* How many of the tasks [0, total) of shard `shard` (-1: of any) ended at
 * least once. */
static int completed_in(struct sharded *s, int total, int shard)
{
    size_t n;
    struct run_ev *v = runs(s, &n);
    char done[TASKS_MAX] = { 0 };
    for (size_t i = 0; i < n; i++)
        if (v[i].kind == 'E' && v[i].seq < total)
            done[v[i].seq] = 1;
    free(v);
    int count = 0;
    for (int i = 0; i < total; i++)
        count += done[i] && (shard < 0 || s->shard_of_key[i % KEYS_N] == shard);
    return count;
}

static int completed(struct sharded *s, int total)
{
    return completed_in(s, total, -1);
}

/* How many of the tasks [0, total) belong to shard `shard` (-1: any). */
static int tasks_in(const struct sharded *s, int total, int shard)
{
    int n = 0;
    for (int i = 0; i < total; i++)
        n += shard < 0 || s->shard_of_key[i % KEYS_N] == shard;
    return n;
}

static int all_completed(void *arg)
{
    const struct until *u = arg;
    return completed_in(u->s, u->total, u->shard) == tasks_in(u->s, u->total, u->shard);
}

static int wait_completed_in(struct sharded *s, int total, int shard, int timeout_ms)
{
    struct until u = { .s = s, .total = total, .shard = shard };
    return harness_wait_until(all_completed, &u, timeout_ms);
}

static int wait_completed(struct sharded *s, int total, int timeout_ms)
{
    return wait_completed_in(s, total, -1, timeout_ms);
}

#define WORKERS 3

/* "w1".."w3" as 0..2. */
static int worker_index(const char *id)
{
    return id[0] == 'w' && id[1] >= '1' && id[1] < '1' + WORKERS && id[2] == '\0' ? id[1] - '1' : 0;
}

/*
 * Checks the runs of tasks [0, total): each key's first starts come in seq
 * order; a task started more than once counts as a re-run (and fails the
 * test when reruns_allowed is 0). ran_on[shard][w] counts the tasks of each
 * shard first run by worker w (0 for "w1") from seq `since` on; before[k]
 * is the worker that first ran key k's last task before `since` (-1: none).
 */
static int check_runs(struct sharded *s, int total, int reruns_allowed, int since,
                      int ran_on[NSHARDS][WORKERS], int before[KEYS_N])
{
    size_t n;
    struct run_ev *v = runs(s, &n);
    char started[TASKS_MAX] = { 0 };
    int last[KEYS_N], reruns = 0;
    for (int k = 0; k < KEYS_N; k++)
        last[k] = before[k] = -1;
    memset(ran_on, 0, NSHARDS * sizeof ran_on[0]);
    for (size_t i = 0; i < n; i++) {
        if (v[i].kind != 'S' || v[i].seq >= total)
            continue;
        int key = v[i].seq % KEYS_N;
        if (started[v[i].seq]) {
            reruns++;
            continue;
        }
        started[v[i].seq] = 1;
        ck_assert_msg(v[i].seq > last[key], "key k%d (shard %d): seq %d started after seq %d",
                      key, s->shard_of_key[key], v[i].seq, last[key]);
        last[key] = v[i].seq;
        if (v[i].seq >= since)
            ran_on[s->shard_of_key[key]][worker_index(v[i].worker)]++;
        else
            before[key] = worker_index(v[i].worker);
    }
    free(v);
    ck_assert_msg(reruns_allowed || reruns == 0, "%d tasks ran twice", reruns);
    return reruns;
}

/*
 * Each shard's slotd spreads all 16384 slots over the workers, but only its
 * own range of slots (keys_shard_of) carries its tasks: with two workers of
 * one weight, each would own one shard's tasks whole. Three workers make
 * one that owns slots in both shards (the middle third): that is the one
 * killed, so that a kill has tasks to move in both.
 */
START_TEST(workers_serve_both_shards_in_order_and_a_kill_loses_nothing)
{
    enum { FIRST = 480, TOTAL = 1440 };
    struct sharded s;
    sharded_start(&s);
    int keys_in[NSHARDS] = { 0 };
    for (int k = 0; k < KEYS_N; k++)
        keys_in[s.shard_of_key[k]]++;
    ck_assert_msg(keys_in[0] > 0 && keys_in[1] > 0, "the keys all fall in one shard");

    const char *cmd = command(&s, "sleep 0.01");
    const char *ids[WORKERS] = { "w1", "w2", "w3" };
    pid_t pid[WORKERS];
    char wlog[WORKERS][600];
    for (int w = 0; w < WORKERS; w++) {
        pid[w] = env_worker_start(&s.e, ids[w], 4, cmd);
        snprintf(wlog[w], sizeof wlog[w], "%s/worker-%s.log", s.e.redis.dir, ids[w]);
    }
    ck_assert_msg(wait_owners(&s, ids, WORKERS, 10000) == 0,
                  "the workers do not own both shards' slots");
    for (int w = 0; w < WORKERS; w++) {
        ck_assert_int_eq(wait_file(wlog[w], "registered in shard 1 of 2", 5000), 0);
        ck_assert(load_file_has(wlog[w], "registered in shard 0 of 2"));
    }

    /* Every task once, each key in order. */
    push(&s, 0, FIRST);
    ck_assert_msg(wait_completed(&s, FIRST, 60000) == 0, "only %d of %d tasks completed",
                  completed(&s, FIRST), FIRST);
    int ran_on[NSHARDS][WORKERS], before[KEYS_N];
    check_runs(&s, FIRST, 0, FIRST, ran_on, before);
    /* The victim: a worker that ran keys of both shards. */
    int in_shard[WORKERS][NSHARDS] = { { 0 } }, victim = -1;
    for (int k = 0; k < KEYS_N; k++)
        if (before[k] >= 0)
            in_shard[before[k]][s.shard_of_key[k]]++;
    for (int w = 0; w < WORKERS; w++)
        if (in_shard[w][0] > 0 && in_shard[w][1] > 0)
            victim = w;
    fprintf(stderr, "shards: %d tasks once and in order; keys of shard 0/1: w1 %d/%d, w2 %d/%d,"
            " w3 %d/%d\n", FIRST, in_shard[0][0], in_shard[0][1], in_shard[1][0],
            in_shard[1][1], in_shard[2][0], in_shard[2][1]);
    ck_assert_msg(victim >= 0, "no worker ran keys of both shards");

    /* kill -9 of it while it holds tasks: both shards declare it dead and
     * move its slots, its queue and its in-flight tasks to the others. */
    push(&s, FIRST, TOTAL);
    usleep(300 * 1000);
    ck_assert_int_eq(harness_kill(pid[victim], SIGKILL), 0);
    ck_assert_int_eq(harness_wait_exit(pid[victim], 10000, NULL), 0);
    char died[64];
    snprintf(died, sizeof died, "worker %s died", ids[victim]);
    for (int i = 0; i < NSHARDS; i++)
        ck_assert_msg(wait_file(s.slotd_log[i], died, 10000) == 0,
                      "shard %d did not declare %s dead", i, ids[victim]);
    const char *rest[WORKERS - 1];
    for (int w = 0, n = 0; w < WORKERS; w++)
        if (w != victim)
            rest[n++] = ids[w];
    ck_assert_int_eq(wait_owners(&s, rest, WORKERS - 1, 10000), 0);
    ck_assert_msg(wait_completed(&s, TOTAL, 60000) == 0, "only %d of %d tasks completed",
                  completed(&s, TOTAL), TOTAL);
    int reruns = check_runs(&s, TOTAL, 1, FIRST, ran_on, before);
    int moved[NSHARDS] = { 0 };
    for (int k = 0; k < KEYS_N; k++)
        if (before[k] == victim)
            moved[s.shard_of_key[k]]++;
    for (int i = 0; i < NSHARDS; i++) {
        char q[KEYS_NAME_MAX], f[KEYS_NAME_MAX];
        ck_assert_msg(moved[i] > 0, "the victim had no key of shard %d", i);
        ck_assert_msg(ran_on[i][victim] < keys_in[i] * ((TOTAL - FIRST) / KEYS_N),
                      "the victim ran every task of shard %d", i);
        ck_assert_int_eq(harness_llen(s.e.c, s.k[i].intake), 0);
        ck_assert_int_eq(harness_llen(s.e.c, keys_queue(&s.k[i], ids[victim], q, sizeof q)), 0);
        ck_assert_int_eq(harness_llen(s.e.c, keys_inflight(&s.k[i], ids[victim], f, sizeof f)), 0);
    }
    fprintf(stderr, "shards: after the kill of %s, %d more tasks all completed, %d re-runs;"
            " its keys moved: shard 0 %d, shard 1 %d\n", ids[victim], TOTAL - FIRST, reruns,
            moved[0], moved[1]);
    ck_assert_msg(!has_sanitizer_report(wlog[victim]), "%s has a sanitizer report", wlog[victim]);

    /* A graceful stop leaves both shards at once. */
    for (int w = 0; w < WORKERS; w++) {
        if (w == victim)
            continue;
        int st = -1;
        char left[64];
        ck_assert_int_eq(harness_kill(pid[w], SIGTERM), 0);
        ck_assert_int_eq(harness_wait_exit(pid[w], 10000, &st), 0);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s exited with status 0x%x",
                      ids[w], st);
        for (int i = 0; i < NSHARDS; i++) {
            snprintf(left, sizeof left, "worker %s left shard %d", ids[w], i);
            ck_assert_msg(load_file_has(wlog[w], left), "%s did not say: %s", ids[w], left);
            snprintf(left, sizeof left, "worker %s left", ids[w]);
            ck_assert_msg(wait_file(s.slotd_log[i], left, 5000) == 0,
                          "shard %d did not see %s leave", i, ids[w]);
        }
        ck_assert_msg(!has_sanitizer_report(wlog[w]), "%s has a sanitizer report", wlog[w]);
    }
    for (int i = 0; i < NSHARDS; i++) {
        redisReply *r = harness_cmd(s.e.c, "SCARD %s", s.k[i].workers);
        ck_assert_int_eq(r->integer, 0);
        freeReplyObject(r);
    }
    sharded_stop(&s);
}
END_TEST

/*
 * Tasks pushed while the workers are up reach them from both shards: with
 * nothing to do, a worker waits on one shard at a time, and a task in the
 * other is not stuck behind that wait.
 */
START_TEST(an_idle_worker_takes_from_either_shard_quickly)
{
    struct sharded s;
    sharded_start(&s);
    pid_t w1 = env_worker_start(&s.e, "w1", 1, command(&s, ""));
    const char *only_w1[] = { "w1" };
    ck_assert_int_eq(wait_owners(&s, only_w1, 1, 10000), 0);
    usleep(500 * 1000);     /* idle: waiting in turns */
    /* One task in each shard, one after another: each done well within a
     * second (the longest a blocking wait on the other shard lasts is
     * 100 ms with two shards; slotd routes within its check). */
    int key_in[NSHARDS] = { -1, -1 };
    for (int k = 0; k < KEYS_N; k++)
        if (key_in[s.shard_of_key[k]] < 0)
            key_in[s.shard_of_key[k]] = k;
    for (int round = 0; round < 6; round++) {
        int shard = round % NSHARDS, key = key_in[shard];
        int seq = round * KEYS_N + key;      /* seq % KEYS_N is the key */
        uint64_t t0 = harness_now_ms();
        push(&s, seq, seq + 1);
        int done = 0;
        while (!done && harness_now_ms() - t0 < 5000) {
            size_t n;
            struct run_ev *v = runs(&s, &n);
            for (size_t i = 0; i < n; i++)
                done |= v[i].kind == 'E' && v[i].seq == seq;
            free(v);
            if (!done)
                usleep(5000);
        }
        uint64_t took = harness_now_ms() - t0;
        ck_assert_msg(done, "the task of shard %d did not run", shard);
        ck_assert_msg(took < 1500, "the task of shard %d took %llu ms", shard,
                      (unsigned long long)took);
        usleep(250 * 1000);
    }
    int st = -1;
    ck_assert_int_eq(harness_kill(w1, SIGTERM), 0);
    ck_assert_int_eq(harness_wait_exit(w1, 10000, &st), 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "w1 exited with status 0x%x", st);
    sharded_stop(&s);
}
END_TEST

/*
 * One shard the worker cannot use (its Redis user may not touch that
 * shard's keys: NOPERM, as a shard on an unreachable node would fail its
 * calls) stops only that shard's link: the other's tasks all run. Once the
 * user may, the worker registers in that shard too and runs its tasks.
 */
START_TEST(a_shard_the_worker_cannot_use_stops_only_itself)
{
    enum { N = 200 };
    struct sharded s;
    char path[600], conf[1024], wlog[600];
    sharded_start(&s);
    redisReply *r = harness_cmd(s.e.c, "ACL SETUSER wk on >wkpass resetkeys ~{t#0}:* "
                                "resetchannels +@all");
    ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    snprintf(path, sizeof path, "%s/wk.password", s.e.redis.dir);
    ck_assert_int_eq(harness_write_file(path, "wkpass"), 0);
    snprintf(conf, sizeof conf,
             "redis:\n  host: 127.0.0.1\n  port: %d\n  reconnect_min_ms: 20\n"
             "  reconnect_max_ms: 200\n  username: wk\n  password_file: wk.password\n"
             "namespace: " ENV_NS "\nhttp:\n  listen: \"\"\n" SHARDED, s.e.redis.port);
    snprintf(path, sizeof path, "%s/worker.yaml", s.e.redis.dir);
    ck_assert_int_eq(harness_write_file(path, conf), 0);
    snprintf(wlog, sizeof wlog, "%s/worker-w1.log", s.e.redis.dir);
    char bin[512];
    harness_bin(bin, sizeof bin, "slotd-worker");
    char *argv[] = { bin, "-c", path, "--id", "w1", "-j", "2", "--", "sh", "-c",
                     command(&s, ""), NULL };
    pid_t w1 = harness_spawn(argv, wlog);
    ck_assert_int_gt(w1, 0);

    ck_assert_int_eq(wait_file(wlog, "registered in shard 0 of 2", 5000), 0);
    ck_assert_int_eq(wait_file(wlog, "NOPERM", 5000), 0);
    ck_assert(load_file_has(wlog, "shard 1): cannot register"));
    push(&s, 0, N);
    ck_assert_msg(wait_completed_in(&s, N, 0, 30000) == 0, "only %d of %d tasks of shard 0 ran",
                  completed_in(&s, N, 0), tasks_in(&s, N, 0));
    usleep(300 * 1000);
    ck_assert_int_eq(completed_in(&s, N, 1), 0);
    ck_assert(!load_file_has(wlog, "registered in shard 1"));

    r = harness_cmd(s.e.c, "ACL SETUSER wk ~{t#1}:*");
    ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    ck_assert_int_eq(wait_file(wlog, "registered in shard 1 of 2", 5000), 0);
    ck_assert_msg(wait_completed(&s, N, 30000) == 0, "only %d of %d tasks ran", completed(&s, N), N);
    int ran_on[NSHARDS][WORKERS], before[KEYS_N];
    check_runs(&s, N, 0, 0, ran_on, before);

    int st = -1;
    ck_assert_int_eq(harness_kill(w1, SIGTERM), 0);
    ck_assert_int_eq(harness_wait_exit(w1, 10000, &st), 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "w1 exited with status 0x%x", st);
    ck_assert(load_file_has(wlog, "worker w1 left shard 0"));
    ck_assert(load_file_has(wlog, "worker w1 left shard 1"));
    ck_assert_msg(!has_sanitizer_report(wlog), "%s has a sanitizer report", wlog);
    sharded_stop(&s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("worker_shards");
    TCase *tc = tcase_create("worker_shards");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, workers_serve_both_shards_in_order_and_a_kill_loses_nothing);
    tcase_add_test(tc, an_idle_worker_takes_from_either_shard_quickly);
    tcase_add_test(tc, a_shard_the_worker_cannot_use_stops_only_itself);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
