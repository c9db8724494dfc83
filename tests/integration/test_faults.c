/*
 * Integration: faults. Exactly once with slotd killed -9 again and again
 * while producers push; Redis restarted mid-run (AOF on); SIGTERM; bad
 * config; SIGHUP with an invalid file.
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
#include "check_main.h"

#define LONG_TTL 600000
#define KEYS 1000

static const char *four[] = { "w1", "w2", "w3", "w4" };

/* A producer process: pushes tasks [from, to) in pipelined chunks of 100,
 * task i = {"key":"k<i % KEYS>","seq":i}. */
static pid_t start_producer(struct env *e, int from, int to, int pause_us)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid > 0)
        return pid;
    redisContext *c = harness_redis_connect(&e->redis);
    char intake[64];
    env_key(intake, sizeof intake, "intake");
    for (int i = from; i < to && c; i += 100) {
        int end = i + 100 < to ? i + 100 : to;
        for (int j = i; j < end; j++)
            redisAppendCommand(c, "LPUSH %s {\"key\":\"k%d\",\"seq\":%d,\"pad\":\"xxxxxxxxxxxxxxxxxxxx\"}",
                               intake, j % KEYS, j);
        for (int j = i; j < end; j++) {
            redisReply *r;
            if (redisGetReply(c, (void **)&r) != REDIS_OK)
                _exit(2);
            freeReplyObject(r);
        }
        if (pause_us)
            usleep((useconds_t)pause_us);
    }
    redisFree(c);
    _exit(0);
}

/* Every task in exactly one queue, none in the intake, each producer's
 * order kept per key (producers are told apart by seq ranges of `span`). */
static void check_exactly_once(struct env *e, int n, int span)
{
    unsigned char *seen = calloc((size_t)n, 1);
    int nprod = (n + span - 1) / span;
    int *last = malloc((size_t)KEYS * (size_t)nprod * sizeof *last);
    long total = 0;
    for (int k = 0; k < KEYS * nprod; k++)
        last[k] = -1;
    ck_assert_int_eq(env_llen(e, "intake"), 0);
    ck_assert_int_eq(env_llen(e, "dead"), 0);
    for (int w = 0; w < 4; w++) {
        char name[64], key[128];
        snprintf(name, sizeof name, "queue:%s", four[w]);
        redisReply *q = harness_cmd(e->c, "LRANGE %s 0 -1", env_key(key, sizeof key, name));
        for (size_t j = q->elements; j-- > 0;) {
            int kk, seq;
            ck_assert_int_eq(sscanf(q->element[j]->str, "{\"key\":\"k%d\",\"seq\":%d", &kk, &seq), 2);
            ck_assert_int_lt(seq, n);
            ck_assert_msg(!seen[seq], "task %d delivered twice", seq);
            seen[seq] = 1;
            int slot = kk + KEYS * (seq / span);
            ck_assert_msg(seq > last[slot], "key k%d out of order: %d after %d", kk, seq, last[slot]);
            last[slot] = seq;
            total++;
        }
        freeReplyObject(q);
    }
    for (int i = 0; i < n; i++)
        ck_assert_msg(seen[i], "task %d lost", i);
    ck_assert_int_eq(total, n);
    free(seen);
    free(last);
}

static void register_four(struct env *e)
{
    for (int i = 0; i < 4; i++)
        env_worker_beat(e, four[i], LONG_TTL, 0);
}

START_TEST(exactly_once_with_slotd_killed_again_and_again)
{
    struct env e;
    enum { N = 100000 };
    int kills = 0, status;

    env_start(&e, NULL, "dispatch:\n  batch: 500\n");
    register_four(&e);
    /* Two producers, pushing while slotd is killed -9 at random moments. */
    pid_t p1 = start_producer(&e, 0, N / 2, 4000), p2 = start_producer(&e, N / 2, N, 4000);
    srand(12345);
    /* A producer is reaped once: its exit noted, never waited for again. */
    int p1_done = 0, p2_done = 0;
    while (!(p1_done && p2_done) && kills <= 200) {
        env_slotd_start(&e);
        usleep((useconds_t)(20000 + rand() % 150000));
        env_slotd_stop(&e, SIGKILL);
        kills++;
        p1_done = p1_done || harness_wait_exit(p1, 0, &status) == 0;
        p2_done = p2_done || harness_wait_exit(p2, 0, &status) == 0;
    }
    if (!p1_done)
        ck_assert_int_eq(harness_wait_exit(p1, 60000, &status), 0);
    if (!p2_done)
        ck_assert_int_eq(harness_wait_exit(p2, 60000, &status), 0);
    ck_assert_msg(kills >= 10, "only %d kills", kills);
    env_slotd_start(&e);
    ck_assert_msg(env_wait_llen(&e, "intake", 0, 30000) == 0, "intake not drained");
    check_exactly_once(&e, N, N / 2);
    fprintf(stderr, "exactly once: %d tasks, slotd killed -9 %d times\n", N, kills);
    env_stop(&e);
}
END_TEST

