/*
 * Integration: slotd routes every task to the owner of its slot, in intake
 * order, with Redis's own CLUSTER KEYSLOT as the oracle; dead letters; the
 * no-worker pause; the idle wait without polling.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deadletter.h"
#include "env.h"
#include "harness.h"
#include "slotmap.h"
#include "check_main.h"

#define LONG_TTL 600000

static void push(struct env *e, const char *task, size_t len)
{
    char intake[64];
    env_key(intake, sizeof intake, "intake");
    freeReplyObject(harness_cmd(e->c, "LPUSH %s %b", intake, task, len));
}


START_TEST(routes_every_task_to_its_slot_owner_in_order)
{
    struct env e;
    struct harness_redis oracle;
    const char *ids[] = { "w1", "w2", "w3" };
    enum { N = 3000, KEYS = 97 };

    env_start(&e, NULL, NULL);
    ck_assert_int_eq(harness_redis_start(&oracle, "cluster-enabled yes\ncluster-config-file nodes.conf\n"), 0);
    redisContext *oc = harness_redis_connect(&oracle);
    ck_assert_ptr_nonnull(oc);
    for (int i = 0; i < 3; i++)
        env_worker_beat(&e, ids[i], LONG_TTL, 0);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_owners(&e, ids, 3, 5000), 0);

    /* Keys of every form: plain, hash tags, numbers, escapes, edge tags. */
    char intake[64];
    env_key(intake, sizeof intake, "intake");
    for (int i = 0; i < N; i++) {
        char task[256];
        int k = i % KEYS;
        switch (i % 6) {
        case 0: snprintf(task, sizeof task, "{\"key\":\"user:%d\",\"seq\":%d}", k, i); break;
        case 1: snprintf(task, sizeof task, "{\"seq\":%d,\"key\":\"{user:%d}.x\"}", i, k); break;
        case 2: snprintf(task, sizeof task, "{\"key\":%d,\"seq\":%d}", k, i); break;
        case 3: snprintf(task, sizeof task, "{\"key\":\"a{}{b%d}\",\"seq\":%d}", k, i); break;
        case 4: snprintf(task, sizeof task, "{ \"nested\": {\"key\": 1}, \"key\" : \"caf\\u00e9%d\", \"seq\": %d }", k, i); break;
        default: snprintf(task, sizeof task, "{\"key\":\"{{%d}}\",\"seq\":%d,\"p\":[1,2,{\"x\":null}]}", k, i); break;
        }
        redisAppendCommand(e.c, "LPUSH %s %s", intake, task);
    }
    for (int i = 0; i < N; i++) {
        redisReply *r;
        ck_assert_int_eq(redisGetReply(e.c, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    ck_assert_msg(env_wait_llen(&e, "intake", 0, 10000) == 0, "intake not drained");

    struct slotmap m;
    env_load_table(&e, &m);
    long total = 0;
    for (int w = 0; w < 3; w++) {
        char qname[64];
        snprintf(qname, sizeof qname, "queue:%s", ids[w]);
        char key[128];
        redisReply *q = harness_cmd(e.c, "LRANGE %s 0 -1", env_key(key, sizeof key, qname));
        long last_seq = -1;
        /* From the tail (oldest) to the head: intake order. */
        for (size_t j = q->elements; j-- > 0;) {
            json_error_t err;
            json_t *o = json_loadb(q->element[j]->str, q->element[j]->len, 0, &err);
            ck_assert_ptr_nonnull(o);
            json_t *kv = json_object_get(o, "key");
            char keybuf[128];
            const char *kb;
            size_t kl;
            if (json_is_string(kv)) {
                kb = json_string_value(kv);
                kl = json_string_length(kv);
            } else {
                kl = (size_t)snprintf(keybuf, sizeof keybuf, "%lld", (long long)json_integer_value(kv));
                kb = keybuf;
            }
            long seq = (long)json_integer_value(json_object_get(o, "seq"));
            ck_assert_msg(seq > last_seq, "queue %s out of order: %ld after %ld", ids[w], seq, last_seq);
            last_seq = seq;
            redisReply *s = harness_cmd(oc, "CLUSTER KEYSLOT %b", kb, kl);
            ck_assert_int_eq(s->type, REDIS_REPLY_INTEGER);
            unsigned owner = slotmap_owner(&m, (unsigned)s->integer);
            ck_assert_msg(owner != SLOTMAP_NOBODY && strcmp(m.workers[owner].id, ids[w]) == 0,
                          "task seq %ld (key %.*s, slot %lld) went to %s, owner %s", seq, (int)kl, kb,
                          s->integer, ids[w], owner == SLOTMAP_NOBODY ? "-" : m.workers[owner].id);
            freeReplyObject(s);
            json_decref(o);
            total++;
        }
        freeReplyObject(q);
    }
    ck_assert_int_eq(total, N);
    ck_assert_int_eq(env_llen(&e, "dead"), 0);
    slotmap_free(&m);
    redisFree(oc);
    harness_redis_stop(&oracle);
    env_stop(&e);
}
END_TEST

struct bad {
    const char *task;
    size_t      len;
    const char *reason;
};

static void check_dead(struct env *e, const struct bad *cases, size_t n)
{
    char key[64];
    redisReply *r = harness_cmd(e->c, "LRANGE %s 0 -1", env_key(key, sizeof key, "dead"));
    ck_assert_uint_eq(r->elements, n);
    /* Newest at the head: the first case is the last element. */
    for (size_t i = 0; i < n; i++) {
        redisReply *el = r->element[n - 1 - i];
        size_t len;
        char *reason;
        char *task = deadletter_parse(el->str, el->len, &len, &reason);
        ck_assert_msg(task != NULL, "not a dead letter: %s", el->str);
        ck_assert_msg(strcmp(reason, cases[i].reason) == 0, "case %zu: reason %s, want %s (%s)",
                      i, reason, cases[i].reason, el->str);
        ck_assert_uint_eq(len, cases[i].len);
        ck_assert_int_eq(memcmp(task, cases[i].task, len), 0);
        free(task);
        free(reason);
    }
    freeReplyObject(r);
}

static char big[200];

START_TEST(dead_letters_every_case_and_goes_on)
{
    struct env e;
    const char *ids[] = { "w1" };
    memset(big, 'x', sizeof big);
    memcpy(big, "{\"key\":\"", 8);
    memcpy(big + sizeof big - 2, "\"}", 2);
    const struct bad cases[] = {
        { "", 0, "empty" },
        { big, sizeof big, "too_large" },
        { "{\"key\":\"a\"", 10, "invalid_json" },
        { "\xff\xfe\x00binary", 9, "invalid_json" },
        { "{\"key\":\"a\"} x", 13, "invalid_json" },
        { "[\"key\",\"a\"]", 11, "not_object" },
        { "{\"id\":1}", 8, "no_key" },
        { "{\"key\":\"a\",\"key\":\"b\"}", 21, "duplicate_key" },
        { "{\"key\":[1]}", 11, "bad_key_type" },
        { "{\"key\":null}", 12, "bad_key_type" },
    };
    size_t n = sizeof cases / sizeof cases[0];

    env_start(&e, NULL, "dispatch:\n  max_task_bytes: 100\n");
    env_worker_beat(&e, "w1", LONG_TTL, 0);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_owners(&e, ids, 1, 5000), 0);
    for (size_t i = 0; i < n; i++) {
        push(&e, cases[i].task, cases[i].len);
        push(&e, "{\"key\":\"good\"}", 14);
    }
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 5000), 0);
    ck_assert_int_eq(env_llen(&e, "queue:w1"), (long long)n);
    check_dead(&e, cases, n);
    ck_assert_int_eq(env_wait_log(&e, "dead letter: duplicate_key", 1000), 0);
    env_stop(&e);
}
END_TEST

