/*
 * Integration: slotctl against slotd and a real Redis: every command, its
 * --json output, its exit codes, and its errors when Redis is unreachable.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "env.h"
#include "harness.h"
#include "keyslot.h"

#define LONG_TTL 600000

static char out[1 << 17];

/* Runs slotctl with args (and input on stdin if not NULL); its exit code. */
static int ctl(struct env *e, const char *input, const char *args)
{
    return env_slotctl(e, input, args, out, sizeof out);
}

static json_t *ctl_json(struct env *e, const char *args)
{
    char a[512];
    json_error_t err;
    snprintf(a, sizeof a, "--json %s", args);
    ck_assert_int_eq(ctl(e, NULL, a), 0);
    json_t *j = json_loads(out, 0, &err);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    return j;
}

START_TEST(read_commands_and_json)
{
    struct env e;
    const char *ids[] = { "a", "b" };
    env_start(&e, NULL, NULL);
    env_worker_beat(&e, "a", LONG_TTL, 0);
    env_worker_beat(&e, "b", LONG_TTL, 0);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_owners(&e, ids, 2, 5000), 0);

    ck_assert_int_eq(ctl(&e, NULL, "status"), 0);
    ck_assert_msg(strstr(out, "workers   2 own slots") != NULL, "%s", out);
    json_t *st = ctl_json(&e, "status");
    ck_assert_int_eq(json_integer_value(json_object_get(st, "live_workers_with_slots")), 2);
    json_decref(st);

    ck_assert_int_eq(ctl(&e, NULL, "workers"), 0);
    ck_assert_msg(strstr(out, "0-8191") && strstr(out, "8192-16383"), "%s", out);
    json_t *w = ctl_json(&e, "workers");
    ck_assert_uint_eq(json_array_size(w), 2);
    json_decref(w);

    ck_assert_int_eq(ctl(&e, NULL, "slots --map"), 0);
    ck_assert_msg(strstr(out, "AAAAAAAA") && strstr(out, "BBBBBBBB"), "%s", out);
    json_t *s = ctl_json(&e, "slots");
    ck_assert_str_eq(json_string_value(json_object_get(s, "a")), "0-8191");
    json_decref(s);

    /* keyslot equals Redis Cluster's (keyslot() is checked against
     * CLUSTER KEYSLOT elsewhere) and names the owner. */
    json_t *k = ctl_json(&e, "keyslot '{user1000}.following'");
    ck_assert_int_eq(json_integer_value(json_object_get(k, "slot")), 3443);
    ck_assert_str_eq(json_string_value(json_object_get(k, "worker")), "a");
    json_decref(k);
    ck_assert_int_eq(ctl(&e, NULL, "keyslot foo"), 0);
    ck_assert_msg(strstr(out, "foo: slot 12182, worker b") != NULL, "%s", out);
    env_stop(&e);
}
END_TEST

START_TEST(push_dead_letters_requeue_purge)
{
    struct env e;
    const char *ids[] = { "a" };
    env_start(&e, NULL, NULL);
    env_worker_beat(&e, "a", LONG_TTL, 0);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_owners(&e, ids, 1, 5000), 0);

    ck_assert_int_eq(ctl(&e, NULL, "push --key user:7 '{\"op\":\"charge\"}'"), 0);
    ck_assert_int_eq(env_wait_llen(&e, "queue:a", 1, 3000), 0);
    char qa[64];
    redisReply *r = harness_cmd(e.c, "LINDEX %s 0", env_key(qa, sizeof qa, "queue:a"));
    ck_assert_str_eq(r->str, "{\"op\":\"charge\",\"key\":\"user:7\"}");
    freeReplyObject(r);

    /* Two bad tasks, from stdin and argv. */
    ck_assert_int_eq(ctl(&e, "not json", "push -"), 0);
    ck_assert_int_eq(ctl(&e, NULL, "push '{\"id\":1}'"), 0);
    ck_assert_int_eq(env_wait_llen(&e, "dead", 2, 3000), 0);
    ck_assert_int_eq(ctl(&e, NULL, "dead list"), 0);
    ck_assert_msg(strstr(out, "invalid_json") && strstr(out, "no_key"), "%s", out);
    json_t *d = ctl_json(&e, "dead list 1");
    ck_assert_uint_eq(json_array_size(d), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "reason")), "no_key");
    json_decref(d);

    /* Requeue restores the original bytes to the intake (where slotd
     * dead-letters them again, as they are still bad). */
    char dk[64];
    ck_assert_int_eq(ctl(&e, NULL, "dead requeue 1"), 0);
    ck_assert_msg(strstr(out, "requeued 1") != NULL, "%s", out);
    ck_assert_int_eq(env_wait_llen(&e, "dead", 2, 3000), 0);
    r = harness_cmd(e.c, "LINDEX %s 0", env_key(dk, sizeof dk, "dead"));
    ck_assert_msg(strstr(r->str, "\"task\":\"not json\"") != NULL, "%s", r->str);
    freeReplyObject(r);

    ck_assert_int_eq(ctl(&e, NULL, "dead purge"), 0);
    ck_assert_int_eq(env_llen(&e, "dead"), 0);
    ck_assert_int_eq(ctl(&e, NULL, "dead requeue"), 2);       /* nothing to requeue */
    env_stop(&e);
}
END_TEST

