/*
 * Integration: a namespace split into shards (shards: 2), one slotd per
 * shard on one redis-server. slotd -s refuses what it cannot serve; tasks
 * pushed to the wrong shard's intake end in the right shard's worker
 * queues, each once and each key's in order, also while the slotd of the
 * shard that forwards them is killed (kill -9) again and again; and the
 * forwarding scripts themselves: a batch sent again, from an older offset,
 * after the source's node lost its last trim, or by two slotds at once, is
 * taken in once, and the trim is fenced by the leader's epoch and the
 * offset.
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
#include "keys.h"
#include "keyslot.h"
#include "scripts.h"
#include "check_main.h"

#define YAML "shards: 2\n" \
             "workers:\n  check_interval_ms: 100\n  heartbeat_ttl_ms: 60000\n" \
             "dispatch:\n  batch: 50\nleader:\n  lease_ms: 500\n  renew_ms: 100\n"
#define NKEYS 40

/* A slotd serving one shard, its log in the test's directory. */
struct shard_slotd {
    pid_t pid;
    int   shard;
    char  log[600];
};

static void shard_start_bin(struct env *e, struct shard_slotd *s, int shard, const char *name)
{
    char bin[512], arg[16];
    snprintf(bin, sizeof bin, "%s/%s", harness_build_dir(), name);
    snprintf(arg, sizeof arg, "%d", shard);
    snprintf(s->log, sizeof s->log, "%s/slotd-shard%d.log", e->redis.dir, shard);
    char *argv[] = { bin, "-c", e->conf, "-s", arg, NULL };
    s->shard = shard;
    s->pid = harness_spawn(argv, s->log);
    ck_assert_int_gt(s->pid, 0);
}

static void shard_start(struct env *e, struct shard_slotd *s, int shard)
{
    shard_start_bin(e, s, shard, "slotd");
}

/* Sends sig and reaps; returns the wait status. */
static int shard_stop(struct shard_slotd *s, int sig)
{
    int st = -1;
    if (s->pid <= 0)
        return -1;
    harness_kill(s->pid, sig);
    if (harness_wait_exit(s->pid, 5000, &st) != 0) {
        harness_kill(s->pid, SIGKILL);
        harness_wait_exit(s->pid, 5000, &st);
    }
    s->pid = 0;
    return st;
}

static int log_has(const struct shard_slotd *s, const char *text)
{
    return harness_file_count(s->log, text);
}

static int wait_log(const struct shard_slotd *s, const char *text, int timeout_ms)
{
    return harness_file_wait(s->log, text, timeout_ms);
}

static void no_errors(const struct shard_slotd *s)
{
    ck_assert_msg(log_has(s, "runtime error") == 0 && log_has(s, "Sanitizer") == 0,
                  "%s has a sanitizer report", s->log);
    ck_assert_msg(log_has(s, " error: ") == 0, "%s logged an error", s->log);
}

/* Worker id registers in shard `shard`: heartbeat (for a minute) and set. */
static void beat(struct env *e, int shard, const char *id)
{
    struct keys k;
    char hb[KEYS_NAME_MAX];
    ck_assert_int_eq(keys_init_shard(&k, ENV_NS, shard, 2), 0);
    freeReplyObject(harness_cmd(e->c, "SET %s {} PX 60000", keys_hb(&k, id, hb, sizeof hb)));
    freeReplyObject(harness_cmd(e->c, "SADD %s %s", k.workers, id));
}

static const char *intake(int shard, char *buf, size_t cap)
{
    snprintf(buf, cap, "{%s#%d}:intake", ENV_NS, shard);
    return buf;
}

static unsigned key_slot_of(const char *key)
{
    return keyslot(key, strlen(key));
}

static int key_shard(int i)
{
    char key[16];
    int n = snprintf(key, sizeof key, "k%d", i);
    return keys_shard_of(keyslot(key, (size_t)n), 2);
}

/* Pushes tasks `from` .. `to`-1 of every key, key i onto shard (i / 2) % 2's
 * intake: so some keys go to their own shard, some to the other, and all
 * of one key's tasks through one intake. */
static void push(struct env *e, int from, int to)
{
    char in[64];
    for (int s = from; s < to; s++)
        for (int i = 0; i < NKEYS; i++)
            freeReplyObject(harness_cmd(e->c, "LPUSH %s {\"key\":\"k%d\",\"seq\":%d}",
                                        intake((i / 2) % 2, in, sizeof in), i, s));
}

