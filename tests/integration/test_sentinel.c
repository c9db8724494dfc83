/*
 * slotd behind Redis Sentinel (master.c, conn.c), under load: a master, two
 * replicas and three sentinels (harness_ha: down-after-milliseconds 1000),
 * producers that push with per-key sequence numbers and count a push as
 * acknowledged once a replica has it (WAIT 1), slotd, three libslotd
 * workers following the sentinels too.
 *
 * - kill -9 of the master: slotd routes on the new master within 3.5 s,
 *   nothing restarted, no acknowledged task lost, re-runs only around the
 *   failover, per-key order of first runs kept, no worker declared dead;
 * - the master frozen (SIGSTOP) for 3 s: slotd and the workers are on the
 *   new master within 3.5 s of the stop (or, when Sentinel itself took
 *   longer, within 500 ms of its switch), and a second after the old master
 *   wakes none of our connections is on it;
 * - a failover announced by the sentinel slotd follows moves it on the
 *   message (+switch-master);
 * - sentinels: one down, all down and back, one that names a replica.
 *
 * Each test is its own tcase (CK_RUN_CASE=<name> runs one).
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "env.h"
#include "harness.h"
#include "load.h"

#define NAME "slotd"
#define TTL  2000
#define SLOTD_YAML "redis:\n  connect_timeout_ms: 300\n  reply_timeout_ms: 1000\n" \
                   "workers:\n  check_interval_ms: 100\n  heartbeat_ttl_ms: 2000\n" \
                   "dispatch:\n  batch: 100\n"
/* Re-runs allowed: what can be in flight when a write is lost with the
 * master: each worker's prefetch (16) taken or acknowledged, and the
 * dispatch batches (100) in flight, twice over for a second failover. */
#define RERUNS_MAX (2 * (3 * 16 + 2 * 100))

static const char *three[] = { "w1", "w2", "w3" };

static void start(struct harness_ha *ha, struct env *e, struct load *l, int ntasks, int rate)
{
    ck_assert_int_eq(harness_ha_start(ha, NAME, 2, NULL, NULL), 0);
    env_start_ha(e, ha, SLOTD_YAML);
    env_slotd_start(e);
    load_start(l, e, ntasks, 300, 0, 2, rate);
    l->ttl_ms = TTL;
    load_workers(l, three, 3, 16, 100);
    load_progress(l, "the start");
    /* The replicas are in sync for what counts: a push is acknowledged to
     * its producer only once a replica has it (WAIT 1). */
}

/* How many clients on the server at port have a name starting with one of
 * names (each counted once per name). */
static int clients_on(int port, const char *const *names, int n)
{
    struct harness_redis r = { .port = port };
    redisContext *c = harness_redis_connect(&r);
    if (c == NULL)
        return -1;
    redisReply *l = redisCommand(c, "CLIENT LIST");
    int found = 0;
    for (int i = 0; l != NULL && l->type == REDIS_REPLY_STRING && i < n; i++) {
        char want[96];
        snprintf(want, sizeof want, " name=%s ", names[i]);
        found += strstr(l->str, want) != NULL;
    }
    if (l)
        freeReplyObject(l);
    redisFree(c);
    return found;
}

static const char *ours[] = {
    "slotd-main", "slotd-wait", "slotd-worker:w1", "slotd-worker:w2", "slotd-worker:w3",
    "slotd-worker:w1:hb", "slotd-worker:w2:hb", "slotd-worker:w3:hb",
};
#define NOURS ((int)(sizeof ours / sizeof ours[0]))

/* Any client of ours (slotd-, slotd-worker:) on the server at port. */
static int any_of_ours_on(int port)
{
    struct harness_redis r = { .port = port };
    redisContext *c = harness_redis_connect(&r);
    ck_assert_ptr_nonnull(c);
    redisReply *l = harness_cmd(c, "CLIENT LIST");
    int n = 0;
    for (const char *p = l->str; (p = strstr(p, " name=slotd-")) != NULL; p++)
        n++;
    freeReplyObject(l);
    redisFree(c);
    return n;
}

/* The first commit slotd makes on the master at port: {t}:tail changes
 * (every commit writes it). The time it was seen, or 0 after timeout_ms. */
