/*
 * Integration: one active slotd per namespace. Two slotds on one Redis,
 * producers pushing tasks with per-key sequence numbers, libslotd workers:
 * exactly one routes; the active stopped (SIGSTOP) past its lease again and
 * again commits nothing once its lease has ended, and the standby takes
 * over in time; a slotd stopped between a batch's pushes and its commit is
 * fenced; SIGTERM hands over within a renew interval; Redis restarted and
 * connections killed. Every task runs once, each key's in order.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "env.h"
#include "harness.h"
#include "load.h"
#include "check_main.h"

#define LEASE 500
#define RENEW 100
#define TTL 1500
#define YAML "workers:\n  check_interval_ms: 100\n  heartbeat_ttl_ms: 1500\n" \
             "dispatch:\n  batch: 100\nleader:\n  lease_ms: 500\n  renew_ms: 100\n"

static const char *three[] = { "w1", "w2", "w3" };

/* A second slotd on e's configuration, its log beside the first's. */
struct other {
    pid_t pid;
    char  log[600];
};

static void other_start(struct env *e, struct other *o, const char *bin, const char *env_kv)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", harness_build_dir(), bin);
    snprintf(o->log, sizeof o->log, "%s/slotd-b.log", e->redis.dir);
    if (env_kv)
        putenv((char *)(uintptr_t)env_kv);
    char *argv[] = { path, "-c", e->conf, NULL };
    o->pid = harness_spawn(argv, o->log);
    if (env_kv) {
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(env_kv, "="), env_kv);
        unsetenv(name);
    }
    ck_assert_int_gt(o->pid, 0);
}

static void other_stop(struct other *o)
{
    int st = 0;
    if (o->pid <= 0)
        return;
    harness_kill(o->pid, SIGCONT);
    harness_kill(o->pid, SIGTERM);
    if (harness_wait_exit(o->pid, 5000, &st) != 0) {
        harness_kill(o->pid, SIGKILL);
        harness_wait_exit(o->pid, 5000, &st);
    }
    o->pid = 0;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the second slotd exited 0x%x", st);
}

/* The lease's epoch number and the pid that holds it (0, 0: nobody). */
static void holder(struct env *e, unsigned long long *epoch, long *pid)
{
    char key[64];
    *epoch = 0;
    *pid = 0;
    redisReply *r = harness_cmd(e->c, "GET %s", env_key(key, sizeof key, "leader"));
    if (r->type == REDIS_REPLY_STRING) {
        /* "<n> <nonce> <node> <pid>" */
        *epoch = strtoull(r->str, NULL, 10);
        const char *p = strrchr(r->str, ' ');
        *pid = p ? atol(p + 1) : 0;
    }
    freeReplyObject(r);
}