/* Every key's tasks, 0 .. per-1, once and in order, in the queue of the
 * worker of its shard, and nothing else anywhere. */
static void check_queues(struct env *e, int per)
{
    const char *queue[2] = { "{t#0}:queue:wa", "{t#1}:queue:wb" };
    int next[NKEYS] = { 0 };
    for (int q = 0; q < 2; q++) {
        redisReply *r = harness_cmd(e->c, "LRANGE %s 0 -1", queue[q]);
        ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
        /* Workers take from the right: the oldest is last. */
        for (size_t j = r->elements; j-- > 0;) {
            int k = -1, s = -1;
            ck_assert_int_eq(sscanf(r->element[j]->str, "{\"key\":\"k%d\",\"seq\":%d}", &k, &s), 2);
            ck_assert_msg(k >= 0 && k < NKEYS, "a task of no key: %s", r->element[j]->str);
            ck_assert_msg(key_shard(k) == q, "k%d (shard %d) in %s", k, key_shard(k), queue[q]);
            ck_assert_msg(s == next[k], "k%d: task %d where %d was due (%s)", k, s, next[k],
                          s < next[k] ? "twice" : "lost or out of order");
            next[k]++;
        }
        freeReplyObject(r);
    }
    for (int k = 0; k < NKEYS; k++)
        ck_assert_msg(next[k] == per, "k%d: %d of %d tasks", k, next[k], per);
    ck_assert_int_eq(harness_llen(e->c, "{t#0}:forward:1"), 0);
    ck_assert_int_eq(harness_llen(e->c, "{t#1}:forward:0"), 0);
    ck_assert_int_eq(harness_llen(e->c, "{t#0}:intake"), 0);
    ck_assert_int_eq(harness_llen(e->c, "{t#1}:intake"), 0);
}

static long long queued(struct env *e)
{
    return harness_llen(e->c, "{t#0}:queue:wa") + harness_llen(e->c, "{t#1}:queue:wb");
}

static int wait_queued(struct env *e, long long n, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    while (harness_now_ms() < end) {
        if (queued(e) == n)
            return 0;
        usleep(20000);
    }
    return -1;
}

/* Redis, worker wa in shard 0 and wb in shard 1 (heartbeats only: their
 * queues fill up), a slotd per shard, each with its worker. */
static void two_shards(struct env *e, struct shard_slotd s[2])
{
    env_start(e, NULL, YAML);
    beat(e, 0, "wa");
    beat(e, 1, "wb");
    for (int i = 0; i < 2; i++)
        shard_start(e, &s[i], i);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(wait_log(&s[i], "joined", 10000), 0);
}

START_TEST(slotd_serves_one_shard_it_names)
{
    struct env e;
    struct shard_slotd s;
    int st;
    env_start(&e, NULL, YAML);
    char bin[512], log[600];
    snprintf(bin, sizeof bin, "%s/slotd", harness_build_dir());
    snprintf(log, sizeof log, "%s/args.log", e.redis.dir);
    /* No -s on a namespace of shards, a shard past the last, not a number. */
    const char *bad[][2] = { { NULL, NULL }, { "-s", "2" }, { "-s", "x" }, { "-s", "-1" } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[] = { bin, "-c", e.conf, (char *)(uintptr_t)bad[i][0],
                         (char *)(uintptr_t)bad[i][1], NULL };
        pid_t pid = harness_spawn(argv, log);
        ck_assert_int_gt(pid, 0);
        ck_assert_int_eq(harness_wait_exit(pid, 5000, &st), 0);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 64, "%s %s: status 0x%x",
                      bad[i][0] ? bad[i][0] : "(none)", bad[i][1] ? bad[i][1] : "", st);
    }
    char text[8192];
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose(f);
    ck_assert_msg(strstr(text, "has 2 shards: run one slotd per shard, with -s 0 to -s 1"), "%s", text);
    ck_assert_msg(strstr(text, "-s 2: namespace t has 2 shards (0 to 1)"), "%s", text);
    /* -s 1 serves {t#1}: its keys, its lease. */
    shard_start(&e, &s, 1);
    ck_assert_int_eq(wait_log(&s, "slot table loaded", 10000), 0);
    ck_assert_int_eq(wait_log(&s, "active: took the lease", 10000), 0);
    redisReply *r = harness_cmd(e.c, "EXISTS {t#1}:leader {t#0}:leader {t}:leader");
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    r = harness_cmd(e.c, "EXISTS {t#1}:leader");
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    st = shard_stop(&s, SIGTERM);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
    no_errors(&s);
    env_stop(&e);
}
END_TEST