static uint64_t first_commit_on(int port, int timeout_ms)
{
    struct harness_redis r = { .port = port };
    redisContext *c = harness_redis_connect(&r);
    ck_assert_ptr_nonnull(c);
    char key[64], first[128] = "";
    int have = 0;
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms, seen = 0;
    env_key(key, sizeof key, "tail");
    while (!seen && harness_now_ms() < end) {
        redisReply *v = harness_cmd(c, "GET %s", key);
        const char *now = v->type == REDIS_REPLY_STRING ? v->str : "";
        if (!have) {
            snprintf(first, sizeof first, "%s", now);
            have = 1;
        } else if (strcmp(first, now) != 0) {
            seen = harness_now_ms();
        }
        freeReplyObject(v);
        usleep(5000);
    }
    redisFree(c);
    return seen;
}

/* Everything pushed, finished; none lost, re-runs bounded, order kept. */
static void finish(struct harness_ha *ha, struct env *e, struct load *l, const char *what)
{
    struct load_result res;
    ck_assert_int_eq(load_wait_pushed(l, 120000), 0);
    ck_assert_msg(load_wait_finished(l, 60000) == 0, "%s: not every task finished (%ld of %d)",
                  what, load_finished(l), l->ntasks);
    load_check(l, &res);
    fprintf(stderr, "%s: %d tasks, lost %ld, ran twice %ld, first runs out of order %ld\n", what,
            l->ntasks, res.lost, res.dup, res.order);
    ck_assert_msg(res.lost == 0 && res.order == 0 && res.dup <= RERUNS_MAX,
                  "%s: lost %ld, ran twice %ld, out of order %ld: %s", what, res.lost, res.dup,
                  res.order, res.first);
    ck_assert_msg(env_log_count(e, "died") == 0, "%s: slotd declared a worker dead", what);
    load_stop(l);
    env_stop(e);
    harness_ha_stop(ha);
}

START_TEST(the_master_killed_under_load)
{
    struct harness_ha ha;
    struct env e;
    struct load l;
    start(&ha, &e, &l, 30000, 1000);
    int old = env_follow(&e);
    uint64_t t0 = harness_now_ms();
    harness_redis_kill(harness_ha_node(&ha, old), SIGKILL);
    int now = harness_ha_wait_failover(&ha, old, 15000);
    ck_assert_int_gt(now, 0);
    uint64_t switched = harness_now_ms() - t0;
    uint64_t routed = first_commit_on(now, 10000);
    ck_assert_msg(routed != 0, "slotd did not route on the new master");
    fprintf(stderr, "kill -9: the sentinels switched after %llu ms, slotd routed on the new "
            "master %llu ms after the kill\n", (unsigned long long)switched,
            (unsigned long long)(routed - t0));
    ck_assert_msg(routed - t0 <= 3500, "slotd routed on the new master %llu ms after the kill",
                  (unsigned long long)(routed - t0));
    /* One line. By Sentinel's message, mostly; by the once-a-second
     * question when it reached a sentinel that had just heard of the
     * switch (a_failover_is_followed_on_the_message tests the message). */
    ck_assert_int_eq(env_wait_log(&e, "redis master 'slotd' moved:", 1000), 0);
    load_progress(&l, "the failover");
    ck_assert_int_eq(kill(e.slotd, 0), 0);
    for (int i = 0; i < l.nworkers; i++)
        ck_assert_int_eq(kill(l.worker[i], 0), 0);
    finish(&ha, &e, &l, "kill -9 of the master");
}
END_TEST

START_TEST(the_master_frozen_for_three_seconds)
{
    struct harness_ha ha;
    struct env e;
    struct load l;
    start(&ha, &e, &l, 30000, 1000);
    int old = env_follow(&e);
    struct harness_redis *frozen = harness_ha_node(&ha, old);
    uint64_t t0 = harness_now_ms();
    harness_redis_freeze(frozen);
    int now = harness_ha_wait_failover(&ha, old, 15000);
    ck_assert_int_gt(now, 0);
    uint64_t switched = harness_now_ms() - t0, on = 0;
    while (!on && harness_now_ms() < t0 + 15000) {
        if (clients_on(now, ours, NOURS) == NOURS)
            on = harness_now_ms() - t0;
        else
            usleep(10000);
    }
    ck_assert_msg(on != 0, "not all of slotd's and the workers' connections reached the new master");
    /* Continued after 3 s, or at once if Sentinel took longer to switch. */
    if (harness_now_ms() < t0 + 3000)
        usleep((useconds_t)(t0 + 3000 - harness_now_ms()) * 1000);
    harness_redis_thaw(frozen);
    uint64_t woke = harness_now_ms();
    fprintf(stderr, "SIGSTOP: the sentinels switched after %llu ms; slotd and the workers were "
            "all on the new master %llu ms after the stop; the old one continued at %llu ms\n",
            (unsigned long long)switched, (unsigned long long)on,
            (unsigned long long)(woke - t0));
    ck_assert_msg(on <= 3500 || on <= switched + 500,
                  "on the new master %llu ms after the stop (the sentinels switched at %llu ms)",
                  (unsigned long long)on, (unsigned long long)switched);
    usleep(1000 * 1000);
    ck_assert_msg(any_of_ours_on(old) == 0,
                  "a connection of ours is still on the old master a second after it woke");
    load_progress(&l, "the freeze");
    finish(&ha, &e, &l, "SIGSTOP of the master");
}
END_TEST

