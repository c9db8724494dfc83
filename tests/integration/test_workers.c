/*
 * Integration: slotd-worker and libslotd against slotd and a real Redis.
 * Per-key order through joins, graceful leaves, kill -9 and restarts; a
 * task killed mid-run runs again on the new owner; restarts keep slots;
 * poison tasks; -j concurrency with per-slot order; retries and dead
 * letters; a returning zombie; the Python example worker.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "deadletter.h"
#include "env.h"
#include "harness.h"

#define FAST "workers:\n  check_interval_ms: 100\n  heartbeat_ttl_ms: 600\n"

/* One line of the tasks log the commands write. */
struct ev {
    char     kind;          /* 'S' started, 'E' ended */
    char     worker[64];
    unsigned attempt;
    unsigned long long ns;  /* wall clock, ns */
    int      key, seq;
};

static char script_buf[2048];

/* A command that logs its start and end around body. */
static const char *script(struct env *e, const char *body)
{
    snprintf(script_buf, sizeof script_buf,
             "read -r t || true\n"
             "echo \"S $SLOTD_WORKER_ID $SLOTD_ATTEMPT $(date +%%s%%N) $t\" >> %s/tasks.log\n"
             "%s\n"
             "echo \"E $SLOTD_WORKER_ID $SLOTD_ATTEMPT $(date +%%s%%N) $t\" >> %s/tasks.log\n",
             e->redis.dir, body, e->redis.dir);
    return script_buf;
}