START_TEST(tasks_of_the_wrong_shard_reach_the_right_one_once_in_order)
{
    struct env e;
    struct shard_slotd s[2];
    two_shards(&e, s);
    /* Both shards get keys of their own and of the other. */
    int mix[2][2] = { { 0 } };
    for (int i = 0; i < NKEYS; i++)
        mix[(i / 2) % 2][key_shard(i)]++;
    ck_assert_msg(mix[0][0] && mix[0][1] && mix[1][0] && mix[1][1],
                  "the keys do not cover every case");
    push(&e, 0, 50);
    ck_assert_msg(wait_queued(&e, 50LL * NKEYS, 15000) == 0, "%lld of %d tasks queued",
                  queued(&e), 50 * NKEYS);
    check_queues(&e, 50);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(shard_stop(&s[i], SIGTERM), 0);
        no_errors(&s[i]);
    }
    env_stop(&e);
}
END_TEST

START_TEST(forwarding_survives_kill_9_of_the_forwarding_slotd)
{
    struct env e;
    struct shard_slotd s[2];
    two_shards(&e, s);
    int per = 0;
    for (int round = 0; round < 8; round++) {
        /* Pushes while one shard's slotd is killed at a random moment of
         * its forwarding; its successor takes the lease once it lapses. */
        struct shard_slotd *v = &s[round % 2];
        int active = log_has(v, "active: took the lease");
        push(&e, per, per + 20);
        per += 20;
        usleep((useconds_t)(rand() % 10000));
        shard_stop(v, SIGKILL);
        push(&e, per, per + 5);
        per += 5;
        shard_start(&e, v, v->shard);
        ck_assert_int_eq(wait_log(v, "slot table loaded", 10000), 0);
        uint64_t end = harness_now_ms() + 10000;
        while (log_has(v, "active: took the lease") == active && harness_now_ms() < end)
            usleep(20000);
        ck_assert_msg(log_has(v, "active: took the lease") > active, "%s never active", v->log);
    }
    ck_assert_msg(wait_queued(&e, (long long)per * NKEYS, 20000) == 0, "%lld of %d tasks queued",
                  queued(&e), per * NKEYS);
    check_queues(&e, per);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(shard_stop(&s[i], SIGTERM), 0);
        ck_assert_msg(log_has(&s[i], "runtime error") == 0 && log_has(&s[i], "Sanitizer") == 0,
                      "%s has a sanitizer report", s[i].log);
    }
    env_stop(&e);
}
END_TEST

START_TEST(killed_between_the_two_writes_of_a_batch_it_is_sent_once)
{
    struct env e;
    struct shard_slotd s[2];
    env_start(&e, NULL, YAML);
    beat(&e, 0, "wa");
    beat(&e, 1, "wb");
    shard_start(&e, &s[1], 1);
    /* Shard 0's slotd dies once shard 1 has a batch and before the trim. */
    setenv("SLOTD_TEST_KILL_AFTER_FORWARD_IN", "1", 1);
    shard_start_bin(&e, &s[0], 0, "slotd-testhooks");
    unsetenv("SLOTD_TEST_KILL_AFTER_FORWARD_IN");
    push(&e, 0, 20);
    int st = -1;
    ck_assert_int_eq(harness_wait_exit(s[0].pid, 10000, &st), 0);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status 0x%x", st);
    ck_assert_int_eq(log_has(&s[0], "test hook: killed after forwarding"), 1);
    s[0].pid = 0;
    /* Its successor finds the batch still in the list, sends it again. */
    push(&e, 20, 25);
    shard_start(&e, &s[0], 0);
    ck_assert_msg(wait_queued(&e, 25LL * NKEYS, 15000) == 0, "%lld of %d tasks queued",
                  queued(&e), 25 * NKEYS);
    check_queues(&e, 25);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(shard_stop(&s[i], SIGTERM), 0);
    env_stop(&e);
}
END_TEST

