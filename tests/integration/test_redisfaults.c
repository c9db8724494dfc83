/*
 * Fault suite: Redis misbehaving under load. Connections killed again and
 * again; Redis paused (CLIENT PAUSE), frozen (DEBUG SLEEP, SIGSTOP past the
 * reply timeout) and kept busy by
 * a script for longer than the heartbeat TTL; writes refused for want of memory (maxmemory with
 * noeviction); Redis killed -9 and started again from its append-only file.
 * In each: a log line says what happened, routing resumes on its own, no
 * task is lost, none ran twice (nothing here lets a write that was
 * acknowledged vanish, and no worker is declared dead), and each key's
 * tasks ran in order.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "harness.h"
#include "load.h"
#include "check_main.h"

#define TTL 1500
#define SLOTD_YAML "workers:\n  check_interval_ms: 100\n  heartbeat_ttl_ms: 1500\n" \
                   "dispatch:\n  batch: 100\n"

static const char *three[] = { "w1", "w2", "w3" };

/* slotd, three workers, two producers: ntasks at rate per producer. */
static void start(struct env *e, struct load *l, const char *redis_conf, int ntasks, int rate)
{
    env_start(e, redis_conf, SLOTD_YAML);
    env_slotd_start(e);
    load_start(l, e, ntasks, 300, 0, 2, rate);
    l->ttl_ms = TTL;
    load_workers(l, three, 3, 16, 100);
}

/* Everything pushed and finished once, in order per key; nobody died. */
static void finish(struct env *e, struct load *l, const char *what)
{
    load_expect_once_in_order(l, what);
    ck_assert_msg(env_log_count(e, "died") == 0, "%s: slotd declared a worker dead", what);
    load_stop(l);
    env_stop(e);
}

/* The id of the client named name in CLIENT LIST, or -1. */
static long long client_id(struct env *e, const char *name)
{
    char want[128];
    long long id = -1;
    snprintf(want, sizeof want, " name=%s ", name);
    redisReply *r = harness_cmd(e->c, "CLIENT LIST");
    for (char *line = r->str; line && *line && id < 0;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strstr(line, want))
            sscanf(line, "id=%lld", &id);
        line = nl ? nl + 1 : NULL;
    }
    freeReplyObject(r);
    return id;
}

START_TEST(connections_killed_again_and_again)
{
    struct env e;
    struct load l;
    static const char *names[] = {
        "slotd-main", "slotd-wait", "slotd-worker:w1", "slotd-worker:w2",
        "slotd-worker:w3", "slotd-worker:w1:hb", "slotd-worker:w2:hb", "slotd-worker:w3:hb",
    };
    int kills = 0;
    start(&e, &l, NULL, 40000, 2000);
    srand(4242);
    for (int round = 0; round < 60; round++) {
        long long id = client_id(&e, names[round % 8]);
        if (id >= 0) {
            freeReplyObject(harness_cmd(e.c, "CLIENT KILL ID %lld", id));
            kills++;
        }
        usleep((useconds_t)(80000 + rand() % 120000));
    }
    ck_assert_int_ge(kills, 40);
    ck_assert_int_eq(env_wait_log(&e, "connection lost", 1000), 0);
    load_progress(&l, "the kills");
    finish(&e, &l, "CLIENT KILL");
}
END_TEST

START_TEST(redis_paused_longer_than_the_heartbeat_ttl)
{
    struct env e;
    struct load l;
    start(&e, &l, NULL, 30000, 2000);
    load_progress(&l, "the start");
    freeReplyObject(harness_cmd(e.c, "CLIENT PAUSE 2500 ALL"));
    usleep(2600 * 1000);
    ck_assert_int_eq(env_wait_log(&e, "Redis did not answer", 3000), 0);
    load_progress(&l, "the pause");
    finish(&e, &l, "CLIENT PAUSE");
}
END_TEST