START_TEST(drain_moves_slots_away_and_undo_gives_them_back)
{
    struct env e;
    const char *abc[] = { "a", "b", "c" }, *ac[] = { "a", "c" };
    env_start(&e, NULL, "workers:\n  check_interval_ms: 50\n");
    for (int i = 0; i < 3; i++)
        env_worker_beat(&e, abc[i], LONG_TTL, 0);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_owners(&e, abc, 3, 5000), 0);
    /* b has queued tasks: they go to the new owners, in order. */
    char intake[64];
    env_key(intake, sizeof intake, "intake");
    for (int i = 0; i < 300; i++)
        freeReplyObject(harness_cmd(e.c, "LPUSH %s {\"key\":\"k%d\",\"seq\":%d}", intake, i % 30, i));
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 3000), 0);
    long long b_had = env_llen(&e, "queue:b");
    ck_assert_int_gt(b_had, 0);
    ck_assert_int_eq(ctl(&e, NULL, "drain b"), 0);
    ck_assert_int_eq(env_wait_owners(&e, ac, 2, 3000), 0);
    ck_assert_int_eq(env_wait_llen(&e, "queue:b", 0, 3000), 0);
    ck_assert_int_eq(env_wait_log(&e, "worker b drained", 1000), 0);
    /* b held nothing in flight: its fence goes at the next check. */
    ck_assert_int_eq(env_wait_log(&e, "worker b has finished the tasks it held", 2000), 0);
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 3000), 0);
    ck_assert_int_eq(env_llen(&e, "fenced:b"), 0);
    ck_assert_int_eq(env_llen(&e, "queue:a") + env_llen(&e, "queue:c"), 300);
    ck_assert_int_eq(ctl(&e, NULL, "drain --undo b"), 0);
    ck_assert_int_eq(env_wait_owners(&e, abc, 3, 3000), 0);
    ck_assert_int_eq(ctl(&e, NULL, "drain nobody"), 2);
    ck_assert_int_eq(ctl(&e, NULL, "drain 'bad id'"), 64);
    env_stop(&e);
}
END_TEST

START_TEST(usage_config_and_unreachable_exit_codes)
{
    struct env e;
    env_start(&e, NULL, NULL);
    ck_assert_int_eq(ctl(&e, NULL, "frobnicate"), 64);
    ck_assert_int_eq(ctl(&e, NULL, ""), 64);
    harness_redis_kill(&e.redis, SIGTERM);
    ck_assert_int_eq(ctl(&e, NULL, "status"), 69);
    ck_assert_msg(strstr(out, "cannot reach Redis at 127.0.0.1:") != NULL, "%s", out);
    harness_write_file(e.conf, "redis:\n  port: nope\n");
    ck_assert_int_eq(ctl(&e, NULL, "status"), 78);
    ck_assert_msg(strstr(out, "slotd.yaml:2:9:") != NULL, "%s", out);
    redisFree(e.c);
    e.c = NULL;
    env_stop(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("slotctl");
    TCase *tc = tcase_create("slotctl");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, read_commands_and_json);
    tcase_add_test(tc, push_dead_letters_requeue_purge);
    tcase_add_test(tc, drain_moves_slots_away_and_undo_gives_them_back);
    tcase_add_test(tc, usage_config_and_unreachable_exit_codes);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