START_TEST(on_missing_key_payload_routes_by_whole_task)
{
    struct env e;
    const char *ids[] = { "w1" };
    const struct bad cases[] = {
        { "", 0, "empty" },
        { "{\"key\":", 7, "invalid_json" },
    };
    env_start(&e, NULL, "routing:\n  on_missing_key: payload\n");
    env_worker_beat(&e, "w1", LONG_TTL, 0);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_owners(&e, ids, 1, 5000), 0);
    push(&e, "", 0);
    push(&e, "[1]", 3);
    push(&e, "{\"id\":1}", 8);
    push(&e, "{\"key\":", 7);
    push(&e, "{\"key\":true}", 12);
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 5000), 0);
    ck_assert_int_eq(env_llen(&e, "queue:w1"), 3);
    check_dead(&e, cases, 2);
    env_stop(&e);
}
END_TEST

static long long cmdstat_calls(struct env *e, const char *cmd)
{
    redisReply *r = harness_cmd(e->c, "INFO commandstats");
    char needle[64];
    long long calls = 0;
    snprintf(needle, sizeof needle, "cmdstat_%s:calls=", cmd);
    const char *p = strstr(r->str, needle);
    if (p)
        calls = atoll(p + strlen(needle));
    freeReplyObject(r);
    return calls;
}

