/*
 * Integration: the producers' shard rule against a real Redis (no slotd
 * needed: the tests read the intakes themselves). libslotd's producer and
 * slotctl push put each task on its shard's intake, {t#<i>}:intake, every
 * key's tasks in order, and a task slotd cannot route on shard 0's.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "env.h"
#include "harness.h"
#include "slotd_producer.h"

/* Keys at the edges of the shards' ranges for 3 shards (CLUSTER KEYSLOT). */
static const struct { const char *key; unsigned slot; int shard; } keys3[] = {
    { "k596", 0, 0 }, { "k13535", 5461, 0 }, { "k12922", 5462, 1 },
    { "k12284", 10922, 1 }, { "k69207", 10923, 2 }, { "k10322", 16383, 2 },
};
#define NKEYS (sizeof keys3 / sizeof keys3[0])

static char out[1 << 16];

static struct slotd_producer *open_producer(struct env *e, int shards)
{
    struct slotd_producer_options o;
    char err[512];
    memset(&o, 0, sizeof o);
    o.port = e->redis.port;
    o.ns = ENV_NS;
    o.shards = shards;
    struct slotd_producer *p = slotd_producer_open(&o, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    return p;
}

/* The intake of shard i, oldest first (the order slotd routes it in). */
static redisReply *intake(struct env *e, int shard)
{
    redisReply *r = redisCommand(e->c, "LRANGE {%s#%d}:intake 0 -1", ENV_NS, shard);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    return r;
}

START_TEST(libslotd_pushes_to_the_shard_in_order)
{
    struct env e;
    env_start(&e, NULL, "shards: 3\n");
    struct slotd_producer *p = open_producer(&e, 3);

    /* One at a time: the shard is the answer. */
    for (size_t k = 0; k < NKEYS; k++) {
        char t[64];
        int n = snprintf(t, sizeof t, "{\"key\":\"%s\",\"n\":-1}", keys3[k].key);
        ck_assert_int_eq(slotd_producer_push(p, t, (size_t)n), keys3[k].shard);
        ck_assert_int_eq(slotd_producer_shard_of(p, t, (size_t)n), keys3[k].shard);
    }
    ck_assert_int_eq(slotd_producer_push(p, "{\"key\":", 7), 0);     /* invalid JSON */
    ck_assert_int_eq(slotd_producer_push(p, "{\"id\":\"k10322\"}", 15), 0);     /* no key */

    /* Many, interleaved across keys, in one call over several LPUSHes. */
    enum { N = 2500 };
    static char buf[N][64];
    const char *tasks[N];
    size_t lens[N];
    for (int i = 0; i < N; i++) {
        lens[i] = (size_t)snprintf(buf[i], sizeof buf[i], "{\"key\":\"%s\",\"n\":%d}",
                                   keys3[(size_t)i % NKEYS].key, i);
        tasks[i] = buf[i];
    }
    ck_assert_int_eq(slotd_producer_push_many(p, tasks, lens, N), N);

    /* Every task is on its key's shard, and each key's come in order. */
    long total = 0;
    for (int s = 0; s < 3; s++) {
        redisReply *r = intake(&e, s);
        int last[NKEYS];
        for (size_t k = 0; k < NKEYS; k++)
            last[k] = -2;
        total += (long)r->elements;
        for (size_t j = r->elements; j-- > 0;) {    /* the tail is the oldest */
            const char *t = r->element[j]->str;
            size_t k;
            int n;
            if (strcmp(t, "{\"key\":") == 0 || strcmp(t, "{\"id\":\"k10322\"}") == 0) {
                ck_assert_int_eq(s, 0);
                continue;
            }
            for (k = 0; k < NKEYS; k++) {
                char want[32];
                snprintf(want, sizeof want, "{\"key\":\"%s\",", keys3[k].key);
                if (strncmp(t, want, strlen(want)) == 0)
                    break;
            }
            ck_assert_msg(k < NKEYS, "unexpected task %s", t);
            ck_assert_msg(keys3[k].shard == s, "%s on shard %d", t, s);
            ck_assert_int_eq(sscanf(strstr(t, "\"n\":") + 4, "%d", &n), 1);
            ck_assert_msg(n > last[k], "%s after n=%d: out of order", t, last[k]);
            last[k] = n;
        }
        freeReplyObject(r);
    }
    ck_assert_int_eq(total, N + (long)NKEYS + 2);
    ck_assert_int_eq(env_llen(&e, "intake"), 0);    /* {t}:intake: not split, unused */

    /* A shard's intake of the wrong type fails the call, and says which. */
    redisReply *r = redisCommand(e.c, "SET {%s#1}:intake x", ENV_NS);
    freeReplyObject(r);
    ck_assert_int_eq(slotd_producer_push(p, "{\"key\":\"k12922\"}", 16), -1);
    ck_assert_msg(strstr(slotd_producer_error(p), "{t#1}:intake") &&
                  strstr(slotd_producer_error(p), "WRONGTYPE"), "%s", slotd_producer_error(p));
    /* The connection is still good for the other shards. */
    ck_assert_int_eq(slotd_producer_push(p, "{\"key\":\"k69207\"}", 16), 2);
    slotd_producer_close(p);

    /* Not split: everything on {t}:intake. */
    p = open_producer(&e, 0);
    ck_assert_int_eq(slotd_producer_push(p, "{\"key\":\"k69207\"}", 16), 0);
    ck_assert_int_eq(slotd_producer_push_many(p, tasks, lens, 10), 10);
    ck_assert_int_eq(env_llen(&e, "intake"), 11);
    slotd_producer_close(p);
    env_stop(&e);
}
END_TEST

START_TEST(libslotd_open_fails_with_the_reason)
{
    struct slotd_producer_options o;
    char err[512];
    memset(&o, 0, sizeof o);
    o.port = 1;
    o.shards = 3;
    ck_assert_ptr_null(slotd_producer_open(&o, err, sizeof err));
    ck_assert_msg(strstr(err, "cannot reach Redis at 127.0.0.1:1") != NULL, "%s", err);
    o.shards = 257;
    ck_assert_ptr_null(slotd_producer_open(&o, err, sizeof err));
    ck_assert_msg(strstr(err, "shards 257") != NULL, "%s", err);
    slotd_producer_close(NULL);
}
END_TEST

static json_t *push_json(struct env *e, const char *args)
{
    char a[256];
    json_error_t err;
    snprintf(a, sizeof a, "--json push %s", args);
    ck_assert_int_eq(env_slotctl(e, NULL, a, out, sizeof out), 0);
    json_t *j = json_loads(out, 0, &err);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    return j;
}

START_TEST(slotctl_push_picks_the_shard)
{
    struct env e;
    env_start(&e, NULL, "shards: 3\n");
    for (size_t k = 0; k < NKEYS; k++) {
        char args[128], want[32];
        snprintf(args, sizeof args, "--key %s '{\"n\":1}'", keys3[k].key);
        json_t *j = push_json(&e, args);
        snprintf(want, sizeof want, "{%s#%d}:intake", ENV_NS, keys3[k].shard);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "shard")), keys3[k].shard);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "shards")), 3);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "slot")), keys3[k].slot);
        ck_assert_str_eq(json_string_value(json_object_get(j, "intake")), want);
        ck_assert(json_is_null(json_object_get(j, "unroutable")));
        json_decref(j);
    }
    /* Hash tags: only {k69207} counts. */
    json_t *j = push_json(&e, "'{\"key\":\"user:{k69207}:x\"}'");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "shard")), 2);
    json_decref(j);
    /* Unroutable: shard 0, no slot, and why. */
    j = push_json(&e, "'{\"key\":'");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "shard")), 0);
    ck_assert(json_is_null(json_object_get(j, "slot")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "unroutable")), "invalid_json");
    json_decref(j);

    /* The text names the shard and the slot. */
    ck_assert_int_eq(env_slotctl(&e, NULL, "push --key k10322 '{}'", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "onto {t#2}:intake: shard 2 of 3, slot 16383") != NULL, "%s", out);
    ck_assert_int_eq(env_slotctl(&e, NULL, "push '[1]'", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "onto {t#0}:intake: shard 0 of 3, as the task is not a JSON object")
                  != NULL, "%s", out);

    /* On the intakes: shard 2 holds k69207, k10322, the tag, k10322. */
    redisReply *r = intake(&e, 2);
    ck_assert_uint_eq(r->elements, 4);
    ck_assert_str_eq(r->element[3]->str, "{\"n\":1,\"key\":\"k69207\"}");
    ck_assert_str_eq(r->element[0]->str, "{\"key\":\"k10322\"}");
    freeReplyObject(r);
    r = intake(&e, 0);
    ck_assert_uint_eq(r->elements, 4);
    freeReplyObject(r);
    ck_assert_int_eq(env_llen(&e, "intake"), 0);
    env_stop(&e);
}
END_TEST

START_TEST(slotctl_push_unsplit_is_unchanged)
{
    struct env e;
    env_start(&e, NULL, NULL);
    ck_assert_int_eq(env_slotctl(&e, NULL, "push --key k10322 '{}'", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "onto {t}:intake (1 waiting)") != NULL, "%s", out);
    json_t *j = push_json(&e, "--key k10322 '{}'");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "shard")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "shards")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "slot")), 16383);
    json_decref(j);
    ck_assert_int_eq(env_llen(&e, "intake"), 2);
    env_stop(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("producer");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, libslotd_pushes_to_the_shard_in_order);
    tcase_add_test(tc, libslotd_open_fails_with_the_reason);
    tcase_add_test(tc, slotctl_push_picks_the_shard);
    tcase_add_test(tc, slotctl_push_unsplit_is_unchanged);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