START_TEST(redis_restarted_mid_run_resumes_exactly_once)
{
    struct env e;
    enum { N = 60000 };
    int status;
    env_start(&e, "appendonly yes\nappendfsync always\n", "dispatch:\n  batch: 10\n");
    register_four(&e);
    pid_t p = start_producer(&e, 0, N, 0);
    ck_assert_int_eq(harness_wait_exit(p, 60000, &status), 0);
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    env_slotd_start(&e);
    /* Restart Redis while slotd is draining. */
    while (env_llen(&e, "intake") > N * 3 / 4)
        usleep(500);
    redisFree(e.c);
    e.c = NULL;
    ck_assert_int_eq(harness_redis_restart(&e.redis), 0);
    e.c = harness_redis_connect(&e.redis);
    ck_assert_ptr_nonnull(e.c);
    long long left = env_llen(&e, "intake");
    ck_assert_msg(left > 0, "drained before the restart; the test proves nothing");
    ck_assert_msg(env_wait_llen(&e, "intake", 0, 30000) == 0, "slotd did not resume");
    check_exactly_once(&e, N, N);
    ck_assert_int_eq(env_wait_log(&e, "connection lost", 100), 0);
    ck_assert_int_eq(kill(e.slotd, 0), 0);     /* still running */
    env_stop(&e);
}
END_TEST

START_TEST(redis_unreachable_at_start_then_up)
{
    struct env e;
    const char *ids[] = { "w1", "w2", "w3", "w4" };
    env_start(&e, NULL, NULL);
    register_four(&e);
    redisFree(e.c);
    e.c = NULL;
    /* slotd starts against a dead port, then Redis comes up. */
    harness_redis_kill(&e.redis, SIGTERM);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_log(&e, "unreachable", 3000), 0);
    usleep(300 * 1000);
    ck_assert_int_eq(kill(e.slotd, 0), 0);
    ck_assert_int_eq(harness_redis_resume(&e.redis), 0);
    e.c = harness_redis_connect(&e.redis);
    ck_assert_ptr_nonnull(e.c);
    ck_assert_int_eq(env_wait_log(&e, "slot table loaded", 5000), 0);
    /* Heartbeats were not persisted (no AOF): register again and route. */
    register_four(&e);
    ck_assert_int_eq(env_wait_owners(&e, ids, 4, 5000), 0);
    char intake[64];
    freeReplyObject(harness_cmd(e.c, "LPUSH %s {\"key\":\"x\"}", env_key(intake, sizeof intake, "intake")));
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 3000), 0);
    env_stop(&e);
}
END_TEST

START_TEST(sigterm_exits_zero_within_a_second)
{
    struct env e;
    env_start(&e, NULL, NULL);
    register_four(&e);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_log(&e, "slot table loaded", 5000), 0);
    pid_t p = start_producer(&e, 0, 20000, 0);
    usleep(50 * 1000);
    uint64_t t0 = harness_now_ms();
    int status = env_slotd_stop(&e, SIGTERM);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    ck_assert_msg(harness_now_ms() - t0 < 1000, "took %llu ms",
                  (unsigned long long)(harness_now_ms() - t0));
    ck_assert_int_eq(harness_wait_exit(p, 30000, &status), 0);
    /* Whatever it routed, it routed whole: finish the rest and check. */
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 10000), 0);
    check_exactly_once(&e, 20000, 20000);
    env_stop(&e);
}
END_TEST

static int run_slotd(const char *conf, const char *flag, char *out, size_t cap)
{
    char bin[512], cmd[2048];
    snprintf(bin, sizeof bin, "%s/slotd", harness_build_dir());
    snprintf(cmd, sizeof cmd, "%s %s -c %s 2>&1", bin, flag, conf);
    FILE *f = popen(cmd, "r");
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(bad_config_names_file_line_column_and_exits_78)
{
    char dir[] = "/tmp/slotd-conf.XXXXXX", path[256], out[4096], want[300];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/bad.yaml", dir);
    ck_assert_int_eq(harness_write_file(path, "redis:\n  port: 6379\ndispatch:\n  batch: 0\n"), 0);
    ck_assert_int_eq(run_slotd(path, "", out, sizeof out), 78);
    snprintf(want, sizeof want, "%s:4:10:", path);
    ck_assert_msg(strstr(out, want) != NULL, "got: %s", out);
    ck_assert_int_eq(run_slotd(path, "-t", out, sizeof out), 78);
    ck_assert_msg(strstr(out, want) != NULL, "got: %s", out);
    ck_assert_int_eq(harness_write_file(path, "dispatch:\n  batch: 10\n"), 0);
    ck_assert_int_eq(run_slotd(path, "-t", out, sizeof out), 0);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(sighup_with_invalid_file_keeps_running)
{
    struct env e;
    const char *ids[] = { "w1", "w2", "w3", "w4" };
    env_start(&e, NULL, NULL);
    register_four(&e);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_owners(&e, ids, 4, 5000), 0);
    ck_assert_int_eq(harness_write_file(e.conf, "redis:\n  port: [\n"), 0);
    kill(e.slotd, SIGHUP);
    ck_assert_int_eq(env_wait_log(&e, "keeping the running configuration", 3000), 0);
    char intake[64];
    freeReplyObject(harness_cmd(e.c, "LPUSH %s {\"key\":\"x\"}", env_key(intake, sizeof intake, "intake")));
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 3000), 0);
    ck_assert_int_eq(kill(e.slotd, 0), 0);
    env_stop(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("faults");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, exactly_once_with_slotd_killed_again_and_again);
    tcase_add_test(tc, redis_restarted_mid_run_resumes_exactly_once);
    tcase_add_test(tc, redis_unreachable_at_start_then_up);
    tcase_add_test(tc, sigterm_exits_zero_within_a_second);
    tcase_add_test(tc, bad_config_names_file_line_column_and_exits_78);
    tcase_add_test(tc, sighup_with_invalid_file_keeps_running);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