/* Pushes one task through e->c (on the master) and waits until it is routed. */
static void route_one(struct env *e, int n)
{
    char key[64];
    freeReplyObject(harness_cmd(e->c, "LPUSH %s {\"key\":\"k%d\"}",
                                env_key(key, sizeof key, "intake"), n));
    ck_assert_int_eq(env_wait_llen(e, "queue:w1", n, 5000), 0);
}

/* The number of sentinels (of ha's, and extra) with slotd's subscription. */
static int subscribed_sentinels(struct harness_ha *ha)
{
    const char *sub[] = { "slotd-sentinel-sub" };
    int n = 0;
    for (int i = 0; i < HARNESS_HA_SENTINELS; i++)
        if (harness_redis_up(&ha->sentinel[i]))
            n += clients_on(ha->sentinel[i].port, sub, 1) == 1;
    return n;
}

static int wait_subscribed(struct harness_ha *ha, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    while (harness_now_ms() < end) {
        if (subscribed_sentinels(ha) == 1)
            return 0;
        usleep(20000);
    }
    return -1;
}

START_TEST(sentinels_down_and_back)
{
    struct harness_ha ha;
    struct env e;
    ck_assert_int_eq(harness_ha_start(&ha, NAME, 1, NULL, NULL), 0);
    /* The first sentinel of the list is down from the start. */
    harness_redis_kill(&ha.sentinel[0], SIGKILL);
    env_start_ha(&e, &ha, "redis:\n  connect_timeout_ms: 300\n"
                          "workers:\n  heartbeat_ttl_ms: 60000\n");
    env_worker_beat(&e, "w1", 600000, 0);
    env_slotd_start(&e);
    char want[160];
    snprintf(want, sizeof want, "(found via sentinel 127.0.0.1:%d", ha.sentinel[1].port);
    ck_assert_int_eq(env_wait_log(&e, want, 5000), 0);
    route_one(&e, 1);
    ck_assert_int_eq(wait_subscribed(&ha, 3000), 0);

    /* The one it follows goes too: the next one is followed. */
    harness_redis_kill(&ha.sentinel[1], SIGKILL);
    ck_assert_int_eq(wait_subscribed(&ha, 5000), 0);
    route_one(&e, 2);

    /* All down: routing goes on with the master it has; said once. */
    harness_redis_kill(&ha.sentinel[2], SIGKILL);
    ck_assert_int_eq(env_wait_log(&e, "no sentinel of 3 names master 'slotd'", 5000), 0);
    route_one(&e, 3);
    sleep(3);
    ck_assert_int_eq(env_log_count(&e, "no sentinel of 3 names master"), 1);
    ck_assert_int_le(env_log_count(&e, "(sentinel) unreachable"), 1);
    route_one(&e, 4);

    /* Back: followed again, on its own. */
    for (int i = 0; i < HARNESS_HA_SENTINELS; i++)
        ck_assert_int_eq(harness_redis_resume(&ha.sentinel[i]), 0);
    ck_assert_int_eq(env_wait_log(&e, "sentinels answer again", 10000), 0);
    ck_assert_int_eq(wait_subscribed(&ha, 5000), 0);
    route_one(&e, 5);
    ck_assert_int_eq(kill(e.slotd, 0), 0);
    env_stop(&e);
    harness_ha_stop(&ha);
}
END_TEST