/* Tasks moved under leader epoch n, counted inside each move. */
static long long moved(struct env *e, unsigned long long n)
{
    char key[64];
    long long v = 0;
    redisReply *r = harness_cmd(e->c, "HGET %s %llu", env_key(key, sizeof key, "leader:moves"), n);
    if (r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    freeReplyObject(r);
    return v;
}

static int file_count(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return n;
}

static void workers(struct load *l)
{
    l->ttl_ms = TTL;
    load_workers(l, three, 3, 16, 50);
}

START_TEST(two_started_at_once_exactly_one_routes)
{
    struct env e;
    struct load l;
    struct other b;
    env_start(&e, NULL, YAML);
    env_slotd_start(&e);
    other_start(&e, &b, "slotd", NULL);
    load_start(&l, &e, 30000, 300, 0, 2, 3000);
    workers(&l);
    load_expect_once_in_order(&l, "two at once");
    /* One took the lease, the other stood by, and only one epoch moved. */
    int active = env_log_count(&e, "active: took the lease") + file_count(b.log, "active: took the lease");
    ck_assert_int_eq(active, 1);
    ck_assert_int_eq(env_log_count(&e, "standing by: the lease is held by") +
                     file_count(b.log, "standing by: the lease is held by"), 1);
    char key[64];
    redisReply *r = harness_cmd(e.c, "HLEN %s", env_key(key, sizeof key, "leader:moves"));
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    /* At least every task once: a join's handoff moves some twice. */
    ck_assert_int_ge(moved(&e, 1), 30000);
    load_stop(&l);
    other_stop(&b);
    env_stop(&e);
}
END_TEST

/*
 * The active is stopped for 3 leases at a random moment, 20 times, while
 * producers push: the standby takes the lease and routes within lease +
 * renew + 200 ms of the stop (the active's last renewal is before it);
 * the stopped one's epoch moves nothing once another epoch exists; once
 * continued, it stands by within a second.
 */
START_TEST(the_active_stopped_past_its_lease_commits_nothing_after_it)
{
    struct env e;
    struct load l;
    struct other b;
    uint64_t worst = 0;
    env_start(&e, NULL, YAML);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_log(&e, "active: took the lease", 5000), 0);
    other_start(&e, &b, "slotd", NULL);
    /* Pushing all along the 20 rounds (about 50 s): there is always a task
     * for the new active to move. */
    load_start(&l, &e, 60000, 300, 0, 2, 550);
    workers(&l);
    srand(777);
    for (int round = 0; round < 20; round++) {
        unsigned long long e0, e1;
        long pid, pid1;
        usleep((useconds_t)(100000 + rand() % 300000));
        holder(&e, &e0, &pid);
        ck_assert_msg(pid == e.slotd || pid == b.pid, "round %d: the lease names pid %ld", round, pid);
        const char *log = pid == e.slotd ? e.log : b.log;
        int stood = file_count(log, "standing by");
        uint64_t t0 = harness_now_ms();
        ck_assert_int_eq(kill((pid_t)pid, SIGSTOP), 0);
        /* The other takes the lease, then moves tasks under its epoch. */
        long long frozen = -1;
        uint64_t taken = 0, routed = 0;
        while (harness_now_ms() - t0 < 3 * LEASE) {
            holder(&e, &e1, &pid1);
            if (frozen < 0 && e1 != 0 && e1 != e0) {
                frozen = moved(&e, e0);
                taken = harness_now_ms();
            }
            if (taken && !routed && moved(&e, e1) > 0)
                routed = harness_now_ms();
            usleep(5000);
        }
        ck_assert_msg(frozen >= 0, "round %d: nobody took the lease from the stopped slotd", round);
        ck_assert_msg(routed > 0, "round %d: the new active moved nothing", round);
        ck_assert_msg(routed - t0 <= LEASE + RENEW + 200, "round %d: routing resumed %llu ms after"
                      " the stop", round, (unsigned long long)(routed - t0));
        if (routed - t0 > worst)
            worst = routed - t0;
        ck_assert_int_eq(kill((pid_t)pid, SIGCONT), 0);
        uint64_t t1 = harness_now_ms();
        while (file_count(log, "standing by") == stood && harness_now_ms() - t1 < 1000)
            usleep(5000);
        ck_assert_msg(file_count(log, "standing by") > stood,
                      "round %d: the continued slotd did not stand by within 1 s", round);
        /* Nothing was committed under the old epoch after it was taken. */
        usleep(200000);
        ck_assert_msg(moved(&e, e0) == frozen, "round %d: epoch %llu moved %lld tasks after its"
                      " lease was taken", round, e0, moved(&e, e0) - frozen);
    }
    fprintf(stderr, "20 stops: routing resumed at most %llu ms after the stop (bound %d)\n",
            (unsigned long long)worst, LEASE + RENEW + 200);
    load_expect_once_in_order(&l, "20 stops");
    load_stop(&l);
    other_stop(&b);
    env_stop(&e);
}
END_TEST

/*
 * Deterministic: slotd-testhooks sends a batch's pushes, then stops for
 * 4 leases before its commit; the other takes the lease meanwhile. The
 * commit must be refused, the pushes taken back, and the refusal logged.
 */
START_TEST(stopped_between_its_pushes_and_its_commit_it_is_fenced)
{
    struct env e;
    struct load l;
    struct other a;
    env_start(&e, NULL, YAML);
    l.ttl_ms = TTL;
    /* The slotd with the hook first, so that it is the active. */
    other_start(&e, &a, "slotd-testhooks", "SLOTD_TEST_PAUSE_BEFORE_EXEC_MS=2000");
    uint64_t end = harness_now_ms() + 5000;
    while (file_count(a.log, "active: took the lease") == 0 && harness_now_ms() < end)
        usleep(5000);
    ck_assert_int_eq(file_count(a.log, "active: took the lease"), 1);
    env_slotd_start(&e);
    load_start(&l, &e, 5000, 100, 0, 1, 0);
    l.ttl_ms = TTL;
    for (int i = 0; i < 3; i++)
        load_worker(&l, three[i], 16, 0);
    /* The hook's pause (2 s), then the stopped slotd's commit reaches Redis. */
    end = harness_now_ms() + 10000;
    while (file_count(a.log, "test hook: pausing") == 0 && harness_now_ms() < end)
        usleep(10000);
    ck_assert_int_eq(file_count(a.log, "test hook: pausing"), 1);
    usleep(3000 * 1000);
    /* What a commit past the fence would do shows first: tasks trimmed
     * that nobody routed, or routed twice. */
    load_expect_once_in_order(&l, "fenced commit");
    ck_assert_int_eq(env_llen(&e, "intake"), 0);
    ck_assert_msg(file_count(a.log, "fenced: epoch 1 -> 2, batch of") == 1,
                  "the stopped slotd's commit was not refused");
    ck_assert_int_eq(moved(&e, 1), 0);
    load_stop(&l);
    other_stop(&a);
    env_stop(&e);
}
END_TEST