START_TEST(a_shard_spreads_only_its_own_slots)
{
    struct env e;
    struct shard_slotd s;
    env_start(&e, NULL, YAML);
    beat(&e, 1, "w1");
    beat(&e, 1, "w2");
    shard_start(&e, &s, 1);
    ck_assert_int_eq(wait_log(&s, "slot table epoch 1", 10000), 0);
    unsigned lo, hi;
    keys_shard_slots(1, 2, &lo, &hi);
    ck_assert_uint_eq(lo, 8192);
    ck_assert_uint_eq(hi, 16383);
    /* w1 and w2 split 8192-16383: each gets part of the shard's tasks. */
    redisReply *r = harness_cmd(e.c, "HMGET {t#1}:slots w1 w2");
    ck_assert_int_eq(r->elements, 2);
    ck_assert_str_eq(r->element[0]->str, "8192-12287");
    ck_assert_str_eq(r->element[1]->str, "12288-16383");
    freeReplyObject(r);
    /* slotctl: a shard named, or the key's own; refused when neither. */
    char out[8192];
    ck_assert_int_eq(env_slotctl(&e, NULL, "--shard 1 slots", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "w1") && strstr(out, "8192-12287") && strstr(out, "12288-16383"),
                  "%s", out);
    int k = 0;
    char key[32];
    do
        snprintf(key, sizeof key, "user:%d", k++);
    while (key_slot_of(key) < 12288);
    char args[64];
    snprintf(args, sizeof args, "keyslot %s", key);
    ck_assert_int_eq(env_slotctl(&e, NULL, args, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "worker w2"), "%s", out);
    ck_assert_int_eq(env_slotctl(&e, NULL, "status", out, sizeof out), 64);
    ck_assert_msg(strstr(out, "has 2 shards: name one with --shard 0 to --shard 1"), "%s", out);
    ck_assert_int_eq(env_slotctl(&e, NULL, "--shard 2 status", out, sizeof out), 64);
    ck_assert_int_eq(shard_stop(&s, SIGTERM), 0);
    no_errors(&s);
    env_stop(&e);
}
END_TEST

static redisReply *eval_in(struct env *e, const char *from, const char *offset, int n,
                           const char *const *tasks)
{
    const char *argv[16] = { "EVAL", scripts_forward_in, "2", "{t#1}:intake", "{t#1}:forwarded",
                             from, offset };
    for (int i = 0; i < n; i++)
        argv[7 + i] = tasks[i];
    redisReply *r = redisCommandArgv(e->c, 7 + n, argv, NULL);
    ck_assert_ptr_nonnull(r);
    return r;
}