START_TEST(redis_frozen_longer_than_the_heartbeat_ttl)
{
    struct env e;
    struct load l;
    start(&e, &l, "enable-debug-command yes\n", 30000, 2000);
    load_progress(&l, "the start");
    redisReply *r = harness_cmd(e.c, "DEBUG SLEEP 2.5");
    ck_assert_msg(r->type == REDIS_REPLY_STATUS, "DEBUG SLEEP: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject(r);
    ck_assert_int_eq(env_wait_log(&e, "Redis did not answer", 3000), 0);
    load_progress(&l, "the freeze");
    finish(&e, &l, "DEBUG SLEEP");
}
END_TEST

/* A script of another client keeps Redis busy: past busy-reply-threshold
 * every other command, the workers' heartbeats too, is refused (BUSY). */
/* SIGSTOP: the connections are dropped by the watchdog (the reconnects'
 * handshakes are not answered either) until Redis continues. */
START_TEST(redis_stopped_longer_than_the_reply_timeout)
{
    struct env e;
    struct load l;
    env_start(&e, NULL, "redis:\n  reply_timeout_ms: 500\n  connect_timeout_ms: 300\n"
                        SLOTD_YAML);
    env_slotd_start(&e);
    load_start(&l, &e, 30000, 300, 0, 2, 2000);
    l.ttl_ms = TTL;
    load_workers(&l, three, 3, 16, 100);
    load_progress(&l, "the start");
    ck_assert_int_eq(kill(e.redis.pid, SIGSTOP), 0);
    ck_assert_int_eq(env_wait_log2(&e, "(main) connection dropped", "no reply in", 1500), 0);
    usleep(2000 * 1000);
    ck_assert_int_eq(kill(e.redis.pid, SIGCONT), 0);
    ck_assert_int_eq(env_wait_log(&e, "(main) connected after", 5000), 0);
    load_progress(&l, "the stop");
    finish(&e, &l, "SIGSTOP");
}
END_TEST

START_TEST(redis_busy_with_a_script_longer_than_the_heartbeat_ttl)
{
    struct env e;
    struct load l;
    start(&e, &l, "busy-reply-threshold 300\n", 30000, 2000);
    load_progress(&l, "the start");
    redisReply *r = harness_cmd(e.c, "EVAL %s 0",
        "local t = redis.call('TIME')\n"
        "while true do\n"
        "  local n = redis.call('TIME')\n"
        "  if (n[1] - t[1]) * 1000000 + (n[2] - t[2]) > 2500000 then break end\n"
        "end\n"
        "return 1");
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    ck_assert_int_eq(env_wait_log2(&e, "Redis refused work: BUSY", "no worker is declared dead",
                                   3000), 0);
    load_progress(&l, "the script");
    finish(&e, &l, "busy script");
}
END_TEST

START_TEST(writes_refused_for_want_of_memory)
{
    struct env e;
    struct load l;
    start(&e, &l, "maxmemory-policy noeviction\n", 30000, 2000);
    load_progress(&l, "the start");
    /* Just under what Redis uses now: every write that adds data is
     * refused; moving, heartbeats and acknowledgements go on. */
    redisReply *r = harness_cmd(e.c, "INFO memory");
    const char *at = strstr(r->str, "used_memory:");
    ck_assert_ptr_nonnull(at);
    long long used = atoll(at + 12);
    freeReplyObject(r);
    freeReplyObject(harness_cmd(e.c, "CONFIG SET maxmemory %lld", used - 4096));
    ck_assert_int_eq(env_wait_log2(&e, "dispatch held", "OOM", 5000), 0);
    usleep(2 * TTL * 1000);         /* longer than a heartbeat lives */
    freeReplyObject(harness_cmd(e.c, "CONFIG SET maxmemory 0"));
    ck_assert_int_eq(env_wait_log(&e, "dispatch resumed", 5000), 0);
    load_progress(&l, "memory came back");
    finish(&e, &l, "maxmemory");
}
END_TEST

START_TEST(redis_killed_and_restarted_from_its_append_only_file)
{
    struct env e;
    struct load l;
    start(&e, &l, "appendonly yes\nappendfsync always\n", 30000, 1500);
    load_progress(&l, "the start");
    for (int i = 0; i < 2; i++) {
        redisFree(e.c);
        e.c = NULL;
        harness_redis_kill(&e.redis, SIGKILL);
        usleep(2 * TTL * 1000);     /* longer than a heartbeat lives */
        ck_assert_int_eq(harness_redis_resume(&e.redis), 0);
        e.c = harness_redis_connect(&e.redis);
        ck_assert_ptr_nonnull(e.c);
        load_progress(&l, "the restart");
    }
    ck_assert_int_eq(env_wait_log(&e, "connection lost", 1000), 0);
    ck_assert_int_eq(env_wait_log2(&e, "Redis was unreachable", "no worker is declared dead",
                                   1000), 0);
    finish(&e, &l, "kill -9");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("redisfaults");
    const struct check_case tests[] = {
        { "connections_killed_again_and_again", connections_killed_again_and_again, 300 },
        { "redis_paused_longer_than_the_heartbeat_ttl",
          redis_paused_longer_than_the_heartbeat_ttl, 300 },
        { "redis_frozen_longer_than_the_heartbeat_ttl",
          redis_frozen_longer_than_the_heartbeat_ttl, 300 },
        { "redis_stopped_longer_than_the_reply_timeout",
          redis_stopped_longer_than_the_reply_timeout, 300 },
        { "redis_busy_with_a_script_longer_than_the_heartbeat_ttl",
          redis_busy_with_a_script_longer_than_the_heartbeat_ttl, 300 },
        { "writes_refused_for_want_of_memory", writes_refused_for_want_of_memory, 300 },
        { "redis_killed_and_restarted_from_its_append_only_file",
          redis_killed_and_restarted_from_its_append_only_file, 300 },
    };
    CHECK_CASES(s, tests);
    return s;
}

CHECK_MAIN(suite)