START_TEST(sigterm_hands_over_within_a_renew_interval)
{
    struct env e;
    struct other b;
    unsigned long long e0, e1;
    long pid;
    env_start(&e, NULL, YAML);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_log(&e, "active: took the lease", 5000), 0);
    other_start(&e, &b, "slotd", NULL);
    usleep(300000);
    holder(&e, &e0, &pid);
    ck_assert_int_eq(pid, e.slotd);
    uint64_t t0 = harness_now_ms();
    int st = env_slotd_stop(&e, SIGTERM);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    do {
        holder(&e, &e1, &pid);
        usleep(2000);
    } while (pid != b.pid && harness_now_ms() - t0 < 3000);
    uint64_t took = harness_now_ms() - t0;
    fprintf(stderr, "SIGTERM: the standby took the lease %llu ms after the signal\n",
            (unsigned long long)took);
    ck_assert_int_eq(pid, b.pid);
    ck_assert_msg(took <= RENEW + 100, "took %llu ms", (unsigned long long)took);
    ck_assert_int_eq(e1, e0 + 1);
    other_stop(&b);
    env_stop(&e);
}
END_TEST

/* Redis restarted (from its append-only file) and every slotd connection
 * killed, again and again, while two slotds run: still one at a time. */
START_TEST(restarts_and_killed_connections_keep_one_active)
{
    struct env e;
    struct load l;
    struct other b;
    env_start(&e, "appendonly yes\nappendfsync always\n", YAML);
    env_slotd_start(&e);
    other_start(&e, &b, "slotd", NULL);
    load_start(&l, &e, 30000, 300, 0, 2, 1500);
    workers(&l);
    srand(99);
    for (int round = 0; round < 30; round++) {
        redisReply *r = harness_cmd(e.c, "CLIENT LIST");
        for (char *line = r->str; line && *line;) {
            char *nl = strchr(line, '\n');
            long long id;
            if (nl)
                *nl = '\0';
            if ((strstr(line, " name=slotd-main ") || strstr(line, " name=slotd-wait ")) &&
                rand() % 2 && sscanf(line, "id=%lld", &id) == 1)
                freeReplyObject(harness_cmd(e.c, "CLIENT KILL ID %lld", id));
            line = nl ? nl + 1 : NULL;
        }
        freeReplyObject(r);
        usleep((useconds_t)(50000 + rand() % 150000));
        if (round == 10 || round == 20) {
            redisFree(e.c);
            e.c = NULL;
            ck_assert_int_eq(harness_redis_restart(&e.redis), 0);
            e.c = harness_redis_connect(&e.redis);
            ck_assert_ptr_nonnull(e.c);
        }
    }
    load_expect_once_in_order(&l, "kills and restarts");
    unsigned long long epoch;
    long pid;
    holder(&e, &epoch, &pid);
    ck_assert_msg(pid == e.slotd || pid == b.pid, "the lease names pid %ld", pid);
    load_stop(&l);
    other_stop(&b);
    env_stop(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("lease");
    const struct check_case tests[] = {
        { "two_started_at_once_exactly_one_routes", two_started_at_once_exactly_one_routes, 300 },
        { "the_active_stopped_past_its_lease_commits_nothing_after_it",
          the_active_stopped_past_its_lease_commits_nothing_after_it, 300 },
        { "stopped_between_its_pushes_and_its_commit_it_is_fenced",
          stopped_between_its_pushes_and_its_commit_it_is_fenced, 300 },
        { "sigterm_hands_over_within_a_renew_interval",
          sigterm_hands_over_within_a_renew_interval, 300 },
        { "restarts_and_killed_connections_keep_one_active",
          restarts_and_killed_connections_keep_one_active, 300 },
    };
    CHECK_CASES(s, tests);
    return s;
}

CHECK_MAIN(suite)