static long long integer_of(redisReply *r)
{
    ck_assert_msg(r->type == REDIS_REPLY_INTEGER, "reply type %d (%s)", r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* The intake of shard 1, oldest first. */
static void intake_is(struct env *e, const char *const *want, size_t n)
{
    redisReply *r = harness_cmd(e->c, "LRANGE {t#1}:intake 0 -1");
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(r->element[n - 1 - i]->str, want[i]);
    freeReplyObject(r);
}

START_TEST(a_batch_sent_again_is_taken_in_once_and_the_trim_is_fenced)
{
    struct env e;
    env_start(&e, NULL, YAML);
    const char *t[] = { "a", "b", "c", "d", "e", "f" };
    /* Tasks 5 and 6 of shard 0's list (its offset 5: five went before). */
    ck_assert_int_eq(integer_of(eval_in(&e, "0", "5", 2, t)), 2);
    /* The source stopped before trimming: the same batch again, grown. */
    ck_assert_int_eq(integer_of(eval_in(&e, "0", "5", 2, t)), 0);
    ck_assert_int_eq(integer_of(eval_in(&e, "0", "5", 3, t)), 1);
    /* From an older offset (a slotd that woke late): only what is new. */
    ck_assert_int_eq(integer_of(eval_in(&e, "0", "4", 4, (const char *[]){ "z", "a", "b", "c" })),
                     0);
    /* The source's node failed over and lost its last trim: its offset went
     * back to 5 and the list holds a, b, c again, and d behind them. */
    ck_assert_int_eq(integer_of(eval_in(&e, "0", "5", 4, t)), 1);
    /* Another source shard keeps its own end. */
    ck_assert_int_eq(integer_of(eval_in(&e, "2", "0", 1, t + 5)), 1);
    intake_is(&e, (const char *[]){ "a", "b", "c", "d", "f" }, 5);
    redisReply *r = harness_cmd(e.c, "HGET {t#1}:forwarded 0");
    ck_assert_str_eq(r->str, "9");
    freeReplyObject(r);
    /* Two slotds at once (one's lease just ended): A sends offset 9 with 3
     * tasks, B with 2; B trims its 2; the next batch from offset 11 starts
     * with A's third, already taken in. */
    const char *u[] = { "u1", "u2", "u3", "u4" };
    ck_assert_int_eq(integer_of(eval_in(&e, "0", "9", 3, u)), 3);
    ck_assert_int_eq(integer_of(eval_in(&e, "0", "9", 2, u)), 0);
    ck_assert_int_eq(integer_of(eval_in(&e, "0", "11", 2, u + 2)), 1);
    intake_is(&e, (const char *[]){ "a", "b", "c", "d", "f", "u1", "u2", "u3", "u4" }, 9);
    /* The intake of another type: refused, nothing written. */
    freeReplyObject(harness_cmd(e.c, "DEL {t#1}:intake"));
    freeReplyObject(harness_cmd(e.c, "SET {t#1}:intake x"));
    r = eval_in(&e, "0", "13", 1, t);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_str_eq(r->element[0]->str, "wrongtype");
    freeReplyObject(r);
    r = harness_cmd(e.c, "HGET {t#1}:forwarded 0");
    ck_assert_str_eq(r->str, "13");
    freeReplyObject(r);

    /* The trim on the source: offset 7, 2 tasks, under epoch "3 n0nce". */
    freeReplyObject(harness_cmd(e.c, "RPUSH {t#0}:forward:1 x y z"));
    freeReplyObject(harness_cmd(e.c, "SET {t#0}:forward:1:done 7"));
    freeReplyObject(harness_cmd(e.c, "SET {t#0}:tail %s", "3 n0nce 17"));
    const char *out[] = { "EVAL", scripts_forward_out, "3", "{t#0}:forward:1",
                          "{t#0}:forward:1:done", "{t#0}:tail", "6", "2", "3 other" };
    /* Another epoch: fenced, whatever the offset. */
    r = redisCommandArgv(e.c, 9, out, NULL);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_str_eq(r->element[0]->str, "moved");
    ck_assert_str_eq(r->element[1]->str, "{t#0}:tail");
    freeReplyObject(r);
    /* Ours, another offset: someone else trimmed. */
    out[8] = "3 n0nce";
    r = redisCommandArgv(e.c, 9, out, NULL);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_str_eq(r->element[0]->str, "moved");
    ck_assert_str_eq(r->element[1]->str, "{t#0}:forward:1:done");
    freeReplyObject(r);
    ck_assert_int_eq(harness_llen(e.c, "{t#0}:forward:1"), 3);
    /* Ours: the two oldest go, the offset moves on. */
    out[6] = "7";
    ck_assert_int_eq(integer_of(redisCommandArgv(e.c, 9, out, NULL)), 1);
    r = harness_cmd(e.c, "LRANGE {t#0}:forward:1 0 -1");
    ck_assert_int_eq(r->elements, 1);
    ck_assert_str_eq(r->element[0]->str, "x");
    freeReplyObject(r);
    r = harness_cmd(e.c, "GET {t#0}:forward:1:done");
    ck_assert_str_eq(r->str, "9");
    freeReplyObject(r);
    /* The peek reads the offset and the tail at one instant. */
    const char *peek[] = { "EVAL", scripts_forward_peek, "2", "{t#0}:forward:1",
                           "{t#0}:forward:1:done", "500" };
    r = redisCommandArgv(e.c, 6, peek, NULL);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_str_eq(r->element[0]->str, "9");
    ck_assert_int_eq(r->element[1]->elements, 1);
    freeReplyObject(r);
    env_stop(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("shards");
    const struct check_case tests[] = {
        { "slotd_serves_one_shard_it_names", slotd_serves_one_shard_it_names, 120 },
        { "tasks_of_the_wrong_shard_reach_the_right_one_once_in_order",
          tasks_of_the_wrong_shard_reach_the_right_one_once_in_order, 120 },
        { "forwarding_survives_kill_9_of_the_forwarding_slotd",
          forwarding_survives_kill_9_of_the_forwarding_slotd, 120 },
        { "a_shard_spreads_only_its_own_slots", a_shard_spreads_only_its_own_slots, 120 },
        { "killed_between_the_two_writes_of_a_batch_it_is_sent_once",
          killed_between_the_two_writes_of_a_batch_it_is_sent_once, 120 },
        { "a_batch_sent_again_is_taken_in_once_and_the_trim_is_fenced",
          a_batch_sent_again_is_taken_in_once_and_the_trim_is_fenced, 120 },
    };
    CHECK_CASES(s, tests);
    return s;
}

CHECK_MAIN(suite)