START_TEST(idle_intake_blocks_in_redis_and_wakes_on_push)
{
    struct env e;
    const char *ids[] = { "w1" };
    env_start(&e, NULL, NULL);
    env_worker_beat(&e, "w1", LONG_TTL, 0);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_owners(&e, ids, 1, 5000), 0);
    usleep(300 * 1000);
    freeReplyObject(harness_cmd(e.c, "CONFIG RESETSTAT"));
    usleep(1000 * 1000);
    /* One second idle: no peeking, at most one re-armed blocking wait. */
    long long lr = cmdstat_calls(&e, "lrange"), bl = cmdstat_calls(&e, "blmove");
    ck_assert_msg(lr <= 1, "slotd polled the idle intake: %lld LRANGE in 1 s", lr);
    ck_assert_msg(bl <= 1, "%lld BLMOVE in 1 s", bl);
    uint64_t t0 = harness_now_ms();
    push(&e, "{\"key\":\"wake\"}", 14);
    ck_assert_int_eq(env_wait_llen(&e, "queue:w1", 1, 2000), 0);
    /* Not a speed assertion (make bench measures it): only that the push
     * woke slotd rather than a timeout of the wait. */
    ck_assert_msg(harness_now_ms() - t0 < 1000, "the push did not wake slotd");
    ck_assert_int_eq(env_llen(&e, "intake"), 0);
    env_stop(&e);
}
END_TEST

START_TEST(no_live_worker_leaves_the_intake_alone)
{
    struct env e;
    const char *ids[] = { "late" };
    env_start(&e, NULL, NULL);
    /* An id that is not 1-64 of [A-Za-z0-9._-] is logged and ignored. */
    char workers[64];
    freeReplyObject(harness_cmd(e.c, "SADD %s %s", env_key(workers, sizeof workers, "workers"), "bad{id}"));
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_log(&e, "no live worker", 5000), 0);
    ck_assert_int_eq(env_wait_log(&e, "holds invalid worker ids, ignored: 'bad{id}'", 1000), 0);
    for (int i = 0; i < 100; i++) {
        char t[64];
        int n = snprintf(t, sizeof t, "{\"key\":\"k%d\"}", i);
        push(&e, t, (size_t)n);
    }
    usleep(800 * 1000);
    ck_assert_int_eq(env_llen(&e, "intake"), 100);
    ck_assert_int_eq(env_llen(&e, "dead"), 0);
    env_worker_beat(&e, "late", LONG_TTL, 0);
    ck_assert_int_eq(env_wait_owners(&e, ids, 1, 5000), 0);
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 5000), 0);
    ck_assert_int_eq(env_llen(&e, "queue:late"), 100);
    ck_assert_int_eq(env_wait_log(&e, "routing resumes", 1000), 0);
    env_stop(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("routing");
    TCase *tc = tcase_create("routing");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, routes_every_task_to_its_slot_owner_in_order);
    tcase_add_test(tc, dead_letters_every_case_and_goes_on);
    tcase_add_test(tc, on_missing_key_payload_routes_by_whole_task);
    tcase_add_test(tc, idle_intake_blocks_in_redis_and_wakes_on_push);
    tcase_add_test(tc, no_live_worker_leaves_the_intake_alone);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