static struct ev *read_log(struct env *e, size_t *n)
{
    char path[512], line[512];
    size_t cap = 1024;
    struct ev *v = malloc(cap * sizeof *v);
    snprintf(path, sizeof path, "%s/tasks.log", e->redis.dir);
    FILE *f = fopen(path, "r");
    *n = 0;
    if (f == NULL)
        return v;
    while (fgets(line, sizeof line, f)) {
        struct ev x;
        char rest[400];
        if (sscanf(line, "%c %63s %u %llu %399[^\n]", &x.kind, x.worker, &x.attempt, &x.ns, rest) != 5)
            continue;
        x.key = x.seq = -1;
        sscanf(rest, "{\"key\":\"k%d\",\"seq\":%d", &x.key, &x.seq);
        if (*n == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        v[(*n)++] = x;
    }
    fclose(f);
    return v;
}

/* How many distinct seqs in [0, n) have ended. */
static int ended(struct env *e, int n)
{
    size_t m;
    struct ev *v = read_log(e, &m);
    char *seen = calloc((size_t)n, 1);
    int count = 0;
    for (size_t i = 0; i < m; i++)
        if (v[i].kind == 'E' && v[i].seq >= 0 && v[i].seq < n && !seen[v[i].seq]) {
            seen[v[i].seq] = 1;
            count++;
        }
    free(seen);
    free(v);
    return count;
}

static int wait_ended(struct env *e, int n, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    while (ended(e, n) < n) {
        if (harness_now_ms() > end)
            return -1;
        usleep(20000);
    }
    return 0;
}

static void push_tasks(struct env *e, int from, int to, int keys)
{
    char intake[64];
    env_key(intake, sizeof intake, "intake");
    for (int i = from; i < to; i++)
        redisAppendCommand(e->c, "LPUSH %s {\"key\":\"k%d\",\"seq\":%d}", intake, i % keys, i);
    for (int i = from; i < to; i++) {
        redisReply *r;
        ck_assert_int_eq(redisGetReply(e->c, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
}

static void stop_worker(pid_t pid, int sig)
{
    int st;
    kill(pid, sig);
    ck_assert_int_eq(harness_wait_exit(pid, 10000, &st), 0);
}

START_TEST(per_key_order_through_joins_leaves_kills_and_restarts)
{
    struct env e;
    enum { N = 2400, KEYS = 40 };
    env_start(&e, NULL, FAST "worker:\n  prefetch: 8\n");
    env_slotd_start(&e);
    const char *cmd = script(&e, "");
    pid_t w1 = env_worker_start(&e, "w1", 4, cmd);
    pid_t w2 = env_worker_start(&e, "w2", 4, cmd);
    pid_t w3 = env_worker_start(&e, "w3", 4, cmd);
    const char *three[] = { "w1", "w2", "w3" };
    ck_assert_int_eq(env_wait_owners(&e, three, 3, 5000), 0);

    push_tasks(&e, 0, N / 4, KEYS);
    pid_t w4 = env_worker_start(&e, "w4", 4, cmd);           /* a join */
    push_tasks(&e, N / 4, N / 2, KEYS);
    stop_worker(w2, SIGTERM);                                /* a graceful leave */
    push_tasks(&e, N / 2, 3 * N / 4, KEYS);
    stop_worker(w1, SIGKILL);                                /* a crash ... */
    w1 = env_worker_start(&e, "w1", 4, cmd);                 /* ... and a restart */
    stop_worker(w3, SIGKILL);                                /* a death */
    push_tasks(&e, 3 * N / 4, N, KEYS);
    ck_assert_msg(wait_ended(&e, N, 60000) == 0, "only %d of %d tasks completed", ended(&e, N), N);

    /* Each key's tasks started in increasing order; a task started again
     * after a crash is the only exception allowed. */
    size_t m;
    struct ev *v = read_log(&e, &m);
    int last[KEYS];
    char *started = calloc(N, 1);
    int reruns = 0;
    for (int k = 0; k < KEYS; k++)
        last[k] = -1;
    for (size_t i = 0; i < m; i++) {
        if (v[i].kind != 'S' || v[i].seq < 0)
            continue;
        if (started[v[i].seq]) {
            reruns++;
            continue;
        }
        started[v[i].seq] = 1;
        ck_assert_msg(v[i].seq > last[v[i].key], "key k%d: seq %d started after %d", v[i].key,
                      v[i].seq, last[v[i].key]);
        last[v[i].key] = v[i].seq;
    }
    fprintf(stderr, "order: %d tasks, %zu log lines, %d re-runs after crashes\n", N, m, reruns);
    free(started);
    free(v);
    ck_assert_int_eq(env_wait_log(&e, "worker w2 left", 10), 0);
    ck_assert_int_eq(env_wait_log(&e, "worker w3 died", 10), 0);
    stop_worker(w1, SIGTERM);
    stop_worker(w4, SIGTERM);
    env_stop(&e);
}
END_TEST

/*
 * A join while the old owner holds prefetched tasks of the slots it hands
 * off: no key ever has two tasks running at once, nor out of order. (The
 * newcomer's first task of a moved slot starts after the old owner ended its
 * last one: the fence of docs/workers.md.)
 */
START_TEST(a_join_never_runs_one_key_on_two_workers_at_once)
{
    struct env e;
    enum { N = 160, KEYS = 8 };
    env_start(&e, NULL, FAST "worker:\n  prefetch: 16\n");
    env_slotd_start(&e);
    const char *cmd = script(&e, "sleep 0.02");
    pid_t a = env_worker_start(&e, "a", 1, cmd);
    const char *only_a[] = { "a" }, *ab[] = { "a", "b" };
    ck_assert_int_eq(env_wait_owners(&e, only_a, 1, 5000), 0);
    push_tasks(&e, 0, N, KEYS);
    usleep(300 * 1000);                     /* a holds 16, runs one at a time */
    pid_t b = env_worker_start(&e, "b", 1, cmd);
    ck_assert_int_eq(env_wait_owners(&e, ab, 2, 5000), 0);
    ck_assert_msg(wait_ended(&e, N, 60000) == 0, "only %d of %d tasks completed", ended(&e, N), N);

    size_t m;
    struct ev *v = read_log(&e, &m);
    unsigned long long last_end[KEYS] = { 0 };
    int last_seq[KEYS], moved = 0;
    char last_worker[KEYS][64];
    for (int k = 0; k < KEYS; k++) {
        last_seq[k] = -1;
        last_worker[k][0] = '\0';
    }
    /* The log is appended in time order: S and E of one task bracket it. */
    for (size_t i = 0; i < m; i++) {
        int k = v[i].key;
        if (v[i].seq < 0 || k < 0 || k >= KEYS)
            continue;
        if (v[i].kind == 'S') {
            ck_assert_msg(v[i].seq > last_seq[k], "key k%d: seq %d started after %d", k,
                          v[i].seq, last_seq[k]);
            ck_assert_msg(v[i].ns >= last_end[k], "key k%d: seq %d started on %s before seq %d"
                          " ended on %s", k, v[i].seq, v[i].worker, last_seq[k], last_worker[k]);
            if (last_worker[k][0] != '\0' && strcmp(last_worker[k], v[i].worker) != 0)
                moved++;
            last_seq[k] = v[i].seq;
            snprintf(last_worker[k], sizeof last_worker[k], "%s", v[i].worker);
            last_end[k] = ~0ull;            /* running */
        } else {
            last_end[k] = v[i].ns;
        }
    }
    fprintf(stderr, "join handoff: %d keys changed worker, no overlap\n", moved);
    ck_assert_int_gt(moved, 0);
    ck_assert_int_eq(env_wait_log(&e, "worker a handed off", 10), 0);
    ck_assert_int_eq(env_wait_log(&e, "worker a has finished the tasks it held", 10), 0);
    free(v);
    stop_worker(a, SIGTERM);
    stop_worker(b, SIGTERM);
    env_stop(&e);
}
END_TEST

START_TEST(task_of_a_killed_worker_runs_again_on_the_new_owner)
{
    struct env e;
    env_start(&e, NULL, FAST);
    env_slotd_start(&e);
    const char *cmd = script(&e, "case \"$t\" in *slow*) sleep 30;; esac");
    pid_t a = env_worker_start(&e, "a", 1, cmd);
    pid_t b = env_worker_start(&e, "b", 1, cmd);
    const char *ab[] = { "a", "b" };
    ck_assert_int_eq(env_wait_owners(&e, ab, 2, 5000), 0);
    char intake[64];
    env_key(intake, sizeof intake, "intake");
    freeReplyObject(harness_cmd(e.c, "LPUSH %s {\"key\":\"k7\",\"seq\":0,\"slow\":1}", intake));
    /* Find who runs it, kill that worker. */
    char victim[64] = "";
    uint64_t end = harness_now_ms() + 5000;
    while (!victim[0] && harness_now_ms() < end) {
        size_t m;
        struct ev *v = read_log(&e, &m);
        if (m > 0)
            snprintf(victim, sizeof victim, "%s", v[0].worker);
        free(v);
        usleep(10000);
    }
    ck_assert_msg(victim[0], "the task never started");
    pid_t dead = strcmp(victim, "a") == 0 ? a : b, other = dead == a ? b : a;
    uint64_t killed = harness_now_ms();
    stop_worker(dead, SIGKILL);
    /* It runs again, elsewhere, with attempt 2. */
    int again = 0;
    while (!again && harness_now_ms() < killed + 5000) {
        size_t m;
        struct ev *v = read_log(&e, &m);
        for (size_t i = 0; i < m; i++)
            if (v[i].kind == 'S' && strcmp(v[i].worker, victim) != 0 && v[i].attempt == 2)
                again = 1;
        free(v);
        usleep(10000);
    }
    uint64_t took = harness_now_ms() - killed;
    ck_assert_msg(again, "the task did not run again on the other worker");
    /* Bound: heartbeat TTL (600) + check interval (100) + 1 s. */
    ck_assert_msg(took <= 600 + 100 + 1000, "took %llu ms", (unsigned long long)took);
    fprintf(stderr, "re-run on the new owner %llu ms after kill -9\n", (unsigned long long)took);
    stop_worker(other, SIGKILL);
    env_stop(&e);
}
END_TEST

START_TEST(restart_within_ttl_keeps_slots_and_leave_moves_them_at_once)
{
    struct env e;
    char key[64];
    env_start(&e, NULL, "workers:\n  check_interval_ms: 100\n  heartbeat_ttl_ms: 5000\n");
    env_slotd_start(&e);
    const char *cmd = script(&e, "");
    pid_t a = env_worker_start(&e, "a", 1, cmd);
    pid_t b = env_worker_start(&e, "b", 1, cmd);
    const char *ab[] = { "a", "b" }, *only_a[] = { "a" };
    ck_assert_int_eq(env_wait_owners(&e, ab, 2, 5000), 0);
    redisReply *e1 = harness_cmd(e.c, "GET %s", env_key(key, sizeof key, "epoch"));

    /* A crash and a restart within the 5 s TTL: nothing moves. */
    stop_worker(b, SIGKILL);
    b = env_worker_start(&e, "b", 1, cmd);
    usleep(1000 * 1000);
    redisReply *e2 = harness_cmd(e.c, "GET %s", env_key(key, sizeof key, "epoch"));
    ck_assert_str_eq(e1->str, e2->str);
    ck_assert_int_eq(env_wait_owners(&e, ab, 2, 10), 0);

    /* A graceful leave moves b's slots at once, not after the TTL. */
    uint64_t t0 = harness_now_ms();
    stop_worker(b, SIGTERM);
    ck_assert_int_eq(env_wait_owners(&e, only_a, 1, 2000), 0);
    uint64_t took = harness_now_ms() - t0;
    ck_assert_msg(took < 5000, "took %llu ms", (unsigned long long)took);
    push_tasks(&e, 0, 50, 10);
    ck_assert_int_eq(wait_ended(&e, 50, 10000), 0);
    freeReplyObject(e1);
    freeReplyObject(e2);
    stop_worker(a, SIGTERM);
    env_stop(&e);
}
END_TEST

START_TEST(poison_task_is_dead_lettered_after_max_recoveries)
{
    struct env e;
    env_start(&e, NULL, FAST "  max_recoveries: 3\nworker:\n  prefetch: 1\n");
    env_slotd_start(&e);
    /* The poison kills whichever worker runs it. */
    const char *cmd = script(&e, "case \"$t\" in *poison*) kill -9 $PPID; exit 1;; esac");
    pid_t w[4];
    const char *ids[] = { "p1", "p2", "p3", "p4" };
    for (int i = 0; i < 4; i++)
        w[i] = env_worker_start(&e, ids[i], 1, cmd);
    ck_assert_int_eq(env_wait_owners(&e, ids, 4, 5000), 0);
    char intake[64];
    env_key(intake, sizeof intake, "intake");
    freeReplyObject(harness_cmd(e.c, "LPUSH %s {\"key\":\"k1\",\"seq\":0,\"poison\":1}", intake));
    ck_assert_int_eq(env_wait_llen(&e, "dead", 1, 15000), 0);
    char dk[64];
    redisReply *d = harness_cmd(e.c, "LINDEX %s 0", env_key(dk, sizeof dk, "dead"));
    size_t len;
    char *reason;
    char *task = deadletter_parse(d->str, d->len, &len, &reason);
    ck_assert_ptr_nonnull(task);
    ck_assert_str_eq(reason, "poison");
    ck_assert_msg(strstr(d->str, "3 workers that died") != NULL, "%s", d->str);
    ck_assert_int_eq(memcmp(task, "{\"key\":\"k1\",\"seq\":0,\"poison\":1}", len), 0);
    free(task);
    free(reason);
    freeReplyObject(d);
    /* Exactly three died; one is left, and healthy. */
    int alive = 0;
    for (int i = 0; i < 4; i++) {
        int st;
        if (harness_wait_exit(w[i], 0, &st) != 0) {
            alive++;
            stop_worker(w[i], SIGTERM);
        }
    }
    ck_assert_int_eq(alive, 1);
    env_stop(&e);
}
END_TEST

START_TEST(j_runs_slots_concurrently_and_each_slot_in_order)
{
    struct env e;
    env_start(&e, NULL, FAST);
    env_slotd_start(&e);
    pid_t w = env_worker_start(&e, "solo", 4, script(&e, "sleep 0.4"));
    const char *solo[] = { "solo" };
    ck_assert_int_eq(env_wait_owners(&e, solo, 1, 5000), 0);
    char intake[64];
    env_key(intake, sizeof intake, "intake");
    /* Three tasks of k0 (one slot), and one each of k1, k2, k3. */
    const int keys[] = { 0, 0, 0, 1, 2, 3 };
    for (int i = 0; i < 6; i++)
        freeReplyObject(harness_cmd(e.c, "LPUSH %s {\"key\":\"k%d\",\"seq\":%d}", intake, keys[i], i));
    ck_assert_int_eq(wait_ended(&e, 6, 15000), 0);
    size_t m;
    struct ev *v = read_log(&e, &m);
    /* Concurrency: the most tasks running at one time. */
    int running = 0, most = 0;
    for (size_t i = 0; i < m; i++) {
        running += v[i].kind == 'S' ? 1 : -1;
        if (running > most)
            most = running;
    }
    ck_assert_msg(most >= 3, "at most %d ran at once", most);
    /* k0's tasks: in order, and never two at once. */
    int k0_running = 0, k0_next = 0;
    for (size_t i = 0; i < m; i++) {
        if (v[i].key != 0)
            continue;
        if (v[i].kind == 'S') {
            ck_assert_int_eq(k0_running, 0);
            ck_assert_int_eq(v[i].seq, k0_next);
            k0_next++;
            k0_running = 1;
        } else {
            k0_running = 0;
        }
    }
    ck_assert_int_eq(k0_next, 3);
    free(v);
    stop_worker(w, SIGTERM);
    env_stop(&e);
}
END_TEST

START_TEST(failing_command_is_retried_then_dead_lettered_with_its_stderr)
{
    struct env e;
    env_start(&e, NULL, FAST "worker:\n  max_attempts: 3\n  retry_min_ms: 50\n  retry_max_ms: 100\n");
    env_slotd_start(&e);
    pid_t w = env_worker_start(&e, "f", 1,
                               script(&e, "echo \"boom on attempt $SLOTD_ATTEMPT\" >&2; exit 3"));
    const char *f[] = { "f" };
    ck_assert_int_eq(env_wait_owners(&e, f, 1, 5000), 0);
    char intake[64];
    env_key(intake, sizeof intake, "intake");
    freeReplyObject(harness_cmd(e.c, "LPUSH %s {\"key\":\"k0\",\"seq\":0}", intake));
    ck_assert_int_eq(env_wait_llen(&e, "dead", 1, 10000), 0);
    size_t m;
    struct ev *v = read_log(&e, &m);
    unsigned attempts[8] = { 0 };
    size_t starts = 0;
    for (size_t i = 0; i < m; i++)
        if (v[i].kind == 'S' && starts < 8)
            attempts[starts++] = v[i].attempt;
    free(v);
    ck_assert_uint_eq(starts, 3);
    ck_assert_uint_eq(attempts[0], 1);
    ck_assert_uint_eq(attempts[1], 2);
    ck_assert_uint_eq(attempts[2], 3);
    char dk[64];
    redisReply *d = harness_cmd(e.c, "LINDEX %s 0", env_key(dk, sizeof dk, "dead"));
    ck_assert_msg(strstr(d->str, "\"reason\":\"failed\"") != NULL, "%s", d->str);
    ck_assert_msg(strstr(d->str, "exit status 3 after 3 attempts") != NULL, "%s", d->str);
    ck_assert_msg(strstr(d->str, "boom on attempt 3") != NULL, "%s", d->str);
    freeReplyObject(d);
    ck_assert_int_eq(env_llen(&e, "inflight:f"), 0);
    stop_worker(w, SIGTERM);
    env_stop(&e);
}
END_TEST

START_TEST(a_worker_declared_dead_rejoins_as_a_newcomer)
{
    struct env e;
    env_start(&e, NULL, FAST);
    env_slotd_start(&e);
    const char *cmd = script(&e, "");
    pid_t z = env_worker_start(&e, "z", 1, cmd);
    pid_t o = env_worker_start(&e, "o", 1, cmd);
    const char *both[] = { "z", "o" };
    ck_assert_int_eq(env_wait_owners(&e, both, 2, 5000), 0);
    kill(z, SIGSTOP);               /* frozen past its TTL: declared dead */
    ck_assert_int_eq(env_wait_log(&e, "worker z died", 3000), 0);
    kill(z, SIGCONT);               /* and back */
    ck_assert_int_eq(env_wait_log(&e, "worker z was declared dead and is heard from again", 3000), 0);
    ck_assert_int_eq(env_wait_owners(&e, both, 2, 3000), 0);
    push_tasks(&e, 0, 100, 20);
    ck_assert_int_eq(wait_ended(&e, 100, 10000), 0);
    stop_worker(z, SIGTERM);
    stop_worker(o, SIGTERM);
    env_stop(&e);
}
END_TEST

START_TEST(python_example_worker_speaks_the_protocol)
{
    struct env e;
    char port[16], out[600];
    env_start(&e, NULL, FAST);
    env_slotd_start(&e);
    snprintf(port, sizeof port, "%d", e.redis.port);
    snprintf(out, sizeof out, "%s/py.out", e.redis.dir);
    char *argv[] = { "/usr/bin/python3", "examples/worker.py", "--port", port, "--namespace", ENV_NS,
                     "--id", "py1", "--ttl-ms", "600", "--log", out, NULL };
    pid_t py = harness_spawn(argv, NULL);
    const char *ids[] = { "py1" };
    ck_assert_int_eq(env_wait_owners(&e, ids, 1, 10000), 0);
    push_tasks(&e, 0, 200, 17);
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 10000), 0);
    ck_assert_int_eq(env_wait_llen(&e, "queue:py1", 0, 10000), 0);
    ck_assert_int_eq(env_wait_llen(&e, "inflight:py1", 0, 10000), 0);
    /* Every task once, in order (one worker, so all in intake order). */
    FILE *f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    int next = 0;
    while (fgets(line, sizeof line, f)) {
        int k, seq;
        ck_assert_int_eq(sscanf(line, "py1\t{\"key\":\"k%d\",\"seq\":%d}", &k, &seq), 2);
        ck_assert_int_eq(seq, next);
        next++;
    }
    fclose(f);
    ck_assert_int_eq(next, 200);
    /* A graceful leave deregisters it. */
    stop_worker(py, SIGTERM);
    ck_assert_int_eq(env_wait_log(&e, "worker py1 left", 3000), 0);
    env_stop(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("workers");
    TCase *tc = tcase_create("workers");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, per_key_order_through_joins_leaves_kills_and_restarts);
    tcase_add_test(tc, a_join_never_runs_one_key_on_two_workers_at_once);
    tcase_add_test(tc, task_of_a_killed_worker_runs_again_on_the_new_owner);
    tcase_add_test(tc, restart_within_ttl_keeps_slots_and_leave_moves_them_at_once);
    tcase_add_test(tc, poison_task_is_dead_lettered_after_max_recoveries);
    tcase_add_test(tc, j_runs_slots_concurrently_and_each_slot_in_order);
    tcase_add_test(tc, failing_command_is_retried_then_dead_lettered_with_its_stderr);
    tcase_add_test(tc, a_worker_declared_dead_rejoins_as_a_newcomer);
    tcase_add_test(tc, python_example_worker_speaks_the_protocol);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