START_TEST(a_sentinel_that_names_a_replica)
{
    struct harness_ha ha;
    struct harness_redis liar;
    struct env e;
    char conf[128], extra[512], list[256];
    ck_assert_int_eq(harness_ha_start(&ha, NAME, 1, NULL, NULL), 0);
    int master = harness_ha_master_port(&ha), replica = 0;
    for (int i = 0; i < ha.nnodes; i++)
        if (ha.node[i].port != master)
            replica = ha.node[i].port;
    /* A sentinel of its own that watches the replica under the same name. */
    snprintf(conf, sizeof conf, "sentinel monitor " NAME " 127.0.0.1 %d 2\n", replica);
    ck_assert_int_eq(harness_sentinel_start(&liar, conf), 0);
    env_start_ha(&e, &ha, NULL);
    snprintf(extra, sizeof extra,
             "redis:\n  sentinels: \"127.0.0.1:%d,%s\"\n  sentinel_master: " NAME "\n"
             "  reconnect_min_ms: 20\n  reconnect_max_ms: 200\n  connect_timeout_ms: 300\n"
             "namespace: " ENV_NS "\nhttp:\n  listen: \"\"\n"
             "workers:\n  heartbeat_ttl_ms: 60000\n",
             liar.port, harness_ha_sentinel_list(&ha, list, sizeof list));
    ck_assert_int_eq(harness_write_file(e.conf, extra), 0);
    env_worker_beat(&e, "w1", 600000, 0);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_log2(&e, "is not a master (ROLE says slave)",
                                   "asking the sentinels", 5000), 0);
    char want[160];
    snprintf(want, sizeof want, "-> 127.0.0.1:%d (wrong, via sentinel 127.0.0.1:", master);
    ck_assert_int_eq(env_wait_log(&e, want, 5000), 0);
    route_one(&e, 1);
    const char *main_conn[] = { "slotd-main" };
    ck_assert_int_eq(clients_on(replica, main_conn, 1), 0);
    env_stop(&e);
    harness_redis_stop(&liar);
    harness_ha_stop(&ha);
}
END_TEST

/*
 * SENTINEL FAILOVER on the sentinel slotd follows: that sentinel switches
 * in its own timer, after answering any question already read, so its
 * +switch-master message is what moves slotd, at once.
 */
START_TEST(a_failover_is_followed_on_the_message)
{
    struct harness_ha ha;
    struct env e;
    ck_assert_int_eq(harness_ha_start(&ha, NAME, 1, NULL, NULL), 0);
    env_start_ha(&e, &ha, "redis:\n  connect_timeout_ms: 300\n"
                          "workers:\n  heartbeat_ttl_ms: 60000\n");
    env_worker_beat(&e, "w1", 600000, 0);
    env_slotd_start(&e);
    char want[160];
    snprintf(want, sizeof want, "(found via sentinel 127.0.0.1:%d", ha.sentinel[0].port);
    ck_assert_int_eq(env_wait_log(&e, want, 5000), 0);
    route_one(&e, 1);
    ck_assert_int_eq(wait_subscribed(&ha, 3000), 0);
    int old = harness_ha_master_port(&ha);
    redisContext *s = harness_redis_connect(&ha.sentinel[0]);
    ck_assert_ptr_nonnull(s);
    redisReply *r = harness_cmd(s, "SENTINEL FAILOVER " NAME);
    ck_assert_msg(r->type == REDIS_REPLY_STATUS, "SENTINEL FAILOVER: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject(r);
    redisFree(s);
    int now = harness_ha_wait_failover(&ha, old, 15000);
    ck_assert_int_gt(now, 0);
    snprintf(want, sizeof want, "moved: 127.0.0.1:%d -> 127.0.0.1:%d (+switch-master, via", old,
             now);
    ck_assert_int_eq(env_wait_log(&e, want, 3000), 0);
    env_follow(&e);
    route_one(&e, 2);
    env_stop(&e);
    harness_ha_stop(&ha);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sentinel");
    const struct check_case cases[] = {
        { "the_master_killed_under_load", the_master_killed_under_load, 120 },
        { "the_master_frozen_for_three_seconds", the_master_frozen_for_three_seconds, 120 },
        { "a_failover_is_followed_on_the_message", a_failover_is_followed_on_the_message, 60 },
        { "sentinels_down_and_back", sentinels_down_and_back, 60 },
        { "a_sentinel_that_names_a_replica", a_sentinel_that_names_a_replica, 60 },
    };
    CHECK_CASES(s, cases);
    return s;
}

CHECK_MAIN(suite)
